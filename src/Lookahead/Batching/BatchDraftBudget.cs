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
/// children) is worth most. The total N maximizes (roots + expected accepted) / t(N) over the sizes tried
/// (a larger N must promise 5% more), with t learned from the steps' own timings per total (a sample above
/// 1.5x the estimate clipped, unless the one before was too: then the estimate was wrong), an untimed total
/// extrapolated from the timed ones, and no total priced below a smaller one. Totals beyond twice the largest timed one are not tried, so large batches are reached step by
/// step. With drafts that do not hold, c falls, extra nodes stop paying and every step is one node per
/// sequence: plain batched greedy decoding. Every <see cref="Decoding.DraftSizer.ExploreEvery"/>th step that
/// declines all drafts verifies one extra node anyway, so that a factor can recover. A new sequence starts
/// from the factor learned over all sequences so far, not from a fixed guess.
/// <para>The node choice prices the forward pass only; drafting also costs host time (building every
/// sequence's draft, larger steps to deliver). So whole steps are checked too, an epoch of steps at a time
/// (<see cref="BeginStep"/>, <see cref="ObserveStep"/>): the drafted steps' tokens per second of step time
/// against what plain steps of the same sequences cost (t(sequences) plus the host time per sequence of
/// plain steps; each drafted epoch's first step is plain, to keep those fresh). After an epoch that loses, adaptive sequences build no drafts (plain batched greedy
/// decoding) for 1, 2, 4 ... epochs, then probe one drafted epoch, so that the worst case stays plain
/// decoding but for the probes.</para>
/// Reads no clock.
/// </remarks>
internal sealed class BatchDraftBudget
{
    private const double Smoothing = 0.3;
    private const double SharedSmoothing = 0.05;  // per sequence-step: the shared factor follows many sequences
    private const double SampleClip = 1.5;
    private const double FirstSampleClip = 2.0;
    // Until two totals are timed, each extra node is assumed to cost this share of a one-node-per-sequence step.
    private const double PriorMarginalShare = 0.1;
    // A larger total must promise this much more than the best smaller one: each total's timing is noisy, and
    // the best-looking of many noisy estimates is biased up (on a small model at high concurrency, where a
    // node costs about 1/sequences of a step, drafts picked at 1% promised gain lost 5-8% in measurement).
    private const double RequiredGain = 1.05;

    /// <summary>Steps per epoch of the whole-step check (drafted or plain as a whole), at most.</summary>
    public const int EpochSteps = 32;
    /// <summary>Steps per epoch at least, and the step time after which an epoch of that many ends early.</summary>
    public const int MinEpochSteps = 8;
    public const double EpochSeconds = 0.2;
    /// <summary>Most plain epochs between two drafted probe epochs while drafting loses.</summary>
    public const int LongestPlainRun = 16;
    // Recent steps whose largest chosen draft bounds the drafts built (as DraftSizer.Limit).
    private const int RecentSteps = 64;

    // Smoothed step seconds per total nodes (NaN: not timed), and the timed totals ascending: Choose prices
    // many totals per step, without allocating.
    private double[] _seconds = [];
    private int[] _overruns = [];  // per total: samples in a row above the clip
    private readonly List<int> _timed = [];
    private int _declinedInARow;
    private int[] _heads = [];
    private readonly List<(int Entry, double Value)> _order = [];  // Choose's marginal order, reused
    private double _sharedFactor = InitialFactor;     // learned over every sequence's steps
    private double _plainHostPerSequence;             // smoothed host seconds per sequence of a plain step
    private int _epochStep, _plainEpochsLeft, _plainRun = 1;
    private long _epochTokens, _epochSequenceSteps;
    private double _epochSeconds, _epochPlainSeconds;  // the drafted steps' time, and a plain step's estimate for them
    private double _epochStepSeconds;                   // every step's time in the epoch
    private int _periodLargest = 1, _lastPeriodLargest = 1, _periodSteps;
    private const double InitialFactor = 0.6;

