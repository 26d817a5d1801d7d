// llama.cpp's k-quant formats: super-blocks of 256 values in sub-blocks with integer scales (Q4_K, Q5_K:
// eight sub-blocks of 32 with a 6-bit scale and a 6-bit min each; Q6_K: sixteen of 16 with a signed 8-bit
// scale), and Q8_K, the 8-bit format llama.cpp quantizes matrix inputs to for them. A product of a k-quant
// row with a Q8_K row is exact integer arithmetic per super-block, then two float multiplies.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "half.h"

namespace lk {

constexpr int kQkK = 256;

struct BlockQ4_K {
    uint16_t d;     // IEEE half: scale of the sub-block scales
    uint16_t dmin;  // IEEE half: scale of the sub-block mins
    uint8_t scales[12];  // eight 6-bit scales and eight 6-bit mins, packed (k_scale_min)
    uint8_t qs[kQkK / 2];  // per 64 values: the first 32 in low nibbles, the next 32 in high nibbles
};
static_assert(sizeof(BlockQ4_K) == 144, "llama.cpp's block_q4_K layout");

struct BlockQ5_K {
    uint16_t d;
    uint16_t dmin;
    uint8_t scales[12];
    uint8_t qh[kQkK / 8];  // the fifth bits: bit 2k of qh[l] for value l of pair k's first 32, bit 2k+1 the next
    uint8_t qs[kQkK / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "llama.cpp's block_q5_K layout");

struct BlockQ6_K {
    uint8_t ql[kQkK / 2];  // low four bits
    uint8_t qh[kQkK / 4];  // high two bits
    int8_t scales[kQkK / 16];
    uint16_t d;
};
static_assert(sizeof(BlockQ6_K) == 210, "llama.cpp's block_q6_K layout");

struct BlockQ8_K {
    float d;
    int8_t qs[kQkK];
    int16_t bsums[kQkK / 16];  // sums of each 16 qs: the mins' part of a Q4_K / Q5_K product
};
static_assert(sizeof(BlockQ8_K) == 292, "llama.cpp's block_q8_K layout");

// Internal linkage: each CPU variant compiles its own copy (see half.h).
namespace {

// Scale and min of sub-block j (0..7) of a Q4_K / Q5_K super-block: 6 bits each, the first four whole in
// bytes 0..7, the last four split between bytes 8..11 and the top two bits of bytes 0..7.
inline void k_scale_min(const uint8_t* scales, int j, int& scale, int& min) {
    if (j < 4) {
        scale = scales[j] & 63;
        min = scales[j + 4] & 63;
    } else {
        scale = (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4);
        min = (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4);
    }
}

// Value i (0..255) of a super-block as its unsigned integer (Q4_K 0..15, Q5_K 0..31) or signed one (Q6_K
// -32..31); sub-block i / 32 (Q6_K: i / 16) holds it.
inline int q4_k_int(const BlockQ4_K& b, int i) {
    const uint8_t byte = b.qs[i / 64 * 32 + i % 32];
    return (i % 64) < 32 ? byte & 0x0F : byte >> 4;
}

inline int q5_k_int(const BlockQ5_K& b, int i) {
    const uint8_t byte = b.qs[i / 64 * 32 + i % 32];
    const int low = (i % 64) < 32 ? byte & 0x0F : byte >> 4;
    const int bit = i / 32;  // 0..7: pair i / 64, first or second half
    return low | (((b.qh[i % 32] >> bit) & 1) << 4);
}

inline int q6_k_int(const BlockQ6_K& b, int i) {
    const int half = i / 128, l = i % 32, quarter = (i % 128) / 32;  // quarter 0..3 within the half
    const uint8_t* ql = b.ql + half * 64;
    const uint8_t* qh = b.qh + half * 32;
    const uint8_t low_byte = ql[l + (quarter & 1) * 32];
    const int low = quarter < 2 ? low_byte & 0x0F : low_byte >> 4;
    const int high = (qh[l] >> (2 * quarter)) & 3;
    return (low | (high << 4)) - 32;
}

// Q4_K and Q5_K: value = d * scale * q - dmin * min, per sub-block of 32.
template <typename Block>
void dequantize_block_with_mins(const Block& b, int (*int_at)(const Block&, int), float* out) {
    const float d = f16_to_float(b.d), dmin = f16_to_float(b.dmin);
    for (int j = 0; j < 8; ++j) {
        int scale, min;
        k_scale_min(b.scales, j, scale, min);
        const float ds = d * static_cast<float>(scale), dm = dmin * static_cast<float>(min);
        for (int i = 32 * j; i < 32 * j + 32; ++i) out[i] = ds * static_cast<float>(int_at(b, i)) - dm;
    }
}

inline void dequantize_block_q6_k(const BlockQ6_K& b, float* out) {
    const float d = f16_to_float(b.d);
    for (int i = 0; i < kQkK; ++i) out[i] = d * static_cast<float>(b.scales[i / 16]) * static_cast<float>(q6_k_int(b, i));
}

// One row of n values (a multiple of 256) as Q8_K blocks, as llama.cpp's reference quantizer makes them:
// the value of largest magnitude maps to -127, q = round-half-even(x * -127 / that value) capped at 127,
// d = its inverse. A block holding a NaN or an infinity gets a NaN scale (the product is then NaN and
// greedy decoding reports it, as on every other path).
inline void quantize_row_q8_k(const float* x, int64_t n, BlockQ8_K* out) {
    for (int64_t b = 0; b < n / kQkK; ++b) {
        const float* v = x + b * kQkK;
        BlockQ8_K& q = out[b];
        float max = 0.0f, amax = 0.0f;
        bool finite = true;
        for (int i = 0; i < kQkK; ++i) {
            finite = finite && std::isfinite(v[i]);
            if (std::fabs(v[i]) > amax) {
                amax = std::fabs(v[i]);
                max = v[i];
            }
        }
        if (!finite || amax == 0.0f) {
            q.d = finite ? 0.0f : std::nanf("");
            std::memset(q.qs, 0, sizeof q.qs);
            std::memset(q.bsums, 0, sizeof q.bsums);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int i = 0; i < kQkK; ++i) {
            const int rounded = static_cast<int>(std::nearbyint(iscale * v[i]));
            q.qs[i] = static_cast<int8_t>(rounded < 127 ? rounded : 127);
        }
        for (int g = 0; g < kQkK / 16; ++g) {
            int sum = 0;
            for (int i = 0; i < 16; ++i) sum += q.qs[16 * g + i];
            q.bsums[g] = static_cast<int16_t>(sum);
        }
        q.d = 1.0f / iscale;
    }
}

}  // namespace
}  // namespace lk
