using System.Text;
using Lookahead.Interop;
using Lookahead.Tokenization;

namespace Lookahead.Model.Gguf;

/// <summary>What a GGUF export stores its matrices as (norm vectors are F32 in every file).</summary>
public enum GgufFileType
{
    /// <summary>Every tensor F32.</summary>
    F32,
    /// <summary>Matrices F16.</summary>
    F16,
    /// <summary>Matrices Q8_0 (F16 where a row is not whole blocks of 32).</summary>
    Q8_0,
    /// <summary>llama.cpp's Q4_K_M mix: matrices Q4_K; the output matrix, and attn_v and ffn_down in the
    /// first and last eighth of the layers and every third layer between, Q6_K. A matrix whose rows are not
    /// whole blocks of 256 falls back as llama.cpp's does: Q5_0 for Q4_K, Q8_0 for Q6_K (F16 where rows are not
    /// whole blocks of 32 either).</summary>
    Q4_K_M,
}

/// <summary>
/// Exports one of our Llama model folders to GGUF (version 3), for llama.cpp and for our own loader: the
/// tensors as a GgufFileType says, the llama.* hyper-parameters, and a vocabulary: a tokenizer.model's
/// pieces with their scores and types, or placeholder pieces for folders without one (what is exported
/// then drives a runtime by token ids only). Hugging Face q/k rows are in rotate-half RoPE order; llama.cpp's
/// llama architecture wants Meta's interleaved order, so that permutation is undone.
/// </summary>
internal static class GgufWriter
{
    private const uint TypeUInt32 = 4, TypeFloat32 = 6, TypeString = 8, TypeArray = 9, TypeInt32 = 5;
    private const int Alignment = 32;

    public static void Write(string folder, string path, GgufFileType fileType, IProgress<double>? progress = null)
    {
        if (LanguageModel.IsGguf(folder))
            throw new LookaheadException($"{Path.GetFileName(folder)} is a GGUF file: exports are made from a model folder (config.json and safetensors)");
        ModelConfig c = ModelConfig.Load(Path.Combine(folder, "config.json"));
        using ModelCheckpoint checkpoint = ModelCheckpoint.Open(folder);
        float[] Read(string name)
        {
            if (!checkpoint.TryGetTensor(name, out SafeTensorsFile file, out TensorInfo info))
                throw new LookaheadException($"tensor '{name}' is missing");
            ReadOnlySpan<byte> bytes = file.GetSpan(info);
            var values = new float[info.ElementCount];
            for (long i = 0; i < values.Length; i++)
            {
                values[i] = info.Dtype switch
                {
                    TensorDtype.F32 => BitConverter.ToSingle(bytes.Slice((int)(i * 4), 4)),
                    TensorDtype.F16 => (float)BitConverter.ToHalf(bytes.Slice((int)(i * 2), 2)),
                    _ => BitConverter.UInt32BitsToSingle((uint)BitConverter.ToUInt16(bytes.Slice((int)(i * 2), 2)) << 16),
                };
            }
            return values;
        }
        // Every tensor the loader maps (TensorMap), under llama.cpp's name, in its file type.
        var tensors = new List<(string Name, GgmlType Type, ulong[] Dims, byte[] Data)>();
        List<TensorSlot> slots = TensorMap.Slots(c).ToList();
        foreach (TensorSlot slot in slots)
        {
            float[] data = Read(slot.Name);
            int heads = slot.Kind switch { TensorKind.AttnQ => c.NumHeads, TensorKind.AttnK => c.NumKvHeads, _ => 0 };
            if (heads > 0) data = ToInterleavedRope(data, heads, slot.Rows / heads, slot.Cols);
            GgmlType type = slot.Cols == 1 ? GgmlType.F32 : MatrixType(fileType, slot, c.NumLayers);
            byte[] bytes = type switch
            {
                GgmlType.F32 => Floats(data),
                GgmlType.F16 => Halves(data),
                _ => BlockQuantizer.Quantize(type, data),
            };
            ulong[] dims = slot.Cols == 1 ? [(ulong)slot.Rows] : [(ulong)slot.Cols, (ulong)slot.Rows];  // ggml's ne[0] is innermost
            tensors.Add((GgufName(slot), type, dims, bytes));
            progress?.Report((double)tensors.Count / slots.Count);
        }

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new BinaryWriter(stream);
        w.Write(Encoding.ASCII.GetBytes("GGUF"));
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        var metadata = Metadata(c, folder, fileType).ToList();
        w.Write((ulong)metadata.Count);
        foreach (Action<BinaryWriter> entry in metadata) entry(w);

        ulong offset = 0;
        foreach (var t in tensors)
        {
            WriteString(w, t.Name);
            w.Write((uint)t.Dims.Length);
            foreach (ulong d in t.Dims) w.Write(d);
            w.Write((uint)t.Type);
            w.Write(offset);
            offset += Align((ulong)t.Data.Length);
        }
        Pad(w);
        foreach (var t in tensors)
        {
            w.Write(t.Data);
            Pad(w);
        }
    }

