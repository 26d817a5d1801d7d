using System.Text;
using Lookahead.Model;

namespace Lookahead.Tests.Fixtures;

/// <summary>
/// Writes GGUF files for tests, independently of the library's writer: typed metadata, tensors of any ggml
/// type number, and the raw layout (version, alignment, offsets) open to corruption. FromFolder converts a
/// model folder the way llama.cpp's convert_hf_to_gguf.py does: llama.cpp's tensor names, ggml's reversed
/// dimensions, and (llama architecture) q/k rows permuted to Meta's interleaved RoPE order.
/// </summary>
public sealed class GgufBuilder
{
    private readonly List<(string Key, uint Type, Action<BinaryWriter> Write)> _metadata = [];
    private readonly List<(string Name, uint Type, ulong[] Dims, byte[] Data)> _tensors = [];

    public uint Version { get; set; } = 3;
    public int Alignment { get; set; } = 32;
    /// <summary>Added to every tensor's offset as written (to test misaligned or out-of-file offsets).</summary>
    public ulong OffsetSkew { get; set; }

    public GgufBuilder String(string key, string value) => Add(key, 8, w => WriteString(w, value));
    public GgufBuilder UInt32(string key, uint value) => Add(key, 4, w => w.Write(value));
    public GgufBuilder Float32(string key, float value) => Add(key, 6, w => w.Write(value));
    public GgufBuilder Bool(string key, bool value) => Add(key, 7, w => w.Write(value ? (byte)1 : (byte)0));
    public GgufBuilder Strings(string key, IReadOnlyList<string> values) => Add(key, 9, w =>
    {
        w.Write(8u);
        w.Write((ulong)values.Count);
        foreach (string v in values) WriteString(w, v);
    });
    public GgufBuilder Floats(string key, IReadOnlyList<float> values) => Add(key, 9, w =>
    {
        w.Write(6u);
        w.Write((ulong)values.Count);
        foreach (float v in values) w.Write(v);
    });
    public GgufBuilder Int32s(string key, IReadOnlyList<int> values) => Add(key, 9, w =>
    {
        w.Write(5u);
        w.Write((ulong)values.Count);
        foreach (int v in values) w.Write(v);
    });
    /// <summary>A metadata entry of any type number with the value bytes written by the caller.</summary>
    public GgufBuilder Raw(string key, uint type, Action<BinaryWriter> write) => Add(key, type, write);

    public GgufBuilder Tensor(string name, uint ggmlType, ulong[] dims, byte[] data)
    {
        _tensors.Add((name, ggmlType, dims, data));
        return this;
    }

