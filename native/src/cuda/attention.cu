#include <cfloat>

#include "attention.cuh"
#include "cuda_check.h"

namespace lk::cuda {
namespace {

constexpr int kThreads = 128;

// Reductions over positions: thread t owns positions t, t + 128, ..., summed in increasing order, then a
// fixed tree combines the threads. The result depends only on the attended positions, not on the batch.
__global__ void tree_attention_kernel(const float* __restrict__ q, const float* __restrict__ keys,
                                      const float* __restrict__ values, int32_t n_past, TreeView tree, int n_heads,
                                      int group, int head_dim, float scale, float* __restrict__ out) {
    extern __shared__ float shared[];
    const int node = blockIdx.x / n_heads, head = blockIdx.x % n_heads;
    const int64_t kv_dim = static_cast<int64_t>(n_heads / group) * head_dim;
    const int64_t kv_offset = static_cast<int64_t>(head / group) * head_dim;
    const int depth = tree.depths[node];
    const int total = n_past + depth + 1;
    const int32_t* visible = tree.ancestors ? tree.ancestors + tree.ancestor_offsets[node] : nullptr;

    float* query = shared;                     // [head_dim]
    float* reduce = shared + head_dim;         // [kThreads]
    float* scores = reduce + kThreads;         // [total]
    const float* qn = q + (static_cast<int64_t>(node) * n_heads + head) * head_dim;
    for (int i = threadIdx.x; i < head_dim; i += kThreads) query[i] = qn[i];
    __syncthreads();

    auto slot = [&](int p) -> int64_t {
        if (p < n_past) return p;
        const int j = p - n_past;
        return n_past + (visible ? visible[j] : j);
    };

    float local_max = -FLT_MAX;
    for (int p = threadIdx.x; p < total; p += kThreads) {
        const float* k = keys + slot(p) * kv_dim + kv_offset;
        float acc = 0.0f;
        for (int i = 0; i < head_dim; ++i) acc = fmaf(query[i], k[i], acc);
        acc *= scale;
        scores[p] = acc;
        local_max = fmaxf(local_max, acc);
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

    float* on = out + (static_cast<int64_t>(node) * n_heads + head) * head_dim;
    for (int i = threadIdx.x; i < head_dim; i += kThreads) {
        float acc = 0.0f;
        for (int p = 0; p < total; ++p) acc = fmaf(scores[p], values[slot(p) * kv_dim + kv_offset + i], acc);
        on[i] = acc * inv_total;
    }
}

}  // namespace

size_t attention_shared_bytes(int head_dim, int64_t positions) {
    return (static_cast<size_t>(head_dim) + kThreads + static_cast<size_t>(positions)) * sizeof(float);
}

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
