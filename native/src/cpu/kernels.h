// CPU matrix kernels, one implementation per instruction set, picked per context from the CPU's features
// and the context's cap (the element-wise operations are in vector_ops.h).
#pragma once

#include <cstdint>

#include "../common/quant_types.h"
#include "lookahead.h"

namespace lk::cpu {

// y[j][r] = dot(W[r], x[j]) (or y[j][r] += dot(...) when accumulate: a fused residual add) for rows r
// in [row_begin, row_end) and the n_x input rows j. W is [rows, cols] in its storage dtype
// (LK_DTYPE_*); x and y are F32 with the given row strides.
//
// BF16 weights multiply activations rounded to BF16 (as PyTorch and llama.cpp compute them): the caller
// passes x already rounded (so every product is exact in F32) and, in x_bf16, the same rows packed as
// BF16 with the same stride, which the BF16 dot-product kernel reads. Sums are F32 on every path.
// Quantized weights multiply the inputs quantized as llama.cpp quantizes them for that type: Q8_0, Q4_0
// and Q5_0 weights take x_q8 (n_x rows of cols / 32 Q8_0 blocks, contiguous), the k-quants take x_q8k (n_x
// rows of cols / 256 Q8_K blocks): per block an exact integer dot product times the scales, summed over
// the blocks in F32.
struct MatmulArgs {
    const void* weights;
    int32_t dtype;
    int64_t cols;
    const float* x;
    int64_t x_stride;
    float* y;
    int64_t y_stride;
    int32_t n_x;
    bool accumulate = false;
    const uint16_t* x_bf16 = nullptr;
    const BlockQ8_0* x_q8 = nullptr;
    const BlockQ8_K* x_q8k = nullptr;
};

using MatmulKernel = void (*)(const MatmulArgs& args, int64_t row_begin, int64_t row_end);

void matmul_scalar(const MatmulArgs& args, int64_t row_begin, int64_t row_end);
// The quantized dtypes' products (kernels_quantized*.cpp), which the matmul_* kernels hand them to.
void matmul_quantized_scalar(const MatmulArgs& args, int64_t row_begin, int64_t row_end);
#if defined(LK_HAVE_AVX2_KERNELS)
void matmul_avx2(const MatmulArgs& args, int64_t row_begin, int64_t row_end);
void matmul_avx512(const MatmulArgs& args, int64_t row_begin, int64_t row_end);
// matmul_avx512 with AVX512_BF16's VDPBF16PS for BF16 weights (two multiply-adds per lane and
// instruction: twice the FMA path's rate where several inputs make the product compute-bound).
void matmul_avx512_bf16(const MatmulArgs& args, int64_t row_begin, int64_t row_end);
// With AVX2's byte multiply-adds; the AVX-512 levels use it too.
void matmul_quantized_avx2(const MatmulArgs& args, int64_t row_begin, int64_t row_end);
#endif

// A matrix kernel and its level (an lk_cpu_kernel value, never AUTO).
struct ChosenKernel {
    MatmulKernel run;
    int32_t level;
};

// The fastest matrix kernel this CPU runs at or below cap (an lk_cpu_kernel; LK_CPU_KERNEL_AUTO for no
// cap); the scalar kernel runs everywhere.
ChosenKernel choose_matmul_kernel(int32_t cap);
// "avx512-bf16", "avx512", "avx2" or "scalar" for a level.
const char* matmul_kernel_name(int32_t level);

// Index of the largest value; ties go to the lowest index. -1 when any value is NaN or infinite: such
// logits name no token (greedy decoding then stops with LK_ERR_NON_FINITE instead of emitting one).
int32_t argmax(const float* values, int n);

}  // namespace lk::cpu
