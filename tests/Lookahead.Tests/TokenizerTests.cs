using System.Text.Json;
using Lookahead.Tokenization;

namespace Lookahead.Tests;

/// <summary>The stories260K SentencePiece tokenizer: known encodings, round trips, streaming decode.</summary>
public class TokenizerTests
{
    private static LanguageModel s_model = null!;
    private static TextTokenizer Tokenizer => s_model.Tokenizer!;

    [OneTimeSetUp]
    public void Load() => s_model = LanguageModel.Load(TestPaths.Stories260K);

    [OneTimeTearDown]
    public void Unload() => s_model.Dispose();

    [Test]
    public void KnownEncoding()
    {
        // From models/stories260K/README.md: matches the original tokenizer's encoder.
        Assert.That(Tokenizer.Encode("Once upon a time"), Is.EqualTo(new[] { 1, 403, 407, 261, 378 }));
        Assert.That(Tokenizer.Encode(""), Is.EqualTo(new[] { 1 }), "an empty prompt is BOS alone");
        Assert.That(Tokenizer.AddBos, Is.True);
    }

    [TestCase("Once upon a time, there was a little girl named Lily.")]
    [TestCase("She said, \"I want to play!\"\nThe end.")]
    [TestCase("numbers 12345 and symbols #@%")]
    [TestCase("unicode: café – 日本")]
    public void RoundTrips(string text)
    {
        int[] ids = Tokenizer.Encode(text);
        Assert.That(ids[0], Is.EqualTo(1));
        Assert.That(ids.Skip(1), Has.All.InRange(0, 511));
        Assert.That(Tokenizer.Decode(ids), Is.EqualTo(text));
    }

    [Test]
    public void StreamingDecodeEqualsWholeDecodeForBenchPrompts()
    {
        foreach (string line in File.ReadLines(TestPaths.BenchPrompts).Take(40))
        {
            using JsonDocument document = JsonDocument.Parse(line);
            string text = document.RootElement.GetProperty("prompt").GetString()!;
            int[] ids = Tokenizer.Encode(text);
            int split = ids.Length / 3;
            // Prompt = first third, "generation" = the rest, fed one and three tokens at a time.
            foreach (int chunk in new[] { 1, 3 })
            {
                StreamingDetokenizer stream = Tokenizer.CreateStream(ids.AsSpan(0, split));
                string streamed = "";
                for (int i = split; i < ids.Length; i += chunk)
                    streamed += stream.Append(ids.AsSpan(i, Math.Min(chunk, ids.Length - i)));
                streamed += stream.Flush();
                string whole = Tokenizer.Decode(ids), prefix = Tokenizer.Decode(ids[..split]);
                Assert.That(prefix + streamed, Is.EqualTo(whole), $"chunk {chunk}: {text}");
            }
        }
    }

    [Test]
    public void ByteFallbackCharactersStreamWhole()
    {
        int[] ids = Tokenizer.Encode("x 日本 y");
        StreamingDetokenizer stream = Tokenizer.CreateStream(ids.AsSpan(0, 1));
        var pieces = new List<string>();
        for (int i = 1; i < ids.Length; i++) pieces.Add(stream.Append(ids.AsSpan(i, 1)));
        pieces.Add(stream.Flush());
        Assert.That(string.Concat(pieces), Is.EqualTo("x 日本 y"));
        Assert.That(pieces, Has.None.Contains('\uFFFD'), "no piece may end inside a multi-byte character");
    }
}
