using System.Text;

namespace Lookahead.Cli.Bench;

/// <summary>A table as Markdown, or as right-aligned columns for the terminal.</summary>
internal static class TextTable
{
    public static string Render(IReadOnlyList<string> header, IReadOnlyList<string[]> rows, bool markdown)
    {
        var text = new StringBuilder();
        if (markdown)
        {
            text.AppendLine("| " + string.Join(" | ", header) + " |");
            text.AppendLine("|" + string.Concat(header.Select(_ => " --- |")));
            foreach (string[] row in rows) text.AppendLine("| " + string.Join(" | ", row) + " |");
            return text.ToString();
        }
        int[] widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        text.AppendLine(string.Join("  ", header.Select((h, i) => h.PadLeft(widths[i]))));
        foreach (string[] row in rows) text.AppendLine(string.Join("  ", row.Select((c, i) => c.PadLeft(widths[i]))));
        return text.ToString();
    }
}
