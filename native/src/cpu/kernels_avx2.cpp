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

}  // namespace

void matmul_avx2(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    if (is_quantized(a.dtype)) matmul_quantized_avx2(a, row_begin, row_end);
    else tiles::matmul<Avx2>(a, row_begin, row_end);
}

}  // namespace lk::cpu
