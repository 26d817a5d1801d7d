using Lookahead;
using Lookahead.Cli;
using Lookahead.Cli.Commands;

// Exit codes: 0 success, 1 runtime error (one line on stderr), 2 usage error.
bool verbose = args.Contains("--verbose");
string[] rest = args.Where(a => a != "--verbose").ToArray();
try
{
    if (rest.Length == 0 || rest[0] is "-h" or "--help" or "help")
    {
        Console.Out.Write(Help.Main);
        return rest.Length == 0 ? 2 : 0;
    }
    string[] options = rest[1..];
    if (options.Contains("--help") || options.Contains("-h"))
    {
        Console.Out.Write(Help.For(rest[0]));
        return 0;
    }
    return rest[0] switch
    {
        "generate" => GenerateCommand.Run(options),
        "info" => InfoCommand.Run(options),
        "bench" => BenchCommand.Run(options),
        "synth" => SynthCommand.Run(options),
        _ => throw new UsageException($"unknown command '{rest[0]}'"),
    };
}
catch (UsageException e)
{
    Console.Error.WriteLine($"error: {e.Message}");
    Console.Error.WriteLine("run 'lookahead --help' for usage");
    return 2;
}
catch (Exception e) when (e is LookaheadException or IOException or UnauthorizedAccessException or DllNotFoundException)
{
    Console.Error.WriteLine(verbose ? $"error: {e}" : $"error: {OneLine(e.Message)}");
    return 1;
}
catch (Exception e)
{
    Console.Error.WriteLine(verbose ? $"internal error: {e}" : $"internal error: {OneLine(e.Message)} (run with --verbose for details)");
    return 1;
}

static string OneLine(string text) => string.Join(" | ", text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
