namespace Lookahead.Tests;

/// <summary>Element-wise comparison |got - want| &lt;= atol + rtol * |want|, reporting the first mismatches.</summary>
public static class LogitsAssert
{
    // fp32 math against a double reference: differences come from float rounding in sums of a few
    // hundred terms and from float RoPE angles, both far below these bounds.
    public const double Atol = 1e-4;
    public const double Rtol = 1e-4;

    public static void Close(ReadOnlySpan<float> got, double[] want, string what, double atol = Atol, double rtol = Rtol)
    {
        Assert.That(got.Length, Is.EqualTo(want.Length), $"{what}: length");
        var mismatches = new List<string>();
        double worst = 0;
        for (int i = 0; i < want.Length; i++)
        {
            double error = Math.Abs(got[i] - want[i]);
            worst = Math.Max(worst, error / (atol + rtol * Math.Abs(want[i])));
            if (error > atol + rtol * Math.Abs(want[i]) && mismatches.Count < 5)
                mismatches.Add($"[{i}] got {got[i]:G9} want {want[i]:G9} (error {error:G3})");
        }
        if (mismatches.Count > 0)
            Assert.Fail($"{what}: logits differ beyond atol {atol} + rtol {rtol}; first mismatches: {string.Join("; ", mismatches)}");
    }
}
