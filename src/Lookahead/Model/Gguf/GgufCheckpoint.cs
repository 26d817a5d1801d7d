using Lookahead.Interop;

namespace Lookahead.Model.Gguf;

/// <summary>
/// A GGUF file read as a model: hyper-parameters from its llama.* / qwen2.* metadata, tensors under
/// llama.cpp's names matched to the slots the native model needs, each checked for shape and type.
/// llama.cpp's converter stores the llama architecture's q/k rows in Meta's interleaved RoPE order; they
/// are put back in Hugging Face's rotate-half order (the engine's) when read. Qwen2 files keep HF's order.
/// </summary>
internal sealed class GgufCheckpoint : IDisposable
{
    private readonly bool _interleavedRope;

    private GgufCheckpoint(GgufFile file, ModelConfig config, bool interleavedRope, float[]? ropeFactors)
    {
        File = file;
        Config = config;
        _interleavedRope = interleavedRope;
        RopeFactors = ropeFactors;
    }

    public GgufFile File { get; }
    public ModelConfig Config { get; }
    /// <summary>rope_freqs.weight (Llama 3.1's per-frequency divisors, as llama.cpp's converter writes
    /// them), or null.</summary>
    public float[]? RopeFactors { get; }

    private string Label => Path.GetFileName(File.Path);

