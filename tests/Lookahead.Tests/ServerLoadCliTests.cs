using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using Lookahead.Server;

namespace Lookahead.Tests;

/// <summary>`lookahead bench --server URL` against a real server: its table, report.json's server_load list, and
/// its usage and connection errors.</summary>
[NonParallelizable]
public class ServerLoadCliTests
{
    [Test]
    public async Task TheLoadGeneratorReportsEachConcurrencyAndModeAgainstARunningServer()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        await using LookaheadServer server = await LookaheadServer.StartAsync(model, new ServerOptions
        {
            Port = 0, ApiKey = "k", MaxConcurrency = 2, Context = new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 },
        });
        string directory = Path.Combine(Path.GetTempPath(), "lookahead-server-load-" + Guid.NewGuid().ToString("N"));
        try
        {
            // The CLI runs while this process serves: the test thread must not block the server's threads.
            CliRunner.Result result = await Task.Run(() => CliRunner.Run(["bench", "--server", server.Address.ToString(), "--api-key", "k",
                "--concurrency", "2,1", "--requests", "5", "--max-tokens", "12", "--out", directory]));
            Assert.That(result.ExitCode, Is.Zero, result.Stderr);
            Assert.That(result.Stdout, Does.Contain("output tokens/s").And.Contain("ITL ms p50"));
            using JsonDocument report = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "report.json")));
            JsonElement[] rows = report.RootElement.GetProperty("server_load").EnumerateArray().ToArray();
            Assert.That(rows.Select(r => (r.GetProperty("concurrency").GetInt32(), r.GetProperty("mode").GetString())),
                Is.EqualTo(new[] { (1, "greedy"), (1, "lookahead"), (2, "greedy"), (2, "lookahead") }));
            foreach (JsonElement row in rows)
            {
                Assert.That(row.GetProperty("requests").GetInt32(), Is.EqualTo(5));
                Assert.That(row.GetProperty("output_tokens_per_second").GetDouble(), Is.Positive);
                Assert.That(row.GetProperty("ttft_ms_p50").GetDouble(), Is.Positive.And.LessThanOrEqualTo(row.GetProperty("ttft_ms_p99").GetDouble()));
                Assert.That(row.GetProperty("tokens_per_chunk").GetDouble(), Is.GreaterThanOrEqualTo(1));
            }
            Assert.That(File.ReadAllText(Path.Combine(directory, "report.md")), Does.Contain("| 2 | lookahead |"));
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void BadServerArgumentsAreUsageErrorsAndAnAbsentServerIsOneLine()
    {
        CliRunner.Result scheme = CliRunner.Run(["bench", "--server", "ftp://example"]);
        Assert.That(scheme.ExitCode, Is.EqualTo(2));
        Assert.That(scheme.Stderr, Does.Contain("--server must be an http(s) URL"));
        CliRunner.Result local = CliRunner.Run(["bench", "--server", "http://127.0.0.1:1", "--threads", "2"]);
        Assert.That(local.ExitCode, Is.EqualTo(2));
        Assert.That(local.Stderr, Does.Contain("--threads does not apply to --server"));

        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();  // nothing listens there now
        CliRunner.Result absent = CliRunner.Run(["bench", "--server", $"http://127.0.0.1:{port}", "--requests", "1"]);
        Assert.That(absent.ExitCode, Is.EqualTo(1));
        Assert.That(absent.Stderr, Does.StartWith("error: cannot reach the server"));
    }
}
