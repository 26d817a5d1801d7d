// Builds small random models through the public C API for the native tests.
#pragma once

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "common/half.h"
#include "lookahead.h"

namespace lk_test {

using lk::float_to_bf16;

inline uint16_t float_to_f16(float value) {
    // Values in the tests are normal and well inside the half range, so a simple rounding suffices.
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    uint32_t sign = (bits >> 16) & 0x8000u;
    int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xFF) - 127 + 15;
    uint32_t mantissa = bits & 0x7FFFFFu;
    if (exponent <= 0) return static_cast<uint16_t>(sign);
    uint32_t half = sign | (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
    if ((mantissa & 0x1FFFu) > 0x1000u || ((mantissa & 0x1FFFu) == 0x1000u && (half & 1u))) ++half;
    return static_cast<uint16_t>(half);
}

struct ModelDeleter {
    void operator()(lk_model* m) const { lk_model_free(m); }
};
struct ContextDeleter {
    void operator()(lk_context* c) const { lk_context_free(c); }
};

// Context parameters from the library's defaults, with the fields most tests set.
inline lk_context_params context_params(int32_t backend, int32_t n_ctx, int32_t n_batch, int32_t n_threads) {
    lk_context_params cp = lk_context_default_params();
    cp.backend = backend;
    cp.n_ctx = n_ctx;
    cp.n_batch = n_batch;
    cp.n_threads = n_threads;
    return cp;
}

inline lk_model_params small_params(int hidden = 24, int heads = 4, int kv_heads = 2, int layers = 2, int vocab = 53) {
    lk_model_params p{};
    p.vocab_size = vocab;
    p.hidden_size = hidden;
    p.intermediate_size = hidden * 2 + 3;
    p.n_layers = layers;
    p.n_heads = heads;
    p.n_kv_heads = kv_heads;
    p.head_dim = 6;
    p.max_context = 256;
    p.rms_norm_eps = 1e-5f;
    p.rope_theta = 10000.0f;
    p.flags = 0;
    return p;
}

// Sets every tensor the parameters require to uniform random values in [-scale, scale).
inline lk_status fill_random(lk_model* model, const lk_model_params& p, int32_t dtype, uint32_t seed) {
    std::mt19937 rng(seed);
    auto set = [&](int32_t kind, int32_t layer, int64_t rows, int64_t cols, float center, float scale) {
        std::uniform_real_distribution<float> dist(center - scale, center + scale);
        std::vector<float> values(rows * cols);
        for (float& v : values) v = dist(rng);
        if (dtype == LK_DTYPE_F32) return lk_model_set_tensor(model, kind, layer, dtype, rows, cols, values.data());
        std::vector<uint16_t> packed(values.size());
        for (size_t i = 0; i < values.size(); ++i)
            packed[i] = dtype == LK_DTYPE_BF16 ? float_to_bf16(values[i]) : float_to_f16(values[i]);
        return lk_model_set_tensor(model, kind, layer, dtype, rows, cols, packed.data());
    };
    const int64_t h = p.hidden_size, q = int64_t{p.n_heads} * p.head_dim, kv = int64_t{p.n_kv_heads} * p.head_dim;
    const int64_t f = p.intermediate_size;
    lk_status s = set(LK_TENSOR_TOKEN_EMBEDDING, 0, p.vocab_size, h, 0.0f, 1.0f);
    if (s == LK_OK) s = set(LK_TENSOR_OUTPUT_NORM, 0, h, 1, 1.0f, 0.2f);
    if (s == LK_OK && !(p.flags & LK_MODEL_TIED_OUTPUT)) s = set(LK_TENSOR_OUTPUT, 0, p.vocab_size, h, 0.0f, 0.5f);
    for (int l = 0; l < p.n_layers && s == LK_OK; ++l) {
        const float w = 0.6f / static_cast<float>(h > f ? h : f) * 8.0f;
        s = set(LK_TENSOR_ATTN_NORM, l, h, 1, 1.0f, 0.2f);
        if (s == LK_OK) s = set(LK_TENSOR_ATTN_Q, l, q, h, 0.0f, w);
        if (s == LK_OK) s = set(LK_TENSOR_ATTN_K, l, kv, h, 0.0f, w);
        if (s == LK_OK) s = set(LK_TENSOR_ATTN_V, l, kv, h, 0.0f, w);
        if (s == LK_OK) s = set(LK_TENSOR_ATTN_OUTPUT, l, h, q, 0.0f, w);
        if (s == LK_OK && (p.flags & LK_MODEL_QKV_BIAS)) {
            s = set(LK_TENSOR_ATTN_Q_BIAS, l, q, 1, 0.0f, 0.1f);
            if (s == LK_OK) s = set(LK_TENSOR_ATTN_K_BIAS, l, kv, 1, 0.0f, 0.1f);
            if (s == LK_OK) s = set(LK_TENSOR_ATTN_V_BIAS, l, kv, 1, 0.0f, 0.1f);
        }
        if (s == LK_OK) s = set(LK_TENSOR_FFN_NORM, l, h, 1, 1.0f, 0.2f);
        if (s == LK_OK) s = set(LK_TENSOR_FFN_GATE, l, f, h, 0.0f, w);
        if (s == LK_OK) s = set(LK_TENSOR_FFN_UP, l, f, h, 0.0f, w);
        if (s == LK_OK) s = set(LK_TENSOR_FFN_DOWN, l, h, f, 0.0f, w);
    }
    return s;
}

// Sampling settings across the rule's families (temperatures 0.3 to 1.5, top-k 8, top-p 0.9, min-p, the three
// penalties), picked by variant; the first 4 tokens are the prompt.
inline lk_sampling_params sampling_settings(int variant, uint64_t seed) {
    lk_sampling_params p{};
    const float temperatures[] = {0.3f, 0.7f, 1.0f, 1.5f};
    p.temperature = temperatures[variant % 4];
    p.top_k = variant % 3 == 1 ? 8 : 0;
    p.top_p = variant % 5 == 2 ? 0.9f : 1.0f;
    p.min_p = variant % 7 == 3 ? 0.05f : 0.0f;
    p.repetition_penalty = variant % 2 == 1 ? 1.2f : 1.0f;
    p.presence_penalty = variant % 6 == 4 ? 0.4f : 0.0f;
    p.frequency_penalty = variant % 4 == 2 ? 0.2f : 0.0f;
    p.n_prompt = 4;
    p.seed = seed;
    return p;
}

}  // namespace lk_test
