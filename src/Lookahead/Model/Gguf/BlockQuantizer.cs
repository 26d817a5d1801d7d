namespace Lookahead.Model.Gguf;

/// <summary>
/// Rows of floats to llama.cpp's block formats, bit-compatible with its readers (block layouts as in
/// ggml-common.h). Q8_0 and Q5_0 round exactly as llama.cpp's reference quantizers do. Q4_K and Q6_K use a plain
/// min/max fit per sub-block (no error-minimizing search as in llama.cpp's quantize tool, so their error is
/// a little larger than llama.cpp's for the same type); the files are valid for every GGUF reader.
/// </summary>
internal static class BlockQuantizer
{
    /// <summary>Values (rows of whole blocks, one after another) as blocks.</summary>
    public static byte[] Quantize(GgmlType type, ReadOnlySpan<float> values)
    {
        if (type is not (GgmlType.Q8_0 or GgmlType.Q5_0 or GgmlType.Q4_K or GgmlType.Q6_K))
            throw new ArgumentOutOfRangeException(nameof(type), type, "not a type this quantizer writes");
        (int n, int size) = GgmlTypes.Block(type)!.Value;
        var bytes = new byte[values.Length / n * size];
        for (long b = 0; b < values.Length / n; b++)
        {
            ReadOnlySpan<float> block = values.Slice((int)(b * n), n);
            Span<byte> target = bytes.AsSpan((int)(b * size), size);
            switch (type)
            {
                case GgmlType.Q8_0: Q8_0(block, target); break;
                case GgmlType.Q5_0: Q5_0(block, target); break;
                case GgmlType.Q4_K: Q4_K(block, target); break;
                default: Q6_K(block, target); break;
            }
        }
        return bytes;
    }

    // d = max |x| / 127 as a half; q = x / d rounded half away from zero (quantize_row_q8_0_ref).
    private static void Q8_0(ReadOnlySpan<float> x, Span<byte> block)
    {
        float amax = 0;
        foreach (float v in x) amax = MathF.Max(amax, MathF.Abs(v));
        float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
        BitConverter.TryWriteBytes(block, (Half)d);
        for (int i = 0; i < 32; i++) block[2 + i] = (byte)(sbyte)MathF.Round(x[i] * id, MidpointRounding.AwayFromZero);
    }

    // The value of largest magnitude maps to -16: d = it / -16 as a half; q = x / d + 16 rounded down from
    // half a step up, at most 31 (quantize_row_q5_0_ref).
    private static void Q5_0(ReadOnlySpan<float> x, Span<byte> block)
    {
        float d = SignedMax(x) / -16f, id = d != 0 ? 1f / d : 0f;
        BitConverter.TryWriteBytes(block, (Half)d);
        uint high = 0;
        for (int j = 0; j < 16; j++)
        {
            int q0 = Math.Min(31, (int)(sbyte)(x[j] * id + 16.5f)), q1 = Math.Min(31, (int)(sbyte)(x[16 + j] * id + 16.5f));
            block[6 + j] = (byte)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            high |= (uint)((q0 & 0x10) >> 4) << j;
            high |= (uint)((q1 & 0x10) >> 4) << (j + 16);
        }
        BitConverter.TryWriteBytes(block[2..], high);
    }

