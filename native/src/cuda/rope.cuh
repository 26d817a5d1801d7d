// RoPE (HF rotate-half order) on queries and keys, fused with writing the keys and values to the cache.
#pragma once

#include <cstdint>

namespace lk::cuda {

// For each node i at position positions[i]: rotates q[i] in place (n_heads heads), rotates k[i] and
// stores it with v[i] into cache slot n_past + i of the layer's key/value caches ([slot][kv_dim]). With
// device_n_past (device memory) the kernel reads n_past from there instead: a captured CUDA graph then
// serves every step.
void rope_and_store(float* q, const float* k, const float* v, const int32_t* positions, const float* inv_freq, int n,
                    int n_heads, int n_kv_heads, int head_dim, int32_t n_past, const int32_t* device_n_past, float* key_cache,
                    float* value_cache);

}  // namespace lk::cuda
