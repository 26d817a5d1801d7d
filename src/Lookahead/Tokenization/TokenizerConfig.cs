using System.Text.Json;
using Lookahead.Model;
using Lookahead.Tokenization.HuggingFace;

namespace Lookahead.Tokenization;

/// <summary>
/// What tokenizer_config.json says about prompts: whether BOS starts one, the special token strings
/// (bos_token, eos_token, ...: a string or {"content": ...}), the added tokens by id, and the chat
/// template (a string, or a list of named templates of which "default" is used).
/// </summary>
internal sealed class TokenizerConfig
{
    private static readonly string[] s_specialNames = ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"];

    public bool? AddBosToken { get; private init; }

    /// <summary>The special token strings by name (bos_token and the others above), as a template sees them.</summary>
    public IReadOnlyDictionary<string, string> SpecialTokenStrings { get; private init; } = new Dictionary<string, string>();

    public IReadOnlyList<AddedToken> AddedTokens { get; private init; } = [];

    public string? ChatTemplate { get; private init; }

    public static TokenizerConfig Read(string folder)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return new TokenizerConfig();
        return JsonFile.Read(path, root =>
        {
            if (root.ValueKind != JsonValueKind.Object) throw new LookaheadException($"tokenizer_config.json ('{path}') is not a JSON object");
            var strings = new Dictionary<string, string>();
            foreach (string name in s_specialNames)
                if (TokenString(root, name) is string value) strings[name] = value;
            return new TokenizerConfig
            {
                AddBosToken = root.TryGetProperty("add_bos_token", out JsonElement add) && add.ValueKind is JsonValueKind.True or JsonValueKind.False
                    ? add.ValueKind == JsonValueKind.True : null,
                SpecialTokenStrings = strings,
                AddedTokens = ReadAddedTokens(root, path),
                ChatTemplate = ReadTemplate(root, path),
            };
        });
    }

    /// <summary>The special tokens a SentencePiece vocabulary should recognise in text: the added tokens,
    /// and the named special strings that are pieces of the vocabulary.</summary>
    public List<AddedToken> SpecialTokens(IReadOnlyDictionary<string, int> vocabulary)
    {
        var tokens = new List<AddedToken>(AddedTokens);
        foreach (string content in SpecialTokenStrings.Values)
        {
            if (content.Length > 0 && vocabulary.TryGetValue(content, out int id) && !tokens.Any(t => t.Content == content))
                tokens.Add(new AddedToken(id, content, Special: true, SingleWord: false, LeftStrip: false, RightStrip: false));
        }
        return tokens;
    }

    private static string? TokenString(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out JsonElement value)) return null;
        if (value.ValueKind == JsonValueKind.String) return value.GetString();
        if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("content", out JsonElement content) && content.ValueKind == JsonValueKind.String)
            return content.GetString();
        return null;
    }

    private static List<AddedToken> ReadAddedTokens(JsonElement root, string path)
    {
        var tokens = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens_decoder", out JsonElement decoder) || decoder.ValueKind != JsonValueKind.Object) return tokens;
        foreach (JsonProperty entry in decoder.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, out int id) || id < 0 || entry.Value.ValueKind != JsonValueKind.Object ||
                !entry.Value.TryGetProperty("content", out JsonElement content) || content.ValueKind != JsonValueKind.String || content.GetString()!.Length == 0)
                throw new LookaheadException($"tokenizer_config.json ('{path}'): added_tokens_decoder[\"{entry.Name}\"] needs a non-negative id and a non-empty content");
            tokens.Add(new AddedToken(id, content.GetString()!, Flag(entry.Value, "special"), Flag(entry.Value, "single_word"),
                Flag(entry.Value, "lstrip"), Flag(entry.Value, "rstrip")));
        }
        return tokens;
    }

    private static string? ReadTemplate(JsonElement root, string path)
    {
        if (!root.TryGetProperty("chat_template", out JsonElement template) || template.ValueKind == JsonValueKind.Null) return null;
        if (template.ValueKind == JsonValueKind.String) return template.GetString();
        if (template.ValueKind == JsonValueKind.Array)
        {
            foreach (JsonElement named in template.EnumerateArray())
            {
                if (named.ValueKind == JsonValueKind.Object && named.TryGetProperty("name", out JsonElement name) && name.ValueKind == JsonValueKind.String &&
                    name.GetString() == "default" && named.TryGetProperty("template", out JsonElement text) && text.ValueKind == JsonValueKind.String)
                    return text.GetString();
            }
            throw new LookaheadException($"tokenizer_config.json ('{path}'): chat_template is a list without a \"default\" template");
        }
        throw new LookaheadException($"tokenizer_config.json ('{path}'): chat_template is neither a string nor a list of named templates");
    }

    private static bool Flag(JsonElement element, string name) =>
        element.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.True;
}
