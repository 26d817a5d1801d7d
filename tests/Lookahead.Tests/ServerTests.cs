using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Lookahead.Decoding;
using Lookahead.Extensions.AI;
using Lookahead.Server;
using Microsoft.Extensions.AI;
using OpenAI;
using OpenAI.Chat;
using Lookahead.Tests.Fixtures;
using ChatFinishReason = OpenAI.Chat.ChatFinishReason;

namespace Lookahead.Tests;

/// <summary>
/// The real server on a free loopback port, spoken to by the official OpenAI .NET client, by
/// Microsoft.Extensions.AI over it, and by raw HTTP: every text equals what the single-sequence Generator
/// emits for the same prompt and settings, errors come in OpenAI's shape, and many concurrent streams with
/// cancellations and malformed requests mixed in leave every answer right and nothing held.
/// </summary>
[NonParallelizable]
public class ServerTests
{
    private const string Key = "test-key";
    private LanguageModel _model = null!;
    private LookaheadServer _server = null!;
    private HttpClient _http = null!;

    [OneTimeSetUp]
    public async Task Start()
    {
        _model = LanguageModel.Load(TestPaths.Stories260K);
        _server = await LookaheadServer.StartAsync(_model, new ServerOptions
        {
            Port = 0, ApiKey = Key, MaxConcurrency = 4, QueueLimit = 64,
            Context = new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 },
        });
        _http = new HttpClient { BaseAddress = _server.Address };
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", Key);
    }

    [OneTimeTearDown]
    public async Task Stop()
    {
        _http.Dispose();
        await _server.DisposeAsync();
        _model.Dispose();
    }

    // The oracle: the Generator alone on the prompt text's tokens, its continuation as text.
    private string Alone(string prompt, int maxTokens, SamplingOptions sampling, DecodingMode mode = DecodingMode.Greedy) =>
        TextOracle.Alone(_model, prompt, new GenerationOptions { MaxTokens = maxTokens, Mode = mode, Sampling = sampling });

    private static List<string> Prompts(int count) => LookaheadLosslessTests.BenchPrompts(count).Select(p => p[..Math.Min(p.Length, 120)]).ToList();

    private ChatClient OpenAiChat() => new(_server.ModelName, new ApiKeyCredential(Key), new OpenAIClientOptions { Endpoint = new Uri(_server.Address, "v1") });

#pragma warning disable OPENAI001  // ChatCompletionOptions.Seed is marked experimental in the OpenAI package
    [Test]
    public void TheOpenAiClientGetsTheGeneratorsTextStreamingOrNotGreedyOrSeeded()
    {
        ChatClient client = OpenAiChat();
        string prompt = Prompts(3)[2];
        foreach ((float temperature, long seed) in new[] { (0f, 0L), (0.8f, 7L) })
        {
            string alone = Alone(prompt, 40, new SamplingOptions { Temperature = temperature, Seed = temperature == 0 ? null : (ulong)seed });
            var options = new ChatCompletionOptions { Temperature = temperature, MaxOutputTokenCount = 40, Seed = temperature == 0 ? null : seed };
            ChatCompletion completion = client.CompleteChat([new UserChatMessage(prompt)], options);
            Assert.That(completion.Content[0].Text, Is.EqualTo(alone), $"temperature {temperature}: non-streaming");
            Assert.That(completion.FinishReason, Is.EqualTo(ChatFinishReason.Length));
            Assert.That(completion.Usage.OutputTokenCount, Is.EqualTo(40));
            Assert.That(completion.Usage.InputTokenCount, Is.EqualTo(_model.Tokenizer!.Encode(prompt).Length));

            var streamed = new StringBuilder();
            ChatFinishReason? finish = null;
            foreach (StreamingChatCompletionUpdate update in client.CompleteChatStreaming([new UserChatMessage(prompt)], options))
            {
                foreach (ChatMessageContentPart part in update.ContentUpdate) streamed.Append(part.Text);
                finish ??= update.FinishReason;
            }
            Assert.That(streamed.ToString(), Is.EqualTo(alone), $"temperature {temperature}: streaming");
            Assert.That(finish, Is.EqualTo(ChatFinishReason.Length));
        }
    }
