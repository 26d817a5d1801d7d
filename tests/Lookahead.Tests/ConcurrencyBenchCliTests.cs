using System.Globalization;
using System.Text.Json;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>`lookahead bench --concurrency` as a user runs it: its table, report.json's concurrency list, the chat's
/// prefix-cache counts, the plot, and its usage errors.</summary>
public class ConcurrencyBenchCliTests
{
    [TestCase("0")]
    [TestCase("0.8")]
    public void BenchServesConcurrentClientsAndReportsEachConcurrencyAndMode(string temperature)
    {
        string directory = Path.Combine(Path.GetTempPath(), "lookahead-cli-concurrency", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string prompts = Path.Combine(directory, "prompts.jsonl");
            File.WriteAllLines(prompts, File.ReadLines(TestPaths.BenchPrompts).Take(16));
            CliRunner.Result result = CliRunner.Run(["bench", "--prompts", prompts, "--concurrency", "3,1", "--max-tokens", "20",
                "--decoding-length", "auto,4", "--temperature", temperature, "--threads", "1", "--out", directory]);
            Assert.That(result.ExitCode, Is.Zero, result.Stderr);
            string plain = temperature == "0" ? "greedy" : "plain";
            Assert.That(result.Stdout, Does.Contain(plain).And.Contain("lookahead auto").And.Contain("chat turn"));

            using JsonDocument report = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "report.json")));
            JsonElement root = report.RootElement;
            Assert.That(root.GetProperty("temperature").GetDouble(), Is.EqualTo(double.Parse(temperature, CultureInfo.InvariantCulture)).Within(1e-6));
            int requests = root.GetProperty("requests").GetInt32();
            Assert.That(requests, Is.EqualTo(File.ReadLines(prompts).Count(l => l.Contains("\"test\""))));
            JsonElement[] levels = root.GetProperty("concurrency").EnumerateArray().ToArray();
            Assert.That(levels.Select(l => (l.GetProperty("concurrency").GetInt32(), l.GetProperty("mode").GetString())),
                Is.EqualTo(new[] { (1, plain), (1, "lookahead"), (1, "lookahead"), (3, plain), (3, "lookahead"), (3, "lookahead") }),
                "levels ascending, each in every mode");
            foreach (JsonElement level in levels)
            {
                Assert.That(level.GetProperty("requests").GetInt32(), Is.EqualTo(requests));
                Assert.That(level.GetProperty("tokens_per_second").GetDouble(), Is.Positive);
                double p50 = level.GetProperty("ttft_ms_p50").GetDouble(), p95 = level.GetProperty("ttft_ms_p95").GetDouble();
                Assert.That(p50, Is.Positive.And.LessThanOrEqualTo(p95), "time to first token: median at most p95");
                Assert.That(level.GetProperty("steps").GetInt64(), Is.Positive);
            }
            // Each turn of the chat holds the previous ones: from turn 2 on, their full blocks come from the prefix cache.
            JsonElement[] chat = root.GetProperty("chat").EnumerateArray().ToArray();
            Assert.That(chat, Has.Length.EqualTo(4));
            Assert.That(chat[0].GetProperty("reused_tokens").GetInt32(), Is.Zero);
            for (int turn = 1; turn < chat.Length; turn++)
            {
                int previousPrompt = chat[turn - 1].GetProperty("prompt_tokens").GetInt32();
                int reused = chat[turn].GetProperty("reused_tokens").GetInt32();
                Assert.That(reused, Is.GreaterThanOrEqualTo(previousPrompt / 16 * 16), $"turn {turn + 1} reuses at least the last prompt's full blocks");
                Assert.That(chat[turn].GetProperty("prefilled_tokens").GetInt32(),
                    Is.EqualTo(chat[turn].GetProperty("prompt_tokens").GetInt32() - reused - 1), "only the rest is prefilled (the last token is the first step's root)");
            }
            byte[] png = File.ReadAllBytes(Path.Combine(directory, "concurrency.png"));
            Assert.That(png.Take(4).ToArray(), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
            Assert.That(File.ReadAllText(Path.Combine(directory, "report.md")), Does.Contain("| 3 | lookahead 4 |"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [TestCase(new[] { "bench", "--concurrency", "0" }, "--concurrency must be a list of integers in 1..256")]
    [TestCase(new[] { "bench", "--concurrency", "2,x" }, "--concurrency must be a list of integers in 1..256")]
    [TestCase(new[] { "bench", "--requests", "4" }, "--requests counts the requests of --concurrency")]
    [TestCase(new[] { "bench", "--concurrency", "2", "--paired-bandwidth" }, "--paired-bandwidth belongs to the single-request benchmark")]
    [TestCase(new[] { "bench", "--concurrency", "2", "--temperature", "0,1" }, "--concurrency takes one --temperature")]
    [TestCase(new[] { "bench", "--concurrency", "2", "--requests", "100000" }, "--requests 100000: ")]
    public void BadConcurrencyArgumentsAreUsageErrors(string[] args, string message)
    {
        CliRunner.Result result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.Stderr);
        Assert.That(result.Stderr, Does.StartWith("error: ").And.Contain(message));
    }
}
