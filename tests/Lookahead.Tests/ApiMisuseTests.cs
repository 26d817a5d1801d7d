using Lookahead.Decoding;
using Lookahead.Drafting;

namespace Lookahead.Tests;

/// <summary>Misuse of the managed API: each case is a documented exception, never a native crash.</summary>
public class ApiMisuseTests
{
    private static readonly GenerationOptions Short = new() { MaxTokens = 24, StopTokens = [] };

    [Test]
    public void UseAfterDisposeThrowsObjectDisposed()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        InferenceContext context = model.CreateContext(new ContextOptions { ContextLength = 64 });
        var generator = new Generator(context);
        int[] prompt = model.Tokenizer!.Encode("Once");
        context.Dispose();
        context.Dispose();  // twice is harmless
        Assert.Throws<ObjectDisposedException>(() => generator.Generate(prompt, Short));
        Assert.Throws<ObjectDisposedException>(() => context.Prefill(prompt));
        Assert.Throws<ObjectDisposedException>(() => context.DecodeGreedy([1], [], new int[1]));
        Assert.Throws<ObjectDisposedException>(() => _ = context.CommittedTokens);

        var trie = new TokenTrie();
        trie.AppendOutput([1, 2, 3]);
        int node = trie.Find([1, 2]);
        trie.Dispose();
        trie.Dispose();
        Assert.Throws<ObjectDisposedException>(() => trie.AppendOutput([4]));
        Assert.Throws<ObjectDisposedException>(() => trie.TokenOf(node));
        Assert.Throws<ObjectDisposedException>(() => trie.Find([1]));

        var other = LanguageModel.Load(TestPaths.Stories260K);
        other.Dispose();
        Assert.Throws<ObjectDisposedException>(() => other.CreateContext());
    }

    [Test]
    public void TrieNodeIndicesAreChecked()
    {
        using var trie = new TokenTrie();
        trie.AppendOutput([1, 2, 3]);
        Assert.Throws<ArgumentOutOfRangeException>(() => trie.TokenOf(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => trie.FirstChild(1_000_000));
        Assert.Throws<ArgumentOutOfRangeException>(() => trie.Frequency(int.MaxValue, FrequencySource.Mix));
    }

    [Test]
    public void AContextKeepsItsModelAliveAfterTheModelIsDisposed()
    {
        LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        using InferenceContext context = model.CreateContext(new ContextOptions { ContextLength = 64 });
        int[] before = new Generator(context).Generate(prompt, Short).Tokens;
        model.Dispose();
        Assert.That(new Generator(context).Generate(prompt, Short).Tokens, Is.EqualTo(before));
    }

    [Test]
    public void AContextDrivenFromTwoThreadsAtOnceRefusesTheSecond()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { ContextLength = 128 });
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        int[] alone = new Generator(context).Generate(prompt, Short).Tokens;

        // Thread A pauses inside its generation (in the token callback); thread B then uses the context.
        using var paused = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        var first = new Generator(context);
        Task<int[]> a = Task.Run(() => first.Generate(prompt, Short, _ =>
        {
            if (paused.IsSet) return;
            paused.Set();
            resume.Wait();
        }).Tokens);
        Assert.That(paused.Wait(TimeSpan.FromSeconds(30)), Is.True);
        Exception? fromB = Task.Run(() => Record(() => new Generator(context).Generate(prompt, Short))).Result;
        Exception? rawB = Task.Run(() => Record(() => context.DecodeGreedy([1], [], new int[1]))).Result;
        Exception? disposeB = Task.Run(() => Record(context.Dispose)).Result;
        resume.Set();
        Assert.That(a.Result, Is.EqualTo(alone), "the first generation is untouched");
        foreach (Exception? error in new[] { fromB, rawB, disposeB })
        {
            Assert.That(error, Is.TypeOf<InvalidOperationException>());
            Assert.That(error!.Message, Does.Contain("in use by another thread"));
        }
        Assert.That(new Generator(context).Generate(prompt, Short).Tokens, Is.EqualTo(alone), "the context serves again once free");
    }

    [Test]
    public void ATrieSharedByTwoGenerationsAtOnceRefusesTheSecond()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext contextA = model.CreateContext(new ContextOptions { ContextLength = 128 });
        using InferenceContext contextB = model.CreateContext(new ContextOptions { ContextLength = 128 });
        using var trie = new TokenTrie(Generator.DefaultTrieOptions(model, new DraftOptions().BranchLength));
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        var options = Short with { Mode = DecodingMode.Lookahead };
        int[] greedy = new Generator(contextB).Generate(prompt, Short with { Mode = DecodingMode.Greedy }).Tokens;

        using var paused = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        Task<int[]> a = Task.Run(() => new Generator(contextA, trie).Generate(prompt, options, _ =>
        {
            if (paused.IsSet) return;
            paused.Set();
            resume.Wait();
        }).Tokens);
        Assert.That(paused.Wait(TimeSpan.FromSeconds(30)), Is.True);
        Exception? fromB = Record(() => new Generator(contextB, trie).Generate(prompt, options));
        resume.Set();
        Assert.That(a.Result, Is.EqualTo(greedy));
        Assert.That(fromB, Is.TypeOf<InvalidOperationException>());
        Assert.That(fromB!.Message, Does.Contain("already serving a request"));
        Assert.That(new Generator(contextB, trie).Generate(prompt, options).Tokens, Is.EqualTo(greedy), "the trie serves again once free");
    }

    private static Exception? Record(Action action)
    {
        try
        {
            action();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }
}
