using System.Globalization;

namespace Lookahead.Tokenization.Templates;

/// <summary>Jinja's filters and tests that chat templates use, with Jinja's argument conventions;
/// tojson is transformers' (keys in order, nothing escaped for HTML, non-ASCII as is).</summary>
internal static class TemplateFilters
{
    public static object? Apply(string name, object? value, List<object?> arguments, Dictionary<string, object?> keywords)
    {
        object? Arg(int index, string keyword, object? fallback = null) =>
            index < arguments.Count ? arguments[index] : keywords.TryGetValue(keyword, out object? given) ? given : fallback;

        if (name is "default" or "d")
        {
            bool boolean = TemplateValues.Truthy(Arg(1, "boolean", false));
            bool useDefault = value is Undefined || boolean && !TemplateValues.Truthy(value);
            return useDefault ? Arg(0, "default_value", "") : value;
        }
        if (value is Undefined undefined && name is not ("length" or "count" or "list" or "string" or "join" or "first" or "last"))
            throw undefined.Error();
        switch (name)
        {
            case "trim": return TemplateMethods.Strip(AsString(value, name), Arg(0, "chars"));
            case "length" or "count": return (long)Length(value);
            case "tojson":
                object? indent = Arg(0, "indent");
                return TemplateValues.ToJson(value, indent is null ? null : (int)TemplateValues.ToLong(indent), TemplateValues.Truthy(keywords.GetValueOrDefault("sort_keys")));
            case "string": return TemplateValues.Str(value);
            case "upper": return AsString(value, name).ToUpperInvariant();
            case "lower": return AsString(value, name).ToLowerInvariant();
            case "title": return Title(AsString(value, name));
            case "capitalize": return Capitalize(AsString(value, name));
            case "replace":
                return TemplateMethods.Bind(TemplateValues.Str(value), "replace")!(arguments.Take(3).ToList(), []);
            case "int":
                return value switch
                {
                    string s => long.TryParse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out long l) ? l : Arg(0, "default", 0L),
                    _ when TemplateValues.IsNumber(value) => TemplateValues.ToLong(value),
                    _ => Arg(0, "default", 0L),
                };
            case "float":
                return value switch
                {
                    string s => double.TryParse(s.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : Arg(0, "default", 0.0),
                    _ when TemplateValues.IsNumber(value) => TemplateValues.ToDouble(value),
                    _ => Arg(0, "default", 0.0),
                };
            case "abs": return value is double dv ? (object)Math.Abs(dv) : Math.Abs(TemplateValues.ToLong(value));
            case "list": return value is Undefined ? new List<object?>() : TemplateValues.Iterate(value).ToList();
            case "first": { List<object?> items = TemplateValues.Iterate(value); return items.Count > 0 ? items[0] : new Undefined("first"); }
            case "last": { List<object?> items = TemplateValues.Iterate(value); return items.Count > 0 ? items[^1] : new Undefined("last"); }
            case "reverse":
                if (value is string text) return string.Concat(TemplateValues.Iterate(text).AsEnumerable().Reverse().Cast<string>());
                return TemplateValues.Iterate(value).AsEnumerable().Reverse().ToList();
            case "join":
            {
                string separator = TemplateValues.Str(Arg(0, "d", ""));
                object? attribute = Arg(1, "attribute");
                IEnumerable<object?> items = TemplateValues.Iterate(value);
                if (attribute is string key) items = items.Select(item => Attribute(item, key));
                return string.Join(separator, items.Select(TemplateValues.Str));
            }
            case "items":
                if (value is not OrderedDictionary<string, object?> dict) throw new TemplateException($"items needs a dict, not {TemplateValues.TypeName(value)}");
                return dict.Select(p => (object?)new List<object?> { p.Key, p.Value }).ToList();
            case "select" or "reject":
                return TemplateValues.Iterate(value).Where(item =>
                    (arguments.Count == 0 ? TemplateValues.Truthy(item) : Test(TemplateValues.Str(arguments[0]), item, arguments.Skip(1).ToList())) == (name == "select")).ToList();
            case "selectattr" or "rejectattr":
            {
                string key = TemplateValues.Str(Arg(0, "attribute"));
                return TemplateValues.Iterate(value).Where(item =>
                {
                    object? field = Attribute(item, key);
                    bool passes = arguments.Count < 2 ? TemplateValues.Truthy(field) : Test(TemplateValues.Str(arguments[1]), field, arguments.Skip(2).ToList());
                    return passes == (name == "selectattr");
                }).ToList();
            }
            case "map":
                if (keywords.TryGetValue("attribute", out object? mapped) && mapped is string mappedKey)
                    return TemplateValues.Iterate(value).Select(item => Attribute(item, mappedKey) is Undefined && keywords.TryGetValue("default", out object? fallback) ? fallback : Attribute(item, mappedKey)).ToList();
                if (arguments.Count == 0) throw new TemplateException("map needs a filter name or attribute=");
                return TemplateValues.Iterate(value).Select(item => Apply(TemplateValues.Str(arguments[0]), item, arguments.Skip(1).ToList(), [])).ToList();
            case "unique":
            {
                var seen = new List<object?>();
                foreach (object? item in TemplateValues.Iterate(value)) if (!seen.Any(s => TemplateValues.Equals(s, item))) seen.Add(item);
                return seen;
            }
            case "sum": return TemplateValues.Iterate(value).Aggregate((object?)0L, (total, item) =>
                TemplateValues.IsInteger(total) && TemplateValues.IsInteger(item) ? TemplateValues.ToLong(total) + TemplateValues.ToLong(item) : TemplateValues.ToDouble(total) + TemplateValues.ToDouble(item));
            case "safe": return value;
            case "indent":
            {
                string pad = Arg(0, "width", 4L) is string literal ? literal : new string(' ', (int)Math.Clamp(TemplateValues.ToLong(Arg(0, "width", 4L)), 0, 1024));
                bool first = TemplateValues.Truthy(Arg(1, "first", false)), blank = TemplateValues.Truthy(Arg(2, "blank", false));
                string[] lines = TemplateValues.Str(value).Split('\n');
                for (int i = 0; i < lines.Length; i++)
                    if ((i > 0 || first) && (blank || lines[i].Length > 0)) lines[i] = pad + lines[i];
                return string.Join('\n', lines);
            }
            default: throw new TemplateException($"the filter '{name}' is not supported");
        }
    }

