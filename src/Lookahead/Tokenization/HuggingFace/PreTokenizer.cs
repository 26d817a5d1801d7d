using System.Globalization;
using System.Text.RegularExpressions;

namespace Lookahead.Tokenization.HuggingFace;

/// <summary>How a split keeps the pieces a pattern matches (Hugging Face's SplitDelimiterBehavior).</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>One pre-tokenizer of tokenizer.json: cuts a piece of normalized text into smaller pieces.</summary>
internal abstract class PreTokenizer
{
    public abstract void Split(string piece, List<string> output);

    /// <summary>Runs the pre-tokenizers in order over the text.</summary>
    public static List<string> Run(IReadOnlyList<PreTokenizer> steps, string text)
    {
        var pieces = new List<string> { text };
        foreach (PreTokenizer step in steps)
        {
            var next = new List<string>(pieces.Count * 2);
            foreach (string piece in pieces) step.Split(piece, next);
            pieces = next;
        }
        return pieces;
    }

    /// <summary>Cuts a piece at matched spans and keeps them as the behavior says.</summary>
    protected static void Cut(string piece, List<(int Start, int End)> matches, SplitBehavior behavior, bool invert, List<string> output)
    {
        var spans = new List<(int Start, int End, bool Match)>();
        int at = 0;
        foreach ((int start, int end) in matches)
        {
            if (start > at) spans.Add((at, start, invert));
            if (end > start) spans.Add((start, end, !invert));
            at = end;
        }
        if (at < piece.Length) spans.Add((at, piece.Length, invert));

        // Hugging Face's folds over (span, is_match), one per behavior.
        var kept = new List<(int Start, int End)>();
        bool previousMatch = false;
        if (behavior == SplitBehavior.MergedWithNext)
        {
            for (int i = spans.Count - 1; i >= 0; i--)
            {
                (int start, int end, bool match) = spans[i];
                if (match && !previousMatch && kept.Count > 0) kept[^1] = (start, kept[^1].End);
                else kept.Add((start, end));
                previousMatch = match;
            }
            kept.Reverse();
        }
        else
        {
            foreach ((int start, int end, bool match) in spans)
            {
                bool merge = behavior switch
                {
                    SplitBehavior.MergedWithPrevious => match && !previousMatch,
                    SplitBehavior.Contiguous => match == previousMatch,
                    _ => false,
                };
                if (behavior == SplitBehavior.Removed && match) { previousMatch = match; continue; }
                if (merge && kept.Count > 0) kept[^1] = (kept[^1].Start, end);
                else kept.Add((start, end));
                previousMatch = match;
            }
        }
        foreach ((int start, int end) in kept) output.Add(piece[start..end]);
    }
}

/// <summary>
/// Split on a regular expression (tokenizer.json's "Split" with a Regex or String pattern). The
/// patterns are written for Oniguruma, whose classes see whole code points; .NET's see UTF-16 units, so
/// text with characters beyond the BMP is matched through a stand-in string with one BMP character of
/// the same Unicode category per code point, and the spans mapped back.
/// </summary>
internal sealed class RegexSplit : PreTokenizer
{
    private static readonly char[] s_standIns = BuildStandIns();

    private readonly Regex _regex;
    private readonly SplitBehavior _behavior;
    private readonly bool _invert;

    public RegexSplit(Regex regex, SplitBehavior behavior, bool invert)
    {
        _regex = regex;
        _behavior = behavior;
        _invert = invert;
    }

    public override void Split(string piece, List<string> output)
    {
        if (piece.Length == 0) return;
        Cut(piece, Matches(_regex, piece), _behavior, _invert, output);
    }

    /// <summary>Match spans of the regex over the text, by code points.</summary>
    public static List<(int Start, int End)> Matches(Regex regex, string text)
    {
        var spans = new List<(int, int)>();
        if (!HasSurrogates(text))
        {
            for (Match m = regex.Match(text); m.Success; m = m.NextMatch()) spans.Add((m.Index, m.Index + m.Length));
            return spans;
        }
        var standIn = new char[text.Length];
        var origin = new List<int>(text.Length + 1);
        int length = 0;
        for (int i = 0; i < text.Length; i++)
        {
            origin.Add(i);
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                standIn[length++] = s_standIns[(int)CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(text[i], text[i + 1]))];
                i++;
            }
            else standIn[length++] = text[i];
        }
        origin.Add(text.Length);
        string mapped = new(standIn, 0, length);
        for (Match m = regex.Match(mapped); m.Success; m = m.NextMatch()) spans.Add((origin[m.Index], origin[m.Index + m.Length]));
        return spans;
    }

    private static bool HasSurrogates(string text)
    {
        foreach (char c in text) if (char.IsSurrogate(c)) return true;
        return false;
    }

    // For each Unicode category, a non-ASCII BMP character of that category (so it matches no literal in
    // the usual patterns and every class exactly as the code point it stands for).
    private static char[] BuildStandIns()
    {
        var table = new char[32];
        var found = new bool[32];
        for (int c = 0xA0; c <= 0xFFFF; c++)
        {
            if (c is >= 0xD800 and <= 0xDFFF) continue;
            int category = (int)CharUnicodeInfo.GetUnicodeCategory((char)c);
            if (!found[category]) { table[category] = (char)c; found[category] = true; }
        }
        for (int i = 0; i < table.Length; i++) if (!found[i]) table[i] = '\uFFFF';
        return table;
    }
}

/// <summary>
/// tokenizer.json's "ByteLevel" pre-tokenizer: optionally a space before a piece that has none, and
/// optionally GPT-2's split. (The byte-to-character mapping itself is applied when the model encodes.)
/// </summary>
internal sealed class ByteLevelSplit : PreTokenizer
{
    private static readonly Regex s_gpt2 = new(
        @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+", RegexOptions.CultureInvariant);

    private readonly bool _addPrefixSpace;
    private readonly bool _useRegex;

    public ByteLevelSplit(bool addPrefixSpace, bool useRegex)
    {
        _addPrefixSpace = addPrefixSpace;
        _useRegex = useRegex;
    }

    public override void Split(string piece, List<string> output)
    {
        if (piece.Length == 0) return;
        if (_addPrefixSpace && piece[0] != ' ') piece = " " + piece;
        if (_useRegex) Cut(piece, RegexSplit.Matches(s_gpt2, piece), SplitBehavior.Isolated, false, output);
        else output.Add(piece);
    }
}

/// <summary>tokenizer.json's "Digits": numeric characters apart from the rest, each alone or in runs.</summary>
internal sealed class DigitsSplit : PreTokenizer
{
    private readonly bool _individual;

    public DigitsSplit(bool individual) => _individual = individual;

    public override void Split(string piece, List<string> output)
    {
        if (piece.Length == 0) return;
        var matches = new List<(int, int)>();
        for (int i = 0; i < piece.Length;)
        {
            int width = char.IsSurrogatePair(piece, i) ? 2 : 1;
            if (IsNumeric(piece, i)) matches.Add((i, i + width));
            i += width;
        }
        Cut(piece, matches, _individual ? SplitBehavior.Isolated : SplitBehavior.Contiguous, false, output);
    }

    private static bool IsNumeric(string text, int index) =>
        CharUnicodeInfo.GetUnicodeCategory(text, index) is UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber;
}
