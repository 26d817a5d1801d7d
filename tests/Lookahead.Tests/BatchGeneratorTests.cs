using Lookahead.Batching;
using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Interop;
using Lookahead.Model;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>
/// The batch scheduler against plain decoding: every request's output equals what the single-sequence
/// Generator emits for it alone (greedy, and sampling with the same seed), under random arrivals, lengths,
/// cancellations, preemptions and prefix reuse.
/// </summary>
public class BatchGeneratorTests
{
    private sealed record Job(int[] Prompt, GenerationOptions Options, int DelayMs, int CancelAfterChunks);

    // What the Generator emits for the prompt alone: the oracle.
    private static int[] Alone(LanguageModel model, Job job, KvCacheType kvCache = KvCacheType.F32)
    {
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, KvCacheType = kvCache });
        return new Generator(context).GenerateOnce(job.Prompt, job.Options).Tokens;
    }

    // Runs every job on one batch generator (each from its own task, after its delay); returns each job's
    // tokens and whether it ran to its end.
    private static List<(int[] Tokens, BatchResult? Result)> RunBatched(BatchGenerator batch, IReadOnlyList<Job> jobs)
    {
        var tasks = jobs.Select(async job =>
        {
            await Task.Delay(job.DelayMs);
            using var cancel = new CancellationTokenSource();
            var tokens = new List<int>();
            BatchResult? result = null;
            int chunks = 0;
            try
            {
                await foreach (BatchChunk chunk in batch.GenerateAsync(job.Prompt, job.Options, cancel.Token))
                {
                    tokens.AddRange(chunk.Tokens);
                    result ??= chunk.Result;
                    if (++chunks == job.CancelAfterChunks) cancel.Cancel();
                }
            }
            catch (OperationCanceledException) when (job.CancelAfterChunks > 0)
            {
            }
            return (tokens.ToArray(), result);
        }).ToArray();
        Assert.That(Task.WaitAll(tasks, TimeSpan.FromMinutes(3)), Is.True, "every request ends");
        return tasks.Select(t => t.Result).ToList();
    }

    private static List<Job> RandomJobs(LanguageModel model, int count, int seed)
    {
        var random = new Random(seed);
        List<int[]> prompts = LookaheadLosslessTests.BenchPrompts(8).Select(model.Tokenizer!.Encode).ToList();
        var jobs = new List<Job>();
        for (int i = 0; i < count; i++)
        {
            int[] prompt = prompts[random.Next(prompts.Count)][..^0];
            prompt = prompt[..Math.Min(prompt.Length, 100)];
            if (random.Next(3) == 0) prompt = prompt[..Math.Max(1, random.Next(prompt.Length))];
            var options = new GenerationOptions
            {
                MaxTokens = random.Next(0, 90),
                Mode = random.Next(4) == 0 ? DecodingMode.Greedy : DecodingMode.Lookahead,
                StopTokens = random.Next(2) == 0 ? [] : null,
                Drafts = new DraftOptions { Adaptive = random.Next(3) != 0, DecodingLength = random.Next(2) == 0 ? 64 : 8 },
                Sampling = random.Next(3) == 0
                    ? new SamplingOptions { Temperature = 0.8f, TopK = random.Next(2) * 20, RepetitionPenalty = random.Next(2) == 0 ? 1 : 1.2f, Seed = (ulong)random.Next() }
                    : new SamplingOptions(),
            };
            jobs.Add(new Job(prompt, options, random.Next(0, 60), random.Next(6) == 0 ? 1 + random.Next(4) : 0));
        }
        return jobs;
    }

    private static void AssertEachEqualsAlone(LanguageModel model, IReadOnlyList<Job> jobs, List<(int[] Tokens, BatchResult? Result)> batched,
        KvCacheType kvCache = KvCacheType.F32)
    {
        for (int i = 0; i < jobs.Count; i++)
        {
            int[] alone = Alone(model, jobs[i], kvCache);
            (int[] tokens, BatchResult? result) = batched[i];
            if (jobs[i].CancelAfterChunks > 0 && result is null)
            {
                Assert.That(tokens, Is.EqualTo(alone.Take(tokens.Length)), $"job {i} (cancelled): what it streamed is a prefix of its output alone");
                continue;
            }
            Assert.That(result, Is.Not.Null, $"job {i} ended with a result");
            Assert.That(tokens, Is.EqualTo(alone), $"job {i} {jobs[i].Options.Mode} sampled={!jobs[i].Options.Sampling.IsGreedy}: batched output equals its output alone");
            Assert.That(result!.Tokens, Is.EqualTo(alone), $"job {i}: the result holds the streamed tokens");
        }
    }

    [Test]
    public void EveryRequestEqualsItsOutputAloneUnderRandomArrivalsCancellationsAndPreemption()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        for (int seed = 0; seed < 3; seed++)
        {
            List<Job> jobs = RandomJobs(model, 14, seed);
            // A pool of 12 blocks (192 tokens) for 4 sequences of up to 256 tokens: requests must wait and yield.
            using InferenceContext context = model.CreateContext(new ContextOptions
            {
                Backend = Backend.Cpu, ContextLength = 256, MaxSequences = 4, KvPoolTokens = 192, Threads = 1,
            });
            using var batch = new BatchGenerator(context, options: new BatchOptions { PrefillChunkTokens = 16 });
            List<(int[] Tokens, BatchResult? Result)> batched = RunBatched(batch, jobs);
            AssertEachEqualsAlone(model, jobs, batched);
            Assert.That(batch.Statistics.Preemptions, Is.GreaterThan(0), $"seed {seed}: the small pool forced preemptions");
        }
    }

    [Test]
    public void RandomTinyModelsBatchedEqualAlone()
    {
        // 16-bit caches too: alone and batched, keys and values are rounded the same way.
        foreach ((RandomModelSpec spec, KvCacheType kvCache) in new (RandomModelSpec, KvCacheType)[]
                 {
                     (new("batch-gqa", Hidden: 48, Heads: 4, KvHeads: 2, Vocab: 40, Seed: 21), KvCacheType.F32),
                     (new("batch-bf16", Hidden: 32, Heads: 4, KvHeads: 4, Vocab: 30, Dtype: TensorDtype.BF16, Seed: 22), KvCacheType.F32),
                     (new("batch-gqa-kv-bf16", Hidden: 48, Heads: 4, KvHeads: 2, Vocab: 40, Seed: 23), KvCacheType.BF16),
                     (new("batch-bf16-kv-f16", Hidden: 32, Heads: 4, KvHeads: 4, Vocab: 30, Dtype: TensorDtype.BF16, Seed: 24), KvCacheType.F16),
                 })
        {
            using RandomModel fixture = RandomModel.Create(spec);
            using LanguageModel model = LanguageModel.Load(fixture.Folder);
            var random = new Random(spec.Seed);
            var jobs = new List<Job>();
            for (int i = 0; i < 10; i++)
            {
                int[] prompt = i % 2 == 0
                    ? Enumerable.Repeat(new[] { 3, 7, 9, 4 }, 1 + random.Next(8)).SelectMany(x => x).ToArray()
                    : Enumerable.Range(0, 1 + random.Next(40)).Select(_ => random.Next(spec.Vocab)).ToArray();
                var sampling = i % 3 == 0 ? new SamplingOptions { Temperature = 1.0f, Seed = (ulong)(100 + i) } : new SamplingOptions();
                jobs.Add(new Job(prompt, new GenerationOptions { MaxTokens = 20 + random.Next(60), StopTokens = [], Sampling = sampling },
                    random.Next(30), 0));
            }
            using InferenceContext context = model.CreateContext(new ContextOptions
            {
                Backend = Backend.Cpu, ContextLength = 256, MaxSequences = 6, KvPoolTokens = 320, Threads = 1, KvCacheType = kvCache,
            });
            using var batch = new BatchGenerator(context);
            AssertEachEqualsAlone(model, jobs, RunBatched(batch, jobs), kvCache);
        }
    }

    // A 4-turn chat: each turn's prompt is the last turn's prompt and answer plus new tokens. The last turn's
    // sequence is kept when it finishes and the next turn continues it, so a turn prefills only its new tokens.
    [Test]
    public void AChatTurnPrefillsOnlyItsNewTokens()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, MaxSequences = 2 });
        using var batch = new BatchGenerator(context);
        List<int[]> turns = LookaheadLosslessTests.BenchPrompts(4).Select(model.Tokenizer!.Encode).ToList();
        var options = new GenerationOptions { MaxTokens = 40, StopTokens = [] };
        int[] prompt = turns[0];
        for (int turn = 0; turn < 4; turn++)
        {
            BatchResult result = batch.GenerateAllAsync(prompt, options).GetAwaiter().GetResult();
            Assert.That(result.Tokens, Is.EqualTo(Alone(model, new Job(prompt, options, 0, 0))), $"turn {turn}");
            Assert.That(result.ReusedPromptTokens + result.PrefilledTokens, Is.EqualTo(prompt.Length - 1), $"turn {turn}: every context token once");
            if (turn > 0)
            {
                // Everything of the last turn but its last token was committed; that token and the new ones are prefilled.
                int previous = turns[turn - 1].Length + 40 - 1;
                // (one more when the last step's accepted draft ran past the token limit: it was committed too)
                Assert.That(result.ReusedPromptTokens, Is.InRange(previous, previous + 1), $"turn {turn}: the last turn's sequence is continued");
                TestContext.Out.WriteLine($"turn {turn + 1}: prompt {prompt.Length} tokens, reused {result.ReusedPromptTokens}, prefilled {result.PrefilledTokens}");
            }
            else
            {
                Assert.That(result.ReusedPromptTokens, Is.EqualTo(0));
            }
            turns[turn] = prompt;
            if (turn < 3) prompt = [.. prompt, .. result.Tokens, .. turns[turn + 1]];
        }
    }

    // Requests that continue a finished one, wholly (a chat's next turn) or partly (a fork inside a block,
    // or with one sequence the parked one cut back and taken over), then unrelated ones that push the kept sequences out of the sequences and the pool while another
    // continuation runs: each equals its output alone, and continuations reuse all the tokens they share.
    [Test]
    public void RequestsContinuingFinishedOnesEqualAloneWhetherTheyForkOrFindThemEvicted()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        List<int[]> prompts = LookaheadLosslessTests.BenchPrompts(6).Select(model.Tokenizer!.Encode).ToList();
        var options = new GenerationOptions { MaxTokens = 30, StopTokens = [] };
        // Room for forks; a pool that keeps little parked; one sequence, so continuations take the parked one over.
        foreach ((int sequences, int poolTokens) in new[] { (3, 3 * 512), (3, 400), (1, 512) })
        {
            using InferenceContext context = model.CreateContext(new ContextOptions
            {
                Backend = Backend.Cpu, ContextLength = 512, MaxSequences = sequences, KvPoolTokens = poolTokens, Threads = 1,
            });
            using var batch = new BatchGenerator(context);
            for (int round = 0; round < 3; round++)
            {
                int[] first = prompts[round];
                BatchResult done = batch.GenerateAllAsync(first, options).GetAwaiter().GetResult();
                int committed = first.Length + options.MaxTokens - 1;  // all but the last token
                int[] whole = [.. first, .. done.Tokens, .. prompts[round + 1][..5]];
                int[] part = [.. first, .. done.Tokens[..(7 + round)], .. prompts[round + 2][..3]];
                var sequential = new List<Job> { new(whole, options, 0, 0), new(part, options, 0, 0) };
                var continued = new List<(int[] Tokens, BatchResult? Result)>();
                foreach (Job job in sequential)
                {
                    BatchResult result = batch.GenerateAllAsync(job.Prompt, job.Options).GetAwaiter().GetResult();
                    continued.Add((result.Tokens, result));
                }
                AssertEachEqualsAlone(model, sequential, continued);
                // At least what plain steps commit; one more when the last step's accepted draft ran past the
                // token limit (its K/V were computed and committed too).
                Assert.That(continued[0].Result!.ReusedPromptTokens, Is.InRange(committed, committed + 1), $"round {round}: the whole turn is continued");
                Assert.That(continued[1].Result!.ReusedPromptTokens, Is.EqualTo(first.Length + 7 + round), $"round {round}: forked or cut inside a block");

                var crowd = new List<Job>
                {
                    new(prompts[round + 3], options, 0, 0),
                    new([.. whole, .. continued[0].Tokens], options, 5, 0),
                    new(first[..Math.Min(first.Length, 9 + round)], options, 0, 0),
                    new(prompts[(round + 4) % prompts.Count], options, 10, 0),
                };
                AssertEachEqualsAlone(model, crowd, RunBatched(batch, crowd));
            }
        }
    }

    [Test]
    public async Task RequestsThatCanNeverRunAreRefusedAndCancellationEndsTheStream()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256, MaxSequences = 2, KvPoolTokens = 64 });
        using var batch = new BatchGenerator(context);
        var options = new GenerationOptions { MaxTokens = 300, StopTokens = [] };
        var tooLong = Assert.Throws<ArgumentException>(() => batch.GenerateAsync(Enumerable.Repeat(5, 80).ToArray(), options));
        Assert.That(tooLong!.Message, Does.Contain("KvPoolTokens"));
        Assert.Throws<ArgumentException>(() => batch.GenerateAsync([], options));
        Assert.Throws<ArgumentException>(() => batch.GenerateAsync([model.Config.VocabSize], options));

        // Alone, it outgrows the 4-block pool: it ends as ContextFull with what fits, nothing lost.
        BatchResult grown = batch.GenerateAllAsync([1, 5, 9], options).GetAwaiter().GetResult();
        Assert.That(grown.FinishReason, Is.EqualTo(FinishReason.ContextFull));
        Assert.That(grown.Tokens, Is.EqualTo(Alone(model, new Job([1, 5, 9], options, 0, 0)).Take(grown.Tokens.Length)));

        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        await Assert.CatchAsync<OperationCanceledException>(async () => await batch.GenerateAllAsync([1, 5, 9], options, cancel.Token));
        Assert.That(context.KvPool.InUse, Is.EqualTo(0), "a cancelled request leaves no block held");
    }

    [Test]
    public async Task DisposingEndsRunningRequests()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256, MaxSequences = 2 });
        var batch = new BatchGenerator(context);
        IAsyncEnumerator<BatchChunk> stream = batch.GenerateAsync([1, 5, 9], new GenerationOptions { MaxTokens = 200, StopTokens = [] }).GetAsyncEnumerator();
        Assert.That(stream.MoveNextAsync().AsTask().GetAwaiter().GetResult(), Is.True);
        batch.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => { while (await stream.MoveNextAsync()) { } });
        Assert.Throws<ObjectDisposedException>(() => batch.GenerateAsync([1], new GenerationOptions()));
    }
}
