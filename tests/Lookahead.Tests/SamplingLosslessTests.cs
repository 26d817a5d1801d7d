using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Tests.Fixtures;
using Lookahead.Tests.Reference;

namespace Lookahead.Tests;

/// <summary>
/// Lossless sampling: for the same seed, lookahead emits exactly the tokens plain sampling (one forward pass
/// per token) emits, for every draft mode and many settings; and plain sampling follows the processed
/// distribution of the reference forward pass.
/// </summary>
public class SamplingLosslessTests
{
    // Settings across the grid: temperatures 0.3 to 1.5, top-k 1/8/40, top-p 0.5/0.9/1, min-p, penalties.
    private static SamplingOptions Settings(int variant, ulong seed) => (variant % 8) switch
    {
        0 => new() { Temperature = 0.3f, Seed = seed },
        1 => new() { Temperature = 0.7f, TopK = 40, Seed = seed },
        2 => new() { Temperature = 1.0f, TopP = 0.9f, Seed = seed },
        3 => new() { Temperature = 1.5f, TopK = 8, TopP = 0.5f, Seed = seed },
        4 => new() { Temperature = 1.0f, MinP = 0.05f, RepetitionPenalty = 1.3f, Seed = seed },
        5 => new() { Temperature = 0.7f, PresencePenalty = 0.5f, FrequencyPenalty = 0.3f, Seed = seed },
        6 => new() { Temperature = 1.0f, TopK = 1, Seed = seed },
        _ => new() { Temperature = 0.8f, TopK = 40, TopP = 0.9f, MinP = 0.02f, RepetitionPenalty = 1.1f, Seed = seed },
    };

