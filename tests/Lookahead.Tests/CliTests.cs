using System.Text.Json;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>The CLI as a user runs it: output formats, exit codes, one-line errors.</summary>
public class CliTests
{
    [Test]
    public void GenerateJsonHasEveryField()
    {
        CliRunner.Result result = CliRunner.Run(["generate", "--prompt", "Once upon a time", "--max-tokens", "32", "--json", "--backend", "cpu"]);
        Assert.That(result.ExitCode, Is.Zero, result.Stderr);
        using JsonDocument document = JsonDocument.Parse(result.Stdout);
        JsonElement root = document.RootElement;
        foreach (string field in new[] { "mode", "backend", "model", "prompt_tokens", "generated_tokens", "token_ids", "text", "steps", "seconds",
                     "tokens_per_second", "drafted_tokens", "accepted_tokens", "mean_tokens_per_step" })
            Assert.That(root.TryGetProperty(field, out _), Is.True, $"missing '{field}'");
        Assert.That(root.GetProperty("mode").GetString(), Is.EqualTo("lookahead"), "lookahead is the default mode");
        Assert.That(root.GetProperty("backend").GetString(), Is.EqualTo("cpu"));
        Assert.That(root.GetProperty("prompt_tokens").GetInt32(), Is.EqualTo(5));
        Assert.That(root.GetProperty("generated_tokens").GetInt32(), Is.EqualTo(32));
        Assert.That(root.GetProperty("token_ids").GetArrayLength(), Is.EqualTo(32));
        int steps = root.GetProperty("steps").GetInt32();
        Assert.That(steps, Is.InRange(1, 32));
        Assert.That(root.GetProperty("mean_tokens_per_step").GetDouble(), Is.EqualTo(32.0 / steps).Within(1e-9));
        Assert.That(root.GetProperty("accepted_tokens").GetInt64(), Is.EqualTo(32 - steps), "every step emits its accepted tokens plus one");
        Assert.That(root.GetProperty("text").GetString(), Does.StartWith(", there was a little girl named Lily"));
    }

    [Test]
    public void ProfileReportsEveryStageInTextAndJson()
    {
        CliRunner.Result json = CliRunner.Run(["generate", "--prompt", "Once upon a time", "--max-tokens", "20", "--json", "--profile"]);
        CliRunner.Result text = CliRunner.Run(["generate", "--prompt", "Once upon a time", "--max-tokens", "20", "--profile"]);
        Assert.That(json.ExitCode, Is.Zero, json.Stderr);
        Assert.That(text.ExitCode, Is.Zero, text.Stderr);
        using JsonDocument document = JsonDocument.Parse(json.Stdout);
        JsonElement[] stages = document.RootElement.GetProperty("stages").EnumerateArray().ToArray();
        Assert.That(stages.Select(s => s.GetProperty("name").GetString()), Is.EqualTo(new[]
        {
            "embed", "attention_inputs", "attention", "attention_output", "feed_forward", "feed_forward_down", "output",
            "verify", "compact",
        }));
        Assert.That(stages.Select(s => s.GetProperty("calls").GetInt64()), Is.All.Positive);
        string last = text.Stdout.TrimEnd('\n').Split('\n')[^1];
        Assert.That(last, Does.StartWith("[profile, ms (calls) | embed ").And.Contain("| verify "));
        Assert.That(CliRunner.TokenIds(json.Stdout), Is.EqualTo(CliRunner.TokenIds(
            CliRunner.Run(["generate", "--prompt", "Once upon a time", "--max-tokens", "20", "--json"]).Stdout)));
    }

    [Test]
    public void LookaheadAndGreedyPrintTheSameTokens()
    {
        CliRunner.Result lookahead = CliRunner.Run(["generate", "--prompt", "Once upon a time", "--max-tokens", "100", "--json", "--decoding-length", "8"]);
        CliRunner.Result greedy = CliRunner.Run(["generate", "--prompt", "Once upon a time", "--max-tokens", "100", "--json", "--mode", "greedy"]);
        Assert.That(lookahead.ExitCode, Is.Zero, lookahead.Stderr);
        Assert.That(greedy.ExitCode, Is.Zero, greedy.Stderr);
        Assert.That(CliRunner.TokenIds(lookahead.Stdout), Is.EqualTo(CliRunner.TokenIds(greedy.Stdout)));
    }

