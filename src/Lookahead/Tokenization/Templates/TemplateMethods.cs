namespace Lookahead.Tokenization.Templates;

/// <summary>The Python methods templates call on strings (strip, split, startswith, ...) and dicts
/// (items, keys, values, get). Lists expose none: Hugging Face renders in an immutable sandbox.</summary>
internal static class TemplateMethods
{
    /// <summary>What Python's str.strip() and split() treat as whitespace.</summary>
    public static readonly char[] Whitespace = [' ', '\t', '\n', '\r', '\f', '\v', '\u001c', '\u001d', '\u001e', '\u001f', '\u0085', '\u00a0',
        '\u1680', '\u2000', '\u2001', '\u2002', '\u2003', '\u2004', '\u2005', '\u2006', '\u2007', '\u2008', '\u2009', '\u200a', '\u2028', '\u2029',
        '\u202f', '\u205f', '\u3000'];

    public static Callable? Bind(object? target, string name) => target switch
    {
        string s => StringMethod(s, name),
        OrderedDictionary<string, object?> dict => DictMethod(dict, name),
        _ => null,
    };

    /// <summary>Python's str.strip with an optional set of characters (whitespace when none).</summary>
    public static string Strip(string s, object? characters, bool left = true, bool right = true)
    {
        char[] set = characters is string chars ? chars.ToCharArray() : Whitespace;
        if (left) s = s.TrimStart(set);
        if (right) s = s.TrimEnd(set);
        return s;
    }

    private static Callable? StringMethod(string s, string name) => name switch
    {
        "strip" => (a, _) => Strip(s, Argument(a, 0)),
        "lstrip" => (a, _) => Strip(s, Argument(a, 0), right: false),
        "rstrip" => (a, _) => Strip(s, Argument(a, 0), left: false),
        "upper" => (_, _) => s.ToUpperInvariant(),
        "lower" => (_, _) => s.ToLowerInvariant(),
        "title" => (_, _) => TemplateFilters.Title(s),
        "capitalize" => (_, _) => TemplateFilters.Capitalize(s),
        "startswith" => (a, _) => Affixes(a).Any(p => s.StartsWith(p, StringComparison.Ordinal)),
        "endswith" => (a, _) => Affixes(a).Any(p => s.EndsWith(p, StringComparison.Ordinal)),
        "split" => (a, k) => Split(s, Argument(a, 0) ?? k.GetValueOrDefault("sep"), Argument(a, 1) ?? k.GetValueOrDefault("maxsplit")),
        "replace" => (a, _) => Replace(s, Text(a, 0, "replace"), Text(a, 1, "replace"), Argument(a, 2)),
        "find" => (a, _) => (long)s.IndexOf(Text(a, 0, "find"), StringComparison.Ordinal),
        "count" => (a, _) => CountOf(s, Text(a, 0, "count")),
        "join" => (a, _) => string.Join(s, TemplateValues.Iterate(Argument(a, 0)).Select(TemplateValues.Str)),
        "isdigit" => (_, _) => s.Length > 0 && s.All(char.IsDigit),
        "isspace" => (_, _) => s.Length > 0 && s.All(char.IsWhiteSpace),
        _ => null,
    };

    private static Callable? DictMethod(OrderedDictionary<string, object?> dict, string name) => name switch
    {
        "items" => (_, _) => dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList(),
        "keys" => (_, _) => dict.Keys.Select(k => (object?)k).ToList(),
        "values" => (_, _) => dict.Values.ToList(),
        "get" => (a, _) => Argument(a, 0) is string key && dict.TryGetValue(key, out object? value) ? value : Argument(a, 1),
        _ => null,
    };

    private static object? Argument(List<object?> arguments, int index) => index < arguments.Count ? arguments[index] : null;

    private static string Text(List<object?> arguments, int index, string method) =>
        Argument(arguments, index) as string ?? throw new TemplateException($"str.{method}() needs a string argument");

    private static IEnumerable<string> Affixes(List<object?> arguments) => Argument(arguments, 0) switch
    {
        string s => [s],
        List<object?> list => list.Select(x => x as string ?? throw new TemplateException("startswith/endswith take strings")),
        _ => throw new TemplateException("startswith/endswith take a string or a tuple of strings"),
    };

    private static List<object?> Split(string s, object? separator, object? maxSplit)
    {
        long limit = maxSplit is null ? -1 : TemplateValues.ToLong(maxSplit);
        var parts = new List<object?>();
        if (separator is null)
        {
            // Python: runs of whitespace separate, none at either end.
            string rest = s.TrimStart(Whitespace);
            while (rest.Length > 0)
            {
                if (limit >= 0 && parts.Count == limit) { parts.Add(rest); return parts; }
                int end = rest.IndexOfAny(Whitespace);
                if (end < 0) { parts.Add(rest); break; }
                parts.Add(rest[..end]);
                rest = rest[end..].TrimStart(Whitespace);
            }
            return parts;
        }
        string sep = separator as string ?? throw new TemplateException("str.split() separator must be a string");
        if (sep.Length == 0) throw new TemplateException("empty separator");
        int at = 0;
        while (limit < 0 || parts.Count < limit)
        {
            int next = s.IndexOf(sep, at, StringComparison.Ordinal);
            if (next < 0) break;
            parts.Add(s[at..next]);
            at = next + sep.Length;
        }
        parts.Add(s[at..]);
        return parts;
    }

    private static string Replace(string s, string old, string replacement, object? count)
    {
        if (old.Length == 0) return replacement + string.Concat(s.Select(c => c + replacement));
        if (count is null) return s.Replace(old, replacement, StringComparison.Ordinal);
        long left = TemplateValues.ToLong(count);
        var text = new System.Text.StringBuilder();
        int at = 0;
        while (left-- != 0)
        {
            int next = s.IndexOf(old, at, StringComparison.Ordinal);
            if (next < 0) break;
            text.Append(s, at, next - at).Append(replacement);
            at = next + old.Length;
        }
        return text.Append(s, at, s.Length - at).ToString();
    }

    private static long CountOf(string s, string part)
    {
        if (part.Length == 0) return s.Length + 1;
        long count = 0;
        for (int at = s.IndexOf(part, StringComparison.Ordinal); at >= 0; at = s.IndexOf(part, at + part.Length, StringComparison.Ordinal)) count++;
        return count;
    }
}
