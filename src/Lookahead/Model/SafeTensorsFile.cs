using System.IO.MemoryMappedFiles;
using System.Text.Json;

namespace Lookahead.Model;

/// <summary>
/// A memory-mapped .safetensors file: an 8-byte little-endian header length, a JSON header, then the
/// tensor bytes. The header is validated completely on open: lengths, JSON shape, dtypes, shapes
/// against byte ranges, ranges inside the file and not overlapping.
/// </summary>
public sealed unsafe class SafeTensorsFile : IDisposable
{
    private const long MaxHeaderBytes = 100L * 1024 * 1024;

    private readonly MemoryMappedFile? _mapping;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;

    private SafeTensorsFile(string path, Dictionary<string, TensorInfo> tensors, IReadOnlyDictionary<string, string> metadata,
        MemoryMappedFile? mapping, MemoryMappedViewAccessor? view, byte* basePointer)
    {
        Path = path;
        Tensors = tensors;
        Metadata = metadata;
        _mapping = mapping;
        _view = view;
        _base = basePointer;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>Tensors by name.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>The optional __metadata__ string map.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens, validates and maps a file. Throws LookaheadException naming the problem.</summary>
    /// <exception cref="LookaheadException">The file is missing or its header, dtypes, shapes or byte ranges are invalid (the message says which).</exception>
    public static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new LookaheadException($"safetensors file not found: '{path}'");
        long fileLength = new FileInfo(path).Length;
        string label = System.IO.Path.GetFileName(path);
        if (fileLength < 8) throw new LookaheadException($"{label}: truncated ({fileLength} bytes, the header length alone needs 8)");

        byte[] header;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            stream.ReadExactly(lengthBytes);
            ulong headerLength = BitConverter.ToUInt64(lengthBytes);
            if (headerLength == 0 || headerLength > (ulong)(fileLength - 8))
                throw new LookaheadException($"{label}: header length {headerLength} does not fit in the file ({fileLength} bytes)");
            if ((long)headerLength > MaxHeaderBytes)
                throw new LookaheadException($"{label}: header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit");
            header = new byte[headerLength];
            stream.ReadExactly(header);
        }

        long dataStart = 8 + header.Length;
        long dataLength = fileLength - dataStart;
        (Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata) = ParseHeader(header, label, dataStart, dataLength);

