// The model: hyper-parameters plus weights copied from the caller, shared by all contexts.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "aligned_buffer.h"
#include "lookahead.h"

namespace lk {

// Matrices keep the caller's dtype (converted in registers by the kernels); vectors
// (norm weights, biases) are widened to F32 on load since they are tiny.
struct Tensor {
    int32_t dtype = -1;  // -1 = not set
    int64_t rows = 0;
    int64_t cols = 0;
    AlignedBuffer data;

    bool present() const { return dtype >= 0; }
    const float* f32() const { return data.as<float>(); }
};

struct LayerWeights {
    Tensor attn_norm, q, k, v, o, q_bias, k_bias, v_bias, ffn_norm, gate, up, down;
};

struct Model {
    explicit Model(const lk_model_params& params);

    void set_tensor(int32_t kind, int32_t layer, int32_t dtype, int64_t rows, int64_t cols, const void* data);
    void set_rope_frequencies(const float* inv_freq, int32_t count);
    // Throws LK_ERR_INVALID_STATE naming the first tensor that is still missing.
    void check_complete() const;

    const Tensor& output_weights() const {
        return (params.flags & LK_MODEL_TIED_OUTPUT) ? token_embedding : output;
    }
    int q_dim() const { return params.n_heads * params.head_dim; }
    int kv_dim() const { return params.n_kv_heads * params.head_dim; }
    bool has_qkv_bias() const { return (params.flags & LK_MODEL_QKV_BIAS) != 0; }
    // The dtype of the first matrix (the embedding included) whose dtype holds, or -1.
    int32_t matrix_dtype_where(bool (*holds)(int32_t)) const;

    lk_model_params params;
    std::vector<float> rope_inv_freq;  // head_dim / 2 entries
    Tensor token_embedding, output_norm, output;
    std::vector<LayerWeights> layers;
    std::atomic<int> live_contexts{0};
};

const char* tensor_kind_name(int32_t kind);
// "F32", "Q4_K", ...: an lk_dtype as llama.cpp names the type.
const char* dtype_name(int32_t dtype);

}  // namespace lk