    [Test]
    public void Stories260KLookaheadSamplesExactlyThePlainTokensForEverySeedAndDraftMode()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 });
        List<int[]> prompts = LookaheadLosslessTests.BenchPrompts(6).Select(model.Tokenizer!.Encode).ToList();
        var random = new Random(7);
        long accepted = 0;
        foreach (DraftMode mode in Enum.GetValues<DraftMode>())
        {
            var drafts = new DraftOptions { Mode = mode, DecodingLength = 16, Adaptive = false };
            using var trie = new TokenTrie(Generator.DefaultTrieOptions(model, drafts.BranchLength));
            using var lookahead = new Generator(context, trie);
            using var plain = new Generator(context);
            foreach (int[] prompt in prompts.Take(2))  // warm the trie with greedy outputs
                lookahead.Generate(prompt, new GenerationOptions { MaxTokens = 64, Drafts = drafts });
            for (ulong seed = 0; seed < 200; seed++)
            {
                int[] prompt = prompts[(int)(seed % (ulong)prompts.Count)];
                // Length limits and stop tokens that may fall inside an accepted run.
                int maxTokens = seed % 4 == 0 ? random.Next(1, 48) : 48;
                var sampling = Settings((int)seed, seed * 1_000_003 + (ulong)mode);
                var plainOptions = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = maxTokens, Sampling = sampling, StopTokens = [] };
                GenerationResult want = plain.Generate(prompt, plainOptions);
                IReadOnlyList<int> stops = seed % 5 == 1 && want.Tokens.Length > 3 ? [want.Tokens[random.Next(want.Tokens.Length)]] : [];
                if (stops.Count > 0) want = plain.Generate(prompt, plainOptions with { StopTokens = stops });
                GenerationResult got = lookahead.Generate(prompt, plainOptions with { Mode = DecodingMode.Lookahead, Drafts = drafts, StopTokens = stops });
                Assert.That(got.Tokens, Is.EqualTo(want.Tokens), $"{mode}, seed {seed}, settings {(int)seed % 8}");
                Assert.That(got.Seed, Is.EqualTo(sampling.Seed));
                accepted += got.Stats.AcceptedTokens;
            }
        }
        Assert.That(accepted, Is.GreaterThan(2000), "drafts must be accepted often for the comparison to mean anything");
    }

    [Test]
    public void RandomModelsLookaheadSamplesExactlyThePlainTokens()
    {
        foreach (RandomModelSpec spec in new[] { new RandomModelSpec("sample-gqa", Heads: 4, KvHeads: 2), new RandomModelSpec("sample-tied", Tied: true, Dtype: Lookahead.Model.TensorDtype.BF16) })
        {
            using RandomModel fixture = RandomModel.Create(spec);
            using LanguageModel model = LanguageModel.Load(fixture.Folder);
            using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 });
            var drafts = new DraftOptions { DecodingLength = 8, Adaptive = false };
            using var lookahead = new Generator(context);
            using var plain = new Generator(context);
            for (ulong seed = 0; seed < 50; seed++)
            {
                int[] prompt = [1, (int)(seed % 90) + 3, 7, (int)(seed % 90) + 3, 7];
                var options = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 40, Sampling = Settings((int)seed, seed), StopTokens = [] };
                int[] want = plain.Generate(prompt, options).Tokens;
                Assert.That(lookahead.Generate(prompt, options with { Mode = DecodingMode.Lookahead, Drafts = drafts }).Tokens, Is.EqualTo(want),
                    $"{spec.Name} seed {seed}");
            }
        }
    }

    [Test]
    public void TemperatureZeroAndTopKOneAreGreedyAndTheSeedRepeats()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { ContextLength = 128 });
        using var generator = new Generator(context);
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        var greedy = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 60, StopTokens = [] };
        int[] want = generator.Generate(prompt, greedy).Tokens;
        Assert.That(generator.Generate(prompt, greedy).Seed, Is.Null, "greedy decoding draws nothing");
        Assert.That(generator.Generate(prompt, greedy with { Sampling = new() { Temperature = 0, Seed = 5 } }).Tokens, Is.EqualTo(want));
        Assert.That(generator.Generate(prompt, greedy with { Sampling = new() { Temperature = 1.2f, TopK = 1, Seed = 5 } }).Tokens, Is.EqualTo(want));

        // No seed: one is picked, reported, and reproduces the run.
        var sampled = greedy with { Sampling = new() { Temperature = 1.0f } };
        GenerationResult first = generator.Generate(prompt, sampled);
        Assert.That(first.Seed, Is.Not.Null);
        Assert.That(generator.Generate(prompt, sampled with { Sampling = sampled.Sampling with { Seed = first.Seed } }).Tokens, Is.EqualTo(first.Tokens));
        Assert.That(first.Tokens, Is.Not.EqualTo(want), "sampling at temperature 1 leaves the greedy path on this prompt");
    }

    [Test]
    public void BadSettingsAreRefusedByName()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { ContextLength = 64 });
        using var generator = new Generator(context);
        foreach ((SamplingOptions sampling, string name) in new (SamplingOptions, string)[]
                 {
                     (new() { Temperature = -1 }, "temperature"), (new() { Temperature = float.NaN }, "temperature"),
                     (new() { TopP = 0 }, "top-p"), (new() { TopP = 1.5f }, "top-p"), (new() { TopK = -2 }, "top-k"),
                     (new() { MinP = 2 }, "min-p"), (new() { RepetitionPenalty = 0 }, "repetition penalty"),
                     (new() { FrequencyPenalty = float.PositiveInfinity }, "frequency penalty"),
                 })
        {
            var error = Assert.Throws<ArgumentException>(() => generator.Generate([1, 2], new GenerationOptions { Sampling = sampling }));
            Assert.That(error!.Message, Does.StartWith(name));
        }
    }

    [TestCase(1.0f, 0)]
    [TestCase(0.7f, 20)]
    public void FirstSampledTokenFollowsTheReferenceDistribution(float temperature, int topK)
    {
        // A small random model; the reference forward pass (double precision) gives the logits, processed here
        // by temperature and top-k; 20,000 seeds must match it (chi-square at p >= 0.001 over tokens with an
        // expected count of at least 5, the rest pooled).
        using RandomModel fixture = RandomModel.Create(new RandomModelSpec("chi-square", Heads: 4, KvHeads: 2, Vocab: 61, LayerGain: 1.0));
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 16 });
        int[] prompt = [1, 9, 4];
        ReferenceModel reference = fixture.CreateReference();
        double[] logits = [];
        foreach (int token in prompt) logits = reference.Forward(token);
        double[] scaled = logits.Select(l => l / temperature).ToArray();
        int[] order = Enumerable.Range(0, scaled.Length).OrderByDescending(i => scaled[i]).ThenBy(i => i).ToArray();
        var keep = new HashSet<int>(topK > 0 ? order.Take(topK) : order);
        double top = scaled.Max();
        double[] p = scaled.Select((l, i) => keep.Contains(i) ? Math.Exp(l - top) : 0).ToArray();
        double total = p.Sum();
        for (int i = 0; i < p.Length; i++) p[i] /= total;

        const int draws = 20_000;
        var counts = new int[p.Length];
        using var generator = new Generator(context);
        for (ulong seed = 0; seed < draws; seed++)
        {
            var options = new GenerationOptions
            {
                Mode = DecodingMode.Greedy, MaxTokens = 1, StopTokens = [],
                Sampling = new() { Temperature = temperature, TopK = topK, Seed = seed * 0x9E3779B97F4A7C15UL },
            };
            counts[generator.Generate(prompt, options).Tokens[0]]++;
        }
        double chi = 0, pooledExpected = 0, pooledObserved = 0;
        int bins = 0;
        for (int i = 0; i < p.Length; i++)
        {
            double expected = p[i] * draws;
            if (expected >= 5)
            {
                chi += (counts[i] - expected) * (counts[i] - expected) / expected;
                bins++;
            }
            else
            {
                pooledExpected += expected;
                pooledObserved += counts[i];
            }
        }
        if (pooledExpected >= 5)
        {
            chi += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected;
            bins++;
        }
        Assert.That(bins, Is.GreaterThanOrEqualTo(5), "the distribution must spread over several tokens for the test to mean anything");
        // Wilson-Hilferty: the chi-square quantile at 1 - 0.001 for bins - 1 degrees of freedom (z = 3.0902).
        double df = bins - 1, critical = df * Math.Pow(1 - 2 / (9 * df) + 3.0902 * Math.Sqrt(2 / (9 * df)), 3);
        Assert.That(chi, Is.LessThan(critical), $"chi-square {chi:F1} over {bins} bins");
    }
}
