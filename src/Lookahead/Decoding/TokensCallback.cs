namespace Lookahead.Decoding;

/// <summary>Receives tokens as they are produced (a span valid only during the call).</summary>
public delegate void TokensCallback(ReadOnlySpan<int> tokens);
