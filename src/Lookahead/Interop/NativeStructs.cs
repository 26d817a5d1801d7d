using System.Runtime.InteropServices;
using Lookahead.Model;

namespace Lookahead.Interop;

// Mirrors of the structs in native/include/lookahead.h. Field order, types and sizes must match the
// native static_asserts exactly; InteropLayoutTests asserts them.

[StructLayout(LayoutKind.Sequential)]
internal struct LkModelParams
{
    public int VocabSize;
    public int HiddenSize;
    public int IntermediateSize;
    public int NLayers;
    public int NHeads;
    public int NKvHeads;
    public int HeadDim;
    public int MaxContext;
    public float RmsNormEps;
    public float RopeTheta;
    public uint Flags;
    public int Reserved;

    public const int NativeSize = 48;
}

[StructLayout(LayoutKind.Sequential)]
internal struct LkContextParams
{
    public int Backend;
    public int NCtx;
    public int NBatch;
    public int NThreads;
    public int CudaDevice;
    public int CpuKernel;
    public int CudaMatmul;
    public int CudaAttention;
    public int CudaGraphs;
    public int NSeqMax;
    public int NKvTokens;
    public int KvType;

    public const int NativeSize = 48;
}

[StructLayout(LayoutKind.Sequential)]
internal struct LkContextInfo
{
    public int Backend;
    public int NCtx;
    public int NBatch;
    public int NThreads;
    public int NPast;
    public int NPending;
    public int CudaDevice;
    public int CpuKernel;
    public int CudaMatmul;
    public int CudaAttention;
    public int CudaGraphs;
    public int KvType;

    public const int NativeSize = 48;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LkStageTime
{
    public byte* Name;  // static UTF-8 string owned by the library
    public long Calls;
    public double Milliseconds;

    public const int NativeSize = 24;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LkBatch
{
    public int* Tokens;
    public int* Parents;
    public int NTokens;
    public int Logits;

    public const int NativeSize = 24;
}

[StructLayout(LayoutKind.Sequential)]
internal unsafe struct LkSeqBatch
{
    public int* Tokens;
    public int* Parents;
    public int* SeqIds;
    public int NTokens;
    public int Reserved;

    public const int NativeSize = 32;
}

[StructLayout(LayoutKind.Sequential)]
internal struct LkSeqInfo
{
    public int NPast;
    public int NBlocks;

    public const int NativeSize = 8;
}

[StructLayout(LayoutKind.Sequential)]
internal struct LkKvPoolInfo
{
    public int NBlocks;
    public int NFree;
    public int NCached;
    public int BlockTokens;

    public const int NativeSize = 16;
}

[StructLayout(LayoutKind.Sequential)]
internal struct LkSamplingParams
{
    public float Temperature;
    public int TopK;
    public float TopP;
    public float MinP;
    public float RepetitionPenalty;
    public float PresencePenalty;
    public float FrequencyPenalty;
    public int NPrompt;
    public ulong Seed;
    public long TokenIndex;

    public const int NativeSize = 48;
}

/// <summary>Constants of the C ABI.</summary>
internal static class NativeConstants
{
    public const int AbiVersion = 9;

    public const int DtypeF32 = 0;
    public const int DtypeF16 = 1;
    public const int DtypeBF16 = 2;
    public const int DtypeQ8_0 = 3;
    public const int DtypeQ4_0 = 4;
    public const int DtypeQ4_K = 5;
    public const int DtypeQ5_K = 6;
    public const int DtypeQ6_K = 7;
    public const int DtypeQ5_0 = 8;

    /// <summary>The lk_dtype of a loadable element type.</summary>
    public static int Dtype(TensorDtype dtype) => dtype switch
    {
        TensorDtype.F32 => DtypeF32,
        TensorDtype.F16 => DtypeF16,
        TensorDtype.BF16 => DtypeBF16,
        TensorDtype.Q8_0 => DtypeQ8_0,
        TensorDtype.Q4_0 => DtypeQ4_0,
        TensorDtype.Q5_0 => DtypeQ5_0,
        TensorDtype.Q4_K => DtypeQ4_K,
        TensorDtype.Q5_K => DtypeQ5_K,
        TensorDtype.Q6_K => DtypeQ6_K,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a type the engine loads"),
    };

    public const int LogitsNone = 0;
    public const int LogitsLast = 1;
    public const int LogitsAll = 2;

    public const uint ModelTiedOutput = 1;
    public const uint ModelQkvBias = 2;

    public const int CudaGraphsOn = 1;
    public const int CudaGraphsOff = 2;
}

/// <summary>Tensor kinds of the C ABI (LK_TENSOR_*).</summary>
internal enum TensorKind
{
    TokenEmbedding = 0,
    OutputNorm = 1,
    Output = 2,
    AttnNorm = 3,
    AttnQ = 4,
    AttnK = 5,
    AttnV = 6,
    AttnOutput = 7,
    AttnQBias = 8,
    AttnKBias = 9,
    AttnVBias = 10,
    FfnNorm = 11,
    FfnGate = 12,
    FfnUp = 13,
    FfnDown = 14,
}
