namespace Lookahead.Tokenization.Templates;

/// <summary>
/// A chat template that cannot be parsed, uses something this renderer does not implement, or refuses the
/// messages (its raise_exception call, whose message is the template's own words).
/// </summary>
public sealed class TemplateException : Exception
{
    /// <summary>Creates the error; raisedByTemplate when the template itself refused the messages.</summary>
    public TemplateException(string message, bool raisedByTemplate = false) : base(message) => RaisedByTemplate = raisedByTemplate;

    /// <summary>Whether the template itself refused the messages (raise_exception), rather than failing.</summary>
    public bool RaisedByTemplate { get; }
}
