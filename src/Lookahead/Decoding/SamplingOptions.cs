namespace Lookahead.Decoding;

/// <summary>
/// How each token is chosen. The defaults are greedy decoding. Otherwise generated token i uses a uniform
/// draw keyed by (Seed, i) and the logits are processed in Hugging Face's order: repetition penalty (HF: over
/// the prompt and every earlier output token), presence and frequency penalties (OpenAI: over earlier output
/// tokens), temperature, top-k, top-p, min-p; the token is the inverse CDF of the draw over the kept tokens by
/// probability descending, id ascending on ties. Lookahead emits exactly the tokens plain sampling emits for
/// the same seed (native/include/lookahead.h, lk_context_decode_sample).
/// </summary>
public sealed record SamplingOptions
{
    /// <summary>Softmax temperature, at least 0; 0 is greedy (default).</summary>
    public float Temperature { get; init; }
    /// <summary>Keep the k most likely tokens; 0 keeps all (default).</summary>
    public int TopK { get; init; }
    /// <summary>Keep the smallest set of most likely tokens whose probability reaches this, in (0, 1]; 1 keeps all.</summary>
    public float TopP { get; init; } = 1;
    /// <summary>Keep tokens at least this fraction of the most likely one's probability, in [0, 1]; 0 keeps all.</summary>
    public float MinP { get; init; }
    /// <summary>Divides positive and multiplies negative logits of tokens seen before, above 0; 1 is off.</summary>
    public float RepetitionPenalty { get; init; } = 1;
    /// <summary>Subtracted from the logit of every token already generated; 0 is off.</summary>
    public float PresencePenalty { get; init; }
    /// <summary>Subtracted once per earlier occurrence in the output; 0 is off.</summary>
    public float FrequencyPenalty { get; init; }
    /// <summary>The draws' seed; null picks one at random (reported in <see cref="GenerationResult.Seed"/>).</summary>
    public ulong? Seed { get; init; }

    /// <summary>Whether these settings are plain greedy decoding (no temperature, no penalty).</summary>
    public bool IsGreedy => Temperature == 0 && RepetitionPenalty == 1 && PresencePenalty == 0 && FrequencyPenalty == 0;

    /// <summary>Throws an ArgumentException naming the first setting out of range.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public void Validate()
    {
        if (!float.IsFinite(Temperature) || Temperature < 0)
            throw new ArgumentException($"temperature must be a finite number >= 0, got {Temperature}", nameof(Temperature));
        if (TopK < 0) throw new ArgumentException($"top-k must be >= 0 (0 = off), got {TopK}", nameof(TopK));
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"top-p must be in (0, 1], got {TopP}", nameof(TopP));
        if (!(MinP >= 0 && MinP <= 1)) throw new ArgumentException($"min-p must be in [0, 1], got {MinP}", nameof(MinP));
        if (!float.IsFinite(RepetitionPenalty) || RepetitionPenalty <= 0)
            throw new ArgumentException($"repetition penalty must be a finite number > 0, got {RepetitionPenalty}", nameof(RepetitionPenalty));
        if (!float.IsFinite(PresencePenalty)) throw new ArgumentException($"presence penalty must be finite, got {PresencePenalty}", nameof(PresencePenalty));
        if (!float.IsFinite(FrequencyPenalty)) throw new ArgumentException($"frequency penalty must be finite, got {FrequencyPenalty}", nameof(FrequencyPenalty));
    }
}
