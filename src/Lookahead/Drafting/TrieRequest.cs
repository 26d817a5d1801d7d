namespace Lookahead.Drafting;

/// <summary>
/// One request open on a shared <see cref="TokenTrie"/> (<see cref="TokenTrie.OpenRequest"/>): its prompt's
/// n-grams count for its own drafts only, and its output streams into the n-grams every request drafts
/// from. Several can be open at once on one trie (a batch of sequences). Not thread-safe: the trie and all
/// its requests serve one thread at a time.
/// </summary>
public sealed class TrieRequest : IDisposable
{
    internal TrieRequest(TokenTrie trie, int windowLength)
    {
        Trie = trie;
        CursorNodes = new int[windowLength];
        CursorDepths = new int[windowLength];
        History = new int[windowLength];
    }

    internal TokenTrie Trie { get; }

    // Trie node -> occurrences in this request's prompt; every node here has PromptRefs counting this request.
    internal Dictionary<int, int> PromptCounts { get; } = new();

    // Output streaming: nodes at the ends of the windows still open, deepest window first, and the last
    // WindowLength output tokens (to rebuild the cursors after a squeeze).
    internal int[] CursorNodes { get; }
    internal int[] CursorDepths { get; }
    internal int CursorCount { get; set; }
    internal int[] History { get; }
    internal int HistoryCount { get; set; }
    internal bool IsOpen { get; set; }

    /// <summary>Streams this request's committed output tokens into the shared output n-grams.</summary>
    /// <exception cref="ObjectDisposedException">The request was closed, or its trie disposed.</exception>
    public void AppendOutput(ReadOnlySpan<int> tokens)
    {
        ObjectDisposedException.ThrowIf(!IsOpen, this);
        Trie.AppendOutput(this, tokens);
    }

    /// <summary>Restarts the output stream after tokens that were not streamed (skipped to save their cost):
    /// the windows open before the gap close unrecorded, and recentTokens (the output's last tokens, at most
    /// WindowLength - 1 of them matter) start the new windows, so that the next tokens streamed continue
    /// them without joining n-grams across the gap.</summary>
    /// <exception cref="ObjectDisposedException">The request was closed, or its trie disposed.</exception>
    public void RestartOutput(ReadOnlySpan<int> recentTokens)
    {
        ObjectDisposedException.ThrowIf(!IsOpen, this);
        ForgetStream();
        int keep = Math.Min(recentTokens.Length, CursorNodes.Length - 1);
        Trie.AppendOutput(this, recentTokens[^keep..]);
    }

    /// <summary>Closes the request: its prompt n-grams stop counting; its output n-grams stay.</summary>
    public void Dispose()
    {
        if (IsOpen) Trie.CloseRequest(this);
    }

    internal void ForgetStream()
    {
        CursorCount = 0;
        HistoryCount = 0;
    }
}
