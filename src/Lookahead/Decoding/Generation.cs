using Lookahead.Drafting;

namespace Lookahead.Decoding;

/// <summary>How tokens are produced. Every mode yields exactly the plain output (greedy, or sampled with
/// <see cref="GenerationOptions.Sampling"/>).</summary>
public enum DecodingMode
{
    /// <summary>One forward pass per token: plain decoding (greedy unless sampling is set).</summary>
    Greedy,
    /// <summary>Trie drafts verified by one tree forward pass per step (the Lookahead algorithm).</summary>
    Lookahead,
}

/// <summary>Why generation stopped.</summary>
public enum FinishReason
{
    /// <summary>A stop token (EOS) was produced; it is the last generated token.</summary>
    EndOfSequence,
    /// <summary>MaxTokens tokens were produced.</summary>
    MaxTokens,
    /// <summary>The KV cache is full.</summary>
    ContextFull,
}

/// <summary>Receives tokens as they are produced (a span valid only during the call).</summary>
public delegate void TokensCallback(ReadOnlySpan<int> tokens);

/// <summary>Options of one generation.</summary>
public sealed record GenerationOptions
{
    /// <summary>Most tokens to generate (default 256).</summary>
    public int MaxTokens { get; init; } = 256;
    /// <summary>Decoding mode (default lookahead).</summary>
    public DecodingMode Mode { get; init; } = DecodingMode.Lookahead;
    /// <summary>Draft settings of lookahead mode.</summary>
    public DraftOptions Drafts { get; init; } = new();
    /// <summary>Tokens that end generation; null = the model's eos_token_id(s).</summary>
    public IReadOnlyList<int>? StopTokens { get; init; }
    /// <summary>How each token is chosen (default greedy).</summary>
    public SamplingOptions Sampling { get; init; } = new();
}

/// <summary>Counters and timings of one generation.</summary>
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
    /// <summary>Seconds spent on prefill (all prompt tokens but the last, which is the first step's root).</summary>
    public double PrefillSeconds { get; init; }
    /// <summary>Seconds spent generating.</summary>
    public double DecodeSeconds { get; init; }
    /// <summary>Of DecodeSeconds: retrieving drafts from the trie and building draft trees.</summary>
    public double DraftSeconds { get; init; }
    /// <summary>Of DecodeSeconds: the native fused step (tree forward, verification, KV compaction).</summary>
    public double ForwardSeconds { get; init; }
    /// <summary>
    /// Of ForwardSeconds: the GPU's time on the decoding steps, measured only while the context's
    /// <see cref="InferenceContext.Profiling"/> is <see cref="ProfilingMode.Device"/> (else 0).
    /// DecodeSeconds minus this is the host's share of the steps.
    /// </summary>
    public double DeviceSeconds { get; init; }

    /// <summary>Generated tokens per decode second.</summary>
    public double TokensPerSecond => DecodeSeconds > 0 ? GeneratedTokens / DecodeSeconds : 0;
    /// <summary>Prefilled tokens per prefill second (0 when nothing was prefilled).</summary>
    public double PrefillTokensPerSecond => PrefillSeconds > 0 ? (PromptTokens - 1) / PrefillSeconds : 0;
    /// <summary>Generated tokens per step.</summary>
    public double MeanTokensPerStep => Steps > 0 ? (double)GeneratedTokens / Steps : 0;
}

/// <summary>The outcome of one generation.</summary>
public sealed record GenerationResult(int[] Tokens, FinishReason FinishReason, GenerationStats Stats)
{
    /// <summary>The sampling seed used (the one given, or the one picked), null for greedy decoding: with it
    /// the same options reproduce the same tokens.</summary>
    public ulong? Seed { get; init; }
}
