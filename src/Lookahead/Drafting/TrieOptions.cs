namespace Lookahead.Drafting;

/// <summary>Capacity and insertion settings of a <see cref="TokenTrie"/>.</summary>
public sealed record TrieOptions
{
    /// <summary>Most nodes in the whole trie before it is squeezed (default 1,048,576: about 48 MiB).</summary>
    public int MaxNodes { get; init; } = 1 << 20;

    /// <summary>Most nodes below one root token before that root's tree is squeezed (default 65,536).</summary>
    public int MaxNodesPerRoot { get; init; } = 1 << 16;

    /// <summary>Longest n-gram stored, in tokens: branch_length + 1 (default 13 for branch length 12).</summary>
    public int WindowLength { get; init; } = 13;

    /// <summary>Tokens that never start an n-gram (punctuation, whitespace); they may still follow one.</summary>
    public IReadOnlySet<int> StopTokens { get; init; } = new HashSet<int>();

    internal void Validate()
    {
        if (MaxNodes < 16) throw new ArgumentOutOfRangeException(nameof(MaxNodes), MaxNodes, "must be at least 16");
        if (MaxNodesPerRoot < 2) throw new ArgumentOutOfRangeException(nameof(MaxNodesPerRoot), MaxNodesPerRoot, "must be at least 2");
        if (WindowLength < 2) throw new ArgumentOutOfRangeException(nameof(WindowLength), WindowLength, "must be at least 2");
    }
}
