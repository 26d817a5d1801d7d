namespace Lookahead;

/// <summary>
/// CPU matrix kernels (lk_cpu_kernel), as a cap: a context uses the best kernel this CPU runs at or below
/// the one asked for, and <see cref="Decoding.InferenceContext.CpuKernel"/> says which. Each kernel is batch
/// invariant; kernels differ from one another in the last bits, so they are for comparisons.
/// </summary>
public enum CpuKernel
{
    /// <summary>The best this CPU runs.</summary>
    Auto = 0,
    /// <summary>Portable C++ loops.</summary>
    Scalar = 1,
    /// <summary>AVX2 with FMA and F16C.</summary>
    Avx2 = 2,
    /// <summary>AVX-512 (F, BW, VL); BF16 weights widened to F32.</summary>
    Avx512 = 3,
    /// <summary>AVX-512 with the BF16 dot product for BF16 weights.</summary>
    Avx512Bf16 = 4,
}
