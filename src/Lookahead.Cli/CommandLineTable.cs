using System.Text;
using Lookahead.Model;

namespace Lookahead.Cli;

/// <summary>One option of a command: its name, the placeholder of its value (null for a flag) and what it does.</summary>
internal sealed record CliOption(string Name, string? Value, string Description)
{
    public string Usage => Value is null ? $"--{Name}" : $"--{Name} {Value}";
}

/// <summary>A command: what it does (the main help's line), its options and the notes after them.</summary>
internal sealed record CliCommand(string Name, string Summary, IReadOnlyList<CliOption> Options, string Notes)
{
    public IReadOnlySet<string> ValueOptions => Options.Where(o => o.Value is not null).Select(o => o.Name).ToHashSet();
    public IReadOnlySet<string> Flags => Options.Where(o => o.Value is null).Select(o => o.Name).ToHashSet();
}

/// <summary>
/// The CLI's options, the one table the argument readers, `--help` and the README's CLI section
/// (checked by a test) come from. The parser stays hand-written (ArgumentReader) rather than System.CommandLine:
/// its errors name the option and the accepted values in one line, it reads "--name value" and "--name=value"
/// alike, and the fuzz target `cli-args` drives it directly.
/// </summary>
internal static class CommandLineTable
{
    private static readonly CliOption ModelFolder = new("model", "DIR", "model folder (config.json + safetensors) or .gguf file (F32/F16/BF16, Q8_0/Q4_0/Q5_0/Q4_K/Q5_K/Q6_K tensors); default: the bundled stories260K");

    private static readonly CliOption[] DraftShape =
    [
        new("branch-length", "N", "deepest draft node below the root (default 12)"),
        new("max-query-length", "N", "longest context suffix matched in the trie (default 2)"),
        new("draft-mode", "D", "hierarchical | parallel | single (default hierarchical)"),
        new("freq", "F", "mix | input | output: which n-gram counts rank drafts (default mix)"),
    ];

    private static readonly CliOption[] Sampling =
    [
        new("temperature", "T", "sample at temperature T > 0; 0 is greedy (default: the model folder's generation_config.json as HF generate reads it, else greedy)"),
        new("top-k", "K", "keep the K most likely tokens (0 = all)"),
        new("top-p", "P", "keep the smallest set reaching probability P, in (0, 1]"),
        new("min-p", "P", "keep tokens at least P times the most likely one's probability, in [0, 1]"),
        new("repetition-penalty", "R", "HF's, over the prompt and the output (1 = off)"),
        new("presence-penalty", "X", "OpenAI's, over the output (0 = off)"),
        new("frequency-penalty", "X", "OpenAI's, per earlier occurrence in the output (0 = off)"),
        new("seed", "S", "the draws' seed (default random, printed in the statistics and the JSON); the same seed gives the same tokens in every mode"),
    ];

    /// <summary>The options ModelArguments.Context reads.</summary>
    public static readonly CliOption[] Context =
    [
        new("backend", "B", "cpu | cuda | auto (default auto: CUDA when available, else CPU)"),
        new("threads", "N", "CPU threads (default: all cores)"),
        new("context", "N", "KV cache length in tokens (default: the model's, at most 4096)"),
        new("cpu-kernel", "K", "auto | scalar | avx2 | avx512 | avx512-bf16: caps the CPU matrix kernel (default auto: the best this CPU runs; the others are for comparisons)"),
        new("cuda-device", "N", "CUDA device ordinal (default 0)"),
        new("cuda-graphs", "G", "on | off: replay each step shape as a CUDA graph (default on)"),
        new("cuda-attention", "A", "auto | per-node | shared-prefix: the tree-attention kernel (default auto)"),
        new("cuda-matmul", "M", "auto | tensor-cores | simt: the BF16 matrix kernel (default auto)"),
        new("kv-type", "T", "f32 | f16 | bf16: the KV cache's element type (default f32; the 16-bit ones, CPU only, halve attention's reads, and outputs are lossless against plain decoding with the same type)"),
    ];

    public static readonly CliCommand Generate = new("generate", "generate a continuation of a prompt (lookahead decoding by default)",
    [
        ModelFolder,
        new("prompt", "TEXT", "prompt text (default empty: generation starts from BOS alone)"),
        new("prompt-file", "FILE", "read the prompt text from a file"),
        new("prompt-ids", "IDS", "prompt as token ids, e.g. \"1,403,407\" (for folders without a tokenizer)"),
        new("max-tokens", "N", "most tokens to generate (default 256)"),
        new("mode", "M", "lookahead | plain (alias greedy): one forward pass per token (default lookahead; both give the same tokens, sampled ones included)"),
        new("decoding-length", "N", "draft nodes per step, root included, or auto: each step picks the size from measured forward costs and the trie's confidence (default auto, at most 64)"),
        .. DraftShape,
        new("trie", "FILE", "load the n-gram trie from FILE if it exists; save it there at exit"),
        new("warmup", "FILE", "JSONL with a \"prompt\" (or \"prompt_ids\") per line: generate each first to fill the trie"),
        .. Sampling,
        .. Context,
        new("json", null, "print one JSON object instead of streaming text"),
        new("profile", null, "time every stage of the native steps (prefill and decoding; on CUDA each stage waits for the device, so decoding runs slower)"),
    ],
        """
        Without --json the text streams as it is produced, followed by one line of statistics (and one
        of stage times with --profile). With --json the object holds mode, backend, model, prompt_tokens,
        generated_tokens, token_ids, text, steps, seconds (decode phase), tokens_per_second,
        drafted_tokens, accepted_tokens, mean_tokens_per_step, prefill_seconds, prefill_tokens_per_second,
        finish_reason, threads, drafts, and with --profile stages (name, calls, ms).
        """);

