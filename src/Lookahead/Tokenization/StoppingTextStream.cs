namespace Lookahead.Tokenization;

/// <summary>
/// A generation's text as its tokens arrive: detokenized incrementally (<see cref="StreamingDetokenizer"/>)
/// and cut before the first stop string (<see cref="StopStrings"/>), so that what it returns can be sent as
/// it comes.
/// </summary>
public sealed class StoppingTextStream
{
    private readonly StreamingDetokenizer _detokenizer;
    private readonly StopStrings _stops;

    /// <summary>Starts the text of a continuation of prompt, watching for the stop strings (none: no cut).</summary>
    /// <exception cref="ArgumentException">A stop string is empty.</exception>
    public StoppingTextStream(TextTokenizer tokenizer, ReadOnlySpan<int> prompt, IReadOnlyList<string> stops)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _stops = new StopStrings(stops);
        _detokenizer = tokenizer.CreateStream(prompt);
    }

    /// <summary>Whether a stop string was found: nothing after it is returned, and generation can end.</summary>
    public bool Stopped => _stops.Stopped;

    /// <summary>Adds generated tokens; returns the text safe to send now (maybe empty).</summary>
    public string Append(ReadOnlySpan<int> tokens) => _stops.Push(_detokenizer.Append(tokens));

    /// <summary>At the end of generation: the text still held back (an incomplete character, or a tail that could
    /// have begun a stop string); empty after a stop string.</summary>
    public string Finish() => Stopped ? "" : _stops.Push(_detokenizer.Flush()) + _stops.Flush();
}
