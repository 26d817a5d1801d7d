using System.Runtime.CompilerServices;
using Lookahead.Batching;
using Lookahead.Decoding;
using Lookahead.Tokenization;
using Microsoft.Extensions.AI;

namespace Lookahead.Extensions.AI;

/// <summary>
/// An <see cref="IChatClient"/> over a model: requests from any number of callers run together on one
/// <see cref="BatchGenerator"/>, each emitting exactly what plain decoding emits for it (greedy, or sampling
/// with <see cref="ChatOptions.Seed"/>). <see cref="ChatOptions"/> maps to the sampling settings
/// (Temperature, TopP, TopK, Seed, FrequencyPenalty, PresencePenalty; absent ones take the model's
/// generation_config.json defaults), MaxOutputTokens and StopSequences. Responses report usage and, in
/// AdditionalProperties, "lookahead.steps", "lookahead.tokens_per_step", "lookahead.drafted_tokens" and
/// "lookahead.accepted_tokens".
/// </summary>
/// <remarks>Messages become the prompt through <see cref="ChatPrompt"/>: the model's chat template rendered as
/// transformers renders it, or, for a model without one, the messages' texts joined by blank lines. A template
/// that refuses the messages throws ArgumentException with its words; one this library cannot render,
/// NotSupportedException. Only text content is accepted.</remarks>
public sealed class LookaheadChatClient : IChatClient
{
    private readonly LanguageModel _model;
    private readonly TextTokenizer _tokenizer;
    private readonly InferenceContext _context;
    private readonly BatchGenerator _batch;
    private readonly ChatPrompt _prompt;
    private readonly int _defaultMaxTokens;
    private readonly ChatClientMetadata _metadata;

