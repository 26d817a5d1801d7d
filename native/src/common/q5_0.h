// Q5_0, llama.cpp's 5-bit block format: 32 values as nibbles plus a fifth bit each, and one IEEE-half
// scale; value = d * (q - 16). Byte j of qs holds value j in its low nibble and value j + 16 in its high
// one; bit i of the 32-bit qh is value i's fifth bit. Its products take inputs quantized to Q8_0 (q8_0.h).
#pragma once

#include <cstdint>
#include <cstring>

#include "half.h"

namespace lk {

constexpr int kQ5_0Block = 32;

struct BlockQ5_0 {
    uint16_t d;  // IEEE half
    uint8_t qh[4];
    uint8_t qs[kQ5_0Block / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "llama.cpp's block_q5_0 layout");

// Internal linkage: each CPU variant compiles its own copy (see half.h).
namespace {

// Value i (0..31) of a block as its signed 5-bit integer, -16..15.
inline int q5_0_int(const BlockQ5_0& block, int i) {
    uint32_t high;
    std::memcpy(&high, block.qh, sizeof high);
    const uint8_t byte = block.qs[i % 16];
    const int low = i < 16 ? byte & 0x0F : byte >> 4;
    return (low | static_cast<int>(((high >> i) & 1u) << 4)) - 16;
}

inline void dequantize_block_q5_0(const BlockQ5_0& block, float* out) {
    const float d = f16_to_float(block.d);
    for (int i = 0; i < kQ5_0Block; ++i) out[i] = d * static_cast<float>(q5_0_int(block, i));
}

}  // namespace
}  // namespace lk
