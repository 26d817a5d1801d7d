#include <cuda_bf16.h>
#include <cuda_fp16.h>


#include "cuda_check.h"
#include "warp_reduce.cuh"
#include "lookahead.h"
#include "matmul.cuh"
#include "matmul_mma.cuh"

namespace lk::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kInputsPerPass = 8;  // partial sums held in registers per pass over a weight row
constexpr int kUnroll = 4;

__device__ __forceinline__ float load_weight(const void* w, int32_t dtype, int64_t i) {
    if (dtype == LK_DTYPE_F32) return static_cast<const float*>(w)[i];
    if (dtype == LK_DTYPE_F16) return __half2float(static_cast<const __half*>(w)[i]);
    return __bfloat162float(static_cast<const __nv_bfloat16*>(w)[i]);
}

// BF16 weights multiply activations rounded to BF16, as on the CPU (see cpu/kernels.h): products exact
// in fp32, fp32 sums.
__device__ __forceinline__ float input_value(float x, int32_t dtype) {
    return dtype == LK_DTYPE_BF16 ? __bfloat162float(__float2bfloat16_rn(x)) : x;
}

__device__ __forceinline__ float4 input_values(float4 x, int32_t dtype) {
    return make_float4(input_value(x.x, dtype), input_value(x.y, dtype), input_value(x.z, dtype), input_value(x.w, dtype));
}

// Eight consecutive weights starting at element i (16-byte aligned for half types, two loads for f32).
__device__ __forceinline__ void load_weights8(const void* w, int32_t dtype, int64_t i, float out[8]) {
    if (dtype == LK_DTYPE_F32) {
        const float4 a = *reinterpret_cast<const float4*>(static_cast<const float*>(w) + i);
        const float4 b = *reinterpret_cast<const float4*>(static_cast<const float*>(w) + i + 4);
        out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
        out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
        return;
    }
    const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(w) + i);
    const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
    for (int k = 0; k < 4; ++k) {
        const uint16_t lo = static_cast<uint16_t>(words[k] & 0xFFFFu), hi = static_cast<uint16_t>(words[k] >> 16);
        if (dtype == LK_DTYPE_F16) {
            out[2 * k] = __half2float(__ushort_as_half(lo));
            out[2 * k + 1] = __half2float(__ushort_as_half(hi));
        } else {
            out[2 * k] = __uint_as_float(static_cast<uint32_t>(lo) << 16);
            out[2 * k + 1] = __uint_as_float(static_cast<uint32_t>(hi) << 16);
        }
    }
}

// vectorized: cols % 8 == 0 and rows 16-byte aligned; each lane takes 8 columns per step.
template <bool Vectorized>
__global__ void matmul_kernel(const void* __restrict__ w, int32_t dtype, int64_t rows, int64_t cols,
                              const float* __restrict__ x, int64_t x_stride, int n_x, float* __restrict__ y,
                              int64_t y_stride, const float* __restrict__ bias, bool accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
    if (row >= rows) return;
    const int64_t base = row * cols;
    for (int j0 = 0; j0 < n_x; j0 += kInputsPerPass) {
        const int count = min(kInputsPerPass, n_x - j0);
        float acc[kInputsPerPass];
#pragma unroll
        for (int j = 0; j < kInputsPerPass; ++j) acc[j] = 0.0f;
        if (Vectorized) {
            // kUnroll 16-byte weight loads in flight per lane before their first use.
            for (int64_t c0 = static_cast<int64_t>(lane) * 8; c0 < cols; c0 += 32 * 8 * kUnroll) {
                float wv[kUnroll][8];
#pragma unroll
                for (int u = 0; u < kUnroll; ++u)
                    if (c0 + u * 256 < cols) load_weights8(w, dtype, base + c0 + u * 256, wv[u]);
#pragma unroll
                for (int u = 0; u < kUnroll; ++u) {
                    const int64_t c = c0 + u * 256;
                    if (c >= cols) break;
#pragma unroll
                    for (int j = 0; j < kInputsPerPass; ++j) {
                        if (j >= count) break;
                        const float* xr = x + (j0 + j) * x_stride + c;
                        const float4 a = input_values(*reinterpret_cast<const float4*>(xr), dtype);
                        const float4 b = input_values(*reinterpret_cast<const float4*>(xr + 4), dtype);
                        float s = acc[j];
                        s = fmaf(wv[u][0], a.x, s); s = fmaf(wv[u][1], a.y, s); s = fmaf(wv[u][2], a.z, s); s = fmaf(wv[u][3], a.w, s);
                        s = fmaf(wv[u][4], b.x, s); s = fmaf(wv[u][5], b.y, s); s = fmaf(wv[u][6], b.z, s); s = fmaf(wv[u][7], b.w, s);
                        acc[j] = s;
                    }
                }
            }
        } else {
            for (int64_t c = lane; c < cols; c += 32) {
                const float wv = load_weight(w, dtype, base + c);
#pragma unroll
                for (int j = 0; j < kInputsPerPass; ++j) {
                    if (j >= count) break;
                    acc[j] = fmaf(wv, input_value(x[(j0 + j) * x_stride + c], dtype), acc[j]);
                }
            }
        }
#pragma unroll
        for (int j = 0; j < kInputsPerPass; ++j) {
            if (j >= count) break;
            const float total = warp_sum(acc[j]);
            if (lane == 0) {
                const float value = bias ? total + bias[row] : total;
                float* out = y + (j0 + j) * y_stride + row;
                *out = accumulate ? *out + value : value;
            }
        }
    }
}

bool on_tensor_cores(int32_t dtype, int32_t kernel) { return dtype == LK_DTYPE_BF16 && kernel != LK_CUDA_MATMUL_SIMT; }

}  // namespace

void matmul(const MatmulPart* parts, int n_parts, int32_t dtype, int64_t cols, const float* x, int64_t x_stride, int n_x,
            bool accumulate, int32_t kernel, const MmaScratch& scratch) {
    if (on_tensor_cores(dtype, kernel)) {
        matmul_bf16_mma(parts, n_parts, cols, x, x_stride, n_x, accumulate, scratch);
        return;
    }
    for (int p = 0; p < n_parts; ++p) matmul_simt(parts[p], dtype, cols, x, x_stride, n_x, accumulate);
}

MmaScratchSize matmul_scratch(const MatmulPart* parts, int n_parts, int32_t dtype, int64_t cols, int n_x, int32_t kernel) {
    return on_tensor_cores(dtype, kernel) ? matmul_bf16_mma_scratch(parts, n_parts, cols, n_x) : MmaScratchSize{};
}

void matmul_simt(const MatmulPart& part, int32_t dtype, int64_t cols, const float* x, int64_t x_stride, int n_x,
                 bool accumulate) {
    if (n_x <= 0 || part.rows <= 0) return;
    const dim3 grid(static_cast<unsigned>((part.rows + kWarpsPerBlock - 1) / kWarpsPerBlock));
    const dim3 block(kWarpsPerBlock * 32);
    // The vector path needs whole 16-byte groups in every weight and input row; the choice depends on the
    // matrix alone, never on n_x.
    const bool vectorized = cols % 8 == 0 && x_stride % 4 == 0;
    if (vectorized) {
        matmul_kernel<true><<<grid, block>>>(part.weights, dtype, part.rows, cols, x, x_stride, n_x, part.y, part.y_stride,
                                             part.bias, accumulate);
    } else {
        matmul_kernel<false><<<grid, block>>>(part.weights, dtype, part.rows, cols, x, x_stride, n_x, part.y, part.y_stride,
                                              part.bias, accumulate);
    }
    check_launch("matmul");
}

}  // namespace lk::cuda
