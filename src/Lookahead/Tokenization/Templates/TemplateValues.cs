using System.Globalization;
using System.Text;

namespace Lookahead.Tokenization.Templates;

/// <summary>A name or key that has no value: false, empty, printed as nothing; anything more is an error.</summary>
internal sealed class Undefined
{
    public Undefined(string name) => Name = name;

    public string Name { get; }

    public TemplateException Error() => new($"'{Name}' is undefined");
}

/// <summary>namespace(): the one object a template may change from inside a loop.</summary>
internal sealed class Namespace
{
    public Dictionary<string, object?> Values { get; } = new();
}

/// <summary>A function value: a global (raise_exception, namespace, range), a macro, or a bound method.</summary>
internal delegate object? Callable(List<object?> arguments, Dictionary<string, object?> keywords);

/// <summary>
/// Python's semantics for the values a template computes with: None (null), bool, long, double, string,
/// List&lt;object?&gt; (lists and tuples), OrderedDictionary&lt;string, object?&gt; (dicts, in insertion
/// order), plus <see cref="Undefined"/>, <see cref="Namespace"/> and <see cref="Callable"/>.
/// </summary>
internal static class TemplateValues
{
    public static bool Truthy(object? value) => value switch
    {
        null or Undefined => false,
        bool b => b,
        long l => l != 0,
        double d => d != 0,
        string s => s.Length > 0,
        List<object?> list => list.Count > 0,
        OrderedDictionary<string, object?> dict => dict.Count > 0,
        _ => true,
    };

    /// <summary>Python's str().</summary>
    public static string Str(object? value) => value switch
    {
        Undefined => "",
        string s => s,
        _ => Repr(value),
    };

    /// <summary>Python's repr().</summary>
    public static string Repr(object? value) => value switch
    {
        null => "None",
        Undefined => "",
        bool b => b ? "True" : "False",
        long l => l.ToString(CultureInfo.InvariantCulture),
        double d => FloatRepr(d),
        string s => StringRepr(s),
        List<object?> list => "[" + string.Join(", ", list.Select(Repr)) + "]",
        OrderedDictionary<string, object?> dict => "{" + string.Join(", ", dict.Select(p => StringRepr(p.Key) + ": " + Repr(p.Value))) + "}",
        Namespace => "<Namespace>",
        _ => "<function>",
    };