    public static bool Test(string name, object? value, List<object?> arguments)
    {
        object? Arg(int index) => index < arguments.Count ? arguments[index] : throw new TemplateException($"the test '{name}' needs an argument");
        return name switch
        {
            "defined" => value is not Undefined,
            "undefined" => value is Undefined,
            "none" => value is null,
            "string" => value is string,
            "number" => value is long or double,
            "integer" => value is long,
            "float" => value is double,
            "boolean" => value is bool,
            "true" => value is true,
            "false" => value is false,
            "mapping" => value is OrderedDictionary<string, object?>,
            "iterable" => value is string or List<object?> or OrderedDictionary<string, object?>,
            "sequence" => value is string or List<object?> or OrderedDictionary<string, object?>,
            "callable" => value is Callable,
            "equalto" or "eq" or "==" => TemplateValues.Equals(value, Arg(0)),
            "ne" or "!=" => !TemplateValues.Equals(value, Arg(0)),
            "sameas" => value is null ? Arg(0) is null : value is bool b ? Arg(0) is bool c && b == c : ReferenceEquals(value, Arg(0)),
            "in" => TemplateValues.Contains(Arg(0), value),
            "gt" or ">" => TemplateValues.Compare(value, Arg(0)) > 0,
            "ge" or ">=" => TemplateValues.Compare(value, Arg(0)) >= 0,
            "lt" or "<" => TemplateValues.Compare(value, Arg(0)) < 0,
            "le" or "<=" => TemplateValues.Compare(value, Arg(0)) <= 0,
            "odd" => TemplateValues.ToLong(value) % 2 != 0,
            "even" => TemplateValues.ToLong(value) % 2 == 0,
            "divisibleby" => TemplateValues.ToLong(value) % TemplateValues.ToLong(Arg(0)) == 0,
            "lower" => value is string s && s == s.ToLowerInvariant(),
            "upper" => value is string u && u == u.ToUpperInvariant(),
            _ => throw new TemplateException($"the test '{name}' is not supported"),
        };
    }

    public static string Title(string s)
    {
        var text = s.ToCharArray();
        bool start = true;
        for (int i = 0; i < text.Length; i++)
        {
            if (char.IsLetter(text[i])) { text[i] = start ? char.ToUpperInvariant(text[i]) : char.ToLowerInvariant(text[i]); start = false; }
            else start = true;
        }
        return new string(text);
    }

    public static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..].ToLowerInvariant();

    private static string AsString(object? value, string filter) => value as string ?? TemplateValues.Str(value);

    private static int Length(object? value) => value switch
    {
        Undefined => 0,
        string s => TemplateValues.Iterate(s).Count,
        List<object?> list => list.Count,
        OrderedDictionary<string, object?> dict => dict.Count,
        _ => throw new TemplateException($"object of type {TemplateValues.TypeName(value)} has no len()"),
    };

    private static object? Attribute(object? item, string key) => item switch
    {
        OrderedDictionary<string, object?> dict => dict.TryGetValue(key, out object? value) ? value : new Undefined(key),
        Namespace ns => ns.Values.TryGetValue(key, out object? value) ? value : new Undefined(key),
        _ => new Undefined(key),
    };
}
