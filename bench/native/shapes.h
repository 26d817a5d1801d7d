// Real model shapes for synthetic benchmarks (weights are random: speed does not depend on their values).
#pragma once

#include <cstring>
#include <string>

#include "lookahead.h"

namespace lk_bench {

struct NamedShape {
    const char* name;
    lk_model_params params;
};

inline lk_model_params shape_params(int vocab, int hidden, int ffn, int layers, int heads, int kv_heads, int max_context,
                                    float theta) {
    lk_model_params p{};
    p.vocab_size = vocab;
    p.hidden_size = hidden;
    p.intermediate_size = ffn;
    p.n_layers = layers;
    p.n_heads = heads;
    p.n_kv_heads = kv_heads;
    p.head_dim = hidden / heads;
    p.max_context = max_context;
    p.rms_norm_eps = 1e-5f;
    p.rope_theta = theta;
    return p;
}

inline const NamedShape* find_shape(const std::string& name) {
    static const NamedShape shapes[] = {
        {"stories260K", shape_params(512, 64, 172, 5, 8, 4, 512, 10000.0f)},
        {"stories15M", shape_params(32000, 288, 768, 6, 6, 6, 256, 10000.0f)},
        {"stories110M", shape_params(32000, 768, 2048, 12, 12, 12, 1024, 10000.0f)},
        {"tinyllama-1.1b", shape_params(32000, 2048, 5632, 22, 32, 4, 2048, 10000.0f)},
        {"llama2-7b", shape_params(32000, 4096, 11008, 32, 32, 32, 4096, 10000.0f)},
        {"llama3-8b", shape_params(128256, 4096, 14336, 32, 32, 8, 8192, 500000.0f)},
    };
    for (const NamedShape& shape : shapes)
        if (name == shape.name) return &shape;
    return nullptr;
}

}  // namespace lk_bench
