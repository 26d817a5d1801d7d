namespace Lookahead.Cli;

/// <summary>
/// Checks of the paths a command line names, made before any work so that a typo fails at once. A path
/// that does not fit the file system is a runtime error (exit 1), as when the file is opened later.
/// </summary>
internal static class InputPaths
{
    /// <summary>An existing file (not a directory).</summary>
    public static void RequireFile(string path, string what)
    {
        if (Directory.Exists(path)) throw new LookaheadException($"{what} '{path}' is a directory, not a file");
        if (!File.Exists(path)) throw new LookaheadException($"{what} not found: '{path}'");
    }

    /// <summary>A file that can be written: an existing file, or a new one in an existing folder.</summary>
    public static void RequireWritableFile(string path, string what)
    {
        if (Directory.Exists(path)) throw new LookaheadException($"{what} '{path}' is a directory, not a file");
        string folder = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(folder)) throw new LookaheadException($"{what} '{path}': folder '{folder}' does not exist");
    }

    /// <summary>A folder that exists or can be created (its parent exists), not a file.</summary>
    public static void RequireOutputFolder(string path, string what)
    {
        if (File.Exists(path)) throw new LookaheadException($"{what} '{path}' is a file, not a folder");
        if (Directory.Exists(path)) return;
        string? parent = Path.GetDirectoryName(Path.GetFullPath(path));
        if (parent is null || !Directory.Exists(parent)) throw new LookaheadException($"{what} '{path}': folder '{parent}' does not exist");
    }
}
