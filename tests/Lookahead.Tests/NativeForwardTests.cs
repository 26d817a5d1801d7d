using Lookahead.Decoding;
using Lookahead.Model;
using Lookahead.Tests.Fixtures;
using Lookahead.Tests.Reference;

namespace Lookahead.Tests;

/// <summary>Native logits against the managed double-precision reference, element by element.</summary>
public class NativeForwardTests
{
    public static readonly RandomModelSpec[] Shapes =
    [
        new("mha-f32"),
        new("gqa2-odd-hidden-f32", Hidden: 33, Intermediate: 61, Heads: 4, KvHeads: 2, HeadDim: 8, Seed: 2),
        // A tied head echoes the input token unless the layers are strong enough to move the residual.
        new("gqa4-tied-f32", Hidden: 64, Intermediate: 100, Layers: 3, Heads: 8, KvHeads: 2, Tied: true, Seed: 3, LayerGain: 4),
        new("qwen2-bias-gqa2", Hidden: 48, Intermediate: 80, Heads: 4, KvHeads: 2, Architecture: "Qwen2ForCausalLM", Seed: 4),
        new("mistral-f16", Hidden: 32, Heads: 4, KvHeads: 2, Dtype: TensorDtype.F16, Architecture: "MistralForCausalLM", Seed: 5),
        new("bf16-untied", Hidden: 40, Intermediate: 64, Heads: 2, KvHeads: 1, Dtype: TensorDtype.BF16, Seed: 6),
        new("sharded-gqa4-bf16", Hidden: 64, Heads: 8, KvHeads: 2, Dtype: TensorDtype.BF16, Sharded: true, Seed: 7),
    ];

