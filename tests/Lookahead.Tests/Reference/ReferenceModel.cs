using Lookahead.Model;
using System.Text.Json;

namespace Lookahead.Tests.Reference;

/// <summary>Weights of a Llama-family model as plain float arrays (exactly the values the native side sees).</summary>
public sealed class ReferenceWeights
{
    public required float[] Embedding { get; init; }        // [vocab, hidden]
    public required float[] OutputNorm { get; init; }       // [hidden]
    public required float[] Output { get; init; }           // [vocab, hidden] (the embedding when tied)
    public required ReferenceLayer[] Layers { get; init; }
}

public sealed class ReferenceLayer
{
    public required float[] AttnNorm, Q, K, V, O, FfnNorm, Gate, Up, Down;
    public float[]? QBias, KBias, VBias;
}

/// <summary>
/// Hyper-parameters the reference needs. Bf16Inputs: the weights are BF16, so every matrix product takes its
/// input rounded to BF16 first (the library's contract for BF16 weights, as in PyTorch and llama.cpp).
/// KvCache: the element type keys (after RoPE) and values are stored as, each rounded from float to it.
/// QuantizedInputs: for a quantized matrix (by its weights array), what its input becomes before the
/// product (quantized to Q8_0 or Q8_K blocks and back, as llama.cpp quantizes inputs for that type).
/// </summary>
public sealed record ReferenceConfig(int Vocab, int Hidden, int Intermediate, int Layers, int Heads, int KvHeads, int HeadDim,
    double RmsEps, double RopeTheta, bool Bf16Inputs = false, KvCacheType KvCache = KvCacheType.F32,
    Func<float[], Func<float[], float[]>?>? QuantizedInputs = null);

/// <summary>
/// The test oracle: an obviously-correct Llama forward pass, one token at a time, double accumulation,
/// plain loops, HF conventions (rotate-half RoPE, SwiGLU, RMSNorm, GQA). Independent of the library.
/// </summary>
public sealed class ReferenceModel
{
    private readonly ReferenceConfig _c;
    private readonly ReferenceWeights _w;
    private readonly List<double[]>[] _keys;
    private readonly List<double[]>[] _values;

    public ReferenceModel(ReferenceConfig config, ReferenceWeights weights)
    {
        _c = config;
        _w = weights;
        _keys = Enumerable.Range(0, config.Layers).Select(_ => new List<double[]>()).ToArray();
        _values = Enumerable.Range(0, config.Layers).Select(_ => new List<double[]>()).ToArray();
    }

    public int Position => _keys[0].Count;

