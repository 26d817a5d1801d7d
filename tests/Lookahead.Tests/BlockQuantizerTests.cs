using Lookahead.Model.Gguf;
using Lookahead.Tests.Reference;

namespace Lookahead.Tests;

/// <summary>
/// The library's quantizer (what `lookahead quantize` writes) read back by the tests' own copies of
/// llama.cpp's readers: Q8_0 bit for bit as llama.cpp's reference quantizer writes it; Q4_K and Q6_K
/// within the error their formats allow.
/// </summary>
public class BlockQuantizerTests
{
    private static float[] RandomRows(int count, int seed, double scale)
    {
        var random = new Random(seed);
        // Values over a few magnitudes, some sub-blocks all positive (a zero min) and some constant.
        return Enumerable.Range(0, count).Select(i => (i / 256) % 5 == 3 ? 0.25f
            : (i / 32) % 7 == 2 ? (float)(scale * random.NextDouble())
            : (float)(scale * Math.Pow(10, i / 256 % 3 - 1) * (2 * random.NextDouble() - 1))).ToArray();
    }

    [Test]
    public void Q8_0IsLlamaCppsReferenceQuantizerBitForBit()
    {
        float[] x = RandomRows(4 * 512, 1, 3);
        Assert.That(BlockQuantizer.Quantize(GgmlType.Q8_0, x), Is.EqualTo(Q8_0.Quantize(x)));
    }

    // Q5_0 (llama.cpp's rounding: the largest magnitude maps to -16, the rest round to nearest): every
    // value within half a step (largest magnitude / 16) of where it was, one at the far end of the range
    // (which is one short of symmetric) within a step.
    [Test]
    public void Q5_0ReadsBackWithinHalfAStep()
    {
        float[] x = RandomRows(4 * 256, 3, 2);
        float[] y = KQuants.DequantizeQ5_0(BlockQuantizer.Quantize(GgmlType.Q5_0, x));
        for (int b = 0; b < x.Length / 32; b++)
        {
            double step = x.AsSpan(b * 32, 32).ToArray().Max(v => Math.Abs(v)) / 16.0;
            for (int i = b * 32; i < (b + 1) * 32; i++)
                Assert.That(Math.Abs(y[i] - x[i]), Is.LessThanOrEqualTo(step * 1.002 + 1e-6), $"value {i}: {x[i]} read back as {y[i]}");
        }
        Assert.That(x.Zip(y).Count(p => Math.Abs(p.First - p.Second) > 0), Is.GreaterThan(0), "values were rounded");
    }

    // A value is within one and a half steps of its sub-block (Q4_K: range / 15; Q6_K: largest magnitude /
    // 32) of where it was: half a step of rounding, and the stored 6- or 8-bit scale can be a few percent
    // smaller than the ideal one, which clamps a value at the end of the range by up to a step.
    [TestCase("Q4_K")]
    [TestCase("Q6_K")]
    public void KQuantsReadBackWithinAStepOfEachValue(string typeName)
    {
        GgmlType type = Enum.Parse<GgmlType>(typeName);
        const int cols = 768;
        float[] x = RandomRows(5 * cols, 2, 2);
        byte[] bytes = BlockQuantizer.Quantize(type, x);
        Assert.That(bytes.Length, Is.EqualTo(5 * cols / 256 * (type == GgmlType.Q4_K ? 144 : 210)));
        float[] y = type == GgmlType.Q4_K ? KQuants.DequantizeQ4_K(bytes) : KQuants.DequantizeQ6_K(bytes);
        int group = type == GgmlType.Q4_K ? 32 : 16;
        double totalError = 0, totalMagnitude = 0;
        for (int g = 0; g < x.Length / group; g++)
        {
            var values = x.AsSpan(g * group, group).ToArray();
            double step = type == GgmlType.Q4_K
                ? (values.Max() - Math.Min(0, values.Min())) / 15.0
                : values.Max(v => Math.Abs(v)) / 32.0;
            double allowed = 1.5 * step + 1e-6;
            for (int i = g * group; i < (g + 1) * group; i++)
            {
                Assert.That(Math.Abs(y[i] - x[i]), Is.LessThanOrEqualTo(allowed), $"{type} value {i}: {x[i]} read back as {y[i]}");
                totalError += Math.Abs(y[i] - x[i]);
                totalMagnitude += Math.Abs(x[i]);
            }
        }
        // On average far better than the bound: the values are rounded, not truncated.
        Assert.That(totalError / totalMagnitude, Is.LessThan(type == GgmlType.Q4_K ? 0.08 : 0.03));
    }

    [Test]
    public void AllZeroBlocksReadBackAsZeros()
    {
        var zeros = new float[512];
        foreach (GgmlType type in new[] { GgmlType.Q4_K, GgmlType.Q6_K })
        {
            byte[] bytes = BlockQuantizer.Quantize(type, zeros);
            float[] y = type == GgmlType.Q4_K ? KQuants.DequantizeQ4_K(bytes) : KQuants.DequantizeQ6_K(bytes);
            Assert.That(y, Is.All.EqualTo(0f), type.ToString());
        }
    }
}
