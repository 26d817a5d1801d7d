using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Lookahead.Server;

/// <summary>Server-sent events as OpenAI streams them: <c>data: JSON</c> events, flushed one by one, and a last
/// <c>data: [DONE]</c>.</summary>
internal static class ServerSentEvents
{
    public static async Task DataAsync(HttpResponse response, Action<Utf8JsonWriter> write, CancellationToken aborted)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        await using (var json = new Utf8JsonWriter(buffer)) write(json);
        await response.WriteAsync("data: ", aborted);
        await response.Body.WriteAsync(buffer.WrittenMemory, aborted);
        await response.WriteAsync("\n\n", aborted);
        await response.Body.FlushAsync(aborted);
    }

    public static async Task DoneAsync(HttpResponse response, CancellationToken aborted)
    {
        await response.WriteAsync("data: [DONE]\n\n", aborted);
        await response.Body.FlushAsync(aborted);
    }
}
