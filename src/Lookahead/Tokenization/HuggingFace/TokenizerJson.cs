using System.Text.Json;
using System.Text.RegularExpressions;
using Lookahead.IO;
using Lookahead.Model;
using Lookahead.Tokenization.Unicode;

namespace Lookahead.Tokenization.HuggingFace;

/// <summary>
/// Reads Hugging Face's tokenizer.json into a <see cref="ByteLevelBpeModel"/>. Every component is checked
/// against what this reader implements, and one it does not is refused by its type name rather than
/// approximated, since a tokenizer that is slightly wrong gives a model inputs it never saw.
/// </summary>
internal static class TokenizerJson
{
    /// <summary>Largest tokenizer.json read (Llama 3's is 9 MB, the biggest public ones about 30 MB).</summary>
    public const long MaxBytes = 128L * 1024 * 1024;

    /// <summary>Ids are below this (the largest vocabularies have about 256K tokens).</summary>
    private const int MaxId = 1 << 22;

    private static readonly TimeSpan s_regexTimeout = TimeSpan.FromSeconds(10);

    public static ByteLevelBpeModel Load(string path)
    {
        byte[] bytes = BoundedFile.ReadAllBytes(path, MaxBytes, "tokenizer.json");
        return JsonFile.Parse(bytes, "tokenizer.json", root => Interpret(root), $" ('{path}')");
    }

    private static ByteLevelBpeModel Interpret(JsonElement root)
    {
        if (root.ValueKind != JsonValueKind.Object) throw Invalid("the root is not an object");
        JsonElement model = Member(root, "model") ?? throw Invalid("it has no \"model\"");
        string modelType = Text(model, "type") ?? (Member(model, "merges") is not null ? "BPE" : "(none)");
        if (modelType != "BPE") throw Unsupported($"model type \"{modelType}\" (only byte-level BPE is read)");
        foreach (string option in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
            if (Text(model, option) is { Length: > 0 } value) throw Unsupported($"BPE {option} \"{value}\"");
        if (Flag(model, "byte_fallback")) throw Unsupported("a BPE with byte_fallback (a SentencePiece-style tokenizer; give the folder its tokenizer.model)");

        Dictionary<string, int> vocabulary = ReadVocabulary(model);
        BpeMerges merges = ReadMerges(model, vocabulary);
        List<AddedToken> added = ReadAddedTokens(root);
        Func<string, string> normalize = ReadNormalizer(Member(root, "normalizer"));
        List<PreTokenizer> preTokenizers = [];
        bool byteLevel = ReadPreTokenizer(Member(root, "pre_tokenizer"), preTokenizers);
        if (!byteLevel) throw Unsupported("a pre_tokenizer without ByteLevel (only byte-level BPE is read)");
        RequireByteLevelDecoder(Member(root, "decoder"));
        (int[] prefix, int[] suffix) = ReadPostProcessor(Member(root, "post_processor"));

        string description = $"tokenizer.json byte-level BPE ({vocabulary.Count} tokens, {merges.Count} merges, {added.Count} added)";
        return new ByteLevelBpeModel(description, vocabulary, merges, Flag(model, "ignore_merges"), normalize, preTokenizers, added, prefix, suffix);
    }

    private static Dictionary<string, int> ReadVocabulary(JsonElement model)
    {
        JsonElement vocab = Member(model, "vocab") ?? throw Invalid("the model has no \"vocab\"");
        if (vocab.ValueKind != JsonValueKind.Object) throw Invalid("model.vocab is not an object");
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        var seen = new HashSet<int>();
        foreach (JsonProperty entry in vocab.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.Number || !entry.Value.TryGetInt32(out int id) || id < 0 || id >= MaxId)
                throw Invalid($"model.vocab[\"{entry.Name}\"] is not an id in [0, {MaxId})");
            if (!seen.Add(id)) throw Invalid($"model.vocab gives id {id} to two tokens");
            vocabulary[entry.Name] = id;
        }
        if (vocabulary.Count == 0) throw Invalid("model.vocab is empty");
        return vocabulary;
    }

