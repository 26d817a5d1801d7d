using System.Runtime.InteropServices;
using System.Text.Json;
using Lookahead.IO;
using Lookahead.Model;

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
/// ids), and optional "id", "split", "category". Lines are read with a length limit (what a context can use),
/// so a wrong path such as a device or a binary file fails at its first line.
/// </summary>
internal static class PromptFile
{
    /// <summary>Longest line read for a context of the given length: room for its tokens as text or ids,
    /// JSON escapes included, plus the other fields.</summary>
    public static int MaxLineBytes(int contextLength) => (int)Math.Min(int.MaxValue, 65536L + contextLength * 128L);

    public static List<PromptLine> Read(string path, int contextLength)
    {
        string name = Path.GetFileName(path);
        int maxLine = MaxLineBytes(contextLength);
        var prompts = new List<PromptLine>();
        using FileStream stream = BoundedFile.Open(path, "prompts file");
        var line = new List<byte>();
        int number = 0;
        for (int next = stream.ReadByte(); ; next = stream.ReadByte())
        {
            if (next >= 0 && next != '\n')
            {
                if (line.Count == maxLine)
                    throw new LookaheadException(
                        $"{name} line {number + 1} is longer than {maxLine:N0} bytes, more than a prompt for a context of {contextLength} tokens can use");
                line.Add((byte)next);
                continue;
            }
            number++;
            if (line.Count > 0) Parse(CollectionsMarshal.AsSpan(line), name, number, prompts);
            line.Clear();
            if (next < 0) break;
        }
        return prompts;
    }

    /// <summary>Interprets one line (skipped when blank); errors name the file and line.</summary>
    internal static void Parse(ReadOnlySpan<byte> line, string name, int number, List<PromptLine> prompts)
    {
        if (line.Length > 0 && line[^1] == '\r') line = line[..^1];
        if (line.IsWhiteSpace()) return;
        string label = $"{name} line {number}";
        PromptLine prompt = JsonFile.Parse(line, label, root =>
        {
            if (root.ValueKind != JsonValueKind.Object)
                throw new LookaheadException($"{label}: expected a JSON object");
            string? text = root.TryGetProperty("prompt", out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
            int[]? ids = root.TryGetProperty("prompt_ids", out JsonElement array) ? ReadIds(array, label) : null;
            if (text is null && ids is null)
                throw new LookaheadException($"{label}: expected a \"prompt\" string or a \"prompt_ids\" array");
            return new PromptLine(name, number, Optional(root, "id"), text, ids, Optional(root, "split"), Optional(root, "category"));
        });
        prompts.Add(prompt);
    }

    private static bool IsWhiteSpace(this ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
            if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r')) return false;
        return true;
    }

    private static int[] ReadIds(JsonElement array, string label)
    {
        if (array.ValueKind != JsonValueKind.Array || array.GetArrayLength() == 0)
            throw new LookaheadException($"{label}: \"prompt_ids\" must be a non-empty array of token ids");
        return array.EnumerateArray().Select(element =>
            element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out int id) && id >= 0
                ? id
                : throw new LookaheadException($"{label}: \"prompt_ids\" holds {element.GetRawText()}, not a token id")).ToArray();
    }

    private static string? Optional(JsonElement root, string name) =>
        root.TryGetProperty(name, out JsonElement value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
}