    // Per sub-block of 32: the range [min(0, lowest), highest] in 15 steps; the sub-blocks' scales and mins
    // in 6 bits against the super-block's d and dmin (halves); values rounded against the stored scales.
    private static void Q4_K(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<float> scales = stackalloc float[8], mins = stackalloc float[8];
        for (int j = 0; j < 8; j++)
        {
            ReadOnlySpan<float> sub = x.Slice(32 * j, 32);
            float lo = 0, hi = float.MinValue;
            foreach (float v in sub)
            {
                lo = MathF.Min(lo, v);
                hi = MathF.Max(hi, v);
            }
            scales[j] = MathF.Max(0, hi - lo) / 15f;
            mins[j] = -lo;
        }
        float maxScale = Max(scales), maxMin = Max(mins);
        var d = (Half)(maxScale / 63f);
        var dmin = (Half)(maxMin / 63f);
        Span<int> ls = stackalloc int[8], lm = stackalloc int[8];
        for (int j = 0; j < 8; j++)
        {
            ls[j] = maxScale > 0 ? Math.Min(63, (int)MathF.Round(63f / maxScale * scales[j])) : 0;
            lm[j] = maxMin > 0 ? Math.Min(63, (int)MathF.Round(63f / maxMin * mins[j])) : 0;
        }
        BitConverter.TryWriteBytes(block, d);
        BitConverter.TryWriteBytes(block[2..], dmin);
        Span<byte> packed = block.Slice(4, 12);
        packed.Clear();
        for (int j = 0; j < 8; j++)
        {
            if (j < 4)
            {
                packed[j] = (byte)ls[j];
                packed[j + 4] = (byte)lm[j];
            }
            else
            {
                packed[j + 4] = (byte)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
                packed[j - 4] |= (byte)((ls[j] >> 4) << 6);
                packed[j] |= (byte)((lm[j] >> 4) << 6);
            }
        }
        Span<byte> q = stackalloc byte[256];
        for (int j = 0; j < 8; j++)
        {
            float step = (float)d * ls[j], offset = (float)dmin * lm[j];
            for (int i = 32 * j; i < 32 * j + 32; i++)
                q[i] = step > 0 ? (byte)Math.Clamp((int)MathF.Round((x[i] + offset) / step), 0, 15) : (byte)0;
        }
        Span<byte> qs = block.Slice(16, 128);
        for (int p = 0; p < 4; p++)
            for (int l = 0; l < 32; l++) qs[32 * p + l] = (byte)(q[64 * p + l] | (q[64 * p + 32 + l] << 4));
    }

    // Per sub-block of 16: the value of largest magnitude maps to -32; the sub-blocks' scales as signed
    // bytes against the super-block's d (a half), the largest to -128; values rounded against the stored
    // scales into -32..31.
    private static void Q6_K(ReadOnlySpan<float> x, Span<byte> block)
    {
        Span<float> scales = stackalloc float[16];
        for (int g = 0; g < 16; g++) scales[g] = SignedMax(x.Slice(16 * g, 16)) / -32f;
        float maxScale = SignedMax(scales);
        Span<byte> ql = block[..128], qh = block.Slice(128, 64), sc = block.Slice(192, 16);
        ql.Clear();
        qh.Clear();
        if (maxScale == 0)
        {
            sc.Clear();
            BitConverter.TryWriteBytes(block[208..], (Half)0);
            return;
        }
        float iscale = -128f / maxScale;
        var d = (Half)(1 / iscale);
        Span<int> q = stackalloc int[256];
        for (int g = 0; g < 16; g++)
        {
            int s = Math.Clamp((int)MathF.Round(iscale * scales[g]), -128, 127);
            sc[g] = (byte)(sbyte)s;
            float step = (float)d * s;
            for (int i = 16 * g; i < 16 * g + 16; i++)
                q[i] = (step != 0 ? Math.Clamp((int)MathF.Round(x[i] / step), -32, 31) : 0) + 32;
        }
        for (int h = 0; h < 2; h++)
        {
            for (int l = 0; l < 32; l++)
            {
                int b = 128 * h + l, q0 = q[b], q1 = q[b + 32], q2 = q[b + 64], q3 = q[b + 96];
                ql[64 * h + l] = (byte)((q0 & 0xF) | ((q2 & 0xF) << 4));
                ql[64 * h + l + 32] = (byte)((q1 & 0xF) | ((q3 & 0xF) << 4));
                qh[32 * h + l] = (byte)((q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6));
            }
        }
        BitConverter.TryWriteBytes(block[208..], d);
    }

    // The value of largest magnitude, with its sign (the first of equal magnitudes), or 0.
    private static float SignedMax(ReadOnlySpan<float> values)
    {
        float max = 0, amax = 0;
        foreach (float v in values)
        {
            if (MathF.Abs(v) > amax)
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }
        return max;
    }

    private static float Max(ReadOnlySpan<float> values)
    {
        float max = 0;
        foreach (float v in values) max = MathF.Max(max, v);
        return max;
    }
}
