#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "cuda_check.h"
#include "matmul_mma.cuh"

namespace lk::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kRowsPerWarp = 16;      // mma M
constexpr int kInputsPerTile = 8;     // mma N
constexpr int kTilesPerWarp = 8;      // inputs per pass over the weights: kTilesPerWarp x kInputsPerTile
constexpr int kInputsPerPass = kTilesPerWarp * kInputsPerTile;
constexpr int kColumnsPerStep = 64;   // four k16 mma steps; each lane holds 16 of the columns
// Column slices are added until about this many warps stream the matrix (an H100 keeps a few thousand
// warps of this kernel resident); at most kMaxSlices, at least one 64-column step each.
constexpr int64_t kTargetWarps = 4096;
constexpr int kMaxSlices = 16;

int slices(int64_t rows, int64_t cols) {
    const int64_t tiles = (rows + kRowsPerWarp - 1) / kRowsPerWarp;
    const int64_t steps = (cols + kColumnsPerStep - 1) / kColumnsPerStep;
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({kTargetWarps / tiles, steps, kMaxSlices})));
}

// D += A B for one 16x8x16 tile: A = 16 weight rows x 16 columns (a0..a3), B = 16 columns x 8 inputs
// (b0, b1), each register two BF16 values with the lower column in the low half.
__device__ __forceinline__ void mma_bf16(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0,
                                         uint32_t b1) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
#else
    __trap();  // the library is built for sm_80 and sm_90 only
#endif
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    const __nv_bfloat162 pair = __floats2bfloat162_rn(lo, hi);  // round to nearest even, lo in the low half
    return *reinterpret_cast<const uint32_t*>(&pair);
}

// A lane's 16 columns of a 64-column step at `base`: 8 at base + 8t and 8 at base + 32 + 8t (t = lane %
// 4), so the four lanes of a group read 64 contiguous bytes of weights per load instruction. Pair p
// (0..7) of a lane is columns column(p), column(p) + 1.
__device__ __forceinline__ int64_t lane_column(int64_t base, int t, int p) { return base + (p < 4 ? 0 : 32) + 8 * t + 2 * (p & 3); }

// Row `row`'s 16 weights of the lane as 8 pairs; zeros past the matrix. Vectorized: cols % 8 == 0, so
// each group of 8 columns is wholly inside or outside, and rows are 16-byte aligned.
template <bool Vectorized>
__device__ __forceinline__ void load_weight_run(const uint16_t* __restrict__ w, int64_t row, int64_t rows, int64_t cols,
                                                int64_t base, int t, uint32_t (&out)[8]) {
    if (Vectorized) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
            const int64_t at = lane_column(base, t, 4 * half);
            uint4 v = make_uint4(0, 0, 0, 0);
            if (row < rows && at < cols) v = *reinterpret_cast<const uint4*>(w + row * cols + at);
            out[4 * half] = v.x;
            out[4 * half + 1] = v.y;
            out[4 * half + 2] = v.z;
            out[4 * half + 3] = v.w;
        }
    } else {
#pragma unroll
        for (int p = 0; p < 8; ++p) {
            const int64_t at = lane_column(base, t, p);
            const uint32_t lo = row < rows && at < cols ? w[row * cols + at] : 0u;
            const uint32_t hi = row < rows && at + 1 < cols ? w[row * cols + at + 1] : 0u;
            out[p] = lo | (hi << 16);
        }
    }
}

// Input j's 16 values of the lane (the same columns as its weights), rounded to BF16, as 8 pairs; zeros
// past the inputs. Vectorized: cols % 8 == 0 and x rows 16-byte aligned.
template <bool Vectorized>
__device__ __forceinline__ void load_input_run(const float* __restrict__ x, int64_t x_stride, int j, int n_x, int64_t cols,
                                               int64_t base, int t, uint32_t (&out)[8]) {
    if (Vectorized) {
#pragma unroll
        for (int q = 0; q < 4; ++q) {  // pairs 2q, 2q + 1: four consecutive columns
            const int64_t at = lane_column(base, t, 2 * q);
            float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (j < n_x && at < cols) v = *reinterpret_cast<const float4*>(x + j * x_stride + at);
            out[2 * q] = pack_bf16(v.x, v.y);
            out[2 * q + 1] = pack_bf16(v.z, v.w);
        }
    } else {
#pragma unroll
        for (int p = 0; p < 8; ++p) {
            const int64_t at = lane_column(base, t, p);
            const float lo = j < n_x && at < cols ? x[j * x_stride + at] : 0.0f;
            const float hi = j < n_x && at + 1 < cols ? x[j * x_stride + at + 1] : 0.0f;
            out[p] = pack_bf16(lo, hi);
        }
    }
}

