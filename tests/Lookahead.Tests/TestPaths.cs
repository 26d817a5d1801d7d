namespace Lookahead.Tests;

/// <summary>Files the tests use, all inside the test output folder (copied there by the build).</summary>
public static class TestPaths
{
    public static string Stories260K => Path.Combine(AppContext.BaseDirectory, "models", "stories260K");
    public static string BenchPrompts => Path.Combine(AppContext.BaseDirectory, "data", "stories.jsonl");
    public static string CliAssembly => Path.Combine(AppContext.BaseDirectory, "Lookahead.Cli.dll");

    /// <summary>The checkout these tests were built from (the folder holding Lookahead.sln above the output).</summary>
    public static string RepositoryRoot
    {
        get
        {
            string start = AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar);
            for (string? folder = start; folder is not null; folder = Path.GetDirectoryName(folder))
                if (File.Exists(Path.Combine(folder, "Lookahead.sln"))) return folder;
            Assert.Fail($"repository root (Lookahead.sln) not found above {start}");
            return "";
        }
    }
}
