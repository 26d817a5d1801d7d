using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Lookahead.Cli.Bench;

/// <summary>Everything one bench run measured, and its text, Markdown and JSON renderings.</summary>
internal sealed record BenchReport(
    string Model,
    string Backend,
    int Threads,
    int MaxTokens,
    int WarmupPrompts,
    int TestPrompts,
    int ForwardCostContext,
    IReadOnlyList<ModeResult> Results,
    IReadOnlyList<ForwardCost> ForwardCosts,
    double MemoryReadGBps,
    long WeightBytesPerToken,
    IReadOnlyList<double> PairedBandwidthRatios,
    float Temperature = 0)
{
    // Weight bytes a run streams per second: one pass over the weights per step.
    private double WeightGBps(RunTotals totals) => totals.Seconds > 0 ? WeightBytesPerToken * (double)totals.Steps / totals.Seconds / 1e9 : 0;

    public string BandwidthLine()
    {
        if (MemoryReadGBps <= 0) return "memory bandwidth: not measured for this backend (see bench/native for the device's)";
        RunTotals? greedy = Greedy?.Overall;
        string achieved = greedy is null ? "" : string.Create(CultureInfo.InvariantCulture,
            $"; greedy streams weights at {WeightGBps(greedy):F2} GB/s ({100 * WeightGBps(greedy) / MemoryReadGBps:F1}% of it)");
        return string.Create(CultureInfo.InvariantCulture,
            $"memory read bandwidth ({Threads} threads): {MemoryReadGBps:F1} GB/s; weights per step {WeightBytesPerToken / 1e6:F2} MB{achieved}");
    }
    // The baseline: one forward pass per token (greedy, or plain sampling at the report's temperature).
    private ModeResult? Greedy => Results.FirstOrDefault(r => r.DecodingLength is null);

    // --paired-bandwidth: each prompt's greedy weight-streaming rate over a bandwidth probe made right before it.
    private double PairedMedian
    {
        get
        {
            double[] sorted = PairedBandwidthRatios.Order().ToArray();
            return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
        }
    }

    public string PairedBandwidthLine() => PairedBandwidthRatios.Count == 0 ? "" : string.Create(CultureInfo.InvariantCulture,
        $"greedy against a read-bandwidth probe right before each prompt: median {100 * PairedMedian:F1}% " +
        $"({100 * PairedBandwidthRatios.Min():F1}-{100 * PairedBandwidthRatios.Max():F1}%, {PairedBandwidthRatios.Count} prompts)");

    private double? Speedup(ModeResult result, string? category)
    {
        RunTotals? baseline = category is null ? Greedy?.Overall : Greedy?.ByCategory.GetValueOrDefault(category);
        RunTotals mine = category is null ? result.Overall : result.ByCategory[category];
        return baseline is { TokensPerSecond: > 0 } ? mine.TokensPerSecond / baseline.TokensPerSecond : null;
    }

    private IEnumerable<(ModeResult Result, string Category, RunTotals Totals)> Rows() =>
        Results.SelectMany(r => r.ByCategory.Select(c => (r, c.Key, c.Value)).Append((r, "all", r.Overall)));

    public string Table(bool markdown)
    {
        string[] header = ["mode", "decoding length", "category", "prompts", "tokens", "seconds", "tokens/s", "tokens/step", "accepted/drafted", "speedup"];
        var rows = Rows().Select(row => new[]
        {
            row.Result.Mode,
            row.Result.DecodingLength ?? "-",
            row.Category,
            row.Totals.Prompts.ToString(CultureInfo.InvariantCulture),
            row.Totals.GeneratedTokens.ToString(CultureInfo.InvariantCulture),
            row.Totals.Seconds.ToString("F3", CultureInfo.InvariantCulture),
            row.Totals.TokensPerSecond.ToString("F1", CultureInfo.InvariantCulture),
            row.Totals.MeanTokensPerStep.ToString("F2", CultureInfo.InvariantCulture),
            row.Totals.DraftedTokens > 0 ? $"{row.Totals.AcceptedTokens}/{row.Totals.DraftedTokens}" : "-",
            Speedup(row.Result, row.Category == "all" ? null : row.Category) is double speedup
                ? speedup.ToString("F2", CultureInfo.InvariantCulture) + "x"
                : "-",
        }).ToList();
        return TextTable.Render(header, rows, markdown);
    }

    // Measured only with --device-time (CUDA).
    private bool DeviceTimed => Results.Any(r => r.Overall.DeviceSeconds > 0);

    public string HostOverheadLine() => !DeviceTimed ? "" :
        "host overhead per step (decode time not spent on the GPU): " + string.Join(", ", Results.Select(r =>
            string.Create(CultureInfo.InvariantCulture,
                $"{r.Mode}{(r.DecodingLength is { } l ? " " + l : "")} {r.Overall.HostSecondsPerStep * 1e6:F1} us " +
                $"(GPU {r.Overall.DeviceSeconds / Math.Max(1, r.Overall.Steps) * 1e6:F1} us)")));

    public string ForwardCostLine() => ForwardCosts.Count == 0 ? "" :
        $"forward cost at context {ForwardCostContext}: " + string.Join(", ", ForwardCosts.Select(c =>
            string.Create(CultureInfo.InvariantCulture, $"t({c.Nodes}) = {c.Milliseconds:F3} ms ({c.Milliseconds / ForwardCosts[0].Milliseconds:F2}x)")));

    public string Markdown() =>
        $"# Lookahead benchmark\n\nmodel `{Model}`, backend {Backend}, {Threads} threads, at most {MaxTokens} tokens per prompt, " +
        $"{WarmupPrompts} warm-up and {TestPrompts} test prompts{SamplingText}.\n\n{Table(markdown: true)}\n{ForwardCostLine()}\n\n{BandwidthLine()}\n" +
        (PairedBandwidthRatios.Count > 0 ? $"\n{PairedBandwidthLine()}\n" : "") +
        (DeviceTimed ? $"\n{HostOverheadLine()}\n" : "");

    private string SamplingText => Temperature > 0
        ? string.Create(CultureInfo.InvariantCulture, $", sampled at temperature {Temperature} (seed: the prompt's line number)")
        : ", greedy";

    /// <summary>The settings both bench reports open their JSON with.</summary>
    public static void WriteSettings(Utf8JsonWriter json, string model, string backend, int threads, int maxTokens, float temperature, int warmupPrompts)
    {
        json.WriteString("model", model);
        json.WriteString("backend", backend);
        json.WriteNumber("threads", threads);
        json.WriteNumber("max_tokens", maxTokens);
        json.WriteNumber("temperature", temperature);
        json.WriteNumber("warmup_prompts", warmupPrompts);
    }

    public void WriteJson(Stream stream)
    {
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        WriteSettings(json, Model, Backend, Threads, MaxTokens, Temperature, WarmupPrompts);
        json.WriteNumber("test_prompts", TestPrompts);
        json.WriteNumber("memory_read_gbps", MemoryReadGBps);
        json.WriteNumber("weight_bytes_per_token", WeightBytesPerToken);
        if (PairedBandwidthRatios.Count > 0)
        {
            json.WriteStartObject("paired_bandwidth");
            json.WriteNumber("prompts", PairedBandwidthRatios.Count);
            json.WriteNumber("median_fraction", PairedMedian);
            json.WriteNumber("min_fraction", PairedBandwidthRatios.Min());
            json.WriteNumber("max_fraction", PairedBandwidthRatios.Max());
            json.WriteEndObject();
        }
        json.WriteStartArray("runs");
        foreach (ModeResult result in Results)
        {
            json.WriteStartObject();
            json.WriteString("mode", result.Mode);
            if (result.DecodingLength is { } length)
            {
                if (int.TryParse(length, NumberStyles.Integer, CultureInfo.InvariantCulture, out int fixedLength))
                    json.WriteNumber("decoding_length", fixedLength);
                else
                    json.WriteString("decoding_length", length);
            }
            WriteTotals(json, result.Overall);
            json.WriteNumber("weight_gbps", WeightGBps(result.Overall));
            if (Speedup(result, null) is double speedup) json.WriteNumber("speedup", speedup);
            json.WriteStartObject("categories");
            foreach ((string category, RunTotals totals) in result.ByCategory)
            {
                json.WriteStartObject(category);
                WriteTotals(json, totals);
                if (Speedup(result, category) is double categorySpeedup) json.WriteNumber("speedup", categorySpeedup);
                json.WriteEndObject();
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteNumber("forward_cost_context", ForwardCostContext);
        json.WriteStartArray("forward_cost");
        foreach (ForwardCost cost in ForwardCosts)
        {
            json.WriteStartObject();
            json.WriteNumber("k", cost.Nodes);
            json.WriteNumber("ms", cost.Milliseconds);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    private static void WriteTotals(Utf8JsonWriter json, RunTotals totals)
    {
        json.WriteNumber("prompts", totals.Prompts);
        json.WriteNumber("generated_tokens", totals.GeneratedTokens);
        json.WriteNumber("seconds", totals.Seconds);
        json.WriteNumber("tokens_per_second", totals.TokensPerSecond);
        json.WriteNumber("steps", totals.Steps);
        json.WriteNumber("mean_tokens_per_step", totals.MeanTokensPerStep);
        json.WriteNumber("drafted_tokens", totals.DraftedTokens);
        json.WriteNumber("accepted_tokens", totals.AcceptedTokens);
        json.WriteStartObject("step_breakdown_seconds");
        json.WriteNumber("trie_and_draft", totals.DraftSeconds);
        json.WriteNumber("forward_verify_commit", totals.ForwardSeconds);
        json.WriteNumber("other", Math.Max(0, totals.Seconds - totals.DraftSeconds - totals.ForwardSeconds));
        json.WriteEndObject();
        if (totals.DeviceSeconds > 0)
        {
            json.WriteNumber("device_seconds", totals.DeviceSeconds);
            json.WriteNumber("host_seconds_per_step", totals.HostSecondsPerStep);
        }
    }
}
