using Lookahead.Batching;
using Lookahead.Decoding;
using Lookahead.Interop;
using Lookahead.Model;
using Lookahead.Model.Gguf;
using Lookahead.Tests.Fixtures;
using Lookahead.Tests.Reference;

namespace Lookahead.Tests;

/// <summary>
/// GGUF files: a model converted as llama.cpp's converter does (GgufBuilder, written apart from the
/// library's writer) decodes exactly as its folder does, logits bit for bit; the embedded SentencePiece
/// vocabulary tokenizes as the folder's tokenizer.model; corrupt or unsupported files are refused with a
/// message that names the problem.
/// </summary>
public class GgufTests
{
    private static readonly RandomModelSpec[] Shapes =
    [
        new("gguf-llama-gqa", Hidden: 48, Heads: 4, KvHeads: 2, Vocab: 60, Seed: 31),
        new("gguf-llama-bf16-tied", Hidden: 32, Heads: 4, KvHeads: 4, Vocab: 50, Tied: true, Dtype: TensorDtype.BF16, Seed: 32, LayerGain: 4),
        new("gguf-qwen2-f16", Hidden: 48, Heads: 4, KvHeads: 2, Vocab: 55, Dtype: TensorDtype.F16, Architecture: "Qwen2ForCausalLM", Seed: 33),
    ];

    private static string TempPath(string name) => Path.Combine(Path.GetTempPath(), $"lookahead-{Guid.NewGuid():N}-{name}");

