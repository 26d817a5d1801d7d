using System.Text.Json;
using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Model;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>
/// The central property: lookahead decoding emits exactly the greedy token ids, for every draft mode,
/// frequency source, decoding length and branch length, with the trie carried (warmed) across requests.
/// Adaptive generators run on a <see cref="SteppingClock"/>, so the sizer's choices (and whether drafts
/// get verified at all) do not depend on this machine's timing.
/// </summary>
public class LookaheadLosslessTests
{
    // Decoding length 1 is plain decoding by construction (see LookaheadOfOneNodeIsPlainDecoding).
    private static readonly int[] DecodingLengths = [2, 3, 8, 64];
    private static readonly int[] BranchLengths = [1, 2, 12];

    // Every fixed size, and the adaptive sizer (which truncates drafts of up to 64 nodes step by step).
    private static IEnumerable<DraftOptions> AllDraftOptions() =>
        (from mode in Enum.GetValues<DraftMode>()
         from source in Enum.GetValues<FrequencySource>()
         from decodingLength in DecodingLengths
         from branchLength in BranchLengths
         select new DraftOptions { Mode = mode, Frequency = source, DecodingLength = decodingLength, BranchLength = branchLength, Adaptive = false })
        .Concat(
         from mode in Enum.GetValues<DraftMode>()
         from source in Enum.GetValues<FrequencySource>()
         select new DraftOptions { Mode = mode, Frequency = source, DecodingLength = 64, Adaptive = true });

    internal static List<string> BenchPrompts(int count) =>
        File.ReadLines(TestPaths.BenchPrompts).Take(count)
            .Select(line => JsonDocument.Parse(line).RootElement.GetProperty("prompt").GetString()!).ToList();

