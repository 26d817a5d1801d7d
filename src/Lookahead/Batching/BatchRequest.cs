using System.Threading.Channels;
using Lookahead.Decoding;
using Lookahead.Drafting;

namespace Lookahead.Batching;

/// <summary>One request's state in a <see cref="BatchGenerator"/>; touched only by its scheduling thread
/// (the channel and the cancellation token excepted).</summary>
internal sealed class BatchRequest
{
    public enum Phase { Waiting, Prefilling, Decoding }

    public BatchRequest(long arrival, int[] prompt, GenerationOptions options, ulong? seed, IReadOnlyList<int> stopTokens,
        TimeProvider time, CancellationToken cancellation)
    {
        Arrival = arrival;
        Prompt = prompt;
        Options = options;
        Seed = seed;
        Sequence = new GeneratedSequence(prompt, options.MaxTokens, stopTokens);
        Statistics = new StepStatistics(time);
        Cancellation = cancellation;
        Lookahead = options.Mode == DecodingMode.Lookahead && options.Drafts.DecodingLength > 1;
        if (Lookahead)
        {
            Builder = new DraftBuilder(options.Drafts);
            Budget.Draft = new DraftTree(options.Drafts.DecodingLength);
            Budget.Fixed = !options.Drafts.Adaptive;
        }
        else
        {
            Budget.Draft = new DraftTree(1);
        }
    }

    public long Arrival { get; }  // admission order: the newest running request is preempted first
    public int[] Prompt { get; }
    public GenerationOptions Options { get; }
    public ulong? Seed { get; }
    public GeneratedSequence Sequence { get; }
    public StepStatistics Statistics { get; }
    public CancellationToken Cancellation { get; }
    public Channel<BatchChunk> Output { get; } = Channel.CreateUnbounded<BatchChunk>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    public bool Lookahead { get; }
    public DraftBuilder? Builder { get; }
    public BatchDraftBudget.Entry Budget { get; } = new();
    public TrieRequest? Trie { get; set; }       // opened at its first drafted step
    public bool DraftedThisStep { get; set; }   // it built a draft for the step being delivered
    public bool OutputSkipped { get; set; }     // tokens were emitted without streaming them into the trie

    public Phase State { get; set; } = Phase.Waiting;
    public int Seq { get; set; } = -1;          // its sequence on the context while admitted
    public int Committed { get; set; }          // tokens in its KV cache
    public long AdmittedAt { get; set; }
    public bool Started { get; set; }           // its decode clock runs (the first prefill finished)
    public int ReusedPromptTokens { get; set; }
    public int PrefilledTokens { get; set; }
    public int Preemptions { get; set; }

    /// <summary>The tokens its KV cache must hold before its next step: everything so far but the last
    /// token, which is the next step's root.</summary>
    public ReadOnlySpan<int> Context => Sequence.History[..^1];

    public BatchResult Result(FinishReason finish)
    {
        if (!Started)
        {
            // Finished before its first step (no tokens to make, or no room): zero decode time.
            Statistics.EndPrefill(AdmittedAt == 0 ? Statistics.Now : AdmittedAt);
            Statistics.StartDecode();
        }
        Statistics.EndDecode();
        GenerationStats stats = Statistics.Result(Prompt.Length, Sequence.Generated, TimeSpan.Zero);
        return new BatchResult(Sequence.Output(), finish, stats, ReusedPromptTokens, PrefilledTokens, Preemptions) { Seed = Seed };
    }
}
