using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Lookahead.Server;

/// <summary>
/// A request the server refuses, in OpenAI's error shape: <c>{"error": {"message", "type", "param", "code"}}</c>
/// with its HTTP status (400 bad request, 401 no or wrong key, 404 unknown model or path, 429 queue full).
/// </summary>
public sealed class ApiError(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error")
    : Exception(message)
{
    /// <summary>The HTTP status.</summary>
    public int Status { get; } = status;
    /// <summary>The request field at fault, as OpenAI names it (e.g. "messages[0].content").</summary>
    public string? Param { get; } = param;
    /// <summary>A machine-readable reason, e.g. "context_length_exceeded".</summary>
    public string? Code { get; } = code;
    /// <summary>OpenAI's error type: invalid_request_error, authentication_error, rate_limit_error, server_error.</summary>
    public string Type { get; } = type;

    /// <summary>A 400 naming the field.</summary>
    public static ApiError Invalid(string param, string message) => new(StatusCodes.Status400BadRequest, message, param);

    /// <summary>Writes the error as the response (status and JSON body).</summary>
    public async Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        response.ContentType = "application/json";
        await using var json = new Utf8JsonWriter(response.Body);
        Write(json, Message, Type, Param, Code);
        await json.FlushAsync();
    }

    /// <summary>The error object (also sent as one event of a stream that fails after it started).</summary>
    public static void Write(Utf8JsonWriter json, string message, string type, string? param, string? code)
    {
        json.WriteStartObject();
        json.WriteStartObject("error");
        json.WriteString("message", message);
        json.WriteString("type", type);
        if (param is null) json.WriteNull("param");
        else json.WriteString("param", param);
        if (code is null) json.WriteNull("code");
        else json.WriteString("code", code);
        json.WriteEndObject();
        json.WriteEndObject();
    }
}
