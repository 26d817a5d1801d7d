using System.Diagnostics;

namespace Lookahead.Decoding;

/// <summary>
/// Generates continuations on one context. Each step's root is the last emitted token (not yet in the
/// KV cache); the prompt's last token is the first root, so the prompt minus that token is prefilled.
/// </summary>
public sealed class Generator
{
    private readonly InferenceContext _context;

    /// <summary>Creates a generator over a context (which it resets at the start of each generation).</summary>
    public Generator(InferenceContext context) => _context = context;

    /// <summary>Runs one generation from a fresh context. onTokens sees tokens as they are produced.</summary>
    public GenerationResult Generate(ReadOnlySpan<int> prompt, GenerationOptions options, TokensCallback? onTokens = null,
        CancellationToken cancellation = default)
    {
        Validate(prompt, options);
        IReadOnlyList<int> stopTokens = options.StopTokens ?? _context.Model.Config.EosTokenIds;

        _context.Truncate(0);
        long prefillStart = Stopwatch.GetTimestamp();
        _context.Prefill(prompt[..^1]);
        double prefillSeconds = Stopwatch.GetElapsedTime(prefillStart).TotalSeconds;

        var tokens = new int[options.MaxTokens];
        int generated = 0, steps = 0;
        FinishReason finish = FinishReason.MaxTokens;
        Span<int> root = stackalloc int[1];
        Span<int> emitted = stackalloc int[1];
        root[0] = prompt[^1];

        long decodeStart = Stopwatch.GetTimestamp();
        while (generated < options.MaxTokens)
        {
            cancellation.ThrowIfCancellationRequested();
            if (_context.CommittedTokens >= _context.ContextLength)
            {
                finish = FinishReason.ContextFull;
                break;
            }
            int count = _context.DecodeGreedy(root, default, emitted);
            steps++;
            int accepted = Accept(emitted[..count], tokens, ref generated, stopTokens, options.MaxTokens, out bool stopped);
            onTokens?.Invoke(tokens.AsSpan(generated - accepted, accepted));
            if (stopped)
            {
                finish = FinishReason.EndOfSequence;
                break;
            }
            root[0] = tokens[generated - 1];
        }
        double decodeSeconds = Stopwatch.GetElapsedTime(decodeStart).TotalSeconds;

        var stats = new GenerationStats
        {
            PromptTokens = prompt.Length,
            GeneratedTokens = generated,
            Steps = steps,
            PrefillSeconds = prefillSeconds,
            DecodeSeconds = decodeSeconds,
        };
        return new GenerationResult(tokens[..generated], finish, stats);
    }

    // Appends a step's tokens exactly as one-at-a-time greedy decoding would: up to and including a stop
    // token, and no further than maxTokens. Returns how many were taken.
    private static int Accept(ReadOnlySpan<int> step, int[] tokens, ref int generated, IReadOnlyList<int> stopTokens,
        int maxTokens, out bool stopped)
    {
        stopped = false;
        int taken = 0;
        foreach (int token in step)
        {
            if (generated == maxTokens) break;
            tokens[generated++] = token;
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
