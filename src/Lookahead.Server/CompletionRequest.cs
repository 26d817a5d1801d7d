using System.Text.Json;
using Lookahead.Decoding;
using Lookahead.Drafting;
using Lookahead.Tokenization;

namespace Lookahead.Server;

/// <summary>
/// A parsed and checked body of POST /v1/completions or /v1/chat/completions: the prompt (text, or token ids
/// for completions), the length and stop settings, streaming, sampling (the model's generation_config.json
/// defaults where a field is absent, as vLLM does) and our optional <c>lookahead</c> object
/// (<c>mode</c>: "lookahead" | "plain" | "greedy", <c>decoding_length</c>: N | "auto", <c>branch_length</c>: N).
/// </summary>
internal sealed record CompletionRequest
{
    /// <summary>Most stop strings a request may give (OpenAI's limit).</summary>
    public const int MaxStopStrings = 4;

    public required bool Chat { get; init; }
    /// <summary>The prompt as text (completions' string prompt, or chat messages as rendered); null with ids.</summary>
    public string? PromptText { get; init; }
    /// <summary>Completions' prompt as token ids.</summary>
    public int[]? PromptIds { get; init; }
    /// <summary>max_tokens (or chat's max_completion_tokens); null: the server's default, within the context.</summary>
    public int? MaxTokens { get; init; }
    public IReadOnlyList<string> Stop { get; init; } = [];
    public bool Stream { get; init; }
    public bool IncludeUsage { get; init; }
    public required SamplingOptions Sampling { get; init; }
    public DecodingMode Mode { get; init; } = DecodingMode.Lookahead;
    public DraftOptions Drafts { get; init; } = new();

    /// <summary>Reads a request body; every problem is a 400 (an unknown model a 404) naming the field.</summary>
    public static CompletionRequest Parse(JsonElement body, bool chat, string modelName, SamplingOptions defaults, ChatPrompt chatPrompt)
    {
        if (body.ValueKind != JsonValueKind.Object) throw ApiError.Invalid("", "the request body must be a JSON object");
        var fields = new RequestFields(body);
        string? model = fields.String("model");
        if (model is not null && model != modelName)
            throw new ApiError(404, $"the model '{model}' does not exist: this server serves '{modelName}'", "model", "model_not_found");
        RefuseUnsupported(fields, chat);

        long? maxTokens = chat ? fields.Integer("max_completion_tokens", 1, int.MaxValue) ?? fields.Integer("max_tokens", 1, int.MaxValue)
            : fields.Integer("max_tokens", 1, int.MaxValue);
        bool stream = fields.Bool("stream") ?? false;
        bool includeUsage = fields.Object("stream_options")?.Bool("include_usage") ?? false;
        (DecodingMode mode, DraftOptions drafts) = Lookahead(fields.Object("lookahead"));
        return new CompletionRequest
        {
            Chat = chat,
            PromptText = chat ? Render(chatPrompt, Messages(fields)) : PromptTextOrNull(fields),
            PromptIds = chat ? null : PromptIdsOrNull(fields),
            MaxTokens = (int?)maxTokens,
            Stop = StopStrings(fields),
            Stream = stream,
            IncludeUsage = includeUsage,
            Sampling = ReadSampling(fields, defaults),
            Mode = mode,
            Drafts = drafts,
        };
    }

    private static string Render(ChatPrompt chatPrompt, List<ChatTurn> messages)
    {
        try
        {
            return chatPrompt.Render(messages);
        }
        catch (NotSupportedException e)
        {
            throw new ApiError(400, e.Message, "messages", "chat_template_unsupported");
        }
        catch (ArgumentException e)
        {
            throw new ApiError(400, e.Message.Split(" (Parameter")[0], "messages", "invalid_messages");
        }
    }

