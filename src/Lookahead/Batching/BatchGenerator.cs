using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Interop;

namespace Lookahead.Batching;

/// <summary>
/// Serves many requests at once on one context: continuous batching of lookahead drafts over the context's
/// paged KV cache. Requests join and leave between steps; each step verifies every running request's draft
/// in one forward pass, so the weights are streamed once for all of them. Every request emits exactly what
/// it emits alone through <see cref="Generator"/> (greedy, or sampling with the same seed).
/// </summary>
/// <remarks>
/// <para>One scheduling thread owns the context (do not call it while the generator lives). Each loop turn:
/// finish cancelled requests; admit waiting ones, oldest first, while a sequence and enough KV blocks are
/// free (a prompt starting with cached blocks reuses them and prefills only the rest); prefill at most
/// <see cref="BatchOptions.PrefillChunkTokens"/> prompt tokens; then one decoding step over the requests
/// whose prompts are in.</para>
/// <para>Drafts come from one shared trie: every request's output n-grams draft for every request, a
/// request's prompt n-grams for itself only. The step's node budget follows the batch's measured cost curve
/// and goes to the sequences whose next nodes are likeliest to be accepted (<see cref="BatchDraftBudget"/>).</para>
/// <para>When a step needs KV blocks the pool does not have, the newest running request gives its blocks up
/// and waits again; it is recomputed later (its prompt and what it generated, mostly from the prefix
/// cache) and goes on streaming where it stopped. A request that cannot fit the pool even alone is refused
/// when submitted (its prompt) or finished with <see cref="FinishReason.ContextFull"/> (its growth).</para>
/// </remarks>
public sealed class BatchGenerator : IDisposable
{
    private readonly InferenceContext _context;
    private readonly TokenTrie _trie;
    private readonly bool _ownsTrie;
    private readonly TimeProvider _time;
    private readonly int _prefillChunk;
    private readonly bool _prefixCaching;
    private readonly int _poolBlocks, _blockTokens;  // 0 without a KV pool (CUDA: one contiguous sequence)
    private readonly ConcurrentQueue<BatchRequest> _incoming = new();
    private readonly ConcurrentQueue<(string Path, TaskCompletionSource Done)> _trieSaves = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly Thread _thread;
    private readonly List<BatchRequest> _waiting = [];   // arrival order
    private readonly List<BatchRequest> _admitted = [];  // admission order
    // Finished requests' sequences kept for a request that continues them (a chat's next turn): oldest first.
    private readonly List<ParkedSequence> _parked = [];
    private readonly BatchDraftBudget _budget = new();
    private readonly List<BatchDraftBudget.Entry> _entries = [];
    private readonly List<BatchRequest> _stepRequests = [];
    private int[] _tokens = [], _parents = [], _seqIds = [], _output = [], _counts = [];
    private SequenceSampling[] _sampling = [];
    private long _arrivals;
    private volatile bool _disposed;
    private int _stopped;  // 1 once the scheduler stopped taking requests (disposed or failed)
    private Exception? _failure;
    private BatchGauges _gauges = new(0, 0, 0, 0, default);
    private long _steps, _preemptions, _reusedTokens, _prefilledTokens;
    private long _stepTicks, _draftTicks, _forwardTicks, _prefillTicks;  // in _time's timestamp units

    /// <summary>
    /// Starts serving on a context created with <see cref="ContextOptions.MaxSequences"/> (requests beyond it
    /// wait) and, for prefix caching and paging, a KV pool (<see cref="ContextOptions.KvPoolTokens"/>). The
    /// trie is shared by all requests; by default a new one with the model's stop tokens.
    /// </summary>
    /// <exception cref="ArgumentException">The context's batch size is below MaxSequences (one root each).</exception>
    public BatchGenerator(InferenceContext context, TokenTrie? trie = null, BatchOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(context);
        options ??= new BatchOptions();
        options.Validate();
        if (context.BatchSize < context.MaxSequences)
            throw new ArgumentException(
                $"the context's batch size {context.BatchSize} is below its {context.MaxSequences} sequences: a step holds one root per sequence", nameof(context));
        _context = context;
        _ownsTrie = trie is null;
        _trie = trie ?? new TokenTrie(Generator.DefaultTrieOptions(context.Model, new DraftOptions().BranchLength));
        _time = options.Time ?? TimeProvider.System;
        _prefillChunk = Math.Min(options.PrefillChunkTokens ?? Math.Min(128, context.BatchSize), context.BatchSize);
        KvPoolState pool = context.KvPool;
        _poolBlocks = pool.Blocks;
        _blockTokens = pool.BlockTokens;
        _prefixCaching = options.PrefixCaching && _poolBlocks > 0;
        // The context starts with sequence 0 live; the scheduler adds sequences as it admits requests.
        context.RemoveSequence(0);
        _thread = new Thread(Run) { IsBackground = true, Name = "lookahead batch scheduler" };
        _thread.Start();
    }

