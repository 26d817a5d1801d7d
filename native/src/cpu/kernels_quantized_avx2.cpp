// AVX2 products of quantized weight rows with quantized inputs (see MatmulArgs), used by the AVX-512
// levels too. Compiled with AVX2/FMA/F16C enabled; runs only after the CPU check. Each weight block is
// unpacked once per row and used for up to four inputs; every (row, input) result is computed on its own
// in a fixed order, the same whatever else is in the batch.
#include <immintrin.h>

#include <cstring>
#include <type_traits>

#include "../common/half.h"
#include "kernels.h"

namespace lk::cpu {
namespace {

float sum_lanes(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

__m256i load32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// F16C's conversion: exact, as f16_to_float is, without its branches (two per block and input otherwise).
float half_to_float(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

// ---- Q8_0 and Q4_0 (inputs in Q8_0 blocks of 32) ----

// The integer dot product of 32 signed weights (w_abs = |w|) with a Q8_0 block's 32 values in eight
// 32-bit lanes: |w| times x with w's sign (so that the unsigned-by-signed byte multiply-add applies), pairs
// summed to 16 bits, then to 32. Exact: a pair is at most 2 x 128 x 127 (x is never -128), a lane four
// products.
__m256i block_dot(__m256i w_abs, __m256i w, const int8_t* x) {
    const __m256i pairs = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(load32(x), w));
    return _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
}

// Q4_0's 32 values as signed bytes: low nibbles are values 0..15, high nibbles 16..31.
__m256i q4_0_bytes(const BlockQ4_0& b) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), nibble), _mm_and_si128(raw, nibble));
    return _mm256_sub_epi8(u, _mm256_set1_epi8(8));
}

// Q5_0's 32 values as signed bytes: Q4_0's nibbles with bit i of qh as value i's fifth bit. Byte i of the
// broadcast qh picks qh's byte i / 8 and tests bit i % 8 of it.
__m256i q5_0_bytes(const BlockQ5_0& b) {
    uint32_t high;
    std::memcpy(&high, b.qh, sizeof high);
    const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(high)),
                                               _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
    const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
    const __m256i fifth = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(0x10));
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b.qs));
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m256i low = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(raw, 4), nibble), _mm_and_si128(raw, nibble));
    return _mm256_sub_epi8(_mm256_or_si256(low, fifth), _mm256_set1_epi8(16));
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
        const __m256i wv = bytes(w[b]), w_abs = _mm256_sign_epi8(wv, wv);
        const float dw = half_to_float(w[b].d);
        for (int j = 0; j < RX; ++j) {
            const BlockQ8_0& xb = a.x_q8[(x_row + j) * blocks + b];
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(dw * half_to_float(xb.d)), _mm256_cvtepi32_ps(block_dot(w_abs, wv, xb.qs)), acc[j]);
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
// 16-bit scale each vector's pairs take, and what the scalar kernel adds outside that integer dot product.
struct Unpacked {
    __m256i values[8];
    __m256i scales[8];
    __m128i mins;         // Q4_K, Q5_K: the eight sub-blocks' mins as 16-bit lanes
    __m256i q6_scales;    // Q6_K: the sixteen scales as 16-bit lanes (the values are q + 32, so 32 x
                          // sum(scale x bsum) comes off the dot product)
    float d, dmin;
};

// A byte shuffle that spreads 16-bit lane s of each 128-bit half over the whole half.
#define LK_SPREAD_LANE(s) _mm256_set1_epi16(static_cast<int16_t>(0x0100 + 0x0202 * (s)))

// The unpacking below runs once per super-block and row, its results used by up to four inputs: inlined,
// so that they stay in registers (or at worst the stack) instead of crossing a call.
#define LK_INLINE [[gnu::always_inline]] inline

