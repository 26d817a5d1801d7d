// CPU kernels against plain double-precision loops written here.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/aligned_buffer.h"
#include "common/half.h"
#include "cpu/kernels.h"
#include "cpu_kernels.h"
#include "cpu/thread_pool.h"
#include "cpu/vector_ops.h"
#include "test_model.h"

namespace {

using lk::cpu::MatmulArgs;
using lk::cpu::MatmulKernel;

struct Packed {
    std::vector<float> f32;
    std::vector<uint16_t> u16;
    std::vector<float> exact;  // the values the kernel must see after conversion
    const void* data(int32_t dtype) const { return dtype == LK_DTYPE_F32 ? static_cast<const void*>(f32.data()) : u16.data(); }
};

Packed pack(const std::vector<float>& values, int32_t dtype) {
    Packed p;
    p.f32 = values;
    p.exact = values;
    if (dtype != LK_DTYPE_F32) {
        p.u16.resize(values.size());
        for (size_t i = 0; i < values.size(); ++i) {
            p.u16[i] = dtype == LK_DTYPE_BF16 ? lk_test::float_to_bf16(values[i]) : lk_test::float_to_f16(values[i]);
            p.exact[i] = dtype == LK_DTYPE_BF16 ? lk::bf16_to_float(p.u16[i]) : lk::f16_to_float(p.u16[i]);
        }
    }
    return p;
}

// BF16 weights take inputs rounded to BF16 (MatmulArgs): rounds x in place and returns the packed
// bits (empty for other dtypes).
std::vector<uint16_t> round_inputs(std::vector<float>& x, int32_t dtype) {
    if (dtype != LK_DTYPE_BF16) return {};
    std::vector<uint16_t> packed(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
        packed[i] = lk_test::float_to_bf16(x[i]);
        x[i] = lk::bf16_to_float(packed[i]);
    }
    return packed;
}

const uint16_t* packed_or_null(const std::vector<uint16_t>& packed) { return packed.empty() ? nullptr : packed.data(); }

std::vector<MatmulKernel> kernels() { return lk_test::cpu_kernels(); }

TEST(Matmul, MatchesDoubleReferenceForOddShapesAndAllDtypes) {
    std::mt19937 rng(1234);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    const float poison = std::numeric_limits<float>::quiet_NaN();
    for (MatmulKernel kernel : kernels()) {
        for (int32_t dtype : {LK_DTYPE_F32, LK_DTYPE_F16, LK_DTYPE_BF16}) {
            for (int64_t rows : {1, 2, 7, 31, 33}) {
                // 1031 and 2057 columns are long rows (4 KiB and more) for F32 and for 16-bit weights,
                // which the SIMD kernels tile differently from short ones.
                for (int64_t cols : {1, 7, 8, 9, 33, 127, 1031, 2057}) {
                    for (int32_t n_x : {1, 2, 3, 4, 5, 9}) {
                        std::vector<float> w(rows * cols), x(n_x * (cols + 3));
                        for (float& v : w) v = dist(rng);
                        for (float& v : x) v = dist(rng);
                        const std::vector<uint16_t> x_bf16 = round_inputs(x, dtype);
                        Packed pw = pack(w, dtype);
                        const int64_t y_stride = rows + 2;
                        std::vector<float> y(n_x * y_stride, poison);
                        MatmulArgs args{pw.data(dtype), dtype, cols, x.data(), cols + 3, y.data(), y_stride, n_x, false, packed_or_null(x_bf16)};
                        // Two calls over split row ranges, as the thread pool issues them.
                        kernel(args, 0, rows / 2);
                        kernel(args, rows / 2, rows);
                        for (int32_t j = 0; j < n_x; ++j) {
                            for (int64_t r = 0; r < rows; ++r) {
                                double want = 0;
                                for (int64_t c = 0; c < cols; ++c) want += double(pw.exact[r * cols + c]) * x[j * (cols + 3) + c];
                                ASSERT_NEAR(y[j * y_stride + r], want, 1e-5 + 1e-5 * std::fabs(want) * cols)
                                    << "dtype " << dtype << " rows " << rows << " cols " << cols << " n_x " << n_x
                                    << " at (" << j << ", " << r << ")";
                            }
                            for (int64_t r = rows; r < y_stride; ++r) ASSERT_TRUE(std::isnan(y[j * y_stride + r])) << "wrote past the row range";
                        }
                    }
                }
            }
        }
    }
}

// The lossless guarantee rests on this: an input row's outputs do not depend on how many other rows
// share the call (tile shapes change with the count) nor on where the row ranges are cut.
TEST(Matmul, EachInputRowGivesBitIdenticalResultsAloneAndInABatch) {
    std::mt19937 rng(99);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (MatmulKernel kernel : kernels()) {
        for (int32_t dtype : {LK_DTYPE_F32, LK_DTYPE_F16, LK_DTYPE_BF16}) {
            for (int64_t cols : {37, 768, 2053}) {
                const int64_t rows = 45;
                std::vector<float> w(rows * cols), x(12 * cols);
                for (float& v : w) v = dist(rng);
                for (float& v : x) v = dist(rng);
                const std::vector<uint16_t> x_bf16 = round_inputs(x, dtype);
                const uint16_t* packed = packed_or_null(x_bf16);
                Packed pw = pack(w, dtype);
                for (int32_t n_x : {2, 5, 8, 12}) {
                    std::vector<float> batch(n_x * rows);
                    kernel(MatmulArgs{pw.data(dtype), dtype, cols, x.data(), cols, batch.data(), rows, n_x, false, packed}, 0, 16);
                    kernel(MatmulArgs{pw.data(dtype), dtype, cols, x.data(), cols, batch.data(), rows, n_x, false, packed}, 16, rows);
                    for (int32_t j = 0; j < n_x; ++j) {
                        std::vector<float> alone(rows);
                        kernel(MatmulArgs{pw.data(dtype), dtype, cols, x.data() + j * cols, cols, alone.data(), rows, 1, false,
                                          packed ? packed + j * cols : nullptr},
                               0, rows);
                        for (int64_t r = 0; r < rows; ++r)
                            ASSERT_EQ(batch[j * rows + r], alone[r]) << "dtype " << dtype << " cols " << cols << " n_x " << n_x << " row " << r;
                    }
                }
            }
        }
    }
}

TEST(Matmul, AccumulateAddsTheProductToTheOutput) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (MatmulKernel kernel : kernels()) {
        for (int64_t cols : {9, 1031}) {
            const int64_t rows = 13;
            const int32_t n_x = 3;
            std::vector<float> w(rows * cols), x(n_x * cols), plain(n_x * rows), residual(n_x * rows);
            for (float& v : w) v = dist(rng);
            for (float& v : x) v = dist(rng);
            for (float& v : residual) v = dist(rng);
            std::vector<float> fused = residual;
            kernel(MatmulArgs{w.data(), LK_DTYPE_F32, cols, x.data(), cols, plain.data(), rows, n_x}, 0, rows);
            kernel(MatmulArgs{w.data(), LK_DTYPE_F32, cols, x.data(), cols, fused.data(), rows, n_x, true}, 0, rows);
            // Exactly the separate product followed by an add, so fusing cannot change a token.
            for (size_t i = 0; i < fused.size(); ++i) ASSERT_EQ(fused[i], residual[i] + plain[i]) << "cols " << cols << " at " << i;
        }
    }
}

