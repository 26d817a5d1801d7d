namespace Lookahead.Cli.Bench;

/// <summary>Percentiles of the benchmarks' latency and rate samples.</summary>
internal static class Percentiles
{
    /// <summary>The nearest-rank percentile (fraction in [0, 1]); 0 for no values.</summary>
    public static double NearestRank(double[] values, double fraction)
    {
        if (values.Length == 0) return 0;
        double[] sorted = values.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Length) - 1, 0, sorted.Length - 1)];
    }
}
