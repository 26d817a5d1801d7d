namespace Lookahead.Cli;

/// <summary>A command line that cannot be run as given (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);
