namespace Lookahead;

/// <summary>Element types of a context's KV cache (lk_context_params.kv_type, an lk_dtype).</summary>
public enum KvCacheType
{
    /// <summary>32-bit floats: keys and values exactly as computed.</summary>
    F32 = 0,
    /// <summary>IEEE half (CPU backend): 11 significant bits; magnitudes from 65,520 up become infinite and
    /// end the step with non-finite logits.</summary>
    F16 = 1,
    /// <summary>bfloat16 (CPU backend): F32's range, 8 significant bits.</summary>
    BF16 = 2,
}
