using Lookahead.Drafting;

namespace Lookahead.Batching;

/// <summary>
/// Chooses each batched step's draft nodes: the total from the measured cost of the whole batch's forward
/// pass, t(total nodes), and the nodes themselves by marginal value across the sequences, not an even split.
/// </summary>
/// <remarks>
/// A node's value is its expected acceptance: the trie's confidence in it (its share among its siblings,
/// compounded along its branch) times its sequence's learned per-level factor c raised to its depth, as in
/// <see cref="Decoding.DraftSizer"/>. Every sequence verifies its root; extra nodes are taken one at a time
/// from the sequence whose next node (its drafts are best-first, so a parent always comes before its
/// children) is worth most. The total N maximizes (roots + expected accepted) / t(N) over the sizes tried,
/// with t learned from the steps' own timings per total (each sample clipped at 1.5x the estimate), an
/// untimed total extrapolated from the timed ones, and no total priced below a plain step of the same
/// sequences. Totals beyond twice the largest timed one are not tried, so large batches are reached step by
/// step. With drafts that do not hold, c falls, extra nodes stop paying and every step is one node per
/// sequence: plain batched greedy decoding. Every <see cref="Decoding.DraftSizer.ExploreEvery"/>th step that
/// declines all drafts verifies one extra node anyway, so that a factor can recover. Reads no clock.
/// </remarks>
internal sealed class BatchDraftBudget
{
    private const double Smoothing = 0.3;
    private const double SampleClip = 1.5;
    private const double FirstSampleClip = 2.0;
    // Until two totals are timed, each extra node is assumed to cost this share of a one-node-per-sequence step.
    private const double PriorMarginalShare = 0.1;

    private readonly SortedDictionary<int, double> _seconds = new();  // total nodes -> smoothed step seconds
    private int _declinedInARow;
    private int[] _heads = [];

    /// <summary>One sequence of a step: its draft (best-first, root first), the most nodes it may verify, and
    /// its acceptance factor; <see cref="Choose"/> writes how many nodes it verifies and their expected
    /// acceptances.</summary>
    public sealed class Entry
    {
        public DraftTree Draft = null!;
        public int Cap;            // at least 1
        public double Factor = 0.6;
        public bool Fixed;         // verifies min(Cap, draft) nodes whatever the budget (not adaptive)
        public int Chosen;
        public double Predicted;
    }

    /// <summary>Sizes every entry's draft for this step (Entry.Chosen); returns the step's total nodes.</summary>
    public int Choose(IReadOnlyList<Entry> entries, int maxTotal)
    {
        int roots = 0, fixedNodes = 0;
        foreach (Entry e in entries)
        {
            e.Predicted = 0;
            e.Chosen = e.Fixed ? Math.Min(e.Cap, e.Draft.Count) : 1;
            if (e.Fixed)
            {
                for (int j = 1; j < e.Chosen; j++) e.Predicted += Value(e, j);
                fixedNodes += e.Chosen;
            }
            else
            {
                roots++;
            }
        }
        // Fixed drafts give nodes back, largest first, when they alone would overflow the batch.
        while (roots + fixedNodes > maxTotal)
        {
            Entry largest = entries.Where(e => e.Fixed).MaxBy(e => e.Chosen)!;
            if (largest.Chosen == 1) break;
            largest.Predicted -= Value(largest, largest.Chosen - 1);
            largest.Chosen--;
            fixedNodes--;
        }
        int baseTotal = roots + fixedNodes;
        if (_heads.Length < entries.Count) _heads = new int[entries.Count];
        if (!_seconds.Keys.Any(k => k <= baseTotal)) return baseTotal;  // time a plain step first: others are judged against it

        // The marginal order: repeatedly the adaptive sequence whose next node is worth most.
        int limit = Math.Min(maxTotal, Math.Max(2 * LargestTimed(), baseTotal + 2));
        var order = new List<(int Entry, double Value)>();
        for (int i = 0; i < entries.Count; i++) _heads[i] = 1;
        while (baseTotal + order.Count < limit)
        {
            int best = -1;
            double bestValue = 0;
            for (int i = 0; i < entries.Count; i++)
            {
                Entry e = entries[i];
                if (e.Fixed || _heads[i] >= Math.Min(e.Cap, e.Draft.Count)) continue;
                double v = Value(e, _heads[i]);
                if (best < 0 || v > bestValue)
                {
                    best = i;
                    bestValue = v;
                }
            }
            if (best < 0) break;
            order.Add((best, bestValue));
            _heads[best]++;
        }

        double plain = Cost(baseTotal);
        double bestRate = (entries.Count + Predicted(entries)) / plain, expected = 0;
        int bestExtra = 0;
        for (int extra = 1; extra <= order.Count; extra++)
        {
            expected += order[extra - 1].Value;
            if (!IsCandidate(extra, order.Count)) continue;
            double rate = (entries.Count + Predicted(entries) + expected) / Math.Max(Cost(baseTotal + extra), plain);
            if (rate > bestRate * 1.01)
            {
                bestRate = rate;
                bestExtra = extra;
            }
        }
        if (bestExtra == 0 && order.Count > 0 && ++_declinedInARow >= Decoding.DraftSizer.ExploreEvery) bestExtra = 1;
        if (bestExtra > 0) _declinedInARow = 0;
        for (int k = 0; k < bestExtra; k++)
        {
            Entry e = entries[order[k].Entry];
            e.Chosen++;
            e.Predicted += order[k].Value;
        }
        return baseTotal + bestExtra;
    }