        if (dataLength == 0) return new SafeTensorsFile(path, tensors, metadata, null, null, null);
        MemoryMappedFile mapping = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        MemoryMappedViewAccessor view = mapping.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* basePointer = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
        return new SafeTensorsFile(path, tensors, metadata, mapping, view, basePointer + view.PointerOffset);
    }

    /// <summary>Pointer to a tensor's bytes, valid until this file is disposed.</summary>
    public byte* GetData(TensorInfo tensor)
    {
        ObjectDisposedException.ThrowIf(_view is null && tensor.ByteLength > 0, this);
        return _base + tensor.DataOffset;
    }

    /// <summary>A tensor's bytes, valid until this file is disposed.</summary>
    public ReadOnlySpan<byte> GetSpan(TensorInfo tensor) => new(GetData(tensor), checked((int)tensor.ByteLength));

    /// <summary>Size in bytes of one element.</summary>
    public static int ElementSize(TensorDtype dtype) => dtype switch
    {
        TensorDtype.F64 or TensorDtype.I64 => 8,
        TensorDtype.F32 or TensorDtype.I32 => 4,
        TensorDtype.F16 or TensorDtype.BF16 or TensorDtype.I16 => 2,
        _ => 1,
    };

    /// <inheritdoc />
    public void Dispose()
    {
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _mapping?.Dispose();
    }

    private static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(
        byte[] header, string label, long dataStart, long dataLength)
    {
        return JsonFile.Parse(header, $"{label}: header", root =>
        {
            if (root.ValueKind != JsonValueKind.Object)
                throw new LookaheadException($"{label}: header must be a JSON object");
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty property in root.EnumerateObject())
            {
                if (property.Name == "__metadata__")
                {
                    ParseMetadata(property.Value, label, metadata);
                    continue;
                }
                if (tensors.ContainsKey(property.Name))
                    throw new LookaheadException($"{label}: tensor '{property.Name}' appears twice in the header");
                tensors.Add(property.Name, ParseTensor(property.Name, property.Value, label, dataStart, dataLength));
            }
            CheckNoOverlap(tensors.Values, label);
            return (tensors, metadata);
        });
    }

    private static void ParseMetadata(JsonElement value, string label, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw new LookaheadException($"{label}: __metadata__ must be an object of strings");
        foreach (JsonProperty entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new LookaheadException($"{label}: __metadata__ value '{entry.Name}' must be a string");
            metadata[entry.Name] = entry.Value.GetString()!;
        }
    }

    private static TensorInfo ParseTensor(string name, JsonElement value, string label, long dataStart, long dataLength)
    {
        string where = $"{label}: tensor '{name}'";
        if (value.ValueKind != JsonValueKind.Object) throw new LookaheadException($"{where} must be described by an object");
        if (!value.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new LookaheadException($"{where} has no dtype string");
        string dtypeName = dtypeElement.GetString()!;
        TensorDtype dtype = ParseDtype(dtypeName) ?? throw new LookaheadException($"{where} has unknown dtype '{dtypeName}'");

        if (!value.TryGetProperty("shape", out JsonElement shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw new LookaheadException($"{where} has no shape array");
        var shape = new long[shapeElement.GetArrayLength()];
        int index = 0;
        foreach (JsonElement dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long size) || size < 0)
                throw new LookaheadException($"{where} has an invalid shape dimension {dim.GetRawText()}");
            shape[index++] = size;
        }

        if (!value.TryGetProperty("data_offsets", out JsonElement offsets) || offsets.ValueKind != JsonValueKind.Array ||
            offsets.GetArrayLength() != 2 || offsets[0].ValueKind != JsonValueKind.Number ||
            offsets[1].ValueKind != JsonValueKind.Number || !offsets[0].TryGetInt64(out long begin) || !offsets[1].TryGetInt64(out long end))
            throw new LookaheadException($"{where} needs data_offsets [begin, end] of integers");
        if (begin < 0 || end < begin || end > dataLength)
            throw new LookaheadException($"{where} has data_offsets [{begin}, {end}] outside the data section of {dataLength} bytes");

        long expected;
        try
        {
            expected = checked(shape.Aggregate(1L, (product, dim) => product * dim) * ElementSize(dtype));
        }
        catch (OverflowException)
        {
            throw new LookaheadException($"{where} has a shape too large to address");
        }
        if (end - begin != expected)
            throw new LookaheadException(
                $"{where} has {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtypeName} needs {expected}");
        return new TensorInfo(name, dtype, shape, dataStart + begin, end - begin);
    }

    private static void CheckNoOverlap(IEnumerable<TensorInfo> tensors, string label)
    {
        TensorInfo? previous = null;
        foreach (TensorInfo tensor in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.DataOffset))
        {
            if (previous is not null && tensor.DataOffset < previous.DataOffset + previous.ByteLength)
                throw new LookaheadException($"{label}: tensors '{previous.Name}' and '{tensor.Name}' overlap in the data section");
            previous = tensor;
        }
    }

    private static TensorDtype? ParseDtype(string name) => name switch
    {
        "F32" => TensorDtype.F32,
        "F16" => TensorDtype.F16,
        "BF16" => TensorDtype.BF16,
        "F64" => TensorDtype.F64,
        "I64" => TensorDtype.I64,
        "I32" => TensorDtype.I32,
        "I16" => TensorDtype.I16,
        "I8" => TensorDtype.I8,
        "U8" => TensorDtype.U8,
        "BOOL" => TensorDtype.Bool,
        "F8_E4M3" => TensorDtype.F8E4M3,
        "F8_E5M2" => TensorDtype.F8E5M2,
        _ => null,
    };
}