    [Test]
    public void StreamedTextEqualsJsonText()
    {
        CliRunner.Result json = CliRunner.Run(["generate", "--prompt", "Lily and Ben", "--max-tokens", "80", "--json"]);
        CliRunner.Result text = CliRunner.Run(["generate", "--prompt", "Lily and Ben", "--max-tokens", "80"]);
        Assert.That(json.ExitCode, Is.Zero, json.Stderr);
        Assert.That(text.ExitCode, Is.Zero, text.Stderr);
        string[] lines = text.Stdout.TrimEnd('\n').Split('\n');
        Assert.That(lines[^1], Does.StartWith("[lookahead | cpu |").And.Contain("tokens/step").And.Contain("tokens/s"));
        using JsonDocument document = JsonDocument.Parse(json.Stdout);
        Assert.That(string.Join("\n", lines[..^1]), Is.EqualTo(document.RootElement.GetProperty("text").GetString()));
    }

    [Test]
    public void PromptIdsAndPromptFileWork()
    {
        string file = Path.GetTempFileName();
        File.WriteAllText(file, "Once upon a time");
        try
        {
            CliRunner.Result fromFile = CliRunner.Run(["generate", "--prompt-file", file, "--max-tokens", "16", "--json"]);
            CliRunner.Result fromIds = CliRunner.Run(["generate", "--prompt-ids", "1,403,407,261,378", "--max-tokens", "16", "--json"]);
            Assert.That(fromFile.ExitCode, Is.Zero, fromFile.Stderr);
            Assert.That(fromIds.ExitCode, Is.Zero, fromIds.Stderr);
            Assert.That(CliRunner.TokenIds(fromFile.Stdout), Is.EqualTo(CliRunner.TokenIds(fromIds.Stdout)));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [TestCase(new[] { "generate", "--mode", "beam" }, "--mode must be one of lookahead, plain, greedy")]
    [TestCase(new[] { "generate", "--max-tokens", "many" }, "--max-tokens must be an integer")]
    [TestCase(new[] { "generate", "--bogus" }, "unknown option --bogus")]
    [TestCase(new[] { "generate", "--cpu-kernel", "sse2" }, "--cpu-kernel must be one of auto, scalar, avx2, avx512, avx512-bf16")]
    [TestCase(new[] { "bench", "--cuda-graphs", "maybe" }, "--cuda-graphs must be one of on, off")]
    [TestCase(new[] { "generate", "--prompt", "a", "--prompt-ids", "1" }, "only one of")]
    [TestCase(new[] { "generate", "--model" }, "--model needs a value")]
    [TestCase(new[] { "launch" }, "unknown command 'launch'")]
    public void UsageErrorsExitWithTwo(string[] args, string message)
    {
        CliRunner.Result result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(2));
        Assert.That(result.Stderr, Does.Contain(message));
        Assert.That(result.Stdout, Is.Empty);
    }

    [TestCase(new[] { "generate", "--model", "/nonexistent/folder" }, "model folder not found")]
    [TestCase(new[] { "info", "--model", "/nonexistent/folder" }, "model folder not found")]
    [TestCase(new[] { "generate", "--prompt-ids", "1,9999" }, "token id 9999 at position 1 is out of range")]
    [TestCase(new[] { "generate", "--context", "8", "--prompt", "Once upon a time there was a big dog" }, "the context holds only 8")]
    [TestCase(new[] { "generate", "--context", "100000" }, "exceeds the model's max_position_embeddings")]
    [TestCase(new[] { "generate", "--prompt-file", "/nonexistent/prompt.txt" }, "prompt file not found")]
    [TestCase(new[] { "generate", "--backend", "cuda" }, "CUDA")]
    public void RuntimeErrorsExitWithOneAndOneLine(string[] args, string message)
    {
        if (args.Contains("cuda") && Lookahead.LanguageModel.IsBackendAvailable(Backend.Cuda)) Assert.Ignore("a CUDA device is present");
        CliRunner.Result result = CliRunner.Run(args);
        Assert.That(result.ExitCode, Is.EqualTo(1), result.Stderr);
        Assert.That(result.Stderr, Does.Contain(message));
        Assert.That(result.Stderr.TrimEnd('\n').Split('\n'), Has.Length.EqualTo(1), "one line, no stack trace");
        Assert.That(result.Stdout, Is.Empty, "no partial output");
    }

    [Test]
    public void WarmupFillsTheTrieAndTheTrieFileSurvivesRestarts()
    {
        string directory = Path.Combine(Path.GetTempPath(), "lookahead-cli-trie", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string warmup = Path.Combine(directory, "warmup.jsonl"), trie = Path.Combine(directory, "stories.trie");
            File.WriteAllLines(warmup, File.ReadLines(TestPaths.BenchPrompts).Take(6));
            string[] common = ["generate", "--prompt", "Once upon a time", "--max-tokens", "64", "--json", "--decoding-length", "8"];
            CliRunner.Result cold = CliRunner.Run(common);
            CliRunner.Result warmed = CliRunner.Run([.. common, "--warmup", warmup, "--trie", trie]);
            Assert.That(warmed.ExitCode, Is.Zero, warmed.Stderr);
            Assert.That(warmed.Stderr, Does.Contain("warm-up: 6/6"));
            Assert.That(File.Exists(trie), Is.True, "the trie is saved at exit");
            CliRunner.Result reloaded = CliRunner.Run([.. common, "--trie", trie]);
            Assert.That(reloaded.ExitCode, Is.Zero, reloaded.Stderr);
            Assert.That(CliRunner.TokenIds(warmed.Stdout), Is.EqualTo(CliRunner.TokenIds(cold.Stdout)));
            Assert.That(CliRunner.TokenIds(reloaded.Stdout), Is.EqualTo(CliRunner.TokenIds(cold.Stdout)));
            using (JsonDocument before = JsonDocument.Parse(cold.Stdout), after = JsonDocument.Parse(reloaded.Stdout))
                Assert.That(after.RootElement.GetProperty("accepted_tokens").GetInt64(),
                    Is.GreaterThan(before.RootElement.GetProperty("accepted_tokens").GetInt64()), "the saved trie carries the warm-up's n-grams");

            byte[] bytes = File.ReadAllBytes(trie);
            bytes[^20] ^= 0xFF;
            File.WriteAllBytes(trie, bytes);
            CliRunner.Result corrupt = CliRunner.Run([.. common, "--trie", trie]);
            Assert.That(corrupt.ExitCode, Is.EqualTo(1));
            Assert.That(corrupt.Stderr, Does.Contain("corrupt"));
            Assert.That(File.ReadAllBytes(trie), Is.EqualTo(bytes), "a trie file that failed to load is not overwritten");
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void BenchComparesModesAndWritesReports()
    {
        string directory = Path.Combine(Path.GetTempPath(), "lookahead-cli-bench", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string prompts = Path.Combine(directory, "prompts.jsonl");
            File.WriteAllLines(prompts, File.ReadLines(TestPaths.BenchPrompts).Take(8));
            CliRunner.Result result = CliRunner.Run(["bench", "--prompts", prompts, "--max-tokens", "24", "--decoding-length", "1,4", "--out", directory]);
            Assert.That(result.ExitCode, Is.Zero, result.Stderr);
            // stderr is a pipe here: progress comes as a few whole lines ending at the final state, not one
            // line of carriage-return rewrites.
            Assert.That(result.Stderr, Does.Not.Contain("\r"));
            Assert.That(result.Stderr.Split('\n'), Has.All.Length.LessThan(200));
            Assert.That(result.Stderr, Does.Match(@"\[#{30}\] (\d+)/\1 "), "the last progress state is printed");
            Assert.That(result.Stdout, Does.Contain("greedy").And.Contain("lookahead").And.Contain("forward cost"));
            using JsonDocument report = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "report.json")));
            JsonElement root = report.RootElement;
            Assert.That(root.GetProperty("backend").GetString(), Is.EqualTo("cpu"));
            Assert.That(root.GetProperty("memory_read_gbps").GetDouble(), Is.Positive);
            Assert.That(root.GetProperty("weight_bytes_per_token").GetInt64(), Is.EqualTo(260_032L * 4), "stories260K: F32, tied head");
            JsonElement[] runs = root.GetProperty("runs").EnumerateArray().ToArray();
            Assert.That(runs.Select(r => r.GetProperty("mode").GetString()), Is.EqualTo(new[] { "greedy", "lookahead", "lookahead" }));
            foreach (JsonElement run in runs)
                foreach (string field in new[] { "tokens_per_second", "generated_tokens", "seconds", "mean_tokens_per_step", "speedup", "categories", "step_breakdown_seconds", "weight_gbps" })
                    Assert.That(run.TryGetProperty(field, out _), Is.True, $"run lacks '{field}'");
            Assert.That(root.GetProperty("forward_cost").EnumerateArray().Select(c => c.GetProperty("k").GetInt32()), Is.EqualTo(new[] { 1, 2, 4, 8, 16, 32, 64 }));
            Assert.That(File.ReadAllText(Path.Combine(directory, "report.md")), Does.Contain("| lookahead | 4 |"));

            // Without greedy in the table there is no speedup to show: a dash, not a bare "x".
            CliRunner.Result lookaheadOnly = CliRunner.Run(["bench", "--prompts", prompts, "--max-tokens", "8", "--modes", "lookahead", "--decoding-length", "2"]);
            Assert.That(lookaheadOnly.ExitCode, Is.Zero, lookaheadOnly.Stderr);
            string allRow = lookaheadOnly.Stdout.Split('\n').Single(l => l.Contains(" all "));
            Assert.That(allRow.TrimEnd(), Does.EndWith(" -"));
            foreach (string plot in new[] { "speed.png", "tokens_per_step.png", "forward_cost.png" })
            {
                byte[] png = File.ReadAllBytes(Path.Combine(directory, plot));
                Assert.That(png.Take(4).ToArray(), Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }), plot);
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void BenchPairsGreedyWithABandwidthProbePerPromptAndRefusesMeasurementsTheBackendCannotGive()
    {
        string directory = Path.Combine(Path.GetTempPath(), "lookahead-cli-bench", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        try
        {
            string prompts = Path.Combine(directory, "prompts.jsonl");
            File.WriteAllLines(prompts, File.ReadLines(TestPaths.BenchPrompts).Where(l => !l.Contains("\"warmup\"")).Take(3));
            CliRunner.Result result = CliRunner.Run(["bench", "--prompts", prompts, "--max-tokens", "16", "--modes", "greedy",
                "--paired-bandwidth", "--out", directory]);
            Assert.That(result.ExitCode, Is.Zero, result.Stderr);
            Assert.That(result.Stdout, Does.Contain("probe right before each prompt: median").And.Contain("3 prompts"));
            using JsonDocument report = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "report.json")));
            JsonElement paired = report.RootElement.GetProperty("paired_bandwidth");
            Assert.That(paired.GetProperty("prompts").GetInt32(), Is.EqualTo(3));
            double min = paired.GetProperty("min_fraction").GetDouble(), median = paired.GetProperty("median_fraction").GetDouble();
            Assert.That(min, Is.Positive);
            Assert.That(median, Is.InRange(min, paired.GetProperty("max_fraction").GetDouble()));

            CliRunner.Result lookaheadOnly = CliRunner.Run(["bench", "--prompts", prompts, "--modes", "lookahead", "--paired-bandwidth"]);
            Assert.That(lookaheadOnly.ExitCode, Is.EqualTo(2));
            Assert.That(lookaheadOnly.Stderr, Does.Contain("include greedy in --modes"));
            // Device time is the GPU's: on the CPU backend it is refused rather than reported as zero.
            CliRunner.Result deviceTime = CliRunner.Run(["bench", "--prompts", prompts, "--backend", "cpu", "--device-time"]);
            Assert.That(deviceTime.ExitCode, Is.EqualTo(2));
            Assert.That(deviceTime.Stderr, Does.Contain("needs the CUDA backend"));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Test]
    public void BenchTakesPromptIdsForFoldersWithoutATokenizerAndNamesBadLines()
    {
        using RandomModel fixture = RandomModel.Create(new RandomModelSpec("bench-ids", Vocab: 60, Seed: 21));
        string prompts = Path.Combine(fixture.Folder, "prompts.jsonl");
        string[] Bench(params string[] lines)
        {
            File.WriteAllLines(prompts, lines);
            return ["bench", "--model", fixture.Folder, "--prompts", prompts, "--max-tokens", "12", "--decoding-length", "auto,4"];
        }

        CliRunner.Result ids = CliRunner.Run(Bench("""{"prompt_ids":[1,5,9,5,9],"split":"warmup"}""", """{"prompt_ids":[1,5,9],"category":"c"}"""));
        Assert.That(ids.ExitCode, Is.Zero, ids.Stderr);
        Assert.That(ids.Stdout, Does.Contain("lookahead"));

        (string Line, string Message)[] bad =
        [
            ("""{"prompt":"Once upon a time"}""", "give \"prompt_ids\" instead"),
            ("""{"prompt_ids":[1,60]}""", "token id 60 is outside the model's vocabulary (size 60)"),
            ("""{"prompt_ids":[]}""", "must be a non-empty array"),
            ("""{"prompt_ids":[1,-2]}""", "holds -2, not a token id"),
            ("""{"id":"no prompt"}""", "expected a \"prompt\" string or a \"prompt_ids\" array"),
        ];
        foreach ((string line, string message) in bad)
        {
            CliRunner.Result result = CliRunner.Run(Bench("""{"prompt_ids":[1,2]}""", line));
            Assert.That(result.ExitCode, Is.EqualTo(1), line);
            Assert.That(result.Stderr, Does.Contain("prompts.jsonl line 2").And.Contain(message), line);
        }
    }

