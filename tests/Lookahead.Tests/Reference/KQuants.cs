namespace Lookahead.Tests.Reference;

/// <summary>
/// llama.cpp's k-quant (and Q5_0) readers written out for the tests, apart from the library
/// (dequantize_row_q4_K, dequantize_row_q6_K, dequantize_row_q5_0, quantize_row_q8_K_ref), and Q8_K's round trip: what a matrix input becomes before a
/// k-quant product.
/// </summary>
public static class KQuants
{
    public const int Block = 256;

    public static float[] DequantizeQ4_K(ReadOnlySpan<byte> bytes)
    {
        var y = new float[bytes.Length / 144 * Block];
        for (int b = 0; b < bytes.Length / 144; b++)
        {
            ReadOnlySpan<byte> x = bytes.Slice(b * 144, 144);
            float d = (float)BitConverter.ToHalf(x), min = (float)BitConverter.ToHalf(x[2..]);
            ReadOnlySpan<byte> scales = x.Slice(4, 12), q = x.Slice(16, 128);
            int o = b * Block;
            for (int j = 0, sub = 0; j < Block; j += 64, sub += 2)
            {
                (int sc1, int m1) = ScaleMin(sub, scales);
                (int sc2, int m2) = ScaleMin(sub + 1, scales);
                float d1 = d * sc1, d2 = d * sc2, min1 = min * m1, min2 = min * m2;
                for (int l = 0; l < 32; l++) y[o + j + l] = d1 * (q[j / 2 + l] & 0xF) - min1;
                for (int l = 0; l < 32; l++) y[o + j + 32 + l] = d2 * (q[j / 2 + l] >> 4) - min2;
            }
        }
        return y;
    }

    public static float[] DequantizeQ6_K(ReadOnlySpan<byte> bytes)
    {
        var y = new float[bytes.Length / 210 * Block];
        for (int b = 0; b < bytes.Length / 210; b++)
        {
            ReadOnlySpan<byte> x = bytes.Slice(b * 210, 210);
            float d = (float)BitConverter.ToHalf(x[208..]);
            for (int n = 0; n < 2; n++)
            {
                ReadOnlySpan<byte> ql = x.Slice(64 * n, 64), qh = x.Slice(128 + 32 * n, 32);
                int o = b * Block + 128 * n, sc = 192 + 8 * n;
                for (int l = 0; l < 32; l++)
                {
                    int s = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[o + l] = d * (sbyte)x[sc + s] * q1;
                    y[o + l + 32] = d * (sbyte)x[sc + s + 2] * q2;
                    y[o + l + 64] = d * (sbyte)x[sc + s + 4] * q3;
                    y[o + l + 96] = d * (sbyte)x[sc + s + 6] * q4;
                }
            }
        }
        return y;
    }

    /// <summary>llama.cpp's dequantize_row_q5_0 (32 values a block, the fallback Q4_K_M files use for rows
    /// that are not whole super-blocks).</summary>
    public static float[] DequantizeQ5_0(ReadOnlySpan<byte> bytes)
    {
        var y = new float[bytes.Length / 22 * 32];
        for (int b = 0; b < bytes.Length / 22; b++)
        {
            ReadOnlySpan<byte> x = bytes.Slice(b * 22, 22);
            float d = (float)BitConverter.ToHalf(x);
            uint qh = BitConverter.ToUInt32(x[2..]);
            for (int j = 0; j < 16; j++)
            {
                int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                y[b * 32 + j] = d * (((x[6 + j] & 0x0F) | h0) - 16);
                y[b * 32 + j + 16] = d * (((x[6 + j] >> 4) | h1) - 16);
            }
        }
        return y;
    }

    /// <summary>What a row of floats becomes through Q8_K: per 256, the value of largest magnitude maps to
    /// -127, q = round-half-even(x * -127 / it) capped at 127, value = q / (-127 / it).</summary>
    public static float[] Q8_KRoundTrip(float[] x)
    {
        var y = new float[x.Length];
        for (int b = 0; b < x.Length / Block; b++)
        {
            float max = 0, amax = 0;
            for (int i = b * Block; i < (b + 1) * Block; i++)
            {
                if (MathF.Abs(x[i]) > amax)
                {
                    amax = MathF.Abs(x[i]);
                    max = x[i];
                }
            }
            if (amax == 0) continue;
            float iscale = -127f / max, d = 1 / iscale;
            for (int i = b * Block; i < (b + 1) * Block; i++) y[i] = d * Math.Min(127, (int)MathF.Round(iscale * x[i], MidpointRounding.ToEven));
        }
        return y;
    }

    private static (int Scale, int Min) ScaleMin(int j, ReadOnlySpan<byte> q) => j < 4
        ? (q[j] & 63, q[j + 4] & 63)
        : ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4));
}
