using System.Buffers.Binary;
using System.Text.Json;
using System.Text;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>Bad files and options through the CLI: exit 1 (runtime) or 2 (usage) with one clear line, before
/// any work where the problem is visible up front.</summary>
public class HardenedCliTests
{
    private static string Temp(string name) => Path.Combine(Path.GetTempPath(), $"lookahead-cli-{Guid.NewGuid():N}-{name}");

    private static void ExpectError(CliRunner.Result result, int exitCode, string fragment)
    {
        Assert.That(result.ExitCode, Is.EqualTo(exitCode), result.Stderr);
        Assert.That(result.Stderr, Does.Contain(fragment));
        Assert.That(result.Stderr, Does.Not.Contain("internal error"));
        Assert.That(result.Stderr, Does.Not.Contain("   at "), "no stack trace without --verbose");
    }

    [Test]
    public void DeepTrieFileIsRefusedOnLoad()
    {
        // 70,000 nodes in one chain under BOS with a valid checksum: it used to load and crash the first request.
        const int count = 70_000;
        var bytes = new byte[24 + count * 12 + 8];
        "LKTRIE\r\n"u8.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), count);
        for (int i = 0; i < count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(24 + 12 * i), i == 0 ? 1 : 100 + i % 200);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(28 + 12 * i), i - 1);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(32 + 12 * i), 1);
        }
        ulong hash = 14695981039346656037UL;
        foreach (byte b in bytes.AsSpan(0, bytes.Length - 8)) hash = (hash ^ b) * 1099511628211UL;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8), hash);
        string path = Temp("deep.trie");
        File.WriteAllBytes(path, bytes);
        try
        {
            ExpectError(CliRunner.Run(["generate", "--prompt", "Once", "--trie", path, "--max-tokens", "4"]), 1,
                "longer than this trie's window of 13");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void DevicesAsInputFailAtOnce()
    {
        if (!File.Exists("/dev/zero")) Assert.Ignore("no /dev/zero on this system");
        ExpectError(CliRunner.Run(["generate", "--prompt", "Once", "--trie", "/dev/zero"]), 1, "is not a Lookahead trie file");
        ExpectError(CliRunner.Run(["generate", "--prompt-file", "/dev/zero"]), 1, "holds more than the 67,108,864 bytes");
        ExpectError(CliRunner.Run(["bench", "--prompts", "/dev/zero"]), 1, "zero line 1 is longer than");
    }

    [Test]
    public void OversizedPromptFailsBeforeEncoding()
    {
        string path = Temp("prompt.txt");
        File.WriteAllText(path, string.Concat(Enumerable.Repeat("Once upon a time there was a bird. ", 600_000)));  // 21 MB
        try
        {
            ExpectError(CliRunner.Run(["generate", "--prompt-file", path]), 1, "cannot fit the context of 512 tokens");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void InvalidUtf8InPromptFilesNamesTheFileAndLine()
    {
        string prompts = Temp("prompts.jsonl");
        try
        {
            File.WriteAllBytes(prompts, [.. "{\"prompt\":\"Once\"}\n{\"prompt\":\""u8, 0xFF, 0xFE, .. "\"}\n"u8]);
            ExpectError(CliRunner.Run(["bench", "--prompts", prompts, "--max-tokens", "4"]), 1, "line 2 is not valid UTF-8 text (byte 11");
            File.WriteAllText(prompts, "{\"prompt\":\"Once\"}\n{\"prompt\":\"\\udfff\"}\n");
            ExpectError(CliRunner.Run(["bench", "--prompts", prompts, "--max-tokens", "4"]), 1, "line 2 holds a string that is not valid Unicode text");
            File.WriteAllBytes(prompts, [.. "Once "u8, 0xC0, 0xAF]);
            ExpectError(CliRunner.Run(["generate", "--prompt-file", prompts]), 1, "is not valid UTF-8 text (byte 5");
        }
        finally
        {
            File.Delete(prompts);
        }
    }

    [Test]
    public void NonFiniteWeightsFailWithoutOutput()
    {
        using RandomModel fixture = RandomModel.Create(new RandomModelSpec("cli-nan", Heads: 4, KvHeads: 2));
        string path = Path.Combine(fixture.Folder, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(path);
        // The first tensor laid out is the embedding (F32): make its first value NaN.
        int dataStart = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        BitConverter.GetBytes(float.NaN).CopyTo(bytes, dataStart);
        File.WriteAllBytes(path, bytes);
        CliRunner.Result result = CliRunner.Run(["generate", "--model", fixture.Folder, "--prompt-ids", "1 2 3", "--json"]);
        ExpectError(result, 1, "tensor 'model.embed_tokens.weight' in model.safetensors: token_embedding holds NaN at element 0");
        Assert.That(result.Stdout, Is.Empty);
    }

    [Test]
    public void BenchOptionsAreCheckedBeforeAnyWork()
    {
        string file = Temp("not-a-folder");
        File.WriteAllText(file, "x");
        try
        {
            foreach ((string[] args, int exitCode, string message) in new (string[], int, string)[]
                     {
                         (["--forward-cost-context", "100000"], 2, "--forward-cost-context 100000 leaves no room"),
                         (["--out", file], 1, "is a file, not a folder"),
                         (["--out", "/nonexistent/folder/report"], 1, "folder '/nonexistent/folder' does not exist"),
                         (["--modes", ""], 2, "--modes needs at least one"),
                         (["--modes", ","], 2, "--modes needs at least one"),
                         (["--decoding-length", "auto,0"], 2, "--decoding-length must be auto or an integer"),
                         (["--prompts", "/nonexistent.jsonl"], 1, "prompts file not found"),
                     })
            {
                CliRunner.Result result = CliRunner.Run(["bench", "--max-tokens", "4", .. args]);
                ExpectError(result, exitCode, message);
                Assert.That(result.Stderr, Does.Not.Contain("[#"), "nothing ran before the error");
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Test]
    public void TriePathIsCheckedBeforeGenerating()
    {
        string folder = Temp("folder");
        Directory.CreateDirectory(folder);
        try
        {
            ExpectError(CliRunner.Run(["generate", "--prompt", "Once", "--trie", folder]), 1, "is a directory, not a file");
            string missing = Path.Combine(folder, "missing", "x.trie");
            CliRunner.Result result = CliRunner.Run(["generate", "--prompt", "Once", "--trie", missing]);
            ExpectError(result, 1, "does not exist");
            Assert.That(result.Stdout, Is.Empty, "nothing was generated");
            Assert.That(Directory.GetFiles(folder, "*", SearchOption.AllDirectories), Is.Empty, "no .partial file is left");
            ExpectError(CliRunner.Run(["generate", "--prompt", "Once", "--warmup", Path.Combine(folder, "none.jsonl")]), 1, "warm-up prompts file not found");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void ErrorsAfterProgressStartOnAFreshLine()
    {
        string warmup = Temp("warmup.jsonl");
        File.WriteAllLines(warmup, ["""{"prompt":"Once upon a time"}""", """{"prompt_ids":[1,5000]}"""]);
        try
        {
            CliRunner.Result result = CliRunner.Run(["generate", "--prompt", "Once", "--warmup", warmup, "--max-tokens", "4"]);
            ExpectError(result, 1, "token id 5000 is outside the model's vocabulary");
            Assert.That(result.Stderr, Does.Contain("warm-up: 2/2"));
            Assert.That(result.Stderr.Split('\n').Any(line => line.StartsWith("error: ", StringComparison.Ordinal)), Is.True, result.Stderr);
        }
        finally
        {
            File.Delete(warmup);
        }
    }

    [Test]
    public void FlagNamesAsOptionValuesAreValues()
    {
        CliRunner.Result verbose = CliRunner.Run(["generate", "--prompt", "--verbose", "--max-tokens", "3", "--json"]);
        Assert.That(verbose.ExitCode, Is.Zero, verbose.Stderr);
        using (JsonDocument document = JsonDocument.Parse(verbose.Stdout))
            Assert.That(document.RootElement.GetProperty("prompt_tokens").GetInt32(), Is.GreaterThan(2), "the prompt is the text \"--verbose\"");
        CliRunner.Result help = CliRunner.Run(["generate", "--prompt", "--help", "--max-tokens", "3", "--json"]);
        Assert.That(help.ExitCode, Is.Zero, help.Stderr);
        Assert.That(help.Stdout, Does.StartWith("{"), "generated, not the help text");
        Assert.That(CliRunner.Run(["generate", "--max-tokens", "3", "--help"]).Stdout, Does.Contain("generate"));
        CliRunner.Result leading = CliRunner.Run(["--verbose", "generate", "--model", "/nonexistent/folder"]);
        Assert.That(leading.Stderr, Does.Contain("at Lookahead."), "--verbose before the command counts too");
    }

    [Test]
    public void NativeLibraryOverrideThatCannotLoadIsAnError()
    {
        string notALibrary = Temp("liblookahead.so");
        File.WriteAllText(notALibrary, "not a shared object");
        try
        {
            foreach (string path in new[] { "/nonexistent/liblookahead.so", notALibrary })
            {
                CliRunner.Result result = CliRunner.Run(["generate", "--prompt", "Once", "--max-tokens", "2"],
                    new Dictionary<string, string> { ["LOOKAHEAD_NATIVE_LIBRARY"] = path });
                ExpectError(result, 1, $"LOOKAHEAD_NATIVE_LIBRARY is set to '{path}', which could not be loaded");
            }
        }
        finally
        {
            File.Delete(notALibrary);
        }
    }

    [Test]
    public void UnicodeErrorsInModelFilesAreNotInternalErrors()
    {
        using RandomModel fixture = RandomModel.Create(new RandomModelSpec("cli-utf8", Heads: 4, KvHeads: 2));
        string config = Path.Combine(fixture.Folder, "config.json");
        string text = File.ReadAllText(config);
        File.WriteAllText(config, text.Replace("\"silu\"", "\"\\ud800\""), Encoding.UTF8);  // with a byte-order mark
        ExpectError(CliRunner.Run(["info", "--model", fixture.Folder]), 1, "config.json ('");
    }
}