    [Test]
    public void SampledLookaheadAndPlainPrintTheSameTokensAndTheSeed()
    {
        string[] common = ["generate", "--prompt", "Once upon a time", "--max-tokens", "60", "--json", "--temperature", "0.9", "--top-p", "0.95", "--seed", "12345"];
        CliRunner.Result lookahead = CliRunner.Run(common);
        CliRunner.Result plain = CliRunner.Run([.. common, "--mode", "plain"]);
        Assert.That(lookahead.ExitCode, Is.Zero, lookahead.Stderr);
        Assert.That(plain.ExitCode, Is.Zero, plain.Stderr);
        Assert.That(CliRunner.TokenIds(lookahead.Stdout), Is.EqualTo(CliRunner.TokenIds(plain.Stdout)));
        using JsonDocument document = JsonDocument.Parse(plain.Stdout);
        Assert.That(document.RootElement.GetProperty("mode").GetString(), Is.EqualTo("plain"));
        JsonElement sampling = document.RootElement.GetProperty("sampling");
        Assert.That(sampling.GetProperty("seed").GetUInt64(), Is.EqualTo(12345));
        Assert.That(sampling.GetProperty("temperature").GetDouble(), Is.EqualTo(0.9).Within(1e-6));
        CliRunner.Result greedy = CliRunner.Run(["generate", "--prompt", "Once upon a time", "--max-tokens", "60", "--json"]);
        Assert.That(CliRunner.TokenIds(plain.Stdout), Is.Not.EqualTo(CliRunner.TokenIds(greedy.Stdout)), "temperature 0.9 samples");
        Assert.That(JsonDocument.Parse(greedy.Stdout).RootElement.TryGetProperty("sampling", out _), Is.False);
    }

