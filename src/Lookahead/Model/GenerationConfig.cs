using System.Text.Json;
using Lookahead.Decoding;

namespace Lookahead.Model;

/// <summary>
/// The sampling defaults of a model folder's generation_config.json, as Hugging Face's generate reads them:
/// greedy unless do_sample is true, then temperature (default 1), top_k (default 50), top_p (default 1) and
/// repetition_penalty (default 1).
/// </summary>
public static class GenerationConfig
{
    /// <summary>The folder's defaults; greedy when it has no generation_config.json.</summary>
    /// <exception cref="LookaheadException">generation_config.json is not valid JSON or holds values out of range.</exception>
    public static SamplingOptions Load(string folder)
    {
        string path = Path.Combine(folder, "generation_config.json");
        if (!File.Exists(path)) return new SamplingOptions();
        return JsonFile.Read(path, root =>
        {
            if (root.ValueKind != JsonValueKind.Object)
                throw new LookaheadException($"generation_config.json must hold a JSON object ('{path}')");
            if (!(root.TryGetProperty("do_sample", out JsonElement sample) && sample.ValueKind == JsonValueKind.True))
                return new SamplingOptions();
            var options = new SamplingOptions
            {
                Temperature = Number(root, "temperature", 1.0f),
                TopK = (int)Number(root, "top_k", 50),
                TopP = Number(root, "top_p", 1.0f),
                RepetitionPenalty = Number(root, "repetition_penalty", 1.0f),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                // A file's values, not the caller's arguments: a model error.
                throw new LookaheadException($"generation_config.json ('{path}'): {e.Message}", e);
            }
            return options;
        });
    }

    private static float Number(JsonElement root, string name, float fallback)
    {
        if (!root.TryGetProperty(name, out JsonElement value) || value.ValueKind == JsonValueKind.Null) return fallback;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetDouble(out double number) || !double.IsFinite(number))
            throw new LookaheadException($"generation_config.json: '{name}' must be a number, got {value.GetRawText()}");
        return (float)number;
    }
}
