using System.Runtime.InteropServices;

namespace Lookahead.Drafting;

/// <summary>
/// A trie of token n-grams from prompts and outputs, the draft source of lookahead decoding.
/// </summary>
/// <remarks>
/// Nodes live in one growable unmanaged arena, addressed by int index (never by pointer, so growth
/// invalidates nothing); roots are indexed by token id; children are found through one hash table keyed
/// by (parent, token) and enumerated through first-child / next-sibling links. Each node counts how often
/// its n-gram occurred in outputs (persisting across requests, shared by all of them); each open request
/// counts its own prompt's n-grams (a node knows how many open requests' prompts hold it). When a root's
/// tree or the whole trie grows past its limit it is squeezed: output counts halve and nodes left with no
/// count go, with their subtrees. BeginRequest / EndRequest / AppendOutput serve one generation at a time
/// (BeginRequest while one is open throws InvalidOperationException); <see cref="OpenRequest"/> opens any
/// number more beside it (a batch of sequences). Not thread-safe. Every walk is iterative, so no trie shape can overflow the stack. After Dispose every
/// member but Options and Dispose throws ObjectDisposedException.
/// </remarks>
public sealed unsafe partial class TokenTrie : IDisposable
{
    [StructLayout(LayoutKind.Sequential)]
    internal struct Node
    {
        public int Token;
        public int Parent;       // -1 for a root
        public int FirstChild;   // -1 when none
        public int NextSibling;  // -1 at the end of the list; the free list reuses it
        public int OutputFreq;
        public int PromptRefs;   // open requests whose prompt holds this n-gram
        public int RootToken;    // token of the tree's root
    }

    private Node* _nodes;
    private int _capacity;
    private int _highWater;          // nodes ever handed out; indices below it are live or free
    private int _freeHead = -1;
    private int _liveNodes;
    private int* _roots;             // token -> root node, -1 when none
    private int* _rootSizes;         // token -> nodes in that root's tree
    private int _rootCapacity;
    private EdgeTable _edges;
    private bool[] _isStop = [];
    private int[] _walk = new int[64];
    private int _inRequest;  // 1 while BeginRequest's request is open (set atomically: two generations cannot both begin)

    // The request of BeginRequest / EndRequest / AppendOutput, open for the trie's lifetime (between
    // requests it streams output with no prompt), and every request open now, it first.
    private readonly TrieRequest _default;
    private readonly List<TrieRequest> _open = [];
    private readonly int[] _grownRoots;  // roots of the windows one output token extended

    /// <summary>Creates an empty trie.</summary>
    public TokenTrie(TrieOptions? options = null)
    {
        Options = options ?? new TrieOptions();
        Options.Validate();
        foreach (int token in Options.StopTokens)
        {
            if (token < 0) throw new ArgumentOutOfRangeException(nameof(options), $"stop token {token} is negative");
            if (token >= _isStop.Length) Array.Resize(ref _isStop, token + 1);
            _isStop[token] = true;
        }
        _grownRoots = new int[Options.WindowLength + 1];
        _default = new TrieRequest(this, Options.WindowLength) { IsOpen = true };
        _open.Add(_default);
        AllocateArena(1024);
        EnsureRootCapacity(1024);
        _edges = EdgeTable.Create(2048);
    }

    /// <summary>Capacity settings.</summary>
    public TrieOptions Options { get; }

    /// <summary>Live nodes.</summary>
    public int NodeCount
    {
        get
        {
            ThrowIfDisposed();
            return _liveNodes;
        }
    }

    /// <summary>Unmanaged bytes held (arena, root tables, edge table).</summary>
    public long BytesAllocated
    {
        get
        {
            ThrowIfDisposed();
            return (long)_capacity * sizeof(Node) + 2L * _rootCapacity * sizeof(int) + _edges.BytesAllocated;
        }
    }

    /// <summary>How many times the trie has been squeezed.</summary>
    public int SqueezeCount { get; private set; }

    internal Node* Nodes => _nodes;

    // BeginRequest's request: what Frequency without a request and DraftBuilder.Build(TokenTrie, ...) count.
    internal TrieRequest DefaultRequest => _default;

