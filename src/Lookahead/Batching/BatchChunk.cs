using Lookahead.Decoding;

namespace Lookahead.Batching;

/// <summary>
/// What one request receives from a <see cref="BatchGenerator"/>: the tokens one step produced for it, or,
/// last of all, the request's <see cref="Result"/> (with no tokens).
/// </summary>
public sealed record BatchChunk(int[] Tokens, BatchResult? Result);

/// <summary>The outcome of one batched request.</summary>
/// <param name="Tokens">Every generated token.</param>
/// <param name="FinishReason">Why it stopped (ContextFull: its context length, or a KV pool too small for it alone).</param>
/// <param name="Stats">Its steps, drafts and times (prefill time: from admission until its prompt was in the KV cache).</param>
/// <param name="ReusedPromptTokens">Prompt tokens whose KV blocks came from the prefix cache instead of a prefill.</param>
/// <param name="PrefilledTokens">Tokens prefilled for it (recomputation after preemption included).</param>
/// <param name="Preemptions">How often it gave its KV blocks up for older requests and was recomputed.</param>
public sealed record BatchResult(int[] Tokens, FinishReason FinishReason, GenerationStats Stats, int ReusedPromptTokens,
    int PrefilledTokens, int Preemptions)
{
    /// <summary>The sampling seed used, null for greedy decoding.</summary>
    public ulong? Seed { get; init; }
}