#pragma warning restore OPENAI001

    [Test]
    public async Task MicrosoftExtensionsAiOverTheOpenAiClientGetsTheSameText()
    {
        IChatClient client = OpenAiChat().AsIChatClient();
        string prompt = Prompts(2)[1];
        string alone = Alone(prompt, 30, new SamplingOptions());
        ChatResponse response = await client.GetResponseAsync(prompt, new ChatOptions { Temperature = 0, MaxOutputTokens = 30 });
        Assert.That(response.Text, Is.EqualTo(alone));
        var streamed = new StringBuilder();
        await foreach (ChatResponseUpdate update in client.GetStreamingResponseAsync(prompt, new ChatOptions { Temperature = 0, MaxOutputTokens = 30 }))
            streamed.Append(update.Text);
        Assert.That(streamed.ToString(), Is.EqualTo(alone));
    }

    [Test]
    public async Task OurChatClientAndTheOpenAiClientThroughTheServerGiveTheSameText()
    {
        using var ours = new LookaheadChatClient(_model, new LookaheadChatClientOptions
        {
            MaxConcurrency = 2, Context = new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 },
        });
        IChatClient throughServer = OpenAiChat().AsIChatClient();
        string prompt = Prompts(6)[5];
        ChatOptions[] settings =
        [
            new() { Temperature = 0, MaxOutputTokens = 30 },
            new() { Temperature = 0.8f, TopP = 0.9f, Seed = 21, PresencePenalty = 0.5f, MaxOutputTokens = 30 },
        ];
        foreach (ChatOptions options in settings)
        {
            string alone = Alone(prompt, 30, new SamplingOptions
            {
                Temperature = options.Temperature!.Value, TopP = options.TopP ?? 1, PresencePenalty = options.PresencePenalty ?? 0, Seed = (ulong?)options.Seed,
            });
            ChatResponse mine = await ours.GetResponseAsync(prompt, options);
            ChatResponse theirs = await throughServer.GetResponseAsync(prompt, options);
            Assert.That(mine.Text, Is.EqualTo(alone), $"temperature {options.Temperature}: ours equals the Generator alone");
            Assert.That(theirs.Text, Is.EqualTo(alone), $"temperature {options.Temperature}: through the server too");
            Assert.That(mine.FinishReason, Is.EqualTo(Microsoft.Extensions.AI.ChatFinishReason.Length));
            Assert.That(mine.Usage!.OutputTokenCount, Is.EqualTo(30));
            Assert.That(mine.Usage.InputTokenCount, Is.EqualTo(theirs.Usage!.InputTokenCount));
            Assert.That((double)mine.AdditionalProperties!["lookahead.tokens_per_step"]!, Is.GreaterThanOrEqualTo(1));
            var streamed = new StringBuilder();
            await foreach (ChatResponseUpdate update in ours.GetStreamingResponseAsync(prompt, options)) streamed.Append(update.Text);
            Assert.That(streamed.ToString(), Is.EqualTo(alone), "ours, streaming");
        }
        string full = (await ours.GetResponseAsync(prompt, settings[0])).Text;
        string stop = full.Substring(full.Length / 2, 2);
        ChatResponse stopped = await ours.GetResponseAsync(prompt, new ChatOptions { Temperature = 0, MaxOutputTokens = 30, StopSequences = [stop] });
        Assert.That(stopped.Text, Is.EqualTo(full[..full.IndexOf(stop, StringComparison.Ordinal)]));
        Assert.That(stopped.FinishReason, Is.EqualTo(Microsoft.Extensions.AI.ChatFinishReason.Stop));
        Assert.That(ours.GetService<ChatClientMetadata>()!.DefaultModelId, Is.EqualTo("stories260K"));
    }

    // Reads a server-sent event stream: every data payload until [DONE], which must come last.
    private static async Task<List<JsonElement>> ReadEvents(HttpResponseMessage response)
    {
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("text/event-stream"));
        string body = await response.Content.ReadAsStringAsync();
        string[] payloads = body.Split("\n\n", StringSplitOptions.RemoveEmptyEntries);
        Assert.That(payloads, Is.All.StartsWith("data: "));
        Assert.That(payloads[^1], Is.EqualTo("data: [DONE]"));
        return payloads[..^1].Select(p => JsonDocument.Parse(p["data: ".Length..]).RootElement.Clone()).ToList();
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Test]
    public async Task CompletionsTakeTextOrTokenIdsAndStreamEventsEndingInDone()
    {
        string prompt = Prompts(4)[3];
        string alone = Alone(prompt, 25, new SamplingOptions(), DecodingMode.Lookahead);
        string body = JsonSerializer.Serialize(new { model = _server.ModelName, prompt, max_tokens = 25, temperature = 0 });
        using (HttpResponseMessage response = await _http.PostAsync("v1/completions", Json(body)))
        {
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            JsonElement root = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.That(root.GetProperty("object").GetString(), Is.EqualTo("text_completion"));
            Assert.That(root.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(alone));
            Assert.That(root.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), Is.EqualTo(25));
            Assert.That(root.GetProperty("lookahead").GetProperty("tokens_per_step").GetDouble(), Is.GreaterThanOrEqualTo(1));
        }

        int[] ids = _model.Tokenizer!.Encode(prompt);
        string streamBody = JsonSerializer.Serialize(new { prompt = ids, max_tokens = 25, temperature = 0, stream = true, stream_options = new { include_usage = true } });
        using (HttpResponseMessage response = await _http.PostAsync("v1/completions", Json(streamBody)))
        {
            List<JsonElement> events = await ReadEvents(response);
            string text = string.Concat(events.Where(e => e.GetProperty("choices").GetArrayLength() > 0)
                .Select(e => e.GetProperty("choices")[0].GetProperty("text").GetString()));
            Assert.That(text, Is.EqualTo(alone), "token-id prompt, streamed");
            Assert.That(events[^2].GetProperty("choices")[0].GetProperty("finish_reason").GetString(), Is.EqualTo("length"));
            Assert.That(events[^1].GetProperty("choices").GetArrayLength(), Is.EqualTo(0), "the usage chunk comes last, without choices");
            Assert.That(events[^1].GetProperty("usage").GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(ids.Length));
        }
    }

    [Test]
    public async Task AStopStringEndsTheTextBeforeIt()
    {
        string prompt = Prompts(5)[4];
        string alone = Alone(prompt, 60, new SamplingOptions());
        string stop = alone.Substring(alone.Length / 2, 3);
        string expected = alone[..alone.IndexOf(stop, StringComparison.Ordinal)];
        foreach (bool stream in new[] { false, true })
        {
            string body = JsonSerializer.Serialize(new { prompt, max_tokens = 60, temperature = 0, stop = new[] { "\u0001never", stop }, stream });
            using HttpResponseMessage response = await _http.PostAsync("v1/completions", Json(body));
            string text;
            string? finish;
            if (stream)
            {
                List<JsonElement> events = await ReadEvents(response);
                text = string.Concat(events.Select(e => e.GetProperty("choices")[0].GetProperty("text").GetString()));
                finish = events[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString();
            }
            else
            {
                JsonElement choice = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("choices")[0];
                text = choice.GetProperty("text").GetString()!;
                finish = choice.GetProperty("finish_reason").GetString();
            }
            Assert.That(text, Is.EqualTo(expected), $"stream={stream}");
            Assert.That(finish, Is.EqualTo("stop"));
        }
    }

    private async Task<(HttpStatusCode Status, JsonElement Error)> Refused(string path, string body, string? key = Key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) };
        request.Headers.Authorization = key is null ? null : new AuthenticationHeaderValue("Bearer", key);
        using var client = new HttpClient { BaseAddress = _server.Address };
        using HttpResponseMessage response = await client.SendAsync(request);
        JsonElement root = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        JsonElement error = root.GetProperty("error");
        Assert.That(error.GetProperty("message").GetString(), Is.Not.Empty);
        Assert.That(error.TryGetProperty("type", out _) && error.TryGetProperty("param", out _) && error.TryGetProperty("code", out _), Is.True,
            "OpenAI's error shape: message, type, param, code");
        return (response.StatusCode, error.Clone());
    }

    [Test]
    public async Task BadRequestsAreRefusedInOpenAisErrorShape()
    {
        string longPrompt = string.Join(" ", Enumerable.Repeat("Once upon a time there was a girl.", 80));
        (string Body, string Path, HttpStatusCode Status, string? Param, string? Code)[] cases =
        [
            ("{\"messages\": [", "v1/chat/completions", HttpStatusCode.BadRequest, null, null),
            ("{}", "v1/chat/completions", HttpStatusCode.BadRequest, "messages", null),
            ("{\"messages\": []}", "v1/chat/completions", HttpStatusCode.BadRequest, "messages", null),
            ("{\"messages\": [{\"role\": \"user\", \"content\": 5}]}", "v1/chat/completions", HttpStatusCode.BadRequest, "messages[0].content", null),
            ("{\"messages\": [{\"role\": \"wizard\", \"content\": \"hi\"}]}", "v1/chat/completions", HttpStatusCode.BadRequest, "messages[0].role", null),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": \"hot\"}", "v1/chat/completions", HttpStatusCode.BadRequest, "temperature", null),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"temperature\": 9}", "v1/chat/completions", HttpStatusCode.BadRequest, "temperature", null),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"n\": 2}", "v1/chat/completions", HttpStatusCode.BadRequest, "n", null),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"lookahead\": {\"mode\": \"turbo\"}}", "v1/chat/completions", HttpStatusCode.BadRequest, "lookahead.mode", null),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"model\": \"gpt-9\"}", "v1/chat/completions", HttpStatusCode.NotFound, "model", "model_not_found"),
            ("{\"prompt\": \"hi\", \"max_tokens\": 0}", "v1/completions", HttpStatusCode.BadRequest, "max_tokens", null),
            ("{\"prompt\": \"hi\", \"max_tokens\": 100000}", "v1/completions", HttpStatusCode.BadRequest, "max_tokens", "context_length_exceeded"),
            ("{\"prompt\": [1, 99999]}", "v1/completions", HttpStatusCode.BadRequest, "prompt", null),
            ("{\"prompt\": [\"a\", \"b\"]}", "v1/completions", HttpStatusCode.BadRequest, "prompt", null),
            ("{\"prompt\": \"hi\", \"echo\": true}", "v1/completions", HttpStatusCode.BadRequest, "echo", null),
            (JsonSerializer.Serialize(new { prompt = longPrompt }), "v1/completions", HttpStatusCode.BadRequest, "prompt", "context_length_exceeded"),
            ("{\"prompt\": \"hi\"}", "v1/nothing", HttpStatusCode.NotFound, null, "not_found"),
        ];
        foreach ((string body, string path, HttpStatusCode status, string? param, string? code) in cases)
        {
            (HttpStatusCode got, JsonElement error) = await Refused(path, body);
            Assert.That(got, Is.EqualTo(status), body);
            if (param is not null) Assert.That(error.GetProperty("param").GetString(), Is.EqualTo(param), body);
            if (code is not null) Assert.That(error.GetProperty("code").GetString(), Is.EqualTo(code), body);
        }
        using (HttpResponseMessage get = await _http.GetAsync("v1/chat/completions"))
        {
            Assert.That(get.StatusCode, Is.EqualTo(HttpStatusCode.MethodNotAllowed));
            Assert.That(get.Content.Headers.Allow, Is.EquivalentTo(new[] { "POST" }));
            Assert.That(JsonDocument.Parse(await get.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetProperty("code").GetString(),
                Is.EqualTo("method_not_allowed"));
        }
        (HttpStatusCode noKey, JsonElement unauthorized) = await Refused("v1/completions", "{\"prompt\": \"hi\"}", key: null);
        Assert.That(noKey, Is.EqualTo(HttpStatusCode.Unauthorized));
        Assert.That(unauthorized.GetProperty("code").GetString(), Is.EqualTo("invalid_api_key"));
        (HttpStatusCode wrongKey, _) = await Refused("v1/completions", "{\"prompt\": \"hi\"}", key: "nope");
        Assert.That(wrongKey, Is.EqualTo(HttpStatusCode.Unauthorized));
    }

    [Test]
    public async Task ModelsHealthAndMetricsAnswer()
    {
        JsonElement models = JsonDocument.Parse(await _http.GetStringAsync("v1/models")).RootElement;
        Assert.That(models.GetProperty("data")[0].GetProperty("id").GetString(), Is.EqualTo("stories260K"));
        using var open = new HttpClient { BaseAddress = _server.Address };  // no key: health and metrics are open
        Assert.That(JsonDocument.Parse(await open.GetStringAsync("health")).RootElement.GetProperty("status").GetString(), Is.EqualTo("ok"));
        await _http.PostAsync("v1/completions", Json("{\"prompt\": \"Once\", \"max_tokens\": 3}"));
        string metrics = await open.GetStringAsync("metrics");
        AssertPrometheusText(metrics);
        Assert.That(metrics, Does.Contain("lookahead_requests_total{endpoint=\"completions\",code=\"200\"}"));
        Assert.That(Regex.Match(metrics, @"^lookahead_generation_tokens_total (\d+)", RegexOptions.Multiline).Groups[1].Value, Is.Not.EqualTo("0"));
    }

    // The text exposition format: HELP and TYPE lines, then samples "name{labels} value" of declared metrics.
    private static void AssertPrometheusText(string text)
    {
        var types = new Dictionary<string, string>();
        foreach (string line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            Match type = Regex.Match(line, @"^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$");
            if (type.Success)
            {
                types[type.Groups[1].Value] = type.Groups[2].Value;
                continue;
            }
            if (line.StartsWith("# HELP ", StringComparison.Ordinal)) continue;
            Match sample = Regex.Match(line, @"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*=""[^""\\]*"",?)*\})? (-?[0-9.eE+-]+|NaN|[+-]Inf)$");
            Assert.That(sample.Success, Is.True, $"not a Prometheus sample line: '{line}'");
            Assert.That(types.ContainsKey(sample.Groups[1].Value), Is.True, $"sample before its TYPE: '{line}'");
        }
        Assert.That(types, Is.Not.Empty);
    }

    [Test]
    public async Task ThirtyTwoConcurrentStreamsWithCancellationsAndMalformedOnesMixedIn()
    {
        List<string> prompts = Prompts(8);
        var random = new Random(5);
        string RandomPrompt()
        {
            string prompt = prompts[random.Next(prompts.Count)];
            return prompt[..Math.Min(prompt.Length, random.Next(10, 100))];
        }
        var jobs = Enumerable.Range(0, 32).Select(i => (Prompt: RandomPrompt(),
            MaxTokens: random.Next(5, 40), Kind: random.Next(8) switch { 0 => "malformed", 1 or 2 => "cancel", _ => "complete" },
            Seeded: random.Next(3) == 0)).ToList();
        var oracle = jobs.Select(j => j.Kind == "complete"
            ? Alone(j.Prompt, j.MaxTokens, j.Seeded ? new SamplingOptions { Temperature = 0.9f, Seed = 11 } : new SamplingOptions())
            : null).ToList();
        string[] results = await Task.WhenAll(jobs.Select(async (job, i) =>
        {
            await Task.Delay(random.Next(0, 50) * (i % 3));
            if (job.Kind == "malformed")
            {
                (HttpStatusCode status, _) = await Refused("v1/chat/completions", "{\"messages\": [{\"role\": \"user\"}], \"stream\": true}");
                return status == HttpStatusCode.BadRequest ? "refused" : $"status {status}";
            }
            string body = JsonSerializer.Serialize(new
            {
                messages = new[] { new { role = "user", content = job.Prompt } },
                max_tokens = job.MaxTokens, stream = true, temperature = job.Seeded ? 0.9 : 0, seed = job.Seeded ? 11 : (int?)null,
            });
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/chat/completions") { Content = Json(body) };
            using var cancel = new CancellationTokenSource();
            using HttpResponseMessage response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel.Token);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(cancel.Token));
            var text = new StringBuilder();
            while (await reader.ReadLineAsync(cancel.Token) is string line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
                if (line == "data: [DONE]") return text.ToString();
                JsonElement choice = JsonDocument.Parse(line[6..]).RootElement.GetProperty("choices")[0];
                if (choice.GetProperty("delta").TryGetProperty("content", out JsonElement content)) text.Append(content.GetString());
                if (job.Kind == "cancel" && text.Length > 0)
                {
                    cancel.Cancel();  // the client goes away mid-stream
                    return "cancelled";
                }
            }
            return job.Kind == "cancel" ? "cancelled" : "ended without [DONE]";
        }));
        for (int i = 0; i < jobs.Count; i++)
        {
            string expected = jobs[i].Kind switch { "malformed" => "refused", "cancel" => "cancelled", _ => oracle[i]! };
            Assert.That(results[i], Is.EqualTo(expected), $"request {i} ({jobs[i].Kind}, seeded {jobs[i].Seeded})");
        }
        // Every sequence is gone but those kept for continuations; nothing else holds a block.
        Batching.BatchGauges gauges = _server.Gauges;
        for (int wait = 0; wait < 200 && (gauges.Running > 0 || gauges.Waiting > 0); wait++)
        {
            await Task.Delay(25);
            gauges = _server.Gauges;
        }
        Assert.That(gauges.Running + gauges.Waiting, Is.Zero, "no request is left running or waiting");
        // (a block that forks share counts once per parked holder in ParkedBlocks)
        Assert.That(gauges.KvPool.InUse, Is.LessThanOrEqualTo(gauges.ParkedBlocks), "the pool holds only parked sequences' blocks");
        Assert.That(gauges.Parked, Is.LessThanOrEqualTo(4));
        Assert.That((await _http.GetAsync("health")).StatusCode, Is.EqualTo(HttpStatusCode.OK), "the server stays up");
    }

    [Test]
    public async Task TheTrieFileIsRefreshedWhileServingAndWarmStartsTheNextServer()
    {
        string trie = Path.Combine(Path.GetTempPath(), "lookahead-serve-" + Guid.NewGuid().ToString("N") + ".trie");
        try
        {
            var options = new ServerOptions
            {
                Port = 0, MaxConcurrency = 1, TrieFile = trie, TrieSaveInterval = TimeSpan.FromMilliseconds(100),
                Context = new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 },
            };
            await using (LookaheadServer server = await LookaheadServer.StartAsync(_model, options))
            {
                using var client = new HttpClient { BaseAddress = server.Address };
                (await client.PostAsync("v1/completions", Json("{\"prompt\": \"Once upon a time\", \"max_tokens\": 40}"))).EnsureSuccessStatusCode();
                for (int wait = 0; wait < 100 && !File.Exists(trie); wait++) await Task.Delay(20);
                Assert.That(File.Exists(trie), Is.True, "saved while serving, before the server stops");
            }
            using var loaded = new Lookahead.Drafting.TokenTrie(Generator.DefaultTrieOptions(_model, new Lookahead.Drafting.DraftOptions().BranchLength));
            loaded.Load(trie, _model.Config.VocabSize);
            Assert.That(loaded.NodeCount, Is.GreaterThan(40), "the output's n-grams are in the file");

            // A server started from the file drafts from it at once: its first request accepts drafted tokens.
            string continuation = Alone("Once upon a time", 40, new SamplingOptions());
            await using LookaheadServer warm = await LookaheadServer.StartAsync(_model, options);
            using var warmClient = new HttpClient { BaseAddress = warm.Address };
            using HttpResponseMessage response = await warmClient.PostAsync("v1/completions",
                Json("{\"prompt\": \"Once upon a time\", \"max_tokens\": 40, \"lookahead\": {\"decoding_length\": 8}}"));
            JsonElement root = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
            Assert.That(root.GetProperty("choices")[0].GetProperty("text").GetString(), Is.EqualTo(continuation));
            Assert.That(root.GetProperty("lookahead").GetProperty("accepted_tokens").GetInt32(), Is.GreaterThan(10),
                "the warm trie's n-grams of this very continuation are accepted");
        }
        finally
        {
            File.Delete(trie);
        }
    }

    [Test]
    public async Task BeyondTheQueueLimitRequestsGet429WithRetryAfter()
    {
        await using LookaheadServer small = await LookaheadServer.StartAsync(_model, new ServerOptions
        {
            Port = 0, MaxConcurrency = 1, QueueLimit = 0, Context = new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 },
        });
        using var client = new HttpClient { BaseAddress = small.Address };
        string body = JsonSerializer.Serialize(new { prompt = "Once upon a time", max_tokens = 400, stream = true });
        using HttpResponseMessage first = await client.SendAsync(new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = Json(body) },
            HttpCompletionOption.ResponseHeadersRead);
        Assert.That(first.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using HttpResponseMessage second = await client.PostAsync("v1/completions", Json(body));
        Assert.That(second.StatusCode, Is.EqualTo(HttpStatusCode.TooManyRequests));
        Assert.That(second.Headers.RetryAfter, Is.Not.Null);
        JsonElement error = JsonDocument.Parse(await second.Content.ReadAsStringAsync()).RootElement.GetProperty("error");
        Assert.That(error.GetProperty("type").GetString(), Is.EqualTo("rate_limit_error"));
    }
}