#if defined(LK_HAVE_AVX2_KERNELS)
// The BF16 dot-product kernel reads the packed inputs (x_bf16), not the floats: with the packed copy zeroed,
// only the scalar tail (columns past the last 32-column step, read as floats) contributes.
TEST(Matmul, Bf16DotProductKernelReadsThePackedInputs) {
    if (lk::cpu::choose_matmul_kernel(LK_CPU_KERNEL_AUTO).level != LK_CPU_KERNEL_AVX512_BF16) GTEST_SKIP() << "no AVX512_BF16 on this CPU";
    std::mt19937 rng(77);
    std::uniform_real_distribution<float> dist(0.5f, 1.0f);
    const int64_t rows = 9, cols = 64 + 5;
    std::vector<float> w(rows * cols), x(cols);
    for (float& v : w) v = dist(rng);
    for (float& v : x) v = dist(rng);
    round_inputs(x, LK_DTYPE_BF16);
    const Packed pw = pack(w, LK_DTYPE_BF16);
    const std::vector<uint16_t> zeros(cols, 0);
    std::vector<float> y(rows);
    lk::cpu::matmul_avx512_bf16(MatmulArgs{pw.data(LK_DTYPE_BF16), LK_DTYPE_BF16, cols, x.data(), cols, y.data(), rows, 1, false, zeros.data()}, 0, rows);
    for (int64_t r = 0; r < rows; ++r) {
        double tail = 0;
        for (int64_t c = 64; c < cols; ++c) tail += double(pw.exact[r * cols + c]) * x[c];
        ASSERT_NEAR(y[r], tail, 1e-5) << "row " << r;
    }
}
#endif