    /// <summary>One sequence of a step: its draft (best-first, root first), the most nodes it may verify, and
    /// its acceptance factor; <see cref="Choose"/> writes how many nodes it verifies and their expected
    /// acceptances.</summary>
    public sealed class Entry
    {
        public DraftTree Draft = null!;
        public int Cap;            // at least 1
        public double Factor = double.NaN;  // NaN until its first step: then the budget's shared factor
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
            if (double.IsNaN(e.Factor)) e.Factor = _sharedFactor;
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
        if (_timed.Count == 0 || _timed[0] > baseTotal) return baseTotal;  // time a plain step first: others are judged against it

        // The marginal order: repeatedly the adaptive sequence whose next node is worth most.
        int limit = Math.Min(maxTotal, Math.Max(2 * LargestTimed(), baseTotal + 2));
        List<(int Entry, double Value)> order = _order;
        order.Clear();
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
            if (rate > bestRate * RequiredGain)
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
        foreach (Entry e in entries)
            if (!e.Fixed) _periodLargest = Math.Max(_periodLargest, e.Chosen);
        if (++_periodSteps == RecentSteps)
        {
            _lastPeriodLargest = _periodLargest;
            _periodLargest = 1;
            _periodSteps = 0;
        }
        return baseTotal + bestExtra;
    }

    /// <summary>Learns from a verified step: its total nodes and native seconds, and per entry the draft
    /// tokens accepted (in the order of the entries given to Choose).</summary>
    public void Observe(IReadOnlyList<Entry> entries, int total, double seconds, ReadOnlySpan<int> accepted)
    {
        if (IsTimed(total))
        {
            double known = _seconds[total];
            // A sample far above the estimate is clipped once (a preempted thread), but not twice in a row: then
            // the estimate is what is wrong (an optimistic extrapolation), and the sample replaces it.
            bool over = seconds > SampleClip * known;
            _overruns[total] = over ? _overruns[total] + 1 : 0;
            _seconds[total] = over && _overruns[total] >= 2 ? seconds
                : (1 - Smoothing) * known + Smoothing * Math.Min(seconds, SampleClip * known);
        }
        else
        {
            double estimate = _timed.Count == 0 ? seconds : Cost(total);
            double first = Math.Min(seconds, FirstSampleClip * estimate);
            if (_seconds.Length <= total)
            {
                int grown = _seconds.Length;
                Array.Resize(ref _seconds, Math.Max(total + 1, 2 * grown));
                Array.Resize(ref _overruns, _seconds.Length);
                _seconds.AsSpan(grown).Fill(double.NaN);
            }
            _overruns[total] = seconds > FirstSampleClip * estimate ? 1 : 0;
            _seconds[total] = first;
            int at = _timed.BinarySearch(total);
            _timed.Insert(~at, total);
        }
        for (int i = 0; i < entries.Count; i++)
        {
            Entry e = entries[i];
            if (e.Predicted > 0)
            {
                double ratio = Math.Min(accepted[i] / e.Predicted, 1 / e.Factor);
                e.Factor = Math.Clamp(e.Factor * ((1 - Smoothing) + Smoothing * ratio), 0.02, 1.0);
                _sharedFactor = (1 - SharedSmoothing) * _sharedFactor + SharedSmoothing * e.Factor;
            }
            else if (e.Draft.Count > 1)
            {
                e.Factor = Math.Min(1.0, e.Factor * 1.03);  // declined with a draft on offer: creep back up
            }
        }
    }

