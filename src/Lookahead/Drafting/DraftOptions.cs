namespace Lookahead.Drafting;

/// <summary>Draft limits and ranking.</summary>
public sealed record DraftOptions
{
    /// <summary>Most draft nodes including the root (1 = plain greedy decoding): the size of every draft,
    /// or with <see cref="Adaptive"/> the largest the sizer may choose.</summary>
    public int DecodingLength { get; init; } = 64;
    /// <summary>Choose each step's draft size from the measured cost of a forward pass and the trie's
    /// confidence (see <see cref="Decoding.DraftSizer"/>); the CLI's "--decoding-length auto".</summary>
    public bool Adaptive { get; init; } = true;
    /// <summary>Deepest draft node below the root.</summary>
    public int BranchLength { get; init; } = 12;
    /// <summary>Longest suffix of the context matched in the trie.</summary>
    public int MaxQueryLength { get; init; } = 2;
    /// <summary>Draft shape.</summary>
    public DraftMode Mode { get; init; } = DraftMode.Hierarchical;
    /// <summary>Which counts rank candidate nodes.</summary>
    public FrequencySource Frequency { get; init; } = FrequencySource.Mix;

    internal void Validate()
    {
        if (DecodingLength < 1) throw new ArgumentException($"decoding length must be at least 1, got {DecodingLength}", nameof(DecodingLength));
        if (BranchLength < 1) throw new ArgumentException($"branch length must be at least 1, got {BranchLength}", nameof(BranchLength));
        if (MaxQueryLength < 1) throw new ArgumentException($"max query length must be at least 1, got {MaxQueryLength}", nameof(MaxQueryLength));
    }
}
