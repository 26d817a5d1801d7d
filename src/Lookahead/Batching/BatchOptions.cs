namespace Lookahead.Batching;

/// <summary>Scheduling settings of a <see cref="BatchGenerator"/>.</summary>
public sealed record BatchOptions
{
    /// <summary>Most prompt tokens prefilled between two decoding steps (all requests together), so that
    /// running requests keep streaming while a long prompt is prefilled; null = min(128, the context's batch
    /// size).</summary>
    public int? PrefillChunkTokens { get; init; }
    /// <summary>Reuse the cached KV blocks of earlier requests whose tokens a new prompt starts with (a chat's
    /// earlier turns, a shared system prompt); default on.</summary>
    public bool PrefixCaching { get; init; } = true;
    /// <summary>The clock of the step timings behind the draft budget and of the statistics (default: the
    /// system's).</summary>
    public TimeProvider? Time { get; init; }

    internal void Validate()
    {
        if (PrefillChunkTokens is < 1)
            throw new ArgumentOutOfRangeException(nameof(PrefillChunkTokens), PrefillChunkTokens, "must be at least 1");
    }
}
