using System.Diagnostics;

namespace Lookahead.Cli;

/// <summary>
/// The one in-place status line on stderr (progress bars, counters). On a terminal it is rewritten in place
/// (a carriage return, no newline), and it remembers whether the cursor is left mid-line, so that whatever
/// is printed next (an error above all) starts on a fresh line. When stderr is a file or a pipe (CI logs),
/// rewriting in place would pile every update into one endless line: there it prints the first update and
/// then at most one line every few seconds, and the last state when the status ends.
/// </summary>
internal static class StatusLine
{
    private static readonly TimeSpan RedirectedInterval = TimeSpan.FromSeconds(5);
    private static readonly Lock s_lock = new();
    private static readonly bool s_redirected = Console.IsErrorRedirected;
    private static bool s_open;
    private static string? s_unprinted;  // redirected: the latest text not yet printed
    private static long s_lastPrinted;

    /// <summary>Replaces the status line's text.</summary>
    public static void Write(string text)
    {
        lock (s_lock)
        {
            if (!s_redirected)
            {
                Console.Error.Write("\r" + text);
                s_open = true;
                return;
            }
            if (s_open && Stopwatch.GetElapsedTime(s_lastPrinted) < RedirectedInterval)
            {
                s_unprinted = text;
                return;
            }
            Console.Error.WriteLine(text.TrimEnd());
            s_open = true;
            s_unprinted = null;
            s_lastPrinted = Stopwatch.GetTimestamp();
        }
    }

    /// <summary>Ends the status line (a newline on a terminal; the last state when redirected) if one is showing.</summary>
    public static void End()
    {
        lock (s_lock)
        {
            if (!s_open) return;
            if (!s_redirected) Console.Error.WriteLine();
            else if (s_unprinted is not null) Console.Error.WriteLine(s_unprinted.TrimEnd());
            s_open = false;
            s_unprinted = null;
        }
    }
}