    /// <summary>Learns from a verified step: its total nodes and native seconds, and per entry the draft
    /// tokens accepted (in the order of the entries given to Choose).</summary>
    public void Observe(IReadOnlyList<Entry> entries, int total, double seconds, ReadOnlySpan<int> accepted)
    {
        if (_seconds.TryGetValue(total, out double known))
            _seconds[total] = (1 - Smoothing) * known + Smoothing * Math.Min(seconds, SampleClip * known);
        else
            _seconds[total] = _seconds.Count == 0 ? seconds : Math.Min(seconds, FirstSampleClip * Cost(total));
        for (int i = 0; i < entries.Count; i++)
        {
            Entry e = entries[i];
            if (e.Predicted > 0)
            {
                double ratio = Math.Min(accepted[i] / e.Predicted, 1 / e.Factor);
                e.Factor = Math.Clamp(e.Factor * ((1 - Smoothing) + Smoothing * ratio), 0.02, 1.0);
            }
            else if (e.Draft.Count > 1)
            {
                e.Factor = Math.Min(1.0, e.Factor * 1.03);  // declined with a draft on offer: creep back up
            }
        }
    }

    private static double Value(Entry e, int node) => e.Draft.Confidence[node] * Math.Pow(e.Factor, e.Draft.Depths[node]);

    private static double Predicted(IReadOnlyList<Entry> entries)
    {
        double sum = 0;
        foreach (Entry e in entries)
            if (e.Fixed) sum += e.Predicted;
        return sum;
    }

    // Totals tried: every small one, then powers of two and the largest, so that a few totals get timed.
    private static bool IsCandidate(int extra, int most) => extra <= 4 || (extra & (extra - 1)) == 0 || extra == most;

    private int LargestTimed() => _seconds.Count == 0 ? 1 : _seconds.Keys.Max();

    // t(total): the timed value, else interpolated between the nearest timed totals, else extrapolated from
    // the largest timed one below with the slope between the two largest (a prior share before that).
    private double Cost(int total)
    {
        if (_seconds.TryGetValue(total, out double known)) return known;
        int below = -1, above = -1, second = -1;
        foreach (int k in _seconds.Keys)
        {
            if (k < total)
            {
                second = below;
                below = k;
            }
            else if (above < 0)
            {
                above = k;
            }
        }
        if (below < 0) return _seconds[above];
        if (above >= 0)
            return _seconds[below] + (_seconds[above] - _seconds[below]) * (total - below) / (above - below);
        double slope = second >= 0
            ? Math.Max(0, (_seconds[below] - _seconds[second]) / (below - second))
            : PriorMarginalShare * _seconds[below] / below;
        return _seconds[below] + slope * (total - below);
    }
}
