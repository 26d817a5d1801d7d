using System.Runtime.InteropServices.Marshalling;
using Lookahead.Interop;

namespace Lookahead.Decoding;

/// <summary>
/// One sequence's native state: the KV cache of committed tokens and the pending nodes of the last
/// forward pass. Not thread-safe. See native/include/lookahead.h for the decoding model: node 0 of a
/// batch is the root, other nodes name an earlier parent, and a node attends to the committed tokens
/// and its own ancestors.
/// </summary>
public sealed unsafe class InferenceContext : IDisposable
{
    private readonly ContextHandle _handle;
    private ProfilingMode _profiling;
    private int _ownerThread;  // managed thread id inside a call or a generation, 0 when free
    private int _ownerDepth;

    internal InferenceContext(LanguageModel model, ContextHandle handle, int maxSequences)
    {
        Model = model;
        MaxSequences = maxSequences;
        _handle = handle;
        LkContextInfo info = Info();
        Backend = (Backend)info.Backend;
        ContextLength = info.NCtx;
        BatchSize = info.NBatch;
        Threads = info.NThreads;
        CudaDevice = info.CudaDevice;
        CpuKernel = (CpuKernel)info.CpuKernel;
        CudaMatmul = (CudaMatmulKernel)info.CudaMatmul;
        CudaAttention = (CudaAttentionKernel)info.CudaAttention;
        CudaGraphs = info.CudaGraphs == NativeConstants.CudaGraphsOn;
        KvCacheType = (KvCacheType)info.KvType;
    }

    /// <summary>The model this context runs.</summary>
    public LanguageModel Model { get; }
    /// <summary>The backend chosen at creation (never Auto).</summary>
    public Backend Backend { get; }
    /// <summary>Sequences this context holds at once (<see cref="ContextOptions.MaxSequences"/>).</summary>
    public int MaxSequences { get; }
    /// <summary>KV cache capacity in tokens (per sequence).</summary>
    public int ContextLength { get; }
    /// <summary>Most nodes one forward pass holds.</summary>
    public int BatchSize { get; }
    /// <summary>CPU threads in use.</summary>
    public int Threads { get; }
    /// <summary>The CUDA device (0 on the CPU backend).</summary>
    public int CudaDevice { get; }
    /// <summary>The CPU matrix kernel in use (CPU backend; Auto on CUDA).</summary>
    public CpuKernel CpuKernel { get; }
    /// <summary>The CUDA matrix kernel in use (CUDA backend; Auto on the CPU).</summary>
    public CudaMatmulKernel CudaMatmul { get; }
    /// <summary>The CUDA attention kernel in use (CUDA backend; Auto on the CPU).</summary>
    public CudaAttentionKernel CudaAttention { get; }
    /// <summary>Whether decoding steps replay CUDA graphs (CUDA backend; false on the CPU).</summary>
    public bool CudaGraphs { get; }
    /// <summary>Element type of the KV cache.</summary>
    public KvCacheType KvCacheType { get; }
    /// <summary>Tokens committed to the KV cache.</summary>
    public int CommittedTokens => Info().NPast;

    /// <summary>One forward pass over a batch; empty parents means a chain (causal prefill).</summary>
    /// <exception cref="LookaheadException">The native call failed; <see cref="LookaheadException.Status"/> says why (an argument out of range, named in the message; a full KV cache; call order; non-finite logits).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is inside a call on this context.</exception>
    public void Eval(ReadOnlySpan<int> tokens, ReadOnlySpan<int> parents, LogitsMode logits)
    {
        using Lease lease = Enter();
        fixed (int* tokenPointer = tokens)
        fixed (int* parentPointer = parents)
        {
            LkBatch batch = Batch(tokenPointer, parentPointer, tokens.Length, parents.Length, (int)logits);
            LookaheadException.ThrowIfFailed(NativeMethods.lk_context_eval(_handle, batch));
        }
    }

    /// <summary>Copies a node's logits (kept by the last Eval) into destination (vocab_size floats).</summary>
    /// <exception cref="ArgumentException">destination holds fewer than vocab_size floats.</exception>
    /// <exception cref="LookaheadException">The native call failed; <see cref="LookaheadException.Status"/> says why (an argument out of range, named in the message; a full KV cache; call order; non-finite logits).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is inside a call on this context.</exception>
    public void CopyLogits(int node, Span<float> destination)
    {
        using Lease lease = Enter();
        int vocab = Model.Config.VocabSize;
        if (destination.Length < vocab)
            throw new ArgumentException($"destination holds {destination.Length} floats, the vocabulary needs {vocab}", nameof(destination));
        LookaheadException.ThrowIfFailed(NativeMethods.lk_context_get_logits(_handle, node, out float* logits));
        new ReadOnlySpan<float>(logits, vocab).CopyTo(destination);
    }

