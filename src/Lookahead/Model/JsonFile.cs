using System.Text.Json;

namespace Lookahead.Model;

/// <summary>Reads the small JSON side files of a model folder with errors that name the file.</summary>
internal static class JsonFile
{
    /// <summary>Parses the file; a syntax error becomes a LookaheadException naming it.</summary>
    public static JsonDocument Read(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new LookaheadException($"{Path.GetFileName(path)} is not valid JSON ('{path}'): {e.Message}", e);
        }
    }
}
