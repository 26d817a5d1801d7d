using System.Text.Json;
using Lookahead.Batching;
using Lookahead.Decoding;
using Lookahead.Tokenization;
using Microsoft.AspNetCore.Http;

namespace Lookahead.Server;

/// <summary>
/// POST /v1/completions and /v1/chat/completions: one request on the batch generator, answered as one JSON
/// object or, with <c>stream: true</c>, as server-sent events ending in <c>data: [DONE]</c>. A client that
/// disconnects cancels its request at the next step boundary (its KV blocks return to the pool).
/// </summary>
internal sealed class CompletionEndpoint(ServingEngine engine, bool chat)
{
    private string Endpoint => chat ? "chat/completions" : "completions";

    public async Task HandleAsync(HttpContext http)
    {
        int status = StatusCodes.Status200OK;
        try
        {
            status = await ServeAsync(http);
        }
        catch (ApiError error)
        {
            status = error.Status;
            if (!http.Response.HasStarted)
            {
                if (status == StatusCodes.Status429TooManyRequests) http.Response.Headers.RetryAfter = "1";
                await error.WriteAsync(http.Response);
            }
        }
        catch (OperationCanceledException) when (http.RequestAborted.IsCancellationRequested)
        {
            status = 499;  // the client went away (nginx's code for it)
        }
        catch (ArgumentException e)
        {
            // A setting the request's checks let through but the library refused: still the request's fault.
            status = StatusCodes.Status400BadRequest;
            await FailAsync(http, new ApiError(status, e.Message));
        }
        catch (Exception e) when (e is LookaheadException or ObjectDisposedException or InvalidOperationException)
        {
            // The step failed (e.g. non-finite logits) or the server is stopping: the request ends with the reason.
            status = StatusCodes.Status500InternalServerError;
            await FailAsync(http, new ApiError(status, e.Message, null, null, "server_error"));
        }
        finally
        {
            engine.Metrics.Request(Endpoint, status);
        }
    }

    // Before the response started: the error as the response; after (a stream): one last event holding it.
    private static async Task FailAsync(HttpContext http, ApiError error)
    {
        try
        {
            if (!http.Response.HasStarted)
            {
                await error.WriteAsync(http.Response);
                return;
            }
            await ServerSentEvents.DataAsync(http.Response, json => ApiError.Write(json, error.Message, error.Type, error.Param, error.Code), default);
            await ServerSentEvents.DoneAsync(http.Response, default);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException)
        {
            // the client is gone too
        }
    }

    private async Task<int> ServeAsync(HttpContext http)
    {
        JsonDocument document;
        try
        {
            document = await JsonDocument.ParseAsync(http.Request.Body, default, http.RequestAborted);
        }
        catch (JsonException e)
        {
            throw ApiError.Invalid("", $"the request body is not valid JSON: {e.Message}");
        }
        using (document)
        {
            CompletionRequest request = CompletionRequest.Parse(document.RootElement, chat, engine.ModelName, engine.Model.DefaultSampling, engine.ChatPrompt);
            int[] prompt = engine.PromptIds(request);
            GenerationOptions options = engine.Options(request, prompt.Length);
            using ServingEngine.Admission admission = engine.Admit()
                ?? throw new ApiError(StatusCodes.Status429TooManyRequests,
                    $"the server is at its limit of {engine.MaxInFlight} requests in flight; retry shortly", null, "queue_full", "rate_limit_error");
            engine.Metrics.Prompt(prompt.Length);
            var response = new CompletionResponse(chat, engine.ModelName, prompt.Length, http.Response, request.IncludeUsage);
            if (request.Stream) await response.StartStreamAsync(http.RequestAborted);
            await GenerateAsync(request, prompt, options, response, http.RequestAborted);
            return StatusCodes.Status200OK;
        }
    }

    private async Task GenerateAsync(CompletionRequest request, int[] prompt, GenerationOptions options, CompletionResponse response,
        CancellationToken aborted)
    {
        var text = new StoppingTextStream(engine.Tokenizer, prompt, request.Stop);
        int generated = 0;
        BatchResult? result = null;
        await foreach (BatchChunk chunk in engine.Batch.GenerateAsync(prompt, options, aborted))
        {
            if (chunk.Result is not null)
            {
                result = chunk.Result;
                break;
            }
            generated += chunk.Tokens.Length;
            engine.Metrics.Generated(chunk.Tokens.Length);
            await response.TextAsync(text.Append(chunk.Tokens), chunk.Tokens.Length, request.Stream, aborted);
            if (text.Stopped) break;  // leaving the enumeration cancels the request at the next step
        }
        await response.TextAsync(text.Finish(), 0, request.Stream, aborted);
        if (result is not null) engine.Metrics.Finished(result.Stats.Steps, result.Stats.DraftedTokens, result.Stats.AcceptedTokens);
        string finish = text.Stopped || result?.FinishReason == FinishReason.EndOfSequence ? "stop" : "length";
        await response.FinishAsync(finish, generated, result?.Stats, request.Stream, aborted);
    }
}
