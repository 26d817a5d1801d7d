// AVX2 products of quantized weight rows with quantized inputs (see MatmulArgs), used by the AVX-512
// levels too. Compiled with AVX2/FMA/F16C enabled; runs only after the CPU check. Each weight block is
// unpacked once per row and used for up to four inputs; every (row, input) result is computed on its own
// in a fixed order, the same whatever else is in the batch.
#include <immintrin.h>

#include <type_traits>

#include "../common/half.h"
#include "kernels.h"

namespace lk::cpu {
namespace {

int32_t sum_lanes(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

float sum_lanes(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// ---- Q8_0 and Q4_0 (inputs in Q8_0 blocks of 32) ----

// The integer dot product of 32 signed weights with a Q8_0 block's 32 values in eight 32-bit lanes: |w|
// times x with w's sign (so that the unsigned-by-signed byte multiply-add applies), pairs summed to 16
// bits, then to 32. Exact: a pair is at most 2 x 128 x 127 (x is never -128), a lane four products.
__m256i block_dot(__m256i w, const int8_t* x) {
    const __m256i pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(load32(x), w));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// Q4_0's 32 values as signed bytes: low nibbles are values 0..15, high nibbles 16..31.
__m256i q4_0_bytes(const BlockQ4_0& b) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), nibble), _mm_and_si128(raw, nibble));
    return _mm256_sub_epi8(u, _mm256_set1_epi8(8));
}

// RX inputs against one weight row: per block the lanes as floats times both scales, added to one vector
// accumulator per input (blocks in order), then a fixed horizontal sum.
template <int RX, typename Block, typename Bytes>
void row_q8_0_inputs(const MatmulArgs& a, int64_t r, int32_t x_row, Bytes bytes) {
    const int64_t blocks = a.cols / kQ8Block;
    const Block* w = static_cast<const Block*>(a.weights) + r * blocks;
    __m256 acc[RX];
    for (int j = 0; j < RX; ++j) acc[j] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
        const __m256i wv = bytes(w[b]);
        const float dw = f16_to_float(w[b].d);
        for (int j = 0; j < RX; ++j) {
            const BlockQ8_0& xb = a.x_q8[(x_row + j) * blocks + b];
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * f16_to_float(xb.d)), _mm256_cvtepi32_ps(block_dot(wv, xb.qs)), acc[j]);
        }
    }
    for (int j = 0; j < RX; ++j) {
        float& out = a.y[(x_row + j) * a.y_stride + r];
        const float sum = sum_lanes(acc[j]);
        out = a.accumulate ? out + sum : sum;
    }
}

// ---- the k-quants (inputs in Q8_K blocks of 256) ----

// A super-block unpacked for the byte multiply-adds: its values as unsigned bytes (32 per vector), the
// 16-bit scale each vector's pairs take, and what the scalar kernel adds outside the integer dot product.
struct Unpacked {
    __m256i values[8];
    __m256i scales[8];
    float d, dmin;
    int mins[8];        // Q4_K, Q5_K: the sub-blocks' mins
    int8_t q6_scales[16];  // Q6_K: the values are q + 32, so 32 x sum(scale x bsum) comes off the dot product
};

void unpack_scales_with_mins(const uint8_t* packed, Unpacked& u) {
    for (int j = 0; j < 8; ++j) {
        int scale, min;
        k_scale_min(packed, j, scale, min);
        u.scales[j] = _mm256_set1_epi16(static_cast<int16_t>(scale));
        u.mins[j] = min;
    }
}

void unpack(const BlockQ4_K& b, Unpacked& u) {
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    for (int p = 0; p < 4; ++p) {
        const __m256i raw = load32(b.qs + 32 * p);
        u.values[2 * p] = _mm256_and_si256(raw, nibble);
        u.values[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nibble);
    }
    unpack_scales_with_mins(b.scales, u);
    u.d = f16_to_float(b.d);
    u.dmin = f16_to_float(b.dmin);
}

void unpack(const BlockQ5_K& b, Unpacked& u) {
    const __m256i nibble = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const __m256i high = load32(b.qh);
    for (int p = 0; p < 4; ++p) {
        const __m256i raw = load32(b.qs + 32 * p);
        for (int half = 0; half < 2; ++half) {
            const int s = 2 * p + half;  // bit s of qh[l] is the fifth bit of value l of sub-block s
            const __m256i low = half == 0 ? _mm256_and_si256(raw, nibble) : _mm256_and_si256(_mm256_srli_epi16(raw, 4), nibble);
            const __m256i fifth = _mm256_slli_epi16(_mm256_and_si256(_mm256_srl_epi16(high, _mm_cvtsi32_si128(s)), one), 4);
            u.values[s] = _mm256_or_si256(low, fifth);
        }
    }
    unpack_scales_with_mins(b.scales, u);
    u.d = f16_to_float(b.d);
    u.dmin = f16_to_float(b.dmin);
}

