using System.Text;

namespace Lookahead.Tokenization.Unicode;

/// <summary>
/// Unicode NFC and NFD from our own table (nfc-data.txt, generated from the Unicode database), so a
/// tokenizer's normalizer gives the same text in every process: .NET's string.Normalize does nothing in
/// globalization-invariant mode, which this project's apps and many containers use.
/// </summary>
internal static class CanonicalNormalization
{
    private const int HangulBase = 0xAC00, LeadBase = 0x1100, VowelBase = 0x1161, TrailBase = 0x11A7;
    private const int LeadCount = 19, VowelCount = 21, TrailCount = 28, SyllableCount = LeadCount * VowelCount * TrailCount;

    private static readonly Lazy<(Dictionary<int, byte> Classes, Dictionary<int, int[]> Decompositions, Dictionary<long, int> Compositions)> s_data =
        new(Load);

    /// <summary>Canonical decomposition followed by canonical composition.</summary>
    public static string ToFormC(string text)
    {
        bool plain = true;
        foreach (char c in text) if (c >= 0x300) { plain = false; break; }  // no combining mark: already composed
        return plain ? text : Compose(Decompose(text));
    }

    /// <summary>Canonical decomposition, combining marks in canonical order.</summary>
    public static string ToFormD(string text)
    {
        bool plain = true;
        foreach (char c in text) if (c >= 0xC0) { plain = false; break; }
        return plain ? text : ToString(Decompose(text));
    }

    private static List<int> Decompose(string text)
    {
        var output = new List<int>(text.Length + 8);
        foreach (Rune rune in text.EnumerateRunes()) Append(rune.Value, output);
        // Canonical ordering: marks between starters sorted by combining class, stably.
        for (int i = 1; i < output.Count; i++)
        {
            int ccc = CombiningClass(output[i]);
            if (ccc == 0) continue;
            for (int j = i; j > 0 && CombiningClass(output[j - 1]) > ccc; j--) (output[j - 1], output[j]) = (output[j], output[j - 1]);
        }
        return output;
    }

    private static void Append(int codePoint, List<int> output)
    {
        int s = codePoint - HangulBase;
        if (s is >= 0 and < SyllableCount)
        {
            output.Add(LeadBase + s / (VowelCount * TrailCount));
            output.Add(VowelBase + s % (VowelCount * TrailCount) / TrailCount);
            if (s % TrailCount != 0) output.Add(TrailBase + s % TrailCount);
            return;
        }
        if (s_data.Value.Decompositions.TryGetValue(codePoint, out int[]? parts))
            foreach (int part in parts) Append(part, output);
        else output.Add(codePoint);
    }

    private static string Compose(List<int> decomposed)
    {
        if (decomposed.Count == 0) return "";
        var result = new List<int>(decomposed.Count) { decomposed[0] };
        int starterIndex = 0;
        int lastClass = CombiningClass(decomposed[0]) == 0 ? 0 : 256;  // text that opens with a mark composes nothing onto it
        for (int i = 1; i < decomposed.Count; i++)
        {
            int c = decomposed[i], ccc = CombiningClass(c);
            // A mark composes with the last starter unless a character between them blocks it.
            if ((lastClass < ccc || lastClass == 0) && lastClass != 256 && TryCompose(result[starterIndex], c, out int composite))
            {
                result[starterIndex] = composite;
                continue;
            }
            if (ccc == 0) { starterIndex = result.Count; lastClass = 0; }
            else lastClass = ccc;
            result.Add(c);
        }
        return ToString(result);
    }

    private static bool TryCompose(int first, int second, out int composite)
    {
        int l = first - LeadBase, v = second - VowelBase;
        if (l is >= 0 and < LeadCount && v is >= 0 and < VowelCount)
        {
            composite = HangulBase + (l * VowelCount + v) * TrailCount;
            return true;
        }
        int s = first - HangulBase, t = second - TrailBase;
        if (s is >= 0 and < SyllableCount && s % TrailCount == 0 && t is > 0 and < TrailCount)
        {
            composite = first + t;
            return true;
        }
        return s_data.Value.Compositions.TryGetValue(((long)first << 21) | (uint)second, out composite);
    }

    private static int CombiningClass(int codePoint) => s_data.Value.Classes.TryGetValue(codePoint, out byte ccc) ? ccc : 0;

    private static string ToString(List<int> codePoints)
    {
        var text = new StringBuilder(codePoints.Count);
        foreach (int cp in codePoints) text.Append(char.ConvertFromUtf32(cp));
        return text.ToString();
    }

    private static (Dictionary<int, byte>, Dictionary<int, int[]>, Dictionary<long, int>) Load()
    {
        var classes = new Dictionary<int, byte>();
        var decompositions = new Dictionary<int, int[]>();
        var compositions = new Dictionary<long, int>();
        using Stream stream = typeof(CanonicalNormalization).Assembly.GetManifestResourceStream("Lookahead.nfc-data.txt")
                              ?? throw new InvalidOperationException("the NFC table is missing from the assembly");
        using var reader = new StreamReader(stream, Encoding.ASCII);
        while (reader.ReadLine() is string line)
        {
            if (line.Length == 0 || line[0] == '#') continue;
            string[] fields = line.Split(' ');
            int[] numbers = fields.Skip(1).Select((f, i) => line[0] == 'd' && i == 1 ? int.Parse(f) : Convert.ToInt32(f, 16)).ToArray();
            if (line[0] == 'd')
            {
                if (numbers[1] != 0) classes[numbers[0]] = (byte)numbers[1];
                if (numbers.Length > 2) decompositions[numbers[0]] = numbers[2..];
            }
            else compositions[((long)numbers[0] << 21) | (uint)numbers[1]] = numbers[2];
        }
        return (classes, decompositions, compositions);
    }
}