// Grid: x = row tiles / kWarpsPerBlock, y = column slices, z = passes of kInputsPerPass inputs.
//
// The k-order inside a 64-column step is permuted to the lanes' columns (lane_column): mma k-positions
// 2t, 2t+1 of k-step s are the lane's pair 2s and positions 2t+8, 2t+9 its pair 2s+1 (t = lane % 4), the
// same for weights (A) and inputs (B), so the products pair up and the 4 k-steps cover all 64 columns.
template <bool Vectorized>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    mma_kernel(const uint16_t* __restrict__ w, int64_t rows, int64_t cols, const float* __restrict__ x, int64_t x_stride,
               int n_x, int n_slices, float* __restrict__ y, int64_t y_stride, const float* __restrict__ bias,
               float* __restrict__ partial) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5)) * kRowsPerWarp;
    if (row0 >= rows) return;  // the whole warp: mma needs every lane
    const int64_t steps = (cols + kColumnsPerStep - 1) / kColumnsPerStep;
    const int slice = blockIdx.y;
    const int64_t first_step = steps * slice / n_slices, end_step = steps * (slice + 1) / n_slices;
    const int j0 = blockIdx.z * kInputsPerPass;
    const int inputs = min(kInputsPerPass, n_x - j0);

    float acc[kTilesPerWarp][4];
#pragma unroll
    for (int tile = 0; tile < kTilesPerWarp; ++tile)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[tile][e] = 0.0f;

    for (int64_t step = first_step; step < end_step; ++step) {
        const int64_t base = step * kColumnsPerStep;
        uint32_t upper[8], lower[8];  // rows row0 + g and row0 + g + 8
        load_weight_run<Vectorized>(w, row0 + g, rows, cols, base, t, upper);
        load_weight_run<Vectorized>(w, row0 + g + 8, rows, cols, base, t, lower);
#pragma unroll
        for (int tile = 0; tile < kTilesPerWarp; ++tile) {
            if (tile * kInputsPerTile >= inputs) continue;  // uniform across the warp
            uint32_t in[8];
            load_input_run<Vectorized>(x, x_stride, j0 + tile * kInputsPerTile + g, n_x, cols, base, t, in);
#pragma unroll
            for (int k = 0; k < 4; ++k)
                mma_bf16(acc[tile], upper[2 * k], lower[2 * k], upper[2 * k + 1], lower[2 * k + 1], in[2 * k], in[2 * k + 1]);
        }
    }

    // Accumulator e of a tile: row g (e < 2) or g + 8, input 2t + (e & 1) of the tile.
#pragma unroll
    for (int tile = 0; tile < kTilesPerWarp; ++tile) {
        if (tile * kInputsPerTile >= inputs) continue;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int64_t row = row0 + g + (e >= 2 ? 8 : 0);
            const int j = j0 + tile * kInputsPerTile + 2 * t + (e & 1);
            if (row >= rows || j >= n_x) continue;
            if (n_slices == 1) y[j * y_stride + row] = bias ? acc[tile][e] + bias[row] : acc[tile][e];
            else partial[(static_cast<int64_t>(slice) * n_x + j) * rows + row] = acc[tile][e];
        }
    }
}

// y = the slices' partial sums added in slice order (+ bias).
__global__ void add_slices_kernel(const float* __restrict__ partial, int n_slices, int64_t rows, int n_x,
                                  float* __restrict__ y, int64_t y_stride, const float* __restrict__ bias) {
    const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i >= rows * n_x) return;
    const int64_t j = i / rows, row = i % rows;
    float sum = partial[j * rows + row];
    for (int s = 1; s < n_slices; ++s) sum += partial[(static_cast<int64_t>(s) * n_x + j) * rows + row];
    y[j * y_stride + row] = bias ? sum + bias[row] : sum;
}

}  // namespace

int64_t matmul_bf16_mma_scratch_floats(int64_t rows, int64_t cols, int n_x) {
    if (rows <= 0 || cols <= 0 || n_x <= 0) return 0;
    const int s = slices(rows, cols);
    return s > 1 ? int64_t{s} * n_x * rows : 0;
}

void matmul_bf16_mma(const uint16_t* weights, int64_t rows, int64_t cols, const float* x, int64_t x_stride, int n_x,
                     float* y, int64_t y_stride, const float* bias, float* scratch) {
    if (n_x <= 0 || rows <= 0 || cols <= 0) return;
    const int n_slices = slices(rows, cols);
    const int64_t tiles = (rows + kRowsPerWarp - 1) / kRowsPerWarp;
    const dim3 grid(static_cast<unsigned>((tiles + kWarpsPerBlock - 1) / kWarpsPerBlock), static_cast<unsigned>(n_slices),
                    static_cast<unsigned>((n_x + kInputsPerPass - 1) / kInputsPerPass));
    const dim3 block(kWarpsPerBlock * 32);
    // The choice depends on the matrix and the input buffer, never on n_x (and both paths give the same bits).
    const bool vectorized = cols % 8 == 0 && x_stride % 4 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
                            reinterpret_cast<uintptr_t>(weights) % 16 == 0;
    if (vectorized) mma_kernel<true><<<grid, block>>>(weights, rows, cols, x, x_stride, n_x, n_slices, y, y_stride, bias, scratch);
    else mma_kernel<false><<<grid, block>>>(weights, rows, cols, x, x_stride, n_x, n_slices, y, y_stride, bias, scratch);
    check_launch("matmul_bf16_mma");
    if (n_slices > 1) {
        const int64_t outputs = rows * n_x;
        add_slices_kernel<<<static_cast<unsigned>((outputs + 255) / 256), 256>>>(scratch, n_slices, rows, n_x, y, y_stride, bias);
        check_launch("matmul_bf16_mma slices");
    }
}

}  // namespace lk::cuda
