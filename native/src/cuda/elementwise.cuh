// Row-wise and element-wise kernels of the forward pass: embedding gather, RMSNorm, SwiGLU (the residual
// adds happen in the matrix kernels' epilogues).
#pragma once

#include <cstdint>

namespace lk::cuda {

// out[i] = embedding[tokens[i]] as F32, for n tokens of width hidden.
void embed(const void* embedding, int32_t dtype, const int32_t* tokens, int n, int hidden, float* out);

// out[i] = x[i] / rms(x[i]) * weight for rows [first, n) of width `width`.
void rms_norm(const float* x, const float* weight, float* out, int first, int n, int width, float eps);

// gate = silu(gate) * up over count elements.
void swiglu(float* gate, const float* up, int64_t count);

}  // namespace lk::cuda
