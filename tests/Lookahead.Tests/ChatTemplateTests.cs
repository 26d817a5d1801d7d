using System.Text.Json;
using Lookahead.Tokenization;
using Lookahead.Tokenization.Templates;

namespace Lookahead.Tests;

/// <summary>
/// Our Jinja subset against Python's jinja2 rendering real chat templates the way transformers does
/// (tests/data/chat-templates: 15 families, goldens made once by generate-golden.py).
/// </summary>
public class ChatTemplateTests
{
    private static readonly DateTime s_goldenDate = new(2024, 7, 26);

    private static string Folder => Path.Combine(AppContext.BaseDirectory, "chat-templates");

    public static IEnumerable<string> Families() =>
        Directory.EnumerateDirectories(Path.Combine(AppContext.BaseDirectory, "chat-templates")).Select(Path.GetFileName).Order()!;

    [TestCaseSource(nameof(Families))]
    public void RendersAsJinjaDoes(string family)
    {
        var template = ChatTemplate.Parse(File.ReadAllText(Path.Combine(Folder, family, "template.jinja")));
        using JsonDocument golden = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Folder, family, "golden.json")));
        var failures = new List<string>();
        int count = 0;
        foreach (JsonElement c in golden.RootElement.GetProperty("cases").EnumerateArray())
        {
            count++;
            string name = c.GetProperty("name").GetString()!;
            var variables = new Dictionary<string, object?>
            {
                ["messages"] = TemplateValues.FromJson(c.GetProperty("messages")),
                ["add_generation_prompt"] = c.GetProperty("add_generation_prompt").GetBoolean(),
            };
            foreach (JsonProperty token in golden.RootElement.GetProperty("special_tokens").EnumerateObject()) variables[token.Name] = TemplateValues.FromJson(token.Value);
            if (c.TryGetProperty("extra_context", out JsonElement extra))
                foreach (JsonProperty variable in extra.EnumerateObject()) variables[variable.Name] = TemplateValues.FromJson(variable.Value);
            try
            {
                string output = template.Render(variables, () => s_goldenDate);
                if (c.TryGetProperty("error", out JsonElement error)) failures.Add($"{name}: rendered, but jinja2 raised \"{error.GetString()}\"");
                else if (output != c.GetProperty("output").GetString())
                    failures.Add($"{name}:\n  got  {JsonSerializer.Serialize(output)}\n  want {JsonSerializer.Serialize(c.GetProperty("output").GetString())}");
            }
            catch (TemplateException e)
            {
                if (!c.TryGetProperty("error", out JsonElement error)) failures.Add($"{name}: {e.Message}");
                else if (!e.RaisedByTemplate || e.Message != error.GetString()) failures.Add($"{name}: raised \"{e.Message}\", jinja2 raised \"{error.GetString()}\"");
            }
        }
        Assert.That(failures, Is.Empty, $"{failures.Count} of {count} cases differ:\n" + string.Join("\n", failures));
    }

    [TestCase("{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }}", "3 -4 2 3.5 1024")]
    [TestCase("{{ 'abc'[::-1] }}{{ [1, 2, 3][-1] }}{{ 'a,b'.split(',') }}", "cba3['a', 'b']")]
    [TestCase("{{ none }} {{ true }} {{ 1.0 }} {{ 1e-5 }} {{ 0.1 + 0.2 }}", "None True 1.0 1e-05 0.30000000000000004")]
    [TestCase("{% for x in [1, 2, 3] if x != 2 %}{{ loop.index }}{{ x }}{% if loop.last %}!{% endif %}{% endfor %}", "1123!")]
    [TestCase("{% set ns = namespace(n=0) %}{% for x in 'abc' %}{% set ns.n = ns.n + 1 %}{% set local = 1 %}{% endfor %}{{ ns.n }}{{ local is defined }}", "3False")]
    [TestCase("{% macro greet(name, mark='!') %}hi {{ name }}{{ mark }}{% endmacro %}{{ greet('bo') }} {{ greet('al', mark='?') }}", "hi bo! hi al?")]
    [TestCase("{{ {'b': 1, 'a': [true, none, 'é\"']} | tojson }}", "{\"b\": 1, \"a\": [true, null, \"é\\\"\"]}")]
    [TestCase("  {%- if true %}\n  x\n  {% endif %}\nend", "  x\nend")]
    [TestCase("{{ 'x' if false }}|{{ 'y' if false else 'z' }}|{{ [] | length }}|{{ 'q' | default('d') }}|{{ missing | default('d') }}", "|z|0|q|d")]
    public void FollowsPythonAndJinjaSemantics(string source, string expected) =>
        Assert.That(ChatTemplate.Parse(source).Render([], addGenerationPrompt: false), Is.EqualTo(expected));

    [TestCase("{% for x in y %}", "endfor")]
    [TestCase("{{ 'x' | frobnicate }}", "frobnicate")]
    [TestCase("{% include 'other' %}", "include")]
    [TestCase("{{ x.y }}", "'x' is undefined")]
    public void RefusesWhatItDoesNotImplementByName(string source, string named)
    {
        var error = Assert.Throws<TemplateException>(() => ChatTemplate.Parse(source).Render([], addGenerationPrompt: false));
        Assert.That(error!.Message, Does.Contain(named));
        Assert.That(error.RaisedByTemplate, Is.False);
    }
}
