using System.Runtime.InteropServices;
using Lookahead.Interop;

namespace Lookahead.Tests;

/// <summary>Managed struct mirrors match native/include/lookahead.h (sizes pinned there by static_assert).</summary>
public class InteropLayoutTests
{
    private static int Offset<T>(string field) => (int)Marshal.OffsetOf<T>(field);

    [Test]
    public void ModelParams()
    {
        Assert.That(Marshal.SizeOf<LkModelParams>(), Is.EqualTo(LkModelParams.NativeSize).And.EqualTo(48));
        Assert.That(Offset<LkModelParams>(nameof(LkModelParams.VocabSize)), Is.EqualTo(0));
        Assert.That(Offset<LkModelParams>(nameof(LkModelParams.MaxContext)), Is.EqualTo(28));
        Assert.That(Offset<LkModelParams>(nameof(LkModelParams.RmsNormEps)), Is.EqualTo(32));
        Assert.That(Offset<LkModelParams>(nameof(LkModelParams.RopeTheta)), Is.EqualTo(36));
        Assert.That(Offset<LkModelParams>(nameof(LkModelParams.Flags)), Is.EqualTo(40));
        Assert.That(Offset<LkModelParams>(nameof(LkModelParams.Reserved)), Is.EqualTo(44));
    }

    [Test]
    public void ContextParamsAndInfo()
    {
        Assert.That(Marshal.SizeOf<LkContextParams>(), Is.EqualTo(LkContextParams.NativeSize).And.EqualTo(16));
        Assert.That(Offset<LkContextParams>(nameof(LkContextParams.NThreads)), Is.EqualTo(12));
        Assert.That(Marshal.SizeOf<LkContextInfo>(), Is.EqualTo(LkContextInfo.NativeSize).And.EqualTo(24));
        Assert.That(Offset<LkContextInfo>(nameof(LkContextInfo.NPast)), Is.EqualTo(16));
        Assert.That(Offset<LkContextInfo>(nameof(LkContextInfo.NPending)), Is.EqualTo(20));
    }

    [Test]
    public void StageTime()
    {
        Assert.That(Marshal.SizeOf<LkStageTime>(), Is.EqualTo(LkStageTime.NativeSize).And.EqualTo(24));
        Assert.That(Offset<LkStageTime>(nameof(LkStageTime.Calls)), Is.EqualTo(8));
        Assert.That(Offset<LkStageTime>(nameof(LkStageTime.Milliseconds)), Is.EqualTo(16));
    }

    [Test]
    public void Batch()
    {
        Assert.That(Marshal.SizeOf<LkBatch>(), Is.EqualTo(LkBatch.NativeSize).And.EqualTo(24));
        Assert.That(Offset<LkBatch>(nameof(LkBatch.Parents)), Is.EqualTo(8));
        Assert.That(Offset<LkBatch>(nameof(LkBatch.NTokens)), Is.EqualTo(16));
        Assert.That(Offset<LkBatch>(nameof(LkBatch.Logits)), Is.EqualTo(20));
    }

    [Test]
    public void SamplingParams()
    {
        Assert.That(Marshal.SizeOf<LkSamplingParams>(), Is.EqualTo(LkSamplingParams.NativeSize).And.EqualTo(48));
        Assert.That(Offset<LkSamplingParams>(nameof(LkSamplingParams.TopK)), Is.EqualTo(4));
        Assert.That(Offset<LkSamplingParams>(nameof(LkSamplingParams.FrequencyPenalty)), Is.EqualTo(24));
        Assert.That(Offset<LkSamplingParams>(nameof(LkSamplingParams.NPrompt)), Is.EqualTo(28));
        Assert.That(Offset<LkSamplingParams>(nameof(LkSamplingParams.Seed)), Is.EqualTo(32));
        Assert.That(Offset<LkSamplingParams>(nameof(LkSamplingParams.TokenIndex)), Is.EqualTo(40));
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