    /// <summary>Starts a request: forgets the previous prompt's counts and inserts every n-gram of this one.</summary>
    /// <exception cref="InvalidOperationException">A request is already open on this trie.</exception>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void BeginRequest(ReadOnlySpan<int> prompt)
    {
        ThrowIfDisposed();
        if (Interlocked.CompareExchange(ref _inRequest, 1, 0) != 0)
            throw new InvalidOperationException(
                "this TokenTrie is already serving a request (BeginRequest without EndRequest): a trie serves one generation at a time");
        try
        {
            ForgetPrompt(_default);
            _default.ForgetStream();
            InsertPrompt(_default, prompt);
        }
        catch
        {
            Volatile.Write(ref _inRequest, 0);
            throw;
        }
    }

    /// <summary>Ends the request: its prompt counts stop counting and output streaming restarts.</summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void EndRequest()
    {
        ThrowIfDisposed();
        ForgetPrompt(_default);
        _default.ForgetStream();
        Volatile.Write(ref _inRequest, 0);
    }

    /// <summary>
    /// Opens a request beside any others: its prompt's n-grams count for drafts built for it only
    /// (<see cref="DraftBuilder.Build(TrieRequest, ReadOnlySpan{int}, DraftTree, int)"/>), its output (its
    /// <see cref="TrieRequest.AppendOutput"/>) counts for every request. Dispose it when the request ends.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public TrieRequest OpenRequest(ReadOnlySpan<int> prompt)
    {
        ThrowIfDisposed();
        var request = new TrieRequest(this, Options.WindowLength) { IsOpen = true };
        _open.Add(request);
        try
        {
            InsertPrompt(request, prompt);
        }
        catch
        {
            CloseRequest(request);
            throw;
        }
        return request;
    }

    /// <summary>Requests open now: BeginRequest's (always counted) and those of OpenRequest.</summary>
    public int OpenRequests => _open.Count;

    internal void CloseRequest(TrieRequest request)
    {
        if (_nodes is not null) ForgetPrompt(request);
        request.IsOpen = false;
        _open.Remove(request);
    }

    private void InsertPrompt(TrieRequest request, ReadOnlySpan<int> prompt)
    {
        int window = Options.WindowLength;
        for (int start = 0; start < prompt.Length; start++)
        {
            if (IsStop(prompt[start])) continue;
            int node = GetOrAddRoot(prompt[start]);
            BumpPrompt(request, node);
            int end = Math.Min(prompt.Length, start + window);
            for (int i = start + 1; i < end; i++)
            {
                node = GetOrAddChild(node, prompt[i]);
                BumpPrompt(request, node);
            }
        }
        foreach (int token in prompt) EnforceRootLimit(token);
        EnforceGlobalLimit();
    }

    private void ForgetPrompt(TrieRequest request)
    {
        foreach (int node in request.PromptCounts.Keys) _nodes[node].PromptRefs--;
        request.PromptCounts.Clear();
    }

    /// <summary>Streams committed output tokens in: every n-gram ending at each token gains an output count.</summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void AppendOutput(ReadOnlySpan<int> tokens) => AppendOutput(_default, tokens);

    internal void AppendOutput(TrieRequest request, ReadOnlySpan<int> tokens)
    {
        ThrowIfDisposed();
        foreach (int token in tokens) AppendOutput(request, token);
    }

    /// <summary>Inserts a finished text's n-grams as output (warm-up with a corpus of outputs).</summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void AddOutputCorpus(ReadOnlySpan<int> tokens)
    {
        ThrowIfDisposed();
        // The corpus is a separate text: its windows are its own, the open requests' stay where they were.
        var corpus = new TrieRequest(this, Options.WindowLength) { IsOpen = true };
        _open.Add(corpus);
        try
        {
            AppendOutput(corpus, tokens);
        }
        finally
        {
            CloseRequest(corpus);
        }
    }

    // Navigation for the draft builder (and the tests): node indices are this trie's own, checked on use.

