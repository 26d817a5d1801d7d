using Lookahead.Batching;
using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Tokenization;
using Microsoft.AspNetCore.Http;

namespace Lookahead.Server;

/// <summary>
/// What the endpoints share: the model, its context and batch generator (one sequence per concurrent
/// request, a KV pool shared by all), the admission count behind the queue limit, and the metrics.
/// </summary>
internal sealed class ServingEngine : IDisposable
{
    private readonly InferenceContext _context;
    private readonly TokenTrie _trie;
    private int _inFlight;

    public ServingEngine(LanguageModel model, ServerOptions options, TimeProvider time)
    {
        Model = model;
        Tokenizer = model.Tokenizer ?? throw new LookaheadException(
            $"the model folder '{model.Folder}' has no tokenizer this library reads ({model.TokenizerStatus}): the server speaks text");
        ModelName = options.ModelName ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(model.Folder)));
        ChatPrompt = ChatPrompt.ForModel(model.Folder);
        MaxInFlight = options.MaxConcurrency + options.QueueLimit;
        DefaultMaxTokens = options.DefaultMaxTokens;
        Metrics = new ServerMetrics(time);
        _context = model.CreateContext(BatchGenerator.ContextOptionsFor(options.Context with { KvPoolTokens = options.KvPoolTokens }, options.MaxConcurrency));
        _trie = new TokenTrie(Generator.DefaultTrieOptions(model, new DraftOptions().BranchLength));
        try
        {
            if (options.TrieFile is { } file && File.Exists(file)) _trie.Load(file, model.Config.VocabSize);
            Batch = new BatchGenerator(_context, _trie, new BatchOptions { Time = time });
        }
        catch
        {
            _trie.Dispose();
            _context.Dispose();
            throw;
        }
        TrieFile = options.TrieFile;
    }

    /// <summary>Where the trie is saved (null: nowhere).</summary>
    public string? TrieFile { get; }

    /// <summary>Saves the trie to <see cref="TrieFile"/> between steps; a no-op without one.</summary>
    public Task SaveTrieAsync() => TrieFile is null ? Task.CompletedTask : Batch.SaveTrieAsync(TrieFile);

    public LanguageModel Model { get; }
    public TextTokenizer Tokenizer { get; }
    public string ModelName { get; }
    public ChatPrompt ChatPrompt { get; }
    public BatchGenerator Batch { get; }
    public ServerMetrics Metrics { get; }
    public int MaxInFlight { get; }
    public int DefaultMaxTokens { get; }
    public int ContextLength => _context.ContextLength;

    /// <summary>A request's place among those in flight; null when the queue is full (429).</summary>
    public Admission? Admit()
    {
        if (Interlocked.Increment(ref _inFlight) <= MaxInFlight) return new Admission(this);
        Interlocked.Decrement(ref _inFlight);
        return null;
    }

    /// <summary>Held while a request is in flight; disposing gives the place back.</summary>
    public sealed class Admission(ServingEngine engine) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0) Interlocked.Decrement(ref engine._inFlight);
        }
    }

    /// <summary>The request's prompt as token ids, checked against the vocabulary and the context (400s).</summary>
    public int[] PromptIds(CompletionRequest request)
    {
        int[] ids = request.PromptIds ?? (request.Chat ? ChatPrompt.Encode(Tokenizer, request.PromptText ?? "") : Tokenizer.Encode(request.PromptText ?? ""));
        if (ids.Length == 0) throw ApiError.Invalid(request.Chat ? "messages" : "prompt", "the prompt is empty and the model has no BOS token to start from");
        int vocabulary = Model.Config.VocabSize;
        int bad = Array.FindIndex(ids, id => id >= vocabulary);
        if (bad >= 0) throw ApiError.Invalid("prompt", $"token id {ids[bad]} at prompt position {bad} is outside the vocabulary of {vocabulary}");
        if (ids.Length >= ContextLength)
            throw new ApiError(StatusCodes.Status400BadRequest,
                $"this model's context holds {ContextLength} tokens; the prompt has {ids.Length}, which leaves no room to generate",
                request.Chat ? "messages" : "prompt", "context_length_exceeded");
        return ids;
    }

    /// <summary>The generation options of a request whose prompt has promptTokens tokens.</summary>
    public GenerationOptions Options(CompletionRequest request, int promptTokens)
    {
        int room = ContextLength - promptTokens;
        if (request.MaxTokens is int asked && asked > room)
            throw new ApiError(StatusCodes.Status400BadRequest,
                $"this model's context holds {ContextLength} tokens; you requested {promptTokens + asked} ({promptTokens} in the prompt, {asked} to generate)",
                request.Chat ? "max_completion_tokens" : "max_tokens", "context_length_exceeded");
        return new GenerationOptions
        {
            MaxTokens = request.MaxTokens ?? Math.Min(DefaultMaxTokens, room),
            Mode = request.Mode,
            Drafts = request.Drafts,
            Sampling = request.Sampling,
        };
    }

    public void Dispose()
    {
        Batch.Dispose();
        _trie.Dispose();
        _context.Dispose();
    }
}
