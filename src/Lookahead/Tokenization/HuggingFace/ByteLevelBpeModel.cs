using System.Collections.Concurrent;
using System.Text;

namespace Lookahead.Tokenization.HuggingFace;

/// <summary>
/// A byte-level BPE tokenizer from Hugging Face's tokenizer.json (GPT-2, Llama 3, Qwen2, SmolLM): added
/// tokens cut out first, then the normalizer, the pre-tokenizers, each piece's UTF-8 bytes spelled with
/// <see cref="ByteLevelAlphabet"/> and merged by BPE; decoding maps the spelling back to bytes.
/// </summary>
internal sealed class ByteLevelBpeModel : TokenizerModel
{
    private const int CacheLimit = 50_000;

    private readonly Dictionary<string, int> _modelVocabulary;
    private readonly Dictionary<string, int> _vocabulary;
    private readonly string?[] _tokenOf;
    private readonly bool[] _special;
    private readonly int[] _byteIds;
    private readonly BpeMerges _merges;
    private readonly bool _ignoreMerges;
    private readonly Func<string, string> _normalize;
    private readonly IReadOnlyList<PreTokenizer> _preTokenizers;
    private readonly AddedTokens _addedTokens;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    public ByteLevelBpeModel(string description, Dictionary<string, int> vocabulary, BpeMerges merges, bool ignoreMerges,
        Func<string, string> normalize, IReadOnlyList<PreTokenizer> preTokenizers, IReadOnlyList<AddedToken> addedTokens,
        int[] prefix, int[] suffix)
    {
        Description = description;
        _merges = merges;
        _ignoreMerges = ignoreMerges;
        _normalize = normalize;
        _preTokenizers = preTokenizers;
        _addedTokens = new AddedTokens(addedTokens);
        Prefix = prefix;
        Suffix = suffix;

        _modelVocabulary = vocabulary;
        _vocabulary = new Dictionary<string, int>(vocabulary, StringComparer.Ordinal);
        foreach (AddedToken token in addedTokens) _vocabulary.TryAdd(token.Content, token.Id);
        IdLimit = _vocabulary.Values.Max() + 1;
        _tokenOf = new string?[IdLimit];
        foreach ((string token, int id) in vocabulary) _tokenOf[id] = token;
        _special = new bool[IdLimit];
        foreach (AddedToken token in addedTokens) { _tokenOf[token.Id] = token.Content; _special[token.Id] = token.Special; }

        _byteIds = new int[256];
        for (int b = 0; b < 256; b++)
        {
            if (!vocabulary.TryGetValue(ByteLevelAlphabet.CharOf((byte)b).ToString(), out _byteIds[b]))
                throw new LookaheadException($"tokenizer.json: the byte-level vocabulary has no token for byte 0x{b:X2}");
        }
        var bytes = new List<byte>();
        int longest = 1;
        foreach (string? token in _tokenOf)
        {
            if (token is null) continue;
            bytes.Clear();
            ByteLevelAlphabet.AppendBytes(token, bytes);
            longest = Math.Max(longest, bytes.Count);
        }
        MaxTokenBytes = longest;
    }

    public override string Description { get; }

    public override IReadOnlyDictionary<string, int> Vocabulary => _vocabulary;

    public override int IdLimit { get; }

    public override int MaxTokenBytes { get; }

    public override IReadOnlyList<int> Prefix { get; }

    public override IReadOnlyList<int> Suffix { get; }

    public override List<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (AddedTokens.Segment segment in _addedTokens.Split(text))
        {
            if (segment.Token is AddedToken token) { ids.Add(token.Id); continue; }
            foreach (string piece in PreTokenizer.Run(_preTokenizers, _normalize(segment.Text)))
                EncodeWord(piece, ids);
        }
        return ids;
    }

    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            // Ids outside the vocabulary (a model's padding rows) have no text, as in Hugging Face's decode.
            if ((uint)id >= (uint)_tokenOf.Length || _tokenOf[id] is not string token) continue;
            if (skipSpecialTokens && _special[id]) continue;
            ByteLevelAlphabet.AppendBytes(token, bytes);
        }
        return Encoding.UTF8.GetString(bytes.ToArray());
    }

    private void EncodeWord(string piece, List<int> output)
    {
        if (piece.Length == 0) return;
        if (_cache.TryGetValue(piece, out int[]? cached)) { output.AddRange(cached); return; }
        byte[] utf8 = Encoding.UTF8.GetBytes(piece);
        var ids = new List<int>(utf8.Length);
        if (_ignoreMerges && _modelVocabulary.TryGetValue(ByteLevelAlphabet.Spell(utf8), out int whole))
            ids.Add(whole);
        else
        {
            var symbols = new int[utf8.Length];
            for (int i = 0; i < utf8.Length; i++) symbols[i] = _byteIds[utf8[i]];
            _merges.Apply(symbols, ids);
        }
        int[] result = ids.ToArray();
        if (_cache.Count < CacheLimit) _cache.TryAdd(piece, result);
        output.AddRange(result);
    }
}
