using System.Text;
using System.Text.Json;
using Lookahead.Decoding;
using Microsoft.AspNetCore.Http;

namespace Lookahead.Server;

/// <summary>
/// Writes one completion in OpenAI's shapes: <c>text_completion</c> or <c>chat.completion</c> objects, or their
/// streamed chunks as server-sent events. Beside <c>usage</c>, a <c>lookahead</c> object reports the decoding
/// steps and the drafted and accepted tokens (clients that do not know it ignore it).
/// </summary>
internal sealed class CompletionResponse(bool chat, string model, int promptTokens, HttpResponse response, bool includeUsage)
{
    private readonly string _id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");
    private readonly long _created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
    private readonly StringBuilder _text = new();

    public async Task StartStreamAsync(CancellationToken aborted)
    {
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";  // nginx: pass events through as they come
        if (chat) await EventAsync(json => Chunk(json, w => { w.WriteString("role", "assistant"); w.WriteString("content", ""); }, null), aborted);
        else await response.Body.FlushAsync(aborted);
    }

    /// <summary>Text to send, and the tokens of the step it came from (streamed chunks carry that count in a
    /// <c>lookahead</c> object, for live tokens/s).</summary>
    public async Task TextAsync(string text, int tokens, bool stream, CancellationToken aborted)
    {
        if (text.Length == 0) return;
        if (!stream)
        {
            _text.Append(text);
            return;
        }
        await EventAsync(json => Chunk(json, w => w.WriteString(chat ? "content" : "text", text), null, tokens), aborted);
    }

    public async Task FinishAsync(string finishReason, int completionTokens, GenerationStats? stats, bool stream, CancellationToken aborted)
    {
        if (stream)
        {
            await EventAsync(json => Chunk(json, _ => { }, finishReason), aborted);
            if (includeUsage) await EventAsync(json => UsageChunk(json, completionTokens, stats), aborted);
            await response.WriteAsync("data: [DONE]\n\n", aborted);
            await response.Body.FlushAsync(aborted);
            return;
        }
        response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(response.Body);
        writer.WriteStartObject();
        Header(writer, chat ? "chat.completion" : "text_completion");
        writer.WriteStartArray("choices");
        writer.WriteStartObject();
        writer.WriteNumber("index", 0);
        if (chat)
        {
            writer.WriteStartObject("message");
            writer.WriteString("role", "assistant");
            writer.WriteString("content", _text.ToString());
            writer.WriteEndObject();
        }
        else
        {
            writer.WriteString("text", _text.ToString());
        }
        writer.WriteNull("logprobs");
        writer.WriteString("finish_reason", finishReason);
        writer.WriteEndObject();
        writer.WriteEndArray();
        Usage(writer, completionTokens, stats);
        writer.WriteEndObject();
        await writer.FlushAsync(aborted);
    }

    private async Task EventAsync(Action<Utf8JsonWriter> write, CancellationToken aborted)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        await using (var json = new Utf8JsonWriter(buffer)) write(json);
        await response.WriteAsync("data: ", aborted);
        await response.Body.WriteAsync(buffer.WrittenMemory, aborted);
        await response.WriteAsync("\n\n", aborted);
        await response.Body.FlushAsync(aborted);
    }

    private void Header(Utf8JsonWriter json, string type)
    {
        json.WriteString("id", _id);
        json.WriteString("object", type);
        json.WriteNumber("created", _created);
        json.WriteString("model", model);
    }

    // A streamed chunk: the delta (chat) or text (completions) the callback writes, and the finish reason.
    private void Chunk(Utf8JsonWriter json, Action<Utf8JsonWriter> content, string? finishReason, int tokens = 0)
    {
        json.WriteStartObject();
        Header(json, chat ? "chat.completion.chunk" : "text_completion");
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        if (chat)
        {
            json.WriteStartObject("delta");
            content(json);
            json.WriteEndObject();
        }
        else
        {
            content(json);
            if (finishReason is not null) json.WriteString("text", "");
        }
        json.WriteNull("logprobs");
        if (finishReason is null) json.WriteNull("finish_reason");
        else json.WriteString("finish_reason", finishReason);
        json.WriteEndObject();
        json.WriteEndArray();
        if (tokens > 0)
        {
            json.WriteStartObject("lookahead");
            json.WriteNumber("tokens", tokens);
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }

    // The last chunk with stream_options.include_usage: no choices, the usage.
    private void UsageChunk(Utf8JsonWriter json, int completionTokens, GenerationStats? stats)
    {
        json.WriteStartObject();
        Header(json, chat ? "chat.completion.chunk" : "text_completion");
        json.WriteStartArray("choices");
        json.WriteEndArray();
        Usage(json, completionTokens, stats);
        json.WriteEndObject();
    }

    private void Usage(Utf8JsonWriter json, int completionTokens, GenerationStats? stats)
    {
        json.WriteStartObject("usage");
        json.WriteNumber("prompt_tokens", promptTokens);
        json.WriteNumber("completion_tokens", completionTokens);
        json.WriteNumber("total_tokens", promptTokens + completionTokens);
        json.WriteEndObject();
        if (stats is null) return;  // ended by a stop string: the request was cancelled before its statistics
        json.WriteStartObject("lookahead");
        json.WriteNumber("steps", stats.Steps);
        json.WriteNumber("tokens_per_step", stats.MeanTokensPerStep);
        json.WriteNumber("drafted_tokens", stats.DraftedTokens);
        json.WriteNumber("accepted_tokens", stats.AcceptedTokens);
        json.WriteNumber("decode_seconds", stats.DecodeTime.TotalSeconds);
        json.WriteEndObject();
    }
}
