using System.Text.Json;
using Microsoft.ML.Tokenizers;
using Lookahead.IO;
using Lookahead.Model;
using Lookahead.Tokenization.HuggingFace;

namespace Lookahead.Tokenization;

/// <summary>
/// Text to token ids and back for a model folder: a SentencePiece tokenizer.model (through
/// Microsoft.ML.Tokenizers' LlamaTokenizer; a BOS token starts each prompt when tokenizer_config.json's
/// add_bos_token, default true, says so and config.json names it), or else Hugging Face's tokenizer.json
/// with a byte-level BPE model (its post_processor decides what starts a prompt). Special tokens written in
/// the text, as chat templates write them, become their ids.
/// </summary>
public sealed class TextTokenizer
{
    /// <summary>Largest tokenizer.model read (real ones are at most a few MiB).</summary>
    public const long MaxModelBytes = 64L * 1024 * 1024;

    private readonly TokenizerModel _model;
    private readonly Lazy<IReadOnlySet<int>> _stopTokenIds;

    private TextTokenizer(TokenizerModel model, int? bosId)
    {
        _model = model;
        BosId = bosId;
        _stopTokenIds = new Lazy<IReadOnlySet<int>>(FindStopTokenIds);
        (AnchorId, AnchorText) = FindAnchor(model);
    }

    /// <summary>The most text bytes one token stands for.</summary>
    public int MaxPieceBytes => _model.MaxTokenBytes;

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
    public string Description => _model.Description;

    /// <summary>The tokens and their ids as the tokenizer file spells them (SentencePiece's "▁" for a leading
    /// space; tokenizer.json's byte-level "Ġ").</summary>
    public IReadOnlyDictionary<string, int> Vocabulary => _model.Vocabulary;

    /// <summary>Number of tokens in the tokenizer's vocabulary.</summary>
    public int VocabularySize => _model.Vocabulary.Count;

    /// <summary>The BOS token id, if the model has one.</summary>
    public int? BosId { get; }

    /// <summary>Whether Encode puts BOS first.</summary>
    public bool AddBos => BosId is int bos && _model.Prefix.Count > 0 && _model.Prefix[0] == bos;

    /// <summary>
    /// Loads the folder's tokenizer.model, or else its tokenizer.json; returns null (with the reason) when the
    /// folder has neither, so callers fall back to token-id input and output.
    /// </summary>
    /// <exception cref="LookaheadException">The tokenizer file is unreadable, or of a kind this library does not read.</exception>
    public static TextTokenizer? TryLoad(string folder, ModelConfig config, out string status)
    {
        TokenizerModel model;
        if (File.Exists(Path.Combine(folder, "tokenizer.model"))) model = LoadSentencePiece(folder, config);
        else if (File.Exists(Path.Combine(folder, "tokenizer.json"))) model = TokenizerJson.Load(Path.Combine(folder, "tokenizer.json"));
        else
        {
            status = "none (use token ids)";
            return null;
        }
        if (model.IdLimit > config.VocabSize)
            throw new LookaheadException($"the tokenizer has ids up to {model.IdLimit - 1} but the model's vocab_size is {config.VocabSize}");
        var result = new TextTokenizer(model, config.BosTokenId);
        status = result.Description;
        return result;
    }

    /// <summary>The tokenizer a GGUF file embeds (<see cref="GgufVocabulary"/>); null, with the reason in
    /// status, when it has none or one of a kind not read yet.</summary>
    /// <exception cref="LookaheadException">The vocabulary is inconsistent or does not fit the model.</exception>
    internal static TextTokenizer? TryLoadGguf(Model.Gguf.GgufFile file, ModelConfig config, out string status)
    {
        TokenizerModel? model = GgufVocabulary.Load(file, config, out status);
        if (model is null) return null;
        var result = new TextTokenizer(model, config.BosTokenId);
        status = result.Description;
        return result;
    }

    private static SentencePieceModel LoadSentencePiece(string folder, ModelConfig config)
    {
        byte[] bytes = BoundedFile.ReadAllBytes(Path.Combine(folder, "tokenizer.model"), MaxModelBytes, "tokenizer.model");
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
        TokenizerConfig tokenizerConfig = TokenizerConfig.Read(folder);
        var specials = tokenizerConfig.SpecialTokens(tokenizer.Vocabulary);
        return new SentencePieceModel(tokenizer, config.BosTokenId, tokenizerConfig.AddBosToken ?? true, specials);
    }

    /// <summary>Encodes text (BOS first when AddBos, or what tokenizer.json's post_processor puts around a
    /// prompt). Empty text gives just those.</summary>
    public int[] Encode(string text) => [.. _model.Prefix, .. _model.Encode(text), .. _model.Suffix];

    /// <summary>Encodes text that already holds its special tokens (a rendered chat template): nothing is
    /// added around it.</summary>
    public int[] EncodeWithoutAddedTokens(string text) => _model.Encode(text).ToArray();

    /// <summary>Decodes ids to text, leaving out special tokens such as BOS and EOS.</summary>
    public string Decode(IEnumerable<int> ids) => _model.Decode(ids, skipSpecialTokens: true);

    /// <summary>Decodes ids to text; special tokens are written out unless skipped.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens) => _model.Decode(ids, skipSpecialTokens);

    /// <summary>Starts incremental decoding of a continuation of the given prompt.</summary>
    public StreamingDetokenizer CreateStream(ReadOnlySpan<int> prompt) => new(this, prompt);

    /// <summary>
    /// Ids of pieces that should not start an n-gram in the lookahead trie: pieces whose text is empty,
    /// whitespace, or punctuation and symbols only (special tokens included).
    /// </summary>
    /// <remarks>Computed once per tokenizer (it decodes the whole vocabulary) and shared.</remarks>
    public IReadOnlySet<int> StopTokenIds() => _stopTokenIds.Value;

    private IReadOnlySet<int> FindStopTokenIds()
    {
        var stops = new HashSet<int>();
        foreach ((string _, int id) in _model.Vocabulary)
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

    private static (int?, string) FindAnchor(TokenizerModel model)
    {
        // A letter piece, not a byte-fallback piece: SentencePiece's decoder treats a space right after a
        // byte piece differently from one after a letter.
        IReadOnlyDictionary<string, int> vocabulary = model.Vocabulary;
        IEnumerable<string> candidates =
            vocabulary.Keys.Where(piece => piece.Length == 1 && char.IsAsciiLetter(piece[0])).Order(StringComparer.Ordinal);
        foreach (string piece in candidates)
        {
            int id = vocabulary[piece];
            string text = model.Decode([id], skipSpecialTokens: true);
            if (text.Length == 1 && char.IsAsciiLetter(text[0])) return (id, text);
        }
        return (null, "");
    }
}
