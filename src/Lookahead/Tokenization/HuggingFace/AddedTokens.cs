namespace Lookahead.Tokenization.HuggingFace;

/// <summary>One entry of tokenizer.json's added_tokens.</summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool SingleWord, bool LeftStrip, bool RightStrip);

/// <summary>
/// Finds added tokens (special ones such as &lt;|eot_id|&gt; included) written in text before the model
/// sees it: at each position the longest token that matches, leftmost first, as Hugging Face's added
/// vocabulary does; lstrip/rstrip tokens take the whitespace beside them, single-word tokens match only
/// between non-word characters.
/// </summary>
internal sealed class AddedTokens
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar = new();

    public AddedTokens(IEnumerable<AddedToken> tokens)
    {
        foreach (IGrouping<char, AddedToken> group in tokens.Where(t => t.Content.Length > 0).GroupBy(t => t.Content[0]))
            _byFirstChar[group.Key] = group.OrderByDescending(t => t.Content.Length).ToArray();
    }

    /// <summary>A text segment to encode, or an added token (Token not null) that stands as it is.</summary>
    public readonly record struct Segment(string Text, AddedToken? Token);

    public List<Segment> Split(string text)
    {
        var segments = new List<Segment>();
        if (_byFirstChar.Count == 0) { segments.Add(new Segment(text, null)); return segments; }
        int textStart = 0;
        for (int i = 0; i < text.Length; i++)
        {
            if (!_byFirstChar.TryGetValue(text[i], out AddedToken[]? candidates)) continue;
            AddedToken? found = null;
            foreach (AddedToken token in candidates)
            {
                if (!text.AsSpan(i).StartsWith(token.Content, StringComparison.Ordinal)) continue;
                if (token.SingleWord && !StandsAlone(text, i, i + token.Content.Length)) continue;
                found = token;
                break;
            }
            if (found is null) continue;
            int start = i, end = i + found.Content.Length;
            if (found.LeftStrip) while (start > textStart && char.IsWhiteSpace(text[start - 1])) start--;
            if (found.RightStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
            if (start > textStart) segments.Add(new Segment(text[textStart..start], null));
            segments.Add(new Segment(found.Content, found));
            textStart = end;
            i = end - 1;
        }
        if (textStart < text.Length) segments.Add(new Segment(text[textStart..], null));
        return segments;
    }

    private static bool StandsAlone(string text, int start, int end) =>
        (start == 0 || !IsWordChar(text[start - 1])) && (end == text.Length || !IsWordChar(text[end]));

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
