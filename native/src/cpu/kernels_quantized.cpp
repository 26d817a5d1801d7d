// Scalar products of quantized weight rows with quantized inputs (see MatmulArgs). Every (row, input)
// result is computed on its own in a fixed order, so it is the same whatever else is in the batch.
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "../common/half.h"
#include "kernels.h"

namespace lk::cpu {
namespace {

// Q8_0, Q4_0 and Q5_0: per block the integer dot product times both scales, summed in block order.
template <typename Block, typename IntAt>
float dot_q8_0_inputs(const Block* w, const BlockQ8_0* x, int64_t blocks, IntAt int_at) {
    float sum = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
        int32_t dot = 0;
        for (int i = 0; i < kQ8Block; ++i) dot += int_at(w[b], i) * int32_t{x[b].qs[i]};
        sum += f16_to_float(w[b].d) * f16_to_float(x[b].d) * static_cast<float>(dot);
    }
    return sum;
}

// The k-quants, as the AVX2 kernel computes them (so that the two agree bit for bit): per super-block,
// eight integer lanes, lane l summing values 32v + 4l .. 32v + 4l + 3 of each 32-value vector v times
// their scales; for Q4_K and Q5_K four lanes of mins, lane k = mins 2k and 2k + 1 times their sub-blocks'
// input sums; for Q6_K, whose values are stored as q + 32, lane l less 32 x (scale x input sum) of
// sub-blocks 2l and 2l + 1. Lanes are multiply-added (fused) into float lanes with d x x.d and
// dmin x x.d, which are summed at the end in a fixed order.
float sum4(const float* s) { return (s[0] + s[2]) + (s[1] + s[3]); }

template <typename Block>
float dot_k_quant(const Block* w, const BlockQ8_K* x, int64_t blocks, int (*value_at)(const Block&, int), int (*scale_at)(const Block&, int)) {
    float acc[8] = {}, min_acc[4] = {};
    for (int64_t b = 0; b < blocks; ++b) {
        int32_t lanes[8] = {};
        for (int v = 0; v < 8; ++v)
            for (int l = 0; l < 8; ++l)
                for (int i = 32 * v + 4 * l; i < 32 * v + 4 * l + 4; ++i) lanes[l] += scale_at(w[b], i) * value_at(w[b], i) * int32_t{x[b].qs[i]};
        if constexpr (std::is_same_v<Block, BlockQ6_K>) {
            for (int l = 0; l < 8; ++l)
                lanes[l] -= 32 * (x[b].bsums[2 * l] * w[b].scales[2 * l] + x[b].bsums[2 * l + 1] * w[b].scales[2 * l + 1]);
        } else {
            int mins[8];
            for (int s = 0; s < 8; ++s) {
                int scale;
                k_scale_min(w[b].scales, s, scale, mins[s]);
            }
            const float dmin = f16_to_float(w[b].dmin) * x[b].d;
            for (int k = 0; k < 4; ++k) {
                const int pair0 = x[b].bsums[4 * k] + x[b].bsums[4 * k + 1], pair1 = x[b].bsums[4 * k + 2] + x[b].bsums[4 * k + 3];
                min_acc[k] = std::fma(dmin, static_cast<float>(mins[2 * k] * pair0 + mins[2 * k + 1] * pair1), min_acc[k]);
            }
        }
        const float d = f16_to_float(w[b].d) * x[b].d;
        for (int l = 0; l < 8; ++l) acc[l] = std::fma(d, static_cast<float>(lanes[l]), acc[l]);
    }
    const float folded[4] = {acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]};
    return sum4(folded) - sum4(min_acc);
}

// Value i of a super-block as the AVX2 kernel's bytes hold it (Q6_K: q + 32) and its sub-block's scale.
int q4_k_scale(const BlockQ4_K& b, int i) {
    int scale, min;
    k_scale_min(b.scales, i / 32, scale, min);
    return scale;
}
int q5_k_scale(const BlockQ5_K& b, int i) {
    int scale, min;
    k_scale_min(b.scales, i / 32, scale, min);
    return scale;
}
int q6_k_stored(const BlockQ6_K& b, int i) { return q6_k_int(b, i) + 32; }
int q6_k_scale(const BlockQ6_K& b, int i) { return b.scales[i / 16]; }

float dot_row(const MatmulArgs& a, int64_t r, int32_t j) {
    const int64_t blocks = a.cols / block_elements(a.dtype);
    const void* row = static_cast<const unsigned char*>(a.weights) + r * row_bytes(a.dtype, a.cols);
    switch (a.dtype) {
        case LK_DTYPE_Q8_0:
            return dot_q8_0_inputs(static_cast<const BlockQ8_0*>(row), a.x_q8 + j * blocks, blocks,
                                   [](const BlockQ8_0& b, int i) { return int32_t{b.qs[i]}; });
        case LK_DTYPE_Q4_0:
            return dot_q8_0_inputs(static_cast<const BlockQ4_0*>(row), a.x_q8 + j * blocks, blocks,
                                   [](const BlockQ4_0& b, int i) { return q4_0_int(b, i); });
        case LK_DTYPE_Q5_0:
            return dot_q8_0_inputs(static_cast<const BlockQ5_0*>(row), a.x_q8 + j * blocks, blocks,
                                   [](const BlockQ5_0& b, int i) { return q5_0_int(b, i); });
        case LK_DTYPE_Q4_K: return dot_k_quant(static_cast<const BlockQ4_K*>(row), a.x_q8k + j * blocks, blocks, q4_k_int, q4_k_scale);
        case LK_DTYPE_Q5_K: return dot_k_quant(static_cast<const BlockQ5_K*>(row), a.x_q8k + j * blocks, blocks, q5_k_int, q5_k_scale);
        default: return dot_k_quant(static_cast<const BlockQ6_K*>(row), a.x_q8k + j * blocks, blocks, q6_k_stored, q6_k_scale);
    }
}

}  // namespace

void matmul_quantized_scalar(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; ++r) {
        for (int32_t j = 0; j < a.n_x; ++j) {
            const float sum = dot_row(a, r, j);
            float& out = a.y[j * a.y_stride + r];
            out = a.accumulate ? out + sum : sum;
        }
    }
}

}  // namespace lk::cpu
