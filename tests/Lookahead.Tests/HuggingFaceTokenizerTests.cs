using System.Text.Json;
using Lookahead.Tests.Fixtures;
using Lookahead.Tokenization;

namespace Lookahead.Tests;

/// <summary>
/// Byte-level BPE from real tokenizer.json files (Llama 3, Qwen3, GPT-2) against the ids and texts
/// Hugging Face's own Rust tokenizers give for the same 47 texts (tests/data/tokenizers, made once by
/// generate-expected.mjs).
/// </summary>
public class HuggingFaceTokenizerTests
{
    public sealed record Case(string Text, int[] Ids, int[] IdsWithSpecial, string Decoded, string DecodedSkipSpecial);

    private static readonly Dictionary<string, TextTokenizer> s_loaded = new();

    private static TextTokenizer Tokenizer(string name)
    {
        lock (s_loaded)
        {
            if (!s_loaded.TryGetValue(name, out TextTokenizer? tokenizer)) s_loaded[name] = tokenizer = TokenizerFolders.Load(name);
            return tokenizer;
        }
    }

    private static List<Case> Cases(string name)
    {
        using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TokenizerFolders.Source(name), "expected.json")));
        return document.RootElement.GetProperty("cases").EnumerateArray().Select(c => new Case(
            c.GetProperty("text").GetString()!,
            c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray(),
            c.GetProperty("ids_with_special").EnumerateArray().Select(i => i.GetInt32()).ToArray(),
            c.GetProperty("decoded").GetString()!,
            c.GetProperty("decoded_skip_special").GetString()!)).ToList();
    }

    [TestCaseSource(typeof(TokenizerFolders), nameof(TokenizerFolders.Names))]
    public void EncodesAsHuggingFaceTokenizersDo(string name)
    {
        TextTokenizer tokenizer = Tokenizer(name);
        var failures = new List<string>();
        List<Case> cases = Cases(name);
        foreach (Case c in cases)
        {
            int[] ids = tokenizer.EncodeWithoutAddedTokens(c.Text);
            string quoted = JsonSerializer.Serialize(c.Text);
            if (!ids.SequenceEqual(c.Ids))
                failures.Add($"{quoted[..Math.Min(60, quoted.Length)]}: got [{string.Join(",", ids.Take(24))}] want [{string.Join(",", c.Ids.Take(24))}]");
            else if (!tokenizer.Encode(c.Text).SequenceEqual(c.IdsWithSpecial))
                failures.Add($"{quoted}: post-processed ids differ");
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} of {cases.Count} texts differ from Hugging Face tokenizers:\n" + string.Join("\n", failures));
    }

    [TestCaseSource(typeof(TokenizerFolders), nameof(TokenizerFolders.Names))]
    public void DecodesAsHuggingFaceTokenizersDo(string name)
    {
        TextTokenizer tokenizer = Tokenizer(name);
        foreach (Case c in Cases(name))
        {
            Assert.That(tokenizer.Decode(c.Ids, skipSpecialTokens: false), Is.EqualTo(c.Decoded), JsonSerializer.Serialize(c.Text));
            Assert.That(tokenizer.Decode(c.Ids), Is.EqualTo(c.DecodedSkipSpecial), JsonSerializer.Serialize(c.Text));
        }
    }

    [TestCaseSource(typeof(TokenizerFolders), nameof(TokenizerFolders.Names))]
    public void StreamingDecodeEqualsWholeDecode(string name)
    {
        TextTokenizer tokenizer = Tokenizer(name);
        foreach (Case c in Cases(name).Where(c => c.Ids.Length > 1))
        {
            int[] prompt = c.Ids[..(c.Ids.Length / 2)], generated = c.Ids[(c.Ids.Length / 2)..];
            StreamingDetokenizer stream = tokenizer.CreateStream(prompt);
            string text = string.Concat(generated.Select(id => stream.Append([id]))) + stream.Flush();
            string whole = tokenizer.Decode(c.Ids), head = tokenizer.Decode(prompt);
            if (!whole.StartsWith(head, StringComparison.Ordinal)) continue;  // the cut splits a character: no text boundary there
            Assert.That(text, Is.EqualTo(whole[head.Length..]), JsonSerializer.Serialize(c.Text));
        }
    }

    [Test]
    public void LlamaThreeStartsPromptsWithBeginOfText()
    {
        TextTokenizer tokenizer = Tokenizer("llama3");
        Assert.That(tokenizer.Encode("Hi")[0], Is.EqualTo(128000));
        Assert.That(tokenizer.EncodeWithoutAddedTokens("<|begin_of_text|>Hi<|eot_id|>"), Is.EqualTo(new[] { 128000, 13347, 128009 }));
    }

    [Test]
    public void RefusesAComponentItDoesNotImplementByName()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"lookahead-tokenizer-wordpiece-{Environment.ProcessId}");
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {"a": 0}}}""");
        var error = Assert.Throws<LookaheadException>(() => TextTokenizer.TryLoad(folder, TokenizerFolders.ConfigWithVocabulary(10), out _));
        Assert.That(error!.Message, Does.Contain("WordPiece"));
    }

    [Test]
    public void RefusesAVocabularyLargerThanTheModels()
    {
        string folder = TokenizerFolders.Unpack("gpt2");
        var error = Assert.Throws<LookaheadException>(() => TextTokenizer.TryLoad(folder, TokenizerFolders.ConfigWithVocabulary(50_000), out _));
        Assert.That(error!.Message, Does.Contain("50256").And.Contain("vocab_size"));
    }
}
