using BenchmarkDotNet.Attributes;
using Lookahead.Decoding;
using Lookahead.Interop;

namespace Lookahead.Benchmarks;

/// <summary>The managed/native boundary and the fused step on stories260K.</summary>
[MemoryDiagnoser]
public class NativeBenchmarks
{
    private LanguageModel _model = null!;
    private InferenceContext _context = null!;
    private int[] _tokens = null!;
    private int[] _parents = null!;
    private int[] _output = null!;
    private const int Committed = 256;

    [Params(1, 8, 32)]
    public int DraftNodes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _model = LanguageModel.Load(Path.Combine(AppContext.BaseDirectory, "models", "stories260K"));
        _context = _model.CreateContext(new ContextOptions { Backend = Backend.Cpu });
        var random = new Random(1);
        _context.Prefill(Enumerable.Range(0, Committed).Select(_ => random.Next(512)).ToArray());
        _tokens = Enumerable.Range(0, DraftNodes).Select(_ => random.Next(512)).ToArray();
        _parents = Enumerable.Range(0, DraftNodes).Select(i => i == 0 ? -1 : random.Next(Math.Max(0, i - 4), i)).ToArray();
        _output = new int[DraftNodes];
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _context.Dispose();
        _model.Dispose();
    }

    [Benchmark(Description = "empty P/Invoke round trip (lk_abi_version)")]
    public int PInvokeRoundTrip() => NativeMethods.lk_abi_version();

    [Benchmark(Description = "fused step: forward(k) + verify + commit")]
    public int FusedStep()
    {
        int count = _context.DecodeGreedy(_tokens, _parents, _output);
        _context.Truncate(Committed);
        return count;
    }
}
