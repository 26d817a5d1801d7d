using Lookahead.Cli;

namespace Lookahead.Tests;

/// <summary>The CLI's option table is the one source of its parsing, its help and the README's CLI section.</summary>
public class CommandLineTableTests
{
    private const string Marker = "<!-- CLI synopsis: generated from src/Lookahead.Cli/CommandLineTable.cs (CommandLineTableTests checks it) -->";

    [Test]
    public void TheReadmeCliSectionIsTheTablesSynopsis()
    {
        string readme = File.ReadAllText(Path.Combine(TestPaths.RepositoryRoot, "README.md"));
        int marker = readme.IndexOf(Marker, StringComparison.Ordinal);
        Assert.That(marker, Is.GreaterThanOrEqualTo(0), "README.md lost the CLI synopsis marker");
        int start = readme.IndexOf("```\n", marker, StringComparison.Ordinal) + 4;
        int end = readme.IndexOf("```", start, StringComparison.Ordinal);
        string expected = CommandLineTable.Synopsis();
        Assert.That(readme[start..end], Is.EqualTo(expected),
            $"README.md's CLI synopsis is out of date; replace the block after the marker with:\n{expected}");
    }

    [Test]
    public void EveryOptionIsInItsCommandsHelpOnceAndNamesAreUnique()
    {
        foreach (CliCommand command in CommandLineTable.Commands)
        {
            string help = CommandLineTable.Help(command);
            Assert.That(command.Options.Select(o => o.Name), Is.Unique, command.Name);
            foreach (CliOption option in command.Options)
                Assert.That(help, Does.Contain($"  {option.Usage} ").Or.Contain($"  {option.Usage}\n"), $"{command.Name} --{option.Name}");
            Assert.That(help.Split('\n'), Has.All.Length.LessThanOrEqualTo(104), $"{command.Name}: help lines fit 104 columns");
        }
    }

    // The CLI prints the same help (a real child process, not the table's own function).
    [Test]
    public void TheCliPrintsTheTablesHelp()
    {
        foreach (CliCommand command in CommandLineTable.Commands)
        {
            CliRunner.Result result = CliRunner.Run([command.Name, "--help"]);
            Assert.That(result.ExitCode, Is.Zero, result.Stderr);
            Assert.That(result.Stdout, Is.EqualTo(CommandLineTable.Help(command)), command.Name);
        }
    }
}
