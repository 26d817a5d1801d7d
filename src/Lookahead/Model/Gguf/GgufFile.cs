using System.IO.MemoryMappedFiles;
using System.Text;

namespace Lookahead.Model.Gguf;

/// <summary>One tensor of a GGUF file: its dimensions in ggml order (Dims[0] is the innermost, the
/// columns of a matrix), its type, and its bytes' absolute offset and length in the file.</summary>
internal sealed record GgufTensor(string Name, GgmlType Type, long[] Dims, long Offset, long ByteLength)
{
    /// <summary>Number of elements.</summary>
    public long ElementCount => Dims.Aggregate(1L, (product, dim) => product * dim);
}

/// <summary>
/// A memory-mapped GGUF file (llama.cpp's format, versions 2 and 3): a header, typed metadata, tensor
/// descriptions, then aligned tensor data. Everything is validated on open, before any tensor is used:
/// every length and count against the bytes left, every string as UTF-8, keys and names unique, types
/// known, dimensions and sizes without overflow, each tensor's offset aligned and its bytes inside the
/// file. A file that fails is one <see cref="LookaheadException"/> that says where and why.
/// </summary>
internal sealed unsafe class GgufFile : IDisposable
{
    private const uint Magic = 0x46554747;  // "GGUF" read as a little-endian uint32
    private const int MaxDims = 4;
    private const int MaxArrayDepth = 4;
    private const long MaxKeyBytes = 65536;
    private const int DefaultAlignment = 32;

    private readonly MemoryMappedFile _mapping;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _base;

    private GgufFile(string path, uint version, Dictionary<string, object> metadata, Dictionary<string, GgufTensor> tensors,
        MemoryMappedFile mapping, MemoryMappedViewAccessor view, byte* basePointer)
    {
        Path = path;
        Version = version;
        Metadata = metadata;
        Tensors = tensors;
        _mapping = mapping;
        _view = view;
        _base = basePointer;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }
    /// <summary>The format version (2 or 3).</summary>
    public uint Version { get; }
    /// <summary>Metadata by key: long (every integer type but uint64), ulong, double, bool, string, or
    /// object[] of those for arrays.</summary>
    public IReadOnlyDictionary<string, object> Metadata { get; }
    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, GgufTensor> Tensors { get; }

    /// <summary>Opens, validates and maps a file.</summary>
    /// <exception cref="LookaheadException">The file is missing, not GGUF, or invalid (the message says where).</exception>
    public static GgufFile Open(string path)
    {
        if (!File.Exists(path)) throw new LookaheadException($"GGUF file not found: '{path}'");
        long length = new FileInfo(path).Length;
        string label = System.IO.Path.GetFileName(path);
        if (length < 24) throw new LookaheadException($"{label}: truncated ({length} bytes; a GGUF header alone needs 24)");
        MemoryMappedFile mapping = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor? view = null;
        byte* basePointer = null;
        try
        {
            view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
            basePointer += view.PointerOffset;
            var reader = new Reader(basePointer, length, label);
            (uint version, Dictionary<string, object> metadata, Dictionary<string, GgufTensor> tensors) = Parse(ref reader, label);
            return new GgufFile(path, version, metadata, tensors, mapping, view, basePointer);
        }
        catch
        {
            if (basePointer != null) view!.SafeMemoryMappedViewHandle.ReleasePointer();
            view?.Dispose();
            mapping.Dispose();
            throw;
        }
    }

    /// <summary>Pointer to a tensor's bytes, valid until this file is disposed.</summary>
    public byte* GetData(GgufTensor tensor) => _base + tensor.Offset;

    /// <summary>A string metadata value, or null when the key is absent.</summary>
    /// <exception cref="LookaheadException">The key holds another type.</exception>
    public string? String(string key) => Get<string>(key, "a string");

    /// <summary>An integer metadata value (any integer type), or null when the key is absent.</summary>
    /// <exception cref="LookaheadException">The key holds another type or a uint64 beyond long.</exception>
    public long? Integer(string key) => Metadata.TryGetValue(key, out object? value)
        ? value switch
        {
            long l => l,
            ulong u when u <= long.MaxValue => (long)u,
            _ => throw WrongType(key, "an integer", value),
        }
        : null;

    /// <summary>A number (float or integer), or null when the key is absent.</summary>
    public double? Number(string key) => Metadata.TryGetValue(key, out object? value)
        ? value switch
        {
            double d => d,
            long l => l,
            ulong u => u,
            _ => throw WrongType(key, "a number", value),
        }
        : null;

    /// <summary>A bool metadata value, or null when the key is absent.</summary>
    public bool? Bool(string key) => Metadata.TryGetValue(key, out object? value)
        ? value is bool b ? b : throw WrongType(key, "a bool", value)
        : null;

    /// <summary>An array of strings, or null when the key is absent.</summary>
    public string[]? Strings(string key) => Array(key, "strings", v => v as string);

