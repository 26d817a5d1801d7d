using Lookahead.Decoding;
using Lookahead.Tokenization;

namespace Lookahead.Tests.Fixtures;

/// <summary>The text oracle of the serving tests: what the single-sequence Generator emits alone, as text.</summary>
internal static class TextOracle
{
    /// <summary>A continuation's text: the decoded prompt and continuation, less the decoded prompt (not the
    /// streaming detokenizer the code under test uses).</summary>
    public static string ContinuationText(this TextTokenizer tokenizer, int[] prompt, int[] tokens)
    {
        string before = tokenizer.Decode(prompt);
        string all = tokenizer.Decode([.. prompt, .. tokens]);
        Assert.That(all, Does.StartWith(before));
        return all[before.Length..];
    }

    /// <summary>The Generator alone on the prompt text's tokens (a fresh CPU context of 512 tokens), as text.</summary>
    public static string Alone(LanguageModel model, string prompt, GenerationOptions options)
    {
        int[] ids = model.Tokenizer!.Encode(prompt);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 });
        return model.Tokenizer.ContinuationText(ids, new Generator(context).GenerateOnce(ids, options).Tokens);
    }
}
