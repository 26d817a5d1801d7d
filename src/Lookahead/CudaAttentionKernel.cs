namespace Lookahead;

/// <summary>CUDA tree-attention kernels (lk_cuda_attention).</summary>
public enum CudaAttentionKernel
{
    /// <summary>The library's choice (currently <see cref="PerNode"/>).</summary>
    Auto = 0,
    /// <summary>One block per (node, head, chunk of the context).</summary>
    PerNode = 1,
    /// <summary>One block per (head, chunk, group of nodes), reading the K/V the nodes share once.</summary>
    SharedPrefix = 2,
}
