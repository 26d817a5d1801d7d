using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace Lookahead.Diagnostics;

/// <summary>
/// Measures this machine's memory read bandwidth: every thread streams its share of a buffer far larger
/// than the caches, summing it with 256-bit loads. This is the floor every decoding speed is held
/// against: a greedy step cannot be faster than its weight bytes divided by this rate.
/// </summary>
public static class MemoryBandwidth
{
    /// <summary>Best of several passes, in GB/s (10^9 bytes per second).</summary>
    public static unsafe double MeasureReadGBps(int threads, long bytes = 1L << 30, int passes = 5)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        bytes &= ~((long)threads * 128 - 1);  // whole 128-byte blocks per thread
        byte* buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            new Span<byte>(buffer, (int)Math.Min(bytes, int.MaxValue)).Fill(1);
            for (long offset = int.MaxValue; offset < bytes; offset += int.MaxValue)
                new Span<byte>(buffer + offset, (int)Math.Min(bytes - offset, int.MaxValue)).Fill(1);
            double best = 0;
            long sink = 0;
            for (int pass = 0; pass < passes; pass++)
            {
                var workers = new Thread[threads];
                var sums = new long[threads];
                long share = bytes / threads;
                long start = Stopwatch.GetTimestamp();
                for (int t = 0; t < threads; t++)
                {
                    int index = t;
                    workers[t] = new Thread(() => sums[index] = Sum(buffer + index * share, share));
                    workers[t].Start();
                }
                foreach (Thread worker in workers) worker.Join();
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                sink += sums.Sum();
                best = Math.Max(best, bytes / seconds / 1e9);
            }
            GC.KeepAlive(sink);
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    private static unsafe long Sum(byte* start, long length)
    {
        Vector256<long> a = default, b = default, c = default, d = default;
        for (byte* p = start, end = start + length; p < end; p += 128)
        {
            a += Vector256.Load((long*)p);
            b += Vector256.Load((long*)(p + 32));
            c += Vector256.Load((long*)(p + 64));
            d += Vector256.Load((long*)(p + 96));
        }
        return Vector256.Sum(a + b + c + d);
    }
}