    [Test]
    public void Stories260KEveryOptionEqualsGreedy()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        List<int[]> prompts = BenchPrompts(4).Prepend("").Select(model.Tokenizer!.Encode).ToList();
        var greedyOptions = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 48 };
        using var greedy = new Generator(context);
        List<int[]> expected = prompts.Select(p => greedy.Generate(p, greedyOptions).Tokens).ToList();

        foreach (DraftOptions drafts in AllDraftOptions())
        {
            // One generator per option set: its trie is warmed by the earlier prompts of the loop.
            using var generator = new Generator(context, time: new SteppingClock());
            var options = new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = 48, Drafts = drafts };
            long accepted = 0, drafted = 0;
            for (int round = 0; round < 2; round++)
            {
                for (int i = 0; i < prompts.Count; i++)
                {
                    GenerationResult result = generator.Generate(prompts[i], options);
                    Assert.That(result.Tokens, Is.EqualTo(expected[i]), $"{drafts} prompt {i} round {round}");
                    accepted += result.Stats.AcceptedTokens;
                    drafted += result.Stats.DraftedTokens;
                    Assert.That(result.Stats.Steps, Is.LessThanOrEqualTo(expected[i].Length));
                }
            }
            Assert.That(drafted, Is.GreaterThan(0), $"{drafts}: drafts were verified");
            if (drafts.Frequency != FrequencySource.Input)
                Assert.That(accepted, Is.GreaterThan(0), $"{drafts}: a warmed trie should supply accepted drafts");
        }
    }

    // With a 16-bit KV cache the oracle is plain decoding with the same cache: lookahead, greedy and sampled,
    // fixed and adaptive drafts, equals it token for token.
    [TestCase(KvCacheType.F16)]
    [TestCase(KvCacheType.BF16)]
    public void Stories260KWithA16BitCacheEqualsPlainDecodingWithIt(KvCacheType kvCache)
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, KvCacheType = kvCache });
        List<int[]> prompts = BenchPrompts(6).Select(model.Tokenizer!.Encode).ToList();
        foreach (SamplingOptions sampling in new[] { new SamplingOptions(), new SamplingOptions { Temperature = 0.8f, TopP = 0.95f, Seed = 7 } })
        {
            var plainOptions = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 96, Sampling = sampling };
            using var plain = new Generator(context);
            List<int[]> expected = prompts.Select(p => plain.Generate(p, plainOptions).Tokens).ToList();
            foreach (DraftOptions drafts in new[] { new DraftOptions(), new DraftOptions { Adaptive = false, DecodingLength = 16 } })
            {
                using var generator = new Generator(context, time: new SteppingClock());
                long accepted = 0;
                for (int round = 0; round < 2; round++)
                    for (int i = 0; i < prompts.Count; i++)
                    {
                        GenerationResult result = generator.Generate(prompts[i], plainOptions with { Mode = DecodingMode.Lookahead, Drafts = drafts });
                        Assert.That(result.Tokens, Is.EqualTo(expected[i]), $"{kvCache} cache, {drafts}, sampled={!sampling.IsGreedy}, prompt {i} round {round}");
                        accepted += result.Stats.AcceptedTokens;
                    }
                Assert.That(accepted, Is.GreaterThan(0), $"{kvCache} cache, {drafts}: drafts were accepted");
            }
        }
    }

    public static readonly RandomModelSpec[] RandomShapes =
    [
        new("lossless-mha", Vocab: 40, Seed: 11),
        new("lossless-gqa4-bf16", Hidden: 64, Heads: 8, KvHeads: 2, Vocab: 50, Dtype: TensorDtype.BF16, Seed: 12),
        new("lossless-qwen2", Hidden: 48, Heads: 4, KvHeads: 2, Vocab: 45, Architecture: "Qwen2ForCausalLM", Seed: 13),
    ];

    [TestCaseSource(nameof(RandomShapes))]
    public void RandomModelsEveryOptionEqualsGreedy(RandomModelSpec spec)
    {
        using RandomModel fixture = RandomModel.Create(spec);
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 512 });
        var random = new Random(spec.Seed);
        // Repetitive prompts give the trie matches; random ones test the no-match path.
        List<int[]> prompts =
        [
            Enumerable.Repeat(new[] { 3, 7, 9, 4 }, 6).SelectMany(x => x).ToArray(),
            Enumerable.Range(0, 30).Select(_ => random.Next(spec.Vocab)).ToArray(),
            [1],
        ];
        using var greedy = new Generator(context);
        var noStop = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 64, StopTokens = [] };
        List<int[]> expected = prompts.Select(p => greedy.Generate(p, noStop).Tokens).ToList();
        foreach (DraftOptions drafts in AllDraftOptions())
        {
            using var generator = new Generator(context, time: new SteppingClock());
            long drafted = 0;
            for (int i = 0; i < prompts.Count; i++)
            {
                GenerationResult result = generator.Generate(prompts[i], noStop with { Mode = DecodingMode.Lookahead, Drafts = drafts });
                Assert.That(result.Tokens, Is.EqualTo(expected[i]), $"{spec} {drafts} prompt {i}");
                drafted += result.Stats.DraftedTokens;
            }
            Assert.That(drafted, Is.GreaterThan(0), $"{spec} {drafts}: drafts were verified");
        }
    }

    // One node per step is the root alone: lookahead mode then is plain decoding, step for step.
    [Test]
    public void LookaheadOfOneNodeIsPlainDecoding()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128 });
        int[] prompt = model.Tokenizer!.Encode(BenchPrompts(1)[0]);
        var plain = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 40, StopTokens = [] };
        using var generator = new Generator(context);
        int[] expected = generator.Generate(prompt, plain).Tokens;
        foreach (bool adaptive in new[] { false, true })
        {
            GenerationResult result = generator.Generate(prompt,
                plain with { Mode = DecodingMode.Lookahead, Drafts = new DraftOptions { DecodingLength = 1, Adaptive = adaptive } });
            Assert.That(result.Tokens, Is.EqualTo(expected));
            Assert.That(result.Stats.Steps, Is.EqualTo(expected.Length));
            Assert.That(result.Stats.DraftedTokens, Is.Zero);
        }
    }

    [Test]
    public void StopTokenInsideAnAcceptedRunTruncatesLikeGreedy()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        int[] prompt = model.Tokenizer!.Encode(BenchPrompts(1)[0]);
        var drafts = new DraftOptions { DecodingLength = 32, Adaptive = false };
        using var generator = new Generator(context);
        int[] full = new Generator(context).GenerateOnce(prompt, new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 120, StopTokens = [] }).Tokens;
        // Warm the trie with the answer itself so most of it arrives in long accepted runs.
        generator.Trie.AddOutputCorpus(full);
        for (int stopAt = 5; stopAt < 100; stopAt += 7)
        {
            int stop = full[stopAt];
            int first = Array.IndexOf(full, stop);
            var options = new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = 120, StopTokens = [stop], Drafts = drafts };
            GenerationResult result = generator.Generate(prompt, options);
            Assert.That(result.Tokens, Is.EqualTo(full[..(first + 1)]), $"stop token {stop}");
            Assert.That(result.FinishReason, Is.EqualTo(FinishReason.EndOfSequence));
        }
        for (int maxTokens = 1; maxTokens < 60; maxTokens += 6)
        {
            GenerationResult result = generator.Generate(prompt, new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = maxTokens, StopTokens = [], Drafts = drafts });
            Assert.That(result.Tokens, Is.EqualTo(full[..maxTokens]), $"max tokens {maxTokens}");
        }
        GenerationResult warmed = generator.Generate(prompt, new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = 120, StopTokens = [], Drafts = drafts });
        Assert.That(warmed.Stats.MeanTokensPerStep, Is.GreaterThan(4), "the answer is in the trie: steps should accept long runs");
    }

    [Test]
    public void ContextLimitIsRespectedWithDrafts()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        using InferenceContext small = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 40 });
        using var generator = new Generator(small);
        int[] greedy = generator.Generate(prompt, new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 100, StopTokens = [] }).Tokens;
        generator.Trie.AddOutputCorpus(greedy);
        GenerationResult result = generator.Generate(prompt, new GenerationOptions
        {
            Mode = DecodingMode.Lookahead, MaxTokens = 100, StopTokens = [], Drafts = new DraftOptions { DecodingLength = 16, Adaptive = false },
        });
        Assert.That(result.Tokens, Is.EqualTo(greedy));
        Assert.That(result.FinishReason, Is.EqualTo(FinishReason.ContextFull));
        Assert.That(result.Tokens, Has.Length.EqualTo(40 - prompt.Length + 1));
    }

    [TestCase(false)]
    [TestCase(true)]
    public void NoManagedAllocationPerStep(bool sampled)
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        using var generator = new Generator(context);
        int[] prompt = model.Tokenizer!.Encode(BenchPrompts(3)[2]);
        var options = new GenerationOptions
        {
            Mode = DecodingMode.Lookahead, MaxTokens = 200, StopTokens = [], Drafts = new DraftOptions { DecodingLength = 16 },
            Sampling = sampled ? new SamplingOptions { Temperature = 0.8f, TopP = 0.9f, RepetitionPenalty = 1.1f, Seed = 3 } : new SamplingOptions(),
        };
        generator.Generate(prompt, options);  // warms the trie, grows every buffer, JIT-compiles the loop
        var allocated = new long[options.MaxTokens + 1];
        int calls = 0;
        generator.Generate(prompt, options, _ => allocated[calls++] = GC.GetAllocatedBytesForCurrentThread());
        Assert.That(calls, Is.GreaterThan(20));
        Assert.That(allocated[calls - 1] - allocated[5], Is.Zero, $"bytes allocated over {calls - 6} steady-state steps");
    }

    [Test]
    public void AdaptiveSizerLearnsToStayGreedyWhenDraftsNeverHold()
    {
        // Drafts from the prompt alone (frequency source "input"), and a prompt the random model never
        // continues: the sizer must settle on one-node steps (plain greedy) once drafts have failed.
        var spec = new RandomModelSpec("never-accepts", Vocab: 300, Hidden: 32, Seed: 41);
        using RandomModel fixture = RandomModel.Create(spec);
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 1024 });
        using var generator = new Generator(context);
        var random = new Random(5);
        int[] phrase = Enumerable.Range(0, 20).Select(_ => random.Next(300)).ToArray();
        int[] prompt = Enumerable.Repeat(phrase, 10).SelectMany(x => x).ToArray();
        var options = new GenerationOptions
        {
            Mode = DecodingMode.Lookahead, MaxTokens = 300, StopTokens = [],
            Drafts = new DraftOptions { Frequency = FrequencySource.Input },
        };
        GenerationResult result = generator.Generate(prompt, options);
        Assert.That(result.Stats.AcceptedTokens, Is.Zero, "the fixture must be a case where drafts never hold");
        Assert.That(result.Stats.DraftedTokens, Is.LessThan(result.Stats.Steps / 2), "most steps verify the root alone");
        Assert.That(generator.Sizer.Calibration, Is.LessThan(0.6), "the per-level factor falls below its starting value");
        var greedy = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 300, StopTokens = [] };
        Assert.That(result.Tokens, Is.EqualTo(generator.Generate(prompt, greedy).Tokens));
    }
}
