using System.Diagnostics;
using Lookahead.Batching;
using Lookahead.Cli.Commands;
using Lookahead.Decoding;
using Lookahead.Drafting;

namespace Lookahead.Cli.Bench;

/// <summary>
/// lookahead bench --concurrency: closed-loop clients on one <see cref="BatchGenerator"/> per concurrency and
/// mode. Every request's tokens must equal its prompt's output alone (the single-sequence Generator, plain
/// decoding) or the run fails.
/// </summary>
internal static class ConcurrencyBench
{
    /// <summary>One timed configuration's inputs: the mode and decoding length, and its generation options.</summary>
    public sealed record Run(string Mode, string? Length, GenerationOptions Options);

    /// <summary>A prompt with its reference output (plain decoding alone).</summary>
    public sealed record Prompt(PromptLine Line, int[] Ids, int[] Reference);

    // The context each configuration runs on: a sequence per client, each (and so the KV pool) sized for the
    // longest request, and the batch generator's usual batch.
    public static ContextOptions ContextFor(ContextOptions baseOptions, int concurrency, int sequenceTokens) =>
        BatchGenerator.ContextOptionsFor(baseOptions with { ContextLength = sequenceTokens }, concurrency);

    /// <summary>
    /// Runs the requests through a batch generator with concurrency clients, each sending its next prompt when
    /// the last one finished. Lookahead runs start from a trie holding the warm-up outputs.
    /// </summary>
    /// <exception cref="LookaheadException">LOSSLESS CHECK FAILED: a request's tokens differ from its reference.</exception>
    public static ConcurrencyResult Measure(LanguageModel model, ContextOptions contextOptions, Run run,
        IReadOnlyList<Prompt> warmup, IReadOnlyList<Prompt> requests, Action<string> progress)
    {
        using InferenceContext context = model.CreateContext(contextOptions);
        int concurrency = context.MaxSequences;  // a client per sequence (ContextFor)
        TokenTrie? trie = null;
        if (run.Options.Mode == DecodingMode.Lookahead)
        {
            trie = new TokenTrie(Generator.DefaultTrieOptions(model, run.Options.Drafts.BranchLength));
            foreach (Prompt prompt in warmup) trie.AddOutputCorpus(prompt.Reference);
        }
        try
        {
            using var batch = new BatchGenerator(context, trie);
            var ttfts = new double[requests.Count];
            var rates = new double[requests.Count];
            long tokens = 0;
            int next = -1;
            var clock = Stopwatch.StartNew();
            async Task Client()
            {
                for (int i = Interlocked.Increment(ref next); i < requests.Count; i = Interlocked.Increment(ref next))
                {
                    Prompt prompt = requests[i];
                    long submitted = Stopwatch.GetTimestamp();
                    var output = new List<int>(prompt.Reference.Length);
                    double ttft = double.NaN;
                    await foreach (BatchChunk chunk in batch.GenerateAsync(prompt.Ids, BenchCommand.ForPrompt(run.Options, prompt.Line)).ConfigureAwait(false))
                    {
                        if (chunk.Tokens.Length > 0 && double.IsNaN(ttft)) ttft = Stopwatch.GetElapsedTime(submitted).TotalMilliseconds;
                        output.AddRange(chunk.Tokens);
                    }
                    double seconds = Stopwatch.GetElapsedTime(submitted).TotalSeconds;
                    CheckLossless(run, concurrency, prompt, output);
                    ttfts[i] = double.IsNaN(ttft) ? seconds * 1000 : ttft;  // no token at all: the request's whole time
                    rates[i] = seconds > 0 ? output.Count / seconds : 0;
                    Interlocked.Add(ref tokens, output.Count);
                    progress(run.Length is null ? $"{run.Mode} x{concurrency}" : $"{run.Mode} {run.Length} x{concurrency}");
                }
            }
            Task.WaitAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Client)).ToArray());
            double wall = clock.Elapsed.TotalSeconds;
            return new ConcurrencyResult(concurrency, run.Mode, run.Length, requests.Count, tokens, wall,
                Percentiles.NearestRank(rates, 0.5), Percentiles.NearestRank(ttfts, 0.5), Percentiles.NearestRank(ttfts, 0.95), batch.Statistics);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count >= 1)
        {
            throw e.InnerExceptions[0];
        }
        finally
        {
            trie?.Dispose();
        }
    }

    /// <summary>
    /// A chat of consecutive turns on one batch generator with prefix caching: each turn's prompt is the last
    /// turn's prompt and reply plus the next user text, so only the new tokens should be prefilled.
    /// </summary>
    public static List<ChatTurn> Chat(LanguageModel model, ContextOptions contextOptions, IReadOnlyList<Prompt> userTurns, int maxTokens)
    {
        using InferenceContext context = model.CreateContext(contextOptions);
        using var batch = new BatchGenerator(context);
        var turns = new List<ChatTurn>();
        var conversation = new List<int>();
        var options = new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = maxTokens };
        foreach (Prompt user in userTurns)
        {
            conversation.AddRange(user.Ids);
            if (conversation.Count + maxTokens > context.ContextLength) break;
            BatchResult result = batch.GenerateAllAsync(conversation.ToArray(), options).GetAwaiter().GetResult();
            turns.Add(new ChatTurn(turns.Count + 1, conversation.Count, result.ReusedPromptTokens, result.PrefilledTokens));
            conversation.AddRange(result.Tokens);
        }
        return turns;
    }

    private static void CheckLossless(Run run, int concurrency, Prompt prompt, List<int> output)
    {
        if (output.SequenceEqual(prompt.Reference)) return;
        int at = output.Zip(prompt.Reference).TakeWhile(p => p.First == p.Second).Count();
        throw new LookaheadException(
            $"LOSSLESS CHECK FAILED: {run.Mode}{(run.Length is null ? "" : $" (decoding length {run.Length})")} at concurrency {concurrency} " +
            $"differs from the prompt's output alone for prompt {prompt.Line.Id ?? $"on line {prompt.Line.Line}"} at generated token {at}");
    }
}

