using System.Globalization;

namespace Lookahead.Cli;

/// <summary>
/// Reads "--name value", "--name=value" and "--flag" arguments against the set of names a command
/// declares; anything else is a usage error.
/// </summary>
internal sealed class ArgumentReader
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.Ordinal);

    public ArgumentReader(IReadOnlyList<string> args, IReadOnlySet<string> valueOptions, IReadOnlySet<string> flags)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal) || arg.Length == 2)
                throw new UsageException($"unexpected argument '{arg}'");
            string name = arg[2..];
            string? inline = null;
            int equals = name.IndexOf('=');
            if (equals >= 0)
            {
                inline = name[(equals + 1)..];
                name = name[..equals];
            }
            if (_values.ContainsKey(name)) throw new UsageException($"option --{name} given twice");
            if (flags.Contains(name))
            {
                if (inline is not null) throw new UsageException($"option --{name} takes no value");
                _values[name] = null;
            }
            else if (valueOptions.Contains(name))
            {
                if (inline is null)
                {
                    if (i + 1 >= args.Count) throw new UsageException($"option --{name} needs a value");
                    inline = args[++i];
                }
                _values[name] = inline;
            }
            else
            {
                throw new UsageException($"unknown option --{name}");
            }
        }
    }

    /// <summary>
    /// Takes the global flags (--verbose, --help, -h) out of a command's arguments, reading them as a
    /// command's reader would: the word after a value option is that option's value even when it looks
    /// like a flag (--prompt --verbose is the prompt "--verbose").
    /// </summary>
    public static List<string> TakeGlobalFlags(IReadOnlyList<string> args, IReadOnlySet<string> valueOptions, out bool verbose, out bool help)
    {
        verbose = help = false;
        var rest = new List<string>(args.Count);
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            if (arg == "--verbose") verbose = true;
            else if (arg is "--help" or "-h") help = true;
            else
            {
                rest.Add(arg);
                if (arg.StartsWith("--", StringComparison.Ordinal) && !arg.Contains('=') && valueOptions.Contains(arg[2..]) && i + 1 < args.Count)
                    rest.Add(args[++i]);
            }
        }
        return rest;
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string? String(string name) => _values.TryGetValue(name, out string? value) ? value : null;

    public int? Int(string name, int min, int max)
    {
        string? text = String(name);
        if (text is null) return null;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int value) || value < min || value > max)
            throw new UsageException($"--{name} must be an integer in {min}..{max}, got '{text}'");
        return value;
    }

    /// <summary>A number the check accepts (message names the range), or null when the option is absent.</summary>
    public float? Float(string name, Func<float, bool> check, string range)
    {
        string? text = String(name);
        if (text is null) return null;
        if (!float.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out float value) || !check(value))
            throw new UsageException($"--{name} must be {range}, got '{text}'");
        return value;
    }

    public T Choice<T>(string name, T fallback, IReadOnlyDictionary<string, T> choices)
    {
        string? text = String(name);
        if (text is null) return fallback;
        if (choices.TryGetValue(text, out T? value)) return value;
        throw new UsageException($"--{name} must be one of {string.Join(", ", choices.Keys)}, got '{text}'");
    }
}
