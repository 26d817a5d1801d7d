using System.Text;
using System.Text.Json;

namespace Lookahead.Tokenization;

/// <summary>One chat message: its role (system, developer, user, assistant, tool) and its text.</summary>
public sealed record ChatTurn(string Role, string Content);

/// <summary>
/// Turns chat messages into the prompt text of the next assistant turn. A model folder without a
/// <c>chat_template</c> (in tokenizer_config.json) is a plain language model: its prompt is the messages'
/// texts in order, separated by blank lines, so one user message is its text exactly. A folder that has a
/// template needs that template rendered, which this library does not do yet: rendering for it throws
/// <see cref="NotSupportedException"/> saying so (format the prompt text yourself instead).
/// </summary>
public sealed class ChatPrompt
{
    private readonly string? _templateRefusal;

    private ChatPrompt(string? templateRefusal) => _templateRefusal = templateRefusal;

    /// <summary>The plain rendering (no template).</summary>
    public static ChatPrompt Plain { get; } = new(null);

    /// <summary>How the model folder's messages become a prompt.</summary>
    /// <exception cref="LookaheadException">tokenizer_config.json is not valid JSON.</exception>
    public static ChatPrompt ForModel(string folder)
    {
        string config = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(config)) return Plain;
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(config));
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("chat_template", out JsonElement template)
                && template.ValueKind != JsonValueKind.Null)
                return new ChatPrompt($"the model's chat template (tokenizer_config.json in '{folder}') cannot be rendered yet; " +
                    "send the formatted prompt as a completion instead");
        }
        catch (JsonException e)
        {
            throw new LookaheadException($"tokenizer_config.json in '{folder}' is not valid JSON: {e.Message}", e);
        }
        return Plain;
    }

    /// <summary>Whether messages can be rendered (false when the model's template cannot be).</summary>
    public bool Available => _templateRefusal is null;

    /// <summary>The prompt text for the assistant's next turn.</summary>
    /// <exception cref="NotSupportedException">The model has a chat template this library cannot render.</exception>
    public string Render(IEnumerable<ChatTurn> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (_templateRefusal is not null) throw new NotSupportedException(_templateRefusal);
        var text = new StringBuilder();
        foreach (ChatTurn message in messages)
        {
            if (message.Content.Length == 0) continue;
            if (text.Length > 0) text.Append("\n\n");
            text.Append(message.Content);
        }
        return text.ToString();
    }
}
