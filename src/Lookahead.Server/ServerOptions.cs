namespace Lookahead.Server;

/// <summary>Settings of <see cref="LookaheadServer"/>.</summary>
public sealed record ServerOptions
{
    /// <summary>Address to listen on (default 127.0.0.1: this machine only).</summary>
    public string Host { get; init; } = "127.0.0.1";
    /// <summary>TCP port (default 8080; 0 picks a free one, see <see cref="LookaheadServer.Address"/>).</summary>
    public int Port { get; init; } = 8080;
    /// <summary>When set, every /v1 request needs <c>Authorization: Bearer</c> this key (else 401).</summary>
    public string? ApiKey { get; init; }
    /// <summary>Requests decoded at once: the context's sequences (default 8).</summary>
    public int MaxConcurrency { get; init; } = 8;
    /// <summary>Requests that may wait beyond those; more are refused with 429 and Retry-After (default 64).</summary>
    public int QueueLimit { get; init; } = 64;
    /// <summary>Tokens generated when a request gives no max_tokens, within its context (default 256).</summary>
    public int DefaultMaxTokens { get; init; } = 256;
    /// <summary>The model's name in requests and /v1/models (default: the model folder's name).</summary>
    public string? ModelName { get; init; }
    /// <summary>Backend, threads, context length per sequence and kernels; MaxSequences, KvPoolTokens and
    /// BatchSize are the server's (from MaxConcurrency and KvPoolTokens below).</summary>
    public ContextOptions Context { get; init; } = new();
    /// <summary>KV pool tokens shared by all sequences (default MaxConcurrency x the context length).</summary>
    public int? KvPoolTokens { get; init; }
    /// <summary>A trie file: loaded at start when it exists (a warm start: the n-grams of earlier outputs draft
    /// from the first request), saved every <see cref="TrieSaveInterval"/> and when the server stops.</summary>
    public string? TrieFile { get; init; }
    /// <summary>How often the trie file is refreshed while serving (default one minute).</summary>
    public TimeSpan TrieSaveInterval { get; init; } = TimeSpan.FromMinutes(1);
    /// <summary>Where the server reports what it cannot answer to a request for (a failed trie save); default
    /// one line on stderr.</summary>
    public Action<string> Log { get; init; } = message => Console.Error.WriteLine(message);

    internal void Validate()
    {
        if (Port is < 0 or > 65535) throw new ArgumentOutOfRangeException(nameof(Port), Port, "must be in 0..65535");
        if (MaxConcurrency is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(MaxConcurrency), MaxConcurrency, "must be in 1..256");
        if (QueueLimit < 0) throw new ArgumentOutOfRangeException(nameof(QueueLimit), QueueLimit, "must be at least 0");
        if (DefaultMaxTokens < 1) throw new ArgumentOutOfRangeException(nameof(DefaultMaxTokens), DefaultMaxTokens, "must be at least 1");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("the API key is empty", nameof(ApiKey));
        if (KvPoolTokens is < 1) throw new ArgumentOutOfRangeException(nameof(KvPoolTokens), KvPoolTokens, "must be at least 1");
        if (TrieSaveInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(TrieSaveInterval), TrieSaveInterval, "must be positive");
        if (TrieFile is { } trie && Path.GetDirectoryName(Path.GetFullPath(trie)) is { } folder && !Directory.Exists(folder))
            throw new ArgumentException($"trie file '{trie}': folder '{folder}' does not exist", nameof(TrieFile));
    }
}
