using System.Runtime.InteropServices;

namespace Lookahead.Drafting;

/// <summary>
/// A trie of token n-grams from prompts and outputs, the draft source of lookahead decoding.
/// </summary>
/// <remarks>
/// Nodes live in one growable unmanaged arena, addressed by int index (never by pointer, so growth
/// invalidates nothing); roots are indexed by token id; children are found through one hash table keyed
/// by (parent, token) and enumerated through first-child / next-sibling links. Each node counts how often
/// its n-gram occurred in outputs (persisting across requests) and in the current request's prompt (an
/// epoch stamp makes that count stale at request end in O(1)). When a root's tree or the whole trie grows
/// past its limit it is squeezed: output counts halve and nodes left with no count go, with their subtrees.
/// One request at a time (BeginRequest while one is open throws InvalidOperationException); not
/// thread-safe. Every walk is iterative, so no trie shape can overflow the stack. After Dispose every
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
        public int PromptFreq;   // valid only when PromptEpoch == the trie's epoch
        public int PromptEpoch;
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
    private int _epoch = 1;
    private int[] _walk = new int[64];
    private int _inRequest;  // 1 while a request is open (set atomically: two generations cannot both begin)

    // Output streaming state: nodes at the ends of the windows still open, deepest window first.
    private readonly int[] _cursorNodes;
    private readonly int[] _cursorDepths;
    private readonly int[] _grownRoots;  // roots of the windows one output token extended
    private int _cursorCount;
    private readonly int[] _history;  // the last WindowLength output tokens, to rebuild cursors after a squeeze
    private int _historyCount;

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
        _cursorNodes = new int[Options.WindowLength];
        _cursorDepths = new int[Options.WindowLength];
        _grownRoots = new int[Options.WindowLength + 1];
        _history = new int[Options.WindowLength];
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
            InsertPrompt(prompt);
        }
        catch
        {
            Volatile.Write(ref _inRequest, 0);
            throw;
        }
    }

    private void InsertPrompt(ReadOnlySpan<int> prompt)
    {
        _epoch++;
        _cursorCount = 0;
        _historyCount = 0;
        int window = Options.WindowLength;
        for (int start = 0; start < prompt.Length; start++)
        {
            if (IsStop(prompt[start])) continue;
            int node = GetOrAddRoot(prompt[start]);
            BumpPrompt(node);
            int end = Math.Min(prompt.Length, start + window);
            for (int i = start + 1; i < end; i++)
            {
                node = GetOrAddChild(node, prompt[i]);
                BumpPrompt(node);
            }
        }
        foreach (int token in prompt) EnforceRootLimit(token);
        EnforceGlobalLimit();
    }

    /// <summary>Ends the request: its prompt counts stop counting (O(1)) and output streaming restarts.</summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void EndRequest()
    {
        ThrowIfDisposed();
        _epoch++;
        _cursorCount = 0;
        _historyCount = 0;
        Volatile.Write(ref _inRequest, 0);
    }

    /// <summary>Streams committed output tokens in: every n-gram ending at each token gains an output count.</summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void AppendOutput(ReadOnlySpan<int> tokens)
    {
        ThrowIfDisposed();
        foreach (int token in tokens) AppendOutput(token);
    }

    /// <summary>Inserts a finished text's n-grams as output (warm-up with a corpus of outputs).</summary>
    /// <exception cref="ObjectDisposedException">The trie was disposed.</exception>
    public void AddOutputCorpus(ReadOnlySpan<int> tokens)
    {
        ThrowIfDisposed();
        int savedCursors = _cursorCount, savedHistory = _historyCount, squeezes = SqueezeCount;
        Span<int> nodes = stackalloc int[_cursorCount];
        Span<int> depths = stackalloc int[_cursorCount];
        Span<int> history = stackalloc int[_historyCount];
        _cursorNodes.AsSpan(0, _cursorCount).CopyTo(nodes);
        _cursorDepths.AsSpan(0, _cursorCount).CopyTo(depths);
        _history.AsSpan(0, _historyCount).CopyTo(history);
        _cursorCount = _historyCount = 0;
        AppendOutput(tokens);
        // The corpus is a separate text: resume the request's own windows where they were.
        _cursorCount = savedCursors;
        _historyCount = savedHistory;
        nodes.CopyTo(_cursorNodes);
        depths.CopyTo(_cursorDepths);
        history.CopyTo(_history);
        if (SqueezeCount != squeezes) RebuildCursors();
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

    /// <summary>A node's frequency under a source.</summary>
    internal int Frequency(int node, FrequencySource source)
    {
        ref Node n = ref _nodes[CheckNode(node)];
        int prompt = n.PromptEpoch == _epoch ? n.PromptFreq : 0;
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

    /// <summary>Removes every node (options stay).</summary>
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
        _cursorCount = 0;
        _historyCount = 0;
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

    private void AppendOutput(int token)
    {
        int window = Options.WindowLength;
        // Extend every open window by the token; windows that reach full length close. Each extended window,
        // closing ones included, may have grown its root's tree by one node: remember those roots.
        int kept = 0, grown = 0;
        for (int i = 0; i < _cursorCount; i++)
        {
            int child = GetOrAddChild(_cursorNodes[i], token);
            BumpOutput(child);
            _grownRoots[grown++] = _nodes[child].RootToken;
            int depth = _cursorDepths[i] + 1;
            if (depth < window)
            {
                _cursorNodes[kept] = child;
                _cursorDepths[kept] = depth;
                kept++;
            }
        }
        _cursorCount = kept;
        if (!IsStop(token))
        {
            int root = GetOrAddRoot(token);
            BumpOutput(root);
            _cursorNodes[_cursorCount] = root;
            _cursorDepths[_cursorCount] = 1;
            _cursorCount++;
            _grownRoots[grown++] = token;
        }
        PushHistory(token);
        for (int i = 0; i < grown; i++) EnforceRootLimit(_grownRoots[i]);
        EnforceGlobalLimit();
    }

    private void PushHistory(int token)
    {
        if (_historyCount == _history.Length)
        {
            Array.Copy(_history, 1, _history, 0, _history.Length - 1);
            _historyCount--;
        }
        _history[_historyCount++] = token;
    }

    // After a squeeze the cursors may point at removed nodes: walk the recent history again.
    private void RebuildCursors()
    {
        _cursorCount = 0;
        for (int start = 0; start < _historyCount; start++)
        {
            if (IsStop(_history[start])) continue;
            int node = GetOrAddRoot(_history[start]);
            for (int i = start + 1; i < _historyCount; i++) node = GetOrAddChild(node, _history[i]);
            int depth = _historyCount - start;
            if (depth >= Options.WindowLength) continue;
            _cursorNodes[_cursorCount] = node;
            _cursorDepths[_cursorCount] = depth;
            _cursorCount++;
        }
    }

    private void BumpPrompt(int node)
    {
        ref Node n = ref _nodes[node];
        if (n.PromptEpoch != _epoch)
        {
            n.PromptEpoch = _epoch;
            n.PromptFreq = 0;
        }
        if (n.PromptFreq < int.MaxValue) n.PromptFreq++;
    }

    private void BumpOutput(int node)
    {
        ref Node n = ref _nodes[node];
        if (n.OutputFreq < int.MaxValue) n.OutputFreq++;
    }

    // Squeezes one root's tree until it fits (prompt counts keep the current request's n-grams alive, so
    // it may stay above the limit by those). Returns whether it squeezed; cursors are then rebuilt.
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

    // Halves a node's output count; returns whether the node still counts (output or this request's prompt).
    private bool HalveAndCheck(int node)
    {
        ref Node n = ref _nodes[node];
        n.OutputFreq >>= 1;
        return n.OutputFreq > 0 || (n.PromptEpoch == _epoch && n.PromptFreq > 0);
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
