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
