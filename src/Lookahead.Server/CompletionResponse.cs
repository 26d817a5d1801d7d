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
        if (chat) await EventAsync(json => Chunk(json, "", role: true, null), aborted);
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
        await EventAsync(json => Chunk(json, text, role: false, null, tokens), aborted);
    }

    public async Task FinishAsync(string finishReason, int completionTokens, GenerationStats? stats, bool stream, CancellationToken aborted)
    {
        if (stream)
        {
            await EventAsync(json => Chunk(json, null, role: false, finishReason), aborted);
            if (includeUsage) await EventAsync(json => UsageChunk(json, completionTokens, stats), aborted);
            await ServerSentEvents.DoneAsync(response, aborted);
            return;
        }
        response.ContentType = "application/json";
        await using var writer = new Utf8JsonWriter(response.Body);
        writer.WriteStartObject();
        Header(writer, chat ? "chat.completion" : "text_completion");
        string text = _text.ToString();
        Choice(writer, "message", w =>
        {
            w.WriteString("role", "assistant");
            w.WriteString("content", text);
        }, text, finishReason);
        Usage(writer, completionTokens, stats);
        writer.WriteEndObject();
        await writer.FlushAsync(aborted);
    }

    private Task EventAsync(Action<Utf8JsonWriter> write, CancellationToken aborted) => ServerSentEvents.DataAsync(response, write, aborted);

    private void Header(Utf8JsonWriter json, string type)
    {
        json.WriteString("id", _id);
        json.WriteString("object", type);
        json.WriteNumber("created", _created);
        json.WriteString("model", model);
    }

    // A streamed chunk: its text (none in the finishing chunk; chat's first chunk names the role), the finish
    // reason, and the step's token count.
    private void Chunk(Utf8JsonWriter json, string? text, bool role, string? finishReason, int tokens = 0)
    {
        json.WriteStartObject();
        Header(json, chat ? "chat.completion.chunk" : "text_completion");
        Choice(json, "delta", w =>
        {
            if (role) w.WriteString("role", "assistant");
            if (text is not null) w.WriteString("content", text);
        }, text ?? "", finishReason);
        if (tokens > 0)
        {
            json.WriteStartObject("lookahead");
            json.WriteNumber("tokens", tokens);
            json.WriteEndObject();
        }
        json.WriteEndObject();
    }

    // The one choice: chat's message or delta object (its fields written by chatFields), or completions' text;
    // then the finish reason (null while streaming).
    private void Choice(Utf8JsonWriter json, string chatObject, Action<Utf8JsonWriter> chatFields, string text, string? finishReason)
    {
        json.WriteStartArray("choices");
        json.WriteStartObject();
        json.WriteNumber("index", 0);
        if (chat)
        {
            json.WriteStartObject(chatObject);
            chatFields(json);
            json.WriteEndObject();
        }
        else
        {
            json.WriteString("text", text);
        }
        json.WriteNull("logprobs");
        if (finishReason is null) json.WriteNull("finish_reason");
        else json.WriteString("finish_reason", finishReason);
        json.WriteEndObject();
        json.WriteEndArray();
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
