using System.Text.Json;
using Microsoft.ML.Tokenizers;
using Lookahead.IO;
using Lookahead.Model;

namespace Lookahead.Tokenization;

/// <summary>
/// Text to token ids and back for a model folder with a SentencePiece tokenizer.model, through
/// Microsoft.ML.Tokenizers' LlamaTokenizer. Whether a BOS token starts each prompt follows
/// tokenizer_config.json's add_bos_token (default true) and needs config.json's bos_token_id.
/// </summary>
public sealed class TextTokenizer
{
    /// <summary>Largest tokenizer.model read (real ones are at most a few MiB).</summary>
    public const long MaxModelBytes = 64L * 1024 * 1024;

    private readonly LlamaTokenizer _tokenizer;

    private TextTokenizer(LlamaTokenizer tokenizer, int? bosId, bool addBos)
    {
        _tokenizer = tokenizer;
        BosId = bosId;
        AddBos = addBos && bosId is not null;
        (AnchorId, AnchorText) = FindAnchor(tokenizer);
        MaxPieceBytes = Math.Max(1, tokenizer.Vocabulary.Keys.Max(piece => System.Text.Encoding.UTF8.GetByteCount(piece)));
    }

    /// <summary>The most text bytes one token stands for: the longest piece's UTF-8 length.</summary>
    public int MaxPieceBytes { get; }

    /// <summary>
    /// Whether the text certainly encodes to more than maxTokens tokens, decided without encoding it (so an
    /// oversized prompt fails at once). Each token stands for at most MaxPieceBytes bytes of normalized text;
    /// normalization may collapse runs of whitespace (counted once here) and compose or narrow characters
    /// (at most a third of their bytes remains: Hangul jamo into syllables, full-width into ASCII; the factor
    /// 4 leaves room), so the test never refuses text that would fit.
    /// </summary>
    public bool CertainlyExceeds(ReadOnlySpan<char> text, int maxTokens)
    {
        long limit = 4L * ((long)maxTokens + 1) * MaxPieceBytes, bytes = 0;
        bool inWhitespace = false;
        foreach (char c in text)
        {
            bool whitespace = char.IsWhiteSpace(c);
            if (!whitespace) bytes += c < 0x80 ? 1 : c < 0x800 || char.IsSurrogate(c) ? 2 : 3;
            else if (!inWhitespace) bytes++;
            inWhitespace = whitespace;
            if (bytes > limit) return true;
        }
        return false;
    }

    /// <summary>Description of the tokenizer source.</summary>
    public string Description => $"SentencePiece tokenizer.model ({VocabularySize} pieces)";

    /// <summary>The pieces and their ids (SentencePiece spelling, "▁" for a leading space).</summary>
    public IReadOnlyDictionary<string, int> Vocabulary => _tokenizer.Vocabulary;

    /// <summary>Number of pieces in the tokenizer's vocabulary.</summary>
    public int VocabularySize => _tokenizer.Vocabulary.Count;

    /// <summary>The BOS token id, if the model has one.</summary>
    public int? BosId { get; }

    /// <summary>Whether Encode puts BOS first.</summary>
    public bool AddBos { get; }

    /// <summary>
    /// Loads tokenizer.model from the folder; returns null (with the reason) when the folder has no
    /// supported tokenizer, so callers fall back to token-id input and output.
    /// </summary>
    public static TextTokenizer? TryLoad(string folder, ModelConfig config, out string status)
    {
        string path = Path.Combine(folder, "tokenizer.model");
        if (!File.Exists(path))
        {
            status = File.Exists(Path.Combine(folder, "tokenizer.json"))
                ? "tokenizer.json only (not supported; use token ids)"
                : "none (use token ids)";
            return null;
        }
        byte[] bytes = BoundedFile.ReadAllBytes(path, MaxModelBytes, "tokenizer.model");
        if (bytes.Length == 0) throw new LookaheadException($"tokenizer.model in '{folder}' is empty");
        LlamaTokenizer tokenizer;
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            tokenizer = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new LookaheadException($"tokenizer.model in '{folder}' is not a SentencePiece model this library reads ({e.GetType().Name}: {e.Message})", e);
        }
        if (tokenizer.Vocabulary.Count == 0) throw new LookaheadException($"tokenizer.model in '{folder}' has no pieces");
        if (tokenizer.Vocabulary.Count > config.VocabSize)
            throw new LookaheadException(
                $"tokenizer.model has {tokenizer.Vocabulary.Count} pieces but the model's vocab_size is {config.VocabSize}");
        var result = new TextTokenizer(tokenizer, config.BosTokenId, ReadAddBos(folder));
        status = result.Description;
        return result;
    }

    /// <summary>Encodes text; BOS first when AddBos. Empty text gives just BOS (or nothing).</summary>
    public int[] Encode(string text)
    {
        IReadOnlyList<int> ids = text.Length == 0 ? [] : _tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false);
        if (!AddBos) return ids.ToArray();
        var result = new int[ids.Count + 1];
        result[0] = BosId!.Value;
        for (int i = 0; i < ids.Count; i++) result[i + 1] = ids[i];
        return result;
    }

    /// <summary>Decodes ids to text, leaving out special tokens such as BOS and EOS.</summary>
    public string Decode(IEnumerable<int> ids) => _tokenizer.Decode(ids, considerSpecialTokens: false);

    /// <summary>Starts incremental decoding of a continuation of the given prompt.</summary>
    public StreamingDetokenizer CreateStream(ReadOnlySpan<int> prompt) => new(this, prompt);

    /// <summary>
    /// Ids of pieces that should not start an n-gram in the lookahead trie: pieces whose text is empty,
    /// whitespace, or punctuation and symbols only (special tokens included).
    /// </summary>
    public IReadOnlySet<int> StopTokenIds()
    {
        var stops = new HashSet<int>();
        foreach ((string _, int id) in _tokenizer.Vocabulary)
        {
            string text = Decode([id]);
            if (text.Contains('\uFFFD')) continue;  // a byte-fallback piece: part of a character, not punctuation
            if (text.All(c => char.IsWhiteSpace(c) || char.IsPunctuation(c) || char.IsSymbol(c))) stops.Add(id);
        }
        return stops;
    }

    /// <summary>A piece that decodes to one plain character without a leading space (see
    /// <see cref="StreamingDetokenizer"/>), or null when the vocabulary has none.</summary>
    internal int? AnchorId { get; }

    internal string AnchorText { get; } = "";

    private static (int?, string) FindAnchor(LlamaTokenizer tokenizer)
    {
        IReadOnlyDictionary<string, int> vocabulary = tokenizer.Vocabulary;
        // A letter piece, not a byte-fallback piece: the decoder treats a space right after a byte piece
        // differently from one after a letter.
        IEnumerable<string> candidates =
            vocabulary.Keys.Where(piece => piece.Length == 1 && char.IsAsciiLetter(piece[0])).Order(StringComparer.Ordinal);
        foreach (string piece in candidates)
        {
            if (!vocabulary.TryGetValue(piece, out int id)) continue;
            string text = tokenizer.Decode([id], considerSpecialTokens: false);
            if (text.Length == 1 && char.IsAsciiLetter(text[0])) return (id, text);
        }
        return (null, "");
    }

    private static bool ReadAddBos(string folder)
    {
        string path = Path.Combine(folder, "tokenizer_config.json");
        if (!File.Exists(path)) return true;
        return JsonFile.Read(path, root => !(root.ValueKind == JsonValueKind.Object &&
                                             root.TryGetProperty("add_bos_token", out JsonElement value) &&
                                             value.ValueKind == JsonValueKind.False));
    }
}