// A cap gives the best kernel at or below it, so every level up to the best is reachable and none above.
TEST(Matmul, ACapChoosesTheBestKernelAtOrBelowIt) {
    const lk::cpu::ChosenKernel best = lk::cpu::choose_matmul_kernel(LK_CPU_KERNEL_AUTO);
    EXPECT_EQ(best.level, lk::cpu::choose_matmul_kernel(LK_CPU_KERNEL_AVX512_BF16).level);
    for (int32_t cap = LK_CPU_KERNEL_SCALAR; cap <= LK_CPU_KERNEL_AVX512_BF16; ++cap) {
        const lk::cpu::ChosenKernel chosen = lk::cpu::choose_matmul_kernel(cap);
        EXPECT_EQ(chosen.level, std::min(cap, best.level)) << "cap " << cap;
    }
    EXPECT_EQ(lk::cpu::choose_matmul_kernel(LK_CPU_KERNEL_SCALAR).run, lk::cpu::matmul_scalar);
    EXPECT_STREQ(lk::cpu::matmul_kernel_name(LK_CPU_KERNEL_SCALAR), "scalar");
    EXPECT_STREQ(lk::cpu::matmul_kernel_name(LK_CPU_KERNEL_AVX512_BF16), "avx512-bf16");
}

// The BF16 nearest to x by comparing distances in double: the candidates are x truncated to BF16 and
// the next BF16 away from zero (2^128 in magnitude past the largest finite one, which is how overflow
// rounds to infinity); a tie goes to the even one.
uint16_t nearest_bf16_by_distance(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    const uint32_t low = bits & 0xFFFF0000u, high = low + 0x10000u;
    if ((bits & 0x7FFFFFFFu) >= 0x7F800000u || low == bits) return static_cast<uint16_t>(low >> 16);  // inf or exact
    const double sign = x < 0 ? -1.0 : 1.0;
    const double low_value = lk::bf16_to_float(static_cast<uint16_t>(low >> 16));
    const double high_value = (high & 0x7FFFFFFFu) == 0x7F800000u ? sign * std::ldexp(1.0, 128)
                                                                   : lk::bf16_to_float(static_cast<uint16_t>(high >> 16));
    const double to_low = std::fabs(double(x) - low_value), to_high = std::fabs(high_value - double(x));
    if (to_low != to_high) return static_cast<uint16_t>((to_low < to_high ? low : high) >> 16);
    return static_cast<uint16_t>((((low >> 16) & 1u) == 0 ? low : high) >> 16);
}

