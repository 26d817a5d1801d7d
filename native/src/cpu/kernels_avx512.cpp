// AVX-512 (F, BW, VL) matrix kernel: the shared tiles with 16-float registers. Compiled with AVX-512
// enabled; it only runs after best_matmul_kernel() has checked the CPU supports it.
#include <immintrin.h>

#include "../common/half.h"
#include "kernels.h"
#include "matmul_tiles.h"

namespace lk::cpu {
namespace {

struct Avx512 {
    using Vec = __m512;
    static constexpr int kWidth = 16;
    // 32 vector registers: up to 16 accumulators (4 streams x 4 inputs, 2 x 8) beside the inputs.
    static constexpr int kMaxAccumulators = 16, kWideGroup = 8;

    static Vec zero() { return _mm512_setzero_ps(); }
    static Vec load(const float* p) { return _mm512_loadu_ps(p); }
    static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
    static float sum(Vec v) { return _mm512_reduce_add_ps(v); }

    struct LoadF32 {
        static Vec vec(const void* w, int64_t i) { return _mm512_loadu_ps(static_cast<const float*>(w) + i); }
        static float one(const void* w, int64_t i) { return static_cast<const float*>(w)[i]; }
    };
    struct LoadF16 {
        static Vec vec(const void* w, int64_t i) {
            return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i)));
        }
        static float one(const void* w, int64_t i) { return f16_to_float(static_cast<const uint16_t*>(w)[i]); }
    };
    struct LoadBF16 {
        static Vec vec(const void* w, int64_t i) {
            const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
            return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
        }
        static float one(const void* w, int64_t i) { return bf16_to_float(static_cast<const uint16_t*>(w)[i]); }
    };
};

}  // namespace

void matmul_avx512(const MatmulArgs& a, int64_t row_begin, int64_t row_end) { tiles::matmul<Avx512>(a, row_begin, row_end); }

}  // namespace lk::cpu
