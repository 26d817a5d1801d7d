using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Lookahead.Decoding;
using Lookahead.Server;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>
/// Two server replicas behind Debian's nginx (an upstream of both), each warm-started from a trie file an
/// earlier server saved: requests spread over both, and every answer equals the single-request output.
/// .ci/run installs nginx; without it the test is skipped, saying so.
/// </summary>
[NonParallelizable]
public class ReplicaTests
{
    private const string Nginx = "/usr/sbin/nginx";

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static ServerOptions Replica(string trie) => new()
    {
        Port = 0, MaxConcurrency = 2, TrieFile = trie,
        Context = new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 },
    };

    [Test]
    public async Task TwoReplicasBehindNginxShareTheLoadAndAnswerAsOneServerDoes()
    {
        if (!File.Exists(Nginx)) Assert.Ignore($"no nginx at {Nginx} (Debian package nginx; .ci/run installs it)");
        string folder = Path.Combine(Path.GetTempPath(), "lookahead-replicas-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        List<string> prompts = LookaheadLosslessTests.BenchPrompts(12).Select(p => p[..Math.Min(p.Length, 80)]).ToList();
        try
        {
            // A first server serves the warm-up and saves its trie when it stops; each replica starts from a copy.
            string seed = Path.Combine(folder, "seed.trie");
            await using (LookaheadServer first = await LookaheadServer.StartAsync(model, Replica(seed)))
            {
                using var client = new HttpClient { BaseAddress = first.Address };
                foreach (string prompt in prompts.Take(4))
                    (await client.PostAsync("v1/completions", Json(new { prompt, max_tokens = 30, temperature = 0 }))).EnsureSuccessStatusCode();
            }
            Assert.That(new FileInfo(seed).Length, Is.GreaterThan(32), "the first server saved its trie when it stopped");
            File.Copy(seed, Path.Combine(folder, "a.trie"));
            File.Copy(seed, Path.Combine(folder, "b.trie"));
            await using LookaheadServer a = await LookaheadServer.StartAsync(model, Replica(Path.Combine(folder, "a.trie")));
            await using LookaheadServer b = await LookaheadServer.StartAsync(model, Replica(Path.Combine(folder, "b.trie")));

            int port = FreePort();
            File.WriteAllText(Path.Combine(folder, "nginx.conf"), $$"""
                daemon off;
                master_process off;
                pid {{folder}}/nginx.pid;
                error_log {{folder}}/error.log;
                events { worker_connections 64; }
                http {
                    access_log {{folder}}/access.log;
                    client_body_temp_path {{folder}}/body;
                    proxy_temp_path {{folder}}/proxy;
                    fastcgi_temp_path {{folder}}/fastcgi;
                    uwsgi_temp_path {{folder}}/uwsgi;
                    scgi_temp_path {{folder}}/scgi;
                    upstream lookahead {
                        server 127.0.0.1:{{a.Address.Port}};
                        server 127.0.0.1:{{b.Address.Port}};
                    }
                    server {
                        listen 127.0.0.1:{{port}};
                        location / {
                            proxy_pass http://lookahead;
                            proxy_http_version 1.1;
                            proxy_buffering off;
                            proxy_read_timeout 300s;
                        }
                    }
                }
                """);
            var start = new ProcessStartInfo(Nginx) { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string arg in new[] { "-p", folder, "-c", Path.Combine(folder, "nginx.conf"), "-e", Path.Combine(folder, "error.log") })
                start.ArgumentList.Add(arg);
            using Process nginx = Process.Start(start)!;
            try
            {
                using var balanced = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
                for (int attempt = 0; ; attempt++)
                {
                    try
                    {
                        (await balanced.GetAsync("health")).EnsureSuccessStatusCode();
                        break;
                    }
                    catch (HttpRequestException) when (attempt < 100 && !nginx.HasExited)
                    {
                        await Task.Delay(50);
                    }
                }
                Assert.That(nginx.HasExited, Is.False, () => File.ReadAllText(Path.Combine(folder, "error.log")));

                string[] answers = await Task.WhenAll(prompts.Select(async (prompt, i) =>
                {
                    var body = new { messages = new[] { new { role = "user", content = prompt } }, max_tokens = 30, temperature = 0, stream = i % 2 == 0 };
                    using HttpResponseMessage response = await balanced.PostAsync("v1/chat/completions", Json(body));
                    response.EnsureSuccessStatusCode();
                    string text = await response.Content.ReadAsStringAsync();
                    if (i % 2 != 0) return JsonDocument.Parse(text).RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
                    var streamed = new StringBuilder();
                    foreach (string line in text.Split('\n').Where(l => l.StartsWith("data: {", StringComparison.Ordinal)))
                        if (JsonDocument.Parse(line[6..]).RootElement.GetProperty("choices") is { } choices && choices.GetArrayLength() > 0
                            && choices[0].GetProperty("delta").TryGetProperty("content", out JsonElement content))
                            streamed.Append(content.GetString());
                    return streamed.ToString();
                }));
                for (int i = 0; i < prompts.Count; i++) Assert.That(answers[i], Is.EqualTo(Alone(model, prompts[i], 30)), $"request {i}");

                foreach (LookaheadServer replica in new[] { a, b })
                {
                    using var direct = new HttpClient { BaseAddress = replica.Address };
                    string metrics = await direct.GetStringAsync("metrics");
                    Match served = Regex.Match(metrics, @"lookahead_requests_total\{endpoint=""chat/completions"",code=""200""\} (\d+)");
                    Assert.That(served.Success && int.Parse(served.Groups[1].Value) > 0, Is.True, $"replica {replica.Address} served some of the requests");
                }
            }
            finally
            {
                if (!nginx.HasExited) nginx.Kill();
                await nginx.WaitForExitAsync();
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static StringContent Json(object body) => new(JsonSerializer.Serialize(body), Encoding.UTF8, "application/json");

    private static string Alone(LanguageModel model, string prompt, int maxTokens) =>
        TextOracle.Alone(model, prompt, new GenerationOptions { MaxTokens = maxTokens });
}
