// Small inline vector operations for the attention and normalization loops.
//
// Batch invariance: lookahead is lossless only if a token's logits are bit-identical whether it is
// computed alone or as one node of a draft tree. Every reduction here therefore has a fixed summation
// order written out in the source (eight running lanes, then a fixed combination), never one the
// auto-vectorizer picks, which could depend on pointer alignment and so on a node's place in a batch.
#pragma once

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <bit>
#include <cmath>
#include <limits>
#include <cstdint>

#include "../common/half.h"

namespace lk::cpu {
// Internal linkage: each backend variant compiles these with its own instruction set, and one shared
// (inline, external) definition would let the linker hand the AVX-512 copy to the portable variant.
namespace {

constexpr int kLanes = 8;

// What a KV cache stores per element: F32, or a 16-bit float (IEEE half or bfloat16) that every read
// widens to F32 exactly, so attention does the F32 path's arithmetic on the stored, rounded values and a
// key scores the same bits whichever path reads it.
struct Half {
    uint16_t bits;
};
struct BFloat16 {
    uint16_t bits;
};
inline float widen(float x) { return x; }
inline float widen(Half x) { return f16_to_float(x.bits); }
inline float widen(BFloat16 x) { return bf16_to_float(x.bits); }
template <typename T>
T narrow(float x);
template <>
inline float narrow<float>(float x) { return x; }
template <>
inline Half narrow<Half>(float x) { return Half{float_to_f16(x)}; }
template <>
inline BFloat16 narrow<BFloat16>(float x) { return BFloat16{float_to_bf16(x)}; }

// Float vectors of this translation unit's instruction set; Simd is the widest. Loops written with them
// do per element exactly what their scalar tails do (separate multiply and add), so the width never
// changes a result.
#if defined(__AVX2__)
struct Simd8 {
    using V = __m256;
    static constexpr int kWidth = 8;
    static constexpr int kValueSlices = 2;  // 8 accumulators of 16 registers
    static V zero() { return _mm256_setzero_ps(); }
    static V set1(float x) { return _mm256_set1_ps(x); }
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static V load(const Half* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
    static V load(const BFloat16* p) {
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
    }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
};
#endif
#if defined(__AVX512F__)
#define LK_HAVE_SIMD 1
struct Simd16 {
    using V = __m512;
    static constexpr int kWidth = 16;
    static constexpr int kValueSlices = 4;  // vectors of one value row summed per pass (16 accumulators)
    static V zero() { return _mm512_setzero_ps(); }
    static V set1(float x) { return _mm512_set1_ps(x); }
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static V load(const Half* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
    static V load(const BFloat16* p) {
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
    }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
};
using Simd = Simd16;
#elif defined(__AVX2__)
#define LK_HAVE_SIMD 1
using Simd = Simd8;
#endif

// Combines eight lane sums in a fixed tree order.
inline float combine_lanes(const float* lane) {
    return ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
}

inline float dot(const float* a, const float* b, int n) {
    float lane[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lane[l] += a[i + l] * b[i + l];
    for (int l = 0; i < n; ++i, ++l) lane[l] += a[i] * b[i];
    return combine_lanes(lane);
}

inline float sum_of_squares(const float* a, int n) { return dot(a, a, n); }

inline float sum(const float* a, int n) {
    float lane[kLanes] = {};
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lane[l] += a[i + l];
    for (int l = 0; i < n; ++i, ++l) lane[l] += a[i];
    return combine_lanes(lane);
}

// Largest of a[0..n) (n >= 1), kept in eight lanes so the loop vectorizes; max is exact, so the
// lane split cannot change the result.
inline float max_value(const float* a, int n) {
    float lane[kLanes];
    for (int l = 0; l < kLanes; ++l) lane[l] = a[0];
    int i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int l = 0; l < kLanes; ++l) lane[l] = a[i + l] > lane[l] ? a[i + l] : lane[l];
    float best = lane[0];
    for (int l = 1; l < kLanes; ++l) best = lane[l] > best ? lane[l] : best;
    for (; i < n; ++i) best = a[i] > best ? a[i] : best;
    return best;
}

// y[i] += a * x[i] (element-wise: any vectorization gives the same result).
inline void axpy(float a, const float* x, float* y, int n) {
    for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

// Keys are cached in blocks of kKeyBlock slots, [block][dim][slot in block]: the keys a query is scored
// against in one pass over a block are one contiguous run of memory (long sequential reads). Values are
// rows of d elements, [block][slot in block][dim].
constexpr int kKeyBlock = 16;

// Offset of key element (slot, dim t) in blocked keys whose blocks are in slot order.
inline int64_t key_offset(int d, int64_t slot, int t) {
    return (slot / kKeyBlock) * kKeyBlock * d + int64_t{t} * kKeyBlock + slot % kKeyBlock;
}

// One head's cache of one sequence, paged: its logical block b is physical block table[b] of the head's
// keys and values (the KV pool's layout, common/kv_pool.h), elements of type T (float, Half, BFloat16).
template <typename T>
struct PagedHead {
    const T* keys;
    const T* values;
    const int32_t* table;
    int d;

    const T* key_block(int64_t block) const { return keys + int64_t{table[block]} * kKeyBlock * d; }
    // Key element t of a slot.
    const T* key_at(int64_t slot, int t) const { return key_block(slot / kKeyBlock) + int64_t{t} * kKeyBlock + slot % kKeyBlock; }
    const T* value_row(int64_t slot) const {
        return values + (int64_t{table[slot / kKeyBlock]} * kKeyBlock + slot % kKeyBlock) * d;
    }
};

// The score of one query against the key in `slot`: sum over t of q[t] * k[t], in dimension order, each
// product rounded before it is added.
template <typename T>
inline float key_score(const float* q, const PagedHead<T>& head, int64_t slot) {
    const T* k = head.key_at(slot, 0);  // element t is kKeyBlock elements after element t - 1
    float acc = 0.0f;
    for (int t = 0; t < head.d; ++t) acc += q[t] * widen(k[int64_t{t} * kKeyBlock]);
    return acc;
}

#if defined(LK_HAVE_SIMD)
// Key blocks scored together: independent running sums hide the add latency.
constexpr int kBlocksPerPass = 4;

// row[s .. s + B * kKeyBlock) for the B logical blocks starting at slot s (a block start), each slot summed
// exactly as key_score does, whichever physical blocks hold them.
template <int B, typename T>
inline void score_blocks(const float* q, const PagedHead<T>& head, int s, float* row) {
    constexpr int kPer = kKeyBlock / Simd::kWidth;
    static_assert(kPer * Simd::kWidth == kKeyBlock);
    const int d = head.d;
    const T* blocks[B];
    for (int b = 0; b < B; ++b) blocks[b] = head.key_block(s / kKeyBlock + b);
    typename Simd::V acc[B][kPer];
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < kPer; ++h) acc[b][h] = Simd::zero();
    for (int t = 0; t < d; ++t) {
        const typename Simd::V qt = Simd::set1(q[t]);
        for (int b = 0; b < B; ++b)
            for (int h = 0; h < kPer; ++h)
                acc[b][h] = Simd::add(acc[b][h], Simd::mul(qt, Simd::load(blocks[b] + int64_t{t} * kKeyBlock + h * Simd::kWidth)));
    }
    for (int b = 0; b < B; ++b)
        for (int h = 0; h < kPer; ++h) Simd::store(row + s + b * kKeyBlock + h * Simd::kWidth, acc[b][h]);
}
#endif

// row[s] = key_score(q, head, s) for s in [begin, end), whole blocks of slots at a time: every lane does
// exactly key_score's arithmetic, so a key scores the same whether it is scored here (committed) or alone
// (a pending draft node), and wherever its block sits in the pool.
template <typename T>
inline void scores_against_columns(const float* q, const PagedHead<T>& head, int begin, int end, float* row) {
    const int d = head.d;
    int s = begin;
    for (; s < end && s % kLanes != 0; ++s) row[s] = key_score(q, head, s);
    auto eight = [&](int at) {  // at % kLanes == 0: the eight slots share a block
        float acc[kLanes] = {};
        const T* keys = head.key_at(at, 0);
        for (int t = 0; t < d; ++t) {
            const float qt = q[t];
            const T* k = keys + int64_t{t} * kKeyBlock;
            for (int l = 0; l < kLanes; ++l) acc[l] += qt * widen(k[l]);
        }
        for (int l = 0; l < kLanes; ++l) row[at + l] = acc[l];
    };
    if (s % kKeyBlock != 0 && s + kLanes <= end) {
        eight(s);
        s += kLanes;
    }
#if defined(LK_HAVE_SIMD)
    for (; s + kBlocksPerPass * kKeyBlock <= end; s += kBlocksPerPass * kKeyBlock) score_blocks<kBlocksPerPass, T>(q, head, s, row);
    for (; s + kKeyBlock <= end; s += kKeyBlock) score_blocks<1, T>(q, head, s, row);
#endif
    for (; s + kLanes <= end; s += kLanes) eight(s);
    for (; s < end; ++s) row[s] = key_score(q, head, s);
}

#if defined(LK_HAVE_SIMD)
// Elements [i, i + W * S::kWidth) of weighted_values' output in one pass over the value rows.
template <typename S, int W, typename T>
inline void weighted_value_slices(const float* weight, int n_past, const int32_t* visible, int total, const PagedHead<T>& head, int i,
                                  float* out) {
    static_assert(kKeyBlock % 4 == 0, "four consecutive committed rows share a block");
    const int d = head.d;
    typename S::V acc[4][W];
    for (int g = 0; g < 4; ++g)
        for (int k = 0; k < W; ++k) acc[g][k] = S::zero();
    auto add_row = [&](int group, int p, const T* v) {
        const typename S::V w = S::set1(weight[p]);
        for (int k = 0; k < W; ++k) acc[group][k] = S::add(acc[group][k], S::mul(w, S::load(v + i + k * S::kWidth)));
    };
    int p = 0;
    // The committed run starts at position 0, so p % 4 == 0 here and rows p .. p + 3 share a block.
    for (; p + 4 <= n_past; p += 4) {
        const T* v = head.value_row(p);
        add_row(0, p, v);
        add_row(1, p + 1, v + d);
        add_row(2, p + 2, v + 2 * d);
        add_row(3, p + 3, v + 3 * d);
    }
    for (; p < n_past; ++p) add_row(p & 3, p, head.value_row(p));
    for (; p < total; ++p) add_row(p & 3, p, head.value_row(int64_t{n_past} + visible[p - n_past]));
    for (int k = 0; k < W; ++k)
        S::store(out + i + k * S::kWidth, S::add(S::add(acc[0][k], acc[1][k]), S::add(acc[2][k], acc[3][k])));
}
#endif

// Attention output of one query: out[i] = sum over positions p in [0, total) of weight[p] * v_p[i], where
// v_p is the value row of slot p for committed positions (p < n_past) and of slot
// n_past + visible[p - n_past] for the query's pending ancestors. Four running sums, chosen by position mod
// 4, hide the add latency; as the choice depends only on the position, a node's output is the same in any
// batch (batch invariance).
template <typename T>
inline void weighted_values(const float* weight, int n_past, const int32_t* visible, int total, const PagedHead<T>& head, float* out) {
    const int d = head.d;
    int i = 0;
#if defined(LK_HAVE_SIMD)
    constexpr int kWide = Simd::kValueSlices * Simd::kWidth;
    for (; i + kWide <= d; i += kWide) weighted_value_slices<Simd, Simd::kValueSlices, T>(weight, n_past, visible, total, head, i, out);
    for (; i + Simd::kWidth <= d; i += Simd::kWidth) weighted_value_slices<Simd, 1, T>(weight, n_past, visible, total, head, i, out);
#endif
#if defined(__AVX512F__)
    // Heads narrower than a 16-float vector (or their last 8 floats) in 8-float vectors.
    for (; i + Simd8::kWidth <= d; i += Simd8::kWidth) weighted_value_slices<Simd8, 1, T>(weight, n_past, visible, total, head, i, out);
#endif
    for (; i < d; ++i) {
        float acc[4] = {};
        for (int p = 0; p < n_past; ++p) acc[p & 3] += weight[p] * widen(head.value_row(p)[i]);
        for (int p = n_past; p < total; ++p) acc[p & 3] += weight[p] * widen(head.value_row(int64_t{n_past} + visible[p - n_past])[i]);
        out[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

// exp(x) for x <= 0 (softmax inputs after subtracting the maximum), relative error below 2e-7.
// Branch-free so loops over it vectorize; inputs below -87 (including -inf) give exp(-87), about 1.6e-38;
// a NaN gives NaN.
inline float exp_nonpositive(float x) {
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kLn2High = 0.693359375f, kLn2Low = -2.12194440e-4f;
    constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    // Clamp at -87 through the bit pattern: as unsigned integers, negative floats grow with their
    // magnitude (and non-negative ones sort below them), and integer comparisons vectorize where float
    // ones would not. NaNs of either sign (above -inf's 0xFF800000) pass through, so a NaN score stays NaN.
    const uint32_t bits = std::bit_cast<uint32_t>(x);
    x = std::bit_cast<float>(bits < 0xC2AE0000u || bits > 0xFF800000u ? bits : 0xC2AE0000u);  // 0xC2AE0000 = -87.0f
    const float shifted = x * kLog2e + kRoundMagic;  // its low mantissa bits hold n as an integer
    const float n = shifted - kRoundMagic;
    const float r = (x - n * kLn2High) - n * kLn2Low;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    // 2^n from the integer bits rather than a float-to-int conversion, which is undefined for a NaN input
    // (the result is then NaN, as it should be).
    const uint32_t scale_bits = (std::bit_cast<uint32_t>(shifted) - std::bit_cast<uint32_t>(kRoundMagic) + 127u) << 23;
    return p * std::bit_cast<float>(scale_bits);
}

// out[i] = x[i] / rms(x) * weight[i]
inline void rms_norm(const float* x, const float* weight, float* out, int n, float eps) {
    const float mean_square = sum_of_squares(x, n) / static_cast<float>(n);
    // An overflowed sum would scale the row to zeros, a silent wrong answer: NaN makes the overflow reach
    // the logits, where greedy decoding reports it (LK_ERR_NON_FINITE).
    const float scale = std::isfinite(mean_square) ? 1.0f / std::sqrt(mean_square + eps)
                                                   : std::numeric_limits<float>::quiet_NaN();
    for (int i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// Rotates one head vector in place (HF rotate-half order): pairs (i, i + half) by angle pos * inv_freq[i],
// given the precomputed cos/sin of those angles.
inline void rope_rotate(float* head, const float* cos, const float* sin, int half) {
    float* lo = head;
    float* hi = head + half;
    for (int i = 0; i < half; ++i) {
        const float a = lo[i], b = hi[i];
        lo[i] = a * cos[i] - b * sin[i];
        hi[i] = b * cos[i] + a * sin[i];
    }
}

// gate[i] = silu(gate[i]) * up[i]
inline void swiglu(float* gate, const float* up, int n) {
    for (int i = 0; i < n; ++i) {
        const float g = gate[i];
        gate[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
}

// Rounds x to BF16 (float_to_bf16 in half.h): `rounded` gets the values as floats, `packed` their BF16 bits.
inline void round_to_bf16(const float* x, int64_t n, float* rounded, uint16_t* packed) {
    for (int64_t i = 0; i < n; ++i) {
        const uint16_t bf16 = float_to_bf16(x[i]);
        rounded[i] = std::bit_cast<float>(static_cast<uint32_t>(bf16) << 16);
        packed[i] = bf16;
    }
}

}  // namespace
}  // namespace lk::cpu
