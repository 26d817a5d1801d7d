using System.Text;

namespace Lookahead.Tokenization;

/// <summary>One piece of a SentencePiece model: its text, score and type (1 normal, 2 unknown, 3 control,
/// 4 user-defined, 5 unused, 6 byte: the numbering SentencePiece and GGUF's token_type share).</summary>
internal sealed record SentencePiece(string Text, float Score, int Type);

/// <summary>
/// The few fields of SentencePiece's ModelProto (sentencepiece_model.proto) this library reads and writes:
/// the pieces, and for writing the trainer and normalizer settings of a Llama-style BPE model. A GGUF
/// "llama" vocabulary is written out as such a model so that the same SentencePiece tokenizer
/// (Microsoft.ML.Tokenizers' LlamaTokenizer) encodes it as it encodes a tokenizer.model.
/// </summary>
internal static class SentencePieceProto
{
    /// <summary>The pieces of a serialized ModelProto (field 1), in id order.</summary>
    /// <exception cref="LookaheadException">The bytes are not a well-formed protobuf message.</exception>
    public static List<SentencePiece> ReadPieces(byte[] model)
    {
        var pieces = new List<SentencePiece>();
        int i = 0;
        while (i < model.Length)
        {
            (int field, int wire) = Key(model, ref i);
            if (field == 1 && wire == 2)
            {
                int length = checked((int)Varint(model, ref i));
                if (length < 0 || length > model.Length - i) throw Malformed();
                pieces.Add(ReadPiece(model.AsSpan(i, length)));
                i += length;
            }
            else Skip(model, ref i, wire);
        }
        return pieces;
    }

    /// <summary>A ModelProto of a BPE model with byte fallback, as Llama's tokenizer.model is: the pieces,
    /// the special ids, and whitespace escaped to U+2581 with a dummy prefix when addDummyPrefix.</summary>
    public static byte[] WriteBpeModel(IReadOnlyList<SentencePiece> pieces, int unkId, int bosId, int eosId, bool addDummyPrefix)
    {
        using var stream = new MemoryStream();
        foreach (SentencePiece piece in pieces)
        {
            using var entry = new MemoryStream();
            WriteBytes(entry, 1, Encoding.UTF8.GetBytes(piece.Text));
            WriteKey(entry, 2, 5);
            entry.Write(BitConverter.GetBytes(piece.Score));
            WriteVarintField(entry, 3, (ulong)piece.Type);
            WriteBytes(stream, 1, entry.ToArray());
        }
        using (var trainer = new MemoryStream())
        {
            WriteVarintField(trainer, 3, 2);  // model_type BPE
            WriteVarintField(trainer, 4, (ulong)pieces.Count);
            WriteVarintField(trainer, 35, pieces.Any(p => p.Type == 6) ? 1UL : 0UL);  // byte_fallback
            WriteVarintField(trainer, 40, unchecked((ulong)(long)unkId));
            WriteVarintField(trainer, 41, unchecked((ulong)(long)bosId));
            WriteVarintField(trainer, 42, unchecked((ulong)(long)eosId));
            WriteVarintField(trainer, 43, unchecked((ulong)-1L));  // no padding piece
            WriteBytes(stream, 2, trainer.ToArray());
        }
        using (var normalizer = new MemoryStream())
        {
            WriteBytes(normalizer, 1, "identity"u8.ToArray());
            WriteVarintField(normalizer, 3, addDummyPrefix ? 1UL : 0UL);
            WriteVarintField(normalizer, 4, 0);  // remove_extra_whitespaces: off, as in Llama's
            WriteVarintField(normalizer, 5, 1);  // escape_whitespaces
            WriteBytes(stream, 3, normalizer.ToArray());
        }
        return stream.ToArray();
    }

    private static SentencePiece ReadPiece(ReadOnlySpan<byte> message)
    {
        byte[] bytes = message.ToArray();
        string text = "";
        float score = 0;
        int type = 1;
        int i = 0;
        while (i < bytes.Length)
        {
            (int field, int wire) = Key(bytes, ref i);
            if (field == 1 && wire == 2)
            {
                int length = checked((int)Varint(bytes, ref i));
                if (length < 0 || length > bytes.Length - i) throw Malformed();
                text = Encoding.UTF8.GetString(bytes, i, length);
                i += length;
            }
            else if (field == 2 && wire == 5)
            {
                if (bytes.Length - i < 4) throw Malformed();
                score = BitConverter.ToSingle(bytes, i);
                i += 4;
            }
            else if (field == 3 && wire == 0) type = (int)Varint(bytes, ref i);
            else Skip(bytes, ref i, wire);
        }
        return new SentencePiece(text, score, type);
    }

    private static (int Field, int Wire) Key(byte[] bytes, ref int i)
    {
        ulong key = Varint(bytes, ref i);
        return ((int)(key >> 3), (int)(key & 7));
    }

    private static ulong Varint(byte[] bytes, ref int i)
    {
        ulong result = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (i >= bytes.Length) throw Malformed();
            byte b = bytes[i++];
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return result;
        }
        throw Malformed();
    }

    private static void Skip(byte[] bytes, ref int i, int wire)
    {
        long skip = wire switch
        {
            0 => 0,
            1 => 8,
            2 => (long)Varint(bytes, ref i),
            5 => 4,
            _ => throw Malformed(),
        };
        if (wire == 0) Varint(bytes, ref i);
        if (skip < 0 || skip > bytes.Length - i) throw Malformed();
        i += (int)skip;
    }

    private static LookaheadException Malformed() => new("tokenizer.model is not a well-formed SentencePiece model");

    private static void WriteKey(Stream s, int field, int wire) => WriteVarint(s, (ulong)(field << 3 | wire));

    private static void WriteVarintField(Stream s, int field, ulong value)
    {
        WriteKey(s, field, 0);
        WriteVarint(s, value);
    }

    private static void WriteBytes(Stream s, int field, byte[] value)
    {
        WriteKey(s, field, 2);
        WriteVarint(s, (ulong)value.Length);
        s.Write(value);
    }

    private static void WriteVarint(Stream s, ulong value)
    {
        while (value >= 0x80)
        {
            s.WriteByte((byte)(value | 0x80));
            value >>= 7;
        }
        s.WriteByte((byte)value);
    }
}
