namespace Lookahead.Drafting;

/// <summary>
/// Builds a draft tree for the next step from the trie: matches the longest suffix of the context
/// (up to MaxQueryLength tokens) that the trie knows, falling back to shorter suffixes, and keeps the
/// largest draft found (a shorter match replaces a longer one's draft only when it is strictly larger).
/// Candidates are taken best-first by frequency, so a parent always precedes its children and siblings
/// come in decreasing frequency. Allocation-free once its buffers have grown to the workload.
/// </summary>
public sealed class DraftBuilder
{
    private readonly DraftOptions _options;
    private readonly DraftTree _candidate;
    private readonly DraftTree _selection;  // parallel mode: the hierarchical selection its branches come from
    private readonly bool[] _hasChild;
    private readonly long[] _topKeys;  // PushChildren's best children so far, keys descending
    private long[] _heapKeys = new long[256];
    private int[] _heapParents = new int[256];
    private float[] _heapConfidence = new float[256];
    private int _heapCount;
    private int _limit;  // node budget of the draft being built
    private TrieRequest _request = null!;  // whose prompt counts the draft being built sees

    /// <summary>Creates a builder for drafts of at most options.DecodingLength nodes.</summary>
    public DraftBuilder(DraftOptions options)
    {
        options.Validate();
        _options = options;
        _candidate = new DraftTree(options.DecodingLength);
        _selection = new DraftTree(options.DecodingLength);
        _hasChild = new bool[options.DecodingLength];
        _topKeys = new long[options.DecodingLength];
    }

    /// <summary>The limits this builder applies.</summary>
    public DraftOptions Options => _options;

    /// <summary>Writes into draft the tree rooted at context's last token, of at most maxNodes nodes
    /// (default: the options' decoding length; the adaptive sizer asks for no more than it may use).</summary>
    /// <exception cref="ArgumentException">context is empty.</exception>
    public void Build(TokenTrie trie, ReadOnlySpan<int> context, DraftTree draft, int maxNodes = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(trie);
        Build(trie, trie.DefaultRequest, context, draft, maxNodes);
    }

    /// <summary>As <see cref="Build(TokenTrie, ReadOnlySpan{int}, DraftTree, int)"/> for a request opened with
    /// <see cref="TokenTrie.OpenRequest"/>: its own prompt's n-grams and every request's output.</summary>
    /// <exception cref="ArgumentException">context is empty.</exception>
    /// <exception cref="ObjectDisposedException">The request was closed.</exception>
    public void Build(TrieRequest request, ReadOnlySpan<int> context, DraftTree draft, int maxNodes = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(request);
        ObjectDisposedException.ThrowIf(!request.IsOpen, request);
        Build(request.Trie, request, context, draft, maxNodes);
    }

    private void Build(TokenTrie trie, TrieRequest request, ReadOnlySpan<int> context, DraftTree draft, int maxNodes)
    {
        if (context.IsEmpty) throw new ArgumentException("the context is empty", nameof(context));
        _request = request;
        draft.Reset(context[^1]);
        _limit = Math.Clamp(maxNodes, 1, _options.DecodingLength);
        if (_limit == 1) return;
        for (int length = Math.Min(_options.MaxQueryLength, context.Length); length >= 1; length--)
        {
            int match = trie.Find(context[^length..]);
            if (match < 0) continue;
            _candidate.Reset(context[^1]);
            switch (_options.Mode)
            {
                case DraftMode.Single: ExpandChain(trie, match, _candidate); break;
                case DraftMode.Parallel: ExpandParallel(trie, match, _candidate); break;
                default: ExpandBestFirst(trie, match, _candidate); break;
            }
            if (_candidate.Count > draft.Count) draft.CopyFrom(_candidate);
            if (draft.Count == _limit) break;
        }
    }

    private void ExpandChain(TokenTrie trie, int node, DraftTree tree)
    {
        int parent = 0;
        while (tree.Count < _limit && tree.Depths[parent] < _options.BranchLength)
        {
            int best = -1, bestScore = 0;
            long total = 0;
            for (int child = trie.FirstChild(node); child >= 0; child = trie.NextSibling(child))
            {
                int score = trie.Frequency(child, _options.Frequency, _request);
                total += score;
                if (score > bestScore || (score == bestScore && score > 0 && child < best))
                {
                    best = child;
                    bestScore = score;
                }
            }
            if (best < 0) return;
            parent = tree.Add(trie.TokenOf(best), parent, tree.Confidence[parent] * bestScore / total);
            node = best;
        }
    }

