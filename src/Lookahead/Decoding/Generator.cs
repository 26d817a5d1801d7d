using System.Diagnostics;
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
    private DraftTree? _draft;
    private int[] _emitted = new int[1];

    /// <summary>Creates a generator over a context (reset at the start of each generation). The trie
    /// collects n-grams across generations; by default a new one with the model's stop tokens.</summary>
    public Generator(InferenceContext context, TokenTrie? trie = null)
    {
        _context = context;
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
    public GenerationResult Generate(ReadOnlySpan<int> prompt, GenerationOptions options, TokensCallback? onTokens = null,
        CancellationToken cancellation = default)
    {
        // The whole generation owns the context: another thread's calls fail instead of interleaving.
        using InferenceContext.Lease lease = _context.Enter();
        Validate(prompt, options);
        IReadOnlyList<int> stopTokens = options.StopTokens ?? _context.Model.Config.EosTokenIds;
        bool lookahead = options.Mode == DecodingMode.Lookahead && options.Drafts.DecodingLength > 1;
        bool sampled = !options.Sampling.IsGreedy;
        ulong seed = options.Sampling.Seed ?? (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue);
        PrepareBuffers(options);

        _context.Truncate(0);
        long prefillStart = Stopwatch.GetTimestamp();
        _context.Prefill(prompt[..^1]);
        double prefillSeconds = Stopwatch.GetElapsedTime(prefillStart).TotalSeconds;

        // history = prompt + generated tokens: the query context of each draft.
        var history = new int[prompt.Length + options.MaxTokens];
        prompt.CopyTo(history);
        int historyLength = prompt.Length;
        int generated = 0, steps = 0;
        long drafted = 0, accepted = 0, draftTicks = 0, forwardTicks = 0;
        FinishReason finish = FinishReason.MaxTokens;
        DraftTree draft = _draft!;
        if (lookahead) Trie.BeginRequest(prompt);
        try
        {
            bool deviceTiming = _context.Profiling == ProfilingMode.Device;
            TimeSpan deviceStart = deviceTiming ? _context.DeviceTime : TimeSpan.Zero;
            long decodeStart = Stopwatch.GetTimestamp();
            while (generated < options.MaxTokens)
            {
                cancellation.ThrowIfCancellationRequested();
                int room = _context.ContextLength - _context.CommittedTokens;  // a draft also fits one forward batch
                if (room <= 0)
                {
                    finish = FinishReason.ContextFull;
                    break;
                }
                long stepStart = Stopwatch.GetTimestamp();
                if (lookahead)
                {
                    _builder!.Build(Trie, history.AsSpan(0, historyLength), draft,
                        options.Drafts.Adaptive ? _sizer.Limit : int.MaxValue);
                    if (options.Drafts.Adaptive) _sizer.Choose(draft);
                    draft.Truncate(Math.Min(room, _context.BatchSize));
                }
                else
                {
                    draft.Reset(history[historyLength - 1]);
                }

                long forwardStart = Stopwatch.GetTimestamp();
                int count = sampled
                    ? _context.DecodeSample(draft.Tokens, draft.Parents, options.Sampling, seed, prompt.Length, generated, _emitted)
                    : _context.DecodeGreedy(draft.Tokens, draft.Parents, _emitted);
                long forwardEnd = Stopwatch.GetTimestamp();
                draftTicks += forwardStart - stepStart;
                forwardTicks += forwardEnd - forwardStart;
                if (lookahead && options.Drafts.Adaptive)
                    _sizer.Observe(draft.Count, (double)(forwardEnd - forwardStart) / Stopwatch.Frequency, count - 1);
                steps++;
                drafted += draft.Count - 1;
                accepted += count - 1;
                int taken = Accept(_emitted.AsSpan(0, count), history, ref historyLength, ref generated, stopTokens,
                    options.MaxTokens, out bool stopped);
                ReadOnlySpan<int> emitted = history.AsSpan(historyLength - taken, taken);
                if (lookahead) Trie.AppendOutput(emitted);
                onTokens?.Invoke(emitted);
                if (stopped)
                {
                    finish = FinishReason.EndOfSequence;
                    break;
                }
            }
            double decodeSeconds = Stopwatch.GetElapsedTime(decodeStart).TotalSeconds;
            double deviceSeconds = deviceTiming ? (_context.DeviceTime - deviceStart).TotalSeconds : 0;
            var stats = new GenerationStats
            {
                PromptTokens = prompt.Length,
                GeneratedTokens = generated,
                Steps = steps,
                DraftedTokens = drafted,
                AcceptedTokens = accepted,
                PrefillSeconds = prefillSeconds,
                DecodeSeconds = decodeSeconds,
                DraftSeconds = (double)draftTicks / Stopwatch.Frequency,
                ForwardSeconds = (double)forwardTicks / Stopwatch.Frequency,
                DeviceSeconds = deviceSeconds,
            };
            return new GenerationResult(history[prompt.Length..historyLength], finish, stats) { Seed = sampled ? seed : null };
        }
        finally
        {
            if (lookahead) Trie.EndRequest();
        }
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

    // Appends a step's tokens exactly as one-at-a-time greedy decoding would: up to and including a stop
    // token, and no further than maxTokens. Returns how many were taken.
    private static int Accept(ReadOnlySpan<int> step, int[] history, ref int historyLength, ref int generated,
        IReadOnlyList<int> stopTokens, int maxTokens, out bool stopped)
    {
        stopped = false;
        int taken = 0;
        foreach (int token in step)
        {
            if (generated == maxTokens) break;
            history[historyLength++] = token;
            generated++;
            taken++;
            if (IsStop(token, stopTokens))
            {
                stopped = true;
                break;
            }
        }
        return taken;
    }

    private static bool IsStop(int token, IReadOnlyList<int> stopTokens)
    {
        for (int i = 0; i < stopTokens.Count; i++)
        {
            if (stopTokens[i] == token) return true;
        }
        return false;
    }

    private void Validate(ReadOnlySpan<int> prompt, GenerationOptions options)
    {
        if (options.MaxTokens < 0)
            throw new LookaheadException($"max tokens must be at least 0, got {options.MaxTokens}");
        options.Drafts.Validate();
        options.Sampling.Validate();
        if (prompt.IsEmpty)
            throw new LookaheadException("the prompt is empty: it needs at least one token (the model has no BOS token to start from)");
        int vocab = _context.Model.Config.VocabSize;
        for (int i = 0; i < prompt.Length; i++)
        {
            if ((uint)prompt[i] >= (uint)vocab)
                throw new LookaheadException($"prompt token id {prompt[i]} at position {i} is out of range 0..{vocab - 1}");
        }
        if (prompt.Length > _context.ContextLength)
            throw new LookaheadException(
                $"the prompt has {prompt.Length} tokens but the context holds only {_context.ContextLength}");
    }
}
