using Lookahead.Tokenization.Templates;

namespace Lookahead.Tokenization;

/// <summary>
/// A model's Jinja chat template (tokenizer_config.json's chat_template), rendered as Hugging Face
/// transformers' apply_chat_template renders it: trim_blocks and lstrip_blocks, raise_exception,
/// strftime_now, transformers' tojson, and the variables messages, add_generation_prompt, tools and
/// documents (None) and the special token strings (bos_token, eos_token, ...). The renderer implements
/// the Jinja subset real templates use (tests/data/chat-templates lists the families checked against
/// Python's jinja2); anything beyond it is a <see cref="TemplateException"/> naming it.
/// </summary>
public sealed class ChatTemplate
{
    private readonly List<Node> _nodes;

    private ChatTemplate(List<Node> nodes) => _nodes = nodes;

    /// <exception cref="TemplateException">The template does not parse, or uses a statement this renderer lacks.</exception>
    public static ChatTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        try
        {
            return new ChatTemplate(TemplateParser.Parse(source));
        }
        catch (Exception e) when (IsEvaluationFault(e))
        {
            throw new TemplateException($"the template does not parse: {e.Message}");
        }
    }

    /// <summary>The prompt text for the messages; with addGenerationPrompt, ready for the assistant's turn.</summary>
    /// <exception cref="TemplateException">The template refuses the messages (RaisedByTemplate) or fails.</exception>
    public string Render(IEnumerable<ChatTurn> messages, bool addGenerationPrompt, IReadOnlyDictionary<string, string>? specialTokens = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        List<object?> turns = messages.Select(m => (object?)TemplateValues.ToDictionary([("role", m.Role), ("content", m.Content)])).ToList();
        var context = new Dictionary<string, object?> { ["messages"] = turns, ["add_generation_prompt"] = addGenerationPrompt };
        foreach ((string name, string value) in specialTokens ?? new Dictionary<string, string>()) context[name] = value;
        return Render(context, () => DateTime.Now);
    }

    /// <summary>Renders with any variables (values as <see cref="TemplateValues"/> holds them); tools and
    /// documents default to None, as in transformers.</summary>
    internal string Render(Dictionary<string, object?> variables, Func<DateTime> clock)
    {
        var context = new Dictionary<string, object?> { ["tools"] = null, ["documents"] = null };
        foreach ((string name, object? value) in variables) context[name] = value;
        try
        {
            return new TemplateRenderer(context, clock).Render(_nodes);
        }
        catch (Exception e) when (IsEvaluationFault(e))
        {
            throw new TemplateException($"the template fails on these messages: {e.Message}");
        }
    }

    // A literal out of range, an overflow, a bad conversion: the template's fault, reported as its error.
    private static bool IsEvaluationFault(Exception e) =>
        e is ArithmeticException or FormatException or ArgumentException or InvalidCastException or IndexOutOfRangeException;
}
