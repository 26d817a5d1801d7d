#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "cuda_check.h"
#include "matmul_mma.cuh"

namespace lk::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;
constexpr int kRowsPerWarp = 16;      // mma M
constexpr int kInputsPerTile = 8;     // mma N
constexpr int kMaxTiles = 8;          // 8-input tiles per warp and pass over the weights (64 inputs)
constexpr int kColumnsPerStep = 64;   // four k16 mma steps; each lane holds 16 of the columns
// Column slices are added until about this many warps stream the matrices: several times what an H100
// keeps resident (two 8-warp blocks per SM at ~120 registers), so that the last wave of blocks is a small
// part of the launch. At most kMaxSlices, at least one 64-column step each.
constexpr int64_t kTargetWarps = 16384;
constexpr int kMaxSlices = 16;

int slices(int64_t tiles, int64_t cols) {
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

// Batches of more than 8 inputs stage each step's inputs in shared memory once per block, as BF16 pairs
// in the lanes' order: row j holds input j's 64 columns (128 bytes), padded to 192 bytes so that the
// 16-byte reads of a quarter-warp (inputs g, g + 1 at four column offsets) fall in distinct banks. Every
// warp of the block reads the same columns (the blocks' warps share a slice), so this replaces each
// warp's own loads and conversions of all the inputs.
constexpr int kStageRowBytes = 192;
constexpr int kStageStepBytes = 64 * kStageRowBytes;  // 64 inputs at most

// Writes the columns base .. base + 63 of the first `staged` inputs (whole 8-input tiles) to stage rows,
// four columns per unit, with the same rounding and zeros as load_input_run.
template <bool Vectorized>
__device__ __forceinline__ void stage_inputs(const float* __restrict__ x, int64_t x_stride, int n_x, int staged, int64_t cols,
                                             int64_t base, uint8_t* __restrict__ stage) {
    for (int unit = threadIdx.x; unit < staged * 16; unit += blockDim.x) {
        const int j = unit >> 4, group = unit & 15;
        const int64_t at = base + 4 * group;
        float4 v = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (j < n_x) {
            const float* row = x + j * x_stride;
            if (Vectorized) {
                if (at < cols) v = *reinterpret_cast<const float4*>(row + at);
            } else {
                if (at < cols) v.x = row[at];
                if (at + 1 < cols) v.y = row[at + 1];
                if (at + 2 < cols) v.z = row[at + 2];
                if (at + 3 < cols) v.w = row[at + 3];
            }
        }
        *reinterpret_cast<uint2*>(stage + j * kStageRowBytes + 8 * group) = make_uint2(pack_bf16(v.x, v.y), pack_bf16(v.z, v.w));
    }
}

// Input j's 16 values of the lane from a stage row: pairs 0-3 at columns 8t.., pairs 4-7 at 32 + 8t..
__device__ __forceinline__ void read_staged_inputs(const uint8_t* __restrict__ stage, int j, int t, uint32_t (&out)[8]) {
    const uint4 a = *reinterpret_cast<const uint4*>(stage + j * kStageRowBytes + 16 * t);
    const uint4 b = *reinterpret_cast<const uint4*>(stage + j * kStageRowBytes + 64 + 16 * t);
    out[0] = a.x; out[1] = a.y; out[2] = a.z; out[3] = a.w;
    out[4] = b.x; out[5] = b.y; out[6] = b.z; out[7] = b.w;
}

// The matrices of one launch, stacked: part p owns row tiles [first_tile[p], first_tile[p + 1]).
struct Parts {
    const uint16_t* w[kMaxMatmulParts];
    int64_t rows[kMaxMatmulParts];
    float* y[kMaxMatmulParts];
    int64_t y_stride[kMaxMatmulParts];
    const float* bias[kMaxMatmulParts];
    int64_t first_tile[kMaxMatmulParts + 1];
    int n;
};

// An output element: the sum (+ bias), stored or added to what y holds.
__device__ __forceinline__ void store_output(float* y, const float* bias, int64_t row, bool accumulate, float sum) {
    const float value = bias ? sum + bias[row] : sum;
    *y = accumulate ? *y + value : value;
}

// Grid: x = row tiles / kWarpsPerBlock, y = column slices; up to Tiles x kInputsPerTile inputs (the host
// launches once per 64 inputs).
// Tiles (1 for up to 8 inputs, else 8) and Depth (64-column steps whose weights are loaded before the
// first is used) change only how many registers a warp holds: each input's products go through the same
// mma instructions in the same order either way.
//
// The k-order inside a 64-column step is permuted to the lanes' columns (lane_column): mma k-positions
// 2t, 2t+1 of k-step s are the lane's pair 2s and positions 2t+8, 2t+9 its pair 2s+1 (t = lane % 4), the
// same for weights (A) and inputs (B), so the products pair up and the 4 k-steps cover all 64 columns.
//
// Split matrices (n_slices > 1): every block writes its slice's partial sums, and the last of a row
// block's slices to finish (counted in `counters`, which it resets to zero) adds them in slice order.
template <bool Vectorized, int Tiles, int Depth>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    mma_kernel(Parts parts, int64_t cols, const float* __restrict__ x, int64_t x_stride, int n_x, int n_slices,
               bool accumulate, float* __restrict__ partial, int* __restrict__ counters) {
    const int lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
    const int64_t tile = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
    const int64_t total_tiles = parts.first_tile[parts.n];
    const bool active = tile < total_tiles;  // whole warps: mma needs every lane
    int p = 0;
    while (p + 1 < parts.n && tile >= parts.first_tile[p + 1]) ++p;
    const uint16_t* __restrict__ w = parts.w[p];
    const int64_t rows = parts.rows[p];
    const int64_t row0 = (tile - parts.first_tile[p]) * kRowsPerWarp;
    const int64_t steps = (cols + kColumnsPerStep - 1) / kColumnsPerStep;
    const int slice = blockIdx.y;
    const int64_t first_step = steps * slice / n_slices, end_step = steps * (slice + 1) / n_slices;
    const int inputs = min(Tiles * kInputsPerTile, n_x);
    const int staged_inputs = (inputs + kInputsPerTile - 1) / kInputsPerTile * kInputsPerTile;

    constexpr bool kStaged = Tiles > 1;
    __shared__ alignas(16) uint8_t stage[kStaged ? Depth * kStageStepBytes : 16];

    float acc[Tiles][4];
#pragma unroll
    for (int i = 0; i < Tiles; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) acc[i][e] = 0.0f;

    // Inactive warps go round the loop too when inputs are staged: they take part in the staging and its
    // barriers (every warp of a block has the same slice, so the same trip count).
    if (active || kStaged) {
        for (int64_t step0 = first_step; step0 < end_step; step0 += Depth) {
            uint32_t upper[Depth][8], lower[Depth][8];  // rows row0 + g and row0 + g + 8
            if (active) {
#pragma unroll
                for (int d = 0; d < Depth; ++d) {
                    if (step0 + d >= end_step) break;
                    load_weight_run<Vectorized>(w, row0 + g, rows, cols, (step0 + d) * kColumnsPerStep, t, upper[d]);
                    load_weight_run<Vectorized>(w, row0 + g + 8, rows, cols, (step0 + d) * kColumnsPerStep, t, lower[d]);
                }
            }
            if (kStaged) {
                __syncthreads();  // the previous batch's stage is read by every warp
#pragma unroll
                for (int d = 0; d < Depth; ++d)
                    if (step0 + d < end_step)
                        stage_inputs<Vectorized>(x, x_stride, n_x, staged_inputs, cols, (step0 + d) * kColumnsPerStep,
                                                 stage + d * kStageStepBytes);
                __syncthreads();
            }
            if (!active) continue;
#pragma unroll
            for (int d = 0; d < Depth; ++d) {
                if (step0 + d >= end_step) break;
                const int64_t base = (step0 + d) * kColumnsPerStep;
#pragma unroll
                for (int i = 0; i < Tiles; ++i) {
                    if (i * kInputsPerTile >= inputs) continue;  // uniform across the warp
                    uint32_t in[8];
                    if (kStaged) read_staged_inputs(stage + d * kStageStepBytes, i * kInputsPerTile + g, t, in);
                    else load_input_run<Vectorized>(x, x_stride, i * kInputsPerTile + g, n_x, cols, base, t, in);
#pragma unroll
                    for (int k = 0; k < 4; ++k)
                        mma_bf16(acc[i], upper[d][2 * k], lower[d][2 * k], upper[d][2 * k + 1], lower[d][2 * k + 1], in[2 * k],
                                 in[2 * k + 1]);
                }
            }
        }
    }

    // Accumulator e of a tile: row g (e < 2) or g + 8, input 2t + (e & 1) of the tile.
    float* __restrict__ y = parts.y[p];
    const int64_t y_stride = parts.y_stride[p];
    const float* __restrict__ bias = parts.bias[p];
    if (n_slices == 1) {
        if (!active) return;
#pragma unroll
        for (int i = 0; i < Tiles; ++i) {
            if (i * kInputsPerTile >= inputs) continue;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int64_t row = row0 + g + (e >= 2 ? 8 : 0);
                const int j = i * kInputsPerTile + 2 * t + (e & 1);
                if (row < rows && j < n_x) store_output(y + j * y_stride + row, bias, row, accumulate, acc[i][e]);
            }
        }
        return;
    }

    const int64_t padded_rows = total_tiles * kRowsPerWarp;
    if (active) {
#pragma unroll
        for (int i = 0; i < Tiles; ++i) {
            if (i * kInputsPerTile >= inputs) continue;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int j = i * kInputsPerTile + 2 * t + (e & 1);
                const int64_t r = tile * kRowsPerWarp + g + (e >= 2 ? 8 : 0);
                if (j < n_x) partial[(static_cast<int64_t>(slice) * n_x + j) * padded_rows + r] = acc[i][e];
            }
        }
    }
    // Publish the partial sums before counting this slice as done (the CUDA programming guide's
    // threadFenceReduction pattern); the last block reads the others' sums from L2.
    __threadfence();
    __syncthreads();
    __shared__ bool last;
    int* counter = counters + blockIdx.x;
    if (threadIdx.x == 0) last = atomicAdd(counter, 1) == n_slices - 1;
    __syncthreads();
    if (!last) return;
    __threadfence();
    if (active) {
        for (int idx = lane; idx < kRowsPerWarp * inputs; idx += 32) {
            const int64_t row = row0 + (idx % kRowsPerWarp);
            const int j = idx / kRowsPerWarp;
            if (row >= rows) continue;
            const int64_t at = static_cast<int64_t>(j) * padded_rows + tile * kRowsPerWarp + idx % kRowsPerWarp;
            float sum = __ldcg(partial + at);
            for (int s = 1; s < n_slices; ++s) sum += __ldcg(partial + static_cast<int64_t>(s) * n_x * padded_rows + at);
            store_output(y + j * y_stride + row, bias, row, accumulate, sum);
        }
    }
    if (threadIdx.x == 0) *counter = 0;
}

