// Q4_0, llama.cpp's 4-bit block format: 32 values as nibbles and one IEEE-half scale, value = d * (q - 8);
// byte j holds value j in its low nibble and value j + 16 in its high one. Its products take inputs
// quantized to Q8_0 (q8_0.h), as llama.cpp's do.
#pragma once

#include <cstdint>

#include "half.h"

namespace lk {

constexpr int kQ4_0Block = 32;

struct BlockQ4_0 {
    uint16_t d;  // IEEE half
    uint8_t qs[kQ4_0Block / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "llama.cpp's block_q4_0 layout");

// Internal linkage: each CPU variant compiles its own copy (see half.h).
namespace {

// Value i (0..31) of a block as its signed 4-bit integer, -8..7.
inline int q4_0_int(const BlockQ4_0& block, int i) {
    const uint8_t byte = block.qs[i % 16];
    return (i < 16 ? byte & 0x0F : byte >> 4) - 8;
}

inline void dequantize_block_q4_0(const BlockQ4_0& block, float* out) {
    const float d = f16_to_float(block.d);
    for (int i = 0; i < kQ4_0Block; ++i) out[i] = d * static_cast<float>(q4_0_int(block, i));
}

}  // namespace
}  // namespace lk
