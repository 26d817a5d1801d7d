namespace Lookahead.Decoding;

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
