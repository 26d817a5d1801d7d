using System.Text.Json;

namespace Lookahead.Cli;

/// <summary>One line of a prompts JSONL file.</summary>
internal sealed record PromptLine(int Line, string? Id, string Prompt, string? Split, string? Category);

/// <summary>Reads JSONL prompt files: one object per line with "prompt" and optional "id", "split", "category".</summary>
internal static class PromptFile
{
    public static List<PromptLine> Read(string path)
    {
        if (!File.Exists(path)) throw new LookaheadException($"prompts file not found: '{path}'");
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
                if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("prompt", out JsonElement prompt) ||
                    prompt.ValueKind != JsonValueKind.String)
                    throw new LookaheadException($"{Path.GetFileName(path)} line {number}: expected an object with a \"prompt\" string");
                prompts.Add(new PromptLine(number, Optional(root, "id"), prompt.GetString()!, Optional(root, "split"), Optional(root, "category")));
            }
            catch (JsonException e)
            {
                throw new LookaheadException($"{Path.GetFileName(path)} line {number} is not valid JSON: {e.Message}", e);
            }
        }
        return prompts;
    }

    private static string? Optional(JsonElement root, string name) =>
        root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