    /// <exception cref="LookaheadException">The file is invalid or describes a model this library does not run.</exception>
    public static GgufCheckpoint Open(string path)
    {
        GgufFile file = GgufFile.Open(path);
        try
        {
            (ModelConfig config, bool interleaved) = ReadConfig(file);
            float[]? factors = ReadRopeFactors(file, config);
            return new GgufCheckpoint(file, config, interleaved, factors);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>llama.cpp's name of the tensor that fills a slot.</summary>
    public static string GgufName(TensorSlot slot) => slot.Kind switch
    {
        TensorKind.TokenEmbedding => "token_embd.weight",
        TensorKind.OutputNorm => "output_norm.weight",
        TensorKind.Output => "output.weight",
        TensorKind.AttnNorm => $"blk.{slot.Layer}.attn_norm.weight",
        TensorKind.AttnQ => $"blk.{slot.Layer}.attn_q.weight",
        TensorKind.AttnK => $"blk.{slot.Layer}.attn_k.weight",
        TensorKind.AttnV => $"blk.{slot.Layer}.attn_v.weight",
        TensorKind.AttnOutput => $"blk.{slot.Layer}.attn_output.weight",
        TensorKind.AttnQBias => $"blk.{slot.Layer}.attn_q.bias",
        TensorKind.AttnKBias => $"blk.{slot.Layer}.attn_k.bias",
        TensorKind.AttnVBias => $"blk.{slot.Layer}.attn_v.bias",
        TensorKind.FfnNorm => $"blk.{slot.Layer}.ffn_norm.weight",
        TensorKind.FfnGate => $"blk.{slot.Layer}.ffn_gate.weight",
        TensorKind.FfnUp => $"blk.{slot.Layer}.ffn_up.weight",
        TensorKind.FfnDown => $"blk.{slot.Layer}.ffn_down.weight",
        _ => throw new ArgumentOutOfRangeException(nameof(slot)),
    };

    /// <summary>The tensor for a slot, checked: present, of a type the engine loads, of the slot's shape.</summary>
    /// <exception cref="LookaheadException">It is missing, quantized or of another shape.</exception>
    public GgufTensor Tensor(TensorSlot slot)
    {
        string name = GgufName(slot);
        if (!File.Tensors.TryGetValue(name, out GgufTensor? tensor))
            throw new LookaheadException($"{Label}: tensor '{name}' is missing");
        bool loadable = GgmlTypes.Loadable(tensor.Type) is not null && (slot.Cols > 1 || !GgmlTypes.IsQuantized(tensor.Type));
        if (!loadable)
            throw new LookaheadException(
                $"{Label}: tensor '{name}' is {GgmlTypes.Name(tensor.Type)}; this version loads F32, F16, BF16 and (matrices) Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K GGUF tensors");
        bool matches = slot.Cols == 1
            ? tensor.Dims.Length == 1 && tensor.Dims[0] == slot.Rows
            : tensor.Dims.Length == 2 && tensor.Dims[0] == slot.Cols && tensor.Dims[1] == slot.Rows;
        if (!matches)
            throw new LookaheadException(
                $"{Label}: tensor '{name}' has ggml dimensions [{string.Join(", ", tensor.Dims)}], expected {Expected(slot)} from the metadata");
        return tensor;
    }

    /// <summary>Whether a slot's rows must be put back from interleaved to rotate-half RoPE order.</summary>
    public bool NeedsRopeReorder(TensorSlot slot) => _interleavedRope && slot.Kind is TensorKind.AttnQ or TensorKind.AttnK;

    /// <summary>A q or k matrix's rows in rotate-half order: per head, HF row i is stored row 2i and HF row
    /// half + i is stored row 2i + 1 (the inverse of the converter's permutation).</summary>
    public unsafe byte[] RotateHalfRows(TensorSlot slot, GgufTensor tensor)
    {
        int heads = slot.Kind == TensorKind.AttnQ ? Config.NumHeads : Config.NumKvHeads;
        long rowBytes = tensor.ByteLength / slot.Rows, rowsPerHead = slot.Rows / heads, half = rowsPerHead / 2;
        var result = new byte[tensor.ByteLength];
        byte* source = File.GetData(tensor);
        fixed (byte* target = result)
        {
            for (long h = 0; h < heads; h++)
            {
                for (long i = 0; i < half; i++)
                {
                    Buffer.MemoryCopy(source + (h * rowsPerHead + 2 * i) * rowBytes, target + (h * rowsPerHead + i) * rowBytes, rowBytes, rowBytes);
                    Buffer.MemoryCopy(source + (h * rowsPerHead + 2 * i + 1) * rowBytes, target + (h * rowsPerHead + half + i) * rowBytes, rowBytes, rowBytes);
                }
            }
        }
        return result;
    }

    public void Dispose() => File.Dispose();

    private static string Expected(TensorSlot slot) => slot.Cols == 1 ? $"[{slot.Rows}]" : $"[{slot.Cols}, {slot.Rows}]";

    private static (ModelConfig, bool InterleavedRope) ReadConfig(GgufFile f)
    {
        string label = Path.GetFileName(f.Path);
        string architecture = f.String("general.architecture") ?? throw new LookaheadException($"{label}: general.architecture is missing");
        (string hfArchitecture, bool interleaved, bool qkvBias) = architecture switch
        {
            "llama" => ("LlamaForCausalLM", true, false),
            "qwen2" => ("Qwen2ForCausalLM", false, true),
            _ => throw new LookaheadException($"{label}: architecture '{architecture}' is not supported (llama, which Mistral files use too, and qwen2 are)"),
        };
        string p = architecture + ".";
        int Required(string key)
        {
            long value = f.Integer(p + key) ?? throw new LookaheadException($"{label}: {p}{key} is missing");
            if (value is < 1 or > ModelConfig.MaxDimension)
                throw new LookaheadException($"{label}: {p}{key} = {value} is outside 1..{ModelConfig.MaxDimension}");
            return (int)value;
        }
        int? Optional(string key)
        {
            if (f.Integer(p + key) is not long value) return null;
            if (value is < 1 or > ModelConfig.MaxDimension)
                throw new LookaheadException($"{label}: {p}{key} = {value} is outside 1..{ModelConfig.MaxDimension}");
            return (int)value;
        }

        int hidden = Required("embedding_length");
        int layers = Required("block_count");
        if (layers > ModelConfig.MaxLayers) throw new LookaheadException($"{label}: {p}block_count ({layers}) exceeds the supported {ModelConfig.MaxLayers}");
        int heads = Required("attention.head_count");
        int kvHeads = Optional("attention.head_count_kv") ?? heads;
        if (heads % kvHeads != 0)
            throw new LookaheadException($"{label}: {p}attention.head_count ({heads}) must be a multiple of {p}attention.head_count_kv ({kvHeads})");
        int headDim = Optional("attention.key_length") ?? (hidden % heads == 0 ? hidden / heads
            : throw new LookaheadException($"{label}: {p}embedding_length ({hidden}) is not a multiple of the head count ({heads}) and {p}attention.key_length is not given"));
        if (headDim % 2 != 0) throw new LookaheadException($"{label}: the head dimension ({headDim}) must be even for RoPE");
        if (Optional("rope.dimension_count") is int ropeDims && ropeDims != headDim)
            throw new LookaheadException($"{label}: {p}rope.dimension_count ({ropeDims}) differs from the head dimension ({headDim}); partial RoPE is not supported");

        string[]? tokens = f.Strings("tokenizer.ggml.tokens");
        int vocab = Optional("vocab_size")
            ?? (f.Tensors.TryGetValue("token_embd.weight", out GgufTensor? embedding) && embedding.Dims.Length == 2 ? (int?)Math.Min(embedding.Dims[1], int.MaxValue) : null)
            ?? tokens?.Length
            ?? throw new LookaheadException($"{label}: no vocabulary size ({p}vocab_size, token_embd.weight or tokenizer.ggml.tokens)");
        if (vocab > ModelConfig.MaxDimension) throw new LookaheadException($"{label}: the vocabulary ({vocab}) exceeds the supported {ModelConfig.MaxDimension}");

        RopeScaling scaling = new(RopeScalingKind.None, 1, 1, 1, 0);
        string? scalingType = f.String(p + "rope.scaling.type");
        if (scalingType is "linear")
        {
            double factor = f.Number(p + "rope.scaling.factor") ?? throw new LookaheadException($"{label}: {p}rope.scaling.factor is missing");
            if (!(factor > 0)) throw new LookaheadException($"{label}: {p}rope.scaling.factor must be positive");
            scaling = new RopeScaling(RopeScalingKind.Linear, factor, 1, 1, 0);
        }
        else if (scalingType is not (null or "none"))
            throw new LookaheadException($"{label}: {p}rope.scaling.type '{scalingType}' is not supported (none and linear are)");

        int? TokenId(string key)
        {
            if (f.Integer(key) is not long id) return null;
            if (id < 0 || id >= vocab) throw new LookaheadException($"{label}: {key} {id} is outside the vocabulary ({vocab})");
            return (int)id;
        }
        var eos = new List<int>();
        foreach (string key in new[] { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" })
            if (TokenId(key) is int id && !eos.Contains(id)) eos.Add(id);

        double eps = f.Number(p + "attention.layer_norm_rms_epsilon") ?? 1e-5;
        double theta = f.Number(p + "rope.freq_base") ?? 10000.0;
        if (!(eps > 0) || !(theta > 0)) throw new LookaheadException($"{label}: {p}attention.layer_norm_rms_epsilon and {p}rope.freq_base must be positive");
        var config = new ModelConfig
        {
            Architecture = hfArchitecture,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = Required("feed_forward_length"),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = headDim,
            MaxPositionEmbeddings = Optional("context_length") ?? 2048,
            RmsNormEps = (float)eps,
            RopeTheta = (float)theta,
            RopeScaling = scaling,
            TieWordEmbeddings = !f.Tensors.ContainsKey("output.weight"),
            QkvBias = qkvBias,
            BosTokenId = TokenId("tokenizer.ggml.bos_token_id"),
            EosTokenIds = eos,
        };
        return (config, interleaved);
    }

    private static unsafe float[]? ReadRopeFactors(GgufFile f, ModelConfig config)
    {
        if (!f.Tensors.TryGetValue("rope_freqs.weight", out GgufTensor? tensor)) return null;
        string label = Path.GetFileName(f.Path);
        if (tensor.Type != GgmlType.F32 || tensor.Dims.Length != 1 || tensor.Dims[0] != config.HeadDim / 2)
            throw new LookaheadException($"{label}: rope_freqs.weight must be F32 of [{config.HeadDim / 2}]");
        var factors = new ReadOnlySpan<float>(f.GetData(tensor), config.HeadDim / 2).ToArray();
        if (factors.Any(x => !(x > 0) || float.IsInfinity(x))) throw new LookaheadException($"{label}: rope_freqs.weight holds a value that is not positive and finite");
        return factors;
    }
}
