using System.Diagnostics;

namespace Lookahead.Tests;

/// <summary>
/// llama.cpp, an independent implementation, run on our GGUF export of stories260K: its greedy ids must
/// equal ours (this checks the export, the RoPE order convention and our forward pass end to end); and on
/// llama.cpp's own F16 rewrite of that file, which our GGUF reader loads.
/// </summary>
public class PeersTests
{
    [Test]
    public void LlamaCppGreedyIdsEqualOurs()
    {
        // The benchmark project is built by the same solution build, next to this one.
        string configuration = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)))!;
        string root = TestPaths.RepositoryRoot;
        string bench = Path.Combine(root, "bench", "Lookahead.Benchmarks", "bin", configuration, "net10.0", "Lookahead.Benchmarks.dll");
        // The solution build that built these tests builds the benchmarks too: missing means a broken build, not
        // an optional peer, so this fails rather than skips.
        if (!File.Exists(bench)) Assert.Fail($"the benchmark project is not built ({bench}); build Lookahead.sln");

        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in new[] { bench, "peers", "--tokens", "48", "--threads", "2" }) start.ArgumentList.Add(arg);
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        Assert.That(process.WaitForExit(180_000), Is.True, "peers did not finish within 180 s");
        Assert.That(process.ExitCode, Is.Zero, stderr.Result);
        Assert.That(stdout.Result, Does.Contain("greedy ids agree with llama.cpp: 48 of 48"));
        Assert.That(stdout.Result, Does.Contain("same ids: True"));
        // llama.cpp's own writer: its F16 rewrite of the export, read by our GGUF loader, decodes as llama.cpp decodes it.
        Assert.That(stdout.Result, Does.Contain("loaded by us: greedy ids agree with llama.cpp on it: 48 of 48"));
    }
}
