#include <cfloat>

#include "cuda_check.h"
#include "verify.cuh"

namespace lk::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ bool better(float v, int i, float best_v, int best_i) {
    return v > best_v || (v == best_v && i < best_i);
}

__global__ void argmax_kernel(const float* __restrict__ logits, int vocab, int32_t* __restrict__ argmax) {
    __shared__ float values[kThreads];
    __shared__ int indices[kThreads];
    __shared__ int non_finite;
    if (threadIdx.x == 0) non_finite = 0;
    __syncthreads();
    const float* row = logits + static_cast<int64_t>(blockIdx.x) * vocab;
    float best_v = -FLT_MAX;
    int best_i = vocab;  // beaten by any real index on a tie
    bool finite = true;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
        const float v = row[i];
        finite = finite && isfinite(v);
        if (better(v, i, best_v, best_i)) {
            best_v = v;
            best_i = i;
        }
    }
    if (!finite) non_finite = 1;  // benign race: every writer stores the same value
    values[threadIdx.x] = best_v;
    indices[threadIdx.x] = best_i;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride && better(values[threadIdx.x + stride], indices[threadIdx.x + stride], values[threadIdx.x], indices[threadIdx.x])) {
            values[threadIdx.x] = values[threadIdx.x + stride];
            indices[threadIdx.x] = indices[threadIdx.x + stride];
        }
        __syncthreads();
    }
    // A row with NaN or infinity names no token (as lk::cpu::argmax).
    if (threadIdx.x == 0) argmax[blockIdx.x] = non_finite ? -1 : indices[0] < vocab ? indices[0] : 0;
}

// A single thread: draft trees hold at most a few hundred nodes.
__global__ void greedy_path_kernel(const int32_t* __restrict__ tokens, const int32_t* __restrict__ parents,
                                   const int32_t* __restrict__ argmax, int n, int32_t* __restrict__ scratch,
                                   int32_t* __restrict__ result) {
    int32_t* best_length = scratch;
    int32_t* best_child = scratch + n;
    for (int i = 0; i < n; ++i) {
        best_length[i] = 1;
        best_child[i] = -1;
    }
    // Children follow their parents, so one backward sweep settles every subtree; >= keeps the lowest index.
    for (int c = n - 1; c >= 1; --c) {
        const int p = parents[c];
        if (tokens[c] != argmax[p]) continue;
        if (best_length[c] + 1 >= best_length[p]) {
            best_length[p] = best_length[c] + 1;
            best_child[p] = c;
        }
    }
    int length = 0, last = 0;
    for (int node = 0; node >= 0; node = best_child[node]) {
        result[1 + length++] = node;
        last = node;
    }
    result[0] = length;
    result[1 + length] = argmax[last];
}

__global__ void compact_kernel(float* __restrict__ keys, float* __restrict__ values, int64_t layer_stride, int64_t kv_dim,
                               int32_t n_past, const int32_t* __restrict__ path, int n) {
    float* k = keys + blockIdx.x * layer_stride;
    float* v = values + blockIdx.x * layer_stride;
    // In order: slot path[j] >= j is read before any later j overwrites it.
    for (int j = 0; j < n; ++j) {
        const int from = path[j];
        if (from != j) {
            for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
                k[(n_past + j) * kv_dim + i] = k[(n_past + from) * kv_dim + i];
                v[(n_past + j) * kv_dim + i] = v[(n_past + from) * kv_dim + i];
            }
        }
        __syncthreads();
    }
}

}  // namespace

void argmax_rows(const float* logits, int n, int vocab, int32_t* argmax) {
    argmax_kernel<<<n, kThreads>>>(logits, vocab, argmax);
    check_launch("argmax_rows");
}

void greedy_path(const int32_t* tokens, const int32_t* parents, const int32_t* argmax, int n, int32_t* scratch,
                 int32_t* result) {
    greedy_path_kernel<<<1, 1>>>(tokens, parents, argmax, n, scratch, result);
    check_launch("greedy_path");
}

void compact(float* key_cache, float* value_cache, int n_layers, int64_t layer_stride, int64_t kv_dim, int32_t n_past,
             const int32_t* path, int n) {
    compact_kernel<<<n_layers, kThreads>>>(key_cache, value_cache, layer_stride, kv_dim, n_past, path, n);
    check_launch("compact");
}

}  // namespace lk::cuda
