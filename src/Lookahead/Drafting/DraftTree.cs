namespace Lookahead.Drafting;

/// <summary>
/// A draft in the layout the native forward pass takes: tokens and parent indices in topological order.
/// Node 0 is the root (the last emitted token, not yet in the KV cache); every other node's parent has a
/// smaller index. Buffers are allocated once for the largest draft and reused.
/// </summary>
public sealed class DraftTree
{
    private readonly int[] _tokens;
    private readonly int[] _parents;
    private readonly int[] _depths;
    private readonly float[] _confidence;

    /// <summary>Creates a tree able to hold capacity nodes (root included).</summary>
    public DraftTree(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _tokens = new int[capacity];
        _parents = new int[capacity];
        _depths = new int[capacity];
        _confidence = new float[capacity];
    }

    /// <summary>Most nodes the tree holds.</summary>
    public int Capacity => _tokens.Length;
    /// <summary>Nodes in use.</summary>
    public int Count { get; private set; }
    /// <summary>Tokens of the nodes in use.</summary>
    public ReadOnlySpan<int> Tokens => _tokens.AsSpan(0, Count);
    /// <summary>Parent of each node in use (-1 for the root).</summary>
    public ReadOnlySpan<int> Parents => _parents.AsSpan(0, Count);
    /// <summary>Depth of each node in use (0 for the root); its position is context length + depth.</summary>
    public ReadOnlySpan<int> Depths => _depths.AsSpan(0, Count);
    /// <summary>The trie's estimate that each node will be accepted (its n-gram's share among its siblings,
    /// times its parent's estimate; 1 for the root). Uncalibrated: the adaptive sizer scales it.</summary>
    public ReadOnlySpan<float> Confidence => _confidence.AsSpan(0, Count);

    /// <summary>Starts a new tree holding only the root.</summary>
    public void Reset(int rootToken)
    {
        _tokens[0] = rootToken;
        _parents[0] = -1;
        _depths[0] = 0;
        _confidence[0] = 1;
        Count = 1;
    }

    /// <summary>Appends a node below an existing one (with its acceptance estimate); returns its index.</summary>
    /// <exception cref="InvalidOperationException">The tree is full.</exception>
    /// <exception cref="ArgumentOutOfRangeException">parent is not an existing node.</exception>
    public int Add(int token, int parent, float confidence = 0)
    {
        if (Count == Capacity) throw new InvalidOperationException($"draft tree is full ({Capacity} nodes)");
        if ((uint)parent >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(parent), parent, "parent must be an existing node");
        int index = Count++;
        _tokens[index] = token;
        _parents[index] = parent;
        _depths[index] = _depths[parent] + 1;
        _confidence[index] = confidence;
        return index;
    }

    /// <summary>Makes this tree a copy of another (which must fit).</summary>
    /// <exception cref="ArgumentException">other does not fit in this tree.</exception>
    public void CopyFrom(DraftTree other)
    {
        if (other.Count > Capacity) throw new ArgumentException($"a draft of {other.Count} nodes does not fit in {Capacity}", nameof(other));
        other.Tokens.CopyTo(_tokens);
        other.Parents.CopyTo(_parents);
        other.Depths.CopyTo(_depths);
        other.Confidence.CopyTo(_confidence);
        Count = other.Count;
    }

    /// <summary>Keeps the first count nodes (a topological prefix stays a valid tree).</summary>
    public void Truncate(int count) => Count = Math.Clamp(count, 1, Count);
}
