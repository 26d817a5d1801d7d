#include <algorithm>
#include <cfloat>
#include <mutex>
#include <vector>

#include "attention.cuh"
#include "cuda_check.h"
#include "warp_reduce.cuh"

namespace lk::cuda {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kMaxHeadDim = 256;
constexpr int kDimsPerLane = kMaxHeadDim / 32;
constexpr int kUnroll = 4;  // positions whose keys or values are loaded before the first is used

struct Visible {
    int32_t n_past;
    const int32_t* list;
    __device__ __forceinline__ int64_t slot(int p) const {
        if (p < n_past) return p;
        const int j = p - n_past;
        return n_past + (list ? list[j] : j);
    }
};

// Where in the scratch the record of one (node, head) pair (node * n_heads + head) and chunk lies, which a
// chunk kernel writes and the merge reads: [max, sum, unnormalized output of head_dim floats].
__device__ __forceinline__ int64_t chunk_record(const AttentionPlan& plan, int64_t node_head, int chunk, int head_dim) {
    return (node_head * plan.max_chunks + chunk) * (head_dim + 2);
}

// One block per (node, head, chunk). Every reduction has a fixed shape: warp w scores positions
// begin + w, begin + w + 8, ... (lanes split the head dimension, a fixed shuffle tree sums them); the
// chunk's max and sum go through a fixed tree; warp w accumulates its positions' values in increasing
// order and the warps' partial outputs are added in warp order. Writes [max, sum, unnormalized output].
__global__ void __launch_bounds__(kThreads) attention_chunk_kernel(
    const float* __restrict__ q, const float* __restrict__ keys, const float* __restrict__ values, int32_t host_n_past,
    const int32_t* __restrict__ device_n_past, TreeView tree, int n_heads, int group, int head_dim, float scale,
    AttentionPlan plan, float* __restrict__ scratch) {
    extern __shared__ float shared[];
    const int32_t n_past = device_n_past ? *device_n_past : host_n_past;
    const int node = blockIdx.x / n_heads, head = blockIdx.x % n_heads, chunk = blockIdx.y;
    const int total = n_past + tree.depths[node] + 1;
    const int begin = chunk * plan.chunk;
    if (begin >= total) return;
    const int end = min(total, begin + plan.chunk);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int64_t kv_dim = static_cast<int64_t>(n_heads / group) * head_dim;
    const int64_t kv_offset = static_cast<int64_t>(head / group) * head_dim;
    const Visible visible{n_past, tree.ancestors ? tree.ancestors + tree.ancestor_offsets[node] : nullptr};

    float* partial = shared;                      // [kWarps][head_dim]
    float* reduce = partial + kWarps * head_dim;  // [kThreads]
    float* scores = reduce + kThreads;            // [plan.chunk]

    float query[kDimsPerLane];
    const float* qn = q + (static_cast<int64_t>(node) * n_heads + head) * head_dim;
#pragma unroll
    for (int m = 0; m < kDimsPerLane; ++m) query[m] = lane + 32 * m < head_dim ? qn[lane + 32 * m] : 0.0f;

    float local_max = -FLT_MAX;
    for (int p0 = begin + warp; p0 < end; p0 += kWarps * kUnroll) {
        float acc[kUnroll];
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            acc[u] = 0.0f;
            const int p = p0 + u * kWarps;
            if (p >= end) continue;
            const float* k = keys + visible.slot(p) * kv_dim + kv_offset;
#pragma unroll
            for (int m = 0; m < kDimsPerLane; ++m)
                if (lane + 32 * m < head_dim) acc[u] = fmaf(query[m], k[lane + 32 * m], acc[u]);
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
            const int p = p0 + u * kWarps;
            if (p >= end) continue;
            const float score = warp_sum(acc[u]) * scale;
            if (lane == 0) scores[p - begin] = score;
            local_max = fmaxf(local_max, score);
        }
    }
    reduce[threadIdx.x] = local_max;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) reduce[threadIdx.x] = fmaxf(reduce[threadIdx.x], reduce[threadIdx.x + stride]);
        __syncthreads();
    }
    const float chunk_max = reduce[0];
    __syncthreads();

    float local_sum = 0.0f;
    for (int i = threadIdx.x; i < end - begin; i += kThreads) {
        const float e = expf(scores[i] - chunk_max);
        scores[i] = e;
        local_sum += e;
    }
    reduce[threadIdx.x] = local_sum;
    __syncthreads();
    for (int stride = kThreads / 2; stride > 0; stride >>= 1) {
        if (threadIdx.x < stride) reduce[threadIdx.x] += reduce[threadIdx.x + stride];
        __syncthreads();
    }

    float acc[kDimsPerLane];
