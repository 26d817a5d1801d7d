using Lookahead.Decoding;
using Lookahead.Interop;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>Several sequences on one context through the managed wrapper (the C ABI's "sequences").</summary>
public class SequencesTests
{
    // Two prompts decoded together, one node each per step, emit what each emits alone through the Generator.
    [Test]
    public void BatchedGreedyEqualsEachPromptAlone()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        List<int[]> prompts = LookaheadLosslessTests.BenchPrompts(3).Select(model.Tokenizer!.Encode).ToList();
        var plain = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 30, StopTokens = [] };
        List<int[]> alone;
        using (InferenceContext single = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 }))
            alone = prompts.Select(p => new Generator(single).GenerateOnce(p, plain).Tokens).ToList();

        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256, MaxSequences = 3 });
        var last = new int[prompts.Count];
        for (int s = 0; s < prompts.Count; s++)
        {
            if (s > 0) Assert.That(context.AddSequence(), Is.EqualTo(s));
            context.PrefillSequence(s, prompts[s][..^1]);
            last[s] = prompts[s][^1];
            Assert.That(context.GetSequenceInfo(s).CommittedTokens, Is.EqualTo(prompts[s].Length - 1));
        }
        var produced = prompts.Select(_ => new List<int>()).ToList();
        int[] parents = Enumerable.Repeat(-1, prompts.Count).ToArray();
        int[] ids = Enumerable.Range(0, prompts.Count).ToArray();
        var output = new int[prompts.Count];
        var counts = new int[prompts.Count];
        for (int step = 0; step < 30; step++)
        {
            Assert.That(context.DecodeGreedySequences(last, parents, ids, output, counts), Is.EqualTo(prompts.Count));
            for (int s = 0; s < prompts.Count; s++)
            {
                Assert.That(counts[s], Is.EqualTo(1));
                produced[s].Add(output[s]);
                last[s] = output[s];
            }
        }
        for (int s = 0; s < prompts.Count; s++) Assert.That(produced[s], Is.EqualTo(alone[s]), $"prompt {s}");
    }

    [Test]
    public void MisuseIsAnExceptionAndChangesNothing()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 64, MaxSequences = 2 });
        Assert.That(context.AddSequence(), Is.EqualTo(1));
        var full = Assert.Throws<LookaheadException>(() => context.AddSequence());
        Assert.That(full!.Status, Is.EqualTo(NativeStatus.ContextFull));
        context.PrefillSequence(1, [1, 5, 9]);
        context.RemoveSequence(0);
        var dead = Assert.Throws<LookaheadException>(() => context.DecodeGreedySequences([3], [-1], [0], new int[1], new int[1]));
        Assert.That(dead!.Status, Is.EqualTo(NativeStatus.InvalidState));
        Assert.Throws<ArgumentException>(() => context.DecodeGreedySequences([3, 4], [-1], [1, 1], new int[2], new int[1]));
        Assert.Throws<ArgumentException>(() => context.DecodeGreedySequences([3, 4], [-1, -1], [1, 0], new int[2], new int[1]));
        Assert.That(context.GetSequenceInfo(1).CommittedTokens, Is.EqualTo(3));
        context.TruncateSequence(1, 1);
        Assert.That(context.GetSequenceInfo(1), Is.EqualTo((1, 1)));
    }
}
