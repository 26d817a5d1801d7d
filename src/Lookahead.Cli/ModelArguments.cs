using Lookahead.Model;

namespace Lookahead.Cli;

/// <summary>Resolves --model and loads the model, reporting progress on stderr for large weights.</summary>
internal static class ModelArguments
{
    private const long ProgressThresholdBytes = 256L * 1024 * 1024;

    private static readonly Dictionary<string, Backend> Backends = new()
    {
        ["auto"] = Backend.Auto,
        ["cpu"] = Backend.Cpu,
        ["cuda"] = Backend.Cuda,
    };

    private static readonly Dictionary<string, CpuKernel> CpuKernels = new()
    {
        ["auto"] = CpuKernel.Auto,
        ["scalar"] = CpuKernel.Scalar,
        ["avx2"] = CpuKernel.Avx2,
        ["avx512"] = CpuKernel.Avx512,
        ["avx512-bf16"] = CpuKernel.Avx512Bf16,
    };

    private static readonly Dictionary<string, bool> OnOff = new() { ["on"] = true, ["off"] = false };

    private static readonly Dictionary<string, CudaAttentionKernel> AttentionKernels = new()
    {
        ["auto"] = CudaAttentionKernel.Auto,
        ["per-node"] = CudaAttentionKernel.PerNode,
        ["shared-prefix"] = CudaAttentionKernel.SharedPrefix,
    };

    private static readonly Dictionary<string, CudaMatmulKernel> MatmulKernels = new()
    {
        ["auto"] = CudaMatmulKernel.Auto,
        ["tensor-cores"] = CudaMatmulKernel.TensorCores,
        ["simt"] = CudaMatmulKernel.Simt,
    };

    private static readonly Dictionary<string, KvCacheType> KvCacheTypes = new()
    {
        ["f32"] = KvCacheType.F32,
        ["f16"] = KvCacheType.F16,
        ["bf16"] = KvCacheType.BF16,
    };

    /// <summary>--backend, --threads, --context, --kv-type and the kernel choices as context options.</summary>
    public static ContextOptions Context(ArgumentReader reader) => new()
    {
        Backend = reader.Choice("backend", Backend.Auto, Backends),
        Threads = reader.Int("threads", 1, 256),
        ContextLength = reader.Int("context", 1, 1 << 24),
        CpuKernel = reader.Choice("cpu-kernel", CpuKernel.Auto, CpuKernels),
        CudaDevice = reader.Int("cuda-device", 0, 1023) ?? 0,
        CudaGraphs = reader.Choice("cuda-graphs", true, OnOff),
        CudaAttention = reader.Choice("cuda-attention", CudaAttentionKernel.Auto, AttentionKernels),
        CudaMatmul = reader.Choice("cuda-matmul", CudaMatmulKernel.Auto, MatmulKernels),
        KvCacheType = reader.Choice("kv-type", KvCacheType.F32, KvCacheTypes),
    };

    public static string BundledModel => Path.Combine(AppContext.BaseDirectory, "models", "stories260K");

    public static string Resolve(ArgumentReader reader)
    {
        string? folder = reader.String("model");
        if (folder is not null) return folder;
        if (!Directory.Exists(BundledModel))
            throw new LookaheadException($"the bundled model is missing ('{BundledModel}'); pass --model DIR");
        return BundledModel;
    }

    public static LanguageModel Load(string folder)
    {
        long bytes = Directory.Exists(folder) ? Directory.EnumerateFiles(folder, "*.safetensors").Sum(f => new FileInfo(f).Length)
            : File.Exists(folder) ? new FileInfo(folder).Length
            : 0;
        if (bytes < ProgressThresholdBytes) return LanguageModel.Load(folder);
        var progress = new StderrProgress($"loading {bytes / (1024.0 * 1024 * 1024):F1} GiB of weights");
        LanguageModel model = LanguageModel.Load(folder, progress);
        progress.Finish();
        return model;
    }

    public static string DescribeDtypes(IReadOnlyDictionary<TensorDtype, long> parameters) =>
        string.Join(", ", parameters.OrderByDescending(p => p.Value).Select(p => $"{SafeTensorsWriter.DtypeName(p.Key)} ({p.Value:N0} parameters)"));
}
