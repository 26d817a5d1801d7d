using Lookahead.Decoding;
using Lookahead.Interop;
using Lookahead.Model;
using Lookahead.Model.Gguf;
using Lookahead.Tokenization;

namespace Lookahead;

/// <summary>
/// A model loaded from a Hugging Face folder into the native library, with its tokenizer if the folder
/// has a supported one. Thread-safe to share; each <see cref="InferenceContext"/> is single-threaded.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    /// <summary>Default upper bound of a context's length when none is given (keeps KV caches modest).</summary>
    public const int DefaultContextCap = 4096;

    private readonly ModelHandle _handle;

    private LanguageModel(string folder, ModelConfig config, ModelHandle handle, TextTokenizer? tokenizer,
        string tokenizerStatus, IReadOnlyDictionary<TensorDtype, long> parameters, long weightBytesPerToken, SamplingOptions sampling)
    {
        DefaultSampling = sampling;
        WeightBytesPerToken = weightBytesPerToken;
        Folder = folder;
        Config = config;
        _handle = handle;
        Tokenizer = tokenizer;
        TokenizerStatus = tokenizerStatus;
        ParametersByDtype = parameters;
    }

    /// <summary>The model folder, or the GGUF file.</summary>
    public string Folder { get; }
    /// <summary>The sampling defaults of generation_config.json (greedy without one, or without do_sample).</summary>
    public SamplingOptions DefaultSampling { get; }
    /// <summary>Hyper-parameters from config.json.</summary>
    public ModelConfig Config { get; }
    /// <summary>The tokenizer, or null when the folder has none this library supports.</summary>
    public TextTokenizer? Tokenizer { get; }
    /// <summary>What was found for tokenization, for display.</summary>
    public string TokenizerStatus { get; }
    /// <summary>Parameter count per stored dtype (of the tensors the model uses).</summary>
    public IReadOnlyDictionary<TensorDtype, long> ParametersByDtype { get; }
    /// <summary>Weight bytes one decoding step streams: every matrix once (the head included), but only one
    /// row of a separate token embedding. Divided by the memory bandwidth it gives a step's time floor.</summary>
    public long WeightBytesPerToken { get; }

    /// <summary>Total parameters the model uses (a tied head counted once).</summary>
    public long ParameterCount => ParametersByDtype.Values.Sum();

    internal ModelHandle Handle => _handle;

    /// <summary>Native build and CPU feature summary.</summary>
    public static unsafe string SystemInfo
    {
        get
        {
            NativeLibraryResolver.EnsureCompatible();
            return System.Runtime.InteropServices.Marshal.PtrToStringUTF8((nint)NativeMethods.lk_system_info()) ?? "";
        }
    }

    /// <summary>Whether contexts can be created on the backend on this machine.</summary>
    public static bool IsBackendAvailable(Backend backend)
    {
        NativeLibraryResolver.EnsureCompatible();
        return NativeMethods.lk_backend_available((int)backend) != 0;
    }

    /// <summary>Loads a model folder (config.json and safetensors) or a .gguf file (llama.cpp's format; F32,
    /// F16, BF16 and Q8_0 tensors, Q8_0 for the CPU backend). Progress (0..1) is reported as weights are copied.</summary>
    /// <exception cref="LookaheadException">The folder, config.json, a safetensors file, a tensor or the tokenizer is missing or invalid (the message names the file and the problem), or the native library refused the weights.</exception>
    public static LanguageModel Load(string folder, IProgress<double>? progress = null) => Load(folder, progress, CancellationToken.None);

    /// <summary>Loads a model folder on a worker thread; cancellation is checked before each tensor is copied.</summary>
    /// <exception cref="LookaheadException">As <see cref="Load(string, IProgress{double}?)"/>.</exception>
    /// <exception cref="OperationCanceledException">cancellation fired (nothing stays loaded).</exception>
    public static Task<LanguageModel> LoadAsync(string folder, IProgress<double>? progress = null, CancellationToken cancellation = default) =>
        Task.Run(() => Load(folder, progress, cancellation), cancellation);

    private static LanguageModel Load(string folder, IProgress<double>? progress, CancellationToken cancellation)
    {
        NativeLibraryResolver.EnsureCompatible();
        if (IsGguf(folder)) return LoadGguf(folder, progress, cancellation);
        using ModelCheckpoint checkpoint = ModelCheckpoint.Open(folder);
        ModelConfig config = checkpoint.Config;
        TextTokenizer? tokenizer = TextTokenizer.TryLoad(folder, config, out string tokenizerStatus);
        SamplingOptions sampling = GenerationConfig.Load(folder);

        // Slots are listed lazily and only found ones kept: a config.json declaring more layers than the files
        // hold fails at the first missing tensor, with memory bounded by the files, not by num_hidden_layers.
        var located = new List<(TensorSlot Slot, SafeTensorsFile File, TensorInfo Info)>();
        foreach (TensorSlot slot in TensorMap.Slots(config))
        {
            if (!checkpoint.TryGetTensor(slot.Name, out SafeTensorsFile file, out TensorInfo info))
                throw new LookaheadException($"tensor '{slot.Name}' is missing from the model files");
            CheckTensor(slot, info);
            located.Add((slot, file, info));
        }

        LookaheadException.ThrowIfFailed(NativeMethods.lk_model_init(NativeParams(config), out ModelHandle handle));
        try
        {
            CopyWeights(handle, located, progress, cancellation);
            SetRopeFrequencies(handle, config, null);
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        var perDtype = located.GroupBy(t => t.Info.Dtype)
            .ToDictionary(g => g.Key, g => g.Sum(t => t.Info.ElementCount));
        long streamed = located.Where(t => config.TieWordEmbeddings || t.Slot.Kind != TensorKind.TokenEmbedding)
            .Sum(t => t.Info.ByteLength);
        return new LanguageModel(Path.GetFullPath(folder), config, handle, tokenizer, tokenizerStatus, perDtype, streamed, sampling);
    }

    /// <summary>Whether a path names a GGUF file rather than a model folder.</summary>
    public static bool IsGguf(string path) => path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase) && !Directory.Exists(path);

    private static unsafe LanguageModel LoadGguf(string path, IProgress<double>? progress, CancellationToken cancellation)
    {
        using GgufCheckpoint checkpoint = GgufCheckpoint.Open(path);
        ModelConfig config = checkpoint.Config;
        TextTokenizer? tokenizer = TextTokenizer.TryLoadGguf(checkpoint.File, config, out string tokenizerStatus);
        var located = TensorMap.Slots(config).Select(slot => (Slot: slot, Tensor: checkpoint.Tensor(slot))).ToList();

        LookaheadException.ThrowIfFailed(NativeMethods.lk_model_init(NativeParams(config), out ModelHandle handle));
        try
        {
            long total = Math.Max(1, located.Sum(t => t.Tensor.ByteLength)), done = 0;
            foreach ((TensorSlot slot, GgufTensor tensor) in located)
            {
                cancellation.ThrowIfCancellationRequested();
                int dtype = NativeConstants.Dtype(GgmlTypes.Loadable(tensor.Type)!.Value);
                int status;
                if (checkpoint.NeedsRopeReorder(slot))
                {
                    byte[] rows = checkpoint.RotateHalfRows(slot, tensor);
                    fixed (byte* data = rows) status = NativeMethods.lk_model_set_tensor(handle, (int)slot.Kind, slot.Layer, dtype, slot.Rows, slot.Cols, data);
                }
                else status = NativeMethods.lk_model_set_tensor(handle, (int)slot.Kind, slot.Layer, dtype, slot.Rows, slot.Cols, checkpoint.File.GetData(tensor));
                try
                {
                    LookaheadException.ThrowIfFailed(status);
                }
                catch (LookaheadException e)
                {
                    throw e.WithContext($"tensor '{tensor.Name}' in {Path.GetFileName(path)}");
                }
                done += tensor.ByteLength;
                progress?.Report((double)done / total);
            }
            SetRopeFrequencies(handle, config, checkpoint.RopeFactors);
        }
        catch
        {
            handle.Dispose();
            throw;
        }

        var perDtype = located.GroupBy(t => GgmlTypes.Loadable(t.Tensor.Type)!.Value)
            .ToDictionary(g => g.Key, g => g.Sum(t => t.Tensor.ElementCount));
        long streamed = located.Where(t => config.TieWordEmbeddings || t.Slot.Kind != TensorKind.TokenEmbedding).Sum(t => t.Tensor.ByteLength);
        return new LanguageModel(Path.GetFullPath(path), config, handle, tokenizer, tokenizerStatus, perDtype, streamed, new SamplingOptions());
    }

    private static LkModelParams NativeParams(ModelConfig config) => new()
    {
        VocabSize = config.VocabSize,
        HiddenSize = config.HiddenSize,
        IntermediateSize = config.IntermediateSize,
        NLayers = config.NumLayers,
        NHeads = config.NumHeads,
        NKvHeads = config.NumKvHeads,
        HeadDim = config.HeadDim,
        MaxContext = config.MaxPositionEmbeddings,
        RmsNormEps = config.RmsNormEps,
        RopeTheta = config.RopeTheta,
        Flags = (config.TieWordEmbeddings ? NativeConstants.ModelTiedOutput : 0) |
                (config.QkvBias ? NativeConstants.ModelQkvBias : 0),
    };

    /// <summary>Creates a context (KV cache): one sequence, or up to <see cref="ContextOptions.MaxSequences"/>.</summary>
    /// <exception cref="ArgumentException">The context length exceeds the model's.</exception>
    /// <exception cref="LookaheadException">The native library refused the options (the message names the
    /// field; <see cref="LookaheadException.Status"/> says why: e.g. no CUDA device, out of memory).</exception>
    public InferenceContext CreateContext(ContextOptions? options = null)
    {
        ObjectDisposedException.ThrowIf(_handle.IsClosed, this);
        options ??= new ContextOptions();
        var parameters = new LkContextParams
        {
            Backend = (int)options.Backend,
            NCtx = options.ContextLength ?? DefaultContextLength(),
            NBatch = options.BatchSize ?? 0,
            NThreads = options.Threads ?? 0,
            CudaDevice = options.CudaDevice,
            CpuKernel = (int)options.CpuKernel,
            CudaMatmul = (int)options.CudaMatmul,
            CudaAttention = (int)options.CudaAttention,
            CudaGraphs = options.CudaGraphs ? NativeConstants.CudaGraphsOn : NativeConstants.CudaGraphsOff,
            NSeqMax = options.MaxSequences ?? 0,
            NKvTokens = options.KvPoolTokens ?? 0,
            KvType = (int)options.KvCacheType,
        };
        if (parameters.NCtx > Config.MaxPositionEmbeddings)
            throw new ArgumentException(
                $"context length {parameters.NCtx} exceeds the model's max_position_embeddings ({Config.MaxPositionEmbeddings})", nameof(options));
        LookaheadException.ThrowIfFailed(NativeMethods.lk_context_init(_handle, parameters, out ContextHandle context));
        context.KeepAlive(_handle);
        return new InferenceContext(this, context, Math.Max(1, parameters.NSeqMax));
    }

    /// <summary>The context length used when none is given.</summary>
    public int DefaultContextLength()
    {
        int length = Math.Min(Config.MaxPositionEmbeddings, DefaultContextCap);
        return Config.SlidingWindow is int window ? Math.Min(length, window) : length;
    }

    /// <inheritdoc />
    public void Dispose() => _handle.Dispose();

    private static void CheckTensor(TensorSlot slot, TensorInfo info)
    {
        if (info.Dtype is not (TensorDtype.F32 or TensorDtype.F16 or TensorDtype.BF16))
            throw new LookaheadException($"tensor '{slot.Name}' has dtype {SafeTensorsWriter.DtypeName(info.Dtype)}; supported: F32, F16, BF16");
        bool matches = slot.Cols == 1
            ? info.Shape.Length == 1 && info.Shape[0] == slot.Rows
            : info.Shape.Length == 2 && info.Shape[0] == slot.Rows && info.Shape[1] == slot.Cols;
        if (!matches)
            throw new LookaheadException(
                $"tensor '{slot.Name}' has shape [{string.Join(", ", info.Shape)}], expected {slot.ShapeText} from config.json");
    }

    private static unsafe void CopyWeights(ModelHandle handle,
        List<(TensorSlot Slot, SafeTensorsFile File, TensorInfo Info)> located, IProgress<double>? progress, CancellationToken cancellation)
    {
        long total = Math.Max(1, located.Sum(t => t.Info.ByteLength)), done = 0;
        foreach ((TensorSlot slot, SafeTensorsFile file, TensorInfo info) in located)
        {
            cancellation.ThrowIfCancellationRequested();
            int status = NativeMethods.lk_model_set_tensor(handle, (int)slot.Kind, slot.Layer, NativeConstants.Dtype(info.Dtype), slot.Rows, slot.Cols, file.GetData(info));
            try
            {
                LookaheadException.ThrowIfFailed(status);
            }
            catch (LookaheadException e)
            {
                throw e.WithContext($"tensor '{slot.Name}' in {Path.GetFileName(file.Path)}");
            }
            done += info.ByteLength;
            progress?.Report((double)done / total);
        }
    }

    // factors: a GGUF file's rope_freqs.weight, dividing each frequency (null: none).
    private static unsafe void SetRopeFrequencies(ModelHandle handle, ModelConfig config, float[]? factors)
    {
        float[] frequencies = RopeFrequencies.Compute(config);
        if (factors is not null)
            for (int i = 0; i < frequencies.Length; i++) frequencies[i] /= factors[i];
        fixed (float* pointer = frequencies)
        {
            LookaheadException.ThrowIfFailed(NativeMethods.lk_model_set_rope_frequencies(handle, pointer, frequencies.Length));
        }
    }
}
