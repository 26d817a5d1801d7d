using System.Diagnostics;
using System.Globalization;
using LLama;
using LLama.Common;
using LLama.Native;
using Lookahead.Decoding;
using Lookahead.Model;
using Lookahead.Model.Gguf;

namespace Lookahead.Benchmarks;

/// <summary>
/// Our greedy decoding against llama.cpp's (CPU backend, through LLamaSharp) on the same weights, prompt
/// and thread count, in one run; with lookahead on our side too, and whether the greedy ids agree. The
/// runs alternate (our greedy, llama.cpp's, our lookahead from an empty trie, ...) for --rounds rounds, so a
/// change in the machine's memory speed during the run hits all; medians and the median of the per-round
/// greedy ratios are reported. With --gguf, the same comparison on that one file (any file both runtimes
/// load: llama.cpp's, or one `lookahead quantize` wrote) instead of an export and llama.cpp's rewrites.
///   dotnet run -c Release --project bench/Lookahead.Benchmarks -- peers [--model DIR | --gguf FILE] [--f16]
///       [--threads N] [--tokens N] [--rounds N] [--prompt-ids 1,2,3]
/// </summary>
internal static class Peers
{
    public static int Run(string[] args)
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "models", "stories260K");
        string? file = null;
        bool f16 = false;
        int threads = Environment.ProcessorCount, tokens = 256, rounds = 3;
        int[] prompt = [1, 403, 407, 261, 378];  // "Once upon a time" in the bundled tokenizer
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--model": folder = Value(); break;
                case "--gguf": file = Value(); break;
                case "--f16": f16 = true; break;
                case "--threads": threads = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--tokens": tokens = int.Parse(Value(), CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = Math.Max(1, int.Parse(Value(), CultureInfo.InvariantCulture)); break;
                case "--prompt-ids": prompt = Value().Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); break;
                default: throw new ArgumentException($"unknown argument {args[i]}");
            }
        }

        if (file is not null)
        {
            Console.WriteLine($"file {file}, {threads} threads, {tokens} tokens after a {prompt.Length}-token prompt, {rounds} alternating rounds");
            CompareOn(file, Path.GetFileName(file), prompt, tokens, threads, rounds);
            return 0;
        }
        using LanguageModel model = LanguageModel.Load(folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, Threads = threads });
        using var generator = new Generator(context);
        var greedy = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = tokens, StopTokens = [] };
        generator.Generate(prompt, greedy with { MaxTokens = 16 });  // warm-up
        // Warms the lookahead path's code (JIT) on another generator and another prompt, so the timed
        // lookahead runs below start with an empty trie and an untrained sizer but compiled code, like a
        // server's first request after start-up.
        using (var warmup = new Generator(context))
            warmup.Generate(prompt.Select(id => id + 1).ToArray(), greedy with { Mode = DecodingMode.Lookahead, MaxTokens = 64 });

        string gguf = Path.Combine(Path.GetTempPath(), $"lookahead-peers-{Guid.NewGuid():N}.gguf");
        try
        {
            GgufWriter.Write(model.Folder, gguf, f16 ? GgufFileType.F16 : GgufFileType.F32);
            using var llama = new LlamaCpp(gguf, prompt.Length + tokens + 8, threads);
            llama.Greedy(prompt, 16);  // warm-up
            Rounds r = AlternatingRounds(context, generator, llama, prompt, greedy, rounds);
            double ourMedian = Median(r.Ours), theirMedian = Median(r.Theirs), lookaheadMedian = Median(r.Lookahead);
            double ratio = Median(r.Ours.Zip(r.Theirs, (a, b) => a / b).ToList());
            int agree = r.OurIds.Zip(r.TheirIds).TakeWhile(p => p.First == p.Second).Count();
            bool sameIds = r.SameIds;
            List<double> ourSpeeds = r.Ours, theirSpeeds = r.Theirs, lookaheadSpeeds = r.Lookahead;
            string Runs(List<double> speeds) => string.Join(", ", speeds.Select(v => v.ToString("F1", CultureInfo.InvariantCulture)));
            Console.WriteLine($"model {model.Folder} ({(f16 ? "F16" : "F32")} GGUF export), {threads} threads, {tokens} tokens after a {prompt.Length}-token prompt, {rounds} alternating rounds");
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"llama.cpp greedy:      {theirMedian,10:F1} tokens/s (median; runs {Runs(theirSpeeds)})"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lookahead greedy:      {ourMedian,10:F1} tokens/s (median; runs {Runs(ourSpeeds)}); per-round ratio median {ratio:F2}x llama.cpp"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"lookahead (auto):      {lookaheadMedian,10:F1} tokens/s (median; runs {Runs(lookaheadSpeeds)}; {lookaheadMedian / theirMedian:F2}x llama.cpp's median, same ids: {sameIds})"));
            Console.WriteLine($"greedy ids agree with llama.cpp: {agree} of {tokens}{(agree < tokens ? $" (first difference at token {agree})" : "")}");
            ReadLlamaCppFiles(model.Config, gguf, prompt, tokens, threads, rounds);
            return 0;
        }
        finally
        {
            File.Delete(gguf);
        }
    }

    // Files llama.cpp itself writes: its quantize tool rewrites the export as F16, Q8_0 and Q4_K_M. Our
    // reader loads each; on each file, our greedy and lookahead against llama.cpp's greedy in alternating
    // rounds, and how many greedy ids agree (with the logit gap where they first differ).
    private static void ReadLlamaCppFiles(ModelConfig config, string export, int[] prompt, int tokens, int threads, int rounds)
    {
        // Every quantized type (and llama.cpp's fallbacks) is blocks of 32 or more: row lengths must divide.
        bool blocksFit = config.HiddenSize % 32 == 0 && config.IntermediateSize % 32 == 0 && config.NumHeads * config.HeadDim % 32 == 0;
        foreach ((LLamaFtype type, string kind) in new[] { (LLamaFtype.MOSTLY_F16, "F16"), (LLamaFtype.MOSTLY_Q8_0, "Q8_0"), (LLamaFtype.MOSTLY_Q4_K_M, "Q4_K_M") })
        {
            if (type != LLamaFtype.MOSTLY_F16 && !blocksFit)
            {
                Console.WriteLine($"llama.cpp's {kind} file: not written (a row length is not a multiple of 32)");
                continue;
            }
            string path = $"{export}.llama-cpp-{kind}.gguf";
            try
            {
                if (!LLamaQuantizer.Quantize(export, path, type, threads)) throw new InvalidOperationException($"llama.cpp's quantize ({kind}) failed");
                CompareOn(path, $"llama.cpp's {kind} file", prompt, tokens, threads, rounds);
            }
            catch (LookaheadException e)
            {
                Console.WriteLine($"llama.cpp's {kind} file: not loadable by us: {e.Message}");
            }
            finally
            {
                File.Delete(path);
            }
        }
    }

    private static void CompareOn(string path, string label, int[] prompt, int tokens, int threads, int rounds)
    {
        using LanguageModel ours = LanguageModel.Load(path);
        using InferenceContext context = ours.CreateContext(new ContextOptions { Backend = Backend.Cpu, Threads = threads });
        var greedy = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = tokens, StopTokens = [] };
        using var generator = new Generator(context);
        generator.Generate(prompt, greedy with { MaxTokens = 16 });  // warm-up
        using var llama = new LlamaCpp(path, prompt.Length + tokens + 8, threads);
        llama.Greedy(prompt, 16);
        Rounds r = AlternatingRounds(context, generator, llama, prompt, greedy, rounds);
        int[] ourIds = r.OurIds, theirIds = r.TheirIds;
        int agree = ourIds.Zip(theirIds).TakeWhile(p => p.First == p.Second).Count();
        string types = string.Join(", ", ours.ParametersByDtype.OrderBy(p => p.Key).Select(p => $"{p.Key} {p.Value}"));
        double ratio = Median(r.Ours.Zip(r.Theirs, (a, b) => a / b).ToList());
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label} ({types} parameters): llama.cpp greedy {Median(r.Theirs):F1} tokens/s, ours greedy {Median(r.Ours):F1} " +
            $"(per-round ratio median {ratio:F2}x), ours lookahead {Median(r.Lookahead):F1} (same ids: {r.SameIds}); " +
            $"greedy ids agree {agree} of {tokens}{(agree < tokens ? FirstDifference(ours, prompt, ourIds, theirIds, agree) : "")}"));
    }

    // Where the two greedy runs part: our logits there, ours' top token against llama.cpp's pick. A gap
    // of a few hundredths is a near-tie that arithmetic order decides, not a wrong computation.
    private static string FirstDifference(LanguageModel model, int[] prompt, int[] ourIds, int[] theirIds, int at)
    {
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        int[] history = [.. prompt, .. ourIds[..at]];
        context.Prefill(history.AsSpan(0, history.Length - 1));
        context.Eval(history.AsSpan(history.Length - 1), default, LogitsMode.Last);
        var logits = new float[model.Config.VocabSize];
        context.CopyLogits(0, logits);
        float gap = logits[ourIds[at]] - logits[theirIds[at]];
        return string.Create(CultureInfo.InvariantCulture, $" (first difference at token {at}: our logit gap {gap:F4} between our {ourIds[at]} and llama.cpp's {theirIds[at]})");
    }

    private sealed record Rounds(List<double> Ours, List<double> Theirs, List<double> Lookahead, int[] OurIds, int[] TheirIds, bool SameIds);

    // Our greedy, llama.cpp's greedy and our lookahead, in turn, rounds times; each round's lookahead run
    // starts from an empty trie and an untrained sizer.
    private static Rounds AlternatingRounds(InferenceContext context, Generator generator, LlamaCpp llama, int[] prompt, GenerationOptions greedy, int rounds)
    {
        var result = new Rounds([], [], [], [], [], true);
        bool sameIds = true;
        int[] ourIds = [], theirIds = [];
        for (int round = 0; round < rounds; round++)
        {
            GenerationResult ours = generator.Generate(prompt, greedy);
            (theirIds, double speed) = llama.Greedy(prompt, greedy.MaxTokens);
            using var fresh = new Generator(context);
            GenerationResult lookahead = fresh.Generate(prompt, greedy with { Mode = DecodingMode.Lookahead });
            ourIds = ours.Tokens;
            sameIds &= lookahead.Tokens.SequenceEqual(ours.Tokens);
            result.Ours.Add(ours.Stats.TokensPerSecond);
            result.Theirs.Add(speed);
            result.Lookahead.Add(lookahead.Stats.TokensPerSecond);
        }
        return result with { OurIds = ourIds, TheirIds = theirIds, SameIds = sameIds };
    }

    private static double Median(List<double> values)
    {
        List<double> sorted = values.Order().ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }

    // llama.cpp's CPU backend with the GGUF loaded once; each greedy run gets a fresh context.
    private sealed class LlamaCpp : IDisposable
    {
        private readonly ModelParams _parameters;
        private readonly LLamaWeights _weights;

        public LlamaCpp(string path, int contextSize, int threads)
        {
            // llama.cpp logs every load step; keep only warnings and errors.
            if (!NativeLibraryConfig.LLama.LibraryHasLoaded)
                NativeLibraryConfig.All.WithLogCallback((level, message) =>
                {
                    if (level is LLamaLogLevel.Warning or LLamaLogLevel.Error) Console.Error.Write(message);
                });
            _parameters = new ModelParams(path)
            {
                ContextSize = (uint)contextSize,
                BatchSize = 512,
                Threads = threads,
                BatchThreads = threads,
                GpuLayerCount = 0,
            };
            _weights = LLamaWeights.LoadFromFile(_parameters);
        }

        public (int[] Ids, double TokensPerSecond) Greedy(int[] prompt, int tokens)
        {
            using LLamaContext context = _weights.CreateContext(_parameters);
            var batch = new LLamaBatch();
            for (int i = 0; i < prompt.Length; i++) batch.Add(prompt[i], i, LLamaSeqId.Zero, i == prompt.Length - 1);
            context.Decode(batch);
            var ids = new int[tokens];
            long start = Stopwatch.GetTimestamp();
            for (int n = 0; n < tokens; n++)
            {
                Span<float> logits = context.NativeHandle.GetLogitsIth(batch.TokenCount - 1);
                int best = 0;
                for (int v = 1; v < logits.Length; v++) if (logits[v] > logits[best]) best = v;
                ids[n] = best;
                batch.Clear();
                batch.Add(best, prompt.Length + n, LLamaSeqId.Zero, true);
                context.Decode(batch);
            }
            return (ids, tokens / Stopwatch.GetElapsedTime(start).TotalSeconds);
        }

        public void Dispose() => _weights.Dispose();
    }
}
