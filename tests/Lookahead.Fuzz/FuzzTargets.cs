using System.Text;
using Lookahead.Cli;
using Lookahead.Cli.Commands;
using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Model;
using Lookahead.Model.Gguf;
using Lookahead.Tokenization;

namespace Lookahead.Fuzz;

/// <summary>
/// One fuzz target per parser a user's input reaches. Each takes the raw bytes of one input and may end
/// only by returning or with the error a user sees (LookaheadException, or UsageException for the command
/// line); any other exception, a hang or a crash is a bug.
/// </summary>
public static class FuzzTargets
{
    private static readonly Dictionary<string, Action<byte[]>> Targets = new()
    {
        ["safetensors"] = SafeTensorsHeader,
        ["gguf"] = GgufModel,
        ["config"] = ConfigJson,
        ["shard-index"] = ShardIndex,
        ["trie"] = TrieThenRequest,
        ["tokenizer"] = TokenizerModel,
        ["tokenizer-json"] = TokenizerJson,
        ["chat-template"] = ChatTemplateSource,
        ["prompts"] = PromptsJsonl,
        ["cli-args"] = CommandLine,
    };

    /// <summary>Runs a target: true when the input was accepted, false when it was refused with the error a
    /// user is meant to see; anything else escapes.</summary>
    public static bool Run(string target, byte[] input)
    {
        try
        {
            Targets[target](input);
            return true;
        }
        catch (Exception e) when (e is LookaheadException or UsageException)
        {
            return false;
        }
    }

    // Inputs become files in one folder per process (the parsers read paths, as users give them), removed
    // when the process ends.
    private static readonly string Scratch = CreateScratch();

    private static string CreateScratch()
    {
        string folder = Directory.CreateTempSubdirectory("lookahead-fuzz-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(folder, recursive: true); } catch (IOException) { }
        };
        return folder;
    }

    private static string Write(string name, byte[] bytes)
    {
        string path = Path.Combine(Scratch, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void SafeTensorsHeader(byte[] input)
    {
        using SafeTensorsFile file = SafeTensorsFile.Open(Write("model.safetensors", input));
        foreach (TensorInfo tensor in file.Tensors.Values) _ = file.GetSpan(tensor).Length;
    }

    // A GGUF file read as a model: metadata, every tensor a slot needs (q/k rows reordered), the vocabulary.
    private static void GgufModel(byte[] input)
    {
        using GgufCheckpoint checkpoint = GgufCheckpoint.Open(Write("model.gguf", input));
        foreach (TensorSlot slot in TensorMap.Slots(checkpoint.Config))
        {
            GgufTensor tensor = checkpoint.Tensor(slot);
            if (checkpoint.NeedsRopeReorder(slot)) _ = checkpoint.RotateHalfRows(slot, tensor);
        }
        _ = RopeFrequencies.Compute(checkpoint.Config);
        _ = TextTokenizer.TryLoadGguf(checkpoint.File, checkpoint.Config, out _)?.Encode("Once upon a time, <s> 🙂");
    }

    private static void ConfigJson(byte[] input)
    {
        ModelConfig config = ModelConfig.Load(Write("config.json", input));
        _ = RopeFrequencies.Compute(config);
    }

    // A folder with two tiny shards and the fuzzed index naming them.
    private static readonly Lazy<string> ShardFolder = new(() =>
    {
        string folder = Directory.CreateDirectory(Path.Combine(Scratch, "sharded")).FullName;
        File.Copy(Path.Combine(AppContext.BaseDirectory, "models", "stories260K", "config.json"), Path.Combine(folder, "config.json"));
        for (int shard = 1; shard <= 2; shard++)
        {
            new SafeTensorsWriter().Add($"t{shard}", TensorDtype.F32, [2], new byte[8])
                .Write(Path.Combine(folder, $"model-0000{shard}-of-00002.safetensors"));
        }
        return folder;
    });

    private static void ShardIndex(byte[] input)
    {
        File.WriteAllBytes(Path.Combine(ShardFolder.Value, "model.safetensors.index.json"), input);
        using ModelCheckpoint checkpoint = ModelCheckpoint.Open(ShardFolder.Value);
        _ = checkpoint.TensorNames.Count();
    }

    // The trie file loads, then serves a request: the walks that follow a load (squeeze, drafts) are
    // where a hostile but checksum-valid file would bite.
    private static void TrieThenRequest(byte[] input)
    {
        using var trie = new TokenTrie(new TrieOptions { MaxNodes = 4096, MaxNodesPerRoot = 512, WindowLength = 13 });
        trie.Load(Write("fuzz.trie", input), vocabSize: 64);
        int[] history = [1, 5, 9, 5, 9, 3, 1, 5];
        trie.BeginRequest(history);
        var builder = new DraftBuilder(new DraftOptions { DecodingLength = 16, BranchLength = 12 });
        var draft = new DraftTree(16);
        builder.Build(trie, history, draft);
        for (int i = 0; i < 64; i++) trie.AppendOutput([(i * 7) % 64]);
        trie.Squeeze();
        trie.EndRequest();
        // What the trie saves, it loads back.
        string saved = Path.Combine(Scratch, "saved.trie");
        trie.Save(saved);
        using var reloaded = new TokenTrie(trie.Options);
        try
        {
            reloaded.Load(saved, vocabSize: 64);
        }
        catch (LookaheadException e)
        {
            throw new InvalidOperationException($"a trie this library saved does not load back: {e.Message}", e);
        }
    }

    private static readonly Lazy<ModelConfig> StoriesConfig =
        new(() => ModelConfig.Load(Path.Combine(AppContext.BaseDirectory, "models", "stories260K", "config.json")));

    private static void TokenizerModel(byte[] input)
    {
        string folder = Directory.CreateDirectory(Path.Combine(Scratch, "tokenizer")).FullName;
        File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), input);
        TextTokenizer? tokenizer = TextTokenizer.TryLoad(folder, StoriesConfig.Value, out _);
        if (tokenizer is null) return;
        int[] ids = tokenizer.Encode("Once upon a time, 日本 😀");
        _ = tokenizer.Decode(ids);
        StreamingDetokenizer stream = tokenizer.CreateStream(ids);
        _ = stream.Append(ids) + stream.Flush();
    }

