using Lookahead.Drafting;

namespace Lookahead.Decoding;

/// <summary>
/// Chooses how many draft nodes to verify each step: the prefix of the (best-first) draft that maximizes
/// expected tokens per second, (1 + expected accepted nodes) / t(k).
/// </summary>
/// <remarks>
/// A node's chance of acceptance is the trie's confidence in it (its n-gram's share among its siblings,
/// compounded along its branch) times a learned per-level factor c raised to its depth, so deep nodes
/// lose value fast when drafts fail. c moves towards what steps really accept; while the sizer verifies
/// the root alone, c creeps back up, and every <see cref="ExploreEvery"/>th declined draft is verified
/// at two nodes anyway, so that drafts and their cost are retried now and then. t(k) is learned from the
/// steps' own timings per size bucket, with each sample clipped at 1.5x the estimate (a first sample at
/// 2x the extrapolated cost): a step slowed by a preempted thread or a pool waking from sleep must not
/// price a size out for good, since a size that is never chosen is never timed again. An untimed size's
/// cost is extrapolated from the largest timed size, and sizes beyond twice that (or beyond twice the
/// largest size chosen lately) are not built, so large drafts are reached step by step and small
/// choices keep draft building cheap. No size is priced below a plain step. With no drafts, or drafts
/// that do not hold, nearly every step verifies the root alone: plain greedy decoding. The sizer reads no
/// clock: <see cref="Observe"/> receives each step's time, which the <see cref="Generator"/> measures on its
/// <see cref="TimeProvider"/>, so a test with a fake clock makes every choice deterministic.
/// </remarks>
public sealed class DraftSizer
{
    // Draft sizes the sizer picks from (nodes including the root); costs are learned per size.
    private static readonly int[] Buckets = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256];
    private const double Smoothing = 0.3;
    private const double InitialFactor = 0.6;
    private const double MinimumFactor = 0.02;
    private const double Recovery = 1.03;  // per root-only step that had a draft to offer
    // Until measured, each extra node is assumed to cost this share of a one-node step.
    private const double PriorMarginalCost = 0.1;
    // A timing sample counts for at most this multiple of the current estimate (the first, of the
    // extrapolated cost times FirstSampleClip).
    private const double SampleClip = 1.5;
    private const double FirstSampleClip = 2.0;
    /// <summary>Declined drafts in a row after which one is verified at two nodes anyway.</summary>
    public const int ExploreEvery = 32;

    private readonly double[] _seconds = new double[Buckets.Length];
    private readonly bool[] _measured = new bool[Buckets.Length];
    private double _factor = InitialFactor;
    private double _predicted;
    private bool _declinedDraft;
    private int _declinedInARow;
    // Largest size chosen in the current and in the previous period of RecentSteps steps.
    private int _periodLargest = 1, _lastPeriodLargest = 1, _periodSteps;

    /// <summary>The learned per-level acceptance factor c (0.02..1).</summary>
    public double Calibration => _factor;

    /// <summary>The largest draft the next Choose may keep: twice the largest size chosen in the last
    /// <see cref="RecentSteps"/> to <see cref="RecentSteps"/> x 2 steps (at least 2), and never more than
    /// twice the largest size timed so far; one node until a plain step has been timed. Building larger
    /// drafts would be wasted work; sizes still grow step by step while larger ones keep paying.</summary>
    public int Limit => _measured[0] ? Math.Min(2 * LargestTimed(), 2 * Math.Max(2, Math.Max(_periodLargest, _lastPeriodLargest))) : 1;

    /// <summary>Steps per period of the recent-size window behind <see cref="Limit"/>.</summary>
    public const int RecentSteps = 64;

    /// <summary>Truncates the draft to the best size and returns that size.</summary>
    public int Choose(DraftTree draft)
    {
        _predicted = 0;
        _declinedDraft = false;
        if (!_measured[0] || draft.Count == 1)
        {
            // Time a plain step first: every other size's cost is judged against it.
            draft.Truncate(1);
            return 1;
        }
        ReadOnlySpan<float> confidence = draft.Confidence;
        ReadOnlySpan<int> depths = draft.Depths;
        int limit = Limit;

        double bestRate = 1 / _seconds[0], expected = 0, bestExpected = 0;
        int best = 1, next = 1;
        for (int b = 1; b < Buckets.Length && Buckets[b] <= draft.Count && Buckets[b] <= limit; b++)
        {
            for (; next < Buckets[b]; next++) expected += confidence[next] * Math.Pow(_factor, depths[next]);
            // Never priced below a plain step: a size that timed cheaper (noise, or a kernel that happens to
            // suit two inputs) must still earn its place with expected acceptances, so drafts that do not
            // hold cannot make steps slower than greedy ones on a lucky estimate.
            double rate = (1 + expected) / Math.Max(Cost(b), _seconds[0]);
            if (rate > bestRate * 1.01)  // a larger draft must pay at least 1% more
            {
                bestRate = rate;
                best = Buckets[b];
                bestExpected = expected;
            }
        }
        if (best == 1 && ++_declinedInARow >= ExploreEvery && draft.Count >= Buckets[1] && limit >= Buckets[1])
        {
            best = Buckets[1];
            bestExpected = confidence[1] * _factor;
        }
        if (best > 1) _declinedInARow = 0;
        _periodLargest = Math.Max(_periodLargest, best);
        if (++_periodSteps == RecentSteps)
        {
            _lastPeriodLargest = _periodLargest;
            _periodLargest = 1;
            _periodSteps = 0;
        }
        draft.Truncate(best);
        _predicted = bestExpected;
        _declinedDraft = best == 1;
        return best;
    }

    /// <summary>Learns from a verified step: its size, the native step's seconds, the draft tokens accepted.</summary>
    public void Observe(int size, double seconds, int accepted)
    {
        int b = Array.IndexOf(Buckets, size);
        if (b >= 0)
        {
            if (_measured[b]) _seconds[b] = (1 - Smoothing) * _seconds[b] + Smoothing * Math.Min(seconds, SampleClip * _seconds[b]);
            else _seconds[b] = b == 0 ? seconds : Math.Min(seconds, FirstSampleClip * Cost(b));
            _measured[b] = true;
        }
        if (_predicted > 0)
        {
            double ratio = Math.Min(accepted / _predicted, 1 / _factor);
            _factor = Math.Clamp(_factor * ((1 - Smoothing) + Smoothing * ratio), MinimumFactor, 1.0);
        }
        else if (_declinedDraft)
        {
            _factor = Math.Min(1.0, _factor * Recovery);
        }
    }

    private int LargestTimed()
    {
        int largest = 1;
        for (int b = 0; b < Buckets.Length; b++)
            if (_measured[b]) largest = Buckets[b];
        return largest;
    }

    private double Cost(int bucket)
    {
        if (_measured[bucket]) return _seconds[bucket];
        // Extrapolate from the largest measured size below; bucket 0 (one node) is always measured here.
        int below = bucket - 1;
        while (!_measured[below]) below--;
        double marginal = below > 0
            ? Math.Max(0, (_seconds[below] - _seconds[0]) / (Buckets[below] - 1))
            : PriorMarginalCost * _seconds[0];
        return _seconds[below] + marginal * (Buckets[bucket] - Buckets[below]);
    }
}
