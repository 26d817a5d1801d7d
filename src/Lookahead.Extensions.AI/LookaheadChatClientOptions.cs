namespace Lookahead.Extensions.AI;

/// <summary>Settings of a <see cref="LookaheadChatClient"/> that creates its own context.</summary>
public sealed record LookaheadChatClientOptions
{
    /// <summary>Requests decoded at once: the context's sequences (default 8); more wait their turn.</summary>
    public int MaxConcurrency { get; init; } = 8;
    /// <summary>Backend, threads, context length per sequence and kernels; MaxSequences, KvPoolTokens and
    /// BatchSize follow MaxConcurrency.</summary>
    public ContextOptions Context { get; init; } = new();
    /// <summary>Tokens generated when ChatOptions.MaxOutputTokens is not set, within the context (default 256).</summary>
    public int DefaultMaxOutputTokens { get; init; } = 256;
    /// <summary>The model id reported in responses and metadata (default: the model folder's name).</summary>
    public string? ModelId { get; init; }
}