    private void ExpandBestFirst(TokenTrie trie, int node, DraftTree tree)
    {
        _heapCount = 0;
        PushChildren(trie, node, 0, 1, _limit - tree.Count);
        while (_heapCount > 0 && tree.Count < _limit)
        {
            (int trieNode, int parent, float confidence) = Pop();
            int index = tree.Add(trie.TokenOf(trieNode), parent, confidence);
            if (tree.Depths[index] < _options.BranchLength) PushChildren(trie, trieNode, index, confidence, _limit - tree.Count);
        }
    }

    // Branches of the best-first selection, each copied whole from the root, best leaves first.
    private void ExpandParallel(TokenTrie trie, int node, DraftTree tree)
    {
        _selection.Reset(tree.Tokens[0]);
        ExpandBestFirst(trie, node, _selection);
        Array.Clear(_hasChild, 0, _selection.Count);
        for (int i = 1; i < _selection.Count; i++) _hasChild[_selection.Parents[i]] = true;
        Span<int> path = stackalloc int[_options.BranchLength];
        for (int leaf = 1; leaf < _selection.Count && tree.Count < _limit; leaf++)
        {
            if (_hasChild[leaf]) continue;
            int length = 0;
            for (int n = leaf; n > 0; n = _selection.Parents[n]) path[length++] = n;
            int parent = 0;
            for (int i = length - 1; i >= 0 && tree.Count < _limit; i--)
                parent = tree.Add(_selection.Tokens[path[i]], parent, _selection.Confidence[path[i]]);
        }
    }

    // Pushes the best `budget` children with a positive score (a child ranked below them can never be
    // taken: its better siblings, all in the heap with it, would fill the remaining budget first); each
    // child's confidence is its share of all its siblings' scores times the parent's confidence. One pass
    // over the children: common tokens have hundreds, of which a draft uses a handful.
    private void PushChildren(TokenTrie trie, int node, int draftParent, float parentConfidence, int budget)
    {
        if (budget <= 0) return;
        long total = 0;
        int kept = 0;
        for (int child = trie.FirstChild(node); child >= 0; child = trie.NextSibling(child))
        {
            int score = trie.Frequency(child, _options.Frequency, _request);
            total += score;
            if (score <= 0) continue;
            long key = ((long)score << 32) | (uint)(int.MaxValue - child);
            if (kept == budget && key <= _topKeys[kept - 1]) continue;
            int at = kept < budget ? kept++ : kept - 1;
            for (; at > 0 && _topKeys[at - 1] < key; at--) _topKeys[at] = _topKeys[at - 1];
            _topKeys[at] = key;
        }
        for (int i = 0; i < kept; i++)
            Push(_topKeys[i], draftParent, parentConfidence * (int)(_topKeys[i] >> 32) / total);
    }

    // Max-heap on (score, lower trie index first).
    private void Push(long key, int parent, float confidence)
    {
        if (_heapCount == _heapKeys.Length)
        {
            Array.Resize(ref _heapKeys, _heapKeys.Length * 2);
            Array.Resize(ref _heapParents, _heapParents.Length * 2);
            Array.Resize(ref _heapConfidence, _heapConfidence.Length * 2);
        }
        int i = _heapCount++;
        while (i > 0)
        {
            int up = (i - 1) / 2;
            if (_heapKeys[up] >= key) break;
            Move(up, i);
            i = up;
        }
        _heapKeys[i] = key;
        _heapParents[i] = parent;
        _heapConfidence[i] = confidence;
    }

    private (int TrieNode, int Parent, float Confidence) Pop()
    {
        long top = _heapKeys[0];
        int topParent = _heapParents[0];
        float topConfidence = _heapConfidence[0];
        int last = --_heapCount;
        long key = _heapKeys[last];
        int i = 0;
        while (true)
        {
            int child = 2 * i + 1;
            if (child >= _heapCount) break;
            if (child + 1 < _heapCount && _heapKeys[child + 1] > _heapKeys[child]) child++;
            if (_heapKeys[child] <= key) break;
            Move(child, i);
            i = child;
        }
        Move(last, i);
        return (int.MaxValue - (int)(uint)top, topParent, topConfidence);
    }

    private void Move(int from, int to)
    {
        _heapKeys[to] = _heapKeys[from];
        _heapParents[to] = _heapParents[from];
        _heapConfidence[to] = _heapConfidence[from];
    }
}
