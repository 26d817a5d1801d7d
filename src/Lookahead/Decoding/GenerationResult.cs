namespace Lookahead.Decoding;

/// <summary>The outcome of one generation.</summary>
public sealed record GenerationResult(int[] Tokens, FinishReason FinishReason, GenerationStats Stats)
{
    /// <summary>The sampling seed used (the one given, or the one picked), null for greedy decoding: with it
    /// the same options reproduce the same tokens.</summary>
    public ulong? Seed { get; init; }
}