    /// <summary>The node of a token sequence, or -1.</summary>
    internal int Find(ReadOnlySpan<int> tokens)
    {
        ThrowIfDisposed();
        if (tokens.IsEmpty) return -1;
        int node = RootOf(tokens[0]);
        for (int i = 1; i < tokens.Length && node >= 0; i++) node = _edges.Find(node, tokens[i]);
        return node;
    }

    /// <summary>A node's frequency under a source, for BeginRequest's request.</summary>
    internal int Frequency(int node, FrequencySource source) => Frequency(node, source, _default);

    /// <summary>A node's frequency under a source, for a request (its own prompt counts, everyone's output).</summary>
    internal int Frequency(int node, FrequencySource source, TrieRequest request)
    {
        ref Node n = ref _nodes[CheckNode(node)];
        // Most nodes are in no open prompt: no lookup for them.
        int prompt = n.PromptRefs > 0 && request.PromptCounts.TryGetValue(node, out int count) ? count : 0;
        return source switch
        {
            FrequencySource.Input => prompt,
            FrequencySource.Output => n.OutputFreq,
            _ => (int)Math.Min(int.MaxValue, (long)prompt + n.OutputFreq),
        };
    }

    /// <summary>The token of a node.</summary>
    internal int TokenOf(int node) => _nodes[CheckNode(node)].Token;

    /// <summary>The first child of a node, or -1.</summary>
    internal int FirstChild(int node) => _nodes[CheckNode(node)].FirstChild;

    /// <summary>The next sibling of a node, or -1.</summary>
    internal int NextSibling(int node) => _nodes[CheckNode(node)].NextSibling;

    /// <summary>Removes every node (options stay; open requests lose their prompt counts and output windows).</summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void Clear()
    {
        ThrowIfDisposed();
        _highWater = 0;
        _freeHead = -1;
        _liveNodes = 0;
        new Span<int>(_roots, _rootCapacity).Fill(-1);
        new Span<int>(_rootSizes, _rootCapacity).Clear();
        _edges.Clear();
        ForgetOpenRequests();
    }

    // Every node is gone or replaced (Clear, Load): the open requests' prompt counts and windows with them.
    private void ForgetOpenRequests()
    {
        foreach (TrieRequest request in _open)
        {
            request.PromptCounts.Clear();
            request.ForgetStream();
        }
    }

    /// <summary>Halves output counts everywhere and drops nodes left with no count.</summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void Squeeze()
    {
        ThrowIfDisposed();
        for (int token = 0; token < _rootCapacity; token++)
            if (_roots[token] >= 0) SqueezeRoot(token);
        SqueezeCount++;
        RebuildCursors();
    }

    /// <inheritdoc />
    public void Dispose()
    {
        NativeMemory.Free(_nodes);
        NativeMemory.Free(_roots);
        NativeMemory.Free(_rootSizes);
        _edges.Dispose();
        _nodes = null;
        _roots = null;
        _rootSizes = null;
        GC.SuppressFinalize(this);
    }

