using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using Lookahead.Model;
using Lookahead.Model.Gguf;
using Lookahead.Tokenization.HuggingFace;
using Lookahead.Tokenization.Unicode;

namespace Lookahead.Tokenization;

/// <summary>
/// The vocabulary a GGUF file embeds, as a tokenizer model. tokenizer.ggml.model "llama" is a SentencePiece
/// vocabulary (tokens, scores, token types), rebuilt as a SentencePiece BPE model and read by the same
/// tokenizer as a tokenizer.model. "gpt2" is a byte-level BPE (tokens spelled as GPT-2's byte alphabet,
/// merges), whose pre-tokenization tokenizer.ggml.pre names: the pattern of the Hugging Face tokenizer
/// that llama.cpp's converter recognised, applied as that tokenizer.json applies it.
/// </summary>
internal static class GgufVocabulary
{
    private static readonly TimeSpan RegexTimeout = TimeSpan.FromSeconds(10);

    // Llama 3's and Qwen2's split patterns (their tokenizer.json Split pre-tokenizers, behavior Isolated).
    private const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    private const string Qwen2Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    /// <summary>The file's tokenizer model, or null (status says why) when it has none or one not read yet.</summary>
    /// <exception cref="LookaheadException">Its arrays are inconsistent or do not fit the model.</exception>
    public static TokenizerModel? Load(GgufFile file, ModelConfig config, out string status)
    {
        string? kind = file.String("tokenizer.ggml.model");
        status = kind switch
        {
            null => "none in the GGUF file (use token ids)",
            "llama" or "gpt2" => "",
            _ => $"GGUF vocabulary of kind '{kind}' is not read ('llama' and 'gpt2' are; use token ids)",
        };
        if (status.Length > 0) return null;
        string label = Path.GetFileName(file.Path);
        string[] tokens = file.Strings("tokenizer.ggml.tokens") ?? throw new LookaheadException($"{label}: tokenizer.ggml.tokens is missing");
        int[] types = file.Ints("tokenizer.ggml.token_type") ?? Enumerable.Repeat(1, tokens.Length).ToArray();
        if (tokens.Length == 0 || types.Length != tokens.Length)
            throw new LookaheadException($"{label}: tokenizer.ggml.tokens and token_type must be non-empty and of one length ({tokens.Length}, {types.Length})");
        if (tokens.Length > config.VocabSize)
            throw new LookaheadException($"{label}: the vocabulary has {tokens.Length} tokens but the model's embedding {config.VocabSize} rows");
        foreach (int type in types)
            if (type is < 1 or > 6) throw new LookaheadException($"{label}: tokenizer.ggml.token_type holds {type} (1 to 6 are defined)");
        // Control and user-defined tokens written in text are those tokens, as a chat template writes them.
        List<AddedToken> added = tokens.Select((text, id) => (text, id)).Where(t => types[t.id] is 3 or 4 && t.text.Length > 0)
            .Select(t => new AddedToken(t.id, t.text, Special: types[t.id] == 3, SingleWord: false, LeftStrip: false, RightStrip: false)).ToList();
        return kind == "llama" ? SentencePieceVocabulary(file, label, tokens, types, config, added) : BytePairVocabulary(file, label, tokens, config, added);
    }

