using System.Text.Json;

namespace Lookahead.Model;

/// <summary>The hyper-parameters of a supported Hugging Face causal LM, read from config.json.</summary>
public sealed record ModelConfig
{
    /// <summary>Architectures this library runs.</summary>
    public static readonly IReadOnlyList<string> SupportedArchitectures =
        ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"];

    /// <summary>Most decoder layers a model may declare (the native library's limit; real models have at most a
    /// few hundred).</summary>
    public const int MaxLayers = 4096;

    /// <summary>Largest vocabulary, width or head count a model may declare (the native library's limit).</summary>
    public const int MaxDimension = 1 << 20;

    /// <summary>The architecture name, e.g. LlamaForCausalLM.</summary>
    public required string Architecture { get; init; }
    /// <summary>Vocabulary size.</summary>
    public required int VocabSize { get; init; }
    /// <summary>Model (residual) width.</summary>
    public required int HiddenSize { get; init; }
    /// <summary>Feed-forward width.</summary>
    public required int IntermediateSize { get; init; }
    /// <summary>Number of decoder layers.</summary>
    public required int NumLayers { get; init; }
    /// <summary>Query heads.</summary>
    public required int NumHeads { get; init; }
    /// <summary>Key/value heads (grouped-query attention when fewer than query heads).</summary>
    public required int NumKvHeads { get; init; }
    /// <summary>Width of one head.</summary>
    public required int HeadDim { get; init; }
    /// <summary>Longest context the model was trained for.</summary>
    public required int MaxPositionEmbeddings { get; init; }
    /// <summary>RMSNorm epsilon.</summary>
    public required float RmsNormEps { get; init; }
    /// <summary>RoPE base.</summary>
    public required float RopeTheta { get; init; }
    /// <summary>RoPE scaling, Kind None when absent.</summary>
    public required RopeScaling RopeScaling { get; init; }
    /// <summary>Whether the output head reuses the token embedding.</summary>
    public required bool TieWordEmbeddings { get; init; }
    /// <summary>Whether q/k/v projections have biases (Qwen2).</summary>
    public required bool QkvBias { get; init; }
    /// <summary>Mistral's attention window, when set; contexts default to at most this length.</summary>
    public int? SlidingWindow { get; init; }
    /// <summary>Beginning-of-sequence token id, if the model has one.</summary>
    public int? BosTokenId { get; init; }
    /// <summary>Tokens that end generation.</summary>
    public required IReadOnlyList<int> EosTokenIds { get; init; }
    /// <summary>The dtype the checkpoint declares (informational).</summary>
    public string? TorchDtype { get; init; }

    /// <summary>Reads and validates config.json in a model folder.</summary>
    /// <exception cref="LookaheadException">config.json is missing, not JSON, or holds an unsupported or invalid value (the message names the field).</exception>
    public static ModelConfig Load(string path)
    {
        if (!File.Exists(path)) throw new LookaheadException($"config.json not found: '{path}'");
        return JsonFile.Read(path, root => root.ValueKind == JsonValueKind.Object
            ? Parse(root)
            : throw new LookaheadException($"config.json must hold a JSON object ('{path}')"));
    }

    /// <summary>Validates a parsed config.json object.</summary>
    /// <exception cref="LookaheadException">A field is missing, of the wrong type or out of range (the message names it).</exception>
    public static ModelConfig Parse(JsonElement root)
    {
        var reader = new ConfigReader(root);
        string architecture = reader.Architecture();
        bool isQwen2 = architecture == "Qwen2ForCausalLM";

        string activation = reader.OptionalString("hidden_act") ?? "silu";
        if (activation != "silu")
            throw new LookaheadException($"config.json: hidden_act '{activation}' is not supported (only 'silu')");
        if (reader.OptionalBool("attention_bias") == true)
            throw new LookaheadException("config.json: attention_bias = true is not supported");
        if (reader.OptionalBool("mlp_bias") == true)
            throw new LookaheadException("config.json: mlp_bias = true is not supported");

        int hidden = reader.RequiredInt("hidden_size");
        int heads = reader.RequiredInt("num_attention_heads");
        int kvHeads = reader.OptionalInt("num_key_value_heads") ?? heads;
        if (heads % kvHeads != 0)
            throw new LookaheadException($"config.json: num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kvHeads})");
        int? headDim = reader.OptionalInt("head_dim");
        if (headDim is null && hidden % heads != 0)
            throw new LookaheadException($"config.json: hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}) and head_dim is not given");
        int resolvedHeadDim = headDim ?? hidden / heads;
        if (resolvedHeadDim % 2 != 0)
            throw new LookaheadException($"config.json: head_dim ({resolvedHeadDim}) must be even for RoPE");

        int vocab = reader.RequiredInt("vocab_size");
        int layers = reader.RequiredInt("num_hidden_layers");
        if (layers > MaxLayers)
            throw new LookaheadException($"config.json: num_hidden_layers ({layers}) exceeds the supported {MaxLayers}");
        foreach ((string name, int value) in new[] { ("vocab_size", vocab), ("hidden_size", hidden), ("num_attention_heads", heads),
                     ("intermediate_size", reader.RequiredInt("intermediate_size")) })
        {
            if (value > MaxDimension)
                throw new LookaheadException($"config.json: {name} ({value}) exceeds the supported {MaxDimension}");
        }
        int? bos = reader.OptionalTokenId("bos_token_id");
        IReadOnlyList<int> eos = reader.TokenIdList("eos_token_id");
        foreach ((string name, int id) in eos.Select(id => ("eos_token_id", id)).Concat(bos is int b ? [("bos_token_id", b)] : []))
        {
            if (id >= vocab)
                throw new LookaheadException($"config.json: {name} {id} is outside the vocabulary (vocab_size {vocab})");
        }

        int? slidingWindow = null;
        if (architecture == "MistralForCausalLM" || reader.OptionalBool("use_sliding_window") == true)
            slidingWindow = reader.OptionalInt("sliding_window");

        return new ModelConfig
        {
            Architecture = architecture,
            VocabSize = vocab,
            HiddenSize = hidden,
            IntermediateSize = reader.RequiredInt("intermediate_size"),
            NumLayers = layers,
            NumHeads = heads,
            NumKvHeads = kvHeads,
            HeadDim = resolvedHeadDim,
            MaxPositionEmbeddings = reader.OptionalInt("max_position_embeddings") ?? 2048,
            RmsNormEps = (float)(reader.OptionalPositiveDouble("rms_norm_eps") ?? 1e-6),
            RopeTheta = (float)(reader.OptionalPositiveDouble("rope_theta") ?? 10000.0),
            RopeScaling = reader.RopeScaling(),
            TieWordEmbeddings = reader.OptionalBool("tie_word_embeddings") ?? false,
            QkvBias = isQwen2,
            SlidingWindow = slidingWindow,
            BosTokenId = bos,
            EosTokenIds = eos,
            TorchDtype = reader.OptionalString("torch_dtype"),
        };
    }

