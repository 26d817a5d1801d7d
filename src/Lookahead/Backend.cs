namespace Lookahead;

/// <summary>Where a context computes.</summary>
public enum Backend
{
    /// <summary>CUDA when a device is present, else CPU.</summary>
    Auto = 0,
    /// <summary>The native CPU backend.</summary>
    Cpu = 1,
    /// <summary>The native CUDA backend.</summary>
    Cuda = 2,
}