    /// <summary>Frees unmanaged memory if Dispose was not called.</summary>
    ~TokenTrie() => Dispose();

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_nodes is null, this);

    // A node index handed out by this trie (Find, FirstChild, NextSibling); anything else is refused
    // rather than read from arbitrary memory.
    private int CheckNode(int node)
    {
        ThrowIfDisposed();
        if ((uint)node >= (uint)_highWater) throw new ArgumentOutOfRangeException(nameof(node), node, "not a node of this trie");
        return node;
    }

    private bool IsStop(int token) => (uint)token < (uint)_isStop.Length && _isStop[token];

    private int RootOf(int token) => (uint)token < (uint)_rootCapacity ? _roots[token] : -1;

    private void AppendOutput(TrieRequest request, int token)
    {
        int window = Options.WindowLength;
        int[] cursorNodes = request.CursorNodes, cursorDepths = request.CursorDepths;
        // Extend every open window by the token; windows that reach full length close. Each extended window,
        // closing ones included, may have grown its root's tree by one node: remember those roots.
        int kept = 0, grown = 0;
        for (int i = 0; i < request.CursorCount; i++)
        {
            int child = GetOrAddChild(cursorNodes[i], token);
            BumpOutput(child);
            _grownRoots[grown++] = _nodes[child].RootToken;
            int depth = cursorDepths[i] + 1;
            if (depth < window)
            {
                cursorNodes[kept] = child;
                cursorDepths[kept] = depth;
                kept++;
            }
        }
        request.CursorCount = kept;
        if (!IsStop(token))
        {
            int root = GetOrAddRoot(token);
            BumpOutput(root);
            cursorNodes[request.CursorCount] = root;
            cursorDepths[request.CursorCount] = 1;
            request.CursorCount++;
            _grownRoots[grown++] = token;
        }
        PushHistory(request, token);
        for (int i = 0; i < grown; i++) EnforceRootLimit(_grownRoots[i]);
        EnforceGlobalLimit();
    }

    private static void PushHistory(TrieRequest request, int token)
    {
        int[] history = request.History;
        if (request.HistoryCount == history.Length)
        {
            Array.Copy(history, 1, history, 0, history.Length - 1);
            request.HistoryCount--;
        }
        history[request.HistoryCount++] = token;
    }

    // After a squeeze the cursors may point at removed nodes: every open request walks its recent history again.
    private void RebuildCursors()
    {
        foreach (TrieRequest request in _open) RebuildCursors(request);
    }

    private void RebuildCursors(TrieRequest request)
    {
        int[] history = request.History;
        int count = request.HistoryCount;
        request.CursorCount = 0;
        for (int start = 0; start < count; start++)
        {
            if (IsStop(history[start])) continue;
            int node = GetOrAddRoot(history[start]);
            for (int i = start + 1; i < count; i++) node = GetOrAddChild(node, history[i]);
            int depth = count - start;
            if (depth >= Options.WindowLength) continue;
            request.CursorNodes[request.CursorCount] = node;
            request.CursorDepths[request.CursorCount] = depth;
            request.CursorCount++;
        }
    }

    private void BumpPrompt(TrieRequest request, int node)
    {
        ref int count = ref System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(request.PromptCounts, node, out bool existed);
        if (!existed) _nodes[node].PromptRefs++;
        if (count < int.MaxValue) count++;
    }

    private void BumpOutput(int node)
    {
        ref Node n = ref _nodes[node];
        if (n.OutputFreq < int.MaxValue) n.OutputFreq++;
    }

    // Squeezes one root's tree until it fits (prompt counts keep the open requests' n-grams alive, so it
    // may stay above the limit by those). Returns whether it squeezed; cursors are then rebuilt.
    private bool EnforceRootLimit(int rootToken)
    {
        if ((uint)rootToken >= (uint)_rootCapacity || _rootSizes[rootToken] <= Options.MaxNodesPerRoot) return false;
        int before;
        do
        {
            before = _rootSizes[rootToken];
            SqueezeRoot(rootToken);
        } while (_roots[rootToken] >= 0 && _rootSizes[rootToken] > Options.MaxNodesPerRoot && _rootSizes[rootToken] < before);
        SqueezeCount++;
        RebuildCursors();
        return true;
    }

    private void EnforceGlobalLimit()
    {
        if (_liveNodes <= Options.MaxNodes) return;
        while (_liveNodes > Options.MaxNodes)
        {
            int before = _liveNodes;
            for (int token = 0; token < _rootCapacity; token++)
                if (_roots[token] >= 0) SqueezeRoot(token);
            if (_liveNodes >= before) break;  // only live prompt n-grams remain
        }
        SqueezeCount++;
        RebuildCursors();
    }

    // Halves the root's tree's output counts and removes the nodes left with no count, with their subtrees.
    // Iterative (an explicit stack), so no tree shape can overflow the call stack.
    private void SqueezeRoot(int token)
    {
        int root = _roots[token];
        if (!HalveAndCheck(root))
        {
            RemoveSubtree(root, 0);
            return;
        }
        int top = 0;
        Push(ref top, root);
        while (top > 0)
        {
            int node = _walk[--top];
            int previous = -1;
            for (int child = _nodes[node].FirstChild; child >= 0;)
            {
                int next = _nodes[child].NextSibling;
                if (HalveAndCheck(child))
                {
                    Push(ref top, child);
                    previous = child;
                }
                else
                {
                    if (previous < 0) _nodes[node].FirstChild = next;
                    else _nodes[previous].NextSibling = next;
                    RemoveSubtree(child, top);
                }
                child = next;
            }
        }
    }

    // Halves a node's output count; returns whether the node still counts (output or an open prompt). A
    // node in an open prompt keeps its ancestors (its prompt n-gram's prefixes, in the same prompt).
    private bool HalveAndCheck(int node)
    {
        ref Node n = ref _nodes[node];
        n.OutputFreq >>= 1;
        return n.OutputFreq > 0 || n.PromptRefs > 0;
    }

    // Frees a node and everything below it (the caller unlinks it from its parent's child list), using the
    // walk stack above stackBase (a caller's walk may hold entries below it).
    private void RemoveSubtree(int node, int stackBase)
    {
        int top = stackBase;
        Push(ref top, node);
        while (top > stackBase)
        {
            int current = _walk[--top];
            for (int child = _nodes[current].FirstChild; child >= 0; child = _nodes[child].NextSibling) Push(ref top, child);
            ref Node n = ref _nodes[current];
            if (n.Parent >= 0)
            {
                _edges.Remove(n.Parent, n.Token);
            }
            else
            {
                _roots[n.Token] = -1;
            }
            _rootSizes[n.RootToken]--;
            _liveNodes--;
            n.FirstChild = -1;
            n.NextSibling = _freeHead;
            _freeHead = current;
        }
    }

    // The explicit stack of the walks above; it grows to the largest tree's need and is kept.
    private void Push(ref int top, int node)
    {
        if (top == _walk.Length) Array.Resize(ref _walk, Math.Max(64, _walk.Length * 2));
        _walk[top++] = node;
    }

    private int GetOrAddRoot(int token)
    {
        if (token < 0) throw new ArgumentOutOfRangeException(nameof(token), token, "token ids are non-negative");
        EnsureRootCapacity(token + 1);
        int root = _roots[token];
        if (root >= 0) return root;
        root = NewNode(token, -1, token);
        _roots[token] = root;
        return root;
    }

    private int GetOrAddChild(int parent, int token)
    {
        int child = _edges.Find(parent, token);
        if (child >= 0) return child;
        int rootToken = _nodes[parent].RootToken;
        child = NewNode(token, parent, rootToken);
        ref Node p = ref _nodes[parent];
        _nodes[child].NextSibling = p.FirstChild;
        p.FirstChild = child;
        _edges.Add(parent, token, child);
        return child;
    }

    private int NewNode(int token, int parent, int rootToken)
    {
        int index;
        if (_freeHead >= 0)
        {
            index = _freeHead;
            _freeHead = _nodes[index].NextSibling;
        }
        else
        {
            if (_highWater == _capacity) GrowArena();
            index = _highWater++;
        }
        _nodes[index] = new Node
        {
            Token = token,
            Parent = parent,
            FirstChild = -1,
            NextSibling = -1,
            RootToken = rootToken,
        };
        _liveNodes++;
        _rootSizes[rootToken]++;
        return index;
    }

    private void AllocateArena(int capacity)
    {
        _nodes = (Node*)NativeMemory.Alloc((nuint)capacity, (nuint)sizeof(Node));
        _capacity = capacity;
    }

    private void GrowArena()
    {
        int capacity = checked(_capacity * 2);
        _nodes = (Node*)NativeMemory.Realloc(_nodes, (nuint)capacity * (nuint)sizeof(Node));
        _capacity = capacity;
    }

    private void EnsureRootCapacity(int needed)
    {
        if (needed <= _rootCapacity) return;
        int capacity = Math.Max(needed, _rootCapacity * 2);
        _roots = (int*)NativeMemory.Realloc(_roots, (nuint)capacity * sizeof(int));
        _rootSizes = (int*)NativeMemory.Realloc(_rootSizes, (nuint)capacity * sizeof(int));
        new Span<int>(_roots + _rootCapacity, capacity - _rootCapacity).Fill(-1);
        new Span<int>(_rootSizes + _rootCapacity, capacity - _rootCapacity).Clear();
        _rootCapacity = capacity;
    }
}
