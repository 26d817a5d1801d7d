using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>
/// The CUDA backend through the managed API: against the CPU backend, and lookahead against greedy on the
/// device. Ignored (reported as skipped) where this build has no CUDA backend or the machine no device.
/// </summary>
[Category("Gpu")]
public class GpuTests
{
    // Both backends see the same weights; only the order of float sums differs (BF16: see LogitsAssert).
    private const double Tolerance = 2e-4;

    [SetUp]
    public void RequireCuda()
    {
        if (!LanguageModel.IsBackendAvailable(Backend.Cuda)) Assert.Ignore($"no CUDA device ({LanguageModel.SystemInfo})");
    }

    [TestCaseSource(typeof(NativeForwardTests), nameof(NativeForwardTests.Shapes))]
    public void CudaLogitsMatchTheCpuBackend(RandomModelSpec spec)
    {
        using RandomModel fixture = RandomModel.Create(spec);
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext cpu = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 });
        using InferenceContext gpu = model.CreateContext(new ContextOptions { Backend = Backend.Cuda, ContextLength = 256 });
        Assert.That(gpu.Backend, Is.EqualTo(Backend.Cuda));
        var random = new Random(spec.Seed);
        int[] tokens = Enumerable.Range(0, 40).Select(_ => random.Next(spec.Vocab)).ToArray();
        cpu.Eval(tokens, default, LogitsMode.All);
        gpu.Eval(tokens, default, LogitsMode.All);
        var want = new float[spec.Vocab];
        var got = new float[spec.Vocab];
        for (int i = 0; i < tokens.Length; i++)
        {
            cpu.CopyLogits(i, want);
            gpu.CopyLogits(i, got);
            LogitsAssert.Close(got, want.Select(v => (double)v).ToArray(), $"{spec} position {i}", spec.Dtype, Tolerance, Tolerance);
        }
    }

    [Test]
    public void Stories260KGreedyTokensMatchTheCpuBackend()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext cpu = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        using InferenceContext gpu = model.CreateContext(new ContextOptions { Backend = Backend.Cuda });
        var options = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 200, StopTokens = [] };
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        using var onCpu = new Generator(cpu);
        using var onGpu = new Generator(gpu);
        Assert.That(onGpu.Generate(prompt, options).Tokens, Is.EqualTo(onCpu.Generate(prompt, options).Tokens));
    }

    [TestCase(8)]
    [TestCase(64)]
    public void LookaheadOnCudaEqualsGreedyOnCuda(int decodingLength)
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext gpu = model.CreateContext(new ContextOptions { Backend = Backend.Cuda });
        using var generator = new Generator(gpu);
        var greedy = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 128 };
        var lookahead = greedy with { Mode = DecodingMode.Lookahead, Drafts = new DraftOptions { DecodingLength = decodingLength, Adaptive = false } };
        foreach (string text in LookaheadLosslessTests.BenchPrompts(12))
        {
            int[] prompt = model.Tokenizer!.Encode(text);
            int[] expected = generator.Generate(prompt, greedy).Tokens;
            Assert.That(generator.Generate(prompt, lookahead).Tokens, Is.EqualTo(expected), text);
        }
    }

    // Sampling on the device: lookahead equals plain sampling on CUDA for the same seed, penalties included.
    [TestCase(8)]
    [TestCase(64)]
    public void SampledLookaheadOnCudaEqualsPlainSamplingOnCuda(int decodingLength)
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext gpu = model.CreateContext(new ContextOptions { Backend = Backend.Cuda });
        using var generator = new Generator(gpu);
        var drafts = new DraftOptions { DecodingLength = decodingLength, Adaptive = false };
        ulong seed = 0;
        foreach (string text in LookaheadLosslessTests.BenchPrompts(12))
        {
            int[] prompt = model.Tokenizer!.Encode(text);
            var sampling = seed % 2 == 0
                ? new SamplingOptions { Temperature = 0.8f, TopP = 0.9f, Seed = seed }
                : new SamplingOptions { Temperature = 1.0f, TopK = 40, RepetitionPenalty = 1.2f, FrequencyPenalty = 0.2f, Seed = seed };
            seed++;
            var plain = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 128, Sampling = sampling };
            int[] expected = generator.Generate(prompt, plain).Tokens;
            Assert.That(generator.Generate(prompt, plain with { Mode = DecodingMode.Lookahead, Drafts = drafts }).Tokens, Is.EqualTo(expected), text);
        }
    }

    // Device time on CUDA: counted for every call, no more than the steps took, tokens unchanged.
    [Test]
    public void DeviceTimeMeasuresTheGpuShareOfTheSteps()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext gpu = model.CreateContext(new ContextOptions { Backend = Backend.Cuda });
        using var generator = new Generator(gpu);
        var options = new GenerationOptions { Mode = DecodingMode.Lookahead, MaxTokens = 64, StopTokens = [] };
        int[] prompt = model.Tokenizer!.Encode("Once upon a time, there was a little girl named Lily.");
        int[] plain = generator.Generate(prompt, options).Tokens;

        gpu.Profiling = ProfilingMode.Device;
        GenerationResult timed = generator.Generate(prompt, options);

        Assert.That(timed.Tokens, Is.EqualTo(plain));
        Assert.That(timed.Stats.DeviceTime, Is.GreaterThan(TimeSpan.Zero));
        Assert.That(timed.Stats.DeviceTime, Is.LessThanOrEqualTo(timed.Stats.ForwardTime));
        StageTime device = gpu.GetProfile().Single(s => s.Name == "device");
        Assert.That(device.Calls, Is.GreaterThanOrEqualTo(2 * timed.Stats.Steps), "a forward pass and a verification per step at least");
    }
}