    private static SentencePieceModel SentencePieceVocabulary(GgufFile file, string label, string[] tokens, int[] types, ModelConfig config,
        List<AddedToken> added)
    {
        float[] scores = file.Floats("tokenizer.ggml.scores") ?? new float[tokens.Length];
        if (scores.Length != tokens.Length)
            throw new LookaheadException($"{label}: tokenizer.ggml.scores has {scores.Length} entries for {tokens.Length} tokens");
        var pieces = tokens.Select((text, id) => new SentencePiece(text, scores[id], types[id])).ToList();
        int Id(string key, int fallback) => file.Integer(key) is long id and >= 0 && id < tokens.Length ? (int)id : fallback;
        byte[] proto = SentencePieceProto.WriteBpeModel(pieces, Id("tokenizer.ggml.unknown_token_id", 0), Id("tokenizer.ggml.bos_token_id", 1),
            Id("tokenizer.ggml.eos_token_id", 2), file.Bool("tokenizer.ggml.add_space_prefix") ?? true);
        LlamaTokenizer tokenizer;
        try
        {
            using var stream = new MemoryStream(proto, writable: false);
            tokenizer = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new LookaheadException($"{label}: its SentencePiece vocabulary is not one this library reads ({e.GetType().Name}: {e.Message})", e);
        }
        return new SentencePieceModel(tokenizer, config.BosTokenId, file.Bool("tokenizer.ggml.add_bos_token") ?? true, added, "vocabulary from GGUF");
    }

    private static ByteLevelBpeModel BytePairVocabulary(GgufFile file, string label, string[] tokens, ModelConfig config, List<AddedToken> added)
    {
        string pre = file.String("tokenizer.ggml.pre") ?? "default";
        Func<string, string> identity = static text => text;
        (string? pattern, bool ignoreMerges, Func<string, string> normalize) = pre switch
        {
            "llama-bpe" or "llama3" => ((string?)Llama3Pattern, true, identity),
            "qwen2" => (Qwen2Pattern, false, (Func<string, string>)CanonicalNormalization.ToFormC),
            "gpt-2" or "gpt2" or "default" => (null, false, identity),
            _ => throw new LookaheadException(
                $"{label}: tokenizer.ggml.pre '{pre}' is not read (llama-bpe, qwen2 and gpt-2 are); the model can still be run on token ids"),
        };
        List<HuggingFace.PreTokenizer> steps = pattern is null
            ? [new ByteLevelSplit(addPrefixSpace: false, useRegex: true)]
            : [new RegexSplit(new Regex(pattern, RegexOptions.CultureInvariant, RegexTimeout), SplitBehavior.Isolated, invert: false),
               new ByteLevelSplit(addPrefixSpace: false, useRegex: false)];

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        // Control and user-defined tokens are added tokens (as in tokenizer.json), not BPE pieces; a repeated
        // token (converters pad vocabularies with placeholder names) keeps its first id.
        var addedIds = added.Select(t => t.Id).ToHashSet();
        for (int id = 0; id < tokens.Length; id++)
            if (!addedIds.Contains(id)) vocabulary.TryAdd(tokens[id], id);
        string[] merges = file.Strings("tokenizer.ggml.merges") ?? throw new LookaheadException($"{label}: tokenizer.ggml.merges is missing");
        var rules = new Dictionary<long, (int, int)>();
        for (int rank = 0; rank < merges.Length; rank++)
        {
            string pair = merges[rank];
            int space = pair.IndexOf(' ', 1);
            if (space < 0 || space == pair.Length - 1)
                throw new LookaheadException($"{label}: merge {rank} '{pair}' is not two tokens separated by a space");
            string left = pair[..space], right = pair[(space + 1)..];
            if (!vocabulary.TryGetValue(left, out int leftId) || !vocabulary.TryGetValue(right, out int rightId) ||
                !vocabulary.TryGetValue(left + right, out int mergedId))
                throw new LookaheadException($"{label}: merge {rank} '{pair}' uses or makes a token that is not in the vocabulary");
            rules[BpeMerges.Key(leftId, rightId)] = (rank, mergedId);
        }
        bool addBos = file.Bool("tokenizer.ggml.add_bos_token") ?? false;
        int[] prefix = addBos && config.BosTokenId is int bos ? [bos] : [];
        string description = $"byte-level BPE vocabulary from GGUF ({tokens.Length} tokens, {merges.Length} merges, pre-tokenizer {pre})";
        return new ByteLevelBpeModel(description, vocabulary, new BpeMerges(rules), ignoreMerges, normalize, steps, added, prefix, []);
    }
}
