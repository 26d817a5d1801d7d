namespace Lookahead.Cli.Bench;

/// <summary>A one-line progress bar on stderr's status line: "[#####.....] 12/80 label".</summary>
internal sealed class ProgressBar
{
    private const int Width = 30;
    private int _total;
    private int _done;

    public void Start(int total)
    {
        _total = Math.Max(1, total);
        _done = 0;
    }

    public void Advance(string label)
    {
        _done++;
        int filled = (int)((long)Width * _done / _total);
        StatusLine.Write($"[{new string('#', filled)}{new string('.', Width - filled)}] {_done}/{_total} {label,-40}");
    }

    public void Finish() => StatusLine.End();
}
