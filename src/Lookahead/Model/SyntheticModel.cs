using Lookahead.Interop;
using System.Buffers.Binary;
using System.Text.Json;

namespace Lookahead.Model;

/// <summary>
/// Writes complete Hugging Face model folders of real shapes with seeded random weights. Speed does not
/// depend on weight values, so these measure throughput honestly; acceptance rates need a real model.
/// Tensors are generated and written in chunks (a 7B folder never sits in memory), shards are cut above
/// 4 GiB, and every file is written under a temporary name and renamed when complete.
/// </summary>
public static class SyntheticModel
{
    private const long DefaultShardBytes = 4L << 30;
    private const int ChunkElements = 1 << 20;

    /// <summary>The shapes this writer knows: models/shapes.tsv, embedded in this assembly.</summary>
    public static readonly IReadOnlyList<SyntheticShape> Shapes = ReadShapes();

    /// <summary>Looks a shape up by name (case-insensitive).</summary>
    /// <exception cref="ArgumentException">No shape has that name (the message lists them).</exception>
    public static SyntheticShape Find(string name) =>
        Shapes.FirstOrDefault(s => string.Equals(s.Name, name, StringComparison.OrdinalIgnoreCase)) ??
        throw new ArgumentException($"unknown shape '{name}' (known: {string.Join(", ", Shapes.Select(s => s.Name))})", nameof(name));

