using System.Globalization;

namespace Lookahead.Cli;

/// <summary>Prints "label: NN%" on stderr at 5% steps, on the reporting thread.</summary>
internal sealed class StderrProgress(string label) : IProgress<double>
{
    private int _lastPercent = -1;

    public void Report(double value)
    {
        int percent = (int)(value * 100);
        if (percent / 5 == _lastPercent / 5) return;
        _lastPercent = percent;
        StatusLine.Write(string.Create(CultureInfo.InvariantCulture, $"{label}: {percent,3}%"));
    }

    public void Finish() => StatusLine.End();
}
