using System.Globalization;
using System.Text;

namespace Lookahead.Tokenization.Templates;

/// <summary>Python's strftime for the directives chat templates use (strftime_now("%d %b %Y")).</summary>
internal static class PythonTime
{
    public static string Format(DateTime time, string format)
    {
        var text = new StringBuilder();
        CultureInfo c = CultureInfo.InvariantCulture;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length) { text.Append(format[i]); continue; }
            char directive = format[++i];
            text.Append(directive switch
            {
                'd' => time.ToString("dd", c),
                'm' => time.ToString("MM", c),
                'Y' => time.ToString("yyyy", c),
                'y' => time.ToString("yy", c),
                'b' => time.ToString("MMM", c),
                'B' => time.ToString("MMMM", c),
                'a' => time.ToString("ddd", c),
                'A' => time.ToString("dddd", c),
                'H' => time.ToString("HH", c),
                'I' => time.ToString("hh", c),
                'M' => time.ToString("mm", c),
                'S' => time.ToString("ss", c),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'j' => time.DayOfYear.ToString("000", c),
                '%' => "%",
                _ => throw new TemplateException($"strftime directive %{directive} is not supported"),
            });
        }
        return text.ToString();
    }
}
