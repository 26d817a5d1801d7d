namespace Lookahead.Tokenization;

/// <summary>
/// Turns a stream of generated token ids into text pieces. Each piece is the text of a short window of
/// recent tokens minus the text of its prefix, so SentencePiece's leading-space handling and byte
/// fallback sequences come out exactly as a whole-sequence decode would give them, at O(window) per call.
/// </summary>
public sealed class StreamingDetokenizer
{
    // A few prompt tokens seed the window so the first generated word keeps its leading space.
    private const int PromptContext = 4;

    private readonly TextTokenizer _tokenizer;
    private readonly List<int> _ids = [];
    private int _prefixOffset;
    private int _readOffset;

    internal StreamingDetokenizer(TextTokenizer tokenizer, ReadOnlySpan<int> prompt)
    {
        _tokenizer = tokenizer;
        ReadOnlySpan<int> tail = prompt.Length > PromptContext ? prompt[^PromptContext..] : prompt;
        foreach (int id in tail) _ids.Add(id);
        _readOffset = _ids.Count;
    }

    /// <summary>Adds tokens and returns the text they complete (possibly empty while a multi-byte
    /// character is still incomplete).</summary>
    public string Append(ReadOnlySpan<int> ids)
    {
        foreach (int id in ids) _ids.Add(id);
        string prefix = _tokenizer.Decode(Window(_prefixOffset, _readOffset));
        string full = _tokenizer.Decode(Window(_prefixOffset, _ids.Count));
        if (full.Length <= prefix.Length || full.EndsWith('\uFFFD') || !full.StartsWith(prefix, StringComparison.Ordinal))
            return "";
        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        return full[prefix.Length..];
    }

    /// <summary>Text still held back at the end of generation (an incomplete byte sequence).</summary>
    public string Flush()
    {
        string prefix = _tokenizer.Decode(Window(_prefixOffset, _readOffset));
        string full = _tokenizer.Decode(Window(_prefixOffset, _ids.Count));
        _prefixOffset = _readOffset = _ids.Count;
        return full.Length > prefix.Length && full.StartsWith(prefix, StringComparison.Ordinal) ? full[prefix.Length..] : "";
    }

    private IEnumerable<int> Window(int start, int end)
    {
        for (int i = start; i < end; i++) yield return _ids[i];
    }
}
