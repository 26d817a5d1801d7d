namespace Lookahead.Decoding;

/// <summary>
/// One update of <see cref="Generator.GenerateStreamingAsync"/>: the tokens a step emitted and the text they
/// complete (empty without a tokenizer, or while a multi-byte character is still incomplete); the last
/// update has no tokens and carries the <see cref="Result"/>.
/// </summary>
public sealed record GenerationUpdate(int[] Tokens, string Text, GenerationResult? Result);
