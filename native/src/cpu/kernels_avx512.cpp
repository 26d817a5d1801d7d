// AVX-512 (F, BW, VL) matrix kernels: the shared tiles with 16-float registers, and for BF16 weights
// a variant on AVX512_BF16's dot-product instruction. Compiled with those instruction sets enabled;
// each kernel runs only after best_matmul_kernel() has checked the CPU supports it.
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

// VDPBF16PS: lane i adds w[2i+1] x[2i+1], then w[2i] x[2i] (each product exact in F32, each add
// rounded to nearest even; denormal inputs and results read as zero; that order checked bit for bit
// on Zen 4 against an FMA emulation), 32 columns per instruction against the caller's BF16-packed inputs.
struct Bf16DotStep {
    using Acc = __m512;
    using Input = __m512bh;
    using Weights = __m512bh;
    static constexpr int kColumns = 32;
    static Input input(const MatmulArgs& a, int32_t x_row, int64_t c) {
        return reinterpret_cast<__m512bh>(_mm512_loadu_si512(a.x_bf16 + x_row * a.x_stride + c));
    }
    static Weights weights(const void* w, int64_t i) {
        return reinterpret_cast<__m512bh>(_mm512_loadu_si512(static_cast<const uint16_t*>(w) + i));
    }
    static Acc madd(Weights w, Input x, Acc acc) { return _mm512_dpbf16_ps(acc, w, x); }
    static float one(const void* w, int64_t i) { return Avx512::LoadBF16::one(w, i); }
};

}  // namespace

void matmul_avx512(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    if (is_quantized(a.dtype)) matmul_quantized_avx2(a, row_begin, row_end);
    else tiles::matmul<Avx512>(a, row_begin, row_end);
}

void matmul_avx512_bf16(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    if (is_quantized(a.dtype)) matmul_quantized_avx2(a, row_begin, row_end);
    else if (a.dtype == LK_DTYPE_BF16 && a.x_bf16 != nullptr) tiles::matmul_with<Avx512, Bf16DotStep>(a, row_begin, row_end);
    else tiles::matmul<Avx512>(a, row_begin, row_end);
}

}  // namespace lk::cpu
