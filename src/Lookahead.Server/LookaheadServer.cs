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

    private LookaheadServer(WebApplication app, ServingEngine engine, Uri address)
    {
        _app = app;
        _engine = engine;
        Address = address;
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
            return new LookaheadServer(app, engine, new Uri(bound.EndsWith('/') ? bound : bound + "/"));
        }
        catch
        {
            engine.Dispose();
            throw;
        }
    }

    /// <summary>Completes when the server stops (Ctrl+C or SIGTERM in a console app, or <see cref="DisposeAsync"/>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellation = default) => _app.WaitForShutdownAsync(cancellation);

    /// <summary>Stops listening, ends requests in flight and frees the context.</summary>
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _engine.Dispose();
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
        app.MapFallback(http => new ApiError(StatusCodes.Status404NotFound, $"no such endpoint: {http.Request.Method} {http.Request.Path}",
            null, "not_found").WriteAsync(http.Response));
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
        json.WriteNumber("created", new DateTimeOffset(Directory.GetLastWriteTimeUtc(engine.Model.Folder)).ToUnixTimeSeconds());
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
