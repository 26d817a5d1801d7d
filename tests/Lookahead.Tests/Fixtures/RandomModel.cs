using System.Runtime.InteropServices;
using System.Text.Json;
using Lookahead.Model;
using Lookahead.Tests.Reference;

namespace Lookahead.Tests.Fixtures;

/// <summary>Shape and options of a random test model.</summary>
public sealed record RandomModelSpec(
    string Name,
    int Hidden = 32,
    int Intermediate = 72,
    int Layers = 2,
    int Heads = 4,
    int KvHeads = 4,
    int Vocab = 97,
    bool Tied = false,
    TensorDtype Dtype = TensorDtype.F32,
    string Architecture = "LlamaForCausalLM",
    int? HeadDim = null,
    int MaxPositions = 1024,
    int Seed = 1,
    bool Sharded = false,
    double LayerGain = 1.7,
    (int First, int Second)? TiedLogits = null)
{
    public int ResolvedHeadDim => HeadDim ?? Hidden / Heads;
    public bool QkvBias => Architecture == "Qwen2ForCausalLM";
    public override string ToString() => Name;
}

/// <summary>
/// Writes a complete model folder (config.json + safetensors, optionally sharded) with seeded random
/// weights, and builds the reference model from exactly the values written (after dtype rounding).
/// </summary>
public sealed class RandomModel : IDisposable
{
    private readonly ReferenceWeights _weights;
    private readonly ReferenceConfig _config;

    private RandomModel(string folder, RandomModelSpec spec, ReferenceConfig config, ReferenceWeights weights)
    {
        Folder = folder;
        Spec = spec;
        _config = config;
        _weights = weights;
    }

    public string Folder { get; }
    public RandomModelSpec Spec { get; }

    public ReferenceModel CreateReference(KvCacheType kvCache = KvCacheType.F32) => new(_config with { KvCache = kvCache }, _weights);

    /// <summary>The reference of this model with every matrix stored as Q8_0 (row by row, as
    /// GgufBuilder.FromFolder(q8: true) writes it) and its inputs quantized to Q8_0.</summary>
    public ReferenceModel CreateQ8Reference()
    {
        float[] Q(float[] m) => Q8_0.RoundTrip(m);
        float[] embedding = Q(_weights.Embedding);
        var weights = new ReferenceWeights
        {
            Embedding = embedding,
            OutputNorm = _weights.OutputNorm,
            Output = ReferenceEquals(_weights.Output, _weights.Embedding) ? embedding : Q(_weights.Output),
            Layers = _weights.Layers.Select(l => new ReferenceLayer
            {
                AttnNorm = l.AttnNorm, Q = Q(l.Q), K = Q(l.K), V = Q(l.V), O = Q(l.O), FfnNorm = l.FfnNorm,
                Gate = Q(l.Gate), Up = Q(l.Up), Down = Q(l.Down), QBias = l.QBias, KBias = l.KBias, VBias = l.VBias,
            }).ToArray(),
        };
        return new ReferenceModel(_config with { Bf16Inputs = false, QuantizedInputs = _ => Q8_0.RoundTrip }, weights);
    }

    /// <summary>The reference of this model's shape with other weights (e.g. a quantized file's, dequantized)
    /// whose matrices take their inputs as quantizedInputs says.</summary>
    public ReferenceModel CreateReference(ReferenceWeights weights, Func<float[], Func<float[], float[]>?> quantizedInputs) =>
        new(_config with { Bf16Inputs = false, QuantizedInputs = quantizedInputs }, weights);

