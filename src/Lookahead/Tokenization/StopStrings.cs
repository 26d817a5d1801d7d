namespace Lookahead.Tokenization;

/// <summary>
/// Cuts streamed text at the first stop string (OpenAI's <c>stop</c>): text is released only once it cannot
/// be the start of a stop string, so a stop string split across steps is never half sent.
/// </summary>
public sealed class StopStrings
{
    private readonly IReadOnlyList<string> _stops;

    /// <summary>Watches for these strings (none: every text passes at once).</summary>
    /// <exception cref="ArgumentException">A stop string is empty.</exception>
    public StopStrings(IReadOnlyList<string> stops)
    {
        ArgumentNullException.ThrowIfNull(stops);
        if (stops.Any(string.IsNullOrEmpty)) throw new ArgumentException("a stop string is empty", nameof(stops));
        _stops = stops;
        _longest = stops.Count == 0 ? 0 : stops.Max(s => s.Length);
    }

    private readonly System.Text.StringBuilder _held = new();
    private readonly int _longest;

    /// <summary>Whether a stop string was found (the text after it is dropped).</summary>
    public bool Stopped { get; private set; }

    /// <summary>Adds generated text; returns the text safe to send now.</summary>
    public string Push(string text)
    {
        if (Stopped) return "";
        if (_longest == 0) return text;
        _held.Append(text);
        string held = _held.ToString();
        int cut = -1;
        foreach (string stop in _stops)
        {
            int at = held.IndexOf(stop, StringComparison.Ordinal);
            if (at >= 0 && (cut < 0 || at < cut)) cut = at;
        }
        if (cut >= 0)
        {
            Stopped = true;
            _held.Clear();
            return held[..cut];
        }
        // Keep the longest tail that is a prefix of some stop string (at most the longest one less a char).
        int keep = 0;
        for (int length = Math.Min(_longest - 1, held.Length); length > 0 && keep == 0; length--)
        {
            ReadOnlySpan<char> tail = held.AsSpan(held.Length - length);
            foreach (string stop in _stops)
                if (stop.AsSpan().StartsWith(tail, StringComparison.Ordinal)) keep = length;
        }
        _held.Clear().Append(held, held.Length - keep, keep);
        return held[..^keep];
    }

    /// <summary>The text still held at the end of generation (it completed no stop string).</summary>
    public string Flush()
    {
        string rest = Stopped ? "" : _held.ToString();
        _held.Clear();
        return rest;
    }
}
