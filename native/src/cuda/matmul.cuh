// y[j][r] = dot(W[r], x[j]) on the device, for any number of input rows, W in F32/F16/BF16. BF16 weights
// multiply x rounded to BF16, as the CPU backend does.
#pragma once

#include <cstdint>

namespace lk::cuda {

// BF16 weights take the tensor-core kernel (matmul_mma.cuh) unless LK_CUDA_MATMUL=simt asks for the
// CUDA-core kernel below (for comparisons); F32 and F16 weights always take the CUDA-core kernel.
// scratch: matmul_scratch_floats(...) floats of device memory (may be null when that is 0).
void matmul(const void* weights, int32_t dtype, int64_t rows, int64_t cols, const float* x, int64_t x_stride, int n_x,
            float* y, int64_t y_stride, const float* bias, float* scratch);
int64_t matmul_scratch_floats(int32_t dtype, int64_t rows, int64_t cols, int n_x);

// The CUDA-core kernel: one warp per output row; lanes stride over the row with 16-byte loads (8
// half-precision or 4 f32 weights) and keep one partial sum per input row; a fixed shuffle tree combines
// the lanes. Each output element is computed the same way whatever the number of input rows (batch
// invariance).
void matmul_simt(const void* weights, int32_t dtype, int64_t rows, int64_t cols, const float* x, int64_t x_stride, int n_x,
                 float* y, int64_t y_stride, const float* bias);

}  // namespace lk::cuda
