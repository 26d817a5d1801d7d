namespace Lookahead.Decoding;

/// <summary>
/// One sequence's sampling settings in a batched step (<see cref="InferenceContext.DecodeSampleSequences"/>):
/// its options and seed, how many of its tokens are prompt, and the index of the first token the step
/// generates for it.
/// </summary>
public readonly record struct SequenceSampling(SamplingOptions Sampling, ulong Seed, int PromptLength, long TokenIndex);
