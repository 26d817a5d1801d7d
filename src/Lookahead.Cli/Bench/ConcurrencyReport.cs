using System.Globalization;
using System.Text;
using System.Text.Json;
using ScottPlot;

namespace Lookahead.Cli.Bench;

/// <summary>What one `bench --concurrency` run measured, and its text, Markdown, JSON and plot.</summary>
internal sealed record ConcurrencyReport(
    string Model,
    string Backend,
    int Threads,
    int MaxTokens,
    float Temperature,
    int WarmupPrompts,
    int Requests,
    IReadOnlyList<ConcurrencyResult> Results,
    IReadOnlyList<ChatTurn> Chat)
{
    /// <summary>Rounds each configuration ran (its row is the median round).</summary>
    public int Rounds { get; init; } = 1;

    private static string Label(ConcurrencyResult r) => r.DecodingLength is null ? r.Mode : $"{r.Mode} {r.DecodingLength}";

    // The same mode at concurrency 1 (how throughput scales), and the plain run at this concurrency.
    private ConcurrencyResult? Single(ConcurrencyResult r) =>
        Results.FirstOrDefault(o => o.Concurrency == 1 && o.Mode == r.Mode && o.DecodingLength == r.DecodingLength);
    private ConcurrencyResult? Plain(ConcurrencyResult r) => Results.FirstOrDefault(o => o.Concurrency == r.Concurrency && o.DecodingLength is null);

    private static string Ratio(double? mine, double? baseline) =>
        mine is double m && baseline is > 0 ? (m / baseline.Value).ToString("F2", CultureInfo.InvariantCulture) + "x" : "-";

    public string Table(bool markdown)
    {
        string[] header = ["concurrency", "mode", "requests", "tokens", "seconds", "tokens/s", "request tokens/s p50", "TTFT ms p50",
            "TTFT ms p95", "tokens/step", "forward ms/step", "draft ms/step", "other host ms/step", "vs concurrency 1", "vs plain", "preemptions", "prefix reused", "prefilled"];
        var rows = Results.Select(r => new[]
        {
            r.Concurrency.ToString(CultureInfo.InvariantCulture),
            Label(r),
            r.Requests.ToString(CultureInfo.InvariantCulture),
            r.Tokens.ToString(CultureInfo.InvariantCulture),
            r.Seconds.ToString("F2", CultureInfo.InvariantCulture),
            r.TokensPerSecond.ToString("F1", CultureInfo.InvariantCulture),
            r.RequestTokensPerSecondP50.ToString("F1", CultureInfo.InvariantCulture),
            r.TtftMsP50.ToString("F1", CultureInfo.InvariantCulture),
            r.TtftMsP95.ToString("F1", CultureInfo.InvariantCulture),
            r.TokensPerStep.ToString("F2", CultureInfo.InvariantCulture),
            r.ForwardMsPerStep.ToString("F3", CultureInfo.InvariantCulture),
            r.DraftMsPerStep.ToString("F3", CultureInfo.InvariantCulture),
            r.OtherHostMsPerStep.ToString("F3", CultureInfo.InvariantCulture),
            Ratio(r.TokensPerSecond, Single(r)?.TokensPerSecond),
            r.DecodingLength is null ? "-" : r.VsPlain is double vs ? vs.ToString("F2", CultureInfo.InvariantCulture) + "x" : Ratio(r.TokensPerSecond, Plain(r)?.TokensPerSecond),
            r.Preemptions.ToString(CultureInfo.InvariantCulture),
            r.ReusedTokens.ToString(CultureInfo.InvariantCulture),
            r.PrefilledTokens.ToString(CultureInfo.InvariantCulture),
        }).ToList();
        return TextTable.Render(header, rows, markdown);
    }

    public string ChatTable(bool markdown) => Chat.Count == 0 ? "" : TextTable.Render(
        ["chat turn", "prompt tokens", "reused from the prefix cache", "prefilled"],
        Chat.Select(t => new[]
        {
            t.Turn.ToString(CultureInfo.InvariantCulture), t.PromptTokens.ToString(CultureInfo.InvariantCulture),
            t.ReusedTokens.ToString(CultureInfo.InvariantCulture), t.PrefilledTokens.ToString(CultureInfo.InvariantCulture),
        }).ToList(), markdown);

    public string Markdown() => string.Create(CultureInfo.InvariantCulture,
        $"# Concurrency benchmark\n\nmodel `{Model}`, backend {Backend}, {Threads} threads, {Requests} requests of at most {MaxTokens} tokens " +
        $"per concurrency and mode ({Rounds} round{(Rounds == 1 ? "" : "s")}, alternating; each row is its median round, \"vs plain\" the median of the per-round ratios), temperature {Temperature}, {WarmupPrompts} warm-up outputs in each lookahead trie; every request's " +
        $"tokens equal its output alone.\n\n{Table(markdown: true)}\n{ChatTable(markdown: true)}");

    public void WriteJson(Stream stream)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        BenchReport.WriteSettings(json, Model, Backend, Threads, MaxTokens, Temperature, WarmupPrompts);
        json.WriteNumber("requests", Requests);
        json.WriteNumber("rounds", Rounds);
        json.WriteStartArray("concurrency");
        foreach (ConcurrencyResult r in Results)
        {
            json.WriteStartObject();
            json.WriteNumber("concurrency", r.Concurrency);
            json.WriteString("mode", r.Mode);
            if (r.DecodingLength is { } length)
            {
                if (int.TryParse(length, NumberStyles.Integer, CultureInfo.InvariantCulture, out int fixedLength)) json.WriteNumber("decoding_length", fixedLength);
                else json.WriteString("decoding_length", length);
            }
            json.WriteNumber("requests", r.Requests);
            json.WriteNumber("tokens", r.Tokens);
            json.WriteNumber("seconds", r.Seconds);
            json.WriteNumber("tokens_per_second", r.TokensPerSecond);
            json.WriteStartArray("tokens_per_second_rounds");
            foreach (double value in r.RoundTokensPerSecond) json.WriteNumberValue(value);
            json.WriteEndArray();
            if (r.VsPlain is double vs) json.WriteNumber("vs_plain", vs);
            json.WriteNumber("request_tokens_per_second_p50", r.RequestTokensPerSecondP50);
            json.WriteNumber("ttft_ms_p50", r.TtftMsP50);
            json.WriteNumber("ttft_ms_p95", r.TtftMsP95);
            json.WriteNumber("steps", r.Steps);
            json.WriteNumber("tokens_per_step", r.TokensPerStep);
            json.WriteNumber("forward_ms_per_step", r.ForwardMsPerStep);
            json.WriteNumber("draft_ms_per_step", r.DraftMsPerStep);
            json.WriteNumber("other_host_ms_per_step", r.OtherHostMsPerStep);
            json.WriteNumber("prefill_seconds", r.Batch.PrefillTime.TotalSeconds);
            json.WriteNumber("preemptions", r.Preemptions);
            json.WriteNumber("prefix_reused_tokens", r.ReusedTokens);
            json.WriteNumber("prefilled_tokens", r.PrefilledTokens);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteStartArray("chat");
        foreach (ChatTurn t in Chat)
        {
            json.WriteStartObject();
            json.WriteNumber("turn", t.Turn);
            json.WriteNumber("prompt_tokens", t.PromptTokens);
            json.WriteNumber("reused_tokens", t.ReusedTokens);
            json.WriteNumber("prefilled_tokens", t.PrefilledTokens);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>Writes concurrency.png (aggregate tokens/s against concurrency, a line per mode); returns its name.</summary>
    public string WritePlot(string directory)
    {
        var plot = new Plot();
        int color = 0;
        foreach (IGrouping<string, ConcurrencyResult> mode in Results.GroupBy(Label))
        {
            ConcurrencyResult[] points = mode.OrderBy(r => r.Concurrency).ToArray();
            var line = plot.Add.Scatter(points.Select(r => Math.Log2(r.Concurrency)).ToArray(), points.Select(r => r.TokensPerSecond).ToArray(),
                new ScottPlot.Palettes.Category10().GetColor(color++));
            line.LegendText = mode.Key;
        }
        int[] levels = Results.Select(r => r.Concurrency).Distinct().Order().ToArray();
        plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(
            levels.Select(c => new Tick(Math.Log2(c), c.ToString(CultureInfo.InvariantCulture))).ToArray());
        plot.Axes.Margins(bottom: 0);
        plot.Legend.Alignment = Alignment.UpperLeft;
        plot.ShowLegend();
        plot.Title($"Aggregate throughput ({Backend}, {Threads} threads, {MaxTokens} tokens per request)");
        plot.XLabel("concurrent requests");
        plot.YLabel("tokens / s (all requests)");
        plot.SavePng(Path.Combine(directory, "concurrency.png"), 800, 450);
        return "concurrency.png";
    }
}