    [TestCaseSource(nameof(Shapes))]
    public void PrefillAndDecodeLogitsMatchReference(RandomModelSpec spec)
    {
        using RandomModel fixture = RandomModel.Create(spec);
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256, Threads = 2 });
        ReferenceModel reference = fixture.CreateReference();
        var random = new Random(spec.Seed);
        int[] prompt = Enumerable.Range(0, 37).Select(_ => random.Next(spec.Vocab)).ToArray();

        context.Eval(prompt, default, LogitsMode.All);
        var logits = new float[spec.Vocab];
        for (int i = 0; i < prompt.Length; i++)
        {
            double[] want = reference.Forward(prompt[i]);
            context.CopyLogits(i, logits);
            LogitsAssert.Close(logits, want, $"{spec} prefill position {i}", spec.Dtype);
        }
        context.CommitChain(prompt.Length);

        for (int step = 0; step < 12; step++)
        {
            int token = random.Next(spec.Vocab);
            context.Eval([token], default, LogitsMode.Last);
            context.CopyLogits(0, logits);
            LogitsAssert.Close(logits, reference.Forward(token), $"{spec} decode position {prompt.Length + step}", spec.Dtype);
            context.CommitChain(1);
        }
    }

    [Test]
    public void Stories260KLogitsMatchReferenceIncludingAfterALongPrefill()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        ReferenceModel reference = ReferenceModel.LoadF32Folder(TestPaths.Stories260K);
        var random = new Random(260);
        int[] prompt = Enumerable.Range(0, 420).Select(_ => random.Next(3, 512)).ToArray();
        prompt[0] = 1;

        // Chunked like real prefill (BatchSize 512 > 420, so force several chunks through Eval directly).
        var logits = new float[512];
        for (int start = 0; start < prompt.Length; start += 100)
        {
            int[] chunk = prompt[start..Math.Min(prompt.Length, start + 100)];
            context.Eval(chunk, default, LogitsMode.All);
            for (int i = 0; i < chunk.Length; i++)
            {
                double[] want = reference.Forward(chunk[i]);
                if ((start + i) % 7 != 0 && start + i < 400) continue;  // sample early positions, check all late ones
                context.CopyLogits(i, logits);
                LogitsAssert.Close(logits, want, $"stories260K position {start + i}");
            }
            context.CommitChain(chunk.Length);
        }
        for (int position = prompt.Length; position < 512; position += 13)
        {
            int token = random.Next(512);
            // Keep the reference in step for the positions skipped by the stride.
            while (reference.Position < position)
            {
                int filler = (reference.Position * 31) % 512;
                reference.Forward(filler);
                context.Eval([filler], default, LogitsMode.None);
                context.CommitChain(1);
            }
            context.Eval([token], default, LogitsMode.Last);
            context.CopyLogits(0, logits);
            LogitsAssert.Close(logits, reference.Forward(token), $"stories260K position {position}");
            context.CommitChain(1);
        }
    }

    // A 16-bit cache rounds each key (after RoPE) and value once, when it is written; the reference rounds
    // its own keys and values the same way. Near a rounding boundary the library's float and the reference's
    // double round to neighbouring 16-bit values, hence BF16's wider bound (LogitsAssert.Bf16Tolerance); a
    // half's step is 16 times finer.
    [TestCase("mha-f32", KvCacheType.BF16)]
    [TestCase("mha-f32", KvCacheType.F16)]
    [TestCase("gqa2-odd-hidden-f32", KvCacheType.BF16)]
    [TestCase("qwen2-bias-gqa2", KvCacheType.F16)]
    [TestCase("bf16-untied", KvCacheType.BF16)]
    public void SixteenBitKvCachesMatchAReferenceThatRoundsKeysAndValues(string shape, KvCacheType kvCache)
    {
        RandomModelSpec spec = Shapes.Single(s => s.Name == shape);
        using RandomModel fixture = RandomModel.Create(spec);
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, Threads = 2, KvCacheType = kvCache });
        using InferenceContext f32 = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, Threads = 2 });
        Assert.That(context.KvCacheType, Is.EqualTo(kvCache));
        ReferenceModel reference = fixture.CreateReference(kvCache);
        double tolerance = kvCache == KvCacheType.BF16 ? LogitsAssert.Bf16Tolerance : spec.Dtype == TensorDtype.BF16 ? LogitsAssert.Bf16Tolerance : 2e-3;
        var random = new Random(spec.Seed + 100);
        int[] prompt = Enumerable.Range(0, 29).Select(_ => random.Next(spec.Vocab)).ToArray();
        context.Eval(prompt, default, LogitsMode.All);
        f32.Eval(prompt, default, LogitsMode.All);
        var logits = new float[spec.Vocab];
        var f32Logits = new float[spec.Vocab];
        bool differsFromF32 = false;
        for (int i = 0; i < prompt.Length; i++)
        {
            context.CopyLogits(i, logits);
            f32.CopyLogits(i, f32Logits);
            differsFromF32 |= !logits.AsSpan().SequenceEqual(f32Logits);
            LogitsAssert.Close(logits, reference.Forward(prompt[i]), $"{spec} {kvCache} cache, prefill position {i}", tolerance, tolerance);
        }
        context.CommitChain(prompt.Length);
        for (int step = 0; step < 8; step++)
        {
            int token = random.Next(spec.Vocab);
            context.Eval([token], default, LogitsMode.Last);
            context.CopyLogits(0, logits);
            LogitsAssert.Close(logits, reference.Forward(token), $"{spec} {kvCache} cache, decode position {prompt.Length + step}", tolerance, tolerance);
            context.CommitChain(1);
        }
        Assert.That(differsFromF32, Is.True, "the cache holds rounded keys and values, so some logits differ from an F32 cache's");
    }

    [Test]
    public void EveryCpuVariantGivesTheSameGreedyTokens()
    {
        // The native kernel tests compare each matrix kernel with a double loop; here the whole model runs on
        // each backend variant (portable, AVX2, AVX-512 without the BF16 dot product, and the best this CPU has).
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        var options = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 64, StopTokens = [] };
        int[] Greedy(CpuKernel cap, out CpuKernel used)
        {
            using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, CpuKernel = cap });
            used = context.CpuKernel;
            return new Generator(context).GenerateOnce(prompt, options).Tokens;
        }
        int[] best = Greedy(CpuKernel.Auto, out CpuKernel bestKernel);
        Assert.That(bestKernel, Is.Not.EqualTo(CpuKernel.Auto));
        foreach (CpuKernel cap in new[] { CpuKernel.Scalar, CpuKernel.Avx2, CpuKernel.Avx512, CpuKernel.Avx512Bf16 })
        {
            int[] capped = Greedy(cap, out CpuKernel used);
            Assert.That(used, Is.EqualTo(cap < bestKernel ? cap : bestKernel), $"the kernel a cap of {cap} gives on a CPU whose best is {bestKernel}");
            Assert.That(capped, Is.EqualTo(best), cap.ToString());
        }
    }
}