    public static readonly CliCommand Bench = new("bench", "time greedy against lookahead on a prompts file, checking outputs are identical",
    [
        ModelFolder,
        new("prompts", "FILE", "JSONL: \"prompt\" (or \"prompt_ids\": token ids, for folders without a tokenizer), optional \"id\", \"split\" (warmup|test), \"category\"; default: the bundled data/stories.jsonl"),
        new("max-tokens", "N", "tokens per prompt (default 256)"),
        new("modes", "LIST", "greedy,lookahead (default both; greedy always runs as the reference)"),
        new("decoding-length", "LIST", "decoding lengths to time, e.g. auto,4,8,16 (default auto,8,16,64)"),
        new("temperature", "LIST", "temperatures, e.g. 0,0.5,0.8,1 (default 0: greedy); each runs the whole benchmark, sampling with the prompt's line number as the seed, and every mode must draw the same tokens as plain sampling"),
        .. DraftShape,
        new("out", "DIR", "also write report.json, report.md and the plots there"),
        .. Context,
        new("forward-cost-context", "N", "committed tokens for the t(k) probe (default 256)"),
        new("paired-bandwidth", null, "CPU: probe the memory read bandwidth right before each prompt's greedy run and report greedy's weight-streaming rate against it per prompt (median, range); about half a second per prompt"),
        new("device-time", null, "CUDA: measure the GPU's time of every step (events around each native call) and report the host overhead per step (decode time minus GPU time)"),
        new("concurrency", "LIST", "serve many requests at once instead, e.g. 1,2,4,8,16: that many closed-loop clients on one batch generator, per value and mode (decoding length default auto); reports aggregate and per-request tokens/s, time to first token, and a 4-turn chat's prefix-cache reuse"),
        new("requests", "N", "with --concurrency: the first N test prompts are the requests (and at most N warm-up prompts fill the trie); default all"),
        new("rounds", "N", "with --concurrency: run every configuration N times, alternating, and report each one's median round (and the median of its per-round ratios to plain); default 1"),
        new("server", "URL", "load-test a running server instead (e.g. http://127.0.0.1:8080): closed-loop clients per --concurrency and mode stream /v1/completions; reports requests/s, output tokens/s, time to first token and inter-chunk latency (p50, p95, p99)"),
        new("api-key", "KEY", "with --server: the server's API key"),
    ],
        """
        Warm-up prompts are generated into each lookahead run's trie first (untimed), then the test
        prompts are timed, each in every mode before the next (so drift in machine speed hits all modes
        alike). Any lookahead output that differs from greedy fails the run (exit 1).
        With --concurrency every prompt is first decoded alone (the reference); each request's tokens in
        every batched run must equal its reference or the run fails (exit 1). With --out the report holds
        report.json (its "concurrency" list), report.md and concurrency.png.
        With --server the test prompts go to that server at temperature 0, each mode through the
        request's "lookahead" field; every text must be equal across modes or the run fails (exit 1);
        --out writes report.json (its "server_load" list) and report.md.
        """);

    public static readonly CliCommand Serve = new("serve", "serve the model over an OpenAI-compatible HTTP API, many requests at once",
    [
        ModelFolder,
        new("host", "ADDR", "IP address to listen on, 'localhost' or '*' (default 127.0.0.1: this machine only)"),
        new("port", "N", "TCP port (default 8080; 0 picks a free one)"),
        new("api-key", "KEY", "require 'Authorization: Bearer KEY' on every /v1 request (401 otherwise)"),
        new("max-concurrency", "N", "requests decoded at once, one sequence each (default 8)"),
        new("queue-limit", "N", "requests that may wait beyond those; more get 429 with Retry-After (default 64)"),
        new("max-tokens", "N", "tokens generated when a request gives no max_tokens, within its context (default 256)"),
        new("model-name", "NAME", "the model's name in requests and /v1/models (default: the folder's name)"),
        new("kv-pool-tokens", "N", "KV cache tokens shared by all sequences (default: max-concurrency x context)"),
        new("trie", "FILE", "warm-start the shared n-gram trie from FILE if it exists; save it there every --trie-save-seconds and at exit"),
        new("trie-save-seconds", "N", "how often --trie is refreshed while serving (default 60)"),
        .. Context,
    ],
        """
        Endpoints: POST /v1/chat/completions and /v1/completions (stream: true for server-sent events),
        GET /v1/models, /health and /metrics (Prometheus text). Requests take OpenAI's fields plus an
        optional "lookahead" object (mode: lookahead | plain, decoding_length: N | "auto"); absent
        sampling fields take the model's generation_config.json defaults (greedy without one). A
        model folder without a chat template gets the messages' texts joined by blank lines as its
        chat prompt. Every request's tokens equal its output alone; see docs/serving.md.
        """);