    /// <summary>The type a matrix is stored as in a file of the given type.</summary>
    public static GgmlType MatrixType(GgufFileType fileType, TensorSlot slot, int layers)
    {
        GgmlType wanted = fileType switch
        {
            GgufFileType.F32 => GgmlType.F32,
            GgufFileType.F16 => GgmlType.F16,
            GgufFileType.Q8_0 => GgmlType.Q8_0,
            _ => slot.Kind == TensorKind.Output || (slot.Kind is TensorKind.AttnV or TensorKind.FfnDown && MoreBits(slot.Layer, layers))
                ? GgmlType.Q6_K
                : GgmlType.Q4_K,
        };
        // llama.cpp's fallbacks where a row is not whole super-blocks: Q5_0 for Q4_K, Q8_0 for Q6_K.
        if (slot.Cols % 256 != 0) wanted = wanted switch { GgmlType.Q4_K => GgmlType.Q5_0, GgmlType.Q6_K => GgmlType.Q8_0, _ => wanted };
        if (wanted is GgmlType.Q8_0 or GgmlType.Q5_0 && slot.Cols % 32 != 0) wanted = GgmlType.F16;
        return wanted;
    }

    // llama.cpp's use_more_bits: the first and last eighth of the layers, and every third one between.
    private static bool MoreBits(int layer, int layers) =>
        layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;

    private static byte[] Floats(float[] values)
    {
        var bytes = new byte[values.Length * 4];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return bytes;
    }

    private static byte[] Halves(float[] values)
    {
        var bytes = new byte[values.Length * 2];
        for (int i = 0; i < values.Length; i++) BitConverter.TryWriteBytes(bytes.AsSpan(2 * i), (Half)values[i]);
        return bytes;
    }

    // Biases have no tensor in the llama architecture this writer targets.
    private static string GgufName(TensorSlot slot) => slot.Kind is TensorKind.AttnQBias or TensorKind.AttnKBias or TensorKind.AttnVBias
        ? throw new LookaheadException($"{slot.Name}: q/k/v biases (Qwen2) have no llama GGUF tensor")
        : GgufCheckpoint.GgufName(slot);

    // HF (rotate-half) row order back to Meta's interleaved order, per head: Meta row 2i is HF row i and
    // Meta row 2i + 1 is HF row half + i.
    private static float[] ToInterleavedRope(float[] hf, int heads, long rowsPerHead, long cols)
    {
        var meta = new float[hf.Length];
        long half = rowsPerHead / 2;
        for (int h = 0; h < heads; h++)
        {
            for (long i = 0; i < half; i++)
            {
                Array.Copy(hf, (h * rowsPerHead + i) * cols, meta, (h * rowsPerHead + 2 * i) * cols, cols);
                Array.Copy(hf, (h * rowsPerHead + half + i) * cols, meta, (h * rowsPerHead + 2 * i + 1) * cols, cols);
            }
        }
        return meta;
    }

    // llama_ftype numbers, as llama.cpp records a file's main type.
    private static uint FileTypeNumber(GgufFileType type) => type switch
    {
        GgufFileType.F32 => 0,
        GgufFileType.F16 => 1,
        GgufFileType.Q8_0 => 7,
        _ => 15,
    };

