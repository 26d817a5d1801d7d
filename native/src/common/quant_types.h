// What the rest of the engine needs to know of the quantized weight types (llama.cpp's block formats):
// block geometry, which input format their products take, dequantizing a row, finding a non-finite scale.
#pragma once

#include <cstdint>
#include <cstring>

#include "k_quants.h"
#include "lookahead.h"
#include "q4_0.h"
#include "q5_0.h"
#include "q8_0.h"

namespace lk {

inline bool is_quantized(int32_t dtype) {
    return dtype == LK_DTYPE_Q8_0 || dtype == LK_DTYPE_Q4_0 || dtype == LK_DTYPE_Q5_0 || dtype == LK_DTYPE_Q4_K || dtype == LK_DTYPE_Q5_K ||
           dtype == LK_DTYPE_Q6_K;
}

// Values per block: a quantized row's cols must be a multiple of it. 1 for the float types.
inline int64_t block_elements(int32_t dtype) {
    switch (dtype) {
        case LK_DTYPE_Q8_0: return kQ8Block;
        case LK_DTYPE_Q4_0: return kQ4_0Block;
        case LK_DTYPE_Q5_0: return kQ5_0Block;
        case LK_DTYPE_Q4_K:
        case LK_DTYPE_Q5_K:
        case LK_DTYPE_Q6_K: return kQkK;
        default: return 1;
    }
}

inline int64_t block_bytes(int32_t dtype) {
    switch (dtype) {
        case LK_DTYPE_F32: return 4;
        case LK_DTYPE_Q8_0: return sizeof(BlockQ8_0);
        case LK_DTYPE_Q4_0: return sizeof(BlockQ4_0);
        case LK_DTYPE_Q5_0: return sizeof(BlockQ5_0);
        case LK_DTYPE_Q4_K: return sizeof(BlockQ4_K);
        case LK_DTYPE_Q5_K: return sizeof(BlockQ5_K);
        case LK_DTYPE_Q6_K: return sizeof(BlockQ6_K);
        default: return 2;  // F16, BF16
    }
}

inline int64_t row_bytes(int32_t dtype, int64_t cols) { return cols / block_elements(dtype) * block_bytes(dtype); }

// The k-quants multiply inputs quantized to Q8_K; Q8_0, Q4_0 and Q5_0 multiply inputs quantized to Q8_0.
inline bool takes_q8_k_inputs(int32_t dtype) {
    return dtype == LK_DTYPE_Q4_K || dtype == LK_DTYPE_Q5_K || dtype == LK_DTYPE_Q6_K;
}
inline bool takes_q8_0_inputs(int32_t dtype) {
    return dtype == LK_DTYPE_Q8_0 || dtype == LK_DTYPE_Q4_0 || dtype == LK_DTYPE_Q5_0;
}

// Internal linkage: each CPU variant compiles its own copy (see half.h).
namespace {

// Block b of a quantized row at any address (a caller's data need not be aligned), as a value.
template <typename Block>
Block read_block(const void* data, int64_t b) {
    Block block;
    std::memcpy(&block, static_cast<const unsigned char*>(data) + b * sizeof(Block), sizeof block);
    return block;
}

// Values [0, cols) of a quantized row (cols a multiple of its block) as floats.
inline void dequantize_row(int32_t dtype, const void* row, int64_t cols, float* out) {
    const int64_t n = block_elements(dtype);
    for (int64_t b = 0; b < cols / n; ++b) {
        float* o = out + b * n;
        switch (dtype) {
            case LK_DTYPE_Q8_0: {
                const BlockQ8_0 block = read_block<BlockQ8_0>(row, b);
                for (int i = 0; i < kQ8Block; ++i) o[i] = q8_0_value(&block, i);
                break;
            }
            case LK_DTYPE_Q4_0: dequantize_block_q4_0(read_block<BlockQ4_0>(row, b), o); break;
            case LK_DTYPE_Q5_0: dequantize_block_q5_0(read_block<BlockQ5_0>(row, b), o); break;
            case LK_DTYPE_Q4_K: dequantize_block_with_mins(read_block<BlockQ4_K>(row, b), q4_k_int, o); break;
            case LK_DTYPE_Q5_K: dequantize_block_with_mins(read_block<BlockQ5_K>(row, b), q5_k_int, o); break;
            default: dequantize_block_q6_k(read_block<BlockQ6_K>(row, b), o); break;
        }
    }
}

// Whether block b's half scale (and, for Q4_K and Q5_K, its half min scale) is NaN or infinite: the only
// place a quantized type can hold either.
template <typename Block>
bool has_non_finite_scale(const void* data, int64_t b) {
    auto bad = [](uint16_t half) { return (half & 0x7C00u) == 0x7C00u; };
    const Block block = read_block<Block>(data, b);
    if constexpr (requires { block.dmin; }) return bad(block.d) || bad(block.dmin);
    else return bad(block.d);
}

// Index of the first value whose block has a non-finite scale, among count values; -1 when there is none.
inline int64_t first_non_finite_scale(int32_t dtype, const void* data, int64_t count) {
    const int64_t n = block_elements(dtype);
    for (int64_t b = 0; b < count / n; ++b) {
        bool found = false;
        switch (dtype) {
            case LK_DTYPE_Q8_0: found = has_non_finite_scale<BlockQ8_0>(data, b); break;
            case LK_DTYPE_Q4_0: found = has_non_finite_scale<BlockQ4_0>(data, b); break;
            case LK_DTYPE_Q5_0: found = has_non_finite_scale<BlockQ5_0>(data, b); break;
            case LK_DTYPE_Q4_K: found = has_non_finite_scale<BlockQ4_K>(data, b); break;
            case LK_DTYPE_Q5_K: found = has_non_finite_scale<BlockQ5_K>(data, b); break;
            default: found = has_non_finite_scale<BlockQ6_K>(data, b); break;
        }
        if (found) return b * n;
    }
    return -1;
}

}  // namespace
}  // namespace lk