int64_t total_tiles(const MatmulPart* parts, int n_parts) {
    int64_t tiles = 0;
    for (int p = 0; p < n_parts; ++p) tiles += (parts[p].rows + kRowsPerWarp - 1) / kRowsPerWarp;
    return tiles;
}

constexpr int kInputsPerLaunch = kMaxTiles * kInputsPerTile;

template <bool Vectorized>
void launch(const Parts& parts, dim3 grid, int64_t cols, const float* x, int64_t x_stride, int n_x, int n_slices,
            bool accumulate, const MmaScratch& scratch) {
    const dim3 block(kWarpsPerBlock * 32);
    if (n_x <= kInputsPerTile)
        mma_kernel<Vectorized, 1, 4><<<grid, block>>>(parts, cols, x, x_stride, n_x, n_slices, accumulate, scratch.partial,
                                                      scratch.counters);
    else
        mma_kernel<Vectorized, kMaxTiles, 2><<<grid, block>>>(parts, cols, x, x_stride, n_x, n_slices, accumulate,
                                                              scratch.partial, scratch.counters);
}

}  // namespace

MmaScratchSize matmul_bf16_mma_scratch(const MatmulPart* parts, int n_parts, int64_t cols, int n_x) {
    const int64_t tiles = total_tiles(parts, n_parts);
    if (n_x <= 0 || tiles <= 0 || cols <= 0) return {};
    const int s = slices(tiles, cols);
    if (s == 1) return {};
    const int64_t row_blocks = (tiles + kWarpsPerBlock - 1) / kWarpsPerBlock;
    return {int64_t{s} * std::min(n_x, kInputsPerLaunch) * tiles * kRowsPerWarp, row_blocks};
}

