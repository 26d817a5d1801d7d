namespace Lookahead.Decoding;

/// <summary>Counters and timings of one generation. The JSON of the CLI reports the durations in seconds
/// (prefill_seconds, seconds, ...).</summary>
public sealed record GenerationStats
{
    /// <summary>Prompt tokens (BOS included).</summary>
    public int PromptTokens { get; init; }
    /// <summary>Generated tokens (a final stop token included).</summary>
    public int GeneratedTokens { get; init; }
    /// <summary>Forward passes after prefill.</summary>
    public int Steps { get; init; }
    /// <summary>Draft nodes verified, roots excluded.</summary>
    public long DraftedTokens { get; init; }
    /// <summary>Draft tokens the model agreed with (bonus tokens excluded).</summary>
    public long AcceptedTokens { get; init; }
    /// <summary>Prefill of all prompt tokens but the last, which is the first step's root.</summary>
    public TimeSpan PrefillTime { get; init; }
    /// <summary>Generating, from the first step to the last.</summary>
    public TimeSpan DecodeTime { get; init; }
    /// <summary>Of DecodeTime: retrieving drafts from the trie and building draft trees.</summary>
    public TimeSpan DraftTime { get; init; }
    /// <summary>Of DecodeTime: the native fused step (tree forward, verification, KV compaction).</summary>
    public TimeSpan ForwardTime { get; init; }
    /// <summary>
    /// Of ForwardTime: the GPU's time on the decoding steps, measured only while the context's
    /// <see cref="InferenceContext.Profiling"/> is <see cref="ProfilingMode.Device"/> (else zero).
    /// DecodeTime minus this is the host's share of the steps.
    /// </summary>
    public TimeSpan DeviceTime { get; init; }

    /// <summary>Generated tokens per decode second.</summary>
    public double TokensPerSecond => DecodeTime > TimeSpan.Zero ? GeneratedTokens / DecodeTime.TotalSeconds : 0;
    /// <summary>Prefilled tokens per prefill second (0 when nothing was prefilled).</summary>
    public double PrefillTokensPerSecond => PrefillTime > TimeSpan.Zero ? (PromptTokens - 1) / PrefillTime.TotalSeconds : 0;
    /// <summary>Generated tokens per step.</summary>
    public double MeanTokensPerStep => Steps > 0 ? (double)GeneratedTokens / Steps : 0;
}
