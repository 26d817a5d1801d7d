// AVX2 + FMA + F16C matrix kernel. This file alone is compiled with those instruction sets enabled;
// it only runs after best_matmul_kernel() has checked the CPU supports them.
#include <immintrin.h>

#include "../common/half.h"
#include "kernels.h"
#include "matmul_tiles.h"

namespace lk::cpu {
namespace {

struct Avx2 {
    using Vec = __m256;
    static constexpr int kWidth = 8;
    // 16 vector registers: up to 8 accumulators (4 streams x 2 inputs, 2 x 4) beside the inputs.
    static constexpr int kMaxAccumulators = 8, kWideGroup = 4;

    static Vec zero() { return _mm256_setzero_ps(); }
    static Vec load(const float* p) { return _mm256_loadu_ps(p); }
    static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
    static float sum(Vec v) {
        __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        return _mm_cvtss_f32(s);
    }

    struct LoadF32 {
        static Vec vec(const void* w, int64_t i) { return _mm256_loadu_ps(static_cast<const float*>(w) + i); }
        static float one(const void* w, int64_t i) { return static_cast<const float*>(w)[i]; }
    };
    struct LoadF16 {
        static Vec vec(const void* w, int64_t i) {
            return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i)));
        }
        static float one(const void* w, int64_t i) { return f16_to_float(static_cast<const uint16_t*>(w)[i]); }
    };
    struct LoadBF16 {
        static Vec vec(const void* w, int64_t i) {
            const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(w) + i));
            return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
        }
        static float one(const void* w, int64_t i) { return bf16_to_float(static_cast<const uint16_t*>(w)[i]); }
    };
};

// The integer dot product of two Q8_0 blocks in eight 32-bit lanes: |w| times x with w's sign (so that
// the unsigned-by-signed byte multiply-add applies), pairs summed to 16 bits, then to 32. Exact: a pair is
// at most 2 x 128 x 127 (x is never -128: inputs are quantized to [-127, 127]), a lane four products.
inline __m256i block_dot(__m256i w_abs, __m256i w, const int8_t* x) {
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    const __m256i pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(xv, w));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// RX inputs against one weight row: each block's weights loaded once; per input, the block's lanes as
// floats times both scales added to one vector accumulator (blocks in order), then a fixed horizontal sum.
template <int RX>
void q8_0_row(const MatmulArgs& a, int64_t r, int32_t x_row) {
    const int64_t blocks = a.cols / kQ8Block;
    const BlockQ8_0* w = static_cast<const BlockQ8_0*>(a.weights) + r * blocks;
    __m256 acc[RX];
    for (int j = 0; j < RX; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
        const __m256i w_abs = _mm256_sign_epi8(wv, wv);
        const float dw = f16_to_float(w[b].d);
        for (int j = 0; j < RX; ++j) {
            const BlockQ8_0& xb = a.x_q8[(x_row + j) * blocks + b];
            const __m256 lanes = _mm256_cvtepi32_ps(block_dot(w_abs, wv, xb.qs));
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * f16_to_float(xb.d)), lanes, acc[j]);
        }
    }
    for (int j = 0; j < RX; ++j) {
        float& out = a.y[(x_row + j) * a.y_stride + r];
        const float sum = Avx2::sum(acc[j]);
        out = a.accumulate ? out + sum : sum;
    }
}

}  // namespace

void matmul_q8_0_avx2(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; ++r) {
        int32_t j = 0;
        for (; j + 4 <= a.n_x; j += 4) q8_0_row<4>(a, r, j);
        for (; j < a.n_x; ++j) q8_0_row<1>(a, r, j);
    }
}

void matmul_avx2(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    if (a.dtype == LK_DTYPE_Q8_0) matmul_q8_0_avx2(a, row_begin, row_end);
    else tiles::matmul<Avx2>(a, row_begin, row_end);
}

}  // namespace lk::cpu