    /// <summary>Feeds one token at the next position and returns its logits.</summary>
    public double[] Forward(int token)
    {
        int hidden = _c.Hidden, d = _c.HeadDim, pos = Position;
        var x = new double[hidden];
        for (int i = 0; i < hidden; i++) x[i] = _w.Embedding[(long)token * hidden + i];

        for (int l = 0; l < _c.Layers; l++)
        {
            ReferenceLayer w = _w.Layers[l];
            double[] xb = RmsNorm(x, w.AttnNorm);
            double[] q = MatVec(w.Q, xb, _c.Heads * d, hidden, w.QBias);
            double[] k = MatVec(w.K, xb, _c.KvHeads * d, hidden, w.KBias);
            double[] v = MatVec(w.V, xb, _c.KvHeads * d, hidden, w.VBias);
            for (int h = 0; h < _c.Heads; h++) Rope(q, h * d, pos);
            for (int h = 0; h < _c.KvHeads; h++) Rope(k, h * d, pos);
            _keys[l].Add(StoredInCache(k));
            _values[l].Add(StoredInCache(v));

            var attention = new double[_c.Heads * d];
            int group = _c.Heads / _c.KvHeads;
            for (int h = 0; h < _c.Heads; h++)
            {
                int kvOffset = h / group * d;
                var scores = new double[pos + 1];
                for (int t = 0; t <= pos; t++)
                {
                    double dot = 0;
                    for (int i = 0; i < d; i++) dot += q[h * d + i] * _keys[l][t][kvOffset + i];
                    scores[t] = dot / Math.Sqrt(d);
                }
                double max = scores.Max(), total = 0;
                for (int t = 0; t <= pos; t++) total += scores[t] = Math.Exp(scores[t] - max);
                for (int t = 0; t <= pos; t++)
                    for (int i = 0; i < d; i++) attention[h * d + i] += scores[t] / total * _values[l][t][kvOffset + i];
            }
            double[] o = MatVec(w.O, attention, hidden, _c.Heads * d, null);
            for (int i = 0; i < hidden; i++) x[i] += o[i];

            xb = RmsNorm(x, w.FfnNorm);
            double[] gate = MatVec(w.Gate, xb, _c.Intermediate, hidden, null);
            double[] up = MatVec(w.Up, xb, _c.Intermediate, hidden, null);
            for (int i = 0; i < gate.Length; i++) gate[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
            double[] down = MatVec(w.Down, gate, hidden, _c.Intermediate, null);
            for (int i = 0; i < hidden; i++) x[i] += down[i];
        }
        return MatVec(_w.Output, RmsNorm(x, _w.OutputNorm), _c.Vocab, hidden, null);
    }

    /// <summary>Greedy continuation: feeds the prompt, then count argmax tokens (ties to the lowest id).</summary>
    public int[] Greedy(IReadOnlyList<int> prompt, int count)
    {
        double[] logits = [];
        foreach (int token in prompt) logits = Forward(token);
        var output = new int[count];
        for (int n = 0; n < count; n++)
        {
            output[n] = ArgMax(logits);
            if (n + 1 < count) logits = Forward(output[n]);
        }
        return output;
    }

    public static int ArgMax(double[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    private double[] RmsNorm(double[] x, float[] weight)
    {
        double sum = 0;
        foreach (double value in x) sum += value * value;
        double scale = 1 / Math.Sqrt(sum / x.Length + _c.RmsEps);
        return x.Select((value, i) => value * scale * weight[i]).ToArray();
    }

    // A key or value row as the cache holds it: the float the library computes, rounded to the cache's type.
    private double[] StoredInCache(double[] row) => _c.KvCache switch
    {
        KvCacheType.F16 => row.Select(value => (double)(float)(Half)(float)value).ToArray(),
        KvCacheType.BF16 => row.Select(value => (double)BFloat16.Round((float)value)).ToArray(),
        _ => row,
    };

    private double[] MatVec(float[] w, double[] x, int rows, int cols, float[]? bias)
    {
        // The library holds activations as floats; BF16 weights see them rounded once more, to BF16.
        if (_c.Bf16Inputs) x = x.Select(value => (double)BFloat16.Round((float)value)).ToArray();
        if (_c.QuantizedInputs?.Invoke(w) is { } quantize) x = quantize(x.Select(value => (float)value).ToArray()).Select(value => (double)value).ToArray();
        var y = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = bias?[r] ?? 0;
            for (int c = 0; c < cols; c++) sum += w[(long)r * cols + c] * x[c];
            y[r] = sum;
        }
        return y;
    }

    // HF rotate-half: pairs (i, i + d/2) rotate by pos / theta^(2i/d).
    private void Rope(double[] vector, int offset, int pos)
    {
        int half = _c.HeadDim / 2;
        for (int i = 0; i < half; i++)
        {
            double angle = pos / Math.Pow(_c.RopeTheta, 2.0 * i / _c.HeadDim);
            double a = vector[offset + i], b = vector[offset + i + half];
            vector[offset + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
            vector[offset + i + half] = b * Math.Cos(angle) + a * Math.Sin(angle);
        }
    }

    /// <summary>Loads an F32 HF Llama folder with a minimal safetensors reader of its own.</summary>
    public static ReferenceModel LoadF32Folder(string folder)
    {
        using JsonDocument config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "config.json")));
        JsonElement c = config.RootElement;
        int hidden = c.GetProperty("hidden_size").GetInt32(), heads = c.GetProperty("num_attention_heads").GetInt32();
        var rc = new ReferenceConfig(c.GetProperty("vocab_size").GetInt32(), hidden, c.GetProperty("intermediate_size").GetInt32(),
            c.GetProperty("num_hidden_layers").GetInt32(), heads, c.GetProperty("num_key_value_heads").GetInt32(), hidden / heads,
            c.GetProperty("rms_norm_eps").GetDouble(), c.GetProperty("rope_theta").GetDouble());
        bool tied = c.GetProperty("tie_word_embeddings").GetBoolean();

        byte[] file = File.ReadAllBytes(Path.Combine(folder, "model.safetensors"));
        long headerLength = BitConverter.ToInt64(file, 0);
        using JsonDocument header = JsonDocument.Parse(file.AsMemory(8, (int)headerLength));
        float[] Tensor(string name)
        {
            JsonElement entry = header.RootElement.GetProperty(name);
            if (entry.GetProperty("dtype").GetString() != "F32") throw new InvalidOperationException("reference loader reads F32 only");
            long begin = entry.GetProperty("data_offsets")[0].GetInt64(), end = entry.GetProperty("data_offsets")[1].GetInt64();
            var values = new float[(end - begin) / 4];
            Buffer.BlockCopy(file, (int)(8 + headerLength + begin), values, 0, (int)(end - begin));
            return values;
        }
        float[] embedding = Tensor("model.embed_tokens.weight");
        var layers = Enumerable.Range(0, rc.Layers).Select(l => new ReferenceLayer
        {
            AttnNorm = Tensor($"model.layers.{l}.input_layernorm.weight"),
            Q = Tensor($"model.layers.{l}.self_attn.q_proj.weight"),
            K = Tensor($"model.layers.{l}.self_attn.k_proj.weight"),
            V = Tensor($"model.layers.{l}.self_attn.v_proj.weight"),
            O = Tensor($"model.layers.{l}.self_attn.o_proj.weight"),
            FfnNorm = Tensor($"model.layers.{l}.post_attention_layernorm.weight"),
            Gate = Tensor($"model.layers.{l}.mlp.gate_proj.weight"),
            Up = Tensor($"model.layers.{l}.mlp.up_proj.weight"),
            Down = Tensor($"model.layers.{l}.mlp.down_proj.weight"),
        }).ToArray();
        var weights = new ReferenceWeights
        {
            Embedding = embedding,
            OutputNorm = Tensor("model.norm.weight"),
            Output = tied ? embedding : Tensor("lm_head.weight"),
            Layers = layers,
        };
        return new ReferenceModel(rc, weights);
    }
}

