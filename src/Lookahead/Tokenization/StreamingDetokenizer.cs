namespace Lookahead.Tokenization;

/// <summary>
/// Turns a stream of generated token ids into text pieces. Each piece is the text of a short window of
/// recent tokens minus the text of its prefix, so SentencePiece's space handling and byte-fallback
/// sequences come out exactly as decoding the whole sequence gives them, at O(window) per call.
/// </summary>
/// <remarks>
/// SentencePiece drops the leading space of a decoded text. That is right at the very start of the text
/// but wrong for a window in the middle of it, so mid-text windows are decoded behind an anchor piece
/// (a plain character) whose text is then cut off again.
/// </remarks>
public sealed class StreamingDetokenizer
{
    // A few prompt tokens seed the window so the first generated word keeps its leading space.
    private const int PromptContext = 4;

    private readonly TextTokenizer _tokenizer;
    private readonly List<int> _ids = [];
    private readonly bool _textStartsHere;
    private int _prefixOffset;
    private int _readOffset;

    internal StreamingDetokenizer(TextTokenizer tokenizer, ReadOnlySpan<int> prompt)
    {
        _tokenizer = tokenizer;
        _textStartsHere = tokenizer.Decode(prompt.ToArray()).Length == 0;
        ReadOnlySpan<int> tail = prompt.Length > PromptContext ? prompt[^PromptContext..] : prompt;
        foreach (int id in tail) _ids.Add(id);
        _readOffset = _ids.Count;
    }

    /// <summary>Adds tokens and returns the text they complete (possibly empty while a multi-byte
    /// character is still incomplete).</summary>
    public string Append(ReadOnlySpan<int> ids)
    {
        foreach (int id in ids) _ids.Add(id);
        string prefix = DecodeWindow(_prefixOffset, _readOffset);
        string full = DecodeWindow(_prefixOffset, _ids.Count);
        if (full.Length <= prefix.Length || full.EndsWith('\uFFFD') || !full.StartsWith(prefix, StringComparison.Ordinal))
            return "";
        _prefixOffset = _readOffset;
        _readOffset = _ids.Count;
        return full[prefix.Length..];
    }

    /// <summary>Text still held back at the end of generation (an incomplete byte sequence).</summary>
    public string Flush()
    {
        string prefix = DecodeWindow(_prefixOffset, _readOffset);
        string full = DecodeWindow(_prefixOffset, _ids.Count);
        _prefixOffset = _readOffset = _ids.Count;
        return full.Length > prefix.Length && full.StartsWith(prefix, StringComparison.Ordinal) ? full[prefix.Length..] : "";
    }

    private string DecodeWindow(int start, int end)
    {
        bool atTextStart = _textStartsHere && start == 0;
        if (atTextStart || _tokenizer.AnchorId is not int anchor) return _tokenizer.Decode(Window(null, start, end));
        string text = _tokenizer.Decode(Window(anchor, start, end));
        return text.StartsWith(_tokenizer.AnchorText, StringComparison.Ordinal) ? text[_tokenizer.AnchorText.Length..] : text;
    }

    private IEnumerable<int> Window(int? anchor, int start, int end)
    {
        if (anchor is int id) yield return id;
        for (int i = start; i < end; i++) yield return _ids[i];
    }
}