    public static readonly CliCommand Synth = new("synth", "write a model folder of a real shape with random weights (for speed tests)",
    [
        new("shape", "NAME", string.Join(" | ", SyntheticModel.Shapes.Select(s => s.Name)) + " (models/shapes.tsv)"),
        new("out", "DIR", "a new or empty folder: config.json and safetensors (sharded above 4 GiB)"),
        new("dtype", "D", "f32 | f16 | bf16: the weights' dtype (default bf16)"),
        new("seed", "S", "random seed (default 1); the same seed writes the same bytes"),
    ],
        "The weights are random: use these folders to measure speed, not drafts or acceptance.");

    public static readonly CliCommand Quantize = new("quantize", "write a model folder as a quantized GGUF file (for llama.cpp and for us)",
    [
        new("model", "DIR", "a model folder (config.json and safetensors, llama architecture)"),
        new("type", "T", "q8_0 | q4_k_m | f16 | f32 (default q4_k_m)"),
        new("out", "FILE", "the .gguf file to write (replaced if it exists)"),
    ],
        """
        q4_k_m is llama.cpp's mix (Q4_K, with Q6_K for the output matrix and for attn_v and ffn_down in a
        third of the layers); rows that are not whole blocks of 256 fall back as llama.cpp's do (Q5_0,
        Q8_0). Q8_0 and Q5_0 round as llama.cpp does; Q4_K and Q6_K use a plain min/max fit (llama.cpp's
        quantize searches for a little less error). The file keeps the folder's tokenizer.model
        vocabulary; see docs/gguf.md.
        """);

    public static readonly CliCommand Info = new("info", "describe a model folder",
        [ModelFolder],
        """
        Prints the architecture, sizes, dtypes, parameter count and tokenizer of a model folder,
        and the native library's build and CPU features.
        """);

    public static readonly IReadOnlyList<CliCommand> Commands = [Generate, Bench, Serve, Synth, Quantize, Info];

    private const int DescriptionColumn = 25;
    private const int Width = 104;

    public static string MainHelp()
    {
        var text = new StringBuilder();
        text.Append("lookahead - lossless lookahead decoding for Llama-family models\n\nusage: lookahead <command> [options]\n\ncommands:\n");
        foreach (CliCommand command in Commands) text.Append($"  {command.Name,-10} {command.Summary}\n");
        text.Append("\ncommon options:\n  --verbose  show stack traces on errors\n  --help     show help for a command\n\n");
        return text.ToString();
    }

    /// <summary>`lookahead COMMAND --help`: every option with its description, then the notes.</summary>
    public static string Help(CliCommand command)
    {
        var text = new StringBuilder($"usage: lookahead {command.Name} [options]\n\n");
        foreach (CliOption option in command.Options)
        {
            string head = $"  {option.Usage}";
            List<string> lines = Wrap(option.Description, Width - DescriptionColumn);
            if (head.Length >= DescriptionColumn - 1)
            {
                text.Append(head).Append('\n');
                foreach (string line in lines) text.Append(' ', DescriptionColumn).Append(line).Append('\n');
                continue;
            }
            text.Append(head.PadRight(DescriptionColumn)).Append(lines[0]).Append('\n');
            foreach (string line in lines.Skip(1)) text.Append(' ', DescriptionColumn).Append(line).Append('\n');
        }
        text.Append('\n').Append(command.Notes.TrimEnd()).Append("\n\n");
        return text.ToString();
    }

    /// <summary>The README's CLI section: each command's synopsis, every option named.</summary>
    public static string Synopsis()
    {
        var text = new StringBuilder();
        foreach (CliCommand command in Commands)
        {
            string usage = $"lookahead {command.Name}";
            var line = new StringBuilder(usage);
            foreach (CliOption option in command.Options)
            {
                string item = $" [{option.Usage}]";
                if (line.Length + item.Length > Width)
                {
                    text.Append(line).Append('\n');
                    line.Clear().Append(' ', usage.Length);
                }
                line.Append(item);
            }
            text.Append(line).Append('\n');
        }
        return text.ToString();
    }

    private static List<string> Wrap(string text, int width)
    {
        var lines = new List<string>();
        var line = new StringBuilder();
        foreach (string word in text.Split(' '))
        {
            if (line.Length > 0 && line.Length + 1 + word.Length > width)
            {
                lines.Add(line.ToString());
                line.Clear();
            }
            if (line.Length > 0) line.Append(' ');
            line.Append(word);
        }
        lines.Add(line.ToString());
        return lines;
    }
}
