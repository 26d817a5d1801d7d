// Scalar products of quantized weight rows with quantized inputs (see MatmulArgs). Every (row, input)
// result is computed on its own in a fixed order, so it is the same whatever else is in the batch.
#include <cstdint>

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

// The k-quants, per super-block: the scaled integer sum and the mins' integer sum, then
// sum += (d * x.d) * scaled - (dmin * x.d) * mins. The AVX2 kernels form the same integers and the
// same float operations, so the two agree bit for bit.
int32_t sub_block_dot(const int8_t* x, int count, int first, auto int_at) {
    int32_t dot = 0;
    for (int i = 0; i < count; ++i) dot += int_at(first + i) * int32_t{x[first + i]};
    return dot;
}

template <typename Block>
float dot_k_with_mins(const Block* w, const BlockQ8_K* x, int64_t blocks, int (*int_at)(const Block&, int)) {
    float sum = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
        int32_t scaled = 0, mins = 0;
        for (int j = 0; j < 8; ++j) {
            int scale, min;
            k_scale_min(w[b].scales, j, scale, min);
            scaled += scale * sub_block_dot(x[b].qs, 32, 32 * j, [&](int i) { return int_at(w[b], i); });
            mins += min * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
        }
        sum += f16_to_float(w[b].d) * x[b].d * static_cast<float>(scaled);
        sum -= f16_to_float(w[b].dmin) * x[b].d * static_cast<float>(mins);
    }
    return sum;
}

float dot_q6_k(const BlockQ6_K* w, const BlockQ8_K* x, int64_t blocks) {
    float sum = 0.0f;
    for (int64_t b = 0; b < blocks; ++b) {
        int32_t scaled = 0;
        for (int g = 0; g < kQkK / 16; ++g)
            scaled += w[b].scales[g] * sub_block_dot(x[b].qs, 16, 16 * g, [&](int i) { return q6_k_int(w[b], i); });
        sum += f16_to_float(w[b].d) * x[b].d * static_cast<float>(scaled);
    }
    return sum;
}

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
        case LK_DTYPE_Q4_K: return dot_k_with_mins(static_cast<const BlockQ4_K*>(row), a.x_q8k + j * blocks, blocks, q4_k_int);
        case LK_DTYPE_Q5_K: return dot_k_with_mins(static_cast<const BlockQ5_K*>(row), a.x_q8k + j * blocks, blocks, q5_k_int);
        default: return dot_q6_k(static_cast<const BlockQ6_K*>(row), a.x_q8k + j * blocks, blocks);
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
