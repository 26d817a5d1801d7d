using System.Buffers.Binary;
using Lookahead.IO;

namespace Lookahead.Drafting;

public sealed unsafe partial class TokenTrie
{
    // File layout (little-endian): magic "LKTRIE\r\n", u32 version, u32 reserved (0), u64 node count,
    // then per node in pre-order (parents first) i32 token, i32 parent record index (-1 for a root),
    // i32 output frequency (> 0); last a u64 FNV-1a hash of every byte before it.
    private static ReadOnlySpan<byte> Magic => "LKTRIE\r\n"u8;
    private const uint FormatVersion = 1;
    private const int HeaderBytes = 24;
    private const int RecordBytes = 12;
    // The most records one byte array (the file is read whole) can hold.
    private const long MaxFileNodes = (0x7FFFFFC7L - HeaderBytes - sizeof(ulong)) / RecordBytes;

    /// <summary>
    /// Writes the output n-grams (prompt counts are per request and not saved) to a file, atomically:
    /// a partial file never replaces an existing one.
    /// </summary>
    /// <exception cref="IOException">The file cannot be written.</exception>
    public void Save(string path)
    {
        ThrowIfDisposed();
        var records = new List<(int Token, int Parent, int Frequency)>();
        var stack = new Stack<(int Node, int ParentRecord)>();
        for (int token = _rootCapacity - 1; token >= 0; token--)
            if (_roots[token] >= 0) stack.Push((_roots[token], -1));
        while (stack.Count > 0)
        {
            (int node, int parentRecord) = stack.Pop();
            if (_nodes[node].OutputFreq <= 0) continue;  // prompt-only n-gram, and so is its subtree
            int record = records.Count;
            records.Add((_nodes[node].Token, parentRecord, _nodes[node].OutputFreq));
            for (int child = _nodes[node].FirstChild; child >= 0; child = _nodes[child].NextSibling) stack.Push((child, record));
        }

        var bytes = new byte[HeaderBytes + records.Count * RecordBytes + sizeof(ulong)];
        Magic.CopyTo(bytes);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), FormatVersion);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(16), (ulong)records.Count);
        for (int i = 0; i < records.Count; i++)
        {
            Span<byte> at = bytes.AsSpan(HeaderBytes + i * RecordBytes);
            BinaryPrimitives.WriteInt32LittleEndian(at, records[i].Token);
            BinaryPrimitives.WriteInt32LittleEndian(at[4..], records[i].Parent);
            BinaryPrimitives.WriteInt32LittleEndian(at[8..], records[i].Frequency);
        }
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(bytes.Length - sizeof(ulong)), Fnv1a(bytes.AsSpan(0, bytes.Length - sizeof(ulong))));

        string temporary = path + ".partial";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// Replaces this trie's contents with a saved file's (open requests lose their prompt counts and output
    /// windows with the old contents). The file is validated completely first (magic,
    /// version, reserved field, length, checksum, structure, token ids below vocabSize, and this trie's
    /// limits: at most MaxNodes nodes and n-grams of at most WindowLength tokens); no more bytes are read
    /// than the header's node count allows. On any problem a LookaheadException names it and this trie is
    /// left as it was. A root's tree above MaxNodesPerRoot (a file saved with a larger limit) is squeezed
    /// to fit, as it would have been in this trie.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">vocabSize is not positive.</exception>
    /// <exception cref="LookaheadException">The file is missing, not a trie file, corrupt or does not fit
    /// this model or this trie's limits (the message says which).</exception>
    public void Load(string path, int vocabSize)
    {
        ThrowIfDisposed();
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocabSize);
        string label = Path.GetFileName(path);
        byte[] bytes;
        using (FileStream stream = BoundedFile.Open(path, "trie file"))
        {
            var header = new byte[HeaderBytes];
            if (stream.ReadAtLeast(header, HeaderBytes, throwOnEndOfStream: false) < HeaderBytes || !header.AsSpan(0, 8).SequenceEqual(Magic))
                throw new LookaheadException($"{label} is not a Lookahead trie file");
            uint version = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(8));
            if (version != FormatVersion)
                throw new LookaheadException($"{label} has trie format version {version}; this build reads version {FormatVersion}");
            uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(12));
            if (reserved != 0) throw new LookaheadException($"{label}: reserved header field is {reserved}, not 0");
            ulong count = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(16));
            if (count > (ulong)Options.MaxNodes)
                throw new LookaheadException($"{label} holds {count} nodes, more than this trie's limit of {Options.MaxNodes} (TrieOptions.MaxNodes)");
            if (count > MaxFileNodes)
                throw new LookaheadException($"{label} holds {count} nodes, more than the {MaxFileNodes} a trie file can hold");
            long length = HeaderBytes + (long)count * RecordBytes + sizeof(ulong);
            if (stream.CanSeek && stream.Length != length)
                throw new LookaheadException($"{label} is truncated or has trailing bytes ({stream.Length} bytes for {count} nodes)");
            bytes = new byte[length];
            header.CopyTo(bytes, 0);
            int read = stream.ReadAtLeast(bytes.AsSpan(HeaderBytes), (int)length - HeaderBytes, throwOnEndOfStream: false);
            if (read < length - HeaderBytes || stream.ReadByte() >= 0)
                throw new LookaheadException($"{label} is truncated or has trailing bytes (expected {length} bytes for {count} nodes)");
        }
        ulong stored = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(bytes.Length - sizeof(ulong)));
        if (stored != Fnv1a(bytes.AsSpan(0, bytes.Length - sizeof(ulong))))
            throw new LookaheadException($"{label} is corrupt (checksum mismatch)");

        int nodes = (bytes.Length - HeaderBytes - sizeof(ulong)) / RecordBytes;
        using var loaded = new TokenTrie(Options);
        var recordNodes = new int[nodes];
        var recordDepths = new int[nodes];
        for (int i = 0; i < nodes; i++)
        {
            ReadOnlySpan<byte> at = bytes.AsSpan(HeaderBytes + i * RecordBytes);
            int token = BinaryPrimitives.ReadInt32LittleEndian(at);
            int parent = BinaryPrimitives.ReadInt32LittleEndian(at[4..]);
            int frequency = BinaryPrimitives.ReadInt32LittleEndian(at[8..]);
            if (token < 0 || token >= vocabSize)
                throw new LookaheadException($"{label}: node {i} has token {token}, outside this model's vocabulary of {vocabSize}");
            if (parent < -1 || parent >= i)
                throw new LookaheadException($"{label}: node {i} names parent {parent}, which is not an earlier node");
            if (frequency <= 0) throw new LookaheadException($"{label}: node {i} has frequency {frequency}");
            recordDepths[i] = parent < 0 ? 1 : recordDepths[parent] + 1;
            if (recordDepths[i] > Options.WindowLength)
                throw new LookaheadException(
                    $"{label}: node {i} ends an n-gram of {recordDepths[i]} tokens, longer than this trie's window of {Options.WindowLength} (saved with a longer branch length?)");
            bool exists = parent < 0 ? loaded.RootOf(token) >= 0 : loaded._edges.Find(recordNodes[parent], token) >= 0;
            if (exists) throw new LookaheadException($"{label}: node {i} duplicates an earlier n-gram");
            int node = parent < 0 ? loaded.GetOrAddRoot(token) : loaded.GetOrAddChild(recordNodes[parent], token);
            loaded._nodes[node].OutputFreq = frequency;
            recordNodes[i] = node;
        }
        for (int token = 0; token < loaded._rootCapacity; token++) loaded.EnforceRootLimit(token);
        TakeContentsOf(loaded);
    }

    // Swaps the unmanaged contents with another trie (which then frees ours on Dispose).
    private void TakeContentsOf(TokenTrie other)
    {
        Node* nodes = _nodes;
        _nodes = other._nodes;
        other._nodes = nodes;
        (_capacity, other._capacity) = (other._capacity, _capacity);
        (_highWater, other._highWater) = (other._highWater, _highWater);
        (_freeHead, other._freeHead) = (other._freeHead, _freeHead);
        (_liveNodes, other._liveNodes) = (other._liveNodes, _liveNodes);
        int* roots = _roots, rootSizes = _rootSizes;
        _roots = other._roots;
        _rootSizes = other._rootSizes;
        other._roots = roots;
        other._rootSizes = rootSizes;
        (_rootCapacity, other._rootCapacity) = (other._rootCapacity, _rootCapacity);
        (_edges, other._edges) = (other._edges, _edges);
        ForgetOpenRequests();
    }

    private static ulong Fnv1a(ReadOnlySpan<byte> data)
    {
        ulong hash = 14695981039346656037UL;
        foreach (byte b in data) hash = (hash ^ b) * 1099511628211UL;
        return hash;
    }
}