#pragma unroll
    for (int m = 0; m < kDimsPerLane; ++m) acc[m] = 0.0f;
    for (int p = begin + warp; p < end; p += kWarps) {
        const float w = scores[p - begin];
        const float* v = values + visible.slot(p) * kv_dim + kv_offset;
#pragma unroll
        for (int m = 0; m < kDimsPerLane; ++m)
            if (lane + 32 * m < head_dim) acc[m] = fmaf(w, v[lane + 32 * m], acc[m]);
    }
#pragma unroll
    for (int m = 0; m < kDimsPerLane; ++m)
        if (lane + 32 * m < head_dim) partial[warp * head_dim + lane + 32 * m] = acc[m];
    __syncthreads();

    float* record = scratch + chunk_record(plan, blockIdx.x, chunk, head_dim);
    if (threadIdx.x == 0) {
        record[0] = chunk_max;
        record[1] = reduce[0];
    }
    for (int i = threadIdx.x; i < head_dim; i += kThreads) {
        float sum = 0.0f;
        for (int w = 0; w < kWarps; ++w) sum += partial[w * head_dim + i];
        record[2 + i] = sum;
    }
}

// One block per (node, head): merges the node's chunks in chunk order.
__global__ void attention_merge_kernel(int32_t host_n_past, const int32_t* __restrict__ device_n_past, TreeView tree,
                                       int n_heads, int head_dim, AttentionPlan plan, const float* __restrict__ scratch,
                                       float* __restrict__ out) {
    const int32_t n_past = device_n_past ? *device_n_past : host_n_past;
    const int node = blockIdx.x / n_heads;
    const int chunks = (n_past + tree.depths[node] + 1 + plan.chunk - 1) / plan.chunk;
    const float* records = scratch + chunk_record(plan, blockIdx.x, 0, head_dim);
    float max_all = -FLT_MAX;
    for (int c = 0; c < chunks; ++c) max_all = fmaxf(max_all, records[c * (head_dim + 2)]);
    float total = 0.0f;
    for (int c = 0; c < chunks; ++c) total += records[c * (head_dim + 2) + 1] * expf(records[c * (head_dim + 2)] - max_all);
    float* on = out + static_cast<int64_t>(blockIdx.x) * head_dim;
    for (int i = threadIdx.x; i < head_dim; i += blockDim.x) {
        float sum = 0.0f;
        for (int c = 0; c < chunks; ++c)
            sum += records[c * (head_dim + 2) + 2 + i] * expf(records[c * (head_dim + 2)] - max_all);
        on[i] = sum / total;
    }
}

// Chunks (blocks per node and head) the deepest node of a tree needs after n_past committed positions.
int attention_chunks(const AttentionPlan& plan, int32_t n_past, int32_t max_depth) {
    return (n_past + max_depth + 1 + plan.chunk - 1) / plan.chunk;
}

// The shared-prefix kernel (LK_CUDA_ATTENTION=shared): one block per (head, chunk, group of up to
// nodes_per_block nodes). Positions whose cache slot is the same for every node of the batch (the
// committed prefix; for a chain, every position) are staged in shared memory once per block, 64 at a
// time, and each node's scores and outputs are computed from there; the tree's own positions, which
// differ per node, are read from the cache. Every per-node result is one thread's sequential loop in
// position (or dimension) order, the same whatever the thread mapping or the other nodes, and the record
// layout is the per-node kernel's, so attention_merge_kernel serves both.
constexpr int kSharedTile = 64;
constexpr int kMaxPairsPerThread = 32;  // (node, dimension) output sums per thread: nodes_per_block * head_dim <= 8192

