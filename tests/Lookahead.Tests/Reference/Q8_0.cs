namespace Lookahead.Tests.Reference;

/// <summary>
/// llama.cpp's Q8_0 written out for the tests, apart from the library: per block of 32 floats, d = max |x| /
/// 127 stored as an IEEE half, q = x / d rounded half away from zero (quantize_row_q8_0_ref).
/// </summary>
public static class Q8_0
{
    public const int Block = 32;
    public const int BlockBytes = 34;

    /// <summary>Rows of floats (each a multiple of 32 long) as Q8_0 blocks.</summary>
    public static byte[] Quantize(ReadOnlySpan<float> values)
    {
        var bytes = new byte[values.Length / Block * BlockBytes];
        for (int b = 0; b < values.Length / Block; b++)
        {
            ReadOnlySpan<float> v = values.Slice(b * Block, Block);
            float amax = 0;
            foreach (float x in v) amax = MathF.Max(amax, MathF.Abs(x));
            float d = amax / 127f, id = d != 0 ? 1f / d : 0f;
            BitConverter.TryWriteBytes(bytes.AsSpan(b * BlockBytes), (Half)d);
            for (int i = 0; i < Block; i++) bytes[b * BlockBytes + 2 + i] = (byte)(sbyte)MathF.Round(v[i] * id, MidpointRounding.AwayFromZero);
        }
        return bytes;
    }

    public static float[] Dequantize(ReadOnlySpan<byte> bytes)
    {
        var values = new float[bytes.Length / BlockBytes * Block];
        for (int b = 0; b < bytes.Length / BlockBytes; b++)
        {
            float d = (float)BitConverter.ToHalf(bytes.Slice(b * BlockBytes, 2));
            for (int i = 0; i < Block; i++) values[b * Block + i] = d * (sbyte)bytes[b * BlockBytes + 2 + i];
        }
        return values;
    }

    /// <summary>What the values become through Q8_0.</summary>
    public static float[] RoundTrip(float[] values) => Dequantize(Quantize(values));
}
