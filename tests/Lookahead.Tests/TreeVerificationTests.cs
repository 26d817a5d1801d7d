using Lookahead.Decoding;
using Lookahead.Tests.Fixtures;
using Lookahead.Tests.Reference;

namespace Lookahead.Tests;

/// <summary>
/// Tree attention against the reference run on each root-to-node path separately, and fused greedy
/// verification against brute force over all paths, including exactly tied logits.
/// </summary>
public class TreeVerificationTests
{
    private static (int[] Tokens, int[] Parents) RandomTree(Random random, int count, int vocab)
    {
        var tokens = new int[count];
        var parents = new int[count];
        parents[0] = -1;
        for (int i = 0; i < count; i++)
        {
            tokens[i] = random.Next(vocab);
            if (i > 0) parents[i] = random.Next(i);
        }
        return (tokens, parents);
    }

    private static List<int> PathTokens(int[] tokens, int[] parents, int node)
    {
        var path = new List<int>();
        for (int n = node; n >= 0; n = parents[n]) path.Insert(0, tokens[n]);
        return path;
    }

    private static bool LexicographicallyBefore(List<int> a, List<int> b)
    {
        for (int i = 0; i < Math.Min(a.Count, b.Count); i++)
            if (a[i] != b[i]) return a[i] < b[i];
        return a.Count < b.Count;
    }

    [TestCaseSource(typeof(NativeForwardTests), nameof(NativeForwardTests.Shapes))]
    public void EveryNodeMatchesTheReferenceOnItsOwnPath(RandomModelSpec spec)
    {
        using RandomModel fixture = RandomModel.Create(spec);
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, Threads = 2 });
        var random = new Random(spec.Seed * 31);
        int[] prefix = Enumerable.Range(0, 9).Select(_ => random.Next(spec.Vocab)).ToArray();
        (int[] tokens, int[] parents) = RandomTree(random, 20, spec.Vocab);
        context.Prefill(prefix);
        context.Eval(tokens, parents, LogitsMode.All);
        var logits = new float[spec.Vocab];
        for (int node = 0; node < tokens.Length; node++)
        {
            ReferenceModel reference = fixture.CreateReference();
            double[] want = [];
            foreach (int token in prefix.Concat(PathTokens(tokens, parents, node))) want = reference.Forward(token);
            context.CopyLogits(node, logits);
            LogitsAssert.Close(logits, want, $"{spec} tree node {node}", spec.Dtype);
        }
    }

    [Test]
    public void FusedVerificationEqualsBruteForceIncludingExactTies()
    {
        // lm_head rows 3 and 8 are identical: whenever either is the top logit, both are, and the lower id wins.
        var spec = new RandomModelSpec("ties", Vocab: 12, Hidden: 24, Heads: 2, KvHeads: 1, Seed: 21, TiedLogits: (3, 8));
        using RandomModel fixture = RandomModel.Create(spec);
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext scoring = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 });
        using InferenceContext fused = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 });
        var random = new Random(4);
        var logits = new float[spec.Vocab];
        int ties = 0;
        for (int trial = 0; trial < 300; trial++)
        {
            int[] prefix = Enumerable.Range(0, 1 + random.Next(6)).Select(_ => random.Next(spec.Vocab)).ToArray();
            (int[] tokens, int[] parents) = RandomTree(random, 1 + random.Next(24), spec.Vocab);
            scoring.Truncate(0);
            scoring.Prefill(prefix);
            scoring.Eval(tokens, parents, LogitsMode.All);
            var argmax = new int[tokens.Length];
            for (int i = 0; i < tokens.Length; i++)
            {
                scoring.CopyLogits(i, logits);
                float best = logits.Max();
                argmax[i] = Array.IndexOf(logits, best);  // first index: the lowest id among ties
                if (logits[3] == best && logits[8] == best) ties++;
            }
            // Brute force: among nodes whose root path the model agrees with, the deepest, then the
            // lexicographically smallest path of node indices.
            List<int> bestPath = [0];
            for (int node = 0; node < tokens.Length; node++)
            {
                var path = new List<int>();
                for (int n = node; n >= 0; n = parents[n]) path.Insert(0, n);
                bool agreed = Enumerable.Range(1, path.Count - 1).All(j => tokens[path[j]] == argmax[path[j - 1]]);
                if (agreed && (path.Count > bestPath.Count || (path.Count == bestPath.Count && LexicographicallyBefore(path, bestPath))))
                    bestPath = path;
            }
            int[] expected = [.. bestPath.Skip(1).Select(n => tokens[n]), argmax[bestPath[^1]]];

            fused.Truncate(0);
            fused.Prefill(prefix);
            var output = new int[tokens.Length];
            int count = fused.DecodeGreedy(tokens, parents, output);
            Assert.That(output[..count], Is.EqualTo(expected), $"trial {trial}");
            Assert.That(fused.CommittedTokens, Is.EqualTo(prefix.Length + bestPath.Count));

            // The compacted cache continues exactly like a cache that saw the accepted tokens one by one.
            int[] accepted = [.. prefix, .. bestPath.Select(n => tokens[n])];
            scoring.Truncate(0);
            scoring.Prefill(accepted);
            scoring.Eval([expected[^1]], default, LogitsMode.Last);
            scoring.CopyLogits(0, logits);
            var next = new int[1];
            fused.DecodeGreedy([expected[^1]], default, next);
            Assert.That(next[0], Is.EqualTo(Array.IndexOf(logits, logits.Max())), $"trial {trial}: continuation after compaction");
        }
        Assert.That(ties, Is.Positive, "the fixture must actually produce tied logits");
    }
}
