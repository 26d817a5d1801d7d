using System.Diagnostics;
using System.Text.Json;
using Lookahead.Decoding;
using Lookahead.Server;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>
/// The chat page at / in a real browser: headless Chromium, driven by playwright-core (tests/browser), types a
/// message and sees the reply stream in; the text equals the Generator's for that message, and the page shows
/// tokens/s and tokens per step. The screenshot is a test attachment (and artifacts/browser/chat-page.png).
/// .ci/run installs Chromium and playwright-core; without them the test is skipped, saying which is missing.
/// </summary>
[NonParallelizable]
public class ChatPageTests
{
    [Test]
    public async Task ThePageStreamsTheGeneratorsReplyAndShowsTheSpeed()
    {
        string browserTests = Path.Combine(TestPaths.RepositoryRoot, "tests", "browser");
        string chromium = Environment.GetEnvironmentVariable("CHROMIUM") ?? "/usr/bin/chromium";
        if (!File.Exists(chromium)) Assert.Ignore($"no Chromium at {chromium} (Debian package chromium; .ci/run installs it)");
        if (!Directory.Exists(Path.Combine(browserTests, "node_modules", "playwright-core")))
            Assert.Ignore($"playwright-core is not installed in {browserTests} (npm ci there; .ci/run does it)");

        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        await using LookaheadServer server = await LookaheadServer.StartAsync(model, new ServerOptions
        {
            Port = 0, MaxConcurrency = 2, Context = new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 },
        });
        const string message = "Once upon a time, there was a little dog";
        const int maxTokens = 40;

        string screenshot = Path.Combine(TestPaths.RepositoryRoot, "artifacts", "browser", "chat-page.png");
        Directory.CreateDirectory(Path.GetDirectoryName(screenshot)!);
        var start = new ProcessStartInfo("node") { WorkingDirectory = browserTests, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { "chat_page.mjs", server.Address.ToString(), screenshot, message, maxTokens.ToString() }) start.ArgumentList.Add(arg);
        using Process node = Process.Start(start)!;
        Task<string> output = node.StandardOutput.ReadToEndAsync(), errors = node.StandardError.ReadToEndAsync();
        Assert.That(node.WaitForExit(TimeSpan.FromMinutes(2)), Is.True, "the browser script ends");
        Assert.That(node.ExitCode, Is.Zero, await errors);
        JsonElement result = JsonDocument.Parse((await output).Trim().Split('\n')[^1]).RootElement;
        TestContext.AddTestAttachment(screenshot, "the chat page after the reply");

        string expected = TextOracle.Alone(model, message, new GenerationOptions { MaxTokens = maxTokens });
        Assert.That(result.GetProperty("text").GetString(), Is.EqualTo(expected), "the streamed reply in the page");
        Assert.That(result.GetProperty("stats").GetString(), Does.Match(@"tokens/s: [0-9.]+ \| tokens per step: [0-9.]+"));
        Assert.That(new FileInfo(screenshot).Length, Is.GreaterThan(1000), "a screenshot was taken");
    }
}
