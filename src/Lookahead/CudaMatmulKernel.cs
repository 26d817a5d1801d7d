namespace Lookahead;

/// <summary>CUDA matrix kernels (lk_cuda_matmul).</summary>
public enum CudaMatmulKernel
{
    /// <summary>The library's choice (currently <see cref="TensorCores"/>).</summary>
    Auto = 0,
    /// <summary>Tensor cores for BF16 weights; F32 and F16 weights on CUDA cores.</summary>
    TensorCores = 1,
    /// <summary>CUDA cores for every dtype (for comparisons).</summary>
    Simt = 2,
}