// Copies the head's rows of positions t0 .. t0 + width - 1 below shared_end from a layer's cache into tile
// rows of head_dim + 1 floats (the padding keeps a warp's reads of one dimension on distinct banks).
__device__ __forceinline__ void stage_shared_positions(const float* __restrict__ cache, int t0, int width, int64_t shared_end,
                                                       int64_t kv_dim, int64_t kv_offset, int head_dim, float* __restrict__ tile) {
    for (int e = threadIdx.x; e < width * head_dim; e += blockDim.x) {
        const int p = t0 + e / head_dim;
        if (p < shared_end) tile[(e / head_dim) * (head_dim + 1) + e % head_dim] = cache[p * kv_dim + kv_offset + e % head_dim];
    }
}

__global__ void __launch_bounds__(kThreads) attention_shared_kernel(
    const float* __restrict__ q, const float* __restrict__ keys, const float* __restrict__ values, int32_t host_n_past,
    const int32_t* __restrict__ device_n_past, TreeView tree, int n_heads, int group, int head_dim, float scale,
    AttentionPlan plan, float* __restrict__ scratch) {
    extern __shared__ float shared[];
    const int32_t n_past = device_n_past ? *device_n_past : host_n_past;
    const int head = blockIdx.x, chunk = blockIdx.y, first = blockIdx.z * plan.nodes_per_block;
    const int nodes = min(plan.nodes_per_block, tree.n - first);
    const int begin = chunk * plan.chunk;
    const int64_t kv_dim = static_cast<int64_t>(n_heads / group) * head_dim;
    const int64_t kv_offset = static_cast<int64_t>(head / group) * head_dim;
    // Positions below shared_end have slot p for every node that sees them.
    const int64_t shared_end = tree.ancestors ? n_past : INT32_MAX;
    int block_end = begin;
    for (int i = 0; i < nodes; ++i) block_end = max(block_end, min(begin + plan.chunk, n_past + tree.depths[first + i] + 1));
    if (block_end <= begin) return;  // no node of the group reaches this chunk (the same for every thread)

    const int row = head_dim + 1;  // see stage_shared_positions
    float* q_s = shared;                                    // [nodes_per_block][head_dim]
    float* tile = q_s + plan.nodes_per_block * head_dim;    // [kSharedTile][row]
    float* scores = tile + kSharedTile * row;               // [nodes_per_block][chunk]
    float* stats = scores + plan.nodes_per_block * plan.chunk;  // [nodes_per_block][2]: max, sum

    for (int e = threadIdx.x; e < nodes * head_dim; e += blockDim.x)
        q_s[e] = q[(static_cast<int64_t>(first + e / head_dim) * n_heads + head) * head_dim + e % head_dim];

    // Scores, a tile of positions at a time.
    for (int t0 = begin; t0 < block_end; t0 += kSharedTile) {
        const int width = min(kSharedTile, block_end - t0);
        __syncthreads();  // q_s written; the previous tile read
        stage_shared_positions(keys, t0, width, shared_end, kv_dim, kv_offset, head_dim, tile);
        __syncthreads();
        for (int e = threadIdx.x; e < nodes * width; e += blockDim.x) {
            const int i = e / width, p = t0 + e % width, node = first + i;
            if (p >= n_past + tree.depths[node] + 1) continue;
            const Visible visible{n_past, tree.ancestors ? tree.ancestors + tree.ancestor_offsets[node] : nullptr};
            const float* k = p < shared_end ? tile + (p - t0) * row : keys + visible.slot(p) * kv_dim + kv_offset;
            const float* qi = q_s + i * head_dim;
            float acc = 0.0f;
            for (int d = 0; d < head_dim; ++d) acc = fmaf(qi[d], k[d], acc);
            scores[i * plan.chunk + (p - begin)] = acc * scale;
        }
    }
    __syncthreads();

    // Each node's chunk max, then its weights exp(score - max) and their sum, in position order.
    for (int i = threadIdx.x; i < nodes; i += blockDim.x) {
        const int end = min(begin + plan.chunk, n_past + tree.depths[first + i] + 1);
        float* si = scores + i * plan.chunk;
        float chunk_max = -FLT_MAX;
        for (int p = begin; p < end; ++p) chunk_max = fmaxf(chunk_max, si[p - begin]);
        float sum = 0.0f;
        for (int p = begin; p < end; ++p) {
            const float e = expf(si[p - begin] - chunk_max);
            si[p - begin] = e;
            sum += e;
        }
        stats[2 * i] = chunk_max;
        stats[2 * i + 1] = sum;
    }

    // Outputs: thread pairs (node, dimension), values a tile at a time, positions in order.
    float acc[kMaxPairsPerThread];
#pragma unroll
    for (int k = 0; k < kMaxPairsPerThread; ++k) acc[k] = 0.0f;
    for (int t0 = begin; t0 < block_end; t0 += kSharedTile) {
        const int width = min(kSharedTile, block_end - t0);
        __syncthreads();  // weights written; the previous tile read
        stage_shared_positions(values, t0, width, shared_end, kv_dim, kv_offset, head_dim, tile);
        __syncthreads();
#pragma unroll
        for (int k = 0; k < kMaxPairsPerThread; ++k) {
            const int e = threadIdx.x + k * blockDim.x;
            if (e >= nodes * head_dim) continue;
            const int i = e / head_dim, d = e % head_dim, node = first + i;
            const int end = min(t0 + width, n_past + tree.depths[node] + 1);
            const Visible visible{n_past, tree.ancestors ? tree.ancestors + tree.ancestor_offsets[node] : nullptr};
            const float* wi = scores + i * plan.chunk;
            float sum = acc[k];
            for (int p = t0; p < end; ++p) {
                const float v = p < shared_end ? tile[(p - t0) * row + d] : values[visible.slot(p) * kv_dim + kv_offset + d];
                sum = fmaf(wi[p - begin], v, sum);
            }
            acc[k] = sum;
        }
    }

    // Records [max, sum, unnormalized output] of the nodes that reach this chunk.
#pragma unroll
    for (int k = 0; k < kMaxPairsPerThread; ++k) {
        const int e = threadIdx.x + k * blockDim.x;
        if (e >= nodes * head_dim) continue;
        const int i = e / head_dim, d = e % head_dim, node = first + i;
        if (begin >= n_past + tree.depths[node] + 1) continue;
        float* record = scratch + chunk_record(plan, static_cast<int64_t>(node) * n_heads + head, chunk, head_dim);
        if (d == 0) {
            record[0] = stats[2 * i];
            record[1] = stats[2 * i + 1];
        }
        record[2 + d] = acc[k];
    }
}