    /// <summary>Typed access to config.json fields with messages that name the field.</summary>
    private readonly struct ConfigReader(JsonElement root)
    {
        public string Architecture()
        {
            string? name = null;
            if (root.TryGetProperty("architectures", out JsonElement list) && list.ValueKind == JsonValueKind.Array &&
                list.GetArrayLength() > 0 && list[0].ValueKind == JsonValueKind.String)
            {
                name = list[0].GetString();
            }
            else if (OptionalString("model_type") is { } modelType)
            {
                name = modelType switch
                {
                    "llama" => "LlamaForCausalLM",
                    "mistral" => "MistralForCausalLM",
                    "qwen2" => "Qwen2ForCausalLM",
                    _ => modelType,
                };
            }
            if (name is null)
                throw new LookaheadException("config.json: neither 'architectures' nor 'model_type' names the architecture");
            if (!SupportedArchitectures.Contains(name))
                throw new LookaheadException(
                    $"config.json: architecture '{name}' is not supported (supported: {string.Join(", ", SupportedArchitectures)})");
            return name;
        }

        public int RequiredInt(string name) =>
            OptionalInt(name) ?? throw new LookaheadException($"config.json: required field '{name}' is missing");

        public int? OptionalInt(string name)
        {
            if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int result) || result <= 0)
                throw new LookaheadException($"config.json: '{name}' must be a positive integer, got {value.GetRawText()}");
            return result;
        }

        public double? OptionalPositiveDouble(string name)
        {
            if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double result) || !(result > 0) ||
                double.IsInfinity(result))
                throw new LookaheadException($"config.json: '{name}' must be a positive number, got {value.GetRawText()}");
            return result;
        }

        public bool? OptionalBool(string name)
        {
            if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
            return value.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new LookaheadException($"config.json: '{name}' must be true or false, got {value.GetRawText()}"),
            };
        }

        public string? OptionalString(string name)
        {
            if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
            if (value.ValueKind != JsonValueKind.String)
                throw new LookaheadException($"config.json: '{name}' must be a string, got {value.GetRawText()}");
            return value.GetString();
        }

        public int? OptionalTokenId(string name)
        {
            if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return null;
            return TokenId(name, value);
        }

        public IReadOnlyList<int> TokenIdList(string name)
        {
            if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return [];
            if (value.ValueKind != JsonValueKind.Array) return [TokenId(name, value)];
            return value.EnumerateArray().Select(item => TokenId(name, item)).ToArray();
        }

        public RopeScaling RopeScaling()
        {
            var none = new RopeScaling(RopeScalingKind.None, 1, 1, 1, 0);
            if (!root.TryGetProperty("rope_scaling", out JsonElement value) || value.ValueKind == JsonValueKind.Null) return none;
            if (value.ValueKind != JsonValueKind.Object)
                throw new LookaheadException("config.json: 'rope_scaling' must be an object or null");
            var scaling = new ConfigReader(value);
            string type = scaling.OptionalString("rope_type") ?? scaling.OptionalString("type") ?? "default";
            double factor = scaling.OptionalPositiveDouble("factor") ?? 1.0;
            return type switch
            {
                "default" => none,
                "linear" => new RopeScaling(RopeScalingKind.Linear, factor, 1, 1, 0),
                "llama3" => new RopeScaling(RopeScalingKind.Llama3, factor,
                    scaling.OptionalPositiveDouble("low_freq_factor") ?? 1.0,
                    scaling.OptionalPositiveDouble("high_freq_factor") ?? 4.0,
                    scaling.OptionalInt("original_max_position_embeddings") ?? 8192),
                _ => throw new LookaheadException(
                    $"config.json: rope_scaling type '{type}' is not supported (supported: linear, llama3)"),
            };
        }

        private static int TokenId(string name, JsonElement value)
        {
            if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt32(out int id) || id < 0)
                throw new LookaheadException($"config.json: '{name}' must hold non-negative token ids, got {value.GetRawText()}");
            return id;
        }
    }
}
