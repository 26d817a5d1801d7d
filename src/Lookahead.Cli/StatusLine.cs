namespace Lookahead.Cli;

/// <summary>
/// The one in-place status line on stderr (progress bars, counters): written with a carriage return and
/// no newline. It remembers whether the cursor is left mid-line, so that whatever is printed next (an
/// error above all) starts on a fresh line.
/// </summary>
internal static class StatusLine
{
    private static readonly Lock s_lock = new();
    private static bool s_open;

    /// <summary>Replaces the status line's text.</summary>
    public static void Write(string text)
    {
        lock (s_lock)
        {
            Console.Error.Write("\r" + text);
            s_open = true;
        }
    }

    /// <summary>Ends the status line (a newline) if one is showing.</summary>
    public static void End()
    {
        lock (s_lock)
        {
            if (!s_open) return;
            Console.Error.WriteLine();
            s_open = false;
        }
    }
}