size_t shared_prefix_bytes(int head_dim, const AttentionPlan& plan) {
    return (static_cast<size_t>(plan.nodes_per_block) * head_dim + static_cast<size_t>(kSharedTile) * (head_dim + 1) +
            static_cast<size_t>(plan.nodes_per_block) * plan.chunk + 2 * static_cast<size_t>(plan.nodes_per_block)) *
           sizeof(float);
}

size_t shared_bytes(int head_dim, int chunk) {
    return (static_cast<size_t>(kWarps) * head_dim + kThreads + static_cast<size_t>(chunk)) * sizeof(float);
}

}  // namespace

AttentionPlan plan_attention(int32_t n_ctx, int head_dim, AttentionKernel kernel) {
    // At most 32 chunks, of at least 64 positions (a multiple of 64): enough blocks for a decoding step of
    // one node to spread over the GPU (32 heads x 17 chunks at 1k positions), a bounded scratch.
    const int32_t chunk = std::max<int32_t>(64, ((n_ctx + 31) / 32 + 63) / 64 * 64);
    AttentionPlan plan{chunk, (n_ctx + chunk - 1) / chunk, kernel, 1};
    if (kernel == AttentionKernel::SharedPrefix) {
        // As many nodes per block as the per-thread sums allow, fewer while the block's shared memory
        // would exceed 100 KB (two blocks per SM on sm_90).
        plan.nodes_per_block = std::max(1, std::min(64, kMaxPairsPerThread * kThreads / std::max(1, head_dim)));
        while (plan.nodes_per_block > 1 && shared_prefix_bytes(head_dim, plan) > 100 * 1024) plan.nodes_per_block /= 2;
    }
    return plan;
}

