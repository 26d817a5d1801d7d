using Lookahead;
using Lookahead.Cli;
using Lookahead.Cli.Commands;

// Exit codes: 0 success, 1 runtime error (one line on stderr), 2 usage error.
var commands = new Dictionary<string, (CliCommand Spec, Func<IReadOnlyList<string>, int> Run)>
{
    ["generate"] = (CommandLineTable.Generate, GenerateCommand.Run),
    ["info"] = (CommandLineTable.Info, InfoCommand.Run),
    ["bench"] = (CommandLineTable.Bench, BenchCommand.Run),
    ["serve"] = (CommandLineTable.Serve, ServeCommand.Run),
    ["synth"] = (CommandLineTable.Synth, SynthCommand.Run),
    ["quantize"] = (CommandLineTable.Quantize, QuantizeCommand.Run),
};
// Global flags may come before the command too; after it, they are read as the command reads its options.
int first = 0;
bool verbose = false, help = false;
for (; first < args.Length && args[first] is "--verbose" or "--help" or "-h"; first++)
{
    verbose |= args[first] == "--verbose";
    help |= args[first] != "--verbose";
}
try
{
    if (first == args.Length || args[first] == "help")
    {
        Console.Out.Write(CommandLineTable.MainHelp());
        return help || first < args.Length ? 0 : 2;
    }
    string name = args[first];
    if (!commands.TryGetValue(name, out var command)) throw new UsageException($"unknown command '{name}'");
    List<string> options = ArgumentReader.TakeGlobalFlags(args[(first + 1)..], command.Spec.ValueOptions, out bool verboseAfter, out bool helpAfter);
    verbose |= verboseAfter;
    if (help || helpAfter)
    {
        Console.Out.Write(CommandLineTable.Help(command.Spec));
        return 0;
    }
    return command.Run(options);
}
catch (UsageException e)
{
    StatusLine.End();
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine("run 'lookahead --help' for usage");
    return 2;
}
// The library's ArgumentExceptions here come from what the user gave (a prompt too long for the context).
catch (Exception e) when (e is LookaheadException or ArgumentException or IOException or UnauthorizedAccessException or DllNotFoundException)
{
    StatusLine.End();
    Console.Error.WriteLine(verbose ? $"error: {e}" : $"error: {OneLine(e.Message)}");
    return 1;
}
catch (Exception e)
{
    StatusLine.End();
    Console.Error.WriteLine(verbose ? $"internal error: {e}" : $"internal error: {OneLine(e.Message)} (run with --verbose for details)");
    return 1;
}

static string OneLine(string text) => string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