// The backend's vectorizable rounding against the nearest BF16 by distance, over every exponent (normals,
// subnormals, ties, overflow to infinity), and NaNs kept as quiet NaNs of the same sign.
TEST(Bf16, RoundingToNearestEvenPicksTheNearestValue) {
    std::mt19937 rng(16);
    std::vector<float> x(1 << 16);
    for (size_t i = 0; i < x.size(); ++i) {
        uint32_t bits = rng();
        if (i % 4 == 0) bits = (bits & 0xFFFF0000u) | 0x8000u;  // exact ties
        if (i % 97 == 0) bits = 0x7F7FFFFFu;                   // rounds up to infinity
        std::memcpy(&x[i], &bits, sizeof bits);
    }
    std::vector<float> rounded(x.size());
    std::vector<uint16_t> packed(x.size());
    lk::cpu::round_to_bf16(x.data(), static_cast<int64_t>(x.size()), rounded.data(), packed.data());
    for (size_t i = 0; i < x.size(); ++i) {
        if (std::isnan(x[i])) {
            uint32_t bits;
            std::memcpy(&bits, &x[i], sizeof bits);
            ASSERT_TRUE(std::isnan(rounded[i])) << "NaN became " << rounded[i];
            ASSERT_EQ(packed[i] & 0x7FC0u, 0x7FC0u) << "element " << i << ": not a quiet NaN";
            ASSERT_EQ(packed[i] >> 15, bits >> 31) << "element " << i << ": sign lost";
        } else {
            ASSERT_EQ(packed[i], nearest_bf16_by_distance(x[i])) << "element " << i << " (" << x[i] << ")";
            ASSERT_EQ(rounded[i], lk::bf16_to_float(packed[i])) << "element " << i;
        }
    }
    const float ties[3] = {0x1.0101p0f, 0x1.01p0f, 0x1.03p0f};
    float tie_rounded[3];
    uint16_t tie_packed[3];
    lk::cpu::round_to_bf16(ties, 3, tie_rounded, tie_packed);
    EXPECT_EQ(tie_packed[0], 0x3F81);  // above the tie: up
    EXPECT_EQ(tie_packed[1], 0x3F80);  // tie, even below: down
    EXPECT_EQ(tie_packed[2], 0x3F82);  // tie, odd below: up
}

