using System.Reflection;
using System.Runtime.InteropServices;
using Lookahead.Interop;

namespace Lookahead.Tests;

/// <summary>Managed struct mirrors match native/include/lookahead.h (sizes and offsets pinned there by static_assert).</summary>
public class InteropLayoutTests
{
    // The same sizes and offsets as the static_asserts in native/src/common/api.cpp, every field listed in
    // declaration order (so a field added, removed or reordered on one side fails here).
    private static readonly TestCaseData[] Layouts =
    [
        new TestCaseData(typeof(LkModelParams), LkModelParams.NativeSize, 48,
            new (string, int)[] { ("VocabSize", 0), ("HiddenSize", 4), ("IntermediateSize", 8), ("NLayers", 12), ("NHeads", 16), ("NKvHeads", 20), ("HeadDim", 24), ("MaxContext", 28), ("RmsNormEps", 32), ("RopeTheta", 36), ("Flags", 40), ("Reserved", 44) }).SetName("LkModelParams"),
        new TestCaseData(typeof(LkContextParams), LkContextParams.NativeSize, 48,
            new (string, int)[] { ("Backend", 0), ("NCtx", 4), ("NBatch", 8), ("NThreads", 12), ("CudaDevice", 16), ("CpuKernel", 20), ("CudaMatmul", 24), ("CudaAttention", 28), ("CudaGraphs", 32), ("NSeqMax", 36), ("NKvTokens", 40), ("KvType", 44) }).SetName("LkContextParams"),
        new TestCaseData(typeof(LkContextInfo), LkContextInfo.NativeSize, 48,
            new (string, int)[] { ("Backend", 0), ("NCtx", 4), ("NBatch", 8), ("NThreads", 12), ("NPast", 16), ("NPending", 20), ("CudaDevice", 24), ("CpuKernel", 28), ("CudaMatmul", 32), ("CudaAttention", 36), ("CudaGraphs", 40), ("KvType", 44) }).SetName("LkContextInfo"),
        new TestCaseData(typeof(LkBatch), LkBatch.NativeSize, 24,
            new (string, int)[] { ("Tokens", 0), ("Parents", 8), ("NTokens", 16), ("Logits", 20) }).SetName("LkBatch"),
        new TestCaseData(typeof(LkSeqBatch), LkSeqBatch.NativeSize, 32,
            new (string, int)[] { ("Tokens", 0), ("Parents", 8), ("SeqIds", 16), ("NTokens", 24), ("Reserved", 28) }).SetName("LkSeqBatch"),
        new TestCaseData(typeof(LkSeqInfo), LkSeqInfo.NativeSize, 8,
            new (string, int)[] { ("NPast", 0), ("NBlocks", 4) }).SetName("LkSeqInfo"),
        new TestCaseData(typeof(LkKvPoolInfo), LkKvPoolInfo.NativeSize, 16,
            new (string, int)[] { ("NBlocks", 0), ("NFree", 4), ("NCached", 8), ("BlockTokens", 12) }).SetName("LkKvPoolInfo"),
        new TestCaseData(typeof(LkStageTime), LkStageTime.NativeSize, 24,
            new (string, int)[] { ("Name", 0), ("Calls", 8), ("Milliseconds", 16) }).SetName("LkStageTime"),
        new TestCaseData(typeof(LkSamplingParams), LkSamplingParams.NativeSize, 48,
            new (string, int)[] { ("Temperature", 0), ("TopK", 4), ("TopP", 8), ("MinP", 12), ("RepetitionPenalty", 16), ("PresencePenalty", 20), ("FrequencyPenalty", 24), ("NPrompt", 28), ("Seed", 32), ("TokenIndex", 40) }).SetName("LkSamplingParams"),
    ];

    [TestCaseSource(nameof(Layouts))]
    public void StructMatchesTheNativeLayout(Type type, int declaredSize, int nativeSize, (string Field, int Offset)[] fields)
    {
        Assert.That(Marshal.SizeOf(type), Is.EqualTo(declaredSize).And.EqualTo(nativeSize));
        Assert.That(type.GetFields(BindingFlags.Public | BindingFlags.Instance).Select(f => f.Name), Is.EqualTo(fields.Select(f => f.Field)));
        foreach ((string field, int offset) in fields)
            Assert.That((int)Marshal.OffsetOf(type, field), Is.EqualTo(offset), field);
    }

    [Test]
    public void NativeLibraryLoadsWithMatchingAbi()
    {
        Assert.That(NativeMethods.lk_abi_version(), Is.EqualTo(NativeConstants.AbiVersion));
        Assert.That(LanguageModel.SystemInfo, Does.Contain("cpu"));
        Assert.That(LanguageModel.IsBackendAvailable(Backend.Cpu), Is.True);
    }

    [Test]
    public void NativeErrorsBecomeLookaheadExceptionsWithTheNativeMessage()
    {
        using LanguageModel model = LanguageModel.Load(TestPaths.Stories260K);
        var error = Assert.Throws<LookaheadException>(() => model.CreateContext(new ContextOptions { BatchSize = 100000 }).Dispose());
        Assert.That(error!.Status, Is.EqualTo(NativeStatus.InvalidArgument));
        Assert.That(error.Message, Does.Contain("n_batch"));
        if (!LanguageModel.IsBackendAvailable(Backend.Cuda))
        {
            var cuda = Assert.Throws<LookaheadException>(() => model.CreateContext(new ContextOptions { Backend = Backend.Cuda }).Dispose());
            Assert.That(cuda!.Message, Does.Contain("CUDA"));
        }
    }
}