    /// <summary>Creates a context on the model (a sequence per concurrent request) and its batch generator; the
    /// model must outlive the client.</summary>
    /// <exception cref="LookaheadException">The model has no tokenizer, or the context cannot be created.</exception>
    public LookaheadChatClient(LanguageModel model, LookaheadChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new LookaheadChatClientOptions();
        if (options.MaxConcurrency is < 1 or > 256)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxConcurrency, "MaxConcurrency must be in 1..256");
        if (options.DefaultMaxOutputTokens < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.DefaultMaxOutputTokens, "DefaultMaxOutputTokens must be at least 1");
        _model = model;
        _tokenizer = model.Tokenizer ?? throw new LookaheadException(
            $"the model folder '{model.Folder}' has no tokenizer this library reads ({model.TokenizerStatus}): a chat client needs text");
        _prompt = ChatPrompt.ForModel(model.Folder);
        _defaultMaxTokens = options.DefaultMaxOutputTokens;
        _context = model.CreateContext(BatchGenerator.ContextOptionsFor(options.Context, options.MaxConcurrency));
        try
        {
            _batch = new BatchGenerator(_context);
        }
        catch
        {
            _context.Dispose();
            throw;
        }
        string id = options.ModelId ?? Path.GetFileName(Path.TrimEndingDirectorySeparator(model.Folder));
        _metadata = new ChatClientMetadata("lookahead", null, id);
    }

    /// <inheritdoc />
    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var text = new System.Text.StringBuilder();
        ChatResponseUpdate? last = null;
        await foreach (ChatResponseUpdate update in GetStreamingResponseAsync(messages, options, cancellationToken).ConfigureAwait(false))
        {
            text.Append(update.Text);
            last = update;
        }
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, text.ToString()))
        {
            ModelId = _metadata.DefaultModelId,
            FinishReason = last?.FinishReason,
            Usage = last?.Contents.OfType<UsageContent>().FirstOrDefault()?.Details,
            AdditionalProperties = last?.AdditionalProperties,
        };
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        int[] prompt = _prompt.Encode(_tokenizer, _prompt.Render(Turns(messages)));
        GenerationOptions generation = Options(options, prompt.Length);
        var stream = new StoppingTextStream(_tokenizer, prompt, options?.StopSequences is { } list ? list.ToList() : []);
        string responseId = Guid.NewGuid().ToString("N");
        int generated = 0;
        BatchResult? result = null;
        await foreach (BatchChunk chunk in _batch.GenerateAsync(prompt, generation, cancellationToken).ConfigureAwait(false))
        {
            if (chunk.Result is not null)
            {
                result = chunk.Result;
                break;
            }
            generated += chunk.Tokens.Length;
            string text = stream.Append(chunk.Tokens);
            if (text.Length > 0) yield return Update(responseId, text);
            if (stream.Stopped) break;  // leaving the enumeration cancels the request at the next step
        }
        string rest = stream.Finish();
        if (rest.Length > 0) yield return Update(responseId, rest);
        var usage = new UsageDetails { InputTokenCount = prompt.Length, OutputTokenCount = generated, TotalTokenCount = prompt.Length + generated };
        var final = new ChatResponseUpdate(ChatRole.Assistant, [new UsageContent(usage)])
        {
            ResponseId = responseId,
            ModelId = _metadata.DefaultModelId,
            FinishReason = stream.Stopped || result?.FinishReason == FinishReason.EndOfSequence ? ChatFinishReason.Stop : ChatFinishReason.Length,
        };
        if (result is not null)
        {
            final.AdditionalProperties = new AdditionalPropertiesDictionary
            {
                ["lookahead.steps"] = result.Stats.Steps,
                ["lookahead.tokens_per_step"] = result.Stats.MeanTokensPerStep,
                ["lookahead.drafted_tokens"] = result.Stats.DraftedTokens,
                ["lookahead.accepted_tokens"] = result.Stats.AcceptedTokens,
            };
        }
        yield return final;
    }

    private ChatResponseUpdate Update(string responseId, string text) =>
        new(ChatRole.Assistant, text) { ResponseId = responseId, ModelId = _metadata.DefaultModelId };

    // The messages as role and text; anything but text content is refused by position.
    private static List<ChatTurn> Turns(IEnumerable<ChatMessage> messages)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var turns = new List<ChatTurn>();
        int i = 0;
        foreach (ChatMessage message in messages)
        {
            AIContent? other = message.Contents.FirstOrDefault(c => c is not TextContent);
            if (other is not null)
                throw new ArgumentException($"message {i} holds {other.GetType().Name}: only text content is supported", nameof(messages));
            turns.Add(new ChatTurn(message.Role.Value, message.Text));
            i++;
        }
        if (turns.Count == 0) throw new ArgumentException("there are no messages", nameof(messages));
        return turns;
    }

    private GenerationOptions Options(ChatOptions? options, int promptTokens)
    {
        int room = _context.ContextLength - promptTokens;
        if (room <= 0)
            throw new ArgumentException($"the prompt has {promptTokens} tokens but the context holds {_context.ContextLength}: no room to generate", nameof(options));
        if (options?.MaxOutputTokens is int asked && (asked < 1 || asked > room))
            throw new ArgumentException($"MaxOutputTokens {asked} must be in 1..{room} (the context holds {_context.ContextLength} tokens, the prompt {promptTokens})", nameof(options));
        SamplingOptions defaults = _model.DefaultSampling;
        return new GenerationOptions
        {
            MaxTokens = options?.MaxOutputTokens ?? Math.Min(_defaultMaxTokens, room),
            Sampling = defaults with
            {
                Temperature = options?.Temperature ?? defaults.Temperature,
                TopP = options?.TopP ?? defaults.TopP,
                TopK = options?.TopK ?? defaults.TopK,
                PresencePenalty = options?.PresencePenalty ?? defaults.PresencePenalty,
                FrequencyPenalty = options?.FrequencyPenalty ?? defaults.FrequencyPenalty,
                Seed = options?.Seed is long seed ? unchecked((ulong)seed) : defaults.Seed,
            },
        };
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType == typeof(BatchGenerator)) return _batch;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    /// <summary>Ends requests in flight and frees the context.</summary>
    public void Dispose()
    {
        _batch.Dispose();
        _context.Dispose();
    }
}
