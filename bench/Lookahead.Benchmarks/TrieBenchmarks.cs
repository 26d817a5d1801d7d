using BenchmarkDotNet.Attributes;
using Lookahead.Drafting;

namespace Lookahead.Benchmarks;

/// <summary>
/// One decoding step's managed work: stream one committed token into the trie, then retrieve and build the
/// next draft (hierarchical, 16 nodes, branch length 12), on tries of 1k and 100k nodes.
/// </summary>
[MemoryDiagnoser]
public class TrieBenchmarks
{
    private const int Vocab = 512;
    private TokenTrie _trie = null!;
    private DraftBuilder _builder = null!;
    private DraftTree _draft = null!;
    private int[] _stream = null!;
    private int _position;

    [Params(1_000, 100_000)]
    public int Nodes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var random = new Random(42);
        // Skewed token frequencies, like text: small ranks are common, so n-grams repeat.
        int NextToken() => (int)(Vocab * Math.Pow(random.NextDouble(), 3));
        _trie = new TokenTrie(new TrieOptions { WindowLength = 13 });
        while (_trie.NodeCount < Nodes)
            _trie.AddOutputCorpus(Enumerable.Range(0, 64).Select(_ => NextToken()).ToArray());
        _stream = Enumerable.Range(0, 1 << 16).Select(_ => NextToken()).ToArray();
        _builder = new DraftBuilder(new DraftOptions { DecodingLength = 16, BranchLength = 12 });
        _draft = new DraftTree(16);
        _trie.BeginRequest(_stream.AsSpan(0, 64));
        _position = 64;
    }

    [GlobalCleanup]
    public void Cleanup() => _trie.Dispose();

    [Benchmark(Description = "insert + retrieve + draft (one step)")]
    public int Step()
    {
        if (_position == _stream.Length) _position = 64;
        _trie.AppendOutput(_stream.AsSpan(_position, 1));
        _position++;
        _builder.Build(_trie, _stream.AsSpan(_position - 2, 2), _draft);
        return _draft.Count;
    }
}