    /// <summary>
    /// Context options for serving maxConcurrency requests at once: a sequence each, and (unless baseOptions
    /// sets one) a batch with room for a draft beside every sequence's root: 16 nodes per sequence, 64 to
    /// 512 in all. The KV pool is baseOptions' (by default room for every sequence at the full length).
    /// </summary>
    public static ContextOptions ContextOptionsFor(ContextOptions baseOptions, int maxConcurrency)
    {
        ArgumentNullException.ThrowIfNull(baseOptions);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxConcurrency, 1);
        return baseOptions with { MaxSequences = maxConcurrency, BatchSize = baseOptions.BatchSize ?? Math.Clamp(16 * maxConcurrency, 64, 512) };
    }

    /// <summary>Requests the generator holds at once (the context's sequences).</summary>
    public int MaxConcurrency => _context.MaxSequences;

    /// <summary>The scheduler's state after its last turn (safe to read from any thread).</summary>
    public BatchGauges Gauges => Volatile.Read(ref _gauges);

    /// <summary>Counters since the generator started.</summary>
    public BatchStatistics Statistics => new(Interlocked.Read(ref _steps), Interlocked.Read(ref _preemptions),
        Interlocked.Read(ref _reusedTokens), Interlocked.Read(ref _prefilledTokens))
    {
        StepTime = Ticks(ref _stepTicks),
        DraftTime = Ticks(ref _draftTicks),
        ForwardTime = Ticks(ref _forwardTicks),
        PrefillTime = Ticks(ref _prefillTicks),
    };

    private TimeSpan Ticks(ref long ticks) => _time.GetElapsedTime(0, Interlocked.Read(ref ticks));

    /// <summary>
    /// Submits a request and streams its tokens as steps produce them; the last chunk carries its
    /// <see cref="BatchResult"/>. Cancelling (or leaving the enumeration) removes the request at the next
    /// step boundary; the enumeration then throws OperationCanceledException.
    /// </summary>
    /// <exception cref="ArgumentException">The prompt is empty, holds a token outside the vocabulary, is longer
    /// than the context or than the whole KV pool, or an option is out of range (the message names it).</exception>
    /// <exception cref="ObjectDisposedException">The generator was disposed.</exception>
    /// <exception cref="LookaheadException">While enumerating: a native step failed for this request (e.g.
    /// non-finite logits); other requests go on.</exception>
    public IAsyncEnumerable<BatchChunk> GenerateAsync(ReadOnlySpan<int> prompt, GenerationOptions options, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Validate(prompt, options);
        ulong? seed = options.Sampling.IsGreedy ? null : options.Sampling.Seed ?? (ulong)Random.Shared.NextInt64(long.MinValue, long.MaxValue);
        var source = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var request = new BatchRequest(Interlocked.Increment(ref _arrivals), prompt.ToArray(), options, seed,
            options.StopTokens ?? _context.Model.Config.EosTokenIds, _time, source.Token);
        source.Token.Register(() => _wake.Release());
        _incoming.Enqueue(request);
        _wake.Release();
        // A request enqueued after the scheduler's last drain would wait forever: it ends here instead.
        if (Volatile.Read(ref _stopped) == 1) request.Output.Writer.TryComplete(EndError());
        return Stream(request, source, cancellation);
    }

    /// <summary>Runs a request to its end and returns its result (the tokens of every chunk).</summary>
    /// <exception cref="ArgumentException">As <see cref="GenerateAsync"/>.</exception>
    /// <exception cref="OperationCanceledException">cancellation fired.</exception>
    public async Task<BatchResult> GenerateAllAsync(int[] prompt, GenerationOptions options, CancellationToken cancellation = default)
    {
        await foreach (BatchChunk chunk in GenerateAsync(prompt, options, cancellation).ConfigureAwait(false))
            if (chunk.Result is BatchResult result) return result;
        throw new InvalidOperationException("the request ended without a result");
    }

    /// <summary>Stops the scheduler; requests still running end with ObjectDisposedException.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _wake.Release();
        _thread.Join();
        if (_ownsTrie) _trie.Dispose();
        // _wake stays: a cancellation registered by a request may still release it (it holds no handle).
    }

    private static async IAsyncEnumerable<BatchChunk> Stream(BatchRequest request, CancellationTokenSource source,
        [EnumeratorCancellation] CancellationToken enumeration = default)
    {
        try
        {
            // The scheduler completes the channel: with the result, or with the error (cancellation included).
            await foreach (BatchChunk chunk in request.Output.Reader.ReadAllAsync(enumeration).ConfigureAwait(false)) yield return chunk;
        }
        finally
        {
            // Leaving the enumeration early (or its token firing) cancels the request itself.
            source.Cancel();
            source.Dispose();
        }
    }

    private void Validate(ReadOnlySpan<int> prompt, GenerationOptions options)
    {
        Generator.ValidateRequest(_context, prompt, options);
        if (_poolBlocks > 0 && BlocksFor(prompt.Length) > _poolBlocks)
            throw new ArgumentException(
                $"the prompt needs {BlocksFor(prompt.Length)} KV blocks of {_blockTokens} tokens but the pool holds only {_poolBlocks} (KvPoolTokens): it can never run", nameof(prompt));
    }

    private int BlocksFor(int tokens) => (tokens + _blockTokens - 1) / _blockTokens;

    private void Run()
    {
        try
        {
            while (!_disposed)
            {
                while (_incoming.TryDequeue(out BatchRequest? request)) InsertWaiting(request);
                DropCancelled();
                Admit();
                bool prefilled = PrefillChunk();
                bool stepped = DecodeStep();
                SaveTries();
                PublishGauges();
                if (!prefilled && !stepped) _wake.Wait();
            }
        }
        catch (Exception e)
        {
            // A bug or a broken context: nothing can go on; every request learns why.
            Volatile.Write(ref _failure, e);
        }
        // The exchange is a full fence: a submitter that enqueued before it is drained below, one after sees
        // the flag (GenerateAsync).
        Interlocked.Exchange(ref _stopped, 1);
        if (Volatile.Read(ref _failure) is null) SaveTries();  // what was asked before Dispose still happens
        DrainTrieSaves();
        Exception end = EndError();
        while (_incoming.TryDequeue(out BatchRequest? request)) InsertWaiting(request);
        foreach (BatchRequest request in _admitted.Concat(_waiting).ToList())
        {
            try
            {
                Fail(request, end);
            }
            catch (Exception)
            {
                // The context is broken: its sequence cannot be removed, but the request still learns why.
                request.Output.Writer.TryComplete(end);
            }
        }
        try
        {
            while (EvictOldestParked()) { }
        }
        catch (Exception)
        {
            // A broken context: its sequences stay; nothing else can use it.
        }
    }

    /// <summary>
    /// Saves the shared trie's output n-grams to a file (atomically, as <see cref="TokenTrie.Save"/>) between two
    /// steps, on the scheduler's thread, which is the only one that may touch the trie while requests run.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The generator was disposed.</exception>
    /// <remarks>The task faults with the IOException of a failed write; the generator goes on.</remarks>
    public Task SaveTrieAsync(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ObjectDisposedException.ThrowIf(_disposed, this);
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _trieSaves.Enqueue((path, done));
        _wake.Release();
        if (Volatile.Read(ref _stopped) == 1) DrainTrieSaves();
        return done.Task;
    }

    private void SaveTries()
    {
        while (_trieSaves.TryDequeue(out (string Path, TaskCompletionSource Done) save))
        {
            try
            {
                _trie.Save(save.Path);
                save.Done.TrySetResult();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                save.Done.TrySetException(e);
            }
        }
    }

    // Saves asked for once the scheduler stopped: refused, not left waiting.
    private void DrainTrieSaves()
    {
        while (_trieSaves.TryDequeue(out (string Path, TaskCompletionSource Done) save))
            save.Done.TrySetException(new ObjectDisposedException(nameof(BatchGenerator), "the batch generator stopped before the trie was saved"));
    }

    private void PublishGauges()
    {
        int parkedBlocks = 0;
        foreach (ParkedSequence parked in _parked) parkedBlocks += _context.GetSequenceInfo(parked.Seq).Blocks;
        Volatile.Write(ref _gauges, new BatchGauges(_admitted.Count, _waiting.Count + _incoming.Count, _parked.Count, parkedBlocks,
            _poolBlocks > 0 ? _context.KvPool : default));
    }

    private Exception EndError() => Volatile.Read(ref _failure) is Exception failure
        ? new InvalidOperationException("the batch scheduler stopped: " + failure.Message, failure)
        : new ObjectDisposedException(nameof(BatchGenerator), "the batch generator was disposed before the request finished");

    private void InsertWaiting(BatchRequest request)
    {
        int at = _waiting.Count;
        while (at > 0 && _waiting[at - 1].Arrival > request.Arrival) at--;
        _waiting.Insert(at, request);
    }

    private void DropCancelled()
    {
        foreach (BatchRequest request in _admitted.Concat(_waiting).Where(r => r.Cancellation.IsCancellationRequested).ToList())
            Fail(request, new OperationCanceledException(request.Cancellation));
    }

    // Admits waiting requests, oldest first, while a sequence and the blocks of their context (beyond the
    // cached prefix) plus one for their first step are free.
    private void Admit()
    {
        while (_waiting.Count > 0 && _admitted.Count < _context.MaxSequences)
        {
            BatchRequest request = _waiting[0];
            if (request.Sequence.Full)
            {
                _waiting.RemoveAt(0);
                Finish(request, FinishReason.MaxTokens);  // max tokens 0
                continue;
            }
            int needed = 0;
            if (_poolBlocks > 0)
            {
                KvPoolState pool = _context.KvPool;
                needed = BlocksFor(request.Context.Length + 1);
                if (needed > _poolBlocks)
                {
                    // Its prompt and output so far outgrew the whole pool while it waited to be recomputed.
                    _waiting.RemoveAt(0);
                    Finish(request, FinishReason.ContextFull);
                    continue;
                }
                // The whole blocks a parked sequence shares with it cost nothing; that one is evicted last.
                (ParkedSequence? best, int shared) = BestParked(request.Context);
                needed -= shared / _blockTokens;
                while (needed > pool.Free + pool.Cached && EvictOldestParked(except: best?.Seq ?? -1)) pool = _context.KvPool;
                if (needed > pool.Free + pool.Cached && best is not null && EvictOldestParked())
                {
                    needed += shared / _blockTokens;
                    pool = _context.KvPool;
                }
                if (needed > pool.Free + pool.Cached && _admitted.Count > 0) return;  // waits for blocks
            }
            _waiting.RemoveAt(0);
            int reused = AttachSequence(request);
            request.Committed = reused;
            if (request.Preemptions == 0) request.ReusedPromptTokens = reused;
            Interlocked.Add(ref _reusedTokens, reused);
            request.State = BatchRequest.Phase.Prefilling;
            request.AdmittedAt = _time.GetTimestamp();
                _admitted.Add(request);
        }
    }

    // Prefills at most one chunk of prompt tokens, oldest request first; true when it did any work.
    private bool PrefillChunk()
    {
        int budget = _prefillChunk;
        bool worked = false;
        foreach (BatchRequest request in _admitted.Where(r => r.State == BatchRequest.Phase.Prefilling).ToList())
        {
            if (request.State != BatchRequest.Phase.Prefilling) continue;  // preempted by an earlier one's chunk
            int remaining = request.Context.Length - request.Committed;
            int count = Math.Min(remaining, budget);
            if (count > 0)
            {
                if (!EnsureBlocks(request, request.Committed + count)) continue;
                long start = _time.GetTimestamp();
                _context.PrefillSequence(request.Seq, request.Context.Slice(request.Committed, count));
                Interlocked.Add(ref _prefillTicks, _time.GetTimestamp() - start);
                request.Committed += count;
                request.PrefilledTokens += count;
                Interlocked.Add(ref _prefilledTokens, count);
                budget -= count;
                worked = true;
            }
            if (request.Committed == request.Context.Length)
            {
                request.State = BatchRequest.Phase.Decoding;
                if (!request.Started)
                {
                    request.Statistics.EndPrefill(request.AdmittedAt);
                    request.Statistics.StartDecode();
                    request.Started = true;
                }
                worked = true;
            }
            if (budget == 0) break;
        }
        return worked;
    }

    // One fused step over every decoding request; true when there was one.
    private bool DecodeStep()
    {
        _stepRequests.Clear();
        _entries.Clear();
        long stepStart = _time.GetTimestamp();
        bool drafting = _budget.BeginStep(), drafted = false;
        int buildLimit = _budget.BuildLimit;
        for (int i = 0; i < _admitted.Count; i++)
        {
            BatchRequest request = _admitted[i];
            if (request.State != BatchRequest.Phase.Decoding) continue;
            int room = _context.ContextLength - request.Committed;
            if (room <= 0)
            {
                Finish(request, FinishReason.ContextFull);  // leaves _admitted
                i--;
                continue;
            }
            DraftTree draft = request.Budget.Draft;
            request.DraftedThisStep = request.Lookahead && (request.Budget.Fixed || drafting);
            if (request.DraftedThisStep)
            {
                PrepareTrie(request);
                request.Builder!.Build(request.Trie!, request.Sequence.History, draft, request.Budget.Fixed ? int.MaxValue : buildLimit);
                drafted |= !request.Budget.Fixed;
            }
            else
            {
                draft.Reset(request.Sequence.Last);
            }
            request.Budget.Cap = Math.Min(room, _context.BatchSize - _context.MaxSequences + 1);
            _stepRequests.Add(request);
            _entries.Add(request.Budget);
        }
        if (_stepRequests.Count == 0) return false;
        long draftEnd = _time.GetTimestamp();

        int total = _budget.Choose(_entries, _context.BatchSize);
        ReserveStepBlocks();
        for (int i = _stepRequests.Count - 1; i >= 0; i--)
        {
            if (_stepRequests[i].State == BatchRequest.Phase.Decoding) continue;
            total -= _stepRequests[i].Budget.Chosen;
            _stepRequests.RemoveAt(i);
            _entries.RemoveAt(i);
        }
        if (_stepRequests.Count == 0) return true;

        Assemble(total);
        long forwardStart = _time.GetTimestamp();
        try
        {
            if (_sampling.Length > 0 && _stepRequests.Any(r => r.Seed is not null))
                _context.DecodeSampleSequences(_tokens.AsSpan(0, total), _parents.AsSpan(0, total), _seqIds.AsSpan(0, total),
                    _sampling.AsSpan(0, _stepRequests.Count), _output, _counts);
            else
                _context.DecodeGreedySequences(_tokens.AsSpan(0, total), _parents.AsSpan(0, total), _seqIds.AsSpan(0, total), _output, _counts);
        }
        catch (LookaheadException e)
        {
            StepAlone(e);
            return true;
        }
        long forwardEnd = _time.GetTimestamp();
        Interlocked.Increment(ref _steps);
        Interlocked.Add(ref _forwardTicks, forwardEnd - forwardStart);
        Span<int> accepted = _stepRequests.Count <= 256 ? stackalloc int[_stepRequests.Count] : new int[_stepRequests.Count];
        for (int i = 0; i < _stepRequests.Count; i++) accepted[i] = _counts[i] - 1;
        _budget.Observe(_entries, total, _time.GetElapsedTime(forwardStart, forwardEnd).TotalSeconds, accepted);
        int first = 0, emitted = 0;
        for (int i = 0; i < _stepRequests.Count; i++)
        {
            BatchRequest request = _stepRequests[i];
            request.Statistics.AddStep(stepStart, forwardStart, forwardEnd, request.Budget.Chosen, _counts[i]);
            Deliver(request, _output.AsSpan(first, _counts[i]));
            first += request.Budget.Chosen;
            emitted += _counts[i];
        }
        long stepEnd = _time.GetTimestamp();
        _budget.ObserveStep(_stepRequests.Count, emitted, _time.GetElapsedTime(stepStart, stepEnd).TotalSeconds, drafted);
        Interlocked.Add(ref _stepTicks, stepEnd - stepStart);
        Interlocked.Add(ref _draftTicks, draftEnd - stepStart);
        return true;
    }

    // A request's trie view before it drafts: opened (its prompt's n-grams) at its first drafted step, and its
    // output stream restarted after tokens emitted by plain steps.
    private void PrepareTrie(BatchRequest request)
    {
        if (request.Trie is null)
        {
            request.Trie = _trie.OpenRequest(request.Prompt);
            request.OutputSkipped = request.Sequence.Generated > 0;
        }
        if (!request.OutputSkipped) return;
        request.Trie.RestartOutput(request.Sequence.History[^request.Sequence.Generated..]);
        request.OutputSkipped = false;
    }

    // The step's batch: each request's chosen draft nodes, parents as batch indices.
    private void Assemble(int total)
    {
        if (_tokens.Length < total)
        {
            _tokens = new int[total];
            _parents = new int[total];
            _seqIds = new int[total];
            _output = new int[total];
        }
        if (_counts.Length < _stepRequests.Count)
        {
            _counts = new int[_context.MaxSequences];
            _sampling = new SequenceSampling[_context.MaxSequences];
        }
        int at = 0;
        for (int i = 0; i < _stepRequests.Count; i++)
        {
            BatchRequest request = _stepRequests[i];
            DraftTree draft = request.Budget.Draft;
            int n = request.Budget.Chosen;
            for (int j = 0; j < n; j++)
            {
                _tokens[at + j] = draft.Tokens[j];
                _parents[at + j] = j == 0 ? -1 : at + draft.Parents[j];
                _seqIds[at + j] = request.Seq;
            }
            // Greedy requests in a sampled step: temperature 0 is greedy under the sampling rule too.
            _sampling[i] = new SequenceSampling(request.Seed is null ? GreedySampling : request.Options.Sampling, request.Seed ?? 0,
                request.Prompt.Length, request.Sequence.Generated);
            at += n;
        }
    }

    private static readonly SamplingOptions GreedySampling = new();

    // A batched step failed for a reason other than the pool (e.g. non-finite logits in one sequence):
    // each request steps alone, so only the one at fault fails.
    private void StepAlone(LookaheadException batchFailure)
    {
        if (batchFailure.Status == NativeStatus.ContextFull && _stepRequests.Count == 1)
        {
            Finish(_stepRequests[0], FinishReason.ContextFull);
            return;
        }
        foreach (BatchRequest request in _stepRequests.ToList())
        {
            DraftTree draft = request.Budget.Draft;
            var parents = new int[request.Budget.Chosen];
            var seqIds = new int[request.Budget.Chosen];
            var output = new int[request.Budget.Chosen];
            var counts = new int[1];
            for (int j = 0; j < parents.Length; j++)
            {
                parents[j] = draft.Parents[j];
                seqIds[j] = request.Seq;
            }
            long start = _time.GetTimestamp();
            try
            {
                if (request.Seed is ulong seed)
                    _context.DecodeSampleSequences(draft.Tokens[..parents.Length], parents, seqIds,
                        [new SequenceSampling(request.Options.Sampling, seed, request.Prompt.Length, request.Sequence.Generated)], output, counts);
                else
                    _context.DecodeGreedySequences(draft.Tokens[..parents.Length], parents, seqIds, output, counts);
            }
            catch (LookaheadException e) when (e.Status == NativeStatus.ContextFull)
            {
                if (!Preempt(request)) Finish(request, FinishReason.ContextFull);
                continue;
            }
            catch (LookaheadException e)
            {
                Fail(request, e);
                continue;
            }
            long end = _time.GetTimestamp();
            request.Statistics.AddStep(start, start, end, parents.Length, counts[0]);
            Deliver(request, output.AsSpan(0, counts[0]));
        }
    }

    private void Deliver(BatchRequest request, ReadOnlySpan<int> step)
    {
        request.Committed += step.Length;
        ReadOnlySpan<int> emitted = request.Sequence.Append(step, out bool stopped);
        // Output streams into the trie only from drafted steps: while drafts lose, their upkeep is saved too.
        if (request.DraftedThisStep) request.Trie!.AppendOutput(emitted);
        else if (request.Lookahead) request.OutputSkipped = true;
        if (!emitted.IsEmpty) request.Output.Writer.TryWrite(new BatchChunk(emitted.ToArray(), null));
        if (stopped) Finish(request, FinishReason.EndOfSequence);
        else if (request.Sequence.Full) Finish(request, FinishReason.MaxTokens);
    }

    // Makes sure the request's sequence can grow to slots tokens, preempting newer requests while the pool
    // lacks blocks; false when the request itself was preempted or finished instead. (The scheduler never
    // truncates into or forks a block, so a sequence's partial block is its own: no copy-on-write to count.)
    private bool EnsureBlocks(BatchRequest request, int slots)
    {
        if (_poolBlocks == 0) return true;
        while (true)
        {
            int needed = Math.Max(0, BlocksFor(slots) - _context.GetSequenceInfo(request.Seq).Blocks);
            KvPoolState pool = _context.KvPool;
            if (needed <= pool.Free + pool.Cached) return true;
            if (EvictOldestParked()) continue;
            if (!MakeRoom(request)) return false;
        }
    }

    // The blocks of every decoding request's step together: while the pool cannot give them all, the newest
    // admitted request yields its blocks.
    private void ReserveStepBlocks()
    {
        if (_poolBlocks == 0) return;
        while (true)
        {
            int needed = 0;
            foreach (BatchRequest request in _stepRequests)
            {
                if (request.State != BatchRequest.Phase.Decoding) continue;
                needed += Math.Max(0, BlocksFor(request.Committed + request.Budget.Chosen) - _context.GetSequenceInfo(request.Seq).Blocks);
            }
            KvPoolState pool = _context.KvPool;
            if (needed <= pool.Free + pool.Cached) return;
            if (EvictOldestParked()) continue;
            if (!MakeRoom(null)) return;
        }
    }

    // Gives an admitted request its sequence and returns the context tokens already in its KV cache: a fork
    // of a finished request's parked sequence that the context continues (its whole blocks shared, the
    // partial one copied; the parked one stays for further continuations), or that sequence itself (cut to
    // the shared tokens) when no sequence or block is free for a fork; else the cached blocks of its longest
    // whole-block prefix.
    private int AttachSequence(BatchRequest request)
    {
        ReadOnlySpan<int> context = request.Context;
        (ParkedSequence? best, int bestShared) = BestParked(context);
        // Worth more than the published blocks: all the parked sequence holds, or more than a whole block (a
        // shared system prompt, a chat turn's history).
        if (best is not null && (bestShared == best.Committed || bestShared > _blockTokens))
        {
            while (_admitted.Count + _parked.Count >= _context.MaxSequences && EvictOldestParked(except: best.Seq)) { }
            KvPoolState pool = _context.KvPool;
            // A fork gains nothing over the published blocks at a whole-block boundary unless it is all there is.
            bool forkGains = bestShared % _blockTokens != 0 || bestShared == best.Committed;
            if (forkGains && _admitted.Count + _parked.Count < _context.MaxSequences && pool.Free + pool.Cached > 0)
            {
                request.Seq = _context.ForkSequence(best.Seq, bestShared);
                _parked.Remove(best);
                _parked.Add(best);  // most recently used: evicted last
                return bestShared;
            }
            // Its tokens past the shared ones go; the next write into a block it shares or published is copied
            // first, which takes a block.
            if (bestShared == best.Committed || bestShared % _blockTokens == 0 || pool.Free + pool.Cached > 0)
            {
                request.Seq = best.Seq;
                _parked.Remove(best);
                if (bestShared < best.Committed) _context.TruncateSequence(best.Seq, bestShared);
                return bestShared;
            }
        }
        while (_admitted.Count + _parked.Count >= _context.MaxSequences && EvictOldestParked()) { }
        request.Seq = _context.AddSequence();
        return _prefixCaching ? _context.ReuseSequencePrefix(request.Seq, context) : 0;
    }

    // The parked sequence sharing the longest prefix with a context, and that length.
    private (ParkedSequence? Best, int Shared) BestParked(ReadOnlySpan<int> context)
    {
        ParkedSequence? best = null;
        int bestShared = 0;
        foreach (ParkedSequence parked in _parked)
        {
            int shared = context.CommonPrefixLength(parked.Tokens);
            if (shared > bestShared)
            {
                best = parked;
                bestShared = shared;
            }
        }
        return (best, bestShared);
    }

    // Keeps a finished request's sequence for a later request that continues it; Release then leaves it be.
    private void Park(BatchRequest request)
    {
        ReadOnlySpan<int> history = request.Sequence.History;
        // Tokens committed past a stop token are not in the history: such a sequence is only ever forked.
        int known = Math.Min(request.Committed, history.Length);
        _parked.Add(new ParkedSequence(request.Seq, history[..known].ToArray(), request.Committed));
        request.Seq = -1;
    }

    // Removes the oldest parked sequence (its whole blocks stay cached); false when none is parked but except.
    private bool EvictOldestParked(int except = -1)
    {
        int at = _parked.FindIndex(p => p.Seq != except);
        if (at < 0) return false;
        int seq = _parked[at].Seq;
        _parked.RemoveAt(at);
        _context.RemoveSequence(seq);
        return true;
    }

    private sealed record ParkedSequence(int Seq, int[] Tokens, int Committed);

    // Preempts the newest admitted request; when it is the only one it cannot fit and finishes instead.
    // Returns false when the pool cannot be helped (or the request asking, when given, was the one to go).
    private bool MakeRoom(BatchRequest? asking)
    {
        BatchRequest newest = _admitted.MaxBy(r => r.Arrival)!;
        if (!Preempt(newest))
        {
            Finish(newest, FinishReason.ContextFull);  // alone and still too big: the pool cannot hold it
            return false;
        }
        return newest != asking;
    }

    // Frees a request's sequence and puts it back in line; it resumes where it stopped once readmitted.
    private bool Preempt(BatchRequest request)
    {
        if (_admitted.Count <= 1) return false;
        _context.RemoveSequence(request.Seq);
        request.Seq = -1;
        request.Committed = 0;
        request.State = BatchRequest.Phase.Waiting;
        request.Preemptions++;
        Interlocked.Increment(ref _preemptions);
        _admitted.Remove(request);
        InsertWaiting(request);
        return true;
    }

    private void Finish(BatchRequest request, FinishReason finish)
    {
        if (_prefixCaching && request.Seq >= 0 && finish is FinishReason.EndOfSequence or FinishReason.MaxTokens) Park(request);
        Release(request);
        request.Output.Writer.TryWrite(new BatchChunk([], request.Result(finish)));
        request.Output.Writer.TryComplete();
    }

    private void Fail(BatchRequest request, Exception error)
    {
        Release(request);
        request.Output.Writer.TryComplete(error);
    }

    private void Release(BatchRequest request)
    {
        if (request.Seq >= 0) _context.RemoveSequence(request.Seq);
        request.Seq = -1;
        request.State = BatchRequest.Phase.Waiting;
        request.Trie?.Dispose();
        _admitted.Remove(request);
        _waiting.Remove(request);
    }
}