void matmul_bf16_mma(const MatmulPart* parts, int n_parts, int64_t cols, const float* x, int64_t x_stride, int n_x,
                     bool accumulate, const MmaScratch& scratch) {
    if (n_x <= 0 || cols <= 0 || n_parts <= 0) return;
    if (n_parts > kMaxMatmulParts) fail(LK_ERR_INTERNAL, "matmul_bf16_mma: more than " + std::to_string(kMaxMatmulParts) + " parts");
    Parts packed{};
    packed.n = n_parts;
    bool aligned = reinterpret_cast<uintptr_t>(x) % 16 == 0;
    for (int p = 0; p < n_parts; ++p) {
        packed.w[p] = static_cast<const uint16_t*>(parts[p].weights);
        packed.rows[p] = parts[p].rows;
        packed.y[p] = parts[p].y;
        packed.y_stride[p] = parts[p].y_stride;
        packed.bias[p] = parts[p].bias;
        packed.first_tile[p + 1] = packed.first_tile[p] + (parts[p].rows + kRowsPerWarp - 1) / kRowsPerWarp;
        aligned = aligned && reinterpret_cast<uintptr_t>(parts[p].weights) % 16 == 0;
    }
    const int64_t tiles = packed.first_tile[n_parts];
    if (tiles == 0) return;
    const int n_slices = slices(tiles, cols);
    const dim3 grid(static_cast<unsigned>((tiles + kWarpsPerBlock - 1) / kWarpsPerBlock), static_cast<unsigned>(n_slices));
    // The choice depends on the matrices and the input buffer, never on n_x (and both paths give the same bits).
    const bool vectorized = cols % 8 == 0 && x_stride % 4 == 0 && aligned;
    // One launch per 64 inputs, so that the scratch holds the partial sums of 64 inputs at most.
    for (int first = 0; first < n_x; first += kInputsPerLaunch) {
        const int n = std::min(kInputsPerLaunch, n_x - first);
        Parts chunk = packed;
        for (int p = 0; p < n_parts; ++p) chunk.y[p] += static_cast<int64_t>(first) * chunk.y_stride[p];
        const float* chunk_x = x + static_cast<int64_t>(first) * x_stride;
        if (vectorized) launch<true>(chunk, grid, cols, chunk_x, x_stride, n, n_slices, accumulate, scratch);
        else launch<false>(chunk, grid, cols, chunk_x, x_stride, n, n_slices, accumulate, scratch);
        check_launch("matmul_bf16_mma");
    }
}

}  // namespace lk::cuda