// The twelve packed bytes as eight 6-bit scales then eight 6-bit mins (the layout k_scale_min reads, moved
// with 32-bit masks): bytes 0..3 keep their low six bits; 4..7 take the low nibbles of 8..11 and the top
// bits of 0..3; the mins likewise from bytes 4..7, the high nibbles of 8..11 and the top bits of 4..7.
LK_INLINE void unpack_scales_with_mins(const uint8_t* packed, Unpacked& u) {
    uint32_t w[3];
    std::memcpy(w, packed, 12);
    constexpr uint32_t low6 = 0x3F3F3F3Fu, low4 = 0x0F0F0F0Fu, low2 = 0x03030303u;
    const uint32_t scales[2] = {w[0] & low6, (w[2] & low4) | (((w[0] >> 6) & low2) << 4)};
    const uint32_t mins[2] = {w[1] & low6, ((w[2] >> 4) & low4) | (((w[1] >> 6) & low2) << 4)};
    const __m128i scale16 = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales)));
    const __m256i both = _mm256_broadcastsi128_si256(scale16);
    for (int s = 0; s < 8; ++s) u.scales[s] = _mm256_shuffle_epi8(both, LK_SPREAD_LANE(s));
    u.mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mins)));
}

LK_INLINE void unpack(const BlockQ4_K& b, Unpacked& u) {
    const __m256i nibble = _mm256_set1_epi8(0x0F);
    for (int p = 0; p < 4; ++p) {
        const __m256i raw = load32(b.qs + 32 * p);
        u.values[2 * p] = _mm256_and_si256(raw, nibble);
        u.values[2 * p + 1] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), nibble);
    }
    unpack_scales_with_mins(b.scales, u);
    u.d = half_to_float(b.d);
    u.dmin = half_to_float(b.dmin);
}

LK_INLINE void unpack(const BlockQ5_K& b, Unpacked& u) {
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
    u.d = half_to_float(b.d);
    u.dmin = half_to_float(b.dmin);
}

LK_INLINE void unpack(const BlockQ6_K& b, Unpacked& u) {
    const __m256i nibble = _mm256_set1_epi8(0x0F), two_bits = _mm256_set1_epi8(3);
    const __m256i scale16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b.scales)));
    const __m256i low_scales = _mm256_permute2x128_si256(scale16, scale16, 0x00);
    const __m256i high_scales = _mm256_permute2x128_si256(scale16, scale16, 0x11);
    for (int h = 0; h < 2; ++h) {
        const __m256i ql0 = load32(b.ql + 64 * h), ql1 = load32(b.ql + 64 * h + 32), qh = load32(b.qh + 32 * h);
        const __m256i lows[4] = {_mm256_and_si256(ql0, nibble), _mm256_and_si256(ql1, nibble),
                                 _mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble),
                                 _mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble)};
        for (int q = 0; q < 4; ++q) {
            const __m256i high = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * q)), two_bits);
            const int v = 4 * h + q;  // values 32v..32v+31: sub-blocks 2v (first 16) and 2v + 1
            u.values[v] = _mm256_or_si256(lows[q], _mm256_slli_epi16(high, 4));
            // Scales 2v and 2v + 1 are 16-bit lanes v % 4 * 2 (+1) of 128-bit half v / 4 of scale16.
            const __m256i half = v < 4 ? low_scales : high_scales;
            u.scales[v] = _mm256_blend_epi32(_mm256_shuffle_epi8(half, LK_SPREAD_LANE(2 * (v % 4))),
                                             _mm256_shuffle_epi8(half, LK_SPREAD_LANE(2 * (v % 4) + 1)), 0xF0);
        }
    }
    u.q6_scales = scale16;
    u.d = half_to_float(b.d);
}

