using Microsoft.ML.Tokenizers;
using Lookahead.Tokenization.HuggingFace;

namespace Lookahead.Tokenization;

/// <summary>
/// A SentencePiece tokenizer.model through Microsoft.ML.Tokenizers' LlamaTokenizer. Special tokens
/// written in text (the "&lt;s&gt;" a chat template puts first, or a model's added tokens) are cut out
/// first and each text segment between them is encoded on its own, as Hugging Face's Llama tokenizers do.
/// </summary>
internal sealed class SentencePieceModel : TokenizerModel
{
    private readonly LlamaTokenizer _tokenizer;
    private readonly AddedTokens _specials;
    private readonly int[] _prefix;

    private readonly string _source;

    public SentencePieceModel(LlamaTokenizer tokenizer, int? bosId, bool addBos, IEnumerable<AddedToken> specials, string source = "tokenizer.model")
    {
        _tokenizer = tokenizer;
        _source = source;
        _specials = new AddedTokens(specials);
        _prefix = addBos && bosId is int bos ? [bos] : [];
        MaxTokenBytes = Math.Max(1, tokenizer.Vocabulary.Keys.Max(piece => System.Text.Encoding.UTF8.GetByteCount(piece)));
        IdLimit = tokenizer.Vocabulary.Values.Max() + 1;
    }

    public override string Description => $"SentencePiece {_source} ({_tokenizer.Vocabulary.Count} pieces)";

    public override IReadOnlyDictionary<string, int> Vocabulary => _tokenizer.Vocabulary;

    public override int IdLimit { get; }

    public override int MaxTokenBytes { get; }

    public override IReadOnlyList<int> Prefix => _prefix;

    public override IReadOnlyList<int> Suffix => [];

    public override List<int> Encode(string text)
    {
        var ids = new List<int>();
        foreach (AddedTokens.Segment segment in _specials.Split(text))
        {
            if (segment.Token is AddedToken token) ids.Add(token.Id);
            else ids.AddRange(_tokenizer.EncodeToIds(segment.Text, addBeginningOfSentence: false, addEndOfSentence: false));
        }
        return ids;
    }

    public override string Decode(IEnumerable<int> ids, bool skipSpecialTokens) =>
        _tokenizer.Decode(ids, considerSpecialTokens: !skipSpecialTokens);
}
