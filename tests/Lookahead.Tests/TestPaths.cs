namespace Lookahead.Tests;

/// <summary>Files the tests use, all inside the test output folder (copied there by the build).</summary>
public static class TestPaths
{
    public static string Stories260K => Path.Combine(AppContext.BaseDirectory, "models", "stories260K");
    public static string BenchPrompts => Path.Combine(AppContext.BaseDirectory, "data", "stories.jsonl");
    public static string CliAssembly => Path.Combine(AppContext.BaseDirectory, "Lookahead.Cli.dll");
}
