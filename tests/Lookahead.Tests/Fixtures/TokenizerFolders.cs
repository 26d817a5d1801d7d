using System.IO.Compression;
using Lookahead.Model;
using Lookahead.Tokenization;

namespace Lookahead.Tests.Fixtures;

/// <summary>
/// The real tokenizer.json files under tests/data/tokenizers (gzipped in the repository), unpacked into
/// a scratch model folder and loaded as a model of that vocabulary would load them.
/// </summary>
public static class TokenizerFolders
{
    public static readonly string[] Names = ["llama3", "qwen3", "gpt2"];

    public static string Source(string name) => Path.Combine(AppContext.BaseDirectory, "tokenizers", name);

    /// <summary>A folder with the tokenizer's tokenizer.json and tokenizer_config.json.</summary>
    public static string Unpack(string name)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"lookahead-tokenizer-{name}-{Environment.ProcessId}");
        string json = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(json)) return folder;
        Directory.CreateDirectory(folder);
        using (FileStream packed = File.OpenRead(Path.Combine(Source(name), "tokenizer.json.gz")))
        using (var unpacked = new GZipStream(packed, CompressionMode.Decompress))
        using (FileStream output = File.Create(json + ".partial"))
            unpacked.CopyTo(output);
        File.Move(json + ".partial", json, overwrite: true);
        File.Copy(Path.Combine(Source(name), "tokenizer_config.json"), Path.Combine(folder, "tokenizer_config.json"), overwrite: true);
        return folder;
    }

    public static TextTokenizer Load(string name) =>
        TextTokenizer.TryLoad(Unpack(name), ConfigWithVocabulary(1 << 18), out _) ?? throw new InvalidOperationException($"{name}: no tokenizer");

    /// <summary>A model configuration that only its vocabulary size matters for here.</summary>
    public static ModelConfig ConfigWithVocabulary(int vocabSize) => new()
    {
        Architecture = "LlamaForCausalLM",
        VocabSize = vocabSize,
        HiddenSize = 64,
        IntermediateSize = 128,
        NumLayers = 1,
        NumHeads = 1,
        NumKvHeads = 1,
        HeadDim = 64,
        MaxPositionEmbeddings = 512,
        RmsNormEps = 1e-5f,
        RopeTheta = 10000,
        RopeScaling = new RopeScaling(RopeScalingKind.None, 1, 1, 1, 0),
        TieWordEmbeddings = false,
        QkvBias = false,
        EosTokenIds = [],
    };
}