    private static List<SyntheticShape> ReadShapes()
    {
        using Stream stream = typeof(SyntheticModel).Assembly.GetManifestResourceStream("Lookahead.shapes.tsv")
            ?? throw new InvalidOperationException("the embedded shapes table (models/shapes.tsv) is missing from this build");
        using var reader = new StreamReader(stream);
        var shapes = new List<SyntheticShape>();
        var invariant = System.Globalization.CultureInfo.InvariantCulture;
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line.StartsWith('#')) continue;
            string[] f = line.Split('\t');
            if (f.Length != 10) throw new InvalidOperationException($"models/shapes.tsv: '{line}' has {f.Length} columns, not 10");
            int Int(int i) => int.Parse(f[i], invariant);
            shapes.Add(new SyntheticShape(f[0], Int(1), Int(2), Int(3), Int(4), Int(5), Int(6), Int(7),
                double.Parse(f[8], invariant), f[9] == "1"));
        }
        return shapes;
    }

    /// <summary>Writes config.json and the safetensors file(s) into an empty or new folder.</summary>
    /// <exception cref="ArgumentException">dtype is not F32, F16 or BF16.</exception>
    /// <exception cref="LookaheadException">folder is a file or a folder that is not empty.</exception>
    /// <exception cref="IOException">A file cannot be written.</exception>
    public static void Write(SyntheticShape shape, TensorDtype dtype, string folder, int seed, IProgress<double>? progress = null) =>
        Write(shape, dtype, folder, seed, progress, DefaultShardBytes);

    /// <summary>As above, cutting shards above shardBytes (tests use small shards).</summary>
    internal static void Write(SyntheticShape shape, TensorDtype dtype, string folder, int seed, IProgress<double>? progress,
        long shardBytes)
    {
        if (dtype is not (TensorDtype.F32 or TensorDtype.F16 or TensorDtype.BF16))
            throw new ArgumentException($"dtype {dtype} is not supported for synthetic models (F32, F16, BF16)", nameof(dtype));
        if (File.Exists(folder)) throw new LookaheadException($"'{folder}' is a file, not a folder");
        if (Directory.Exists(folder) && Directory.EnumerateFileSystemEntries(folder).Any())
            throw new LookaheadException($"output folder '{folder}' is not empty");
        Directory.CreateDirectory(folder);

        List<(string Name, long[] Shape, float Center, float Scale)> tensors = Tensors(shape);
        int elementSize = SafeTensorsFile.ElementSize(dtype);
        var shards = new List<List<int>> { new() };
        long shardSize = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            long bytes = tensors[i].Shape.Aggregate(1L, (a, b) => a * b) * elementSize;
            if (shardSize > 0 && shardSize + bytes > shardBytes)
            {
                shards.Add([]);
                shardSize = 0;
            }
            shards[^1].Add(i);
            shardSize += bytes;
        }

        long totalElements = tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)), written = 0;
        var weightMap = new Dictionary<string, string>();
        for (int s = 0; s < shards.Count; s++)
        {
            string file = shards.Count == 1 ? "model.safetensors" : $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            WriteShard(Path.Combine(folder, file), shards[s].Select(i => tensors[i]).ToList(), dtype, seed, tensors,
                count =>
                {
                    written += count;
                    progress?.Report((double)written / totalElements);
                });
            foreach (int i in shards[s]) weightMap[tensors[i].Name] = file;
        }
        if (shards.Count > 1)
            WriteAtomically(Path.Combine(folder, "model.safetensors.index.json"), Index(totalElements * elementSize, weightMap));
        WriteAtomically(Path.Combine(folder, "config.json"), Config(shape, dtype));
    }

    // The tensors the loader expects for this shape (TensorMap), with random values around 1 for norm
    // weights and around 0 otherwise.
    private static List<(string Name, long[] Shape, float Center, float Scale)> Tensors(SyntheticShape s) =>
        TensorMap.Slots(s.ToConfig()).Select(slot => (
            slot.Name,
            slot.Cols == 1 ? new[] { slot.Rows } : new[] { slot.Rows, slot.Cols },
            slot.Kind is TensorKind.AttnNorm or TensorKind.FfnNorm or TensorKind.OutputNorm ? 1f : 0f,
            slot.Kind switch
            {
                TensorKind.AttnNorm or TensorKind.FfnNorm or TensorKind.OutputNorm => 0.1f,
                TensorKind.TokenEmbedding => 0.5f,
                _ => 0.02f,
            })).ToList();

    private static void WriteShard(string path, List<(string Name, long[] Shape, float Center, float Scale)> tensors,
        TensorDtype dtype, int seed, List<(string Name, long[] Shape, float Center, float Scale)> all, Action<long> advanced)
    {
        int elementSize = SafeTensorsFile.ElementSize(dtype);
        byte[] header = SafeTensorsWriter.Header(tensors.Select(t => (t.Name, dtype, t.Shape)));
        string temporary = path + ".partial";
        try
        {
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                file.Write(header);
                var chunk = new byte[ChunkElements * elementSize];
                foreach (var t in tensors)
                {
                    long count = t.Shape.Aggregate(1L, (a, b) => a * b);
                    ulong state = Mix((ulong)seed * 0x9E3779B97F4A7C15UL + (ulong)all.IndexOf(t) + 1);
                    for (long done = 0; done < count; done += ChunkElements)
                    {
                        int n = (int)Math.Min(ChunkElements, count - done);
                        Fill(chunk.AsSpan(0, n * elementSize), n, dtype, t.Center, t.Scale, ref state);
                        file.Write(chunk, 0, n * elementSize);
                        advanced(n);
                    }
                }
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch
        {
            File.Delete(temporary);
            throw;
        }
    }

    private static void Fill(Span<byte> bytes, int n, TensorDtype dtype, float center, float scale, ref ulong state)
    {
        for (int i = 0; i < n; i++)
        {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            float value = center + scale * ((state >> 40) / 8388608.0f - 1.0f);
            switch (dtype)
            {
                case TensorDtype.F32: BinaryPrimitives.WriteSingleLittleEndian(bytes[(i * 4)..], value); break;
                case TensorDtype.F16: BinaryPrimitives.WriteHalfLittleEndian(bytes[(i * 2)..], (Half)value); break;
                default:
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes[(i * 2)..], BFloat16.FromSingle(value));
                    break;
            }
        }
    }

    private static ulong Mix(ulong x)
    {
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBUL;
        return (x ^ (x >> 31)) | 1;
    }

    private static byte[] Config(SyntheticShape s, TensorDtype dtype)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("architectures");
            json.WriteStringValue("LlamaForCausalLM");
            json.WriteEndArray();
            json.WriteString("model_type", "llama");
            json.WriteNumber("vocab_size", s.VocabSize);
            json.WriteNumber("hidden_size", s.HiddenSize);
            json.WriteNumber("intermediate_size", s.IntermediateSize);
            json.WriteNumber("num_hidden_layers", s.NumLayers);
            json.WriteNumber("num_attention_heads", s.NumHeads);
            json.WriteNumber("num_key_value_heads", s.NumKvHeads);
            json.WriteNumber("max_position_embeddings", s.MaxPositionEmbeddings);
            json.WriteNumber("rms_norm_eps", 1e-5);
            json.WriteNumber("rope_theta", s.RopeTheta);
            json.WriteString("hidden_act", "silu");
            json.WriteBoolean("tie_word_embeddings", s.TieWordEmbeddings);
            json.WriteNumber("bos_token_id", 1);
            json.WriteNumber("eos_token_id", 2);
            json.WriteString("torch_dtype", dtype switch { TensorDtype.F32 => "float32", TensorDtype.F16 => "float16", _ => "bfloat16" });
            json.WriteString("lookahead_synthetic", $"{s.Name} shape with random weights: for speed measurements only");
            json.WriteEndObject();
        }
        return stream.ToArray();
    }

    private static byte[] Index(long totalBytes, Dictionary<string, string> weightMap)
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalBytes);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach ((string name, string file) in weightMap) json.WriteString(name, file);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return stream.ToArray();
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        string temporary = path + ".partial";
        File.WriteAllBytes(temporary, bytes);
        File.Move(temporary, path, overwrite: true);
    }
}
