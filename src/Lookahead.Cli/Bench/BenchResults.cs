namespace Lookahead.Cli.Bench;

/// <summary>Totals of one mode (and decoding length) over a set of prompts.</summary>
internal sealed class RunTotals
{
    public int Prompts;
    public long GeneratedTokens;
    public long Steps;
    public long DraftedTokens;
    public long AcceptedTokens;
    public double Seconds;
    public double DraftSeconds;
    public double ForwardSeconds;
    public double DeviceSeconds;

    /// <summary>Host time per step: decode seconds not spent on the device (when device time was measured).</summary>
    public double HostSecondsPerStep => Steps > 0 ? (Seconds - DeviceSeconds) / Steps : 0;

    public double TokensPerSecond => Seconds > 0 ? GeneratedTokens / Seconds : 0;
    public double MeanTokensPerStep => Steps > 0 ? (double)GeneratedTokens / Steps : 0;

    public void Add(Lookahead.Decoding.GenerationStats stats)
    {
        Prompts++;
        GeneratedTokens += stats.GeneratedTokens;
        Steps += stats.Steps;
        DraftedTokens += stats.DraftedTokens;
        AcceptedTokens += stats.AcceptedTokens;
        Seconds += stats.DecodeTime.TotalSeconds;
        DraftSeconds += stats.DraftTime.TotalSeconds;
        ForwardSeconds += stats.ForwardTime.TotalSeconds;
        DeviceSeconds += stats.DeviceTime.TotalSeconds;
    }
}

/// <summary>One timed configuration: greedy, or lookahead at one decoding length; overall and per category.</summary>
internal sealed record ModeResult(string Mode, string? DecodingLength, RunTotals Overall, SortedDictionary<string, RunTotals> ByCategory);

/// <summary>Time of one fused step over a k-node draft tree.</summary>
internal sealed record ForwardCost(int Nodes, double Milliseconds);