int attention_max_head_dim() { return kMaxHeadDim; }

void attention_prepare(const AttentionPlan& plan, int head_dim) {
    // The limit belongs to the kernel on the current device, for the whole process: it is only ever raised,
    // so that a context with a smaller plan does not take shared memory from one with a larger plan.
    struct Raised {
        size_t shared = 48 * 1024, chunk = 48 * 1024;
    };
    static std::mutex mutex;
    static std::vector<Raised> raised_by_device;  // indexed by device ordinal
    int device = 0;
    check(cudaGetDevice(&device), "cudaGetDevice");
    const bool shared_prefix = plan.kernel == AttentionKernel::SharedPrefix;
    const size_t need = shared_prefix ? shared_prefix_bytes(head_dim, plan) : shared_bytes(head_dim, plan.chunk);
    std::lock_guard<std::mutex> lock(mutex);
    if (raised_by_device.size() <= static_cast<size_t>(device)) raised_by_device.resize(device + 1);
    size_t& raised = shared_prefix ? raised_by_device[device].shared : raised_by_device[device].chunk;
    if (need <= raised) return;
    if (shared_prefix)
        check(cudaFuncSetAttribute(attention_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(need)),
              "cudaFuncSetAttribute(attention_shared_kernel)");
    else
        check(cudaFuncSetAttribute(attention_chunk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(need)),
              "cudaFuncSetAttribute(attention_chunk_kernel)");
    raised = need;
}

size_t attention_scratch_floats(const AttentionPlan& plan, int32_t n_batch, int n_heads, int head_dim) {
    return static_cast<size_t>(n_batch) * n_heads * plan.max_chunks * (head_dim + 2);
}


void tree_attention(const float* q, const float* key_cache, const float* value_cache, int32_t n_past,
                    const int32_t* device_n_past, const TreeView& tree, int n_heads, int n_kv_heads, int head_dim,
                    const AttentionPlan& plan, float* scratch, float* out) {
    // Read from device memory (a graph), n_past may be anything up to the context: every chunk is launched.
    const int chunks = device_n_past ? plan.max_chunks : attention_chunks(plan, n_past, tree.max_depth);
    const float scale = 1.0f / sqrtf(static_cast<float>(head_dim));
    if (plan.kernel == AttentionKernel::SharedPrefix) {
        const dim3 grid(static_cast<unsigned>(n_heads), static_cast<unsigned>(chunks),
                        static_cast<unsigned>((tree.n + plan.nodes_per_block - 1) / plan.nodes_per_block));
        attention_shared_kernel<<<grid, kThreads, shared_prefix_bytes(head_dim, plan)>>>(
            q, key_cache, value_cache, n_past, device_n_past, tree, n_heads, n_heads / n_kv_heads, head_dim, scale, plan, scratch);
        check_launch("attention_shared");
    } else {
        const dim3 grid(static_cast<unsigned>(tree.n * n_heads), static_cast<unsigned>(chunks));
        attention_chunk_kernel<<<grid, kThreads, shared_bytes(head_dim, plan.chunk)>>>(
            q, key_cache, value_cache, n_past, device_n_past, tree, n_heads, n_heads / n_kv_heads, head_dim, scale, plan, scratch);
        check_launch("attention_chunk");
    }
    attention_merge_kernel<<<tree.n * n_heads, 128>>>(n_past, device_n_past, tree, n_heads, head_dim, plan, scratch, out);
    check_launch("attention_merge");
}

}  // namespace lk::cuda