    /// <summary>An array of numbers as floats, or null when the key is absent.</summary>
    public float[]? Floats(string key) => Array<float?>(key, "numbers", v => v switch
    {
        double d => (float)d,
        long l => l,
        _ => null,
    })?.Select(f => f!.Value).ToArray();

    /// <summary>An array of integers that fit in an int, or null when the key is absent.</summary>
    public int[]? Ints(string key) => Array<int?>(key, "32-bit integers", v => v is long l && l is >= int.MinValue and <= int.MaxValue ? (int)l : null)
        ?.Select(i => i!.Value).ToArray();

    /// <inheritdoc />
    public void Dispose()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _mapping.Dispose();
    }

    private T? Get<T>(string key, string what) where T : class =>
        Metadata.TryGetValue(key, out object? value) ? value as T ?? throw WrongType(key, what, value) : null;

    private T[]? Array<T>(string key, string what, Func<object, T?> convert)
    {
        if (!Metadata.TryGetValue(key, out object? value)) return null;
        if (value is not object[] items) throw WrongType(key, $"an array of {what}", value);
        var result = new T[items.Length];
        for (int i = 0; i < items.Length; i++)
            result[i] = convert(items[i]) ?? throw new LookaheadException(
                $"{System.IO.Path.GetFileName(Path)}: metadata '{key}' must be an array of {what}; element {i} is {Describe(items[i])}");
        return result;
    }

    private LookaheadException WrongType(string key, string what, object value) =>
        new($"{System.IO.Path.GetFileName(Path)}: metadata '{key}' must be {what}, not {Describe(value)}");

    private static string Describe(object value) => value switch
    {
        string => "a string",
        bool => "a bool",
        double => "a float",
        long or ulong => "an integer",
        object[] => "an array",
        _ => value.GetType().Name,
    };

    private static (uint, Dictionary<string, object>, Dictionary<string, GgufTensor>) Parse(ref Reader r, string label)
    {
        if (r.UInt32("the magic") != Magic) throw new LookaheadException($"{label}: not a GGUF file (no 'GGUF' magic)");
        uint version = r.UInt32("the version");
        if (version is not (2 or 3))
            throw new LookaheadException($"{label}: GGUF version {version} is not supported (2 and 3 are)");
        ulong tensorCount = r.UInt64("the tensor count");
        ulong kvCount = r.UInt64("the metadata count");
        // Each entry takes at least 8 bytes (a tensor more), so a count the file cannot hold fails here.
        if (kvCount > (ulong)r.Remaining / 13) throw new LookaheadException($"{label}: {kvCount} metadata entries cannot fit in the file");
        if (tensorCount > (ulong)r.Remaining / 24) throw new LookaheadException($"{label}: {tensorCount} tensors cannot fit in the file");

        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (ulong i = 0; i < kvCount; i++)
        {
            string key = r.String($"metadata entry {i}'s key", MaxKeyBytes);
            if (key.Length == 0) throw new LookaheadException($"{label}: metadata entry {i} has an empty key");
            object value = r.Value(key, r.UInt32($"the type of metadata '{key}'"), depth: 0);
            if (!metadata.TryAdd(key, value)) throw new LookaheadException($"{label}: metadata key '{key}' appears twice");
        }

        long alignment = DefaultAlignment;
        if (metadata.TryGetValue("general.alignment", out object? alignmentValue))
        {
            if (alignmentValue is not long a || a <= 0 || a > 1 << 20 || (a & (a - 1)) != 0)
                throw new LookaheadException($"{label}: general.alignment must be a power of two up to 2^20");
            alignment = a;
        }

        var infos = new List<(string Name, GgmlType Type, long[] Dims, ulong Offset)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (ulong i = 0; i < tensorCount; i++)
        {
            string name = r.String($"tensor {i}'s name", MaxKeyBytes);
            if (!names.Add(name)) throw new LookaheadException($"{label}: tensor '{name}' appears twice");
            uint dimCount = r.UInt32($"tensor '{name}''s dimension count");
            if (dimCount is 0 or > MaxDims)
                throw new LookaheadException($"{label}: tensor '{name}' has {dimCount} dimensions (1 to {MaxDims} allowed)");
            var dims = new long[dimCount];
            for (int d = 0; d < dimCount; d++)
            {
                ulong dim = r.UInt64($"tensor '{name}''s dimension {d}");
                if (dim is 0 or > 1UL << 40) throw new LookaheadException($"{label}: tensor '{name}' has dimension {d} = {dim}");
                dims[d] = (long)dim;
            }
            var type = (GgmlType)r.UInt32($"tensor '{name}''s type");
            infos.Add((name, type, dims, r.UInt64($"tensor '{name}''s offset")));
        }

        long dataStart = (r.Position + alignment - 1) / alignment * alignment;
        if (dataStart > r.Length && infos.Count > 0)
            throw new LookaheadException($"{label}: the tensor data would start at byte {dataStart}, past the end of the file ({r.Length} bytes)");
        long dataLength = Math.Max(0, r.Length - dataStart);
        var tensors = new Dictionary<string, GgufTensor>(StringComparer.Ordinal);
        foreach ((string name, GgmlType type, long[] dims, ulong offset) in infos)
        {
            (int Elements, int Bytes) block = GgmlTypes.Block(type)
                ?? throw new LookaheadException($"{label}: tensor '{name}' has unknown ggml type {(uint)type}");
            if (dims[0] % block.Elements != 0)
                throw new LookaheadException(
                    $"{label}: tensor '{name}' is {GgmlTypes.Name(type)}, whose blocks hold {block.Elements} values, but its rows hold {dims[0]}");
            long bytes;
            try
            {
                long rows = 1;
                for (int d = 1; d < dims.Length; d++) rows = checked(rows * dims[d]);
                bytes = checked(dims[0] / block.Elements * block.Bytes * rows);
            }
            catch (OverflowException)
            {
                throw new LookaheadException($"{label}: tensor '{name}''s size overflows");
            }
            if (offset % (ulong)alignment != 0)
                throw new LookaheadException($"{label}: tensor '{name}''s offset {offset} is not a multiple of the alignment {alignment}");
            if (offset > (ulong)dataLength || (ulong)bytes > (ulong)dataLength - offset)
                throw new LookaheadException(
                    $"{label}: tensor '{name}' ({bytes} bytes at data offset {offset}) runs past the end of the file ({dataLength} data bytes)");
            tensors.Add(name, new GgufTensor(name, type, dims, dataStart + (long)offset, bytes));
        }
        return (version, metadata, tensors);
    }

    /// <summary>Bounds-checked little-endian reads over the mapped file.</summary>
    private ref struct Reader(byte* data, long length, string label)
    {
        private readonly byte* _data = data;
        public long Position { get; private set; }
        public readonly long Length => length;
        public readonly long Remaining => length - Position;

        private void Need(long bytes, string what)
        {
            if (bytes > Remaining) throw new LookaheadException($"{label}: truncated at {what} (byte {Position} of {length})");
        }

        private T Read<T>(string what) where T : unmanaged
        {
            Need(sizeof(T), what);
            T value = *(T*)(_data + Position);  // GGUF is little-endian, as every platform .NET runs here
            Position += sizeof(T);
            return value;
        }

        public uint UInt32(string what) => Read<uint>(what);
        public ulong UInt64(string what) => Read<ulong>(what);

        public string String(string what, long maxBytes = long.MaxValue)
        {
            ulong bytes = UInt64(what);
            if (bytes > (ulong)Remaining) throw new LookaheadException($"{label}: {what} claims {bytes} bytes, more than the file holds");
            if ((long)bytes > maxBytes) throw new LookaheadException($"{label}: {what} is {bytes} bytes long (at most {maxBytes})");
            if (bytes > int.MaxValue) throw new LookaheadException($"{label}: {what} is longer than 2 GiB");
            string value;
            try
            {
                value = Strict.GetString(_data + Position, (int)bytes);
            }
            catch (DecoderFallbackException)
            {
                throw new LookaheadException($"{label}: {what} is not valid UTF-8");
            }
            Position += (long)bytes;
            return value;
        }

        public object Value(string key, uint type, int depth)
        {
            string what = $"metadata '{key}'";
            switch (type)
            {
                case 0: return (long)Read<byte>(what);
                case 1: return (long)Read<sbyte>(what);
                case 2: return (long)Read<ushort>(what);
                case 3: return (long)Read<short>(what);
                case 4: return (long)Read<uint>(what);
                case 5: return (long)Read<int>(what);
                case 6: return (double)Read<float>(what);
                case 7:
                    byte b = Read<byte>(what);
                    return b <= 1 ? b == 1 : throw new LookaheadException($"{label}: {what} is a bool of value {b}");
                case 8: return String(what);
                case 10:
                    ulong u = Read<ulong>(what);
                    return u <= long.MaxValue ? (long)u : u;
                case 11: return Read<long>(what);
                case 12: return Read<double>(what);
                case 9:
                    if (depth >= MaxArrayDepth) throw new LookaheadException($"{label}: {what} nests arrays deeper than {MaxArrayDepth}");
                    uint elementType = UInt32(what);
                    ulong count = UInt64(what);
                    // Every element takes at least one byte, so a count beyond the bytes left is a lie.
                    if (count > (ulong)Remaining) throw new LookaheadException($"{label}: {what} claims {count} elements, more than the file holds");
                    var items = new object[count];
                    for (ulong i = 0; i < count; i++) items[i] = Value(key, elementType, depth + 1);
                    return items;
                default:
                    throw new LookaheadException($"{label}: {what} has unknown value type {type}");
            }
        }
    }

    private static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
