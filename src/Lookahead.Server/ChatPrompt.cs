using System.Text;
using System.Text.Json;

namespace Lookahead.Server;

/// <summary>One chat message: its role (system, developer, user, assistant, tool) and its text.</summary>
internal sealed record ChatMessage(string Role, string Content);

/// <summary>
/// Turns chat messages into the prompt text of the next assistant turn. A model folder without a
/// <c>chat_template</c> (in tokenizer_config.json) is a plain language model: its prompt is the messages'
/// texts in order, separated by blank lines, so one user message is its text exactly. A folder that has a
/// template needs that template rendered, which this server does not do yet: chat requests to it are refused
/// with a 400 saying so (its /v1/completions takes the prompt text instead).
/// </summary>
internal sealed class ChatPrompt
{
    private readonly string? _templateRefusal;

    private ChatPrompt(string? templateRefusal) => _templateRefusal = templateRefusal;

    /// <summary>The plain rendering (no template).</summary>
    public static ChatPrompt Plain { get; } = new(null);

    /// <summary>How the model folder's messages become a prompt.</summary>
    public static ChatPrompt ForModel(string folder)
    {
        string config = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(config)) return Plain;
        try
        {
            using JsonDocument document = JsonDocument.Parse(File.ReadAllBytes(config));
            if (document.RootElement.ValueKind == JsonValueKind.Object && document.RootElement.TryGetProperty("chat_template", out JsonElement template)
                && template.ValueKind != JsonValueKind.Null)
                return new ChatPrompt($"the model's chat template (tokenizer_config.json in '{folder}') cannot be rendered by this server yet; " +
                    "send the formatted prompt to /v1/completions instead");
        }
        catch (JsonException e)
        {
            throw new LookaheadException($"tokenizer_config.json in '{folder}' is not valid JSON: {e.Message}", e);
        }
        return Plain;
    }

    /// <summary>Whether chat requests are served (false when the model's template cannot be rendered).</summary>
    public bool Available => _templateRefusal is null;

    /// <summary>The prompt text for the assistant's next turn.</summary>
    /// <exception cref="ApiError">The model has a chat template this server cannot render (400).</exception>
    public string Render(IReadOnlyList<ChatMessage> messages)
    {
        if (_templateRefusal is not null) throw new ApiError(400, _templateRefusal, "messages", "chat_template_unsupported");
        var text = new StringBuilder();
        foreach (ChatMessage message in messages)
        {
            if (message.Content.Length == 0) continue;
            if (text.Length > 0) text.Append("\n\n");
            text.Append(message.Content);
        }
        return text.ToString();
    }
}