// sum(scale x value x input) over the super-block in eight 32-bit lanes (lane l: bytes 4l..4l+3 of each
// vector): exact (a pair is at most 2 x 63 x 127, a scaled lane at most 4 x 63 x 127 x 128 before the
// eight vectors are added).
LK_INLINE __m256i scaled_dot(const Unpacked& u, const BlockQ8_K& x) {
    __m256i acc = _mm256_setzero_si256();
    for (int v = 0; v < 8; ++v) {
        const __m256i pairs = _mm256_maddubs_epi16(u.values[v], load32(x.qs + 32 * v));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, u.scales[v]));
    }
    return acc;
}

// (s0 + s2) + (s1 + s3): a fixed order, which the scalar kernel follows too.
LK_INLINE float sum4(__m128 s) {
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps(s, s, 1)));
}

template <typename Block>
constexpr bool kHasMins = !std::is_same_v<Block, BlockQ6_K>;

// RX inputs against one weight row. Per super-block and input the scaled dot product's eight integer lanes
// (and the mins' four) are converted to floats and multiply-added into vector accumulators with d x x.d
// (dmin x x.d); the lanes are summed once at the end. The scalar kernel forms the same lanes and
// multiply-adds, so the two give the same bits.
template <int RX, typename Block>
void row_k_quant(const MatmulArgs& a, int64_t r, int32_t x_row) {
    const int64_t blocks = a.cols / kQkK;
    const Block* w = static_cast<const Block*>(a.weights) + r * blocks;
    __m256 acc[RX];
    __m128 min_acc[RX];
    for (int j = 0; j < RX; ++j) {
        acc[j] = _mm256_setzero_ps();
        min_acc[j] = _mm_setzero_ps();
    }
    Unpacked u;
    for (int64_t b = 0; b < blocks; ++b) {
        unpack(w[b], u);
        for (int j = 0; j < RX; ++j) {
            const BlockQ8_K& xb = a.x_q8k[(x_row + j) * blocks + b];
            const __m256i bsums = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.bsums));
            __m256i lanes = scaled_dot(u, xb);
            if constexpr (kHasMins<Block>) {
                // The mins multiply sums of 32 inputs: adjacent bsums added (at most 32 x 127, a 16-bit lane).
                const __m128i pair_sums = _mm_hadd_epi16(_mm256_castsi256_si128(bsums), _mm256_extracti128_si256(bsums, 1));
                const __m128i mins = _mm_madd_epi16(pair_sums, u.mins);
                min_acc[j] = _mm_fmadd_ps(_mm_set1_ps(u.dmin * xb.d), _mm_cvtepi32_ps(mins), min_acc[j]);
            } else {
                // The values are q + 32: 32 x sum(scale x bsum) comes off, lane by lane.
                lanes = _mm256_sub_epi32(lanes, _mm256_slli_epi32(_mm256_madd_epi16(bsums, u.q6_scales), 5));
            }
            acc[j] = _mm256_fmadd_ps(_mm256_set1_ps(u.d * xb.d), _mm256_cvtepi32_ps(lanes), acc[j]);
        }
    }
    for (int j = 0; j < RX; ++j) {
        const __m128 folded = _mm_add_ps(_mm256_castps256_ps128(acc[j]), _mm256_extractf128_ps(acc[j], 1));
        const float sum = sum4(folded) - sum4(min_acc[j]);
        float& out = a.y[(x_row + j) * a.y_stride + r];
        out = a.accumulate ? out + sum : sum;
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
struct RowQ5_0 {
    static void run(const MatmulArgs& a, int64_t r, int32_t j) { row_q8_0_inputs<RX, BlockQ5_0>(a, r, j, q5_0_bytes); }
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
        case LK_DTYPE_Q5_0: rows<RowQ5_0>(a, row_begin, row_end); break;
        case LK_DTYPE_Q4_K: rows<RowQ4_K>(a, row_begin, row_end); break;
        case LK_DTYPE_Q5_K: rows<RowQ5_K>(a, row_begin, row_end); break;
        default: rows<RowQ6_K>(a, row_begin, row_end); break;
    }
}

}  // namespace lk::cpu
