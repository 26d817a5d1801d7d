using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Tests.Fixtures;

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
        using var generator = new Generator(context);
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
        // Every member that reads or changes the trie's nodes.
        string file = Path.Combine(TestContext.CurrentContext.WorkDirectory, "disposed.trie");
        var uses = new (string Name, Action Use)[]
        {
            ("AppendOutput", () => trie.AppendOutput([4])),
            ("AddOutputCorpus", () => trie.AddOutputCorpus([4, 5])),
            ("BeginRequest", () => trie.BeginRequest([1, 2])),
            ("EndRequest", () => trie.EndRequest()),
            ("Clear", () => trie.Clear()),
            ("Squeeze", () => trie.Squeeze()),
            ("Save", () => trie.Save(file)),
            ("Load", () => trie.Load(file, 100)),
            ("NodeCount", () => _ = trie.NodeCount),
            ("BytesAllocated", () => _ = trie.BytesAllocated),
            ("Find", () => trie.Find([1])),
            ("TokenOf", () => trie.TokenOf(node)),
            ("FirstChild", () => trie.FirstChild(node)),
            ("NextSibling", () => trie.NextSibling(node)),
            ("Frequency", () => trie.Frequency(node, FrequencySource.Mix)),
        };
        foreach ((string name, Action use) in uses)
            Assert.Throws<ObjectDisposedException>(() => use(), name);
        Assert.That(File.Exists(file), Is.False, "Save after Dispose writes nothing");

        var other = LanguageModel.Load(TestPaths.Stories260K);
        other.Dispose();
        Assert.Throws<ObjectDisposedException>(() => other.CreateContext());
    }

    // Argument errors are ArgumentExceptions naming the argument (LookaheadException is for model, file and
    // native errors), and a refused generation leaves the context as it was.
    [Test]
    public void BadGenerationArgumentsAreArgumentExceptions()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { Backend = Backend.Cpu, ContextLength = 16 });
        using var generator = new Generator(context);
        int vocab = model.Config.VocabSize;
        var cases = new (int[] Prompt, GenerationOptions Options, string Parameter, string Message)[]
        {
            ([], Short, "prompt", "the prompt is empty"),
            ([1, vocab], Short, "prompt", $"prompt token id {vocab} at position 1 is out of range"),
            ([1, -3], Short, "prompt", "prompt token id -3 at position 1"),
            (Enumerable.Repeat(1, 17).ToArray(), Short, "prompt", "the prompt has 17 tokens but the context holds only 16"),
            ([1], Short with { MaxTokens = -1 }, "options", "max tokens must be at least 0"),
            ([1], Short with { Drafts = new DraftOptions { DecodingLength = 0 } }, "DecodingLength", "decoding length must be at least 1"),
            ([1], Short with { Sampling = new SamplingOptions { TopK = -1 } }, "TopK", "top-k must be >= 0"),
        };
        foreach ((int[] prompt, GenerationOptions options, string parameter, string message) in cases)
        {
            var error = Assert.Throws<ArgumentException>(() => generator.Generate(prompt, options), message);
            Assert.That(error!.ParamName, Is.EqualTo(parameter), message);
            Assert.That(error.Message, Does.StartWith(message));
        }
        Assert.That(context.CommittedTokens, Is.Zero);
        var tooLong = Assert.Throws<ArgumentException>(() => model.CreateContext(new ContextOptions { ContextLength = model.Config.MaxPositionEmbeddings + 1 }));
        Assert.That(tooLong!.Message, Does.Contain("exceeds the model's max_position_embeddings"));
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
        int[] before = new Generator(context).GenerateOnce(prompt, Short).Tokens;
        model.Dispose();
        Assert.That(new Generator(context).GenerateOnce(prompt, Short).Tokens, Is.EqualTo(before));
    }

    [Test]
    public void AContextDrivenFromTwoThreadsAtOnceRefusesTheSecond()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        using InferenceContext context = model.CreateContext(new ContextOptions { ContextLength = 128 });
        int[] prompt = model.Tokenizer!.Encode("Once upon a time");
        int[] alone = new Generator(context).GenerateOnce(prompt, Short).Tokens;

        // Thread A pauses inside its generation (in the token callback); thread B then uses the context.
        using var paused = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        using var first = new Generator(context);
        Task<int[]> a = Task.Run(() => first.Generate(prompt, Short, _ =>
        {
            if (paused.IsSet) return;
            paused.Set();
            resume.Wait();
        }).Tokens);
        Assert.That(paused.Wait(TimeSpan.FromSeconds(30)), Is.True);
        Exception? fromB = Task.Run(() => Record(() => new Generator(context).GenerateOnce(prompt, Short))).Result;
        Exception? rawB = Task.Run(() => Record(() => context.DecodeGreedy([1], [], new int[1]))).Result;
        Exception? disposeB = Task.Run(() => Record(context.Dispose)).Result;
        resume.Set();
        Assert.That(a.Result, Is.EqualTo(alone), "the first generation is untouched");
        foreach (Exception? error in new[] { fromB, rawB, disposeB })
        {
            Assert.That(error, Is.TypeOf<InvalidOperationException>());
            Assert.That(error!.Message, Does.Contain("in use by another thread"));
        }
        Assert.That(new Generator(context).GenerateOnce(prompt, Short).Tokens, Is.EqualTo(alone), "the context serves again once free");
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
        int[] greedy = new Generator(contextB).GenerateOnce(prompt, Short with { Mode = DecodingMode.Greedy }).Tokens;

        using var paused = new ManualResetEventSlim();
        using var resume = new ManualResetEventSlim();
        Task<int[]> a = Task.Run(() => new Generator(contextA, trie).GenerateOnce(prompt, options, _ =>
        {
            if (paused.IsSet) return;
            paused.Set();
            resume.Wait();
        }).Tokens);
        Assert.That(paused.Wait(TimeSpan.FromSeconds(30)), Is.True);
        Exception? fromB = Record(() => new Generator(contextB, trie).GenerateOnce(prompt, options));
        resume.Set();
        Assert.That(a.Result, Is.EqualTo(greedy));
        Assert.That(fromB, Is.TypeOf<InvalidOperationException>());
        Assert.That(fromB!.Message, Does.Contain("already serving a request"));
        Assert.That(new Generator(contextB, trie).GenerateOnce(prompt, options).Tokens, Is.EqualTo(greedy), "the trie serves again once free");
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
