using Lookahead.Decoding;
using Lookahead.Tests.Fixtures;
using Lookahead.Tests.Reference;

namespace Lookahead.Tests;

/// <summary>Greedy token ids from the native path equal the reference's for at least 200 tokens.</summary>
public class GreedyGenerationTests
{
    private static readonly GenerationOptions TwoHundredNoStop = new() { Mode = DecodingMode.Greedy, MaxTokens = 220, StopTokens = [] };

    [Test]
    public void Stories260KGreedyMatchesReference()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        GenerationResult result = new Generator(context).GenerateOnce(prompt, TwoHundredNoStop);
        int[] want = ReferenceModel.LoadF32Folder(TestPaths.Stories260K).Greedy(prompt, TwoHundredNoStop.MaxTokens);
        Assert.That(result.Tokens, Is.EqualTo(want));
        Assert.That(result.Stats.Steps, Is.EqualTo(TwoHundredNoStop.MaxTokens));
    }

    [Test]
    public void Stories260KFromBosTellsTheKnownStory()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext();
        GenerationResult result = new Generator(context).GenerateOnce(model.Tokenizer!.Encode(""), new GenerationOptions { MaxTokens = 40 });
        // The text the original llama2.c prints for this model at temperature 0 (models/stories260K/README.md).
        Assert.That(model.Tokenizer.Decode(result.Tokens), Does.StartWith(
            "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."));
    }

    [TestCaseSource(typeof(NativeForwardTests), nameof(NativeForwardTests.Shapes))]
    public void RandomModelGreedyMatchesReference(RandomModelSpec spec)
    {
        using RandomModel fixture = RandomModel.Create(spec);
        using LanguageModel model = LanguageModel.Load(fixture.Folder);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 512 });
        int[] prompt = [1, 5, 9, 14];
        GenerationResult result = new Generator(context).GenerateOnce(prompt, TwoHundredNoStop);
        int[] want = fixture.CreateReference().Greedy(prompt, TwoHundredNoStop.MaxTokens);
        Assert.That(result.Tokens, Is.EqualTo(want));
        Assert.That(result.Tokens.Distinct().Count(), Is.GreaterThan(3), "a degenerate model would make this test weak");
    }

    [Test]
    public void StopsAtEosMaxTokensAndContextEnd()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { ContextLength = 64 });
        using var generator = new Generator(context);
        int[] prompt = model.Tokenizer!.Encode("");
        GenerationResult full = generator.Generate(prompt, new GenerationOptions { MaxTokens = 500, StopTokens = [] });
        Assert.That(full.FinishReason, Is.EqualTo(FinishReason.ContextFull));
        Assert.That(full.Tokens, Has.Length.EqualTo(64), "a 64-slot context yields 64 tokens from a 1-token prompt");

        int stop = full.Tokens[10];
        GenerationResult stopped = generator.Generate(prompt, new GenerationOptions { MaxTokens = 500, StopTokens = [stop] });
        int first = Array.IndexOf(full.Tokens, stop);
        Assert.That(stopped.FinishReason, Is.EqualTo(FinishReason.EndOfSequence));
        Assert.That(stopped.Tokens, Is.EqualTo(full.Tokens[..(first + 1)]), "stops right after the first stop token");

        GenerationResult limited = generator.Generate(prompt, new GenerationOptions { MaxTokens = 7, StopTokens = [] });
        Assert.That(limited.FinishReason, Is.EqualTo(FinishReason.MaxTokens));
        Assert.That(limited.Tokens, Is.EqualTo(full.Tokens[..7]));

        var streamed = new List<int>();
        GenerationResult again = generator.Generate(prompt, new GenerationOptions { MaxTokens = 30, StopTokens = [] },
            tokens => streamed.AddRange(tokens.ToArray()));
        Assert.That(streamed, Is.EqualTo(again.Tokens), "the callback sees every token once, in order");
    }

    [Test]
    public void ModelEosStopsAStory()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext();
        GenerationResult result = new Generator(context).GenerateOnce(model.Tokenizer!.Encode(""), new GenerationOptions { MaxTokens = 500 });
        if (result.FinishReason == FinishReason.EndOfSequence)
            Assert.That(result.Tokens[^1], Is.EqualTo(2));
        else
            Assert.That(result.Tokens, Does.Not.Contain(2));
    }
}
