namespace Lookahead.Cli;

/// <summary>Usage text of the CLI.</summary>
internal static class Help
{
    public const string Main = """
        lookahead - lossless lookahead decoding for Llama-family models

        usage: lookahead <command> [options]

        commands:
          generate   generate a continuation of a prompt (lookahead decoding by default)
          bench      time greedy against lookahead on a prompts file, checking outputs are identical
          synth      write a model folder of a real shape with random weights (for speed tests)
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
          --mode M             lookahead | plain (alias greedy): one forward pass per token (default
                               lookahead; both give the same tokens, sampled ones included)
          --decoding-length N  draft nodes per step, root included, or auto: each step picks the size
                               from measured forward costs and the trie's confidence (default auto, at most 64)
          --branch-length N    deepest draft node below the root (default 12)
          --max-query-length N longest context suffix matched in the trie (default 2)
          --draft-mode D       hierarchical | parallel | single (default hierarchical)
          --freq F             mix | input | output: which n-gram counts rank drafts (default mix)
          --trie FILE          load the n-gram trie from FILE if it exists; save it there at exit
          --warmup FILE        JSONL with a "prompt" (or "prompt_ids") per line: generate each first
                               to fill the trie
          --temperature T      sample at temperature T > 0; 0 is greedy (default: the model folder's
                               generation_config.json as HF generate reads it, else greedy)
          --top-k K            keep the K most likely tokens (0 = all)
          --top-p P            keep the smallest set reaching probability P, in (0, 1]
          --min-p P            keep tokens at least P times the most likely one's probability, in [0, 1]
          --repetition-penalty R  HF's, over the prompt and the output (1 = off)
          --presence-penalty X    OpenAI's, over the output (0 = off)
          --frequency-penalty X   OpenAI's, per earlier occurrence in the output (0 = off)
          --seed S             the draws' seed (default random, printed in the statistics and the JSON);
                               the same seed gives the same tokens in every mode
          --backend B          cpu | cuda | auto (default auto: CUDA when available, else CPU)
          --threads N          CPU threads (default: all cores)
          --context N          KV cache length in tokens (default: the model's, at most 4096)
          --cpu-kernel K       auto | scalar | avx2 | avx512 | avx512-bf16: caps the CPU matrix kernel
                               (default auto: the best this CPU runs; the others are for comparisons)
          --cuda-device N      CUDA device ordinal (default 0)
          --cuda-graphs G      on | off: replay each step shape as a CUDA graph (default on)
          --cuda-attention A   auto | per-node | shared-prefix: the tree-attention kernel (default auto)
          --cuda-matmul M      auto | tensor-cores | simt: the BF16 matrix kernel (default auto)
          --json               print one JSON object instead of streaming text
          --profile            time every stage of the native steps (prefill and decoding; on CUDA
                               each stage waits for the device, so decoding runs slower)

        Without --json the text streams as it is produced, followed by one line of statistics (and one
        of stage times with --profile). With --json the object holds mode, backend, model, prompt_tokens,
        generated_tokens, token_ids, text, steps, seconds (decode phase), tokens_per_second,
        drafted_tokens, accepted_tokens, mean_tokens_per_step, prefill_seconds, prefill_tokens_per_second,
        finish_reason, threads, drafts, and with --profile stages (name, calls, ms).

        """;

    public const string Bench = """
        usage: lookahead bench [options]

          --model DIR            model folder; default: the bundled stories260K
          --prompts FILE         JSONL: "prompt" (or "prompt_ids": token ids, for folders without a
                                 tokenizer), optional "id", "split" (warmup|test), "category";
                                 default: the bundled data/stories.jsonl
          --max-tokens N         tokens per prompt (default 256)
          --modes LIST           greedy,lookahead (default both; greedy always runs as the reference)
          --decoding-length LIST decoding lengths to time, e.g. auto,4,8,16 (default auto,8,16,64)
          --temperature LIST     temperatures, e.g. 0,0.5,0.8,1 (default 0: greedy); each runs the whole
                                 benchmark, sampling with the prompt's line number as the seed, and every
                                 mode must draw the same tokens as plain sampling
          --branch-length N, --max-query-length N, --draft-mode D, --freq F   as for generate
          --out DIR              also write report.json and report.md there
          --threads N, --backend B, --context N                              as for generate
          --cpu-kernel K, --cuda-device N, --cuda-graphs G, --cuda-attention A, --cuda-matmul M
                                 as for generate
          --forward-cost-context N  committed tokens for the t(k) probe (default 256)
          --paired-bandwidth     CPU: probe the memory read bandwidth right before each prompt's greedy
                                 run and report greedy's weight-streaming rate against it per prompt
                                 (median, range); about half a second per prompt
          --device-time          CUDA: measure the GPU's time of every step (events around each native
                                 call) and report the host overhead per step (decode time minus GPU time)

        Warm-up prompts are generated into each lookahead run's trie first (untimed), then the test
        prompts are timed, each in every mode before the next (so drift in machine speed hits all modes
        alike). Any lookahead output that differs from greedy fails the run (exit 1).

        """;

    // The shape names come from models/shapes.tsv (SyntheticModel.Shapes).
    public static string Synth => $"""
        usage: lookahead synth --shape NAME --out DIR [--dtype f32|f16|bf16] [--seed S]

          --shape NAME   {string.Join(" | ", Lookahead.Model.SyntheticModel.Shapes.Select(s => s.Name))}
          --out DIR      a new or empty folder: config.json and safetensors (sharded above 4 GiB)
          --dtype D      weight dtype (default bf16)
          --seed S       random seed (default 1); the same seed writes the same bytes

        The weights are random: use these folders to measure speed, not drafts or acceptance.

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
        "bench" => Bench,
        "synth" => Synth,
        _ => Main,
    };
}
