using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace Lookahead.IO;

/// <summary>
/// Reads user-named files with a size limit known before the read, so that a wrong path (a device such as
/// /dev/zero, a huge file) fails at once instead of filling memory, and with UTF-8 checked where text is
/// expected. Every error names the file.
/// </summary>
internal static class BoundedFile
{
    /// <summary>The whole file, refused when it holds more than maxBytes.</summary>
    public static byte[] ReadAllBytes(string path, long maxBytes, string what)
    {
        using FileStream stream = Open(path, what);
        if (stream.CanSeek && stream.Length > maxBytes) throw TooLarge(path, what, maxBytes, stream.Length);
        // Devices report no length: read at most one byte past the limit to tell.
        var buffer = new MemoryStream();
        var chunk = new byte[Math.Min(1 << 20, maxBytes + 1)];
        while (true)
        {
            int read = stream.Read(chunk, 0, (int)Math.Min(chunk.Length, maxBytes + 1 - buffer.Length));
            if (read == 0) break;
            buffer.Write(chunk, 0, read);
            if (buffer.Length > maxBytes) throw TooLarge(path, what, maxBytes, null);
        }
        return buffer.ToArray();
    }

    /// <summary>Opens a file for reading; a missing file or a directory is one clear error.</summary>
    public static FileStream Open(string path, string what)
    {
        if (Directory.Exists(path)) throw new LookaheadException($"{what} '{path}' is a directory, not a file");
        if (!File.Exists(path)) throw new LookaheadException($"{what} not found: '{path}'");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1 << 16);
    }

    /// <summary>Throws naming the file and the byte offset when bytes are not valid UTF-8.</summary>
    public static void RequireUtf8(ReadOnlySpan<byte> bytes, string label)
    {
        if (Utf8.IsValid(bytes)) return;
        int offset = FirstInvalidUtf8(bytes);
        throw new LookaheadException($"{label} is not valid UTF-8 text (byte {offset} starts an invalid sequence)");
    }

    /// <summary>The byte offset of the first invalid UTF-8 sequence, or -1.</summary>
    public static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int offset = 0;
        while (offset < bytes.Length)
        {
            OperationStatus status = Rune.DecodeFromUtf8(bytes[offset..], out _, out int consumed);
            if (status != OperationStatus.Done) return offset;
            offset += consumed;
        }
        return -1;
    }

    private static LookaheadException TooLarge(string path, string what, long maxBytes, long? length) =>
        new(length is long known
            ? $"{what} '{path}' has {known:N0} bytes, more than the {maxBytes:N0} this can use"
            : $"{what} '{path}' holds more than the {maxBytes:N0} bytes this can use");
}
