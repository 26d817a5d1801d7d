using Lookahead.Decoding;
using Lookahead.Drafting;

namespace Lookahead.Cli;

/// <summary>The decoding options shared by generate (and later bench): mode, draft shape and trie file.</summary>
internal static class DecodingArguments
{
    // "plain" is one forward pass per token (greedy, or sampling when sampling is on); "greedy" names it too.
    private static readonly Dictionary<string, DecodingMode> Modes = new()
    {
        ["lookahead"] = DecodingMode.Lookahead,
        ["plain"] = DecodingMode.Greedy,
        ["greedy"] = DecodingMode.Greedy,
    };
    private static readonly Dictionary<string, DraftMode> DraftModes = new()
    {
        ["hierarchical"] = DraftMode.Hierarchical,
        ["parallel"] = DraftMode.Parallel,
        ["single"] = DraftMode.Single,
    };
    private static readonly Dictionary<string, FrequencySource> Sources = new()
    {
        ["mix"] = FrequencySource.Mix,
        ["input"] = FrequencySource.Input,
        ["output"] = FrequencySource.Output,
    };

    public static DecodingMode Mode(ArgumentReader reader) => reader.Choice("mode", DecodingMode.Lookahead, Modes);

    /// <summary>Draft options from the command line (bench reads its list of decoding lengths itself).</summary>
    public static DraftOptions Drafts(ArgumentReader reader, bool readDecodingLength = true)
    {
        var defaults = new DraftOptions();
        DraftOptions options = readDecodingLength ? WithLength(defaults, reader.String("decoding-length") ?? "auto") : defaults;
        return options with
        {
            BranchLength = reader.Int("branch-length", 1, 256) ?? defaults.BranchLength,
            MaxQueryLength = reader.Int("max-query-length", 1, 64) ?? defaults.MaxQueryLength,
            Mode = reader.Choice("draft-mode", defaults.Mode, DraftModes),
            Frequency = reader.Choice("freq", defaults.Frequency, Sources),
        };
    }

    /// <summary>
    /// The sampling settings: each option given overrides the model's default (generation_config.json); a
    /// temperature above 0 turns sampling on. Out-of-range values are usage errors naming the option.
    /// </summary>
    public static SamplingOptions Sampling(ArgumentReader reader, SamplingOptions defaults)
    {
        static bool Finite(float x) => float.IsFinite(x);
        SamplingOptions sampling = defaults with
        {
            Temperature = reader.Float("temperature", x => Finite(x) && x >= 0, "a number >= 0 (0 is greedy)") ?? defaults.Temperature,
            TopK = reader.Int("top-k", 0, int.MaxValue) ?? defaults.TopK,
            TopP = reader.Float("top-p", x => x > 0 && x <= 1, "in (0, 1]") ?? defaults.TopP,
            MinP = reader.Float("min-p", x => x >= 0 && x <= 1, "in [0, 1]") ?? defaults.MinP,
            RepetitionPenalty = reader.Float("repetition-penalty", x => Finite(x) && x > 0, "a number > 0 (1 is off)") ?? defaults.RepetitionPenalty,
            PresencePenalty = reader.Float("presence-penalty", Finite, "a finite number (0 is off)") ?? defaults.PresencePenalty,
            FrequencyPenalty = reader.Float("frequency-penalty", Finite, "a finite number (0 is off)") ?? defaults.FrequencyPenalty,
            Seed = reader.String("seed") is { } seedText
                ? ulong.TryParse(seedText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out ulong seed)
                    ? seed
                    : throw new UsageException($"--seed must be an integer in 0..{ulong.MaxValue}, got '{seedText}'")
                : defaults.Seed,
        };
        return sampling;
    }

    /// <summary>Checks the sampling options' values before any work (the model's defaults come later).</summary>
    public static void CheckSampling(ArgumentReader reader) => Sampling(reader, new SamplingOptions());

    /// <summary>"auto" (adaptive, up to the default maximum) or a fixed number of draft nodes.</summary>
    public static DraftOptions WithLength(DraftOptions options, string text)
    {
        if (text == "auto") return options with { Adaptive = true };
        if (int.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out int length) &&
            length is >= 1 and <= 512)
            return options with { Adaptive = false, DecodingLength = length };
        throw new UsageException($"--decoding-length must be auto or an integer in 1..512, got '{text}'");
    }

    /// <summary>Checks --trie (a file, or a new file in an existing folder) and --warmup before any work.</summary>
    public static void CheckPaths(ArgumentReader reader)
    {
        if (reader.String("trie") is { } trie) InputPaths.RequireWritableFile(trie, "trie file");
        if (reader.String("warmup") is { } warmup) InputPaths.RequireFile(warmup, "warm-up prompts file");
    }

    /// <summary>A trie for the model, loaded from --trie FILE when that file exists.</summary>
    public static TokenTrie CreateTrie(ArgumentReader reader, LanguageModel model, DraftOptions drafts)
    {
        var trie = new TokenTrie(Generator.DefaultTrieOptions(model, drafts.BranchLength));
        if (reader.String("trie") is { } path && File.Exists(path))
        {
            try
            {
                trie.Load(path, model.Config.VocabSize);
            }
            catch
            {
                trie.Dispose();
                throw;
            }
        }
        return trie;
    }

    /// <summary>Saves the trie to --trie FILE, if given.</summary>
    public static void SaveTrie(ArgumentReader reader, TokenTrie trie)
    {
        if (reader.String("trie") is { } path) trie.Save(path);
    }

    /// <summary>Generates every prompt of --warmup FILE into the trie (outputs discarded), with progress on stderr.</summary>
    public static void WarmUp(ArgumentReader reader, LanguageModel model, Generator generator, GenerationOptions options)
    {
        if (reader.String("warmup") is not { } path) return;
        List<PromptLine> prompts = PromptFile.Read(path, generator.Context.ContextLength);
        GenerationOptions warmup = options with { Mode = DecodingMode.Lookahead };
        for (int i = 0; i < prompts.Count; i++)
        {
            StatusLine.Write($"warm-up: {i + 1}/{prompts.Count}");
            generator.Generate(prompts[i].Tokens(model), warmup);
        }
        StatusLine.End();
    }
}
