// Scalar conversions between float and the 16-bit storage types (IEEE half and bfloat16).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace lk {
// Internal linkage: the CPU backend's variants compile these with different instruction sets, and one
// shared (inline, external) definition would let the linker hand the AVX-512 copy to the portable variant.
namespace {

// The bfloat16 nearest to value, ties to even (as PyTorch rounds): subnormals are rounded, not flushed;
// overflow gives infinity; a NaN stays a quiet NaN of the same sign. Branch-free, so loops over it
// vectorize. The one C++ copy of this rounding (the managed one is Lookahead.Model.BFloat16; CUDA code
// uses __float2bfloat16_rn, which rounds the same way).
inline uint16_t float_to_bf16(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    const bool nan = (bits & 0x7FFFFFFFu) > 0x7F800000u;
    return static_cast<uint16_t>((nan ? bits | 0x00400000u : bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

inline float bf16_to_float(uint16_t value) {
    uint32_t bits = static_cast<uint32_t>(value) << 16;
    float result;
    std::memcpy(&result, &bits, sizeof result);
    return result;
}

// The IEEE half nearest to value, ties to even (as F16C's vcvtps2ph and C#'s (Half) cast round):
// subnormals are rounded, not flushed; magnitudes from 65520 up give infinity; a NaN stays a quiet NaN
// of the same sign.
inline uint16_t float_to_f16(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((magnitude >> 13) & 0x3FFu));
    if (magnitude >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // 65520 and up, infinity
    if (magnitude >= 0x38800000u) {  // normal half: rebias the exponent 127 -> 15, round off 13 bits
        const uint32_t rebiased = magnitude - 0x38000000u;
        return static_cast<uint16_t>(sign | ((rebiased + 0xFFFu + ((rebiased >> 13) & 1u)) >> 13));
    }
    // Subnormal half: a multiple of 2^-24, rounded to nearest even (the default rounding mode); 1024 of
    // them is the smallest normal half, whose encoding 0x400 is that count.
    float scaled;
    std::memcpy(&scaled, &magnitude, sizeof scaled);
    return static_cast<uint16_t>(sign | static_cast<uint16_t>(std::nearbyint(scaled * 16777216.0f)));
}

inline float f16_to_float(uint16_t value) {
    uint32_t sign = static_cast<uint32_t>(value & 0x8000u) << 16;
    uint32_t exponent = (value >> 10) & 0x1Fu;
    uint32_t mantissa = value & 0x3FFu;
    uint32_t bits;
    if (exponent == 0x1F) {
        bits = sign | 0x7F800000u | (mantissa << 13);  // inf or nan
    } else if (exponent != 0) {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);  // normal: rebias 15 -> 127
    } else if (mantissa == 0) {
        bits = sign;  // signed zero
    } else {
        // Subnormal half: value = mantissa * 2^-24, exact in float.
        float magnitude = static_cast<float>(mantissa) * (1.0f / 16777216.0f);
        std::memcpy(&bits, &magnitude, sizeof bits);
        bits |= sign;
    }
    float result;
    std::memcpy(&result, &bits, sizeof result);
    return result;
}

}  // namespace
}  // namespace lk
