// Q8_0, llama.cpp's 8-bit block format: 32 values as signed bytes and one IEEE-half scale, value i of a
// block = d * qs[i]. Weights arrive in it (GGUF files); matrix inputs are quantized to it per row, as
// llama.cpp quantizes activations for Q8_0 weights, so that a product is integer multiply-adds per block.
#pragma once

#include <cmath>
#include <cstdint>

#include "half.h"

namespace lk {

constexpr int kQ8Block = 32;

struct BlockQ8_0 {
    uint16_t d;  // IEEE half
    int8_t qs[kQ8Block];
};
static_assert(sizeof(BlockQ8_0) == 34, "llama.cpp's block_q8_0 layout");

// Internal linkage: each CPU variant compiles its own copy (see half.h).
namespace {

// One row of n values (a multiple of 32) as blocks, rounded as llama.cpp's reference quantizer rounds:
// d = max |x| / 127 stored as a half, q = round-half-away(x / d) with the unrounded d. A block holding a
// NaN or an infinity gets a NaN scale, so that the product is NaN (and greedy decoding reports it, as on
// every other path) rather than a quiet wrong number.
inline void quantize_row_q8_0(const float* x, int64_t n, BlockQ8_0* out) {
    for (int64_t b = 0; b < n / kQ8Block; ++b) {
        const float* v = x + b * kQ8Block;
        float amax = 0.0f;
        bool finite = true;
        for (int i = 0; i < kQ8Block; ++i) {
            finite = finite && std::isfinite(v[i]);
            amax = std::fmax(amax, std::fabs(v[i]));
        }
        if (!finite) {
            out[b].d = 0x7E00;  // a quiet NaN
            for (int8_t& q : out[b].qs) q = 0;
            continue;
        }
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        out[b].d = float_to_f16(d);
        for (int i = 0; i < kQ8Block; ++i) out[b].qs[i] = static_cast<int8_t>(std::round(v[i] * id));
    }
}

inline float q8_0_value(const BlockQ8_0* row, int64_t i) {
    return f16_to_float(row[i / kQ8Block].d) * static_cast<float>(row[i / kQ8Block].qs[i % kQ8Block]);
}

}  // namespace
}  // namespace lk
