using Lookahead.Drafting;

namespace Lookahead.Decoding;

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
