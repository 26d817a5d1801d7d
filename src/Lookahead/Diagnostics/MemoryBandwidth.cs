using Lookahead.Interop;

namespace Lookahead.Diagnostics;

/// <summary>
/// This machine's memory read bandwidth: every thread streams its share of a buffer far larger than the
/// caches, allocated by the native library the way it allocates weights (huge pages where Linux gives
/// them), so the floor has the same page size as the weights a step streams. This is the floor every CPU
/// decoding speed is held against: a greedy step cannot be faster than its weight bytes divided by this
/// rate.
/// </summary>
public static class MemoryBandwidth
{
    /// <summary>Best of several passes over 1 GiB, in GB/s (10^9 bytes per second); about a second.</summary>
    /// <exception cref="ArgumentOutOfRangeException">threads is below 1.</exception>
    /// <exception cref="LookaheadException">The native library is missing, of another ABI, or the probe failed.</exception>
    public static double MeasureReadGBps(int threads)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        NativeLibraryResolver.EnsureCompatible();
        LookaheadException.ThrowIfFailed(NativeMethods.lk_measure_read_bandwidth(threads, out double gbps));
        return gbps;
    }
}