    /// <summary>Whether adaptive sequences build drafts this step (fixed-length ones always do): in every
    /// epoch (<see cref="EpochSteps"/> steps, or <see cref="MinEpochSteps"/> once they took <see cref="EpochSeconds"/>) while drafted epochs beat plain ones, and in one probe epoch
    /// after 1, 2, 4 ... <see cref="LongestPlainRun"/> plain epochs while they do not. The first step of a
    /// drafted epoch is plain: it re-times t(sequences), the yardstick the epoch is judged by, which drafted
    /// steps alone would leave stale (or at a cold first sample).</summary>
    public bool BeginStep() => _plainEpochsLeft == 0 && _epochStep > 0;
    /// <summary>The most nodes a sequence's draft needs this step: twice the largest any adaptive sequence
    /// chose in the last <see cref="RecentSteps"/> to twice that many steps (at least 2), and at most twice
    /// the largest total timed. Larger drafts would be built for nothing.</summary>
    public int BuildLimit => Math.Max(2, Math.Min(2 * LargestTimed(), 2 * Math.Max(_periodLargest, _lastPeriodLargest)));

    /// <summary>Learns from a whole step: its sequences, the tokens they emitted, its time from the start of
    /// drafting to the last token delivered, and whether any adaptive sequence built a draft.</summary>
    public void ObserveStep(int sequences, int tokens, double stepSeconds, bool drafted)
    {
        if (sequences <= 0 || stepSeconds <= 0) return;
        if (drafted)
        {
            _epochTokens += tokens;
            _epochSeconds += stepSeconds;
            _epochSequenceSteps += sequences;
            _epochPlainSeconds += Cost(sequences) + sequences * _plainHostPerSequence;
        }
        else
        {
            double host = Math.Max(0, stepSeconds - Cost(sequences)) / sequences;
            _plainHostPerSequence = (1 - Smoothing) * _plainHostPerSequence + Smoothing * host;
        }
        _epochStepSeconds += stepSeconds;
        // An epoch is EpochSteps steps, or fewer (at least MinEpochSteps) once it has taken EpochSeconds: a
        // large model's epoch then decides within a fraction of a second, a small model's over enough steps.
        if (++_epochStep < EpochSteps && (_epochStep < MinEpochSteps || _epochStepSeconds < EpochSeconds)) return;
        bool wasDrafting = _plainEpochsLeft == 0;
        if (!wasDrafting) _plainEpochsLeft--;
        else if (_epochSequenceSteps > 0)
        {
            double draftedRate = _epochTokens / _epochSeconds, plainRate = _epochSequenceSteps / _epochPlainSeconds;
            if (draftedRate >= plainRate)
            {
                _plainRun = 1;
            }
            else
            {
                _plainEpochsLeft = _plainRun;
                _plainRun = Math.Min(2 * _plainRun, LongestPlainRun);
            }
        }
        _epochStep = 0;
        _epochTokens = _epochSequenceSteps = 0;
        _epochSeconds = _epochPlainSeconds = _epochStepSeconds = 0;
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

    private int LargestTimed() => _timed.Count == 0 ? 1 : _timed[^1];

    private bool IsTimed(int total) => total < _seconds.Length && !double.IsNaN(_seconds[total]);

    // t(total): the timed value, else interpolated between the nearest timed totals, else extrapolated from
    // the largest timed one below with the slope between the two largest (a prior share before that); never
    // below a smaller total's timing, so that noise cannot make more nodes look cheaper than fewer.
    private double Cost(int total)
    {
        double cost = RawCost(total);
        for (int i = 0; i < _timed.Count && _timed[i] < total; i++) cost = Math.Max(cost, _seconds[_timed[i]]);
        return cost;
    }

    private double RawCost(int total)
    {
        if (IsTimed(total)) return _seconds[total];
        int at = ~_timed.BinarySearch(total);  // the first timed total above, or _timed.Count
        if (at == 0) return _seconds[_timed[0]];
        int below = _timed[at - 1];
        if (at < _timed.Count)
        {
            int above = _timed[at];
            return _seconds[below] + (_seconds[above] - _seconds[below]) * (total - below) / (above - below);
        }
        double slope = at >= 2
            ? Math.Max(0, (_seconds[below] - _seconds[_timed[at - 2]]) / (below - _timed[at - 2]))
            : PriorMarginalShare * _seconds[below] / below;
        return _seconds[below] + slope * (total - below);
    }
}
