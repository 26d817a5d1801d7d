namespace Lookahead.Drafting;

/// <summary>Which frequencies rank trie nodes.</summary>
public enum FrequencySource
{
    /// <summary>Prompt plus output frequency.</summary>
    Mix,
    /// <summary>The current request's prompt only.</summary>
    Input,
    /// <summary>Earlier outputs only.</summary>
    Output,
}
