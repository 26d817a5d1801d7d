#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "cuda_check.h"
#include "elementwise.cuh"
#include "lookahead.h"

namespace lk::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void embed_kernel(const void* __restrict__ e, int32_t dtype, const int32_t* __restrict__ tokens, int hidden,
                             float* __restrict__ out) {
    const int64_t offset = static_cast<int64_t>(tokens[blockIdx.x]) * hidden;
    float* row = out + static_cast<int64_t>(blockIdx.x) * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) {
        if (dtype == LK_DTYPE_F32) row[i] = static_cast<const float*>(e)[offset + i];
        else if (dtype == LK_DTYPE_F16) row[i] = __half2float(static_cast<const __half*>(e)[offset + i]);
        else row[i] = __bfloat162float(static_cast<const __nv_bfloat16*>(e)[offset + i]);
    }
}

// One block per row; a fixed-shape tree reduction of the squares.
__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ weight, float* __restrict__ out,
                                int first, int width, float eps) {
    __shared__ float partial[kThreads];
    const int64_t row = first + blockIdx.x;
    const float* in = x + row * width;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < width; i += kThreads) sum = fmaf(in[i], in[i], sum);
    partial[threadIdx.x] = sum;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) partial[threadIdx.x] += partial[threadIdx.x + stride];
        __syncthreads();
    }
    // An overflowed sum becomes NaN rather than a row of zeros, so the logits show it (as on the CPU).
    const float mean_square = partial[0] / static_cast<float>(width);
    const float scale = isfinite(mean_square) ? rsqrtf(mean_square + eps) : __int_as_float(0x7fc00000);
    for (int i = threadIdx.x; i < width; i += kThreads) out[row * width + i] = in[i] * scale * weight[i];
}

__global__ void swiglu_kernel(float* __restrict__ gate, const float* __restrict__ up, int64_t count) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < count) {
        const float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

unsigned blocks_for(int64_t count) { return static_cast<unsigned>((count + kThreads - 1) / kThreads); }

}  // namespace

void embed(const void* embedding, int32_t dtype, const int32_t* tokens, int n, int hidden, float* out) {
    embed_kernel<<<n, kThreads>>>(embedding, dtype, tokens, hidden, out);
    check_launch("embed");
}

void rms_norm(const float* x, const float* weight, float* out, int first, int n, int width, float eps) {
    if (n <= first) return;
    rms_norm_kernel<<<n - first, kThreads>>>(x, weight, out, first, width, eps);
    check_launch("rms_norm");
}

void swiglu(float* gate, const float* up, int64_t count) {
    swiglu_kernel<<<blocks_for(count), kThreads>>>(gate, up, count);
    check_launch("swiglu");
}

}  // namespace lk::cuda
