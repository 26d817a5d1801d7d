namespace Lookahead.Cli;

/// <summary>Usage text of the CLI.</summary>
internal static class Help
{
    public const string Main = """
        lookahead - lossless lookahead decoding for Llama-family models

        usage: lookahead <command> [options]

        commands:
          generate   generate a continuation of a prompt
          info       describe a model folder

        common options:
          --verbose  show stack traces on errors
          --help     show help for a command

        """;

    public const string Generate = """
        usage: lookahead generate [options]

          --model DIR          model folder (config.json + safetensors); default: the bundled stories260K
          --prompt TEXT        prompt text (default empty: generation starts from BOS alone)
          --prompt-file FILE   read the prompt text from a file
          --prompt-ids IDS     prompt as token ids, e.g. "1,403,407" (for folders without a tokenizer)
          --max-tokens N       most tokens to generate (default 256)
          --mode greedy        decoding mode (default greedy)
          --backend B          cpu | cuda | auto (default auto: CUDA when available, else CPU)
          --threads N          CPU threads (default: all cores)
          --context N          KV cache length in tokens (default: the model's, at most 4096)
          --json               print one JSON object instead of streaming text

        Without --json the text streams as it is produced, followed by one line of statistics.
        With --json the object holds mode, backend, model, prompt_tokens, generated_tokens, token_ids,
        text, steps, seconds (decode phase), tokens_per_second, prefill_seconds, finish_reason.

        """;

    public const string Info = """
        usage: lookahead info [--model DIR]

        Prints the architecture, sizes, dtypes, parameter count and tokenizer of a model folder,
        and the native library's build and CPU features.

        """;

    public static string For(string command) => command switch
    {
        "generate" => Generate,
        "info" => Info,
        _ => Main,
    };
}