void unpack(const BlockQ6_K& b, Unpacked& u) {
    const __m256i nibble = _mm256_set1_epi8(0x0F), two_bits = _mm256_set1_epi8(3);
    for (int h = 0; h < 2; ++h) {
        const __m256i ql0 = load32(b.ql + 64 * h), ql1 = load32(b.ql + 64 * h + 32), qh = load32(b.qh + 32 * h);
        const __m256i lows[4] = {_mm256_and_si256(ql0, nibble), _mm256_and_si256(ql1, nibble),
                                 _mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble),
                                 _mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble)};
        for (int q = 0; q < 4; ++q) {
            const __m256i high = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * q)), two_bits);
            const int v = 4 * h + q;  // values 32v..32v+31: sub-blocks 2v (first 16) and 2v + 1
            u.values[v] = _mm256_or_si256(lows[q], _mm256_slli_epi16(high, 4));
            u.scales[v] = _mm256_set_m128i(_mm_set1_epi16(b.scales[2 * v + 1]), _mm_set1_epi16(b.scales[2 * v]));
        }
    }
    for (int g = 0; g < 16; ++g) u.q6_scales[g] = b.scales[g];
    u.d = f16_to_float(b.d);
}

// sum(scale x value x input) over the super-block: exact in 32 bits (a pair is at most 2 x 63 x 127, a
// scaled lane at most 4 x 63 x 127 x 128 before the eight vectors are added).
int32_t scaled_dot(const Unpacked& u, const BlockQ8_K& x) {
    __m256i acc = _mm256_setzero_si256();
    for (int v = 0; v < 8; ++v) {
        const __m256i pairs = _mm256_maddubs_epi16(u.values[v], load32(x.qs + 32 * v));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, u.scales[v]));
    }
    return sum_lanes(acc);
}

template <typename Block>
constexpr bool kHasMins = !std::is_same_v<Block, BlockQ6_K>;

template <int RX, typename Block>
void row_k_quant(const MatmulArgs& a, int64_t r, int32_t x_row) {
    const int64_t blocks = a.cols / kQkK;
    const Block* w = static_cast<const Block*>(a.weights) + r * blocks;
    float sums[RX] = {};
    Unpacked u;
    for (int64_t b = 0; b < blocks; ++b) {
        unpack(w[b], u);
        for (int j = 0; j < RX; ++j) {
            const BlockQ8_K& xb = a.x_q8k[(x_row + j) * blocks + b];
            int32_t scaled = scaled_dot(u, xb);
            if constexpr (kHasMins<Block>) {
                int32_t mins = 0;
                for (int s = 0; s < 8; ++s) mins += u.mins[s] * (xb.bsums[2 * s] + xb.bsums[2 * s + 1]);
                sums[j] += u.d * xb.d * static_cast<float>(scaled);
                sums[j] -= u.dmin * xb.d * static_cast<float>(mins);
            } else {
                int32_t offset = 0;
                for (int g = 0; g < 16; ++g) offset += u.q6_scales[g] * xb.bsums[g];
                scaled -= 32 * offset;
                sums[j] += u.d * xb.d * static_cast<float>(scaled);
            }
        }
    }
    for (int j = 0; j < RX; ++j) {
        float& out = a.y[(x_row + j) * a.y_stride + r];
        out = a.accumulate ? out + sums[j] : sums[j];
    }
}

template <template <int> typename Row>
void rows(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; ++r) {
        int32_t j = 0;
        for (; j + 4 <= a.n_x; j += 4) Row<4>::run(a, r, j);
        for (; j < a.n_x; ++j) Row<1>::run(a, r, j);
    }
}

template <int RX>
struct RowQ8_0 {
    static void run(const MatmulArgs& a, int64_t r, int32_t j) {
        row_q8_0_inputs<RX, BlockQ8_0>(a, r, j, [](const BlockQ8_0& b) { return load32(b.qs); });
    }
};
template <int RX>
struct RowQ4_0 {
    static void run(const MatmulArgs& a, int64_t r, int32_t j) { row_q8_0_inputs<RX, BlockQ4_0>(a, r, j, q4_0_bytes); }
};
template <int RX>
struct RowQ4_K {
    static void run(const MatmulArgs& a, int64_t r, int32_t j) { row_k_quant<RX, BlockQ4_K>(a, r, j); }
};
template <int RX>
struct RowQ5_K {
    static void run(const MatmulArgs& a, int64_t r, int32_t j) { row_k_quant<RX, BlockQ5_K>(a, r, j); }
};
template <int RX>
struct RowQ6_K {
    static void run(const MatmulArgs& a, int64_t r, int32_t j) { row_k_quant<RX, BlockQ6_K>(a, r, j); }
};

}  // namespace

void matmul_quantized_avx2(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    switch (a.dtype) {
        case LK_DTYPE_Q8_0: rows<RowQ8_0>(a, row_begin, row_end); break;
        case LK_DTYPE_Q4_0: rows<RowQ4_0>(a, row_begin, row_end); break;
        case LK_DTYPE_Q4_K: rows<RowQ4_K>(a, row_begin, row_end); break;
        case LK_DTYPE_Q5_K: rows<RowQ5_K>(a, row_begin, row_end); break;
        default: rows<RowQ6_K>(a, row_begin, row_end); break;
    }
}

}  // namespace lk::cpu
