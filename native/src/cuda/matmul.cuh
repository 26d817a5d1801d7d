// y[j][r] = dot(W[r], x[j]) on the device, for any number of input rows, W in F32/F16/BF16. BF16 weights
// multiply x rounded to BF16, as the CPU backend does.
#pragma once

#include <cstdint>

#include "lookahead.h"

#include "matmul_mma.cuh"
#include "matmul_part.h"

namespace lk::cuda {

// y = W x (+ bias) for each part, all of `dtype` with `cols` columns; accumulate: y += W x (+ bias).
// BF16 weights take the tensor-core kernel (matmul_mma.cuh, all parts in one launch) unless kernel is
// LK_CUDA_MATMUL_SIMT (the CUDA-core kernel below, for comparisons); F32 and F16 weights always take the
// CUDA-core kernel (one launch per part). scratch: at least matmul_scratch(...) of device memory.
void matmul(const MatmulPart* parts, int n_parts, int32_t dtype, int64_t cols, const float* x, int64_t x_stride, int n_x,
            bool accumulate, int32_t kernel, const MmaScratch& scratch);
MmaScratchSize matmul_scratch(const MatmulPart* parts, int n_parts, int32_t dtype, int64_t cols, int n_x, int32_t kernel);

// The CUDA-core kernel: one warp per output row; lanes stride over the row with 16-byte loads (8
// half-precision or 4 f32 weights) and keep one partial sum per input row; a fixed shuffle tree combines
// the lanes. Each output element is computed the same way whatever the number of input rows (batch
// invariance).
void matmul_simt(const MatmulPart& part, int32_t dtype, int64_t cols, const float* x, int64_t x_stride, int n_x,
                 bool accumulate);

}  // namespace lk::cuda
