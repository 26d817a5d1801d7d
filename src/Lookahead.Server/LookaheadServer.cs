using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lookahead.Server;

/// <summary>
/// An OpenAI-compatible HTTP server over one model (Kestrel): POST /v1/chat/completions and /v1/completions
/// (streaming or not), GET /v1/models, /health and /metrics (Prometheus text). Requests run on one
/// <see cref="Batching.BatchGenerator"/>, many at once, each emitting exactly what it emits alone.
/// </summary>
/// <remarks>With <see cref="ServerOptions.ApiKey"/> every /v1 request needs <c>Authorization: Bearer KEY</c>;
/// /health and /metrics stay open (as vLLM's are), for load balancers and scrapers.</remarks>
public sealed class LookaheadServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServingEngine _engine;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _trieSaver;
    private int _disposed;

    private LookaheadServer(WebApplication app, ServingEngine engine, Uri address, ServerOptions options)
    {
        _app = app;
        _engine = engine;
        Address = address;
        _trieSaver = options.TrieFile is null ? Task.CompletedTask : SaveTriePeriodicallyAsync(options.TrieSaveInterval, options.Log);
    }

    // Refreshes the trie file while serving, so that a replica started from it later drafts from recent output.
    private async Task SaveTriePeriodicallyAsync(TimeSpan interval, Action<string> log)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping.Token))
            {
                try
                {
                    await _engine.SaveTrieAsync();
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    log($"warning: saving the trie to '{_engine.TrieFile}' failed: {e.Message}");
                }
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    /// <summary>Where the server listens, e.g. http://127.0.0.1:8080/ (the real port when 0 was asked for).</summary>
    public Uri Address { get; }

    /// <summary>The model's name in requests and /v1/models.</summary>
    public string ModelName => _engine.ModelName;

    /// <summary>The batch generator's state (requests running and waiting, KV blocks).</summary>
    public Batching.BatchGauges Gauges => _engine.Batch.Gauges;

    /// <summary>Creates the engine on the model (a context with a sequence per concurrent request) and starts
    /// listening. The model must outlive the server.</summary>
    /// <exception cref="LookaheadException">The model has no tokenizer, or its context cannot be created.</exception>
    /// <exception cref="IOException">The address cannot be bound (e.g. the port is taken).</exception>
    public static async Task<LookaheadServer> StartAsync(LanguageModel model, ServerOptions options, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        options.Validate();
        var engine = new ServingEngine(model, options, TimeProvider.System);
        try
        {
            WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(kestrel => kestrel.Listen(Listen(options.Host), options.Port));
            WebApplication app = builder.Build();
            Map(app, engine, options.ApiKey);
            await app.StartAsync(cancellation);
            string bound = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new LookaheadServer(app, engine, new Uri(bound.EndsWith('/') ? bound : bound + "/"), options);
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>Completes when the server stops (Ctrl+C or SIGTERM in a console app, or <see cref="DisposeAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellation = default) => _app.WaitForShutdownAsync(cancellation);

    /// <summary>Stops listening, ends requests in flight, saves the trie file (when there is one) and frees the
    /// context.</summary>
    /// <exception cref="IOException">The last save of the trie file failed (everything else is freed).</exception>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _stopping.CancelAsync();
        await _trieSaver;
        try
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
            await _engine.SaveTrieAsync();
        }
        finally
        {
            _engine.Dispose();
            _stopping.Dispose();
        }
    }

    private static IPAddress Listen(string host) => host switch
    {
        "localhost" => IPAddress.Loopback,
        "*" => IPAddress.Any,
        _ when IPAddress.TryParse(host, out IPAddress? address) => address,
        _ => throw new ArgumentException($"--host must be an IP address, 'localhost' or '*', got '{host}'", nameof(host)),
    };

    private static void Map(WebApplication app, ServingEngine engine, string? apiKey)
    {
        if (apiKey is not null)
        {
            app.Use(async (http, next) =>
            {
                if (http.Request.Path.StartsWithSegments("/v1") && !Authorized(http.Request, apiKey))
                {
                    await new ApiError(StatusCodes.Status401Unauthorized, "a valid API key is required: send 'Authorization: Bearer KEY'",
                        null, "invalid_api_key", "authentication_error").WriteAsync(http.Response);
                    return;
                }
                await next(http);
            });
        }
        var completions = new CompletionEndpoint(engine, chat: false);
        var chat = new CompletionEndpoint(engine, chat: true);
        app.MapPost("/v1/completions", completions.HandleAsync);
        app.MapPost("/v1/chat/completions", chat.HandleAsync);
        app.MapGet("/v1/models", http => Models(http, engine));
        app.MapGet("/", ChatPageAsync);
        app.MapGet("/health", http => JsonAsync(http, json =>
        {
            json.WriteStartObject();
            json.WriteString("status", "ok");
            json.WriteEndObject();
        }));
        app.MapGet("/metrics", http =>
        {
            http.Response.ContentType = "text/plain; version=0.0.4; charset=utf-8";
            return http.Response.WriteAsync(engine.Metrics.Exposition(engine.Batch.Gauges));
        });
        foreach ((string path, string allowed) in new[] { ("/v1/completions", "POST"), ("/v1/chat/completions", "POST"), ("/v1/models", "GET"),
                     ("/health", "GET"), ("/metrics", "GET"), ("/", "GET") })
        {
            string[] others = new[] { "GET", "POST", "PUT", "DELETE", "PATCH" }.Where(m => m != allowed).ToArray();
            app.MapMethods(path, others, http =>
            {
                http.Response.Headers.Allow = allowed;
                return new ApiError(StatusCodes.Status405MethodNotAllowed, $"{http.Request.Method} {path} is not allowed: use {allowed}",
                    null, "method_not_allowed").WriteAsync(http.Response);
            });
        }
        app.MapFallback(http => new ApiError(StatusCodes.Status404NotFound, $"no such endpoint: {http.Request.Method} {http.Request.Path}",
            null, "not_found").WriteAsync(http.Response));
    }

    // The chat page (it asks for the API key itself, when the server needs one).
    private static async Task ChatPageAsync(HttpContext http)
    {
        http.Response.ContentType = "text/html; charset=utf-8";
        await using Stream page = typeof(LookaheadServer).Assembly.GetManifestResourceStream("Lookahead.Server.chat.html")
            ?? throw new InvalidOperationException("the chat page is missing from the assembly");
        await page.CopyToAsync(http.Response.Body);
    }

    private static bool Authorized(HttpRequest request, string apiKey)
    {
        string header = request.Headers.Authorization.ToString();
        const string scheme = "Bearer ";
        if (!header.StartsWith(scheme, StringComparison.OrdinalIgnoreCase)) return false;
        // Constant time: the comparison does not reveal how much of a guess was right.
        byte[] given = System.Text.Encoding.UTF8.GetBytes(header[scheme.Length..].Trim());
        byte[] expected = System.Text.Encoding.UTF8.GetBytes(apiKey);
        return System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(given, expected);
    }

    private static Task Models(HttpContext http, ServingEngine engine) => JsonAsync(http, json =>
    {
        json.WriteStartObject();
        json.WriteString("object", "list");
        json.WriteStartArray("data");
        json.WriteStartObject();
        json.WriteString("id", engine.ModelName);
        json.WriteString("object", "model");
        json.WriteNumber("created", new DateTimeOffset(File.GetLastWriteTimeUtc(engine.Model.Folder)).ToUnixTimeSeconds());
        json.WriteString("owned_by", "lookahead");
        json.WriteNumber("max_model_len", engine.ContextLength);
        json.WriteEndObject();
        json.WriteEndArray();
        json.WriteEndObject();
    });

    private static async Task JsonAsync(HttpContext http, Action<Utf8JsonWriter> write)
    {
        http.Response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(http.Response.Body);
        write(json);
        await json.FlushAsync();
    }
}