    private static BpeMerges ReadMerges(JsonElement model, Dictionary<string, int> vocabulary)
    {
        JsonElement merges = Member(model, "merges") ?? throw Invalid("the BPE model has no \"merges\"");
        if (merges.ValueKind != JsonValueKind.Array) throw Invalid("model.merges is not an array");
        var rules = new Dictionary<long, (int, int)>();
        int rank = 0;
        foreach (JsonElement merge in merges.EnumerateArray())
        {
            string left, right;
            if (merge.ValueKind == JsonValueKind.String)
            {
                string pair = merge.GetString()!;
                int space = pair.IndexOf(' ', 1);
                if (space < 0 || space == pair.Length - 1) throw Invalid($"merge {rank} \"{pair}\" is not two tokens separated by a space");
                (left, right) = (pair[..space], pair[(space + 1)..]);
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2 &&
                     merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
                (left, right) = (merge[0].GetString()!, merge[1].GetString()!);
            else throw Invalid($"merge {rank} is neither \"a b\" nor [\"a\", \"b\"]");
            if (!vocabulary.TryGetValue(left, out int leftId) || !vocabulary.TryGetValue(right, out int rightId))
                throw Invalid($"merge {rank} uses a token that is not in the vocabulary (\"{left}\" \"{right}\")");
            if (!vocabulary.TryGetValue(left + right, out int mergedId))
                throw Invalid($"merge {rank} makes \"{left + right}\", which is not in the vocabulary");
            rules[BpeMerges.Key(leftId, rightId)] = (rank, mergedId);  // a repeated merge takes its later rank, as Hugging Face's map does
            rank++;
        }
        return new BpeMerges(rules);
    }

    private static List<AddedToken> ReadAddedTokens(JsonElement root)
    {
        var tokens = new List<AddedToken>();
        if (Member(root, "added_tokens") is not JsonElement list) return tokens;
        if (list.ValueKind != JsonValueKind.Array) throw Invalid("added_tokens is not an array");
        foreach (JsonElement token in list.EnumerateArray())
        {
            if (token.ValueKind != JsonValueKind.Object || Member(token, "id") is not { ValueKind: JsonValueKind.Number } idElement ||
                !idElement.TryGetInt32(out int id) || id < 0 || id >= MaxId || Text(token, "content") is not { Length: > 0 } content)
                throw Invalid($"added_tokens[{tokens.Count}] needs an id in [0, {MaxId}) and a non-empty content");
            tokens.Add(new AddedToken(id, content, Flag(token, "special"), Flag(token, "single_word"), Flag(token, "lstrip"), Flag(token, "rstrip")));
        }
        return tokens;
    }

    private static Func<string, string> ReadNormalizer(JsonElement? normalizer)
    {
        if (normalizer is not JsonElement element || element.ValueKind == JsonValueKind.Null) return static text => text;
        string type = Text(element, "type") ?? throw Invalid("a normalizer has no type");
        switch (type)
        {
            case "NFC": return CanonicalNormalization.ToFormC;
            case "NFD": return CanonicalNormalization.ToFormD;
            case "Lowercase": return static text => text.ToLowerInvariant();
            case "Sequence":
                Func<string, string>[] steps = Items(element, "normalizers").Select(n => ReadNormalizer(n)).ToArray();
                return text => { foreach (var step in steps) text = step(text); return text; };
            default: throw Unsupported($"normalizer \"{type}\"");
        }
    }

    // Returns whether a ByteLevel pre-tokenizer is among them (it is what spells pieces as bytes).
    private static bool ReadPreTokenizer(JsonElement? preTokenizer, List<PreTokenizer> steps)
    {
        if (preTokenizer is not JsonElement element || element.ValueKind == JsonValueKind.Null) return false;
        string type = Text(element, "type") ?? throw Invalid("a pre_tokenizer has no type");
        switch (type)
        {
            case "Sequence":
                bool any = false;
                foreach (JsonElement inner in Items(element, "pretokenizers")) any |= ReadPreTokenizer(inner, steps);
                return any;
            case "ByteLevel":
                steps.Add(new ByteLevelSplit(Flag(element, "add_prefix_space"), Flag(element, "use_regex", true)));
                return true;
            case "Digits":
                steps.Add(new DigitsSplit(Flag(element, "individual_digits")));
                return false;
            case "Split":
                steps.Add(ReadSplit(element));
                return false;
            default: throw Unsupported($"pre_tokenizer \"{type}\"");
        }
    }

    private static RegexSplit ReadSplit(JsonElement split)
    {
        JsonElement pattern = Member(split, "pattern") ?? throw Invalid("a Split pre_tokenizer has no pattern");
        string source = Text(pattern, "Regex") ?? (Text(pattern, "String") is string literal ? Regex.Escape(literal) : null)
                        ?? throw Invalid("a Split pattern is neither {\"Regex\": ...} nor {\"String\": ...}");
        string behaviorName = Text(split, "behavior") ?? "Isolated";
        if (!Enum.TryParse(behaviorName, out SplitBehavior behavior)) throw Unsupported($"Split behavior \"{behaviorName}\"");
        Regex regex;
        try
        {
            regex = new Regex(source, RegexOptions.CultureInvariant, s_regexTimeout);
        }
        catch (ArgumentException e)
        {
            throw Unsupported($"Split pattern /{source}/, which .NET's regular expressions do not read ({e.Message})");
        }
        return new RegexSplit(regex, behavior, Flag(split, "invert"));
    }

    private static void RequireByteLevelDecoder(JsonElement? decoder)
    {
        if (decoder is not JsonElement element || element.ValueKind == JsonValueKind.Null) throw Unsupported("a tokenizer without a decoder");
        string type = Text(element, "type") ?? throw Invalid("the decoder has no type");
        if (type == "ByteLevel") return;
        if (type == "Sequence" && Items(element, "decoders").Select(d => Text(d, "type")).SequenceEqual(["ByteLevel"])) return;
        throw Unsupported($"decoder \"{type}\" (only ByteLevel is read)");
    }

    private static (int[] Prefix, int[] Suffix) ReadPostProcessor(JsonElement? processor)
    {
        var prefix = new List<int>();
        var suffix = new List<int>();
        AddPostProcessor(processor, prefix, suffix);
        return (prefix.ToArray(), suffix.ToArray());
    }

    private static void AddPostProcessor(JsonElement? processor, List<int> prefix, List<int> suffix)
    {
        if (processor is not JsonElement element || element.ValueKind == JsonValueKind.Null) return;
        string type = Text(element, "type") ?? throw Invalid("the post_processor has no type");
        switch (type)
        {
            case "ByteLevel": return;  // it only adjusts offsets
            case "Sequence":
                foreach (JsonElement inner in Items(element, "processors")) AddPostProcessor(inner, prefix, suffix);
                return;
            case "TemplateProcessing":
                JsonElement specials = Member(element, "special_tokens") ?? throw Invalid("TemplateProcessing has no special_tokens");
                bool sequenceSeen = false;
                foreach (JsonElement item in Items(element, "single"))
                {
                    if (Member(item, "Sequence") is not null) { sequenceSeen = true; continue; }
                    string name = Member(item, "SpecialToken") is JsonElement special ? Text(special, "id") ?? "" : throw Invalid("a TemplateProcessing item is neither Sequence nor SpecialToken");
                    JsonElement entry = Member(specials, name) ?? throw Invalid($"TemplateProcessing uses \"{name}\", which its special_tokens lacks");
                    foreach (JsonElement id in Items(entry, "ids"))
                    {
                        if (id.ValueKind != JsonValueKind.Number || !id.TryGetInt32(out int value) || value < 0 || value >= MaxId)
                            throw Invalid($"special token \"{name}\" has an id out of range");
                        (sequenceSeen ? suffix : prefix).Add(value);
                    }
                }
                return;
            default: throw Unsupported($"post_processor \"{type}\"");
        }
    }

    private static JsonElement? Member(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out JsonElement value) && value.ValueKind != JsonValueKind.Null ? value : null;

    private static string? Text(JsonElement element, string name) =>
        Member(element, name) is { ValueKind: JsonValueKind.String } value ? value.GetString() : null;

    private static bool Flag(JsonElement element, string name, bool otherwise = false) =>
        Member(element, name) is JsonElement value ? value.ValueKind == JsonValueKind.True : otherwise;

    private static IEnumerable<JsonElement> Items(JsonElement element, string name) =>
        Member(element, name) is { ValueKind: JsonValueKind.Array } list ? list.EnumerateArray() : throw Invalid($"\"{name}\" is not an array");

    private static LookaheadException Invalid(string what) => new($"tokenizer.json is not valid: {what}");

    private static LookaheadException Unsupported(string what) => new($"tokenizer.json uses {what}, which this library does not read");
}
