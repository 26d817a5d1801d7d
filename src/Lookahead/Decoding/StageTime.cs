namespace Lookahead.Decoding;

/// <summary>Accumulated time of one stage (see <see cref="InferenceContext.Profiling"/>).</summary>
/// <param name="Name">The stage: embed, attention_inputs, attention, attention_output, feed_forward,
/// feed_forward_down, output, verify or compact.</param>
/// <param name="Calls">How many times it ran.</param>
/// <param name="Total">Its total wall time.</param>
public sealed record StageTime(string Name, long Calls, TimeSpan Total);
