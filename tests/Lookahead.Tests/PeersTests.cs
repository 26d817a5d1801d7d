using System.Diagnostics;

namespace Lookahead.Tests;

/// <summary>
/// llama.cpp, an independent implementation, run on our GGUF export of stories260K: its greedy ids must
/// equal ours (this checks the export, the RoPE order convention and our forward pass end to end); and on
/// llama.cpp's own F16 rewrite of that file, which our GGUF reader loads.
/// </summary>
public class PeersTests
{
    private static string RunPeers(params string[] args)
    {
        // The benchmark project is built by the same solution build, next to this one.
        string configuration = Path.GetFileName(Path.GetDirectoryName(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)))!;
        string bench = Path.Combine(TestPaths.RepositoryRoot, "bench", "Lookahead.Benchmarks", "bin", configuration, "net10.0", "Lookahead.Benchmarks.dll");
        if (!File.Exists(bench)) Assert.Fail($"the benchmark project is not built ({bench}); build Lookahead.sln");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args.Prepend("peers").Prepend(bench)) start.ArgumentList.Add(arg);
        using Process process = Process.Start(start)!;
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        Assert.That(process.WaitForExit(180_000), Is.True, "peers did not finish within 180 s");
        Assert.That(process.ExitCode, Is.Zero, stderr.Result);
        return stdout.Result;
    }

    // The stories15M shape (synthetic weights; its row lengths are multiples of 32): llama.cpp's own Q8_0
    // and Q4_K_M files of it (Q4_K_M: Q4_K and Q6_K where rows are whole super-blocks of 256, Q5_0 and Q8_0
    // for the 288-wide rows), loaded by our GGUF reader and run by our kernels, give llama.cpp's greedy ids
    // on each file, as its F32 and F16 files do.
    [Test]
    public void OnLlamaCppsQuantizedFilesOurGreedyIdsEqualLlamaCpps()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"lookahead-peers-s15-{Guid.NewGuid():N}");
        try
        {
            Model.SyntheticModel.Write(Model.SyntheticModel.Find("stories15M"), Model.TensorDtype.F32, folder, seed: 1);
            string stdout = RunPeers("--model", folder, "--tokens", "48", "--threads", "2", "--rounds", "1", "--prompt-ids", "1,2,3");
            Assert.That(stdout, Does.Contain("greedy ids agree with llama.cpp: 48 of 48"));
            Assert.That(stdout, Does.Match(@"llama.cpp's F16 file \(F32 3744, F16 15187968 parameters\): .* greedy ids agree 48 of 48"));
            Assert.That(stdout, Does.Match(@"llama.cpp's Q8_0 file \(F32 3744, Q8_0 15187968 parameters\): .*same ids: True.* greedy ids agree 48 of 48"));
            Assert.That(stdout, Does.Match(@"llama.cpp's Q4_K_M file \(F32 3744, Q8_0 \d+, Q5_0 \d+, Q4_K \d+, Q6_K \d+ parameters\): .*same ids: True.* greedy ids agree 48 of 48"));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void LlamaCppGreedyIdsEqualOurs()
    {
        string stdout = RunPeers("--tokens", "48", "--threads", "2");
        Assert.That(stdout, Does.Contain("greedy ids agree with llama.cpp: 48 of 48"));
        Assert.That(stdout, Does.Contain("same ids: True"));
        // llama.cpp's own writer: its F16 rewrite of the export, read by our GGUF loader, decodes as llama.cpp decodes it.
        Assert.That(stdout, Does.Match(@"llama.cpp's F16 file .* greedy ids agree 48 of 48"));
    }
}
