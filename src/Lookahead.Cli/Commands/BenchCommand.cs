using System.Globalization;
using Lookahead.Cli.Bench;
using Lookahead.Decoding;
using Lookahead.Diagnostics;
using Lookahead.Drafting;

namespace Lookahead.Cli.Commands;

/// <summary>
/// lookahead bench: greedy and lookahead on the same prompts and context. Warm-up prompts are generated
/// into each lookahead run's trie first (untimed); test prompts are timed; every lookahead output must
/// equal the greedy output or the run fails.
/// </summary>
internal static class BenchCommand
{
    public static string BundledPrompts => Path.Combine(AppContext.BaseDirectory, "data", "stories.jsonl");

    public static int Run(IReadOnlyList<string> args)
    {
        var reader = new ArgumentReader(args, CommandLineTable.Bench.ValueOptions, CommandLineTable.Bench.Flags);
        if (reader.Has("server")) return RunServerLoad(reader);
        if (reader.Has("api-key")) throw new UsageException("--api-key is the key of --server: give --server too");
        if (reader.Has("concurrency")) return RunConcurrency(reader);
        if (reader.Has("requests")) throw new UsageException("--requests counts the requests of --concurrency: give --concurrency too");
        if (reader.Has("rounds")) throw new UsageException("--rounds repeats the runs of --concurrency: give --concurrency too");
        (int maxTokens, string[] modes, string[] lengths, DraftOptions drafts, float[] temperatures, string? outDirectory,
            ContextOptions contextOptions, string promptsPath, string folder) = Common(reader, "auto,8,16,64");
        int? costContextOption = reader.Int("forward-cost-context", 0, 1 << 20);

        using LanguageModel model = ModelArguments.Load(folder);
        int contextLength = contextOptions.ContextLength ?? model.DefaultContextLength();
        int largestTree = ForwardCostProbe.Sizes[^1];
        if (costContextOption > contextLength - largestTree - 1)
            throw new UsageException($"--forward-cost-context {costContextOption} leaves no room for {largestTree} draft nodes in a " +
                                     $"context of {contextLength} tokens (at most {Math.Max(0, contextLength - largestTree - 1)})");
        List<PromptLine> prompts = PromptFile.Read(promptsPath, contextLength);
        List<(PromptLine Line, int[] Ids)> warmup = prompts.Where(p => p.Split == "warmup").Select(p => (p, p.Tokens(model))).ToList();
        List<(PromptLine Line, int[] Ids)> test = prompts.Where(p => p.Split != "warmup").Select(p => (p, p.Tokens(model))).ToList();
        if (test.Count == 0) throw new LookaheadException($"{promptsPath} has no test prompts (lines whose split is not \"warmup\")");

        using InferenceContext context = model.CreateContext(contextOptions);
        bool deviceTime = reader.Has("device-time");
        if (deviceTime && context.Backend != Backend.Cuda)
            throw new UsageException("--device-time measures the GPU's share of each step and needs the CUDA backend (--backend cuda)");
        // Events around each native call's device work; the host overhead per step is what remains.
        if (deviceTime) context.Profiling = ProfilingMode.Device;
        bool pairedBandwidth = reader.Has("paired-bandwidth");
        if (pairedBandwidth && context.Backend != Backend.Cpu)
            throw new UsageException("--paired-bandwidth holds greedy against this machine's memory and needs the CPU backend");
        if (pairedBandwidth && !modes.Contains("greedy"))
            throw new UsageException("--paired-bandwidth measures greedy decoding: include greedy in --modes");
        var paired = new List<double>();
        var progress = new ProgressBar();
        int totalWork = temperatures.Length * (test.Count * (modes.Contains("greedy") ? 1 : 0) +
                        (modes.Contains("lookahead") ? lengths.Length * (warmup.Count + test.Count) : 0));
        progress.Start(totalWork);
        bool Reported(TimedRun run) => run.Length is not null || modes.Contains("greedy");
        var resultsByTemperature = new List<List<ModeResult>>();
        foreach (float temperature in temperatures)
        {

        // Greedy outputs are the reference for every lookahead run, so greedy always runs. Each lookahead
        // length has its own trie, filled by the warm-up prompts first (untimed). The timed prompts are
        // then interleaved: each prompt runs in every mode before the next, so a machine that slows down
        // or speeds up during the benchmark affects all modes alike.
        var runs = new List<TimedRun>();
        var sampling = new SamplingOptions { Temperature = temperature };
        string plainName = temperature > 0 ? "plain" : "greedy";
        try
        {
            runs.Add(new TimedRun(plainName, null, new Generator(context),
                new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = maxTokens, Sampling = sampling }, owned: null));
            if (modes.Contains("lookahead"))
            {
                foreach (string length in lengths)
                {
                    DraftOptions lengthDrafts = DecodingArguments.WithLength(drafts, length);
                    var options = new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = maxTokens, Drafts = lengthDrafts, Sampling = sampling };
                    var trie = new TokenTrie(Generator.DefaultTrieOptions(model, lengthDrafts.BranchLength));
                    var run = new TimedRun("lookahead", length, new Generator(context, trie), options, trie);
                    runs.Add(run);
                    foreach ((PromptLine line, int[] ids) in warmup)
                    {
                        progress.Advance($"warm-up, decoding length {length}");
                        run.Generator.Generate(ids, ForPrompt(options, line));
                    }
                }
            }
            foreach ((PromptLine line, int[] ids) in test)
            {
                int[]? reference = null;
                foreach (TimedRun run in runs)
                {
                    if (Reported(run)) progress.Advance(run.Length is null ? run.Mode : $"{run.Mode}, decoding length {run.Length}");
                    // The machine's bandwidth drifts: probe it right before each prompt's greedy run.
                    double probe = pairedBandwidth && run.Length is null ? MemoryBandwidth.MeasureReadGBps(context.Threads) : 0;
                    GenerationStats stats = run.Generate(line, ids, out int[] tokens);
                    if (probe > 0 && stats.DecodeTime > TimeSpan.Zero)
                        paired.Add(model.WeightBytesPerToken * (double)stats.Steps / stats.DecodeTime.TotalSeconds / 1e9 / probe);
                    if (reference is null)
                    {
                        reference = tokens;
                    }
                    else if (!tokens.AsSpan().SequenceEqual(reference))
                    {
                        int at = tokens.Zip(reference).TakeWhile(p => p.First == p.Second).Count();
                        throw new LookaheadException(
                            $"LOSSLESS CHECK FAILED: {run.Mode} (decoding length {run.Length}) differs from {plainName} decoding for prompt " +
                            $"{line.Id ?? $"on line {line.Line}"} at generated token {at}");
                    }
                }
            }
        }
        finally
        {
            foreach (TimedRun run in runs) run.Dispose();
        }
        resultsByTemperature.Add(runs.Where(Reported).Select(r => r.Result()).ToList());
        }
        progress.Finish();
        if (deviceTime) context.Profiling = ProfilingMode.Off;  // the t(k) probe below times plain steps

        int costContext = costContextOption ?? Math.Min(256, context.ContextLength / 2);
        List<ForwardCost> costs = ForwardCostProbe.Measure(context, costContext);
        // Host memory bounds the CPU backend only; the CUDA floor comes from bench/native's device copy.
        double bandwidth = context.Backend == Backend.Cpu ? MemoryBandwidth.MeasureReadGBps(context.Threads) : 0;
        for (int t = 0; t < temperatures.Length; t++)
        {
            var report = new BenchReport(model.Folder, BackendLabel(context), context.Threads, maxTokens,
                warmup.Count, test.Count, costContext, resultsByTemperature[t], costs, bandwidth,
                model.WeightBytesPerToken, paired, temperatures[t]);
            if (temperatures.Length > 1)
                Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"== temperature {temperatures[t]} =="));
            Console.Out.Write(report.Table(markdown: false));
            if (t == temperatures.Length - 1)
            {
                Console.Out.WriteLine(report.ForwardCostLine());
                Console.Out.WriteLine(report.BandwidthLine());
                if (pairedBandwidth) Console.Out.WriteLine(report.PairedBandwidthLine());
                if (deviceTime) Console.Out.WriteLine(report.HostOverheadLine());
            }
            if (outDirectory is not null)
            {
                // One temperature: the folder itself; several: a folder per temperature inside it.
                string folderOut = temperatures.Length == 1 ? outDirectory
                    : Path.Combine(outDirectory, string.Create(CultureInfo.InvariantCulture, $"temperature-{temperatures[t]}"));
                Directory.CreateDirectory(folderOut);
                using (FileStream json = File.Create(Path.Combine(folderOut, "report.json"))) report.WriteJson(json);
                IReadOnlyList<string> plots = BenchPlots.Write(report, folderOut);
                File.WriteAllText(Path.Combine(folderOut, "report.md"), report.Markdown() + "\n" +
                    string.Concat(plots.Select(p => $"![{Path.GetFileNameWithoutExtension(p)}]({p})\n")));
                Console.Error.WriteLine($"wrote report.json, report.md and {string.Join(", ", plots)} in {folderOut}");
            }
        }
        return 0;
    }

    // Sampled runs draw with the prompt's line number as the seed, so every mode draws the same numbers.
    public static GenerationOptions ForPrompt(GenerationOptions options, PromptLine line) =>
        options.Sampling.IsGreedy ? options : options with { Sampling = options.Sampling with { Seed = (ulong)line.Line } };

    // --server URL: closed-loop HTTP clients against a running server (ServerLoad).
    private static int RunServerLoad(ArgumentReader reader)
    {
        string url = reader.String("server")!;
        if (!Uri.TryCreate(url.EndsWith('/') ? url : url + "/", UriKind.Absolute, out Uri? server) || server.Scheme is not ("http" or "https"))
            throw new UsageException($"--server must be an http(s) URL such as http://127.0.0.1:8080, got '{url}'");
        foreach (string local in new[] { "model", "decoding-length", "temperature", "rounds", "backend", "threads", "context", "forward-cost-context",
                     "paired-bandwidth", "device-time" })
            if (reader.Has(local)) throw new UsageException($"--{local} does not apply to --server (the server's settings decide)");
        int[] levels = Levels(reader.String("concurrency") ?? "1");
        int maxTokens = reader.Int("max-tokens", 1, 1 << 20) ?? 256;
        int? requestLimit = reader.Int("requests", 1, 1 << 20);
        string[] modes = (reader.String("modes") ?? "greedy,lookahead").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (string mode in modes)
            if (mode is not ("greedy" or "lookahead")) throw new UsageException($"--modes: unknown mode '{mode}' (greedy, lookahead)");
        if (modes.Length == 0) throw new UsageException("--modes needs at least one of greedy, lookahead");
        string? outDirectory = reader.String("out");
        if (outDirectory is not null) InputPaths.RequireOutputFolder(outDirectory, "report folder");
        string promptsPath = reader.String("prompts") ?? BundledPrompts;
        InputPaths.RequireFile(promptsPath, "prompts file");
        List<(string Id, object Prompt)> prompts = PromptFile.Read(promptsPath, 1 << 16).Where(p => p.Split != "warmup").Take(requestLimit ?? int.MaxValue)
            .Select(p => (p.Id ?? $"line {p.Line}", p.PromptIds is { } ids ? (object)ids : p.Prompt!)).ToList();
        if (prompts.Count == 0) throw new LookaheadException($"{promptsPath} has no test prompts (lines whose split is not \"warmup\")");

        var progress = new ProgressBar();
        progress.Start(levels.Length * modes.Length * prompts.Count);
        List<ServerLoad.Result> results;
        try
        {
            results = ServerLoad.RunAsync(server, reader.String("api-key"), prompts, levels, modes, maxTokens, progress.Advance).GetAwaiter().GetResult();
        }
        catch (HttpRequestException e)
        {
            throw new LookaheadException($"cannot reach the server at {server}: {e.Message}", e);
        }
        progress.Finish();
        Console.Out.Write(ServerLoad.Table(results, markdown: false));
        if (outDirectory is not null)
        {
            Directory.CreateDirectory(outDirectory);
            using (FileStream json = File.Create(Path.Combine(outDirectory, "report.json"))) ServerLoad.WriteJson(json, server, maxTokens, results);
            File.WriteAllText(Path.Combine(outDirectory, "report.md"),
                $"# Server load\n\n{server}, {prompts.Count} requests of at most {maxTokens} tokens per concurrency and mode, temperature 0; " +
                "every text equal across modes. ITL: the gap between successive text chunks.\n\n" + ServerLoad.Table(results, markdown: true));
            Console.Error.WriteLine($"wrote report.json and report.md in {outDirectory}");
        }
        return 0;
    }

    private static int[] Levels(string text)
    {
        int[] levels = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(part => int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int level) && level is >= 1 and <= 256
                ? level
                : throw new UsageException($"--concurrency must be a list of integers in 1..256, e.g. 1,2,4,8,16; got '{part}'"))
            .Distinct().Order().ToArray();
        return levels.Length > 0 ? levels : throw new UsageException("--concurrency needs at least one value, e.g. 1,2,4,8,16");
    }

    // --concurrency: closed-loop clients on a batch generator per concurrency and mode (ConcurrencyBench).
    private static int RunConcurrency(ArgumentReader reader)
    {
        int[] levels = Levels(reader.String("concurrency") ?? "");
        foreach (string single in new[] { "forward-cost-context", "paired-bandwidth", "device-time" })
            if (reader.Has(single)) throw new UsageException($"--{single} belongs to the single-request benchmark: leave out --concurrency or it");
        int? requestLimit = reader.Int("requests", 1, 1 << 20);
        int roundCount = reader.Int("rounds", 1, 100) ?? 1;
        (int maxTokens, string[] modes, string[] lengths, DraftOptions drafts, float[] temperatures, string? outDirectory,
            ContextOptions contextOptions, string promptsPath, string folder) = Common(reader, "auto");
        if (temperatures.Length > 1) throw new UsageException("--concurrency takes one --temperature");

        using LanguageModel model = ModelArguments.Load(folder);
        int contextLength = contextOptions.ContextLength ?? model.DefaultContextLength();
        List<PromptLine> lines = PromptFile.Read(promptsPath, contextLength);
        List<PromptLine> warmupLines = lines.Where(p => p.Split == "warmup").Take(requestLimit ?? int.MaxValue).ToList();
        List<PromptLine> testLines = lines.Where(p => p.Split != "warmup").Take(requestLimit ?? int.MaxValue).ToList();
        if (testLines.Count == 0) throw new LookaheadException($"{promptsPath} has no test prompts (lines whose split is not \"warmup\")");
        if (requestLimit > testLines.Count)
            throw new UsageException($"--requests {requestLimit}: {promptsPath} has only {testLines.Count} test prompts (each request is a different one)");

        var sampling = new SamplingOptions { Temperature = temperatures[0] };
        string plainName = sampling.IsGreedy ? "greedy" : "plain";
        var plain = new ConcurrencyBench.Run(plainName, null, new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = maxTokens, Sampling = sampling });
        var runs = new List<ConcurrencyBench.Run>();
        if (modes.Contains("greedy")) runs.Add(plain);
        if (modes.Contains("lookahead"))
            runs.AddRange(lengths.Select(length => new ConcurrencyBench.Run("lookahead", length,
                new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = maxTokens, Drafts = DecodingArguments.WithLength(drafts, length), Sampling = sampling })));

        // The oracle: each prompt's output alone, by the single-sequence Generator's plain decoding.
        var progress = new ProgressBar();
        progress.Start(warmupLines.Count + testLines.Count + roundCount * levels.Length * runs.Count * testLines.Count);
        List<ConcurrencyBench.Prompt> Reference(List<PromptLine> set, InferenceContext context)
        {
            using var generator = new Generator(context);
            return set.Select(line =>
            {
                progress.Advance("each prompt alone (the reference)");
                int[] ids = line.Tokens(model);
                return new ConcurrencyBench.Prompt(line, ids, generator.Generate(ids, ForPrompt(plain.Options, line)).Tokens);
            }).ToList();
        }
        List<ConcurrencyBench.Prompt> warmup, test;
        string backend;
        int threads;
        using (InferenceContext alone = model.CreateContext(contextOptions))
        {
            warmup = Reference(warmupLines, alone);
            test = Reference(testLines, alone);
            backend = BackendLabel(alone);
            threads = alone.Threads;
        }
        // Each sequence holds the longest prompt and its output; the KV pool holds every client's.
        int sequenceTokens = Math.Min(contextLength, test.Max(p => p.Ids.Length) + maxTokens + 16);
        // Untimed: every run once on two requests, so the first timed one does not pay for compiling the scheduler.
        foreach (ConcurrencyBench.Run run in runs)
            ConcurrencyBench.Measure(model, ConcurrencyBench.ContextFor(contextOptions, 2, sequenceTokens), run, [], test.Take(2).ToList(), _ => { });
        // Rounds alternate every configuration, so that a drift in machine speed hits all of them alike.
        var rounds = new List<List<ConcurrencyResult>>();
        for (int round = 0; round < roundCount; round++)
        {
            var results = new List<ConcurrencyResult>();
            foreach (int level in levels)
            {
                ContextOptions batched = ConcurrencyBench.ContextFor(contextOptions, level, sequenceTokens);
                foreach (ConcurrencyBench.Run run in runs)
                    results.Add(ConcurrencyBench.Measure(model, batched, run, warmup, test, progress.Advance));
            }
            rounds.Add(results);
        }
        List<ChatTurn> chat = ConcurrencyBench.Chat(model, contextOptions with { MaxSequences = 1, KvPoolTokens = contextLength, ContextLength = contextLength },
            test.OrderBy(p => p.Ids.Length).Take(4).ToList(), Math.Min(maxTokens, 32));
        progress.Finish();

        var report = new ConcurrencyReport(model.Folder, backend, threads, maxTokens, temperatures[0], warmup.Count, test.Count,
            ConcurrencyResult.MedianOfRounds(rounds), chat) { Rounds = roundCount };
        Console.Out.Write(report.Table(markdown: false));
        Console.Out.Write(report.ChatTable(markdown: false));
        if (outDirectory is not null)
        {
            Directory.CreateDirectory(outDirectory);
            using (FileStream json = File.Create(Path.Combine(outDirectory, "report.json"))) report.WriteJson(json);
            string plot = report.WritePlot(outDirectory);
            File.WriteAllText(Path.Combine(outDirectory, "report.md"), report.Markdown() + $"\n![concurrency]({plot})\n");
            Console.Error.WriteLine($"wrote report.json, report.md and {plot} in {outDirectory}");
        }
        return 0;
    }

    // The options both benchmarks read, checked before any work.
    private static (int MaxTokens, string[] Modes, string[] Lengths, DraftOptions Drafts, float[] Temperatures, string? OutDirectory,
        ContextOptions Context, string PromptsPath, string ModelFolder) Common(ArgumentReader reader, string defaultLengths)
    {
        int maxTokens = reader.Int("max-tokens", 1, 1 << 20) ?? 256;
        string[] modes = (reader.String("modes") ?? "greedy,lookahead").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (modes.Length == 0) throw new UsageException("--modes needs at least one of greedy, lookahead");
        foreach (string mode in modes)
            if (mode is not ("greedy" or "lookahead")) throw new UsageException($"--modes: unknown mode '{mode}' (greedy, lookahead)");
        string[] lengths = (reader.String("decoding-length") ?? defaultLengths)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lengths.Length == 0) throw new UsageException("--decoding-length needs at least one value");
        DraftOptions drafts = DecodingArguments.Drafts(reader, readDecodingLength: false);
        foreach (string length in lengths) DecodingArguments.WithLength(drafts, length);
        float[] temperatures = Temperatures(reader.String("temperature") ?? "0");
        string? outDirectory = reader.String("out");
        if (outDirectory is not null) InputPaths.RequireOutputFolder(outDirectory, "report folder");
        ContextOptions contextOptions = ModelArguments.Context(reader);
        string promptsPath = reader.String("prompts") ?? BundledPrompts;
        InputPaths.RequireFile(promptsPath, "prompts file");
        return (maxTokens, modes, lengths, drafts, temperatures, outDirectory, contextOptions, promptsPath, ModelArguments.Resolve(reader));
    }

    // "--temperature T[,T...]": each at least 0 (0 is greedy).
    private static float[] Temperatures(string text)
    {
        string[] parts = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length == 0) throw new UsageException("--temperature needs at least one value");
        return parts.Select(part => float.TryParse(part, NumberStyles.Float, CultureInfo.InvariantCulture, out float value) &&
                                    float.IsFinite(value) && value >= 0
            ? value
            : throw new UsageException($"--temperature must be numbers >= 0 (0 is greedy), got '{part}'")).ToArray();
    }

    // One mode (and decoding length) of the benchmark: its generator and the totals of its timed prompts.
    private sealed class TimedRun(string mode, string? length, Generator generator, GenerationOptions options, TokenTrie? owned)
        : IDisposable
    {
        private readonly RunTotals _overall = new();
        private readonly SortedDictionary<string, RunTotals> _byCategory = new(StringComparer.Ordinal);

        public string Mode => mode;
        public string? Length => length;
        public Generator Generator => generator;

        public GenerationStats Generate(PromptLine line, int[] ids, out int[] tokens)
        {
            GenerationResult result = generator.Generate(ids, ForPrompt(options, line));
            _overall.Add(result.Stats);
            string category = line.Category ?? "uncategorized";
            if (!_byCategory.TryGetValue(category, out RunTotals? totals)) _byCategory[category] = totals = new RunTotals();
            totals.Add(result.Stats);
            tokens = result.Tokens;
            return result.Stats;
        }

        public ModeResult Result() => new(mode, length, _overall, _byCategory);

        public void Dispose()
        {
            generator.Dispose();
            owned?.Dispose();
        }
    }

    // The backend as the reports name it, with the KV cache's element type when it is not F32.
    private static string BackendLabel(InferenceContext context) =>
        context.Backend.ToString().ToLowerInvariant() + (context.KvCacheType == KvCacheType.F32 ? "" : $" ({context.KvCacheType} KV cache)");
}
