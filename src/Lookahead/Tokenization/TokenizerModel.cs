namespace Lookahead.Tokenization;

/// <summary>
/// What <see cref="TextTokenizer"/> needs from a tokenizer format: text to ids without the special tokens
/// a prompt starts or ends with (those are <see cref="Prefix"/> and <see cref="Suffix"/>), ids to text, and
/// the vocabulary.
/// </summary>
internal abstract class TokenizerModel
{
    public abstract string Description { get; }

    /// <summary>Token spellings and ids as the format writes them.</summary>
    public abstract IReadOnlyDictionary<string, int> Vocabulary { get; }

    /// <summary>Largest id the tokenizer produces, plus one.</summary>
    public abstract int IdLimit { get; }

    /// <summary>The most UTF-8 bytes one token stands for.</summary>
    public abstract int MaxTokenBytes { get; }

    /// <summary>Ids put before every encoded prompt (BOS) and after it.</summary>
    public abstract IReadOnlyList<int> Prefix { get; }

    public abstract IReadOnlyList<int> Suffix { get; }

    /// <summary>Encodes text; special tokens written in it become their ids where the format says so.</summary>
    public abstract List<int> Encode(string text);

    public abstract string Decode(IEnumerable<int> ids, bool skipSpecialTokens);
}