TEST(HalfConversion, MatchesKnownValues) {
    EXPECT_EQ(lk::f16_to_float(0x3C00), 1.0f);
    EXPECT_EQ(lk::f16_to_float(0xC000), -2.0f);
    EXPECT_EQ(lk::f16_to_float(0x7BFF), 65504.0f);
    EXPECT_EQ(lk::f16_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
    EXPECT_EQ(lk::f16_to_float(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
    EXPECT_TRUE(std::isinf(lk::f16_to_float(0x7C00)));
    EXPECT_TRUE(std::isnan(lk::f16_to_float(0x7E00)));
    EXPECT_EQ(lk::bf16_to_float(0x3F80), 1.0f);
    EXPECT_EQ(lk::bf16_to_float(0xC0A0), -5.0f);
}

TEST(VectorOps, RmsNormRopeSwigluMatchFormulas) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    for (int n : {1, 2, 7, 33, 64}) {
        std::vector<float> x(n), w(n), out(n);
        for (int i = 0; i < n; ++i) { x[i] = dist(rng); w[i] = dist(rng); }
        lk::cpu::rms_norm(x.data(), w.data(), out.data(), n, 1e-5f);
        double ss = 0;
        for (float v : x) ss += double(v) * v;
        const double scale = 1.0 / std::sqrt(ss / n + 1e-5);
        for (int i = 0; i < n; ++i) ASSERT_NEAR(out[i], x[i] * scale * w[i], 1e-5 * (1 + std::fabs(x[i] * scale * w[i])));

        std::vector<float> g(n), u(n);
        for (int i = 0; i < n; ++i) { g[i] = dist(rng); u[i] = dist(rng); }
        std::vector<float> expect(n);
        for (int i = 0; i < n; ++i) expect[i] = float(g[i] / (1 + std::exp(-double(g[i]))) * u[i]);
        lk::cpu::swiglu(g.data(), u.data(), n);
        for (int i = 0; i < n; ++i) ASSERT_NEAR(g[i], expect[i], 1e-5);
    }
    for (int half : {1, 3, 32}) {
        std::vector<float> head(2 * half), c(half), s(half);
        for (float& v : head) v = dist(rng);
        for (int i = 0; i < half; ++i) { double a = dist(rng) * 3; c[i] = float(std::cos(a)); s[i] = float(std::sin(a)); }
        std::vector<float> before = head;
        lk::cpu::rope_rotate(head.data(), c.data(), s.data(), half);
        for (int i = 0; i < half; ++i) {
            ASSERT_NEAR(head[i], before[i] * c[i] - before[i + half] * s[i], 1e-6);
            ASSERT_NEAR(head[i + half], before[i + half] * c[i] + before[i] * s[i], 1e-6);
        }
    }
}

TEST(VectorOps, ExpOfANaNIsNaNWhateverItsSign) {
    // x86 makes inf - inf a NaN with the sign bit set: a clamp on the bit pattern must not turn it into -87.
    const float nan = std::numeric_limits<float>::quiet_NaN();
    EXPECT_TRUE(std::isnan(lk::cpu::exp_nonpositive(nan)));
    EXPECT_TRUE(std::isnan(lk::cpu::exp_nonpositive(-nan)));
    const float inf = std::numeric_limits<float>::infinity();
    EXPECT_TRUE(std::isnan(lk::cpu::exp_nonpositive(inf - inf)));
    EXPECT_EQ(lk::cpu::exp_nonpositive(-inf), lk::cpu::exp_nonpositive(-87.0f));
    EXPECT_NEAR(lk::cpu::exp_nonpositive(-1.0f), std::exp(-1.0f), 1e-7);
    EXPECT_EQ(lk::cpu::exp_nonpositive(0.0f), 1.0f);
}

TEST(VectorOps, ArgmaxBreaksTiesToLowestIndexAndRefusesNonFiniteRows) {
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    std::vector<float> ties{1.0f, 3.0f, 2.0f, 3.0f};
    EXPECT_EQ(lk::cpu::argmax(ties.data(), 4), 1);
    std::vector<float> single{-7.0f};
    EXPECT_EQ(lk::cpu::argmax(single.data(), 1), 0);
    std::vector<float> negative{-3.0f, -1.0f, -1.0f, -2.0f};
    EXPECT_EQ(lk::cpu::argmax(negative.data(), 4), 1);
    // One NaN or infinity anywhere (first, middle, last) and the row names no token.
    for (float bad : {nan, inf, -inf}) {
        for (int at = 0; at < 5; ++at) {
            std::vector<float> row{0.5f, -1.0f, 5.0f, 2.0f, 5.0f};
            row[at] = bad;
            EXPECT_EQ(lk::cpu::argmax(row.data(), 5), -1) << bad << " at " << at;
        }
    }
    const float largest = std::numeric_limits<float>::max();
    std::vector<float> extremes{-largest, largest, largest};
    EXPECT_EQ(lk::cpu::argmax(extremes.data(), 3), 1) << "finite extremes are ordinary values";
}

}  // namespace

namespace {

TEST(AlignedBuffer, SmallBuffersAreCacheLineAlignedAndLargeOnesStartOnA2MiBBoundary) {
    for (size_t bytes : {size_t{1}, size_t{100}, size_t{4096}, (size_t{1} << 21) - 1}) {
        lk::AlignedBuffer buffer(bytes);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.data()) % lk::AlignedBuffer::kAlignment, 0u) << bytes;
        EXPECT_EQ(buffer.size(), bytes);
        std::memset(buffer.data(), 0x5A, bytes);  // the whole size is usable
    }
    for (size_t bytes : {size_t{1} << 21, (size_t{3} << 20) + 7}) {
        lk::AlignedBuffer buffer(bytes);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.data()) % lk::AlignedBuffer::kHugePage, 0u) << bytes;
        std::memset(buffer.data(), 0x5A, bytes);
    }
    EXPECT_EQ(lk::AlignedBuffer(0).data(), nullptr);
}

}  // namespace

namespace {

// Every index in exactly one piece, pieces cut at multiples of the grain (or at the end), whatever the
// thread count.
TEST(ThreadPool, PiecesCoverTheRangeOnceOnGrainBoundaries) {
    for (int threads : {1, 2, 3, 5}) {
        lk::ThreadPool pool(threads);
        for (int64_t count : {0, 1, 7, 16, 100, 1037}) {
            for (int64_t grain : {1, 4, 16}) {
                std::vector<std::atomic<int>> covered(static_cast<size_t>(count));
                std::atomic<bool> aligned{true};
                pool.parallel_pieces(count, grain, [&](int64_t begin, int64_t end) {
                    if (begin % grain != 0 || (end != count && end % grain != 0) || begin >= end) aligned = false;
                    for (int64_t i = begin; i < end; ++i) covered[static_cast<size_t>(i)].fetch_add(1);
                });
                EXPECT_TRUE(aligned) << threads << " threads, count " << count << ", grain " << grain;
                for (int64_t i = 0; i < count; ++i)
                    ASSERT_EQ(covered[static_cast<size_t>(i)].load(), 1) << threads << " threads, count " << count << ", grain " << grain << ", index " << i;
            }
        }
    }
}

}  // namespace
