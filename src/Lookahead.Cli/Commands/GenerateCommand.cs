using System.Globalization;
using System.Text;
using System.Text.Json;
using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.IO;
using Lookahead.Tokenization;

namespace Lookahead.Cli.Commands;

/// <summary>lookahead generate: one prompt in, a greedy-equivalent continuation out.</summary>
internal static class GenerateCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var reader = new ArgumentReader(args, CommandLineTable.Generate.ValueOptions, CommandLineTable.Generate.Flags);
        int sources = new[] { "prompt", "prompt-file", "prompt-ids" }.Count(reader.Has);
        if (sources > 1) throw new UsageException("give only one of --prompt, --prompt-file and --prompt-ids");
        var options = new GenerationOptions
        {
            MaxTokens = reader.Int("max-tokens", 0, 1 << 24) ?? 256,
            Mode = DecodingArguments.Mode(reader),
            Drafts = DecodingArguments.Drafts(reader),
        };
        ContextOptions contextOptions = ModelArguments.Context(reader);
        bool json = reader.Has("json"), profile = reader.Has("profile");
        string folder = ModelArguments.Resolve(reader);
        // Every path is checked before the model loads: a typo must not cost a load and a generation.
        if (reader.String("prompt-file") is { } promptFile) InputPaths.RequireFile(promptFile, "prompt file");
        DecodingArguments.CheckPaths(reader);
        DecodingArguments.CheckSampling(reader);

        using LanguageModel model = ModelArguments.Load(folder);
        options = options with { Sampling = DecodingArguments.Sampling(reader, model.DefaultSampling) };
        int[] prompt = ReadPrompt(reader, model, contextOptions.ContextLength ?? model.DefaultContextLength());
        using InferenceContext context = model.CreateContext(contextOptions);
        using TokenTrie trie = DecodingArguments.CreateTrie(reader, model, options.Drafts);
        var generator = new Generator(context, trie);
        DecodingArguments.WarmUp(reader, model, generator, options);
        // After the warm-up, so that only this prompt's prefill and decoding are timed.
        if (profile) context.Profiling = ProfilingMode.Stages;

        GenerationResult result;
        if (json)
        {
            result = generator.Generate(prompt, options);
            string? text = model.Tokenizer is { } tokenizer ? DecodeContinuation(tokenizer, prompt, result.Tokens) : null;
            DecodingArguments.SaveTrie(reader, trie);
            WriteJson(model, context, options, prompt, result, text, profile ? context.GetProfile() : null);
            return 0;
        }

        TextWriter output = Console.Out;
        StreamingDetokenizer? stream = model.Tokenizer?.CreateStream(prompt);
        result = generator.Generate(prompt, options, tokens =>
        {
            if (stream is not null)
            {
                output.Write(stream.Append(tokens));
            }
            else
            {
                foreach (int token in tokens) output.Write(string.Create(CultureInfo.InvariantCulture, $"{token} "));
            }
            output.Flush();
        });
        if (stream is not null) output.Write(stream.Flush());
        output.WriteLine();
        output.WriteLine(StatisticsLine(options, context, result));
        if (profile) output.WriteLine(ProfileLine(context.GetProfile()));
        DecodingArguments.SaveTrie(reader, trie);
        return 0;
    }

    // Stages in the order the library lists them, with total milliseconds and calls.
    private static string ProfileLine(IReadOnlyList<StageTime> stages) =>
        "[profile, ms (calls) | " + string.Join(" | ", stages.Where(s => s.Calls > 0).Select(s =>
            string.Create(CultureInfo.InvariantCulture, $"{s.Name} {s.Total.TotalMilliseconds:F3} ({s.Calls})"))) + "]";

    /// <summary>Largest prompt file read; a prompt must also fit the context, which is checked before encoding.</summary>
    private const long MaxPromptFileBytes = 64L * 1024 * 1024;

    private static int[] ReadPrompt(ArgumentReader reader, LanguageModel model, int contextLength)
    {
        if (reader.String("prompt-ids") is { } idsText) return ParseIds(idsText);
        string text;
        if (reader.String("prompt-file") is { } file)
        {
            byte[] bytes = BoundedFile.ReadAllBytes(file, MaxPromptFileBytes, "prompt file");
            BoundedFile.RequireUtf8(bytes, $"prompt file '{file}'");
            text = Encoding.UTF8.GetString(bytes);
        }
        else
        {
            text = reader.String("prompt") ?? "";
        }
        TextTokenizer tokenizer = model.Tokenizer ?? throw new LookaheadException(
            $"the model folder has no supported tokenizer ({model.TokenizerStatus}); pass the prompt with --prompt-ids");
        if (tokenizer.CertainlyExceeds(text, contextLength))
            throw new LookaheadException(
                $"the prompt ({text.Length:N0} characters) cannot fit the context of {contextLength} tokens; shorten it or raise --context");
        int[] prompt = tokenizer.Encode(text);
        if (prompt.Length == 0)
            throw new LookaheadException("the prompt is empty and the model adds no BOS token; give a prompt");
        return prompt;
    }

    private static int[] ParseIds(string text)
    {
        string[] parts = text.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new UsageException("--prompt-ids needs at least one token id");
        return parts.Select(part => int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int id) && id >= 0
            ? id
            : throw new UsageException($"--prompt-ids: '{part}' is not a token id")).ToArray();
    }

    private static string DecodeContinuation(TextTokenizer tokenizer, int[] prompt, int[] generated)
    {
        StreamingDetokenizer stream = tokenizer.CreateStream(prompt);
        return stream.Append(generated) + stream.Flush();
    }

    // One forward pass per token is "greedy" when it is, "plain" when it samples.
    private static string ModeName(GenerationOptions options) =>
        options.Mode == DecodingMode.Lookahead ? "lookahead" : options.Sampling.IsGreedy ? "greedy" : "plain";

    private static string StatisticsLine(GenerationOptions options, InferenceContext context, GenerationResult result)
    {
        GenerationStats s = result.Stats;
        string drafts = options.Mode == DecodingMode.Lookahead
            ? $" | {s.MeanTokensPerStep:F2} tokens/step, {s.AcceptedTokens} of {s.DraftedTokens} drafted accepted"
            : "";
        string sampled = result.Seed is ulong seed
            ? string.Create(CultureInfo.InvariantCulture, $" | sampled, temperature {options.Sampling.Temperature}, seed {seed}")
            : "";
        return string.Create(CultureInfo.InvariantCulture,
            $"[{ModeName(options)}{sampled} | {context.Backend.ToString().ToLowerInvariant()} | " +
            $"{s.PromptTokens} prompt + {s.GeneratedTokens} generated tokens | {s.Steps} steps{drafts} | " +
            $"{s.DecodeTime.TotalSeconds:F3} s | {s.TokensPerSecond:F1} tokens/s | prefill {s.PrefillTokensPerSecond:F1} tokens/s | " +
            $"{FinishName(result.FinishReason)}]");
    }

    private static string FinishName(FinishReason reason) => reason switch
    {
        FinishReason.EndOfSequence => "eos",
        FinishReason.MaxTokens => "max_tokens",
        _ => "context_full",
    };

    private static void WriteJson(LanguageModel model, InferenceContext context, GenerationOptions options, int[] prompt,
        GenerationResult result, string? text, IReadOnlyList<StageTime>? stages)
    {
        GenerationStats s = result.Stats;
        using Stream stdout = Console.OpenStandardOutput();
        using (var json = new Utf8JsonWriter(stdout))
        {
            json.WriteStartObject();
            json.WriteString("mode", ModeName(options));
            json.WriteString("backend", context.Backend.ToString().ToLowerInvariant());
            json.WriteString("model", model.Folder);
            json.WriteNumber("prompt_tokens", prompt.Length);
            json.WriteNumber("generated_tokens", s.GeneratedTokens);
            json.WriteStartArray("token_ids");
            foreach (int token in result.Tokens) json.WriteNumberValue(token);
            json.WriteEndArray();
            if (text is null) json.WriteNull("text");
            else json.WriteString("text", text);
            json.WriteNumber("steps", s.Steps);
            json.WriteNumber("seconds", s.DecodeTime.TotalSeconds);
            json.WriteNumber("tokens_per_second", s.TokensPerSecond);
            json.WriteNumber("drafted_tokens", s.DraftedTokens);
            json.WriteNumber("accepted_tokens", s.AcceptedTokens);
            json.WriteNumber("mean_tokens_per_step", s.MeanTokensPerStep);
            json.WriteNumber("prefill_seconds", s.PrefillTime.TotalSeconds);
            json.WriteNumber("prefill_tokens_per_second", s.PrefillTokensPerSecond);
            json.WriteString("finish_reason", FinishName(result.FinishReason));
            json.WriteNumber("threads", context.Threads);
            json.WriteNumber("weight_bytes_per_token", model.WeightBytesPerToken);
            // Weight bytes streamed per second of decoding (one pass over the weights per step).
            json.WriteNumber("weight_gbps", s.DecodeTime > TimeSpan.Zero ? model.WeightBytesPerToken * (double)s.Steps / s.DecodeTime.TotalSeconds / 1e9 : 0);
            if (result.Seed is ulong seed)
            {
                SamplingOptions sampling = options.Sampling;
                json.WriteStartObject("sampling");
                json.WriteNumber("temperature", sampling.Temperature);
                json.WriteNumber("top_k", sampling.TopK);
                json.WriteNumber("top_p", sampling.TopP);
                json.WriteNumber("min_p", sampling.MinP);
                json.WriteNumber("repetition_penalty", sampling.RepetitionPenalty);
                json.WriteNumber("presence_penalty", sampling.PresencePenalty);
                json.WriteNumber("frequency_penalty", sampling.FrequencyPenalty);
                json.WriteNumber("seed", seed);
                json.WriteEndObject();
            }
            if (options.Mode == DecodingMode.Lookahead)
            {
                json.WriteStartObject("drafts");
                if (options.Drafts.Adaptive) json.WriteString("decoding_length", "auto");
                json.WriteNumber(options.Drafts.Adaptive ? "max_decoding_length" : "decoding_length", options.Drafts.DecodingLength);
                json.WriteNumber("branch_length", options.Drafts.BranchLength);
                json.WriteNumber("max_query_length", options.Drafts.MaxQueryLength);
                json.WriteString("draft_mode", options.Drafts.Mode.ToString().ToLowerInvariant());
                json.WriteString("freq", options.Drafts.Frequency.ToString().ToLowerInvariant());
                json.WriteEndObject();
            }
            if (stages is not null)
            {
                json.WriteStartArray("stages");
                foreach (StageTime stage in stages.Where(s => s.Calls > 0))
                {
                    json.WriteStartObject();
                    json.WriteString("name", stage.Name);
                    json.WriteNumber("calls", stage.Calls);
                    json.WriteNumber("ms", stage.Total.TotalMilliseconds);
                    json.WriteEndObject();
                }
                json.WriteEndArray();
            }
            json.WriteEndObject();
        }
        stdout.WriteByte((byte)'\n');
    }
}