    [TestCaseSource(nameof(Shapes))]
    public void AConvertedModelDecodesAsItsFolderBitForBit(RandomModelSpec spec)
    {
        using RandomModel fixture = RandomModel.Create(spec);
        string path = GgufBuilder.FromFolder(fixture.Folder).Write(TempPath("model.gguf"));
        try
        {
            using LanguageModel folder = LanguageModel.Load(fixture.Folder);
            using LanguageModel gguf = LanguageModel.Load(path);
            Assert.That(gguf.Config with { MaxPositionEmbeddings = 0, EosTokenIds = [], BosTokenId = null, TorchDtype = null },
                Is.EqualTo(folder.Config with { MaxPositionEmbeddings = 0, EosTokenIds = [], BosTokenId = null, TorchDtype = null }).Using<ModelConfig>(SameShape));
            Assert.That(gguf.ParametersByDtype, Is.EquivalentTo(folder.ParametersByDtype));

            int[] prompt = Enumerable.Range(0, 23).Select(i => (i * 7 + 3) % spec.Vocab).ToArray();
            using InferenceContext a = folder.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, Threads = 1 });
            using InferenceContext b = gguf.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, Threads = 1 });
            a.Eval(prompt, default, LogitsMode.All);
            b.Eval(prompt, default, LogitsMode.All);
            var want = new float[spec.Vocab];
            var got = new float[spec.Vocab];
            for (int i = 0; i < prompt.Length; i++)
            {
                a.CopyLogits(i, want);
                b.CopyLogits(i, got);
                Assert.That(got, Is.EqualTo(want), $"{spec} position {i}");
            }
            var options = new GenerationOptions { MaxTokens = 40, StopTokens = [] };
            using InferenceContext c = folder.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, Threads = 1 });
            using InferenceContext d = gguf.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, Threads = 1 });
            Assert.That(new Generator(d).GenerateOnce(prompt, options).Tokens, Is.EqualTo(new Generator(c).GenerateOnce(prompt, options).Tokens));
        }
        finally
        {
            File.Delete(path);
        }
    }

    // Every matrix as Q8_0 (quantized as llama.cpp quantizes, by the tests' own code): logits against the
    // reference with the same dequantized weights and its matrix inputs quantized to Q8_0 too; lookahead,
    // greedy and sampled, and batched requests equal plain decoding of the same file.
    [TestCase(false)]
    [TestCase(true)]
    public void AQ8_0ModelMatchesTheReferenceAndDecodesLosslessly(bool tied)
    {
        var spec = new RandomModelSpec(tied ? "gguf-q8-tied" : "gguf-q8", Hidden: 64, Intermediate: 96, Heads: 4, KvHeads: 2, Vocab: 70, Tied: tied,
            Seed: tied ? 36 : 35, LayerGain: tied ? 4 : 1.7);
        using RandomModel fixture = RandomModel.Create(spec);
        string path = GgufBuilder.FromFolder(fixture.Folder, q8: true).Write(TempPath("q8.gguf"));
        try
        {
            using LanguageModel model = LanguageModel.Load(path);
            Assert.That(model.ParametersByDtype.Keys, Does.Contain(TensorDtype.Q8_0));
            AssertLogitsMatch(model, fixture.CreateQ8Reference(), spec);
            AssertDecodesLosslessly(model, spec);
        }
        finally
        {
            File.Delete(path);
        }
    }

    // The library's own export (what `lookahead quantize` writes): Q4_K_M's mix of Q4_K and Q6_K, and
    // Q8_0. The reference takes the file's blocks dequantized by the tests' own readers (q/k rows put back
    // in rotate-half order) and quantizes each matrix's input as llama.cpp does for its type (Q8_K for the
    // k-quants); decoding is lossless against plain decoding of the same file.
    [TestCase(GgufFileType.Q4_K_M, false)]
    [TestCase(GgufFileType.Q4_K_M, true)]
    [TestCase(GgufFileType.Q8_0, false)]
    [TestCase(GgufFileType.F32, false)]
    public void AnExportedQuantizedModelMatchesTheReferenceAndDecodesLosslessly(GgufFileType type, bool tied)
    {
        var spec = new RandomModelSpec($"gguf-{type}", Hidden: 256, Intermediate: 512, Heads: 4, KvHeads: 2, Vocab: 70, Tied: tied,
            Seed: tied ? 38 : 37, LayerGain: tied ? 4 : 1.2, Layers: 3);
        using RandomModel fixture = RandomModel.Create(spec);
        string path = TempPath("exported.gguf");
        GgufWriter.Write(fixture.Folder, path, type);
        try
        {
            using LanguageModel model = LanguageModel.Load(path);
            TensorDtype[] expected = type == GgufFileType.F32 ? [] : type == GgufFileType.Q8_0 ? [TensorDtype.Q8_0] : [TensorDtype.Q4_K, TensorDtype.Q6_K];
            Assert.That(model.ParametersByDtype.Keys.Where(d => d != TensorDtype.F32), Is.EquivalentTo(expected));
            (ReferenceWeights weights, Func<float[], Func<float[], float[]>?> inputs) = DequantizedWeights(path, model.Config);
            AssertLogitsMatch(model, fixture.CreateReference(weights, inputs), spec);
            AssertDecodesLosslessly(model, spec);
        }
        finally
        {
            File.Delete(path);
        }
    }

    // A file's weights as the reference takes them, and for each quantized matrix the round trip its
    // inputs take.
    private static unsafe (ReferenceWeights, Func<float[], Func<float[], float[]>?>) DequantizedWeights(string path, ModelConfig c)
    {
        using GgufCheckpoint checkpoint = GgufCheckpoint.Open(path);
        var inputs = new Dictionary<float[], Func<float[], float[]>>(ReferenceEqualityComparer.Instance);
        float[] Read(TensorSlot slot)
        {
            GgufTensor t = checkpoint.Tensor(slot);
            var bytes = new ReadOnlySpan<byte>(checkpoint.File.GetData(t), checkpoint.Tensor(slot).ByteLength is var n and <= int.MaxValue ? (int)n : throw new AssertionException("tensor too large"));
            float[] values = t.Type switch
            {
                GgmlType.F32 => MemoryMarshalFloats(bytes),
                GgmlType.Q8_0 => Q8_0.Dequantize(bytes),
                GgmlType.Q4_K => KQuants.DequantizeQ4_K(bytes),
                GgmlType.Q6_K => KQuants.DequantizeQ6_K(bytes),
                _ => throw new AssertionException($"{t.Name}: unexpected type {t.Type}"),
            };
            if (checkpoint.NeedsRopeReorder(slot)) values = ToRotateHalf(values, slot.Kind == TensorKind.AttnQ ? c.NumHeads : c.NumKvHeads, (int)slot.Cols);
            if (t.Type == GgmlType.Q8_0) inputs[values] = Q8_0.RoundTrip;
            if (t.Type is GgmlType.Q4_K or GgmlType.Q6_K) inputs[values] = KQuants.Q8_KRoundTrip;
            return values;
        }
        TensorSlot Slot(TensorKind kind, int layer = 0) => TensorMap.Slots(c).Single(s => s.Kind == kind && s.Layer == layer);
        float[] embedding = Read(Slot(TensorKind.TokenEmbedding));
        var weights = new ReferenceWeights
        {
            Embedding = embedding,
            OutputNorm = Read(Slot(TensorKind.OutputNorm)),
            Output = c.TieWordEmbeddings ? embedding : Read(Slot(TensorKind.Output)),
            Layers = Enumerable.Range(0, c.NumLayers).Select(l => new ReferenceLayer
            {
                AttnNorm = Read(Slot(TensorKind.AttnNorm, l)), Q = Read(Slot(TensorKind.AttnQ, l)), K = Read(Slot(TensorKind.AttnK, l)),
                V = Read(Slot(TensorKind.AttnV, l)), O = Read(Slot(TensorKind.AttnOutput, l)), FfnNorm = Read(Slot(TensorKind.FfnNorm, l)),
                Gate = Read(Slot(TensorKind.FfnGate, l)), Up = Read(Slot(TensorKind.FfnUp, l)), Down = Read(Slot(TensorKind.FfnDown, l)),
            }).ToArray(),
        };
        return (weights, w => inputs.GetValueOrDefault(w));
    }

    private static float[] MemoryMarshalFloats(ReadOnlySpan<byte> bytes) => System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(bytes).ToArray();

    // Per head, stored (interleaved) row 2i is rotate-half row i and stored row 2i + 1 is row half + i.
    private static float[] ToRotateHalf(float[] stored, int heads, int cols)
    {
        var result = new float[stored.Length];
        int rowsPerHead = stored.Length / cols / heads, half = rowsPerHead / 2;
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < half; i++)
            {
                Array.Copy(stored, (long)(h * rowsPerHead + 2 * i) * cols, result, (long)(h * rowsPerHead + i) * cols, cols);
                Array.Copy(stored, (long)(h * rowsPerHead + 2 * i + 1) * cols, result, (long)(h * rowsPerHead + half + i) * cols, cols);
            }
        }
        return result;
    }

    private static void AssertLogitsMatch(LanguageModel model, ReferenceModel reference, RandomModelSpec spec)
    {
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 128, Threads = 2 });
        int[] prompt = Enumerable.Range(0, 31).Select(i => (i * 11 + 5) % spec.Vocab).ToArray();
        context.Eval(prompt, default, LogitsMode.All);
        var logits = new float[spec.Vocab];
        for (int i = 0; i < prompt.Length; i++)
        {
            context.CopyLogits(i, logits);
            LogitsAssert.Close(logits, reference.Forward(prompt[i]), $"{spec} position {i}", LogitsAssert.QuantizedInputTolerance, LogitsAssert.Bf16Tolerance);
        }
    }

    // Lookahead (greedy and sampled) and batched requests give plain decoding's tokens on the same model.
    private static void AssertDecodesLosslessly(LanguageModel model, RandomModelSpec spec)
    {
        List<int[]> prompts = [Enumerable.Repeat(new[] { 3, 7, 9, 4 }, 5).SelectMany(x => x).ToArray(), Enumerable.Range(0, 20).Select(i => (i * 7) % spec.Vocab).ToArray()];
        using InferenceContext single = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 });
        foreach (SamplingOptions sampling in new[] { new SamplingOptions(), new SamplingOptions { Temperature = 0.9f, Seed = 5 } })
        {
            var plainOptions = new GenerationOptions { Mode = DecodingMode.Greedy, MaxTokens = 60, StopTokens = [], Sampling = sampling };
            using var plain = new Generator(single);
            List<int[]> expected = prompts.Select(p => plain.Generate(p, plainOptions).Tokens).ToList();
            using var lookahead = new Generator(single, time: new SteppingClock());
            for (int round = 0; round < 2; round++)
                for (int i = 0; i < prompts.Count; i++)
                    Assert.That(lookahead.Generate(prompts[i], plainOptions with { Mode = DecodingMode.Lookahead }).Tokens, Is.EqualTo(expected[i]),
                        $"lookahead, sampled={!sampling.IsGreedy}, prompt {i}");
            using InferenceContext pooled = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256, MaxSequences = 2, Threads = 1 });
            using var batch = new BatchGenerator(pooled);
            BatchResult[] results = Task.WhenAll(prompts.Select(p => batch.GenerateAllAsync(p, plainOptions with { Mode = DecodingMode.Lookahead }))).Result;
            for (int i = 0; i < prompts.Count; i++) Assert.That(results[i].Tokens, Is.EqualTo(expected[i]), $"batched, sampled={!sampling.IsGreedy}, prompt {i}");
        }
    }

    private static bool SameShape(ModelConfig x, ModelConfig y) =>
        x.Architecture == y.Architecture && x.VocabSize == y.VocabSize && x.HiddenSize == y.HiddenSize && x.IntermediateSize == y.IntermediateSize &&
        x.NumLayers == y.NumLayers && x.NumHeads == y.NumHeads && x.NumKvHeads == y.NumKvHeads && x.HeadDim == y.HeadDim &&
        x.RmsNormEps == y.RmsNormEps && x.RopeTheta == y.RopeTheta && x.TieWordEmbeddings == y.TieWordEmbeddings && x.QkvBias == y.QkvBias;

    // stories260K with its tokenizer.model's pieces, scores and types as GGUF metadata (as the converter
    // writes them): the vocabulary tokenizes and decodes every text as the folder's tokenizer does.
    private static GgufBuilder Stories260KWithVocabulary()
    {
        List<Tokenization.SentencePiece> pieces = Tokenization.SentencePieceProto.ReadPieces(File.ReadAllBytes(Path.Combine(TestPaths.Stories260K, "tokenizer.model")));
        return GgufBuilder.FromFolder(TestPaths.Stories260K)
            .String("tokenizer.ggml.model", "llama")
            .Strings("tokenizer.ggml.tokens", pieces.Select(p => p.Text).ToList())
            .Floats("tokenizer.ggml.scores", pieces.Select(p => p.Score).ToList())
            .Int32s("tokenizer.ggml.token_type", pieces.Select(p => p.Type).ToList())
            .UInt32("tokenizer.ggml.bos_token_id", 1)
            .UInt32("tokenizer.ggml.eos_token_id", 2)
            .String("tokenizer.chat_template", "{% for m in messages %}{{ bos_token }}{{ m['content'] }}{{ eos_token }}{% endfor %}");
    }

    [Test]
    public void TheEmbeddedSentencePieceVocabularyTokenizesAsTheTokenizerModel()
    {
        string path = Stories260KWithVocabulary().Write(TempPath("stories260K.gguf"));
        try
        {
            using LanguageModel folder = LanguageModel.Load(TestPaths.Stories260K);
            using LanguageModel gguf = LanguageModel.Load(path);
            Assert.That(gguf.Tokenizer, Is.Not.Null, gguf.TokenizerStatus);
            Assert.That(gguf.TokenizerStatus, Does.Contain("GGUF"));
            var texts = LookaheadLosslessTests.BenchPrompts(40).Concat(["", " ", "  two  spaces", "Ünïcödé 日本語 🙂 bytes", "<s> written", "tab\tand\nnewline", "Once upon a time"]);
            foreach (string text in texts)
            {
                int[] ids = folder.Tokenizer!.Encode(text);
                Assert.That(gguf.Tokenizer!.Encode(text), Is.EqualTo(ids), text);
                Assert.That(gguf.Tokenizer.Decode(ids), Is.EqualTo(folder.Tokenizer.Decode(ids)), text);
            }
            var options = new GenerationOptions { MaxTokens = 48 };
            int[] prompt = folder.Tokenizer!.Encode("Once upon a time");
            using InferenceContext a = folder.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 });
            using InferenceContext b = gguf.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 256 });
            Assert.That(new Generator(b).GenerateOnce(prompt, options).Tokens, Is.EqualTo(new Generator(a).GenerateOnce(prompt, options).Tokens));

            Tokenization.ChatPrompt chat = Tokenization.ChatPrompt.ForModel(path);
            Assert.That(chat.Render([new Tokenization.ChatTurn("user", "Hi")]), Is.EqualTo("<s>Hi</s>"), "the file's template, with its BOS and EOS pieces");
        }
        finally
        {
            File.Delete(path);
        }
    }

    // Llama 3's, Qwen3's and GPT-2's tokenizer.json as llama.cpp's converter writes them into GGUF (tokens by
    // id, merges as "a b", added tokens as control or user-defined, the pre-tokenizer's name): the embedded
    // vocabulary encodes and decodes the 47 texts exactly as Hugging Face's tokenizers do (expected.json).
    [TestCaseSource(typeof(TokenizerFolders), nameof(TokenizerFolders.Names))]
    public void AnEmbeddedByteLevelVocabularyTokenizesAsHuggingFaceDoes(string name)
    {
        using System.Text.Json.JsonDocument json = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TokenizerFolders.Unpack(name), "tokenizer.json")));
        System.Text.Json.JsonElement model = json.RootElement.GetProperty("model");
        var byId = new SortedDictionary<int, (string Text, int Type)>();
        foreach (System.Text.Json.JsonProperty entry in model.GetProperty("vocab").EnumerateObject()) byId[entry.Value.GetInt32()] = (entry.Name, 1);
        foreach (System.Text.Json.JsonElement token in json.RootElement.GetProperty("added_tokens").EnumerateArray())
            byId[token.GetProperty("id").GetInt32()] = (token.GetProperty("content").GetString()!, token.GetProperty("special").GetBoolean() ? 3 : 4);
        int count = byId.Keys.Max() + 1;
        var tokens = Enumerable.Range(0, count).Select(i => byId.TryGetValue(i, out var t) ? t.Text : $"[PAD{i}]").ToList();
        var types = Enumerable.Range(0, count).Select(i => byId.TryGetValue(i, out var t) ? t.Type : 5).ToList();
        var merges = model.GetProperty("merges").EnumerateArray()
            .Select(m => m.ValueKind == System.Text.Json.JsonValueKind.String ? m.GetString()! : $"{m[0].GetString()} {m[1].GetString()}").ToList();
        (string pre, int? bos) = name switch { "llama3" => ("llama-bpe", (int?)128000), "qwen3" => ("qwen2", null), _ => ("gpt-2", null) };
        var builder = new GgufBuilder().String("general.architecture", "llama").String("tokenizer.ggml.model", "gpt2").String("tokenizer.ggml.pre", pre)
            .Strings("tokenizer.ggml.tokens", tokens).Int32s("tokenizer.ggml.token_type", types).Strings("tokenizer.ggml.merges", merges)
            .Bool("tokenizer.ggml.add_bos_token", bos is not null);
        string path = builder.Write(TempPath($"{name}-vocab.gguf"));
        try
        {
            using GgufFile file = GgufFile.Open(path);
            Tokenization.TextTokenizer tokenizer = Tokenization.TextTokenizer.TryLoadGguf(file, TokenizerFolders.ConfigWithVocabulary(count) with { BosTokenId = bos }, out string status)
                ?? throw new AssertionException(status);
            Assert.That(status, Does.Contain("byte-level BPE vocabulary from GGUF"));
            using System.Text.Json.JsonDocument expected = System.Text.Json.JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TokenizerFolders.Source(name), "expected.json")));
            int cases = 0;
            foreach (System.Text.Json.JsonElement c in expected.RootElement.GetProperty("cases").EnumerateArray())
            {
                string text = c.GetProperty("text").GetString()!;
                int[] ids = c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();
                Assert.That(tokenizer.EncodeWithoutAddedTokens(text), Is.EqualTo(ids), $"{name}: {text}");
                Assert.That(tokenizer.Encode(text), Is.EqualTo(c.GetProperty("ids_with_special").EnumerateArray().Select(i => i.GetInt32()).ToArray()), $"{name} with BOS: {text}");
                Assert.That(tokenizer.Decode(ids, skipSpecialTokens: false), Is.EqualTo(c.GetProperty("decoded").GetString()), $"{name} decode: {text}");
                cases++;
            }
            Assert.That(cases, Is.EqualTo(47));
        }
        finally
        {
            File.Delete(path);
        }
    }

    // The CLI takes a .gguf file for --model: the same text as from the folder; a corrupt file is one clear error.
    [Test]
    public void TheCliGeneratesFromAGgufFileAsFromItsFolder()
    {
        string path = Stories260KWithVocabulary().Write(TempPath("stories260K.gguf"));
        string broken = TempPath("broken.gguf");
        try
        {
            string[] common = ["--prompt", "Once upon a time", "--max-tokens", "32", "--json", "--threads", "1"];
            CliRunner.Result fromFolder = CliRunner.Run(["generate", "--model", TestPaths.Stories260K, .. common]);
            CliRunner.Result fromFile = CliRunner.Run(["generate", "--model", path, .. common]);
            Assert.That(fromFile.ExitCode, Is.Zero, fromFile.Stderr);
            Assert.That(CliRunner.TokenIds(fromFile.Stdout), Is.EqualTo(CliRunner.TokenIds(fromFolder.Stdout)));
            CliRunner.Result info = CliRunner.Run(["info", "--model", path]);
            Assert.That(info.Stdout, Does.Contain("SentencePiece vocabulary from GGUF (512 pieces)"));

            byte[] bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(broken, bytes[..(bytes.Length / 2)]);
            CliRunner.Result refused = CliRunner.Run(["generate", "--model", broken, "--prompt", "Once"]);
            Assert.That(refused.ExitCode, Is.EqualTo(1), refused.Stderr);
            Assert.That(refused.Stderr, Does.Contain("runs past the end of the file"));
            Assert.That(refused.Stderr, Does.Not.Contain("   at "));
        }
        finally
        {
            File.Delete(path);
            File.Delete(broken);
        }
    }

    // lookahead quantize writes a file that loads with its types and decodes; lookahead and plain decoding of
    // it agree; bad arguments are one clear error each.
    [Test]
    public void TheCliQuantizesAFolderToAGgufFileThatDecodes()
    {
        var spec = new RandomModelSpec("cli-quantize", Hidden: 256, Intermediate: 512, Heads: 4, KvHeads: 2, Vocab: 70, Seed: 39, Layers: 3);
        using RandomModel fixture = RandomModel.Create(spec);
        string path = TempPath("q4km.gguf");
        try
        {
            CliRunner.Result written = CliRunner.Run(["quantize", "--model", fixture.Folder, "--type", "q4_k_m", "--out", path]);
            Assert.That(written.ExitCode, Is.Zero, written.Stderr);
            Assert.That(written.Stdout, Does.Contain("Q4_K_M"));
            Assert.That(CliRunner.Run(["info", "--model", path]).Stdout, Does.Contain("Q4_K (").And.Contain("Q6_K ("));
            string[] common = ["--model", path, "--prompt-ids", "1,5,9,5,9,5,9", "--max-tokens", "40", "--json", "--threads", "1"];
            CliRunner.Result plain = CliRunner.Run(["generate", "--mode", "plain", .. common]);
            CliRunner.Result lookahead = CliRunner.Run(["generate", "--mode", "lookahead", .. common]);
            Assert.That(plain.ExitCode, Is.Zero, plain.Stderr);
            Assert.That(CliRunner.TokenIds(lookahead.Stdout), Is.EqualTo(CliRunner.TokenIds(plain.Stdout)).And.Length.EqualTo(40));

            CliRunner.Result noSuffix = CliRunner.Run(["quantize", "--model", fixture.Folder, "--out", TempPath("q4km.bin")]);
            Assert.That(noSuffix.ExitCode, Is.EqualTo(2));
            Assert.That(noSuffix.Stderr, Does.Contain("must end in .gguf"));
            CliRunner.Result noFolder = CliRunner.Run(["quantize", "--model", fixture.Folder, "--out", Path.Combine(TempPath("missing"), "x.gguf")]);
            Assert.That(noFolder.ExitCode, Is.EqualTo(1));
            Assert.That(noFolder.Stderr, Does.Contain("does not exist"));
            CliRunner.Result fromGguf = CliRunner.Run(["quantize", "--model", path, "--out", TempPath("again.gguf")]);
            Assert.That(fromGguf.Stderr, Does.Contain("quantize reads a model folder"));
            CliRunner.Result badType = CliRunner.Run(["quantize", "--model", fixture.Folder, "--type", "q3_k", "--out", TempPath("x.gguf")]);
            Assert.That(badType.ExitCode, Is.EqualTo(2));
            Assert.That(badType.Stderr, Does.Contain("q4_k_m"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    // Each corruption of a valid file is refused by the parser with its own message.
    private static IEnumerable<TestCaseData> Corruptions()
    {
        static GgufBuilder Valid() => new GgufBuilder().String("general.architecture", "llama").Tensor("t", 0, [4, 2], new byte[32]);
        yield return new TestCaseData((Func<byte[]>)(() => "GGUF"u8.ToArray()), "truncated").SetName("Truncated");
        yield return new TestCaseData((Func<byte[]>)(() => { byte[] b = Valid().Build(); b[0] = (byte)'X'; return b; }), "no 'GGUF' magic").SetName("BadMagic");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder { Version = 1 }.Build()), "version 1 is not supported").SetName("Version1");
        yield return new TestCaseData((Func<byte[]>)(() => { byte[] b = Valid().Build(); BitConverter.GetBytes(ulong.MaxValue).CopyTo(b, 8); return b; }),
            "tensors cannot fit").SetName("HugeTensorCount");
        yield return new TestCaseData((Func<byte[]>)(() => { byte[] b = Valid().Build(); BitConverter.GetBytes(1UL << 40).CopyTo(b, 16); return b; }),
            "metadata entries cannot fit").SetName("HugeMetadataCount");
        yield return new TestCaseData((Func<byte[]>)(() => Valid().Raw("bad", 8, w => { w.Write(2UL); w.Write(new byte[] { 0xC3, 0x28 }); }).Build()),
            "not valid UTF-8").SetName("BadUtf8");
        yield return new TestCaseData((Func<byte[]>)(() => Valid().String("general.architecture", "again").Build()), "appears twice").SetName("DuplicateKey");
        yield return new TestCaseData((Func<byte[]>)(() => Valid().Raw("x", 99, _ => { }).Build()), "unknown value type 99").SetName("UnknownValueType");
        yield return new TestCaseData((Func<byte[]>)(() => Valid().Raw("x", 9, w => { w.Write(8u); w.Write(1UL << 50); }).Build()),
            "claims 1125899906842624 elements").SetName("HugeArray");
        yield return new TestCaseData((Func<byte[]>)(() => Valid().Raw("x", 7, w => w.Write((byte)2)).Build()), "a bool of value 2").SetName("BadBool");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder { OffsetSkew = 4 }.Tensor("t", 0, [4], new byte[16]).Build()),
            "not a multiple of the alignment").SetName("MisalignedOffset");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder { OffsetSkew = 4096 }.Tensor("t", 0, [4], new byte[16]).Build()),
            "runs past the end of the file").SetName("OffsetPastTheEnd");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder().Tensor("t", 0, [1UL << 39, 1UL << 39], new byte[16]).Build()),
            "size overflows").SetName("SizeOverflow");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder().Tensor("t", 77, [4], new byte[16]).Build()), "unknown ggml type 77").SetName("UnknownType");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder().Tensor("t", 8, [40], new byte[64]).Build()),
            "blocks hold 32 values, but its rows hold 40").SetName("PartialQuantBlock");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder().Tensor("t", 0, [0], []).Build()), "dimension 0 = 0").SetName("ZeroDimension");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder().Tensor("t", 0, [4], new byte[16]).Tensor("t", 0, [4], new byte[16]).Build()),
            "tensor 't' appears twice").SetName("DuplicateTensor");
        yield return new TestCaseData((Func<byte[]>)(() => new GgufBuilder().UInt32("general.alignment", 24).Build()), "power of two").SetName("BadAlignment");
    }

    [TestCaseSource(nameof(Corruptions))]
    public void ACorruptFileIsRefusedByName(Func<byte[]> build, string message)
    {
        string path = TempPath("bad.gguf");
        File.WriteAllBytes(path, build());
        try
        {
            var error = Assert.Throws<LookaheadException>(() => GgufFile.Open(path).Dispose());
            Assert.That(error!.Message, Does.Contain(message));
            Assert.That(Assert.Throws<LookaheadException>(() => LanguageModel.Load(path).Dispose())!.Message, Does.Contain(message), "the same through Load");
        }
        finally
        {
            File.Delete(path);
        }
    }

    // Valid files of models this version does not run: each refusal names what is missing or unsupported.
    [Test]
    public void UnsupportedModelsAreRefusedByName()
    {
        using RandomModel fixture = RandomModel.Create(new RandomModelSpec("gguf-refusals", Seed: 34));
        void Expect(GgufBuilder builder, string message)
        {
            string path = builder.Write(TempPath("model.gguf"));
            try
            {
                Assert.That(Assert.Throws<LookaheadException>(() => LanguageModel.Load(path).Dispose())!.Message, Does.Contain(message));
            }
            finally
            {
                File.Delete(path);
            }
        }
        Expect(new GgufBuilder().String("general.architecture", "gemma"), "architecture 'gemma' is not supported");
        Expect(new GgufBuilder().String("general.architecture", "llama"), "llama.embedding_length is missing");
        Expect(GgufBuilder.FromFolder(fixture.Folder).String("llama.rope.scaling.type", "yarn"), "rope.scaling.type 'yarn' is not supported");
        Expect(GgufBuilder.FromFolder(fixture.Folder).UInt32("llama.rope.dimension_count", 4), "partial RoPE is not supported");

        // A quantized type without kernels (Q5_1 blocks: two 2-byte scales, 4 bytes of fifth bits and 16 bytes) is refused by type name.
        GgufBuilder quantized = GgufBuilder.FromFolder(fixture.Folder);
        string quantizedPath = quantized.Write(TempPath("q.gguf"));
        try
        {
            // Rewrite one F32 tensor's type to Q5_1 with data of the right size: rebuild with that tensor swapped.
            GgufFile file = GgufFile.Open(quantizedPath);
            var rebuilt = new GgufBuilder();
            foreach ((string key, object value) in file.Metadata)
            {
                switch (value)
                {
                    case string s: rebuilt.String(key, s); break;
                    case long l: rebuilt.UInt32(key, (uint)l); break;
                    case double d: rebuilt.Float32(key, (float)d); break;
                }
            }
            foreach (GgufTensor t in file.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
            {
                bool swap = t.Name == "blk.0.ffn_up.weight";
                rebuilt.Tensor(t.Name, swap ? 7u : (uint)t.Type, t.Dims.Select(d => (ulong)d).ToArray(),
                    swap ? new byte[t.ElementCount / 32 * 24] : new byte[t.ByteLength]);
            }
            file.Dispose();
            Expect(rebuilt, "tensor 'blk.0.ffn_up.weight' is Q5_1; this version loads F32, F16, BF16 and (matrices) Q8_0, Q4_0, Q5_0, Q4_K, Q5_K and Q6_K GGUF tensors");
        }
        finally
        {
            File.Delete(quantizedPath);
        }
    }
}