    public static RandomModel Create(RandomModelSpec spec)
    {
        string folder = Path.Combine(Path.GetTempPath(), "lookahead-tests", $"{spec.Name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        var random = new Random(spec.Seed);
        int h = spec.Hidden, f = spec.Intermediate, v = spec.Vocab, d = spec.ResolvedHeadDim;
        int q = spec.Heads * d, kv = spec.KvHeads * d;
        var tensors = new List<(string Name, long[] Shape, float[] Values)>();

        float[] Add(string name, long[] shape, double center, double scale)
        {
            long count = shape.Aggregate(1L, (a, b) => a * b);
            var values = new float[count];
            for (long i = 0; i < count; i++) values[i] = Round((float)(center + scale * (2 * random.NextDouble() - 1)), spec.Dtype);
            tensors.Add((name, shape, values));
            return values;
        }
        double Projection(int cols) => spec.LayerGain / Math.Sqrt(cols);

        float[] embedding = Add("model.embed_tokens.weight", [v, h], 0, 1);
        var layers = new ReferenceLayer[spec.Layers];
        for (int l = 0; l < spec.Layers; l++)
        {
            string p = $"model.layers.{l}.";
            var layer = new ReferenceLayer
            {
                AttnNorm = Add(p + "input_layernorm.weight", [h], 1, 0.3),
                Q = Add(p + "self_attn.q_proj.weight", [q, h], 0, Projection(h)),
                K = Add(p + "self_attn.k_proj.weight", [kv, h], 0, Projection(h)),
                V = Add(p + "self_attn.v_proj.weight", [kv, h], 0, Projection(h)),
                O = Add(p + "self_attn.o_proj.weight", [h, q], 0, Projection(q)),
                FfnNorm = Add(p + "post_attention_layernorm.weight", [h], 1, 0.3),
                Gate = Add(p + "mlp.gate_proj.weight", [f, h], 0, Projection(h)),
                Up = Add(p + "mlp.up_proj.weight", [f, h], 0, Projection(h)),
                Down = Add(p + "mlp.down_proj.weight", [h, f], 0, Projection(f)),
            };
            if (spec.QkvBias)
            {
                layer.QBias = Add(p + "self_attn.q_proj.bias", [q], 0, 0.2);
                layer.KBias = Add(p + "self_attn.k_proj.bias", [kv], 0, 0.2);
                layer.VBias = Add(p + "self_attn.v_proj.bias", [kv], 0, 0.2);
            }
            layers[l] = layer;
        }
        float[] norm = Add("model.norm.weight", [h], 1, 0.3);
        float[] output = spec.Tied ? embedding : Add("lm_head.weight", [v, h], 0, 3 / Math.Sqrt(h));
        if (spec.TiedLogits is { } pair)
        {
            (int first, int second) = pair;
            // Two identical output rows: their logits are exactly equal at every position.
            if (spec.Tied) throw new ArgumentException("TiedLogits needs an untied output head");
            Array.Copy(output, (long)first * h, output, (long)second * h, h);
        }

        WriteConfig(folder, spec);
        WriteWeights(folder, spec, tensors);
        var config = new ReferenceConfig(v, h, f, spec.Layers, spec.Heads, spec.KvHeads, d, 1e-5, 10000, Bf16Inputs: spec.Dtype == TensorDtype.BF16);
        var weights = new ReferenceWeights { Embedding = embedding, OutputNorm = norm, Output = output, Layers = layers };
        return new RandomModel(folder, spec, config, weights);
    }

    public void Dispose()
    {
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
    }

    public static float Round(float value, TensorDtype dtype) => dtype switch
    {
        TensorDtype.F16 => (float)(Half)value,
        TensorDtype.BF16 => BFloat16.ToSingle(BFloat16.FromSingle(value)),
        _ => value,
    };

    private static void WriteConfig(string folder, RandomModelSpec spec)
    {
        var config = new Dictionary<string, object?>
        {
            ["architectures"] = new[] { spec.Architecture },
            ["hidden_size"] = spec.Hidden,
            ["intermediate_size"] = spec.Intermediate,
            ["num_hidden_layers"] = spec.Layers,
            ["num_attention_heads"] = spec.Heads,
            ["num_key_value_heads"] = spec.KvHeads,
            ["vocab_size"] = spec.Vocab,
            ["max_position_embeddings"] = spec.MaxPositions,
            ["rms_norm_eps"] = 1e-5,
            ["rope_theta"] = 10000.0,
            ["hidden_act"] = "silu",
            ["tie_word_embeddings"] = spec.Tied,
            ["bos_token_id"] = 1,
            ["eos_token_id"] = 2,
        };
        if (spec.HeadDim is int headDim) config["head_dim"] = headDim;
        if (spec.Architecture == "MistralForCausalLM") config["sliding_window"] = 4096;
        File.WriteAllText(Path.Combine(folder, "config.json"), JsonSerializer.Serialize(config));
    }

    private static void WriteWeights(string folder, RandomModelSpec spec, List<(string Name, long[] Shape, float[] Values)> tensors)
    {
        if (!spec.Sharded)
        {
            var writer = new SafeTensorsWriter();
            foreach (var t in tensors) writer.Add(t.Name, spec.Dtype, t.Shape, Encode(t.Values, spec.Dtype));
            writer.Write(Path.Combine(folder, "model.safetensors"));
            return;
        }
        // Two shards, split half way through the tensor list, with the index file naming each tensor's shard.
        var map = new Dictionary<string, string>();
        for (int shard = 0; shard < 2; shard++)
        {
            string file = $"model-{shard + 1:D5}-of-00002.safetensors";
            var writer = new SafeTensorsWriter();
            foreach (var t in tensors.Skip(shard == 0 ? 0 : tensors.Count / 2).Take(shard == 0 ? tensors.Count / 2 : tensors.Count))
            {
                writer.Add(t.Name, spec.Dtype, t.Shape, Encode(t.Values, spec.Dtype));
                map[t.Name] = file;
            }
            writer.Write(Path.Combine(folder, file));
        }
        File.WriteAllText(Path.Combine(folder, "model.safetensors.index.json"),
            JsonSerializer.Serialize(new Dictionary<string, object> { ["metadata"] = new Dictionary<string, object>(), ["weight_map"] = map }));
    }

    public static byte[] Encode(float[] values, TensorDtype dtype)
    {
        switch (dtype)
        {
            case TensorDtype.F32:
                return MemoryMarshal.AsBytes(values.AsSpan()).ToArray();
            case TensorDtype.F16:
                return MemoryMarshal.AsBytes(values.Select(x => (Half)x).ToArray().AsSpan()).ToArray();
            case TensorDtype.BF16:
                return MemoryMarshal.AsBytes(values.Select(BFloat16.FromSingle).ToArray().AsSpan()).ToArray();
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype));
        }
    }
}

