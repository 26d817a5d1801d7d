using Lookahead.Decoding;
using Lookahead.Tests.Fixtures;

namespace Lookahead.Tests;

/// <summary>The asynchronous surface: streamed updates equal the synchronous generation, and cancellation ends
/// a generation (or a load) cleanly, leaving the context usable.</summary>
public class AsyncApiTests
{
    [Test]
    public async Task StreamedUpdatesEqualTheSynchronousGenerationTokensAndText()
    {
        using LanguageModel model = await LanguageModel.LoadAsync(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 });
        int[] prompt = model.Tokenizer!.Encode(LookaheadLosslessTests.BenchPrompts(3)[2]);
        var options = new GenerationOptions { MaxTokens = 60, Sampling = new SamplingOptions { Temperature = 0.7f, Seed = 3 } };
        int[] expected = new Generator(context).GenerateOnce(prompt, options).Tokens;

        using var generator = new Generator(context);
        var tokens = new List<int>();
        var text = new System.Text.StringBuilder();
        GenerationResult? result = null;
        await foreach (GenerationUpdate update in generator.GenerateStreamingAsync(prompt, options))
        {
            tokens.AddRange(update.Tokens);
            text.Append(update.Text);
            result ??= update.Result;
        }
        Assert.That(tokens, Is.EqualTo(expected));
        Assert.That(result!.Tokens, Is.EqualTo(expected));
        Assert.That(text.ToString(), Is.EqualTo(model.Tokenizer.ContinuationText(prompt, expected)));

        GenerationResult awaited = await generator.GenerateAsync(prompt, options);
        Assert.That(awaited.Tokens, Is.EqualTo(expected));
    }

    [Test]
    public async Task CancellingAStreamEndsItAndTheContextServesTheNextGeneration()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 512, Threads = 1 });
        using var generator = new Generator(context);
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        var options = new GenerationOptions { MaxTokens = 400, StopTokens = [] };
        using var cancel = new CancellationTokenSource();
        int updates = 0;
        await Assert.CatchAsync<OperationCanceledException>(async () =>
        {
            await foreach (GenerationUpdate update in generator.GenerateStreamingAsync(prompt, options, cancel.Token))
                if (++updates == 2) cancel.Cancel();
        });
        Assert.That(updates, Is.EqualTo(2), "nothing is delivered after cancellation");

        // Leaving the enumeration early also stops the generation; then the context is free again.
        await foreach (GenerationUpdate update in generator.GenerateStreamingAsync(prompt, options)) break;
        GenerationResult next = generator.Generate(prompt, options with { MaxTokens = 5 });
        Assert.That(next.Tokens, Has.Length.EqualTo(5));

        await Assert.CatchAsync<OperationCanceledException>(() => generator.GenerateAsync(prompt, options, new CancellationToken(true)));
        Assert.Throws<ArgumentException>(() => generator.GenerateStreamingAsync([], options), "a bad request fails at the call, not at the first update");
    }

    [Test]
    public async Task ACancelledLoadThrowsOperationCanceled()
    {
        await Assert.CatchAsync<OperationCanceledException>(() => LanguageModel.LoadAsync(TestPaths.Stories260K, null, new CancellationToken(true)));
    }
}
