namespace Lookahead.Model;

/// <summary>
/// bfloat16 conversions, the managed code's one copy: round to nearest even as PyTorch does (subnormals
/// rounded, not flushed; overflow to infinity; a NaN stays a quiet NaN of the same sign). The native library
/// rounds the same way in native/src/common/half.h.
/// </summary>
internal static class BFloat16
{
    /// <summary>The bfloat16 bits nearest to value.</summary>
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return (ushort)((bits | 0x00400000u) >> 16);
        return (ushort)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
    }

    public static float ToSingle(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>value rounded to bfloat16 precision.</summary>
    public static float Round(float value) => ToSingle(FromSingle(value));
}