    // Fields OpenAI documents whose non-default values this server cannot honour: refused, never ignored.
    private static void RefuseUnsupported(RequestFields fields, bool chat)
    {
        fields.RequireDefault("n", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n == 1, "only n = 1 is supported");
        fields.RequireDefault("best_of", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n == 1, "only best_of = 1 is supported");
        fields.RequireDefault("echo", v => v.ValueKind == JsonValueKind.False, "echo is not supported");
        fields.RequireDefault("suffix", v => v.ValueKind == JsonValueKind.String && v.GetString()!.Length == 0, "suffix is not supported");
        fields.RequireDefault("logprobs", v => v.ValueKind == JsonValueKind.False || (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n == 0),
            "log probabilities are not supported");
        fields.RequireDefault("top_logprobs", v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int n) && n == 0, "log probabilities are not supported");
        fields.RequireDefault("logit_bias", v => v.ValueKind == JsonValueKind.Object && !v.EnumerateObject().Any(), "logit_bias is not supported");
        fields.RequireDefault("tools", v => v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0, "tools are not supported");
        fields.RequireDefault("functions", v => v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 0, "functions are not supported");
        fields.RequireDefault("tool_choice", v => v.ValueKind == JsonValueKind.String && v.GetString() == "none", "tools are not supported");
        fields.RequireDefault("response_format", v => v.ValueKind == JsonValueKind.Object && v.TryGetProperty("type", out JsonElement t)
            && t.ValueKind == JsonValueKind.String && t.GetString() == "text", "only the \"text\" response format is supported");
        if (!chat && !fields.TryGet("prompt", out _)) throw ApiError.Invalid("prompt", "'prompt' is required");
        if (chat && !fields.TryGet("messages", out _)) throw ApiError.Invalid("messages", "'messages' is required");
    }

    private static SamplingOptions ReadSampling(RequestFields fields, SamplingOptions defaults)
    {
        double? topP = fields.Number("top_p", 0, 1);
        if (topP == 0) throw ApiError.Invalid("top_p", "'top_p' must be in (0, 1], got 0");
        long? topK = fields.Integer("top_k", -1, int.MaxValue);  // vLLM's extension: -1 (or 0) keeps all
        double? repetition = fields.Number("repetition_penalty", 0, 100);
        if (repetition == 0) throw ApiError.Invalid("repetition_penalty", "'repetition_penalty' must be above 0");
        long? seed = fields.Integer("seed", long.MinValue, long.MaxValue);
        return defaults with
        {
            Temperature = (float?)fields.Number("temperature", 0, 2) ?? defaults.Temperature,
            TopP = (float?)topP ?? defaults.TopP,
            TopK = topK is long k ? (int)Math.Max(0, k) : defaults.TopK,
            MinP = (float?)fields.Number("min_p", 0, 1) ?? defaults.MinP,
            PresencePenalty = (float?)fields.Number("presence_penalty", -2, 2) ?? defaults.PresencePenalty,
            FrequencyPenalty = (float?)fields.Number("frequency_penalty", -2, 2) ?? defaults.FrequencyPenalty,
            RepetitionPenalty = (float?)repetition ?? defaults.RepetitionPenalty,
            Seed = seed is long s ? unchecked((ulong)s) : defaults.Seed,
        };
    }

    private static IReadOnlyList<string> StopStrings(RequestFields fields)
    {
        if (!fields.TryGet("stop", out JsonElement stop)) return [];
        if (stop.ValueKind == JsonValueKind.String) return NonEmpty([stop.GetString()!]);
        if (stop.ValueKind != JsonValueKind.Array || stop.EnumerateArray().Any(s => s.ValueKind != JsonValueKind.String))
            throw ApiError.Invalid("stop", "'stop' must be a string or an array of strings");
        if (stop.GetArrayLength() > MaxStopStrings) throw ApiError.Invalid("stop", $"'stop' holds at most {MaxStopStrings} strings");
        return NonEmpty(stop.EnumerateArray().Select(s => s.GetString()!).ToList());

        static IReadOnlyList<string> NonEmpty(IReadOnlyList<string> strings) => strings.Any(s => s.Length == 0)
            ? throw ApiError.Invalid("stop", "stop strings must not be empty")
            : strings;
    }

    private static (DecodingMode, DraftOptions) Lookahead(RequestFields? fields)
    {
        var drafts = new DraftOptions();
        if (fields is not RequestFields f) return (DecodingMode.Lookahead, drafts);
        DecodingMode mode = f.String("mode") switch
        {
            null or "lookahead" => DecodingMode.Lookahead,
            "plain" or "greedy" => DecodingMode.Greedy,
            string other => throw ApiError.Invalid("lookahead.mode", $"'lookahead.mode' must be \"lookahead\" or \"plain\", got \"{other}\""),
        };
        if (f.TryGet("decoding_length", out JsonElement length))
        {
            if (length.ValueKind == JsonValueKind.String && length.GetString() == "auto") drafts = drafts with { Adaptive = true };
            else if (length.ValueKind == JsonValueKind.Number && length.TryGetInt32(out int n) && n >= 1 && n <= 256)
                drafts = drafts with { Adaptive = false, DecodingLength = n };
            else throw ApiError.Invalid("lookahead.decoding_length", "'lookahead.decoding_length' must be \"auto\" or an integer in [1, 256]");
        }
        if (f.Integer("branch_length", 1, 256) is long branch) drafts = drafts with { BranchLength = (int)branch };
        return (mode, drafts);
    }

    private static string? PromptTextOrNull(RequestFields fields)
    {
        fields.TryGet("prompt", out JsonElement prompt);
        if (prompt.ValueKind == JsonValueKind.String) return prompt.GetString();
        if (prompt.ValueKind == JsonValueKind.Array && prompt.GetArrayLength() == 1 && prompt[0].ValueKind == JsonValueKind.String) return prompt[0].GetString();
        return null;
    }

    // A prompt of token ids ([1, 2, 3] or [[1, 2, 3]]); null for a text prompt. Several prompts are refused.
    private static int[]? PromptIdsOrNull(RequestFields fields)
    {
        fields.TryGet("prompt", out JsonElement prompt);
        if (prompt.ValueKind == JsonValueKind.String) return null;
        if (prompt.ValueKind != JsonValueKind.Array) throw ApiError.Invalid("prompt", "'prompt' must be a string, an array of token ids, or an array holding one of those");
        if (prompt.GetArrayLength() == 1 && prompt[0].ValueKind == JsonValueKind.String) return null;
        if (prompt.GetArrayLength() == 1 && prompt[0].ValueKind == JsonValueKind.Array) prompt = prompt[0];
        else if (prompt.GetArrayLength() > 1 && prompt[0].ValueKind is JsonValueKind.String or JsonValueKind.Array)
            throw ApiError.Invalid("prompt", "one prompt per request: send several prompts as separate requests");
        var ids = new int[prompt.GetArrayLength()];
        int i = 0;
        foreach (JsonElement id in prompt.EnumerateArray())
        {
            if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out ids[i]) || ids[i] < 0)
                throw ApiError.Invalid("prompt", $"'prompt[{i}]' must be a token id (an integer >= 0)");
            i++;
        }
        return ids;
    }

    private static List<ChatTurn> Messages(RequestFields fields)
    {
        fields.TryGet("messages", out JsonElement messages);
        if (messages.ValueKind != JsonValueKind.Array || messages.GetArrayLength() == 0)
            throw ApiError.Invalid("messages", "'messages' must be a non-empty array");
        var result = new List<ChatTurn>();
        int i = 0;
        foreach (JsonElement message in messages.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (message.ValueKind != JsonValueKind.Object) throw ApiError.Invalid(at, $"'{at}' must be an object");
            var m = new RequestFields(message, at + ".");
            string role = m.String("role") ?? throw ApiError.Invalid(at + ".role", $"'{at}.role' is required");
            if (role is not ("system" or "developer" or "user" or "assistant" or "tool"))
                throw ApiError.Invalid(at + ".role", $"'{at}.role' must be system, developer, user, assistant or tool, got \"{role}\"");
            result.Add(new ChatTurn(role, Content(m, at, role)));
        }
        return result;
    }

    // A message's text: a string, or an array of text parts (other part types are refused).
    private static string Content(RequestFields message, string at, string role)
    {
        if (!message.TryGet("content", out JsonElement content))
            return role == "assistant" ? "" : throw ApiError.Invalid(at + ".content", $"'{at}.content' is required");
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw ApiError.Invalid(at + ".content", $"'{at}.content' must be a string or an array of content parts");
        var text = new System.Text.StringBuilder();
        int j = 0;
        foreach (JsonElement part in content.EnumerateArray())
        {
            string partAt = $"{at}.content[{j++}]";
            if (part.ValueKind != JsonValueKind.Object) throw ApiError.Invalid(partAt, $"'{partAt}' must be an object");
            var p = new RequestFields(part, partAt + ".");
            if (p.String("type") != "text") throw ApiError.Invalid(partAt + ".type", $"'{partAt}.type': only text content is supported");
            text.Append(p.String("text") ?? throw ApiError.Invalid(partAt + ".text", $"'{partAt}.text' is required"));
        }
        return text.ToString();
    }
}
