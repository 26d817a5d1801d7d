namespace Lookahead.Fuzz;

/// <summary>
/// The targets' names, apart from <see cref="FuzzTargets"/>: under afl-fuzz no instrumented code may run
/// before SharpFuzz has mapped the coverage memory, and touching FuzzTargets loads the library.
/// </summary>
public static class FuzzTargetNames
{
    public static readonly IReadOnlyList<string> All = ["safetensors", "gguf", "config", "shard-index", "trie", "tokenizer", "tokenizer-json", "chat-template", "prompts", "cli-args"];
}
