using System.Text;
using System.Text.Json;

namespace Lookahead.Model;

/// <summary>Writes a .safetensors file: tensors are laid out in the order added, 8-byte aligned header.</summary>
public sealed class SafeTensorsWriter
{
    private readonly List<(string Name, TensorDtype Dtype, long[] Shape, byte[] Data)> _tensors = [];

    /// <summary>Adds a tensor with its raw little-endian bytes.</summary>
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
        using var headerStream = new MemoryStream();
        using (var json = new Utf8JsonWriter(headerStream))
        {
            json.WriteStartObject();
            long offset = 0;
            foreach (var tensor in _tensors)
            {
                json.WriteStartObject(tensor.Name);
                json.WriteString("dtype", DtypeName(tensor.Dtype));
                json.WriteStartArray("shape");
                foreach (long dim in tensor.Shape) json.WriteNumberValue(dim);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + tensor.Data.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += tensor.Data.Length;
            }
            json.WriteEndObject();
        }
        byte[] header = headerStream.ToArray();
        int padding = (8 - header.Length % 8) % 8;

        string temporary = path + ".partial";
        using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        {
            file.Write(BitConverter.GetBytes((ulong)(header.Length + padding)));
            file.Write(header);
            file.Write(Encoding.ASCII.GetBytes(new string(' ', padding)));
            foreach (var tensor in _tensors) file.Write(tensor.Data);
        }
        File.Move(temporary, path, overwrite: true);
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
