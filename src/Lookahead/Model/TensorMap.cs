using Lookahead.Interop;

namespace Lookahead.Model;

/// <summary>One weight the native model needs: its native kind and layer, HF name and expected shape.</summary>
internal readonly record struct TensorSlot(TensorKind Kind, int Layer, string Name, long Rows, long Cols)
{
    public string ShapeText => Cols == 1 ? $"[{Rows}]" : $"[{Rows}, {Cols}]";
}

/// <summary>Hugging Face tensor names of the Llama family mapped to native tensor kinds.</summary>
internal static class TensorMap
{
    public static IEnumerable<TensorSlot> Slots(ModelConfig c)
    {
        long hidden = c.HiddenSize, ffn = c.IntermediateSize, vocab = c.VocabSize;
        long qDim = (long)c.NumHeads * c.HeadDim, kvDim = (long)c.NumKvHeads * c.HeadDim;
        yield return new(TensorKind.TokenEmbedding, 0, "model.embed_tokens.weight", vocab, hidden);
        yield return new(TensorKind.OutputNorm, 0, "model.norm.weight", hidden, 1);
        if (!c.TieWordEmbeddings) yield return new(TensorKind.Output, 0, "lm_head.weight", vocab, hidden);
        for (int l = 0; l < c.NumLayers; l++)
        {
            string p = $"model.layers.{l}.";
            yield return new(TensorKind.AttnNorm, l, p + "input_layernorm.weight", hidden, 1);
            yield return new(TensorKind.AttnQ, l, p + "self_attn.q_proj.weight", qDim, hidden);
            yield return new(TensorKind.AttnK, l, p + "self_attn.k_proj.weight", kvDim, hidden);
            yield return new(TensorKind.AttnV, l, p + "self_attn.v_proj.weight", kvDim, hidden);
            yield return new(TensorKind.AttnOutput, l, p + "self_attn.o_proj.weight", hidden, qDim);
            if (c.QkvBias)
            {
                yield return new(TensorKind.AttnQBias, l, p + "self_attn.q_proj.bias", qDim, 1);
                yield return new(TensorKind.AttnKBias, l, p + "self_attn.k_proj.bias", kvDim, 1);
                yield return new(TensorKind.AttnVBias, l, p + "self_attn.v_proj.bias", kvDim, 1);
            }
            yield return new(TensorKind.FfnNorm, l, p + "post_attention_layernorm.weight", hidden, 1);
            yield return new(TensorKind.FfnGate, l, p + "mlp.gate_proj.weight", ffn, hidden);
            yield return new(TensorKind.FfnUp, l, p + "mlp.up_proj.weight", ffn, hidden);
            yield return new(TensorKind.FfnDown, l, p + "mlp.down_proj.weight", hidden, ffn);
        }
    }
}
