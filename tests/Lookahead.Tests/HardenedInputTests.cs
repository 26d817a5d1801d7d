using System.Buffers.Binary;
using System.Text.Json.Nodes;
using System.Text;
using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Model;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>
/// Inputs an attacker or a careless user supplies, through the library: each is one clear
/// LookaheadException naming the file (never a crash, runaway memory or silent garbage).
/// </summary>
public class HardenedInputTests
{
    // ---- trie files (written here byte by byte from the documented format: an independent writer) ----

    private static byte[] TrieFile(IReadOnlyList<(int Token, int Parent, int Frequency)> records, uint reserved = 0, ulong? count = null)
    {
        var bytes = new byte[24 + records.Count * 12 + 8];
        "LKTRIE\r\n"u8.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), reserved);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), count ?? (ulong)records.Count);
        for (int i = 0; i < records.Count; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(24 + 12 * i), records[i].Token);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(28 + 12 * i), records[i].Parent);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(32 + 12 * i), records[i].Frequency);
        }
        ulong hash = 14695981039346656037UL;
        foreach (byte b in bytes.AsSpan(0, bytes.Length - 8)) hash = (hash ^ b) * 1099511628211UL;
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(bytes.Length - 8), hash);
        return bytes;
    }

    // A chain token 1 -> 2 -> 3 -> ... of the given length under one root.
    private static List<(int, int, int)> Chain(int length, int frequency) =>
        Enumerable.Range(0, length).Select(i => (1 + i % 50, i - 1, frequency)).ToList();

    private static string WriteTemp(byte[] bytes)
    {
        string path = Path.Combine(Path.GetTempPath(), $"lookahead-test-{Guid.NewGuid():N}.trie");
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static void ExpectLoadError(TokenTrie trie, byte[] file, string fragment)
    {
        string path = WriteTemp(file);
        try
        {
            var error = Assert.Throws<LookaheadException>(() => trie.Load(path, vocabSize: 100));
            Assert.That(error!.Message, Does.Contain(fragment));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void TrieFileDeeperThanTheWindowIsRefused()
    {
        using var trie = new TokenTrie();
        ExpectLoadError(trie, TrieFile(Chain(70_000, 3)), "node 13 ends an n-gram of 14 tokens, longer than this trie's window of 13");
        Assert.That(trie.NodeCount, Is.Zero, "a refused file leaves the trie as it was");
    }

    [Test]
    public void TrieLimitsAndReservedFieldAreChecked()
    {
        using var small = new TokenTrie(new TrieOptions { MaxNodes = 16, MaxNodesPerRoot = 4, WindowLength = 13 });
        ExpectLoadError(small, TrieFile(Chain(3, 1), reserved: 7), "reserved header field is 7, not 0");
        ExpectLoadError(small, TrieFile(Chain(17, 1)), "holds 17 nodes, more than this trie's limit of 16");
        // A header claiming a trillion nodes is refused before anything of that size is read or allocated.
        ExpectLoadError(small, TrieFile(Chain(2, 1), count: 1UL << 40), "holds 1099511627776 nodes");
        using var roomy = new TokenTrie(new TrieOptions { MaxNodes = 1 << 20 });
        ExpectLoadError(roomy, TrieFile(Chain(2, 1), count: 1000), "truncated or has trailing bytes");
    }

    private static int TreeSize(TokenTrie trie, int rootToken)
    {
        int root = trie.Find([rootToken]), count = 0;
        var stack = new Stack<int>();
        if (root >= 0) stack.Push(root);
        while (stack.Count > 0)
        {
            int node = stack.Pop();
            count++;
            for (int child = trie.FirstChild(node); child >= 0; child = trie.NextSibling(child)) stack.Push(child);
        }
        return count;
    }

    [Test]
    public void ARootAboveItsLimitInAFileIsSqueezedToFit()
    {
        // Saved by a trie with a larger per-root limit: one root with 6 nodes, counts 1 (dropped) and 2 (kept).
        using var trie = new TokenTrie(new TrieOptions { MaxNodesPerRoot = 4, WindowLength = 13 });
        string path = WriteTemp(TrieFile([(1, -1, 4), (2, 0, 2), (3, 1, 1), (4, 0, 1), (5, 0, 2), (6, 4, 1)]));
        try
        {
            trie.Load(path, vocabSize: 100);
            Assert.That(TreeSize(trie, 1), Is.LessThanOrEqualTo(4));
            Assert.That(trie.Find([1, 2]), Is.GreaterThanOrEqualTo(0), "the n-grams that still count stay");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void ClosingWindowsAreHeldToTheRootLimitSoASavedTrieLoadsBack()
    {
        // The last token extends root 1's window as it closes: that growth must be checked too.
        using var trie = new TokenTrie(new TrieOptions { MaxNodesPerRoot = 4, WindowLength = 3 });
        trie.AppendOutput([1, 2, 3, 1, 5, 6]);
        Assert.That(TreeSize(trie, 1), Is.LessThanOrEqualTo(4));
        string path = Path.Combine(Path.GetTempPath(), $"lookahead-test-{Guid.NewGuid():N}.trie");
        try
        {
            trie.Save(path);
            using var loaded = new TokenTrie(new TrieOptions { MaxNodesPerRoot = 4, WindowLength = 3 });
            loaded.Load(path, vocabSize: 10);
            // Saved are the n-grams with output counts (the trie may also hold count-less ones).
            Assert.That(loaded.NodeCount, Is.InRange(1, trie.NodeCount));
            Assert.That(loaded.Frequency(loaded.Find([5, 6]), FrequencySource.Output),
                Is.EqualTo(trie.Frequency(trie.Find([5, 6]), FrequencySource.Output)));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Test]
    public void TrieFromADeviceOrADirectoryFailsAtOnce()
    {
        using var trie = new TokenTrie();
        if (File.Exists("/dev/zero"))
            Assert.That(Assert.Throws<LookaheadException>(() => trie.Load("/dev/zero", 100))!.Message, Does.Contain("is not a Lookahead trie file"));
        Assert.That(Assert.Throws<LookaheadException>(() => trie.Load(Path.GetTempPath(), 100))!.Message, Does.Contain("is a directory"));
    }

    [Test]
    public void SqueezingAChainOfSeventyThousandNodesNeedsNoDeepStack()
    {
        // A window as long as the chain: the file is valid for this trie, and every walk over it must be
        // iterative (the recursive squeeze overflowed the stack at this depth).
        var options = new TrieOptions { WindowLength = 70_001, MaxNodes = 1 << 20, MaxNodesPerRoot = 1 << 20 };
        string path = WriteTemp(TrieFile(Chain(70_000, 2)));
        try
        {
            using var trie = new TokenTrie(options);
            trie.Load(path, vocabSize: 100);
            Assert.That(trie.NodeCount, Is.EqualTo(70_000));
            trie.Squeeze();  // counts 2 -> 1: every node lives, the walk goes 70,000 deep
            Assert.That(trie.NodeCount, Is.EqualTo(70_000));
            trie.Squeeze();  // 1 -> 0: the whole chain is removed
            Assert.That(trie.NodeCount, Is.Zero);
            trie.Load(path, vocabSize: 100);
            trie.BeginRequest([5, 6, 7]);
            trie.AppendOutput([1, 2, 3]);
            trie.EndRequest();
            Assert.That(trie.Find([1, 2, 3]), Is.GreaterThanOrEqualTo(0));
        }
        finally
        {
            File.Delete(path);
        }
    }

    // ---- model folders ----

    private static RandomModel Fixture(string name) => RandomModel.Create(new RandomModelSpec(name, Heads: 4, KvHeads: 2));

    private static void EditConfig(string folder, Action<JsonObject> edit)
    {
        string path = Path.Combine(folder, "config.json");
        JsonObject config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    private static string LoadError(string folder) =>
        Assert.Throws<LookaheadException>(() => LanguageModel.Load(folder).Dispose())!.Message;

    [Test]
    public void HugeLayerCountsFailBeforeAnythingGrowsWithThem()
    {
        using RandomModel fixture = Fixture("layers");
        EditConfig(fixture.Folder, c => c["num_hidden_layers"] = 2_000_000_000);
        Assert.That(LoadError(fixture.Folder), Does.Contain("num_hidden_layers (2000000000) exceeds the supported 4096"));
        EditConfig(fixture.Folder, c => c["num_hidden_layers"] = 4000);
        Assert.That(LoadError(fixture.Folder), Does.Contain("tensor 'model.layers.2.input_layernorm.weight' is missing"));
        EditConfig(fixture.Folder, c => { c["num_hidden_layers"] = 2; c["vocab_size"] = 5_000_000; });
        Assert.That(LoadError(fixture.Folder), Does.Contain("vocab_size (5000000) exceeds the supported 1048576"));
    }

    [Test]
    public void TokenIdsOutsideTheVocabularyAreRefused()
    {
        using RandomModel fixture = Fixture("eos");
        EditConfig(fixture.Folder, c => c["eos_token_id"] = 97);
        Assert.That(LoadError(fixture.Folder), Does.Contain("eos_token_id 97 is outside the vocabulary (vocab_size 97)"));
        EditConfig(fixture.Folder, c => { c["eos_token_id"] = new JsonArray(2, 500); });
        Assert.That(LoadError(fixture.Folder), Does.Contain("eos_token_id 500"));
        EditConfig(fixture.Folder, c => { c["eos_token_id"] = 2; c["bos_token_id"] = 1000; });
        Assert.That(LoadError(fixture.Folder), Does.Contain("bos_token_id 1000 is outside the vocabulary"));
    }

    // Rewrites one tensor's values through f (other tensors kept byte for byte).
    private static void EditTensor(string folder, string name, Action<float[]> edit)
    {
        string path = Path.Combine(folder, "model.safetensors");
        var writer = new SafeTensorsWriter();
        using (SafeTensorsFile file = SafeTensorsFile.Open(path))
        {
            foreach (TensorInfo t in file.Tensors.Values.OrderBy(t => t.DataOffset))
            {
                byte[] data = file.GetSpan(t).ToArray();
                if (t.Name == name)
                {
                    float[] values = Decode(data, t.Dtype);
                    edit(values);
                    data = RandomModel.Encode(values, t.Dtype);
                }
                writer.Add(t.Name, t.Dtype, t.Shape, data);
            }
        }
        writer.Write(path);
    }

    private static float[] Decode(byte[] data, TensorDtype dtype) => dtype switch
    {
        TensorDtype.F32 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(data).ToArray(),
        TensorDtype.F16 => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(data).ToArray().Select(h => (float)h).ToArray(),
        _ => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(data).ToArray().Select(BFloat16.ToSingle).ToArray(),
    };

    [TestCase(TensorDtype.F32, "model.layers.0.self_attn.q_proj.weight", 37, float.NaN, "layer 0 attn_q holds NaN at element 37 (row 1, column 5)")]
    [TestCase(TensorDtype.BF16, "model.norm.weight", 3, float.NaN, "output_norm holds NaN at element 3")]
    [TestCase(TensorDtype.F16, "model.layers.1.mlp.down_proj.weight", 0, float.NegativeInfinity, "layer 1 ffn_down holds -inf at element 0")]
    [TestCase(TensorDtype.F32, "lm_head.weight", 100, float.PositiveInfinity, "output holds +inf at element 100")]
    public void NonFiniteWeightsAreRefusedWithTheTensorsName(TensorDtype dtype, string tensor, int element, float value, string message)
    {
        using RandomModel fixture = RandomModel.Create(new RandomModelSpec($"nonfinite-{dtype}", Heads: 4, KvHeads: 2, Dtype: dtype));
        EditTensor(fixture.Folder, tensor, values => values[element] = value);
        Assert.That(LoadError(fixture.Folder), Does.Contain($"tensor '{tensor}' in model.safetensors: {message}"));
    }

    [Test]
    public void OverflowingActivationsFailTheStepInsteadOfEmittingGarbage()
    {
        using RandomModel fixture = Fixture("overflow");
        EditTensor(fixture.Folder, "model.embed_tokens.weight", values => Array.Fill(values, 3e38f));
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 64 });
        foreach (DecodingMode mode in new[] { DecodingMode.Greedy, DecodingMode.Lookahead })
        {
            var emitted = new List<int>();
            var error = Assert.Throws<LookaheadException>(() =>
                new Generator(context).GenerateOnce([1, 5, 9], new GenerationOptions { Mode = mode, MaxTokens = 8 }, t => emitted.AddRange(t.ToArray())));
            Assert.That(error!.Status, Is.EqualTo(NativeStatus.NonFinite));
            Assert.That(error.Message, Does.Contain("hold NaN or infinity"));
            Assert.That(emitted, Is.Empty, $"{mode}: no token comes from NaN logits");
        }
    }

    [Test]
    public void UnalignedDataSectionLoadsAndDecodesAsTheAlignedOne()
    {
        using RandomModel fixture = RandomModel.Create(new RandomModelSpec("unaligned", Heads: 4, KvHeads: 2, Dtype: TensorDtype.BF16));
        int[] prompt = [1, 5, 9, 14];
        var options = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 20, StopTokens = [] };
        int[] Generate()
        {
            using LanguageModel model = LanguageModel.Load(fixture.Folder);
            using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 64 });
            return new Generator(context).GenerateOnce(prompt, options).Tokens;
        }
        int[] aligned = Generate();
        // One more space in the header moves the data section to an odd address.
        string path = Path.Combine(fixture.Folder, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var shifted = new byte[bytes.Length + 1];
        BinaryPrimitives.WriteUInt64LittleEndian(shifted, (ulong)headerLength + 1);
        bytes.AsSpan(8, (int)headerLength).CopyTo(shifted.AsSpan(8));
        shifted[8 + headerLength] = (byte)' ';
        bytes.AsSpan(8 + (int)headerLength).CopyTo(shifted.AsSpan(9 + (int)headerLength));
        File.WriteAllBytes(path, shifted);
        Assert.That((8 + headerLength + 1) % 2, Is.EqualTo(1), "the data section starts at an odd offset");
        Assert.That(Generate(), Is.EqualTo(aligned));
    }

    // ---- text that is not valid Unicode ----

    [Test]
    public void InvalidUtf8AndLoneSurrogatesNameTheFile()
    {
        using RandomModel fixture = Fixture("utf8");
        string config = Path.Combine(fixture.Folder, "config.json");
        string original = File.ReadAllText(config);
        File.WriteAllBytes(config, [.. Encoding.UTF8.GetBytes(original[..^1] + ",\"torch_dtype\":\""), 0xC3, 0x28, (byte)'"', (byte)'}']);
        Assert.That(LoadError(fixture.Folder), Does.Contain("config.json ('").And.Contain("is not valid UTF-8 text (byte"));
        File.WriteAllText(config, original[..^1] + ",\"torch_dtype\":\"\\ud800\"}");
        Assert.That(LoadError(fixture.Folder), Does.Contain("config.json ('").And.Contain("not valid Unicode text (an unpaired surrogate"));
        File.WriteAllText(config, original.Replace("\"LlamaForCausalLM\"", "\"\\udc00LlamaForCausalLM\""));
        Assert.That(LoadError(fixture.Folder), Does.Contain("unpaired surrogate"));
        // A byte-order mark (as some editors write) is not an error.
        File.WriteAllBytes(config, [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(original)]);
        LanguageModel.Load(fixture.Folder).Dispose();
        File.WriteAllText(config, original);

        // A tensor name with a lone surrogate escape in the safetensors header.
        string weights = Path.Combine(fixture.Folder, "model.safetensors");
        byte[] bytes = File.ReadAllBytes(weights);
        int headerLength = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        string header = Encoding.UTF8.GetString(bytes, 8, headerLength).TrimEnd();
        string edited = "{\"\\ud800x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}," + header[1..];
        byte[] editedBytes = Encoding.UTF8.GetBytes(edited);
        var file = new byte[8 + editedBytes.Length + bytes.Length - 8 - headerLength];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)editedBytes.Length);
        editedBytes.CopyTo(file, 8);
        bytes.AsSpan(8 + headerLength).CopyTo(file.AsSpan(8 + editedBytes.Length));
        File.WriteAllBytes(weights, file);
        Assert.That(LoadError(fixture.Folder), Does.Contain("model.safetensors: header holds a string that is not valid Unicode text"));
    }

    [Test]
    public void TokenizerModelThatIsEmptyOrGarbageIsOneClearError()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"lookahead-tokenizer-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        try
        {
            foreach (string name in new[] { "config.json", "model.safetensors", "tokenizer_config.json" })
                File.Copy(Path.Combine(TestPaths.Stories260K, name), Path.Combine(folder, name));
            File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), []);
            Assert.That(LoadError(folder), Does.Contain("tokenizer.model in '").And.Contain("is empty"));
            File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), Enumerable.Range(0, 4096).Select(i => (byte)(i * 7)).ToArray());
            Assert.That(LoadError(folder), Does.Contain("is not a SentencePiece model this library reads"));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Test]
    public void TheFitCheckNeverRefusesAPromptThatFits()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        var tokenizer = model.Tokenizer!;
        var random = new Random(3);
        string[] alphabet = ["a", "b", "Once", " ", "  ", "\n", "\t", "é", "e\u0301", "日本", "😀", ".", "!", "   \n  "];
        for (int trial = 0; trial < 400; trial++)
        {
            var text = new StringBuilder();
            int length = random.Next(1, 400);
            for (int i = 0; i < length; i++) text.Append(alphabet[random.Next(alphabet.Length)]);
            if (trial % 7 == 0) text.Append(' ', random.Next(1, 3000));
            int tokens = tokenizer.Encode(text.ToString()).Length;
            Assert.That(tokenizer.CertainlyExceeds(text.ToString(), tokens), Is.False, $"trial {trial}: {tokens} tokens");
        }
        Assert.That(tokenizer.CertainlyExceeds(new string('x', 100_000), 512), Is.True, "a long prompt is refused without encoding it");
    }
}
