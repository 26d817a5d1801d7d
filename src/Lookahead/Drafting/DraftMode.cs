namespace Lookahead.Drafting;

/// <summary>How drafts are shaped from the trie.</summary>
public enum DraftMode
{
    /// <summary>The trie's subtree merged into one multi-branch tree (shared prefixes once).</summary>
    Hierarchical,
    /// <summary>Separate root-to-leaf branches, shared prefixes duplicated.</summary>
    Parallel,
    /// <summary>One chain: the most frequent child at every step.</summary>
    Single,
}