    private static void TokenizerJson(byte[] input)
    {
        string folder = Directory.CreateDirectory(Path.Combine(Scratch, "tokenizer-json")).FullName;
        File.WriteAllBytes(Path.Combine(folder, "tokenizer.json"), input);
        TextTokenizer tokenizer = TextTokenizer.TryLoad(folder, StoriesConfig.Value with { VocabSize = 1 << 16 }, out _)!;
        int[] ids = tokenizer.Encode("Once upon a time, 日本 😀 e\u0301 <|endoftext|>  12345\n\n");
        _ = tokenizer.Decode(ids, skipSpecialTokens: false);
        StreamingDetokenizer stream = tokenizer.CreateStream(ids);
        _ = stream.Append(ids) + stream.Flush();
    }

    // A template's own errors are what a user sees for it (the server answers them with a 400).
    private static void ChatTemplateSource(byte[] input)
    {
        try
        {
            ChatTemplate template = ChatTemplate.Parse(Encoding.UTF8.GetString(input));
            _ = template.Render([new ChatTurn("system", "Be brief."), new ChatTurn("user", "Hi {{ there }}"), new ChatTurn("assistant", "Hello."),
                new ChatTurn("user", "Again")], addGenerationPrompt: true, new Dictionary<string, string> { ["bos_token"] = "<s>", ["eos_token"] = "</s>" });
        }
        catch (Lookahead.Tokenization.Templates.TemplateException e)
        {
            throw new LookaheadException(e.Message, e);
        }
    }

    private static void PromptsJsonl(byte[] input)
    {
        foreach (PromptLine line in PromptFile.Read(Write("prompts.jsonl", input), contextLength: 64))
            _ = line.PromptIds?.Length ?? line.Prompt!.Length;
    }

    // NUL-separated arguments, the first naming the command, through its option reading (nothing is loaded or run).
    private static void CommandLine(byte[] input)
    {
        string[] args = Encoding.UTF8.GetString(input).Split('\0');
        CliCommand command = args[0] switch
        {
            "bench" => CommandLineTable.Bench,
            "info" => CommandLineTable.Info,
            _ => CommandLineTable.Generate,
        };
        IReadOnlySet<string> options = command.ValueOptions, flags = command.Flags;
        List<string> rest = ArgumentReader.TakeGlobalFlags(args[1..], options, out _, out _);
        var reader = new ArgumentReader(rest, options, flags);
        _ = reader.Int("max-tokens", 0, 1 << 24);
        _ = ModelArguments.Context(reader);
        if (!options.Contains("branch-length")) return;
        DraftOptions drafts = DecodingArguments.Drafts(reader, readDecodingLength: options.Contains("mode"));
        drafts.Validate();
        if (reader.String("decoding-length") is { } lengths)
            foreach (string length in lengths.Split(',')) DecodingArguments.WithLength(drafts, length);
    }
}
