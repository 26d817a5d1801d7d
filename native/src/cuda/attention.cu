#include <cfloat>

#include "attention.cuh"
#include "cuda_check.h"

namespace lk::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxHeadDim = 256;
constexpr int kDimsPerLane = kMaxHeadDim / 32;

// Reductions have a fixed shape that depends only on the attended positions, never on the batch:
// warp w scores positions p = w, w + 8, ... (lanes split the head dimension, a fixed shuffle tree sums
// them), block-wide max and sum go through a fixed tree, and warp w accumulates the values of its
// positions in increasing order before the eight warps' partial outputs are added in warp order.
__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__global__ void __launch_bounds__(kThreads) tree_attention_kernel(
    const float* __restrict__ q, const float* __restrict__ keys, const float* __restrict__ values, int32_t n_past,
    TreeView tree, int n_heads, int group, int head_dim, float scale, float* __restrict__ out) {
    extern __shared__ float shared[];
    const int node = blockIdx.x / n_heads, head = blockIdx.x % n_heads;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t kv_dim = static_cast<int64_t>(n_heads / group) * head_dim;
    const int64_t kv_offset = static_cast<int64_t>(head / group) * head_dim;
    const int total = n_past + tree.depths[node] + 1;
    const int32_t* visible = tree.ancestors ? tree.ancestors + tree.ancestor_offsets[node] : nullptr;

    float* partial = shared;                        // [kWarps][head_dim] per-warp outputs
    float* reduce = partial + kWarps * head_dim;    // [kThreads]
    float* scores = reduce + kThreads;              // [total]

    auto slot = [&](int p) -> int64_t {
        if (p < n_past) return p;
        const int j = p - n_past;
        return n_past + (visible ? visible[j] : j);
    };

    float query[kDimsPerLane];
    const float* qn = q + (static_cast<int64_t>(node) * n_heads + head) * head_dim;
#pragma unroll
    for (int m = 0; m < kDimsPerLane; ++m) {
        const int i = lane + 32 * m;
        query[m] = i < head_dim ? qn[i] : 0.0f;
    }

    float local_max = -FLT_MAX;
    for (int p = warp; p < total; p += kWarps) {
        const float* k = keys + slot(p) * kv_dim + kv_offset;
        float acc = 0.0f;
#pragma unroll
        for (int m = 0; m < kDimsPerLane; ++m) {
            const int i = lane + 32 * m;
            if (i < head_dim) acc = fmaf(query[m], k[i], acc);
        }
        const float score = warp_sum(acc) * scale;
        if (lane == 0) scores[p] = score;
        local_max = fmaxf(local_max, score);
    }
    reduce[threadIdx.x] = local_max;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) reduce[threadIdx.x] = fmaxf(reduce[threadIdx.x], reduce[threadIdx.x + stride]);
        __syncthreads();
    }
    const float max_score = reduce[0];
    __syncthreads();

    float local_sum = 0.0f;
    for (int p = threadIdx.x; p < total; p += kThreads) {
        const float e = expf(scores[p] - max_score);
        scores[p] = e;
        local_sum += e;
    }
    reduce[threadIdx.x] = local_sum;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) reduce[threadIdx.x] += reduce[threadIdx.x + stride];
        __syncthreads();
    }
    const float inv_total = 1.0f / reduce[0];

    float acc[kDimsPerLane];
#pragma unroll
    for (int m = 0; m < kDimsPerLane; ++m) acc[m] = 0.0f;
    for (int p = warp; p < total; p += kWarps) {
        const float w = scores[p];
        const float* v = values + slot(p) * kv_dim + kv_offset;
#pragma unroll
        for (int m = 0; m < kDimsPerLane; ++m) {
            const int i = lane + 32 * m;
            if (i < head_dim) acc[m] = fmaf(w, v[i], acc[m]);
        }
    }
#pragma unroll
    for (int m = 0; m < kDimsPerLane; ++m) {
        const int i = lane + 32 * m;
        if (i < head_dim) partial[warp * head_dim + i] = acc[m];
    }
    __syncthreads();
    float* on = out + (static_cast<int64_t>(node) * n_heads + head) * head_dim;
    for (int i = threadIdx.x; i < head_dim; i += kThreads) {
        float sum = 0.0f;
        for (int w = 0; w < kWarps; ++w) sum += partial[w * head_dim + i];
        on[i] = sum * inv_total;
    }
}

}  // namespace

size_t attention_shared_bytes(int head_dim, int64_t positions) {
    return (static_cast<size_t>(kWarps) * head_dim + kThreads + static_cast<size_t>(positions)) * sizeof(float);
}

int attention_max_head_dim() { return kMaxHeadDim; }

void attention_reserve_shared(size_t bytes) {
    check(cudaFuncSetAttribute(tree_attention_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
          "cudaFuncSetAttribute(tree_attention)");
}

void tree_attention(const float* q, const float* key_cache, const float* value_cache, int32_t n_past, const TreeView& tree,
                    int n_heads, int n_kv_heads, int head_dim, float* out) {
    const size_t shared = attention_shared_bytes(head_dim, n_past + tree.max_depth + 1);
    const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
    tree_attention_kernel<<<tree.n * n_heads, kThreads, shared>>>(q, key_cache, value_cache, n_past, tree, n_heads,
                                                                   n_heads / n_kv_heads, head_dim, scale, out);
    check_launch("tree_attention");
}

}  // namespace lk::cuda
