using System.Text;
using Lookahead.Interop;
using Lookahead.Tokenization;

namespace Lookahead.Model.Gguf;

/// <summary>
/// Exports one of our Llama model folders to GGUF (version 3) for llama.cpp: F32 or F16 tensors, the
/// llama.* hyper-parameters, and a vocabulary: a tokenizer.model's pieces with their scores and types, or
/// placeholder pieces for folders without one (what is exported then drives llama.cpp by token ids only).
/// Hugging Face q/k rows are in rotate-half RoPE order; llama.cpp's llama architecture wants Meta's
/// interleaved order, so that permutation is undone.
/// </summary>
internal static class GgufWriter
{
    private const uint TypeUInt32 = 4, TypeFloat32 = 6, TypeString = 8, TypeArray = 9, TypeInt32 = 5;
    private const uint GgmlF32 = 0, GgmlF16 = 1;
    private const int Alignment = 32;

    public static void Write(LanguageModel model, string path, bool f16)
    {
        ModelConfig c = model.Config;
        using ModelCheckpoint checkpoint = ModelCheckpoint.Open(model.Folder);
        var tensors = new List<(string Name, long Rows, long Cols, float[] Data)>();
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
        // Every tensor the loader maps (TensorMap), under llama.cpp's name; vectors as one row.
        foreach (TensorSlot slot in TensorMap.Slots(c))
        {
            float[] data = Read(slot.Name);
            int heads = slot.Kind switch { TensorKind.AttnQ => c.NumHeads, TensorKind.AttnK => c.NumKvHeads, _ => 0 };
            if (heads > 0) data = ToInterleavedRope(data, heads, slot.Rows / heads, slot.Cols);
            (long rows, long cols) = slot.Cols == 1 ? (1L, slot.Rows) : (slot.Rows, slot.Cols);
            tensors.Add((GgufName(slot), rows, cols, data));
        }

        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using var w = new BinaryWriter(stream);
        w.Write(Encoding.ASCII.GetBytes("GGUF"));
        w.Write(3u);
        w.Write((ulong)tensors.Count);
        var metadata = Metadata(model).ToList();
        w.Write((ulong)metadata.Count);
        foreach (Action<BinaryWriter> entry in metadata) entry(w);

        ulong offset = 0;
        foreach (var t in tensors)
        {
            // Norm vectors stay F32 (llama.cpp expects it); matrices take the requested type.
            bool half = f16 && t.Rows > 1;
            WriteString(w, t.Name);
            if (t.Rows == 1)
            {
                w.Write(1u);
                w.Write((ulong)t.Cols);
            }
            else
            {
                w.Write(2u);
                w.Write((ulong)t.Cols);  // ggml's ne[0] is the innermost dimension
                w.Write((ulong)t.Rows);
            }
            w.Write(half ? GgmlF16 : GgmlF32);
            w.Write(offset);
            offset += Align((ulong)t.Data.Length * (half ? 2UL : 4UL));
        }
        Pad(w);
        foreach (var t in tensors)
        {
            bool half = f16 && t.Rows > 1;
            foreach (float v in t.Data)
            {
                if (half) w.Write((Half)v);
                else w.Write(v);
            }
            Pad(w);
        }
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

    private static IEnumerable<Action<BinaryWriter>> Metadata(LanguageModel model)
    {
        ModelConfig c = model.Config;
        yield return w => String(w, "general.architecture", "llama");
        yield return w => String(w, "general.name", Path.GetFileName(model.Folder));
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
        List<SentencePiece> vocabulary = Vocabulary(model);
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
    private static List<SentencePiece> Vocabulary(LanguageModel model)
    {
        string path = Path.Combine(model.Folder, "tokenizer.model");
        List<SentencePiece> pieces = File.Exists(path) ? SentencePieceProto.ReadPieces(File.ReadAllBytes(path)) : [];
        if (pieces.Count > model.Config.VocabSize) pieces.RemoveRange(model.Config.VocabSize, pieces.Count - model.Config.VocabSize);
        for (int i = pieces.Count; i < model.Config.VocabSize; i++)
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
