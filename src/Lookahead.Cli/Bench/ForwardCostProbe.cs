using System.Diagnostics;
using Lookahead.Decoding;

namespace Lookahead.Cli.Bench;

/// <summary>
/// Measures t(k): the time of one fused step (tree forward, verification, compaction) over a k-node
/// draft tree at a given committed context length, median of several repetitions.
/// </summary>
internal static class ForwardCostProbe
{
    public static readonly int[] Sizes = [1, 2, 4, 8, 16, 32, 64];

    public static List<ForwardCost> Measure(InferenceContext context, int contextLength, int repetitions = 15)
    {
        var random = new Random(1);
        int vocab = context.Model.Config.VocabSize;
        int committed = Math.Max(0, Math.Min(contextLength, context.ContextLength - Sizes[^1] - 1));
        int[] prefix = Enumerable.Range(0, committed).Select(_ => random.Next(vocab)).ToArray();
        context.Truncate(0);
        context.Prefill(prefix);
        var costs = new List<ForwardCost>();
        foreach (int k in Sizes.Where(k => k <= context.BatchSize && committed + k <= context.ContextLength))
        {
            // A bushy random tree: each node hangs below one of the previous four.
            int[] tokens = Enumerable.Range(0, k).Select(_ => random.Next(vocab)).ToArray();
            int[] parents = Enumerable.Range(0, k).Select(i => i == 0 ? -1 : random.Next(Math.Max(0, i - 4), i)).ToArray();
            var output = new int[k];
            var times = new double[repetitions];
            for (int r = -2; r < repetitions; r++)
            {
                long start = Stopwatch.GetTimestamp();
                context.DecodeGreedy(tokens, parents, output);
                double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                context.Truncate(committed);
                if (r >= 0) times[r] = ms;
            }
            Array.Sort(times);
            costs.Add(new ForwardCost(k, times[repetitions / 2]));
        }
        context.Truncate(0);
        return costs;
    }
}