    private static IEnumerable<Action<BinaryWriter>> Metadata(ModelConfig c, string folder, GgufFileType fileType)
    {
        yield return w => String(w, "general.architecture", "llama");
        yield return w => UInt32(w, "general.file_type", FileTypeNumber(fileType));
        yield return w => String(w, "general.name", Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar)));
        yield return w => UInt32(w, "general.alignment", Alignment);
        yield return w => UInt32(w, "llama.context_length", (uint)c.MaxPositionEmbeddings);
        yield return w => UInt32(w, "llama.embedding_length", (uint)c.HiddenSize);
        yield return w => UInt32(w, "llama.block_count", (uint)c.NumLayers);
        yield return w => UInt32(w, "llama.feed_forward_length", (uint)c.IntermediateSize);
        yield return w => UInt32(w, "llama.rope.dimension_count", (uint)c.HeadDim);
        yield return w => UInt32(w, "llama.attention.head_count", (uint)c.NumHeads);
        yield return w => UInt32(w, "llama.attention.head_count_kv", (uint)c.NumKvHeads);
        yield return w => Float32(w, "llama.attention.layer_norm_rms_epsilon", c.RmsNormEps);
        yield return w => Float32(w, "llama.rope.freq_base", c.RopeTheta);
        yield return w => UInt32(w, "llama.vocab_size", (uint)c.VocabSize);
        yield return w => String(w, "tokenizer.ggml.model", "llama");
        yield return w => UInt32(w, "tokenizer.ggml.bos_token_id", (uint)(c.BosTokenId ?? 1));
        yield return w => UInt32(w, "tokenizer.ggml.eos_token_id", (uint)(c.EosTokenIds.Count > 0 ? c.EosTokenIds[0] : 2));
        List<SentencePiece> vocabulary = Vocabulary(c, folder);
        string[] pieces = vocabulary.Select(p => p.Text).ToArray();
        yield return w =>
        {
            WriteString(w, "tokenizer.ggml.tokens");
            w.Write(TypeArray);
            w.Write(TypeString);
            w.Write((ulong)pieces.Length);
            foreach (string piece in pieces) WriteString(w, piece);
        };
        yield return w =>
        {
            WriteString(w, "tokenizer.ggml.scores");
            w.Write(TypeArray);
            w.Write(TypeFloat32);
            w.Write((ulong)pieces.Length);
            foreach (SentencePiece piece in vocabulary) w.Write(piece.Score);
        };
        yield return w =>
        {
            WriteString(w, "tokenizer.ggml.token_type");
            w.Write(TypeArray);
            w.Write(TypeInt32);
            w.Write((ulong)pieces.Length);
            foreach (SentencePiece piece in vocabulary) w.Write(piece.Type);
        };
    }

    // The pieces by id: a tokenizer.model's (rows beyond it as placeholders), or placeholders alone:
    // 0 unknown, 1 and 2 control (BOS, EOS), the rest normal pieces that no text encodes to.
    private static List<SentencePiece> Vocabulary(ModelConfig c, string folder)
    {
        string path = Path.Combine(folder, "tokenizer.model");
        List<SentencePiece> pieces = File.Exists(path) ? SentencePieceProto.ReadPieces(File.ReadAllBytes(path)) : [];
        if (pieces.Count > c.VocabSize) pieces.RemoveRange(c.VocabSize, pieces.Count - c.VocabSize);
        for (int i = pieces.Count; i < c.VocabSize; i++)
            pieces.Add(i switch
            {
                0 => new SentencePiece("<unk>", 0, 2),
                1 => new SentencePiece("<s>", 0, 3),
                2 => new SentencePiece("</s>", 0, 3),
                _ => new SentencePiece($"<piece{i}>", 0, 1),
            });
        return pieces;
    }

    private static void String(BinaryWriter w, string key, string value)
    {
        WriteString(w, key);
        w.Write(TypeString);
        WriteString(w, value);
    }

    private static void UInt32(BinaryWriter w, string key, uint value)
    {
        WriteString(w, key);
        w.Write(TypeUInt32);
        w.Write(value);
    }

    private static void Float32(BinaryWriter w, string key, float value)
    {
        WriteString(w, key);
        w.Write(TypeFloat32);
        w.Write(value);
    }

    private static void WriteString(BinaryWriter w, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static ulong Align(ulong value) => (value + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w)
    {
        long padding = (long)Align((ulong)w.BaseStream.Position) - w.BaseStream.Position;
        for (long i = 0; i < padding; i++) w.Write((byte)0);
    }
}
