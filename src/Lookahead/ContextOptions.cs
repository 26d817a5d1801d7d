namespace Lookahead;

/// <summary>Options for a context: backend, KV cache, threads and kernel choices (lk_context_params).</summary>
public sealed record ContextOptions
{
    /// <summary>Backend to compute on.</summary>
    public Backend Backend { get; init; } = Backend.Auto;
    /// <summary>KV cache capacity in tokens; null = the model's max_position_embeddings (capped at
    /// <see cref="LanguageModel.DefaultContextCap"/> and at a sliding window).</summary>
    public int? ContextLength { get; init; }
    /// <summary>Most tokens one forward pass holds; null = min(512, context length).</summary>
    public int? BatchSize { get; init; }
    /// <summary>CPU threads including the caller; null = all cores.</summary>
    public int? Threads { get; init; }
    /// <summary>CUDA device ordinal (CUDA backend, and Auto when it picks CUDA).</summary>
    public int CudaDevice { get; init; }
    /// <summary>Caps the CPU matrix kernel (CPU backend).</summary>
    public CpuKernel CpuKernel { get; init; } = CpuKernel.Auto;
    /// <summary>CUDA matrix kernel.</summary>
    public CudaMatmulKernel CudaMatmul { get; init; } = CudaMatmulKernel.Auto;
    /// <summary>CUDA tree-attention kernel.</summary>
    public CudaAttentionKernel CudaAttention { get; init; } = CudaAttentionKernel.Auto;
    /// <summary>Sequences the context holds at once (CPU backend; <see cref="Decoding.InferenceContext.AddSequence"/>);
    /// null = 1.</summary>
    public int? MaxSequences { get; init; }
    /// <summary>KV pool capacity in tokens, shared by the sequences in blocks of 16; null = room for every
    /// sequence at the full context length.</summary>
    public int? KvPoolTokens { get; init; }
    /// <summary>Element type of the KV cache (CPU backend for the 16-bit ones). F16 and BF16 halve the cache
    /// and attention's reads; keys and values are rounded to it when written, so outputs are those of plain
    /// decoding with the same cache type (lossless against it), not necessarily those of an F32 cache.</summary>
    public KvCacheType KvCacheType { get; init; } = KvCacheType.F32;
    /// <summary>Capture each decoding-step shape as a CUDA graph and replay it (false: direct launches,
    /// for comparisons and kernel profilers).</summary>
    public bool CudaGraphs { get; init; } = true;
}
