namespace Lookahead.Tokenization.HuggingFace;

/// <summary>
/// GPT-2's byte-to-character table: each of the 256 byte values is spelled as one printable character
/// (printable Latin-1 bytes as themselves, the rest as U+0100 onwards), so a byte-level BPE vocabulary is
/// a set of ordinary strings.
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] s_byteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> s_charToByte = BuildCharToByte();

    /// <summary>The character that spells the byte.</summary>
    public static char CharOf(byte value) => s_byteToChar[value];

    /// <summary>The byte a character spells, if it is one of the 256.</summary>
    public static bool TryGetByte(char c, out byte value) => s_charToByte.TryGetValue(c, out value);

    /// <summary>The byte-level spelling of UTF-8 bytes.</summary>
    public static string Spell(ReadOnlySpan<byte> bytes)
    {
        var characters = new char[bytes.Length];
        for (int i = 0; i < bytes.Length; i++) characters[i] = s_byteToChar[bytes[i]];
        return new string(characters);
    }

    /// <summary>
    /// Appends the bytes a token stands for: its characters' bytes when every character is in the table,
    /// else the token's own UTF-8 (an added token such as "&lt;|eot_id|&gt;" written as text), as Hugging
    /// Face's ByteLevel decoder does.
    /// </summary>
    public static void AppendBytes(string token, List<byte> output)
    {
        int start = output.Count;
        foreach (char c in token)
        {
            if (!s_charToByte.TryGetValue(c, out byte value))
            {
                output.RemoveRange(start, output.Count - start);
                output.AddRange(System.Text.Encoding.UTF8.GetBytes(token));
                return;
            }
            output.Add(value);
        }
    }

    private static char[] BuildByteToChar()
    {
        var table = new char[256];
        bool[] printable = new bool[256];
        for (int b = '!'; b <= '~'; b++) printable[b] = true;
        for (int b = 0xA1; b <= 0xAC; b++) printable[b] = true;
        for (int b = 0xAE; b <= 0xFF; b++) printable[b] = true;
        int next = 0;
        for (int b = 0; b < 256; b++) table[b] = printable[b] ? (char)b : (char)(256 + next++);
        return table;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var map = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++) map[s_byteToChar[b]] = (byte)b;
        return map;
    }
}