    [TestCase("--temperature", "-0.5")]
    [TestCase("--temperature", "NaN")]
    [TestCase("--top-p", "0")]
    [TestCase("--top-k", "-1")]
    [TestCase("--min-p", "1.5")]
    [TestCase("--repetition-penalty", "0")]
    [TestCase("--presence-penalty", "inf")]
    [TestCase("--seed", "-3")]
    public void BadSamplingSettingsAreUsageErrorsNamingTheOption(string option, string value)
    {
        CliRunner.Result result = CliRunner.Run(["generate", "--prompt", "Once", option, value]);
        Assert.That(result.ExitCode, Is.EqualTo(2), result.Stderr);
        Assert.That(result.Stderr, Does.StartWith($"error: {option} must be"));
    }

    [Test]
    public void BenchSamplesAtEachTemperatureAndChecksEveryModeAgainstPlainSampling()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"lookahead-bench-t-{Guid.NewGuid():N}");
        try
        {
            CliRunner.Result result = CliRunner.Run(["bench", "--temperature", "0,0.8", "--decoding-length", "8", "--max-tokens", "24",
                "--out", folder]);
            Assert.That(result.ExitCode, Is.Zero, result.Stderr);
            Assert.That(result.Stdout, Does.Contain("== temperature 0 ==").And.Contain("== temperature 0.8 ==").And.Contain("plain"));
            foreach (string t in new[] { "0", "0.8" })
            {
                using JsonDocument report = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, $"temperature-{t}", "report.json")));
                Assert.That(report.RootElement.GetProperty("temperature").GetDouble(), Is.EqualTo(double.Parse(t, System.Globalization.CultureInfo.InvariantCulture)).Within(1e-6));
            }
            CliRunner.Result bad = CliRunner.Run(["bench", "--temperature", "0,-1"]);
            Assert.That(bad.ExitCode, Is.EqualTo(2));
            Assert.That(bad.Stderr, Does.StartWith("error: --temperature must be numbers >= 0"));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void VerboseShowsTheStackTrace()
    {
        CliRunner.Result result = CliRunner.Run(["generate", "--model", "/nonexistent/folder", "--verbose"]);
        Assert.That(result.ExitCode, Is.EqualTo(1));
        Assert.That(result.Stderr, Does.Contain("at Lookahead."));
    }

    [Test]
    public void InfoDescribesTheBundledModel()
    {
        CliRunner.Result result = CliRunner.Run(["info"]);
        Assert.That(result.ExitCode, Is.Zero, result.Stderr);
        Assert.That(result.Stdout, Does.Contain("LlamaForCausalLM").And.Contain("260,032").And.Contain("F32")
            .And.Contain("SentencePiece").And.Contain("8 query, 4 key/value"));
    }

    [Test]
    public void ModelWithoutTokenizerUsesTokenIds()
    {
        using var fixture = Fixtures.RandomModel.Create(new Fixtures.RandomModelSpec("no-tokenizer"));
        CliRunner.Result text = CliRunner.Run(["generate", "--model", fixture.Folder, "--prompt", "hello"]);
        Assert.That(text.ExitCode, Is.EqualTo(1));
        Assert.That(text.Stderr, Does.Contain("--prompt-ids"));
        CliRunner.Result ids = CliRunner.Run(["generate", "--model", fixture.Folder, "--prompt-ids", "1 2 3", "--max-tokens", "5", "--json"]);
        Assert.That(ids.ExitCode, Is.Zero, ids.Stderr);
        Assert.That(CliRunner.TokenIds(ids.Stdout), Has.Length.EqualTo(5));
        using JsonDocument document = JsonDocument.Parse(ids.Stdout);
        Assert.That(document.RootElement.GetProperty("text").ValueKind, Is.EqualTo(JsonValueKind.Null));
        CliRunner.Result streamed = CliRunner.Run(["generate", "--model", fixture.Folder, "--prompt-ids", "1 2 3", "--max-tokens", "5"]);
        Assert.That(streamed.Stdout.Split('\n')[0].Trim(), Is.EqualTo(string.Join(" ", CliRunner.TokenIds(ids.Stdout))));
    }
}