/// <summary>One concurrency and mode: totals over its requests, and the batch generator's counters.</summary>
/// <param name="Seconds">Wall time from the first submission to the last request's end.</param>
/// <param name="RequestTokensPerSecondP50">Median over requests of tokens / (end - submission).</param>
/// <param name="Batch">The generator's counters and times at the end.</param>
internal sealed record ConcurrencyResult(int Concurrency, string Mode, string? DecodingLength, int Requests, long Tokens, double Seconds,
    double RequestTokensPerSecondP50, double TtftMsP50, double TtftMsP95, BatchStatistics Batch)
{
    public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;
    /// <summary>Batched forward passes.</summary>
    public long Steps => Batch.Steps;
    public double TokensPerStep => Steps > 0 ? (double)Tokens / Steps : 0;
    public long Preemptions => Batch.Preemptions;
    public long ReusedTokens => Batch.ReusedTokens;
    public long PrefilledTokens => Batch.PrefilledTokens;
    /// <summary>Mean milliseconds per step: the forward pass, building drafts, and the rest of the step
    /// (choosing nodes, delivering tokens, updating the trie).</summary>
    public double ForwardMsPerStep => PerStep(Batch.ForwardTime);
    public double DraftMsPerStep => PerStep(Batch.DraftTime);
    public double OtherHostMsPerStep => PerStep(Batch.StepTime - Batch.ForwardTime - Batch.DraftTime);

    private double PerStep(TimeSpan time) => Steps > 0 ? time.TotalMilliseconds / Steps : 0;

    /// <summary>Aggregate tokens/s of every round (one value for a single round).</summary>
    public IReadOnlyList<double> RoundTokensPerSecond { get; init; } = [];
    /// <summary>The median over rounds of tokens/s against the plain run of the same round and concurrency;
    /// null for plain runs (and without one).</summary>
    public double? VsPlain { get; init; }

    /// <summary>
    /// Per configuration (the same index in every round), the round with the median aggregate tokens/s (the
    /// lower middle one for an even count), carrying every round's tokens/s and the median of its per-round
    /// ratios to the plain run of the same round and concurrency.
    /// </summary>
    public static List<ConcurrencyResult> MedianOfRounds(IReadOnlyList<IReadOnlyList<ConcurrencyResult>> rounds)
    {
        var merged = new List<ConcurrencyResult>();
        for (int i = 0; i < rounds[0].Count; i++)
        {
            List<ConcurrencyResult> all = rounds.Select(r => r[i]).ToList();
            ConcurrencyResult median = all.OrderBy(r => r.TokensPerSecond).ElementAt((all.Count - 1) / 2);
            double? vsPlain = null;
            if (median.DecodingLength is not null)
            {
                var ratios = new List<double>();
                foreach (IReadOnlyList<ConcurrencyResult> round in rounds)
                {
                    ConcurrencyResult mine = round[i];
                    ConcurrencyResult? plain = round.FirstOrDefault(o => o.Concurrency == mine.Concurrency && o.DecodingLength is null);
                    if (plain is { TokensPerSecond: > 0 }) ratios.Add(mine.TokensPerSecond / plain.TokensPerSecond);
                }
                if (ratios.Count > 0) vsPlain = ratios.Order().ElementAt((ratios.Count - 1) / 2);
            }
            merged.Add(median with { RoundTokensPerSecond = all.Select(r => r.TokensPerSecond).ToList(), VsPlain = vsPlain });
        }
        return merged;
    }
}

/// <summary>One chat turn under prefix caching: its prompt, the prompt tokens found cached, those prefilled.</summary>
internal sealed record ChatTurn(int Turn, int PromptTokens, int ReusedTokens, int PrefilledTokens);