    public byte[] Build()
    {
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream);
        w.Write("GGUF"u8.ToArray());
        w.Write(Version);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_metadata.Count);
        foreach ((string key, uint type, Action<BinaryWriter> write) in _metadata)
        {
            WriteString(w, key);
            w.Write(type);
            write(w);
        }
        ulong offset = 0;
        foreach ((string name, uint type, ulong[] dims, byte[] data) in _tensors)
        {
            WriteString(w, name);
            w.Write((uint)dims.Length);
            foreach (ulong d in dims) w.Write(d);
            w.Write(type);
            w.Write(offset + OffsetSkew);
            offset += Align((ulong)data.Length);
        }
        Pad(w);
        foreach ((_, _, _, byte[] data) in _tensors)
        {
            w.Write(data);
            Pad(w);
        }
        w.Flush();
        return stream.ToArray();
    }

    public string Write(string path)
    {
        File.WriteAllBytes(path, Build());
        return path;
    }

    /// <summary>A model folder (config.json and one safetensors file) as llama.cpp's converter writes it,
    /// tensors in their stored dtype (or every matrix as Q8_0 when q8: llama.cpp's quantize to Q8_0),
    /// without a vocabulary unless the caller adds one.</summary>
    public static GgufBuilder FromFolder(string folder, bool q8 = false)
    {
        ModelConfig c = ModelConfig.Load(Path.Combine(folder, "config.json"));
        bool qwen2 = c.Architecture == "Qwen2ForCausalLM";
        string arch = qwen2 ? "qwen2" : "llama";
        var b = new GgufBuilder()
            .String("general.architecture", arch)
            .UInt32($"{arch}.context_length", (uint)c.MaxPositionEmbeddings)
            .UInt32($"{arch}.embedding_length", (uint)c.HiddenSize)
            .UInt32($"{arch}.block_count", (uint)c.NumLayers)
            .UInt32($"{arch}.feed_forward_length", (uint)c.IntermediateSize)
            .UInt32($"{arch}.attention.head_count", (uint)c.NumHeads)
            .UInt32($"{arch}.attention.head_count_kv", (uint)c.NumKvHeads)
            .Float32($"{arch}.attention.layer_norm_rms_epsilon", c.RmsNormEps)
            .Float32($"{arch}.rope.freq_base", c.RopeTheta);
        using SafeTensorsFile file = SafeTensorsFile.Open(Path.Combine(folder, "model.safetensors"));
        foreach (TensorInfo info in file.Tensors.Values.OrderBy(t => t.Name, StringComparer.Ordinal))
        {
            byte[] data = file.GetSpan(info).ToArray();
            string name = GgufName(info.Name);
            uint type = info.Dtype switch { TensorDtype.F32 => 0u, TensorDtype.F16 => 1u, _ => 30u };
            long rowBytes = info.Shape.Length == 2 ? info.Shape[1] * SafeTensorsFile.ElementSize(info.Dtype) : 0;
            if (q8 && info.Shape.Length == 2)
            {
                data = Reference.Q8_0.Quantize(ToFloats(data, info.Dtype));
                type = 8u;
                rowBytes = info.Shape[1] / Reference.Q8_0.Block * Reference.Q8_0.BlockBytes;
            }
            int heads = info.Name.EndsWith("q_proj.weight", StringComparison.Ordinal) ? c.NumHeads
                : info.Name.EndsWith("k_proj.weight", StringComparison.Ordinal) ? c.NumKvHeads : 0;
            if (heads > 0 && !qwen2) data = InterleaveRope(data, heads, info.Shape[0], rowBytes);
            ulong[] dims = info.Shape.Reverse().Select(d => (ulong)d).ToArray();
            b.Tensor(name, type, dims, data);
        }
        return b;
    }

    private static float[] ToFloats(byte[] data, TensorDtype dtype) => dtype switch
    {
        TensorDtype.F32 => Enumerable.Range(0, data.Length / 4).Select(i => BitConverter.ToSingle(data, i * 4)).ToArray(),
        TensorDtype.F16 => Enumerable.Range(0, data.Length / 2).Select(i => (float)BitConverter.ToHalf(data, i * 2)).ToArray(),
        _ => Enumerable.Range(0, data.Length / 2).Select(i => BFloat16.ToSingle(BitConverter.ToUInt16(data, i * 2))).ToArray(),
    };

    // convert_hf_to_gguf.py's permute: rows (head, 2, half) read as (head, half, 2), so stored row 2i of a
    // head is HF row i and stored row 2i + 1 is HF row half + i.
    private static byte[] InterleaveRope(byte[] hf, int heads, long rows, long rowBytes)
    {
        var result = new byte[hf.Length];
        long perHead = rows / heads, half = perHead / 2;
        for (long h = 0; h < heads; h++)
            for (long pair = 0; pair < 2; pair++)
                for (long i = 0; i < half; i++)
                    Array.Copy(hf, (h * perHead + pair * half + i) * rowBytes, result, (h * perHead + 2 * i + pair) * rowBytes, rowBytes);
        return result;
    }

    private static string GgufName(string hf)
    {
        if (hf == "model.embed_tokens.weight") return "token_embd.weight";
        if (hf == "model.norm.weight") return "output_norm.weight";
        if (hf == "lm_head.weight") return "output.weight";
        string[] parts = hf.Split('.');  // model.layers.N.<module>.<part>...
        string rest = string.Join('.', parts[3..]);
        string mapped = rest switch
        {
            "input_layernorm.weight" => "attn_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "self_attn.q_proj.bias" => "attn_q.bias",
            "self_attn.k_proj.bias" => "attn_k.bias",
            "self_attn.v_proj.bias" => "attn_v.bias",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            _ => throw new ArgumentException($"no GGUF name for {hf}"),
        };
        return $"blk.{parts[2]}.{mapped}";
    }

    private GgufBuilder Add(string key, uint type, Action<BinaryWriter> write)
    {
        _metadata.Add((key, type, write));
        return this;
    }

    private static void WriteString(BinaryWriter w, string value)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(value);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private ulong Align(ulong value) => (value + (ulong)Alignment - 1) / (ulong)Alignment * (ulong)Alignment;

    private void Pad(BinaryWriter w)
    {
        w.Flush();
        long position = w.BaseStream.Position;
        long padding = (long)Align((ulong)position) - position;
        for (long i = 0; i < padding; i++) w.Write((byte)0);
    }
}
