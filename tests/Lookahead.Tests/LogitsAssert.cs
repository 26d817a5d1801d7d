namespace Lookahead.Tests;

/// <summary>Element-wise comparison |got - want| &lt;= atol + rtol * |want|, reporting the first mismatches.</summary>
public static class LogitsAssert
{
    // fp32 math against a double reference: differences come from float rounding in sums of a few
    // hundred terms and from float RoPE angles, both far below these bounds.
    public const double Atol = 1e-4;
    public const double Rtol = 1e-4;

    // BF16 weights multiply inputs rounded to BF16. Where two computations' float inputs differ by one ulp
    // next to a rounding boundary (about one input in 4,000), the rounded inputs differ by a whole BF16
    // step (up to 2^-7 relative). One such step in the output head's input moves every logit by
    // |w| |x| 2^-7, up to about 1e-2 for these test models' weights (9e-3 seen).
    public const double Bf16Tolerance = 2e-2;

    // Quantized weights multiply inputs quantized to 8 bits per block (Q8_0: 32 values, Q8_K: 256), so
    // such a boundary flip moves an input by a whole step of its block (its largest magnitude / 127), and
    // with a few thousand inputs per position a flip or two happens at most positions. Wrong unpacking or
    // a wrong scale moves logits by O(1); flips, by a few hundredths (4e-2 seen on 256-wide models).
    public const double QuantizedInputTolerance = 6e-2;

    /// <summary>Close with the bound for the model's weight dtype: Bf16Tolerance for BF16, else atol/rtol.</summary>
    public static void Close(ReadOnlySpan<float> got, double[] want, string what, Lookahead.Model.TensorDtype weights,
        double atol = Atol, double rtol = Rtol)
    {
        bool bf16 = weights == Lookahead.Model.TensorDtype.BF16;
        Close(got, want, what, bf16 ? Bf16Tolerance : atol, bf16 ? Bf16Tolerance : rtol);
    }

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