/// <summary>A <see cref="BatchGenerator"/>'s state: requests decoding or prefilling, requests waiting for a sequence or
/// KV blocks, finished requests' sequences kept for continuations and the blocks they hold (the first to go when
/// others need them; a block shared by forks counts once per holder), and the KV pool (all zeros without one).</summary>
public sealed record BatchGauges(int Running, int Waiting, int Parked, int ParkedBlocks, KvPoolState KvPool);

/// <summary>Counters of a <see cref="BatchGenerator"/>: decoding steps, preemptions, prompt tokens reused from
/// the prefix cache, tokens prefilled (recomputation included), and where the scheduler's time went.</summary>
public readonly record struct BatchStatistics(long Steps, long Preemptions, long ReusedTokens, long PrefilledTokens)
{
    /// <summary>The batched decoding steps' whole time: drafting, the forward pass, delivering tokens and
    /// updating the trie (a step that fell back to each request alone is not counted).</summary>
    public TimeSpan StepTime { get; init; }
    /// <summary>Of <see cref="StepTime"/>: building the drafts from the trie.</summary>
    public TimeSpan DraftTime { get; init; }
    /// <summary>Of <see cref="StepTime"/>: the native forward pass and verification.</summary>
    public TimeSpan ForwardTime { get; init; }
    /// <summary>Prefilling prompts (native time), outside the steps.</summary>
    public TimeSpan PrefillTime { get; init; }
}
