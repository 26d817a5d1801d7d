// Fused greedy verification on the device and KV compaction of the accepted path.
#pragma once

#include <cstdint>

namespace lk::cuda {

// argmax[i] over each node's logits row (ties to the lowest id; -1 when the row holds NaN or infinity).
void argmax_rows(const float* logits, int n, int vocab, int32_t* argmax);

// From tokens/parents/argmax of n nodes, writes result = [length, path[0..length), bonus] (at most n + 2
// ints): the root path the model agrees with (deepest, then lowest node indices) and the argmax at its
// end. scratch holds 2n ints.
void greedy_path(const int32_t* tokens, const int32_t* parents, const int32_t* argmax, int n, int32_t* scratch,
                 int32_t* result);

// Moves cache slots n_past + path[j] to n_past + j, j ascending, in every layer ([layer][n_ctx][kv_dim]).
void compact(float* key_cache, float* value_cache, int n_layers, int64_t layer_stride, int64_t kv_dim, int32_t n_past,
             const int32_t* path, int n);

}  // namespace lk::cuda
