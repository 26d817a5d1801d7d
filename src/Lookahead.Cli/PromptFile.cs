using System.Text.Json;

namespace Lookahead.Cli;

/// <summary>One line of a prompts JSONL file: text to encode, or token ids (for folders without a tokenizer).</summary>
internal sealed record PromptLine(string File, int Line, string? Id, string? Prompt, int[]? PromptIds, string? Split, string? Category)
{
    /// <summary>The prompt's token ids: "prompt_ids" as given, else "prompt" encoded by the model's tokenizer.</summary>
    public int[] Tokens(LanguageModel model)
    {
        if (PromptIds is { } ids)
        {
            foreach (int id in ids)
                if (id >= model.Config.VocabSize)
                    throw new LookaheadException($"{File} line {Line}: token id {id} is outside the model's vocabulary (size {model.Config.VocabSize})");
            return ids;
        }
        if (model.Tokenizer is null)
            throw new LookaheadException($"{File} line {Line}: \"prompt\" needs a tokenizer to encode it and the model folder has " +
                                         $"{model.TokenizerStatus}; give \"prompt_ids\" instead");
        return model.Tokenizer.Encode(Prompt!);
    }
}

/// <summary>
/// Reads JSONL prompt files: one object per line with "prompt" (a string) or "prompt_ids" (an array of token
/// ids), and optional "id", "split", "category".
/// </summary>
internal static class PromptFile
{
    public static List<PromptLine> Read(string path)
    {
        if (!File.Exists(path)) throw new LookaheadException($"prompts file not found: '{path}'");
        string name = Path.GetFileName(path);
        var prompts = new List<PromptLine>();
        int number = 0;
        foreach (string line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using JsonDocument document = JsonDocument.Parse(line);
                JsonElement root = document.RootElement;
                if (root.ValueKind != JsonValueKind.Object)
                    throw new LookaheadException($"{name} line {number}: expected a JSON object");
                string? prompt = root.TryGetProperty("prompt", out JsonElement text) && text.ValueKind == JsonValueKind.String ? text.GetString() : null;
                int[]? ids = root.TryGetProperty("prompt_ids", out JsonElement array) ? ReadIds(array, name, number) : null;
                if (prompt is null && ids is null)
                    throw new LookaheadException($"{name} line {number}: expected a \"prompt\" string or a \"prompt_ids\" array");
                prompts.Add(new PromptLine(name, number, Optional(root, "id"), prompt, ids, Optional(root, "split"), Optional(root, "category")));
            }
            catch (JsonException e)
            {
                throw new LookaheadException($"{name} line {number} is not valid JSON: {e.Message}", e);
            }
        }
        return prompts;
    }

    private static int[] ReadIds(JsonElement array, string name, int number)
    {
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
            throw new LookaheadException($"{name} line {number}: \"prompt_ids\" must be a non-empty array of token ids");
        return array.EnumerateArray().Select(element =>
            element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out int id) && id >= 0
                ? id
                : throw new LookaheadException($"{name} line {number}: \"prompt_ids\" holds {element.GetRawText()}, not a token id")).ToArray();
    }

    private static string? Optional(JsonElement root, string name) =>
        root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