    public static string FloatRepr(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsInfinity(value)) return value > 0 ? "inf" : "-inf";
        if (value == 0) return double.IsNegative(value) ? "-0.0" : "0.0";
        // Shortest round-trip digits, laid out as Python does: positional for exponents -4..15.
        string shortest = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        string digits;
        int exponent, e = shortest.IndexOf('E');
        if (e >= 0)
        {
            digits = shortest[..e].Replace(".", "");
            exponent = int.Parse(shortest[(e + 1)..], CultureInfo.InvariantCulture);
        }
        else
        {
            int dot = shortest.IndexOf('.');
            string whole = dot < 0 ? shortest : shortest[..dot];
            string all = whole + (dot < 0 ? "" : shortest[(dot + 1)..]);
            digits = all.TrimStart('0');
            exponent = whole.Length - 1 - (all.Length - digits.Length);
        }
        digits = digits.TrimEnd('0');
        if (digits.Length == 0) digits = "0";
        string sign = value < 0 ? "-" : "";
        if (exponent is >= -4 and < 16)
        {
            string text;
            if (exponent >= 0)
            {
                string whole = digits.Length > exponent + 1 ? digits[..(exponent + 1)] : digits.PadRight(exponent + 1, '0');
                string fraction = digits.Length > exponent + 1 ? digits[(exponent + 1)..] : "0";
                text = whole + "." + fraction;
            }
            else text = "0." + new string('0', -exponent - 1) + digits;
            return sign + text;
        }
        string mantissa = digits.Length == 1 ? digits : digits[0] + "." + digits[1..];
        return $"{sign}{mantissa}e{(exponent < 0 ? "-" : "+")}{Math.Abs(exponent):00}";
    }

    private static string StringRepr(string s)
    {
        char quote = s.Contains('\'') && !s.Contains('"') ? '"' : '\'';
        var text = new StringBuilder().Append(quote);
        foreach (char c in s)
        {
            if (c == quote || c == '\\') text.Append('\\').Append(c);
            else if (c == '\n') text.Append("\\n");
            else if (c == '\r') text.Append("\\r");
            else if (c == '\t') text.Append("\\t");
            else if (c < 0x20 || c == 0x7F) text.Append($"\\x{(int)c:x2}");
            else text.Append(c);
        }
        return text.Append(quote).ToString();
    }

    public static new bool Equals(object? a, object? b)
    {
        if (a is Undefined || b is Undefined) return a is Undefined && b is Undefined;
        if (IsNumber(a) && IsNumber(b))
            return a is double || b is double ? ToDouble(a) == ToDouble(b) : ToLong(a) == ToLong(b);
        return (a, b) switch
        {
            (null, null) => true,
            (string x, string y) => x == y,
            (List<object?> x, List<object?> y) => x.Count == y.Count && x.Zip(y).All(p => Equals(p.First, p.Second)),
            (OrderedDictionary<string, object?> x, OrderedDictionary<string, object?> y) =>
                x.Count == y.Count && x.All(p => y.TryGetValue(p.Key, out object? v) && Equals(p.Value, v)),
            _ => ReferenceEquals(a, b),
        };
    }

    /// <summary>Bool counts as a number, as in Python (True == 1).</summary>
    public static bool IsNumber(object? value) => value is bool or long or double;

    public static bool IsInteger(object? value) => value is bool or long;

    public static long ToLong(object? value) => value switch
    {
        bool b => b ? 1 : 0,
        long l => l,
        double d => (long)d,
        _ => throw new TemplateException($"{TypeName(value)} is not a number"),
    };

    public static double ToDouble(object? value) => value is double d ? d : ToLong(value);

    public static int Compare(object? a, object? b)
    {
        if (IsNumber(a) && IsNumber(b)) return ToDouble(a).CompareTo(ToDouble(b));
        if (a is string x && b is string y) return string.CompareOrdinal(x, y);
        if (a is List<object?> p && b is List<object?> q)
        {
            for (int i = 0; i < Math.Min(p.Count, q.Count); i++)
                if (!Equals(p[i], q[i])) return Compare(p[i], q[i]);
            return p.Count.CompareTo(q.Count);
        }
        throw new TemplateException($"'<' is not supported between {TypeName(a)} and {TypeName(b)}");
    }

    public static string TypeName(object? value) => value switch
    {
        null => "NoneType",
        Undefined u => $"undefined '{u.Name}'",
        bool => "bool",
        long => "int",
        double => "float",
        string => "str",
        List<object?> => "list",
        OrderedDictionary<string, object?> => "dict",
        Namespace => "Namespace",
        _ => "function",
    };

    /// <summary>What a for loop, join or list sees: a list's items, a dict's keys, a string's characters.</summary>
    public static List<object?> Iterate(object? value) => value switch
    {
        Undefined => [],
        List<object?> list => list,
        OrderedDictionary<string, object?> dict => dict.Keys.Cast<object?>().ToList(),
        string s => s.EnumerateRunes().Select(r => (object?)r.ToString()).ToList(),
        _ => throw new TemplateException($"{TypeName(value)} is not iterable"),
    };

    public static bool Contains(object? container, object? item) => container switch
    {
        string s when item is string part => s.Contains(part, StringComparison.Ordinal),
        string => throw new TemplateException($"'in <string>' needs a string on the left, not {TypeName(item)}"),
        List<object?> list => list.Any(x => Equals(x, item)),
        OrderedDictionary<string, object?> dict => item is string key && dict.ContainsKey(key),
        Undefined u => throw u.Error(),
        _ => throw new TemplateException($"{TypeName(container)} is not a container"),
    };

    /// <summary>Python's json.dumps with ensure_ascii=False, as transformers' tojson filter calls it.</summary>
    public static string ToJson(object? value, int? indent, bool sortKeys)
    {
        var text = new StringBuilder();
        WriteJson(text, value, indent, sortKeys, 0);
        return text.ToString();
    }

    private static void WriteJson(StringBuilder text, object? value, int? indent, bool sortKeys, int depth)
    {
        string itemSeparator = indent is null ? ", " : ",";
        void NewLine(int level)
        {
            if (indent is int width) text.Append('\n').Append(' ', width * level);
        }
        switch (value)
        {
            case null: text.Append("null"); break;
            case bool b: text.Append(b ? "true" : "false"); break;
            case long l: text.Append(l.ToString(CultureInfo.InvariantCulture)); break;
            case double d:
                text.Append(double.IsNaN(d) ? "NaN" : double.IsInfinity(d) ? (d > 0 ? "Infinity" : "-Infinity") : FloatRepr(d));
                break;
            case string s: JsonString(text, s); break;
            case List<object?> list:
                if (list.Count == 0) { text.Append("[]"); break; }
                text.Append('[');
                for (int i = 0; i < list.Count; i++)
                {
                    if (i > 0) text.Append(itemSeparator);
                    NewLine(depth + 1);
                    WriteJson(text, list[i], indent, sortKeys, depth + 1);
                }
                NewLine(depth);
                text.Append(']');
                break;
            case OrderedDictionary<string, object?> dict:
                if (dict.Count == 0) { text.Append("{}"); break; }
                text.Append('{');
                IEnumerable<KeyValuePair<string, object?>> entries = sortKeys ? dict.OrderBy(p => p.Key, StringComparer.Ordinal) : dict;
                bool first = true;
                foreach ((string key, object? item) in entries)
                {
                    if (!first) text.Append(itemSeparator);
                    first = false;
                    NewLine(depth + 1);
                    JsonString(text, key);
                    text.Append(": ");
                    WriteJson(text, item, indent, sortKeys, depth + 1);
                }
                NewLine(depth);
                text.Append('}');
                break;
            case Undefined u: throw u.Error();
            default: throw new TemplateException($"Object of type {TypeName(value)} is not JSON serializable");
        }
    }

    private static void JsonString(StringBuilder text, string s)
    {
        text.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                case '\b': text.Append("\\b"); break;
                case '\f': text.Append("\\f"); break;
                default:
                    if (c < 0x20) text.Append($"\\u{(int)c:x4}");
                    else text.Append(c);
                    break;
            }
        }
        text.Append('"');
    }

    /// <summary>A JSON document as template values (the way Python's json.loads gives them).</summary>
    public static object? FromJson(System.Text.Json.JsonElement element) => element.ValueKind switch
    {
        System.Text.Json.JsonValueKind.Null => null,
        System.Text.Json.JsonValueKind.True => true,
        System.Text.Json.JsonValueKind.False => false,
        System.Text.Json.JsonValueKind.String => element.GetString(),
        System.Text.Json.JsonValueKind.Number => element.TryGetInt64(out long l) ? l : element.GetDouble(),
        System.Text.Json.JsonValueKind.Array => element.EnumerateArray().Select(FromJson).ToList(),
        System.Text.Json.JsonValueKind.Object => ToDictionary(element.EnumerateObject().Select(p => (p.Name, FromJson(p.Value)))),
        _ => null,
    };

    public static OrderedDictionary<string, object?> ToDictionary(IEnumerable<(string Key, object? Value)> entries)
    {
        var dict = new OrderedDictionary<string, object?>();
        foreach ((string key, object? value) in entries) dict[key] = value;
        return dict;
    }
}
