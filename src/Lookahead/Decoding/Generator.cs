using Lookahead.Drafting;

namespace Lookahead.Decoding;

/// <summary>
/// Generates continuations on one context, greedily or by lookahead. Each step's root is the last emitted
/// token (not yet in the KV cache); the prompt's last token is the first root, so the prompt minus that
/// token is prefilled. In lookahead mode a draft tree from the trie hangs below the root, one forward
/// pass verifies it, and the accepted tokens plus the bonus token are emitted: exactly what plain decoding
/// (greedy, or sampling with the same seed) emits, in fewer steps.
/// </summary>
public sealed class Generator : IDisposable
{
    private readonly InferenceContext _context;
    private readonly bool _ownsTrie;
    private DraftBuilder? _builder;
    private readonly DraftSizer _sizer = new();
    private readonly TimeProvider _time;
    private DraftTree? _draft;
    private int[] _emitted = new int[1];

    /// <summary>Creates a generator over a context (reset at the start of each generation). The trie
    /// collects n-grams across generations; by default a new one with the model's stop tokens. time is the
    /// clock of the statistics and of the adaptive sizer's step costs (default: the system's).</summary>
    public Generator(InferenceContext context, TokenTrie? trie = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        _context = context;
        _time = time ?? TimeProvider.System;
        _ownsTrie = trie is null;
        Trie = trie ?? new TokenTrie(DefaultTrieOptions(context.Model, new DraftOptions().BranchLength));
    }

    /// <summary>Frees the trie if this generator created it.</summary>
    public void Dispose()
    {
        if (_ownsTrie) Trie.Dispose();
    }

    /// <summary>The context this generator decodes on.</summary>
    public InferenceContext Context => _context;

    /// <summary>The adaptive draft sizer; what it learns persists across generations.</summary>
    public DraftSizer Sizer => _sizer;

    /// <summary>The n-gram trie lookahead drafts from; it persists across generations.</summary>
    public TokenTrie Trie { get; }

    /// <summary>Trie settings for a model: n-grams of branchLength + 1 tokens, the tokenizer's
    /// punctuation and whitespace pieces as stop tokens.</summary>
    public static TrieOptions DefaultTrieOptions(LanguageModel model, int branchLength) => new()
    {
        WindowLength = branchLength + 1,
        StopTokens = model.Tokenizer?.StopTokenIds() ?? new HashSet<int>(),
    };

    /// <summary>Runs one generation from a fresh context. onTokens sees tokens as they are produced.</summary>
    /// <exception cref="ArgumentException">The prompt is empty, longer than the context or holds a token
    /// outside the vocabulary, or an option is out of range (the message names it).</exception>
    /// <exception cref="LookaheadException">A native step failed (e.g. non-finite logits).</exception>
    /// <exception cref="OperationCanceledException">cancellation fired; it is checked before each step.</exception>
    /// <exception cref="InvalidOperationException">The context or the trie is in use by another generation.</exception>
    public GenerationResult Generate(ReadOnlySpan<int> prompt, GenerationOptions options, TokensCallback? onTokens = null,
        CancellationToken cancellation = default)
    {
        // The whole generation owns the context: another thread's calls fail instead of interleaving.
        using InferenceContext.Lease lease = _context.Enter();
        ValidateRequest(_context, prompt, options);
        PrepareBuffers(options);
        bool lookahead = options.Mode == DecodingMode.Lookahead && options.Drafts.DecodingLength > 1;
        bool adaptive = lookahead && options.Drafts.Adaptive;
        ulong? seed = options.Sampling.IsGreedy ? null : options.Sampling.Seed ?? (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue);
        var sequence = new GeneratedSequence(prompt, options.MaxTokens, options.StopTokens ?? _context.Model.Config.EosTokenIds);
        var statistics = new StepStatistics(_time);

        _context.Truncate(0);
        long prefillStart = statistics.Now;
        _context.Prefill(prompt[..^1], cancellation);
        statistics.EndPrefill(prefillStart);

        if (lookahead) Trie.BeginRequest(prompt);
        try
        {
            TimeSpan deviceStart = _context.Profiling == ProfilingMode.Device ? _context.DeviceTime : TimeSpan.Zero;
            FinishReason finish = FinishReason.MaxTokens;
            statistics.StartDecode();
            while (!sequence.Full)
            {
                cancellation.ThrowIfCancellationRequested();
                int room = _context.ContextLength - _context.CommittedTokens;  // a draft also fits one forward batch
                if (room <= 0)
                {
                    finish = FinishReason.ContextFull;
                    break;
                }
                long stepStart = statistics.Now;
                DraftTree draft = NextDraft(sequence, options.Drafts, lookahead, Math.Min(room, _context.BatchSize));
                long forwardStart = statistics.Now;
                int count = seed is ulong s
                    ? _context.DecodeSample(draft.Tokens, draft.Parents, options.Sampling, s, prompt.Length, sequence.Generated, _emitted)
                    : _context.DecodeGreedy(draft.Tokens, draft.Parents, _emitted);
                long forwardEnd = statistics.Now;
                statistics.AddStep(stepStart, forwardStart, forwardEnd, draft.Count, count);
                if (adaptive) _sizer.Observe(draft.Count, statistics.Elapsed(forwardStart, forwardEnd).TotalSeconds, count - 1);

                ReadOnlySpan<int> emitted = sequence.Append(_emitted.AsSpan(0, count), out bool stopped);
                if (lookahead) Trie.AppendOutput(emitted);
                onTokens?.Invoke(emitted);
                if (stopped)
                {
                    finish = FinishReason.EndOfSequence;
                    break;
                }
            }
            statistics.EndDecode();
            TimeSpan deviceTime = _context.Profiling == ProfilingMode.Device ? _context.DeviceTime - deviceStart : TimeSpan.Zero;
            GenerationStats stats = statistics.Result(prompt.Length, sequence.Generated, deviceTime);
            return new GenerationResult(sequence.Output(), finish, stats) { Seed = seed };
        }
        finally
        {
            if (lookahead) Trie.EndRequest();
        }
    }

