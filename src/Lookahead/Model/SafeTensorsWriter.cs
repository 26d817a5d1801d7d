using System.Buffers.Binary;
using System.Text.Json;

namespace Lookahead.Model;

/// <summary>Writes a .safetensors file: tensors are laid out in the order added, 8-byte aligned header.</summary>
public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, TensorDtype Dtype, long[] Shape, byte[] Data)> _tensors = [];

    /// <summary>Adds a tensor with its raw little-endian bytes.</summary>
    /// <exception cref="ArgumentException">data does not hold the bytes the shape and dtype need.</exception>
    public SafeTensorsWriter Add(string name, TensorDtype dtype, long[] shape, byte[] data)
    {
        long expected = shape.Aggregate(1L, (p, d) => p * d) * SafeTensorsFile.ElementSize(dtype);
        if (data.Length != expected)
            throw new ArgumentException($"tensor '{name}': {data.Length} bytes given, shape needs {expected}", nameof(data));
        _tensors.Add((name, dtype, shape, data));
        return this;
    }

    /// <summary>Writes the file, replacing any existing one only once it is complete.</summary>
    public void Write(string path)
    {
        byte[] header = Header(_tensors.Select(t => (t.Name, t.Dtype, t.Shape)));
        string temporary = path + ".partial";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            file.Write(header);
            foreach (var tensor in _tensors) file.Write(tensor.Data);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>
    /// The bytes before the tensor data: the 8-byte header length, then the JSON header (padded with spaces
    /// to a multiple of 8) describing the tensors laid out back to back in the order given.
    /// </summary>
    internal static byte[] Header(IEnumerable<(string Name, TensorDtype Dtype, long[] Shape)> tensors)
    {
        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            long offset = 0;
            foreach ((string name, TensorDtype dtype, long[] shape) in tensors)
            {
                long bytes = shape.Aggregate(1L, (p, d) => p * d) * SafeTensorsFile.ElementSize(dtype);
                json.WriteStartObject(name);
                json.WriteString("dtype", DtypeName(dtype));
                json.WriteStartArray("shape");
                foreach (long dim in shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - headerStream.Length % 8) % 8);
        for (int i = 0; i < padding; i++) headerStream.WriteByte((byte)' ');
        var result = new byte[8 + headerStream.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)headerStream.Length);
        headerStream.ToArray().CopyTo(result, 8);
        return result;
    }

    /// <summary>The dtype's name in safetensors headers.</summary>
    public static string DtypeName(TensorDtype dtype) => dtype switch
    {
        TensorDtype.Bool => "BOOL",
        TensorDtype.F8E4M3 => "F8_E4M3",
        TensorDtype.F8E5M2 => "F8_E5M2",
        _ => dtype.ToString().ToUpperInvariant(),
    };
}