    /// <summary>Commits a root path of pending nodes (nodes[0] = 0, each next a child of the previous).</summary>
    /// <exception cref="LookaheadException">The native call failed; <see cref="LookaheadException.Status"/> says why (an argument out of range, named in the message; a full KV cache; call order; non-finite logits).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is inside a call on this context.</exception>
    public void Commit(ReadOnlySpan<int> nodes)
    {
        using Lease lease = Enter();
        fixed (int* pointer = nodes)
        {
            LookaheadException.ThrowIfFailed(NativeMethods.lk_context_commit(_handle, pointer, nodes.Length));
        }
    }

    /// <summary>Commits the first count nodes of a pending chain.</summary>
    /// <exception cref="LookaheadException">The native call failed; <see cref="LookaheadException.Status"/> says why (an argument out of range, named in the message; a full KV cache; call order; non-finite logits).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is inside a call on this context.</exception>
    public void CommitChain(int count)
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_context_commit(_handle, null, count));
    }

    /// <summary>Forgets committed tokens beyond count (0 empties the cache).</summary>
    /// <exception cref="LookaheadException">The native call failed; <see cref="LookaheadException.Status"/> says why (an argument out of range, named in the message; a full KV cache; call order; non-finite logits).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is inside a call on this context.</exception>
    public void Truncate(int count)
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_context_truncate(_handle, count));
    }

    /// <summary>Runs and commits tokens as causal context, in chunks of at most BatchSize.</summary>
    public void Prefill(ReadOnlySpan<int> tokens) => Prefill(tokens, CancellationToken.None);

    /// <summary>As <see cref="Prefill(ReadOnlySpan{int})"/>, checking cancellation before each chunk of
    /// <see cref="BatchSize"/> tokens (the chunks committed before it fired stay).</summary>
    /// <exception cref="OperationCanceledException">cancellation fired.</exception>
    public void Prefill(ReadOnlySpan<int> tokens, CancellationToken cancellation)
    {
        using Lease lease = Enter();
        for (int start = 0; start < tokens.Length; start += BatchSize)
        {
            cancellation.ThrowIfCancellationRequested();
            ReadOnlySpan<int> chunk = tokens.Slice(start, Math.Min(BatchSize, tokens.Length - start));
            Eval(chunk, default, LogitsMode.None);
            CommitChain(chunk.Length);
        }
    }

    /// <summary>Adds an empty sequence and returns its id (the lowest free one); sequence 0, which the calls
    /// above use, exists from creation.</summary>
    /// <exception cref="LookaheadException">All <see cref="ContextOptions.MaxSequences"/> are live (Status ContextFull).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public int AddSequence()
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_seq_add(_handle, out int seq));
        return seq;
    }

    /// <summary>Removes a sequence; its KV blocks go back to the pool.</summary>
    /// <exception cref="LookaheadException">The sequence is not live.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public void RemoveSequence(int sequence)
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_seq_remove(_handle, sequence));
    }

    /// <summary>Keeps a sequence's first committedTokens tokens; the blocks past them go back to the pool.</summary>
    /// <exception cref="LookaheadException">The sequence is not live or has fewer tokens.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public void TruncateSequence(int sequence, int committedTokens)
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_seq_truncate(_handle, sequence, committedTokens));
    }

    /// <summary>A sequence's committed tokens and the KV pool blocks it holds.</summary>
    /// <exception cref="LookaheadException">The sequence is not live.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public (int CommittedTokens, int Blocks) GetSequenceInfo(int sequence)
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_seq_get_info(_handle, sequence, out LkSeqInfo info));
        return (info.NPast, info.NBlocks);
    }

    /// <summary>Commits tokens to a sequence as causal context, in chunks of at most BatchSize.</summary>
    /// <exception cref="LookaheadException">The sequence is not live, the tokens do not fit its context or
    /// the KV pool (Status ContextFull: the chunk that did not fit and those after it are not committed).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public void PrefillSequence(int sequence, ReadOnlySpan<int> tokens)
    {
        using Lease lease = Enter();
        fixed (int* pointer = tokens)
        {
            for (int start = 0; start < tokens.Length; start += BatchSize)
            {
                int count = Math.Min(BatchSize, tokens.Length - start);
                LookaheadException.ThrowIfFailed(NativeMethods.lk_seq_prefill(_handle, sequence, pointer + start, count));
            }
        }
    }

    /// <summary>
    /// Fused greedy step over several sequences' draft trees in one forward pass (lk_context_decode_greedy_seqs):
    /// a sequence's nodes are contiguous, its root first (parent -1), other parents are batch indices of the
    /// same sequence. Each sequence's accepted tokens are written to output from the index where its tree
    /// starts, their count to counts in batch order; returns the number of trees. Each sequence gets exactly
    /// the tokens a step on it alone gives.
    /// </summary>
    /// <exception cref="ArgumentException">The spans' lengths disagree, or output or counts is too short.</exception>
    /// <exception cref="LookaheadException">The native call failed (a dead or repeated sequence, a bad parent,
    /// a full context or pool, non-finite logits); nothing is committed.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public int DecodeGreedySequences(ReadOnlySpan<int> tokens, ReadOnlySpan<int> parents, ReadOnlySpan<int> sequenceIds,
        Span<int> output, Span<int> counts) =>
        DecodeSequences(tokens, parents, sequenceIds, default, output, counts);

    /// <summary>
    /// Fused sampling step over several sequences' draft trees in one forward pass
    /// (lk_context_decode_sample_seqs): the batch as in <see cref="DecodeGreedySequences"/>, sampling[k] the
    /// settings of the k-th tree in batch order (promptLength and tokenIndex count in that sequence). Each
    /// sequence gets exactly the tokens <see cref="DecodeSample"/> gives it alone with the same settings.
    /// </summary>
    /// <exception cref="ArgumentException">The spans' lengths disagree, output or counts is too short, or
    /// sampling does not hold one entry per tree.</exception>
    /// <exception cref="LookaheadException">The native call failed (as for DecodeGreedySequences, or a setting
    /// out of range, named with its tree); nothing is committed.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public int DecodeSampleSequences(ReadOnlySpan<int> tokens, ReadOnlySpan<int> parents, ReadOnlySpan<int> sequenceIds,
        ReadOnlySpan<SequenceSampling> sampling, Span<int> output, Span<int> counts)
    {
        if (sampling.IsEmpty) throw new ArgumentException("a sampled step needs the settings of each tree", nameof(sampling));
        return DecodeSequences(tokens, parents, sequenceIds, sampling, output, counts);
    }

    // Greedy when sampling is empty, else sampled with one entry per tree.
    private int DecodeSequences(ReadOnlySpan<int> tokens, ReadOnlySpan<int> parents, ReadOnlySpan<int> sequenceIds,
        ReadOnlySpan<SequenceSampling> sampling, Span<int> output, Span<int> counts)
    {
        if (parents.Length != tokens.Length || sequenceIds.Length != tokens.Length)
            throw new ArgumentException($"{tokens.Length} tokens need as many parents and sequence ids, got {parents.Length} and {sequenceIds.Length}", nameof(parents));
        int trees = 0;
        for (int i = 0; i < sequenceIds.Length; i++)
            if (i == 0 || sequenceIds[i] != sequenceIds[i - 1]) trees++;
        if (output.Length < tokens.Length) throw new ArgumentException($"output holds {output.Length} tokens, the batch needs {tokens.Length}", nameof(output));
        if (counts.Length < trees) throw new ArgumentException($"counts holds {counts.Length}, the batch has {trees} trees", nameof(counts));
        if (!sampling.IsEmpty && sampling.Length != trees)
            throw new ArgumentException($"sampling holds {sampling.Length} settings, the batch has {trees} trees", nameof(sampling));
        Span<LkSamplingParams> parameters = sampling.Length <= 64 ? stackalloc LkSamplingParams[sampling.Length] : new LkSamplingParams[sampling.Length];
        for (int k = 0; k < sampling.Length; k++)
            parameters[k] = SamplingParams(sampling[k].Sampling, sampling[k].Seed, sampling[k].PromptLength, sampling[k].TokenIndex);
        using Lease lease = Enter();
        fixed (int* tokenPointer = tokens)
        fixed (int* parentPointer = parents)
        fixed (int* seqPointer = sequenceIds)
        fixed (int* outputPointer = output)
        fixed (int* countPointer = counts)
        fixed (LkSamplingParams* parameterPointer = parameters)
        {
            var batch = new LkSeqBatch { Tokens = tokenPointer, Parents = parentPointer, SeqIds = seqPointer, NTokens = tokens.Length };
            LookaheadException.ThrowIfFailed(sampling.IsEmpty
                ? NativeMethods.lk_context_decode_greedy_seqs(_handle, batch, outputPointer, countPointer)
                : NativeMethods.lk_context_decode_sample_seqs(_handle, batch, parameterPointer, outputPointer, countPointer));
        }
        return trees;
    }

    /// <summary>Adds a sequence (the lowest free id) holding the first committedTokens tokens of source: full KV
    /// blocks are shared (copied before any write), a partial last one is copied. Returns the new id.</summary>
    /// <exception cref="LookaheadException">source is not live or has fewer tokens, or no sequence or block for
    /// the copy is free (Status ContextFull); nothing is added.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public int ForkSequence(int source, int committedTokens)
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_seq_fork(_handle, source, committedTokens, out int seq));
        return seq;
    }

    /// <summary>
    /// Prefix caching: gives an empty sequence the cached KV blocks holding the longest whole-block prefix of
    /// tokens (blocks that any sequence committed earlier, while the pool keeps them), commits those tokens
    /// and returns how many (a multiple of <see cref="KvPoolState.BlockTokens"/>, maybe 0); prefill the rest.
    /// What the sequence decodes after is what a prefill of all the tokens gives, bit for bit.
    /// </summary>
    /// <exception cref="LookaheadException">The sequence is not live or not empty.</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public int ReuseSequencePrefix(int sequence, ReadOnlySpan<int> tokens)
    {
        using Lease lease = Enter();
        fixed (int* pointer = tokens)
        {
            LookaheadException.ThrowIfFailed(NativeMethods.lk_seq_reuse_prefix(_handle, sequence, pointer, tokens.Length, out int reused));
            return reused;
        }
    }

    /// <summary>The KV block pool now (all zeros on a backend without one: CUDA).</summary>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public KvPoolState KvPool
    {
        get
        {
            using Lease lease = Enter();
            LookaheadException.ThrowIfFailed(NativeMethods.lk_context_get_kv_pool(_handle, out LkKvPoolInfo info));
            return new KvPoolState(info.NBlocks, info.NFree, info.NCached, info.BlockTokens);
        }
    }

    /// <summary>
    /// Fused greedy step over a draft tree whose root is the last emitted token: forward, verify, commit.
    /// Writes the accepted draft tokens and then the bonus token to output; returns how many.
    /// </summary>
    /// <exception cref="LookaheadException">The native call failed; <see cref="LookaheadException.Status"/> says why (an argument out of range, named in the message; a full KV cache; call order; non-finite logits).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is inside a call on this context.</exception>
    public int DecodeGreedy(ReadOnlySpan<int> tokens, ReadOnlySpan<int> parents, Span<int> output)
    {
        using Lease lease = Enter();
        fixed (int* tokenPointer = tokens)
        fixed (int* parentPointer = parents)
        fixed (int* outputPointer = output)
        {
            LkBatch tree = Batch(tokenPointer, parentPointer, tokens.Length, parents.Length, NativeConstants.LogitsNone);
            LookaheadException.ThrowIfFailed(
                NativeMethods.lk_context_decode_greedy(_handle, tree, outputPointer, output.Length, out int count));
            return count;
        }
    }

    /// <summary>
    /// Fused sampling step over a draft tree whose root is the last emitted token: forward, then from the root
    /// sample each node with the draw of its token index and descend into the child holding the sample; the
    /// first sample no child holds is the bonus. promptLength is how many of the sequence's tokens (committed
    /// ones, then the root) are prompt; tokenIndex is the index of the first token this step generates.
    /// Writes the accepted draft tokens and then the bonus token to output; returns how many.
    /// </summary>
    /// <exception cref="LookaheadException">The native call failed; <see cref="LookaheadException.Status"/> says why (an argument out of range, named in the message; a full KV cache; call order; non-finite logits).</exception>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    /// <exception cref="InvalidOperationException">Another thread is inside a call on this context.</exception>
    public int DecodeSample(ReadOnlySpan<int> tokens, ReadOnlySpan<int> parents, SamplingOptions sampling, ulong seed,
        int promptLength, long tokenIndex, Span<int> output)
    {
        using Lease lease = Enter();
        LkSamplingParams parameters = SamplingParams(sampling, seed, promptLength, tokenIndex);
        fixed (int* tokenPointer = tokens)
        fixed (int* parentPointer = parents)
        fixed (int* outputPointer = output)
        {
            LkBatch tree = Batch(tokenPointer, parentPointer, tokens.Length, parents.Length, NativeConstants.LogitsNone);
            LookaheadException.ThrowIfFailed(
                NativeMethods.lk_context_decode_sample(_handle, tree, parameters, outputPointer, output.Length, out int count));
            return count;
        }
    }

    /// <summary>
    /// What this context's native calls measure (<see cref="ProfilingMode"/>; off by default). Setting it
    /// clears the totals.
    /// </summary>
    public ProfilingMode Profiling
    {
        get => _profiling;
        set
        {
            if (!Enum.IsDefined(value)) throw new ArgumentOutOfRangeException(nameof(value), value, "unknown profiling mode");
            using Lease lease = Enter();
            LookaheadException.ThrowIfFailed(NativeMethods.lk_context_set_profiling(_handle, (int)value));
            _profiling = value;
        }
    }

    /// <summary>
    /// The GPU time of this context's calls since profiling was last switched (the "device" stage; zero
    /// unless <see cref="Profiling"/> is <see cref="ProfilingMode.Device"/> on the CUDA backend).
    /// </summary>
    public TimeSpan DeviceTime => GetProfile().FirstOrDefault(s => s.Name == "device")?.Total ?? TimeSpan.Zero;

    /// <summary>The stage totals since profiling was last switched, in the library's order (all zero while it is off).</summary>
    /// <exception cref="ObjectDisposedException">The context was disposed.</exception>
    public IReadOnlyList<StageTime> GetProfile()
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_context_get_profile(_handle, null, 0, out int count));
        var stages = new LkStageTime[count];
        fixed (LkStageTime* pointer = stages)
            LookaheadException.ThrowIfFailed(NativeMethods.lk_context_get_profile(_handle, pointer, count, out count));
        return stages.Select(s => new StageTime(Utf8StringMarshaller.ConvertToManaged(s.Name) ?? "", s.Calls,
            TimeSpan.FromMilliseconds(s.Milliseconds))).ToArray();
    }

    /// <summary>Frees the KV cache. Any later call throws ObjectDisposedException; disposing during a call
    /// on another thread is refused with InvalidOperationException.</summary>
    public void Dispose()
    {
        if (_handle.IsClosed) return;
        using Lease lease = Enter();
        _handle.Dispose();
    }

    /// <summary>
    /// Claims the context for the calling thread until the lease is disposed: native calls from another
    /// thread meanwhile throw InvalidOperationException instead of corrupting the KV cache. Reentrant on
    /// the owning thread, so a generation holds it across its steps and the steps' own calls still pass.
    /// </summary>
    internal Lease Enter()
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        int thread = Environment.CurrentManagedThreadId;
        int owner = Interlocked.CompareExchange(ref _ownerThread, thread, 0);
        if (owner != 0 && owner != thread)
            throw new InvalidOperationException(
                "this InferenceContext is in use by another thread: a context serves one thread at a time (create one context per thread)");
        _ownerDepth++;
        return new Lease(this);
    }

    internal readonly struct Lease(InferenceContext context) : IDisposable
    {
        public void Dispose()
        {
            if (--context._ownerDepth == 0) Volatile.Write(ref context._ownerThread, 0);
        }
    }

    // No parents means a chain; otherwise one parent per token.
    private static LkBatch Batch(int* tokens, int* parents, int tokenCount, int parentCount, int logits)
    {
        if (parentCount != 0 && parentCount != tokenCount)
            throw new ArgumentException($"{parentCount} parents given for {tokenCount} tokens", "parents");
        return new LkBatch { Tokens = tokens, Parents = parentCount == 0 ? null : parents, NTokens = tokenCount, Logits = logits };
    }

    private static LkSamplingParams SamplingParams(SamplingOptions sampling, ulong seed, int promptLength, long tokenIndex) => new()
    {
        Temperature = sampling.Temperature,
        TopK = sampling.TopK,
        TopP = sampling.TopP,
        MinP = sampling.MinP,
        RepetitionPenalty = sampling.RepetitionPenalty,
        PresencePenalty = sampling.PresencePenalty,
        FrequencyPenalty = sampling.FrequencyPenalty,
        NPrompt = promptLength,
        Seed = seed,
        TokenIndex = tokenIndex,
    };

    private LkContextInfo Info()
    {
        using Lease lease = Enter();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_context_get_info(_handle, out LkContextInfo info));
        return info;
    }
}