    /// <summary>Runs one generation on a worker thread (see <see cref="Generate"/>).</summary>
    /// <exception cref="ArgumentException">As <see cref="Generate"/>, thrown here, before any work.</exception>
    public Task<GenerationResult> GenerateAsync(int[] prompt, GenerationOptions options, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ValidateRequest(_context, prompt, options);
        return Task.Run(() => Generate(prompt, options, null, cancellation), cancellation);
    }

    /// <summary>
    /// Streams one generation as it runs on a worker thread: an update per step with its tokens and, when the
    /// model has a tokenizer, the text they complete; the last update carries the result (and any text held
    /// back until then). Cancellation (or leaving the enumeration) stops it before the next prefill chunk or
    /// step; the enumeration then throws OperationCanceledException.
    /// </summary>
    /// <exception cref="ArgumentException">As <see cref="Generate"/>, thrown here, before any work.</exception>
    public IAsyncEnumerable<GenerationUpdate> GenerateStreamingAsync(int[] prompt, GenerationOptions options, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ValidateRequest(_context, prompt, options);
        return Stream(prompt, options, cancellation);
    }

    private async IAsyncEnumerable<GenerationUpdate> Stream(int[] prompt, GenerationOptions options,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellation)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var updates = System.Threading.Channels.Channel.CreateUnbounded<GenerationUpdate>(
            new System.Threading.Channels.UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        Tokenization.StreamingDetokenizer? text = _context.Model.Tokenizer?.CreateStream(prompt);
        Task run = Task.Run(() =>
        {
            try
            {
                GenerationResult result = Generate(prompt, options,
                    tokens => updates.Writer.TryWrite(new GenerationUpdate(tokens.ToArray(), text?.Append(tokens) ?? "", null)), stop.Token);
                updates.Writer.TryWrite(new GenerationUpdate([], text?.Flush() ?? "", result));
                updates.Writer.TryComplete();
            }
            catch (Exception e)
            {
                updates.Writer.TryComplete(e);
            }
        }, CancellationToken.None);
        try
        {
            await foreach (GenerationUpdate update in updates.Reader.ReadAllAsync(CancellationToken.None).ConfigureAwait(false))
            {
                cancellation.ThrowIfCancellationRequested();  // updates queued before it fired are not delivered
                yield return update;
            }
        }
        finally
        {
            // Leaving early stops the generation; either way it has ended before the context is free again.
            stop.Cancel();
            await run.ConfigureAwait(false);
        }
    }

    // The step's tree: a draft from the trie below the last token (sized by the sizer when adaptive, at
    // most room nodes), or that token alone for plain decoding.
    private DraftTree NextDraft(GeneratedSequence sequence, DraftOptions drafts, bool lookahead, int room)
    {
        DraftTree draft = _draft!;
        if (!lookahead)
        {
            draft.Reset(sequence.Last);
            return draft;
        }
        _builder!.Build(Trie, sequence.History, draft, drafts.Adaptive ? _sizer.Limit : int.MaxValue);
        if (drafts.Adaptive) _sizer.Choose(draft);
        draft.Truncate(room);
        return draft;
    }

    private void PrepareBuffers(GenerationOptions options)
    {
        if (_builder is null || _builder.Options != options.Drafts)
        {
            _builder = new DraftBuilder(options.Drafts);
            _draft = new DraftTree(options.Drafts.DecodingLength);
            _emitted = new int[options.Drafts.DecodingLength];
        }
    }

    // The checks every entry point makes before a request touches the context (the batch generator too).
    internal static void ValidateRequest(InferenceContext context, ReadOnlySpan<int> prompt, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxTokens < 0)
            throw new ArgumentException($"max tokens must be at least 0, got {options.MaxTokens}", nameof(options));
        options.Drafts.Validate();
        options.Sampling.Validate();
        if (prompt.IsEmpty)
            throw new ArgumentException("the prompt is empty: it needs at least one token (the model has no BOS token to start from)", nameof(prompt));
        int vocab = context.Model.Config.VocabSize;
        for (int i = 0; i < prompt.Length; i++)
        {
            if ((uint)prompt[i] >= (uint)vocab)
                throw new ArgumentException($"prompt token id {prompt[i]} at position {i} is out of range 0..{vocab - 1}", nameof(prompt));
        }
        if (prompt.Length > context.ContextLength)
            throw new ArgumentException(
                $"the prompt has {prompt.Length} tokens but the context holds only {context.ContextLength}", nameof(prompt));
    }
}
