using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace Lookahead.Cli.Bench;

/// <summary>
/// lookahead bench --server URL: a load generator against a running server (ours, or any OpenAI-compatible
/// one that takes our "lookahead" field or ignores it). Closed-loop clients per concurrency and mode stream
/// /v1/completions at temperature 0; every request's text must equal the first mode's text for that prompt
/// (plain and lookahead decoding give the same tokens), else the run fails.
/// </summary>
internal static class ServerLoad
{
    /// <summary>One streamed request: when it was sent, its first and later chunks arrived, its tokens and text.</summary>
    private sealed record Timing(double TtftMs, double[] GapsMs, int Tokens, double Seconds, string Text);

    /// <summary>One concurrency and mode: totals and latency percentiles over its requests.</summary>
    internal sealed record Result(int Concurrency, string Mode, int Requests, long Tokens, double Seconds,
        double TtftP50, double TtftP95, double TtftP99, double ItlP50, double ItlP95, double ItlP99, double TokensPerChunk)
    {
        public double RequestsPerSecond => Seconds > 0 ? Requests / Seconds : 0;
        public double TokensPerSecond => Seconds > 0 ? Tokens / Seconds : 0;
    }

    public static async Task<List<Result>> RunAsync(Uri server, string? apiKey, IReadOnlyList<(string Id, object Prompt)> prompts, int[] levels,
        string[] modes, int maxTokens, Action<string> progress)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 1024 }) { BaseAddress = server, Timeout = TimeSpan.FromMinutes(30) };
        if (apiKey is not null) http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", apiKey);
        var reference = new string?[prompts.Count];
        var results = new List<Result>();
        foreach (int level in levels)
        {
            foreach (string mode in modes)
            {
                var timings = new Timing[prompts.Count];
                int next = -1;
                var clock = Stopwatch.StartNew();
                async Task Client()
                {
                    for (int i = Interlocked.Increment(ref next); i < prompts.Count; i = Interlocked.Increment(ref next))
                    {
                        timings[i] = await RequestAsync(http, prompts[i].Prompt, mode, maxTokens).ConfigureAwait(false);
                        progress($"{mode} x{level}");
                    }
                }
                await Task.WhenAll(Enumerable.Range(0, level).Select(_ => Task.Run(Client))).ConfigureAwait(false);
                double wall = clock.Elapsed.TotalSeconds;
                for (int i = 0; i < prompts.Count; i++)
                {
                    reference[i] ??= timings[i].Text;
                    if (timings[i].Text != reference[i])
                        throw new LookaheadException($"LOSSLESS CHECK FAILED: {mode} at concurrency {level} returned a different text for prompt {prompts[i].Id} " +
                                                     "than the first run of it (temperature 0: every mode must give the same text)");
                }
                double[] ttft = timings.Select(t => t.TtftMs).ToArray();
                double[] gaps = timings.SelectMany(t => t.GapsMs).ToArray();
                long tokens = timings.Sum(t => (long)t.Tokens);
                int chunks = timings.Sum(t => t.GapsMs.Length + 1);
                results.Add(new Result(level, mode, prompts.Count, tokens, wall, Percentiles.NearestRank(ttft, 0.5), Percentiles.NearestRank(ttft, 0.95), Percentiles.NearestRank(ttft, 0.99),
                    Percentiles.NearestRank(gaps, 0.5), Percentiles.NearestRank(gaps, 0.95), Percentiles.NearestRank(gaps, 0.99), chunks > 0 ? (double)tokens / chunks : 0));
            }
        }
        return results;
    }

    // One streamed completion: the time to its first text, the gaps between later text chunks, its tokens (the
    // usage chunk's count) and its text.
    private static async Task<Timing> RequestAsync(HttpClient http, object prompt, string mode, int maxTokens)
    {
        string body = JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["prompt"] = prompt,
            ["max_tokens"] = maxTokens,
            ["temperature"] = 0,
            ["stream"] = true,
            ["stream_options"] = new Dictionary<string, object> { ["include_usage"] = true },
            ["lookahead"] = new Dictionary<string, object> { ["mode"] = mode == "greedy" ? "plain" : "lookahead" },
        }, ServerLoadJson.Default.DictionaryStringObject);
        long sent = Stopwatch.GetTimestamp();
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        using HttpResponseMessage response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
            throw new LookaheadException($"the server answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync().ConfigureAwait(false)}");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync().ConfigureAwait(false));
        var text = new StringBuilder();
        var gaps = new List<double>();
        double ttft = double.NaN;
        long last = 0;
        int tokens = 0;
        while (await reader.ReadLineAsync().ConfigureAwait(false) is string line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            if (line == "data: [DONE]") break;
            using JsonDocument chunk = JsonDocument.Parse(line.AsMemory(6));
            JsonElement root = chunk.RootElement;
            if (root.TryGetProperty("usage", out JsonElement usage) && usage.ValueKind == JsonValueKind.Object)
                tokens = usage.GetProperty("completion_tokens").GetInt32();
            if (root.GetProperty("choices") is not { ValueKind: JsonValueKind.Array } choices || choices.GetArrayLength() == 0) continue;
            string piece = choices[0].GetProperty("text").GetString() ?? "";
            if (piece.Length == 0) continue;
            long now = Stopwatch.GetTimestamp();
            if (double.IsNaN(ttft)) ttft = Stopwatch.GetElapsedTime(sent, now).TotalMilliseconds;
            else gaps.Add(Stopwatch.GetElapsedTime(last, now).TotalMilliseconds);
            last = now;
            text.Append(piece);
        }
        double seconds = Stopwatch.GetElapsedTime(sent).TotalSeconds;
        return new Timing(double.IsNaN(ttft) ? seconds * 1000 : ttft, gaps.ToArray(), tokens, seconds, text.ToString());
    }

    public static string Table(IReadOnlyList<Result> results, bool markdown)
    {
        string F(double value, string format) => value.ToString(format, CultureInfo.InvariantCulture);
        Result? Plain(Result r) => results.FirstOrDefault(o => o.Concurrency == r.Concurrency && o.Mode == "greedy");
        return TextTable.Render(
            ["concurrency", "mode", "requests", "requests/s", "output tokens/s", "vs plain", "TTFT ms p50", "p95", "p99", "ITL ms p50", "p95", "p99", "tokens/chunk"],
            results.Select(r => new[]
            {
                r.Concurrency.ToString(CultureInfo.InvariantCulture), r.Mode, r.Requests.ToString(CultureInfo.InvariantCulture),
                F(r.RequestsPerSecond, "F2"), F(r.TokensPerSecond, "F1"),
                r.Mode == "greedy" || Plain(r) is not { TokensPerSecond: > 0 } plain ? "-" : F(r.TokensPerSecond / plain.TokensPerSecond, "F2") + "x",
                F(r.TtftP50, "F1"), F(r.TtftP95, "F1"), F(r.TtftP99, "F1"), F(r.ItlP50, "F2"), F(r.ItlP95, "F2"), F(r.ItlP99, "F2"), F(r.TokensPerChunk, "F2"),
            }).ToList(), markdown);
    }

    public static void WriteJson(Stream stream, Uri server, int maxTokens, IReadOnlyList<Result> results)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("server", server.ToString());
        json.WriteNumber("max_tokens", maxTokens);
        json.WriteString("itl", "gap between successive text chunks of a stream (a lookahead step's accepted tokens arrive in one chunk)");
        json.WriteStartArray("server_load");
        foreach (Result r in results)
        {
            json.WriteStartObject();
            json.WriteNumber("concurrency", r.Concurrency);
            json.WriteString("mode", r.Mode);
            json.WriteNumber("requests", r.Requests);
            json.WriteNumber("seconds", r.Seconds);
            json.WriteNumber("requests_per_second", r.RequestsPerSecond);
            json.WriteNumber("output_tokens_per_second", r.TokensPerSecond);
            json.WriteNumber("ttft_ms_p50", r.TtftP50);
            json.WriteNumber("ttft_ms_p95", r.TtftP95);
            json.WriteNumber("ttft_ms_p99", r.TtftP99);
            json.WriteNumber("itl_ms_p50", r.ItlP50);
            json.WriteNumber("itl_ms_p95", r.ItlP95);
            json.WriteNumber("itl_ms_p99", r.ItlP99);
            json.WriteNumber("tokens_per_chunk", r.TokensPerChunk);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int[]))]
[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
[System.Text.Json.Serialization.JsonSerializable(typeof(int))]
[System.Text.Json.Serialization.JsonSerializable(typeof(bool))]
internal sealed partial class ServerLoadJson : System.Text.Json.Serialization.JsonSerializerContext;
