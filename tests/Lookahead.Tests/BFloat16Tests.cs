using Lookahead.Model;

namespace Lookahead.Tests;

/// <summary>The managed bfloat16 rounding against the nearest bfloat16 found by comparing distances.</summary>
public class BFloat16Tests
{
    // x truncated to bfloat16 and the next one away from zero (2^128 past the largest finite one, which is
    // how overflow rounds to infinity); the nearer wins, a tie goes to the even one.
    private static ushort NearestByDistance(float x)
    {
        uint bits = BitConverter.SingleToUInt32Bits(x);
        uint low = bits & 0xFFFF0000u, high = low + 0x10000u;
        if ((bits & 0x7FFFFFFFu) >= 0x7F800000u || low == bits) return (ushort)(low >> 16);
        double lowValue = BitConverter.UInt32BitsToSingle(low);
        double highValue = (high & 0x7FFFFFFFu) == 0x7F800000u ? Math.CopySign(Math.Pow(2, 128), x) : BitConverter.UInt32BitsToSingle(high);
        double toLow = Math.Abs(x - lowValue), toHigh = Math.Abs(highValue - x);
        if (toLow != toHigh) return (ushort)((toLow < toHigh ? low : high) >> 16);
        return (ushort)((((low >> 16) & 1) == 0 ? low : high) >> 16);
    }

    [Test]
    public void RoundsToTheNearestValueTiesToEven()
    {
        var random = new Random(16);
        for (int i = 0; i < 1 << 16; i++)
        {
            uint bits = (uint)random.NextInt64(0, 1L << 32);
            if (i % 4 == 0) bits = (bits & 0xFFFF0000u) | 0x8000u;  // exact ties
            if (i % 97 == 0) bits = 0x7F7FFFFFu;                   // rounds up to infinity
            float x = BitConverter.UInt32BitsToSingle(bits);
            ushort rounded = BFloat16.FromSingle(x);
            if (float.IsNaN(x))
            {
                Assert.That(rounded & 0x7FC0, Is.EqualTo(0x7FC0), $"{bits:X8}: a quiet NaN");
                Assert.That(rounded >> 15, Is.EqualTo(bits >> 31), $"{bits:X8}: the sign");
                continue;
            }
            Assert.That(rounded, Is.EqualTo(NearestByDistance(x)), $"{bits:X8}");
            Assert.That(BFloat16.Round(x), Is.EqualTo(BFloat16.ToSingle(rounded)));
        }
    }
}
