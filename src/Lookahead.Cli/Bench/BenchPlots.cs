using System.Globalization;
using ScottPlot;

namespace Lookahead.Cli.Bench;

/// <summary>PNG plots of a bench report: speed per run, tokens per step per category, the forward-cost curve.</summary>
internal static class BenchPlots
{
    private const int Width = 800, Height = 450;

    /// <summary>Writes speed.png, tokens_per_step.png and forward_cost.png; returns their file names.</summary>
    public static IReadOnlyList<string> Write(BenchReport report, string directory)
    {
        var files = new List<string>();
        string Label(ModeResult r) => r.DecodingLength is null ? r.Mode : $"{r.Mode} {r.DecodingLength}";

        var speed = new Plot();
        Bar(speed, report.Results.Select(r => r.Overall.TokensPerSecond).ToArray(), report.Results.Select(Label).ToArray());
        speed.Title($"Decoding speed ({report.Backend}, {report.Threads} threads)");
        speed.YLabel("tokens / s");
        files.Add(Save(speed, directory, "speed.png"));

        var steps = new Plot();
        string[] categories = report.Results.SelectMany(r => r.ByCategory.Keys).Distinct().Order(StringComparer.Ordinal).ToArray();
        var bars = new List<Bar>();
        var ticks = new List<Tick>();
        for (int r = 0; r < report.Results.Count; r++)
        {
            for (int c = 0; c < categories.Length; c++)
            {
                double position = r * (categories.Length + 1) + c;
                double value = report.Results[r].ByCategory.TryGetValue(categories[c], out RunTotals? totals) ? totals.MeanTokensPerStep : 0;
                bars.Add(new Bar { Position = position, Value = value, FillColor = Palette(c) });
            }
            ticks.Add(new Tick(r * (categories.Length + 1) + (categories.Length - 1) / 2.0, Label(report.Results[r])));
        }
        steps.Add.Bars(bars);
        for (int c = 0; c < categories.Length; c++) steps.Legend.ManualItems.Add(new LegendItem { LabelText = categories[c], FillColor = Palette(c) });
        steps.Legend.Alignment = Alignment.UpperLeft;
        steps.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks.ToArray());
        steps.Title("Mean tokens per step");
        steps.YLabel("tokens / step");
        files.Add(Save(steps, directory, "tokens_per_step.png"));

        if (report.ForwardCosts.Count > 0)
        {
            var cost = new Plot();
            double baseline = report.ForwardCosts[0].Milliseconds;
            double[] xs = report.ForwardCosts.Select(c => Math.Log2(c.Nodes)).ToArray();
            cost.Add.Scatter(xs, report.ForwardCosts.Select(c => c.Milliseconds / baseline).ToArray());
            cost.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
                report.ForwardCosts.Select(c => new Tick(Math.Log2(c.Nodes), c.Nodes.ToString(CultureInfo.InvariantCulture))).ToArray());
            cost.Title($"Forward cost t(k) / t(1) at context {report.ForwardCostContext} (t(1) = {baseline:F3} ms)");
            cost.XLabel("draft nodes k");
            cost.YLabel("t(k) / t(1)");
            files.Add(Save(cost, directory, "forward_cost.png"));
        }
        return files;
    }

    private static void Bar(Plot plot, double[] values, string[] labels)
    {
        plot.Add.Bars(values.Select((v, i) => new Bar { Position = i, Value = v, FillColor = Palette(i == 0 ? 1 : 0) }).ToList());
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(labels.Select((l, i) => new Tick(i, l)).ToArray());
        plot.Axes.Margins(bottom: 0);
    }

    private static Color Palette(int index) => new ScottPlot.Palettes.Category10().GetColor(index);

    private static string Save(Plot plot, string directory, string name)
    {
        plot.SavePng(Path.Combine(directory, name), Width, Height);
        return name;
    }
}
