// y[j][r] = dot(W[r], bf16(x[j])) on the tensor cores for BF16 weights (mma.sync m16n8k16, fp32
// accumulation; sm_80 and newer), any number of input rows.
#pragma once

#include <cstdint>

namespace lk::cuda {

// Each warp multiplies 16 weight rows by up to 64 inputs (eight 8-input tiles), 64 columns per step,
// reading its rows once with 16-byte loads (four lanes cover 64 contiguous bytes); the columns are split into a fixed number of slices (a
// function of the matrix shape alone) when there are too few row tiles to keep the memory system busy,
// and a second kernel adds the slices' partial sums in slice order. Every output element is therefore
// computed by the same instructions in the same order whatever the number of input rows (batch
// invariance, which lossless decoding rests on).

// Floats of scratch matmul_bf16_mma needs for n_x inputs (0 when the matrix is not split).
int64_t matmul_bf16_mma_scratch_floats(int64_t rows, int64_t cols, int n_x);

// weights: [rows, cols] BF16; x: n_x rows of F32 (stride x_stride), rounded to BF16 on the way in;
// y: n_x rows (stride y_stride); bias: rows floats or null; scratch: see above (may be null when 0).
void matmul_bf16_mma(const uint16_t* weights, int64_t rows, int64_t cols, const float* x, int64_t x_stride, int n_x,
                     float* y, int64_t y_stride, const float* bias, float* scratch);

}  // namespace lk::cuda
