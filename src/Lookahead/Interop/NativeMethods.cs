using System.Runtime.InteropServices;

namespace Lookahead.Interop;

/// <summary>P/Invoke declarations, one per function of native/include/lookahead.h, named as in C.</summary>
internal static unsafe partial class NativeMethods
{
    public const string LibraryName = "lookahead";

    [LibraryImport(LibraryName)]
    public static partial int lk_abi_version();

    [LibraryImport(LibraryName)]
    public static partial byte* lk_last_error();

    [LibraryImport(LibraryName)]
    public static partial byte* lk_system_info();

    [LibraryImport(LibraryName)]
    public static partial int lk_backend_available(int backend);

    [LibraryImport(LibraryName)]
    public static partial int lk_measure_read_bandwidth(int nThreads, out double gbps);

    [LibraryImport(LibraryName)]
    public static partial int lk_model_init(in LkModelParams parameters, out ModelHandle model);

    [LibraryImport(LibraryName)]
    public static partial int lk_model_set_tensor(ModelHandle model, int kind, int layer, int dtype, long rows, long cols, void* data);

    [LibraryImport(LibraryName)]
    public static partial int lk_model_set_rope_frequencies(ModelHandle model, float* invFreq, int count);

    [LibraryImport(LibraryName)]
    public static partial void lk_model_free(nint model);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_init(ModelHandle model, in LkContextParams parameters, out ContextHandle context);

    [LibraryImport(LibraryName)]
    public static partial void lk_context_free(nint context);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_get_info(ContextHandle context, out LkContextInfo info);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_eval(ContextHandle context, in LkBatch batch);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_get_logits(ContextHandle context, int node, out float* logits);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_commit(ContextHandle context, int* nodes, int nNodes);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_truncate(ContextHandle context, int nPast);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_decode_greedy(ContextHandle context, in LkBatch tree, int* outTokens, int capacity, out int outCount);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_decode_sample(ContextHandle context, in LkBatch tree, in LkSamplingParams parameters,
        int* outTokens, int capacity, out int outCount);

    [LibraryImport(LibraryName)]
    public static partial int lk_seq_add(ContextHandle context, out int outSeq);

    [LibraryImport(LibraryName)]
    public static partial int lk_seq_remove(ContextHandle context, int seq);

    [LibraryImport(LibraryName)]
    public static partial int lk_seq_truncate(ContextHandle context, int seq, int nPast);

    [LibraryImport(LibraryName)]
    public static partial int lk_seq_get_info(ContextHandle context, int seq, out LkSeqInfo outInfo);

    [LibraryImport(LibraryName)]
    public static partial int lk_seq_prefill(ContextHandle context, int seq, int* tokens, int nTokens);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_decode_greedy_seqs(ContextHandle context, in LkSeqBatch batch, int* outTokens, int* outCounts);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_decode_sample_seqs(ContextHandle context, in LkSeqBatch batch, LkSamplingParams* parameters,
        int* outTokens, int* outCounts);

    [LibraryImport(LibraryName)]
    public static partial int lk_seq_fork(ContextHandle context, int src, int nPast, out int outSeq);

    [LibraryImport(LibraryName)]
    public static partial int lk_seq_reuse_prefix(ContextHandle context, int seq, int* tokens, int nTokens, out int outNReused);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_get_kv_pool(ContextHandle context, out LkKvPoolInfo outInfo);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_set_profiling(ContextHandle context, int enabled);

    [LibraryImport(LibraryName)]
    public static partial int lk_context_get_profile(ContextHandle context, LkStageTime* outStages, int capacity, out int outCount);
}
