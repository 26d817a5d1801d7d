using Lookahead.Tokenization.Templates;

namespace Lookahead.Tokenization;

/// <summary>One chat message: its role (system, developer, user, assistant, tool) and its text.</summary>
public sealed record ChatTurn(string Role, string Content);

/// <summary>
/// Turns chat messages into the prompt of the next assistant turn. A model folder whose
/// tokenizer_config.json has a <c>chat_template</c> gets it rendered (<see cref="ChatTemplate"/>, with the
/// generation prompt and the folder's special token strings) and tokenized as transformers does it, with
/// the special tokens the template writes and nothing added. A folder without one is a plain language
/// model: its prompt is the messages' texts in order, separated by blank lines (one user message is its
/// text exactly), encoded with BOS as any prompt.
/// </summary>
public sealed class ChatPrompt
{
    private readonly ChatTemplate? _template;
    private readonly IReadOnlyDictionary<string, string> _specialTokens;
    private readonly string? _templateRefusal;

    private ChatPrompt(ChatTemplate? template, IReadOnlyDictionary<string, string> specialTokens, string? templateRefusal)
    {
        _template = template;
        _specialTokens = specialTokens;
        _templateRefusal = templateRefusal;
    }

    /// <summary>The plain rendering (no template).</summary>
    public static ChatPrompt Plain { get; } = new(null, new Dictionary<string, string>(), null);

    /// <summary>How the model folder's messages become a prompt. A template that does not parse leaves the
    /// prompt unavailable (see <see cref="Available"/>) rather than failing the model's loading.</summary>
    /// <exception cref="LookaheadException">tokenizer_config.json is not valid JSON, or its chat_template not a template.</exception>
    public static ChatPrompt ForModel(string folder)
    {
        string? source;
        IReadOnlyDictionary<string, string> specialTokens;
        string where;
        if (LanguageModel.IsGguf(folder))
        {
            // A GGUF file carries its template as tokenizer.chat_template, its BOS and EOS as token ids.
            using Model.Gguf.GgufFile file = Model.Gguf.GgufFile.Open(folder);
            source = file.String("tokenizer.chat_template");
            string[] tokens = file.Strings("tokenizer.ggml.tokens") ?? [];
            var strings = new Dictionary<string, string>();
            foreach ((string name, string key) in new[] { ("bos_token", "tokenizer.ggml.bos_token_id"), ("eos_token", "tokenizer.ggml.eos_token_id") })
                if (file.Integer(key) is long id && id >= 0 && id < tokens.Length) strings[name] = tokens[id];
            specialTokens = strings;
            where = $"tokenizer.chat_template in '{folder}'";
        }
        else
        {
            TokenizerConfig config = TokenizerConfig.Read(folder);
            source = config.ChatTemplate;
            specialTokens = config.SpecialTokenStrings;
            where = $"tokenizer_config.json in '{folder}'";
        }
        if (source is null) return Plain;
        try
        {
            return new ChatPrompt(ChatTemplate.Parse(source), specialTokens, null);
        }
        catch (TemplateException e)
        {
            return new ChatPrompt(null, specialTokens,
                $"the model's chat template ({where}) cannot be rendered: {e.Message}; send the formatted prompt as a completion instead");
        }
    }

    /// <summary>Whether messages can be rendered (false when the model's template cannot be).</summary>
    public bool Available => _templateRefusal is null;

    /// <summary>Whether the model's own chat template renders the prompt.</summary>
    public bool UsesTemplate => _template is not null;

    /// <summary>The prompt text for the assistant's next turn.</summary>
    /// <exception cref="NotSupportedException">The model's template uses something this library cannot render.</exception>
    /// <exception cref="ArgumentException">The template refuses these messages (its own message, e.g. roles that do not alternate).</exception>
    public string Render(IEnumerable<ChatTurn> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (_templateRefusal is not null) throw new NotSupportedException(_templateRefusal);
        if (_template is not null)
        {
            try
            {
                return _template.Render(messages, addGenerationPrompt: true, _specialTokens);
            }
            catch (TemplateException e) when (e.RaisedByTemplate)
            {
                throw new ArgumentException($"the model's chat template refuses these messages: {e.Message}", nameof(messages), e);
            }
            catch (TemplateException e)
            {
                throw new NotSupportedException($"the model's chat template cannot be rendered: {e.Message}", e);
            }
        }
        var text = new System.Text.StringBuilder();
        foreach (ChatTurn message in messages)
        {
            if (message.Content.Length == 0) continue;
            if (text.Length > 0) text.Append("\n\n");
            text.Append(message.Content);
        }
        return text.ToString();
    }

    /// <summary>Token ids of a rendered prompt: a template's text as it stands (it writes its own BOS and
    /// special tokens), plain text with what the tokenizer adds to any prompt.</summary>
    public int[] Encode(TextTokenizer tokenizer, string renderedPrompt)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        return _template is not null ? tokenizer.EncodeWithoutAddedTokens(renderedPrompt) : tokenizer.Encode(renderedPrompt);
    }
}
