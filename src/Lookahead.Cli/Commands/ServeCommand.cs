using Lookahead.Server;

namespace Lookahead.Cli.Commands;

/// <summary>lookahead serve: the OpenAI-compatible HTTP server until Ctrl+C.</summary>
internal static class ServeCommand
{
    public static int Run(IReadOnlyList<string> args)
    {
        var reader = new ArgumentReader(args, CommandLineTable.Serve.ValueOptions, CommandLineTable.Serve.Flags);
        var options = new ServerOptions
        {
            Host = reader.String("host") ?? "127.0.0.1",
            Port = reader.Int("port", 0, 65535) ?? 8080,
            ApiKey = reader.String("api-key") is { } key ? (key.Length > 0 ? key : throw new UsageException("--api-key is empty")) : null,
            MaxConcurrency = reader.Int("max-concurrency", 1, 256) ?? 8,
            QueueLimit = reader.Int("queue-limit", 0, 1 << 20) ?? 64,
            DefaultMaxTokens = reader.Int("max-tokens", 1, 1 << 24) ?? 256,
            ModelName = reader.String("model-name"),
            KvPoolTokens = reader.Int("kv-pool-tokens", 1, 1 << 30),
            Context = ModelArguments.Context(reader),
            TrieFile = reader.String("trie"),
            TrieSaveInterval = TimeSpan.FromSeconds(reader.Int("trie-save-seconds", 1, 86400) ?? 60),
        };
        if (options.TrieFile is { } trie) InputPaths.RequireWritableFile(trie, "trie file");
        string folder = ModelArguments.Resolve(reader);
        using LanguageModel model = ModelArguments.Load(folder);
        LookaheadServer server;
        try
        {
            server = LookaheadServer.StartAsync(model, options).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException)
        {
            throw new LookaheadException($"cannot listen on {options.Host}:{options.Port}: {e.Message}", e);
        }
        Console.Error.WriteLine($"serving {server.ModelName} on {server.Address} ({options.MaxConcurrency} sequences, " +
            $"queue limit {options.QueueLimit}{(options.ApiKey is null ? "" : ", API key required")}); Ctrl+C stops");
        server.WaitForShutdownAsync().GetAwaiter().GetResult();
        server.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return 0;
    }
}
