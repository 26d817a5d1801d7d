// Tree attention: every node attends to the committed KV prefix and to its own ancestors (itself included).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lk::cuda {

struct TreeView {
    const int32_t* depths;            // [n]
    const int32_t* ancestor_offsets;  // [n]; ignored for chains
    const int32_t* ancestors;         // flat ascending ancestor lists; nullptr for a chain (node i sees 0..i)
    int32_t n;
    int32_t max_depth;
};

// Positions are split into chunks of a size fixed per context (flash-decoding): one block scores one chunk
// for one (node, head), a second kernel merges the chunks in order. Chunk boundaries are absolute
// positions, so a node's result does not depend on the rest of the batch.
// The per-node kernel (the default) gives each (node, head, chunk) a block; the shared-prefix kernel
// (LK_CUDA_ATTENTION_SHARED_PREFIX; not yet run on a GPU) gives each (head, chunk, group of nodes) a block
// that reads the positions all nodes share once.
enum class AttentionKernel { PerNode, SharedPrefix };

struct AttentionPlan {
    int32_t chunk;            // positions per chunk
    int32_t max_chunks;       // chunks of the longest context
    AttentionKernel kernel;
    int32_t nodes_per_block;  // shared-prefix kernel: nodes per block (1 for the per-node kernel)
};

AttentionPlan plan_attention(int32_t n_ctx, int head_dim, AttentionKernel kernel);

// Largest head dimension the kernels handle.
int attention_max_head_dim();

// Raises the chunk kernel's shared-memory limit where the plan needs more than 48 KB (once per context).
void attention_prepare(const AttentionPlan& plan, int head_dim);

// Floats of scratch the kernels need for a batch of n_batch nodes.
size_t attention_scratch_floats(const AttentionPlan& plan, int32_t n_batch, int n_heads, int head_dim);

// out[node][head] = softmax(q . k / sqrt(d)) v over the node's visible positions. key_cache / value_cache
// are the layer's [slot][kv_dim] caches. The launch covers the chunks that the deepest node's positions
// reach; with device_n_past (device memory) the kernels read the committed length from there and the
// launch covers all plan.max_chunks chunks (those past the node's positions return at once), so one
// captured CUDA graph serves every n_past.
void tree_attention(const float* q, const float* key_cache, const float* value_cache, int32_t n_past,
                    const int32_t* device_n_past, const TreeView& tree, int n_heads, int n_kv_heads, int head_dim,
                    const AttentionPlan& plan, float* scratch, float* out);

}  // namespace lk::cuda
