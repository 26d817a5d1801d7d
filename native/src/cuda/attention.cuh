// Tree attention: every node attends to the committed KV prefix and to its own ancestors (itself included).
#pragma once

#include <cstdint>

namespace lk::cuda {

struct TreeView {
    const int32_t* depths;            // [n]
    const int32_t* ancestor_offsets;  // [n]; ignored for chains
    const int32_t* ancestors;         // flat ascending ancestor lists; nullptr for a chain (node i sees 0..i)
    int32_t n;
    int32_t max_depth;
};

// Bytes of dynamic shared memory the kernel needs for a given number of attended positions.
size_t attention_shared_bytes(int head_dim, int64_t positions);

// Largest head dimension the kernel handles.
int attention_max_head_dim();

// Raises the kernel's dynamic shared-memory limit to `bytes` (call once before launches that need more
// than 48 KB).
void attention_reserve_shared(size_t bytes);

// out[node][head] = softmax(q . k / sqrt(d)) v over the node's visible positions, in position order.
// key_cache / value_cache are the layer's [slot][kv_dim] caches. One block per (node, head).
void tree_attention(const float* q, const float* key_cache, const float* value_cache, int32_t n_past, const TreeView& tree,
                    int n_heads, int n_kv_heads, int head_dim, float* out);

}  // namespace lk::cuda
