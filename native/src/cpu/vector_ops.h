// Small inline vector operations for the attention and normalization loops.
//
// Batch invariance: lookahead is lossless only if a token's logits are bit-identical whether it is
// computed alone or as one node of a draft tree. Every reduction here therefore has a fixed summation
// order written out in the source (eight running lanes, then a fixed combination), never one the
// auto-vectorizer picks, which could depend on pointer alignment and so on a node's place in a batch.
#pragma once

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include <bit>
#include <cmath>
#include <cstdint>

namespace lk::cpu {
// Internal linkage: each backend variant compiles these with its own instruction set, and one shared
// (inline, external) definition would let the linker hand the AVX-512 copy to the portable variant.
namespace {

constexpr int kLanes = 8;

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

// row[s] = sum over t of q[t] * keys[t * stride + s], for s in [begin, end): scores of one query against
// transposed keys. Eight slots are accumulated in registers across all dimensions; every score is
// summed in dimension order starting from 0, exactly like key_score below.
inline void scores_against_columns(const float* q, const float* keys, int64_t stride, int d, int begin, int end,
                                   float* row) {
    int s = begin;
#if defined(__AVX2__)
    // Explicit separate multiply and add (no FMA): each lane computes exactly what the scalar tail does.
    for (; s + 2 * kLanes <= end; s += 2 * kLanes) {
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        for (int t = 0; t < d; ++t) {
            const __m256 qt = _mm256_set1_ps(q[t]);
            const float* k = keys + t * stride + s;
            acc0 = _mm256_add_ps(acc0, _mm256_mul_ps(qt, _mm256_loadu_ps(k)));
            acc1 = _mm256_add_ps(acc1, _mm256_mul_ps(qt, _mm256_loadu_ps(k + kLanes)));
        }
        _mm256_storeu_ps(row + s, acc0);
        _mm256_storeu_ps(row + s + kLanes, acc1);
    }
#endif
    for (; s + kLanes <= end; s += kLanes) {
        float acc[kLanes] = {};
        for (int t = 0; t < d; ++t) {
            const float qt = q[t];
            const float* k = keys + t * stride + s;
            for (int l = 0; l < kLanes; ++l) acc[l] += qt * k[l];
        }
        for (int l = 0; l < kLanes; ++l) row[s + l] = acc[l];
    }
    for (; s < end; ++s) {
        float acc = 0.0f;
        for (int t = 0; t < d; ++t) acc += q[t] * keys[t * stride + s];
        row[s] = acc;
    }
}

// The score of one query against the key in column `slot` of transposed keys.
inline float key_score(const float* q, const float* keys, int64_t stride, int d, int64_t slot) {
    float acc = 0.0f;
    for (int t = 0; t < d; ++t) acc += q[t] * keys[t * stride + slot];
    return acc;
}

// Attention output of one query: out[i] = sum over positions p in [0, total) of weight[p] * v_p[i], where
// v_p is row p of `values` for committed positions (p < n_past) and row n_past + visible[p - n_past] for
// the query's pending ancestors. Four running sums, chosen by position mod 4, hide the add latency; as
// the choice depends only on the position, a node's output is the same in any batch (batch invariance).
inline void weighted_values(const float* weight, int n_past, const int32_t* visible, int total, const float* values,
                            int64_t stride, int d, float* out) {
    const float* pending = values + int64_t{n_past} * stride;
    int i = 0;
#if defined(__AVX2__)
    for (; i + kLanes <= d; i += kLanes) {
        // acc[k] sums the positions p with p % 4 == k; the committed run is unrolled by four (it starts
        // at position 0), the pending positions are few and take the indexed path.
        __m256 acc0 = _mm256_setzero_ps(), acc1 = acc0, acc2 = acc0, acc3 = acc0;
        auto term = [&](int p, const float* v) { return _mm256_mul_ps(_mm256_set1_ps(weight[p]), _mm256_loadu_ps(v + i)); };
        int p = 0;
        for (; p + 4 <= n_past; p += 4) {
            acc0 = _mm256_add_ps(acc0, term(p, values + p * stride));
            acc1 = _mm256_add_ps(acc1, term(p + 1, values + (p + 1) * stride));
            acc2 = _mm256_add_ps(acc2, term(p + 2, values + (p + 2) * stride));
            acc3 = _mm256_add_ps(acc3, term(p + 3, values + (p + 3) * stride));
        }
        __m256 acc[4] = {acc0, acc1, acc2, acc3};
        for (; p < n_past; ++p) acc[p & 3] = _mm256_add_ps(acc[p & 3], term(p, values + p * stride));
        for (; p < total; ++p) acc[p & 3] = _mm256_add_ps(acc[p & 3], term(p, pending + visible[p - n_past] * stride));
        _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
    }
#endif
    for (; i < d; ++i) {
        float acc[4] = {};
        for (int p = 0; p < n_past; ++p) acc[p & 3] += weight[p] * values[p * stride + i];
        for (int p = n_past; p < total; ++p) acc[p & 3] += weight[p] * pending[visible[p - n_past] * stride + i];
        out[i] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

// exp(x) for x <= 0 (softmax inputs after subtracting the maximum), relative error below 2e-7.
// Branch-free so loops over it vectorize; inputs below -87 (including -inf) give exp(-87), about 1.6e-38.
inline float exp_nonpositive(float x) {
    constexpr float kLog2e = 1.44269504088896341f;
    constexpr float kLn2High = 0.693359375f, kLn2Low = -2.12194440e-4f;
    constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
    // Clamp at -87 through the bit pattern: as unsigned integers, negative floats grow with their
    // magnitude (and non-negative ones sort below them), and an integer minimum vectorizes where a
    // float comparison would not.
    const uint32_t bits = std::bit_cast<uint32_t>(x);
    x = std::bit_cast<float>(bits < 0xC2AE0000u ? bits : 0xC2AE0000u);  // 0xC2AE0000 = -87.0f
    const float n = (x * kLog2e + kRoundMagic) - kRoundMagic;
    const float r = (x - n * kLn2High) - n * kLn2Low;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

// out[i] = x[i] / rms(x) * weight[i]
inline void rms_norm(const float* x, const float* weight, float* out, int n, float eps) {
    const float scale = 1.0f / std::sqrt(sum_of_squares(x, n) / static_cast<float>(n) + eps);
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

}  // namespace
}  // namespace lk::cpu
