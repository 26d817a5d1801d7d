// y[j][r] = dot(W[r], bf16(x[j])) on the tensor cores for BF16 weights (mma.sync m16n8k16, fp32
// accumulation; sm_80 and newer), any number of input rows, up to kMaxMatmulParts matrices in one launch.
#pragma once

#include <cstdint>

#include "matmul_part.h"

namespace lk::cuda {

// Each warp multiplies 16 weight rows by up to 64 inputs (eight 8-input tiles; one tile when there are
// at most 8 inputs; one launch per 64 inputs), 64 columns per step, reading its rows once with 16-byte loads (four lanes cover 64
// contiguous bytes) and keeping several steps' loads in flight. The columns are split into a fixed number
// of slices (a function of the stacked matrices' shape alone) when there are too few row tiles to keep
// the memory system busy; the last slice of a row block to finish adds the slices' partial sums in slice
// order. Every output element is therefore computed by the same instructions in the same order whatever
// the number of input rows (batch invariance, which lossless decoding rests on).

struct MmaScratchSize {
    int64_t floats = 0;    // partial sums of split matrices
    int64_t counters = 0;  // ints, zero before the first launch (each launch leaves them zero)
};
struct MmaScratch {
    float* partial = nullptr;
    int* counters = nullptr;
};

// The scratch matmul_bf16_mma needs for these parts and n_x inputs (zeros when the columns are not split).
MmaScratchSize matmul_bf16_mma_scratch(const MatmulPart* parts, int n_parts, int64_t cols, int n_x);

// parts: BF16 matrices of `cols` columns sharing the inputs x (n_x rows of F32, stride x_stride, rounded
// to BF16 on the way in). accumulate: add each result to what y holds (a residual) instead of storing it.
void matmul_bf16_mma(const MatmulPart* parts, int n_parts, int64_t cols, const float* x, int64_t x_stride, int n_x,
                     bool accumulate, const MmaScratch& scratch);

}  // namespace lk::cuda
