using System.Text.Json;
using Lookahead.IO;

namespace Lookahead.Model;

/// <summary>
/// Reads the small JSON side files of a model folder (config.json, the shard index, tokenizer_config.json)
/// with errors that name the file: a size limit, UTF-8 checked, and the interpretation of the parsed
/// document inside the same error handling (System.Text.Json reports an escaped lone surrogate only when a
/// string is read).
/// </summary>
internal static class JsonFile
{
    /// <summary>Largest side file read (a sharded index of a 405B model is about 100 KiB).</summary>
    public const long MaxBytes = 16L * 1024 * 1024;

    /// <summary>Parses the file and interprets its root element.</summary>
    public static T Read<T>(string path, Func<JsonElement, T> interpret)
    {
        string label = Path.GetFileName(path);
        byte[] bytes = BoundedFile.ReadAllBytes(path, MaxBytes, label);
        return Parse(bytes, label, interpret, $" ('{path}')");
    }

    /// <summary>Parses UTF-8 JSON text and interprets its root element; label (and location, when given)
    /// name the text in errors.</summary>
    public static T Parse<T>(ReadOnlySpan<byte> utf8, string label, Func<JsonElement, T> interpret, string location = "")
    {
        if (utf8.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) utf8 = utf8[3..];  // a byte-order mark, as some editors write
        BoundedFile.RequireUtf8(utf8, label + location);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(utf8.ToArray(), new JsonDocumentOptions { MaxDepth = 64 });
        }
        catch (JsonException e)
        {
            throw new LookaheadException($"{label} is not valid JSON{location}: {e.Message}", e);
        }
        using (document)
        {
            try
            {
                return interpret(document.RootElement);
            }
            catch (InvalidOperationException e)
            {
                // GetString() or a property name with an unpaired \uD800-\uDFFF escape.
                bool unicode = e.Message.Contains("UTF-16", StringComparison.Ordinal) || e.Message.Contains("UTF-8", StringComparison.Ordinal) ||
                               e.Message.Contains("surrogate", StringComparison.OrdinalIgnoreCase);
                throw new LookaheadException(unicode
                    ? $"{label}{location} holds a string that is not valid Unicode text (an unpaired surrogate escape such as \\uD800)"
                    : $"{label}{location} could not be read: {e.Message}", e);
            }
        }
    }
}
