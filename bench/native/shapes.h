// Real model shapes for synthetic benchmarks (weights are random: speed does not depend on their values),
// from models/shapes.tsv.
#pragma once

#include <string>
#include <vector>

#include "lookahead.h"

namespace lk_bench {

struct NamedShape {
    const char* name;
    lk_model_params params;
};

struct ShapeRow {
    const char* name;
    int vocab, hidden, ffn, layers, heads, kv_heads, max_context;
    float rope_theta;
    int tied;
};

inline lk_model_params shape_params(const ShapeRow& row) {
    lk_model_params p = lk_model_default_params();
    p.vocab_size = row.vocab;
    p.hidden_size = row.hidden;
    p.intermediate_size = row.ffn;
    p.n_layers = row.layers;
    p.n_heads = row.heads;
    p.n_kv_heads = row.kv_heads;
    p.head_dim = row.hidden / row.heads;
    p.max_context = row.max_context;
    p.rope_theta = row.rope_theta;
    p.flags = row.tied ? LK_MODEL_TIED_OUTPUT : 0;
    return p;
}

inline const std::vector<NamedShape>& all_shapes() {
    static const ShapeRow rows[] = {
#include "model_shapes.inc"
    };
    static const std::vector<NamedShape> shapes = [] {
        std::vector<NamedShape> all;
        for (const ShapeRow& row : rows) all.push_back({row.name, shape_params(row)});
        return all;
    }();
    return shapes;
}

inline const NamedShape* find_shape(const std::string& name) {
    for (const NamedShape& shape : all_shapes())
        if (name == shape.name) return &shape;
    return nullptr;
}

// "stories260K, stories15M, ..." for messages.
inline std::string shape_names() {
    std::string names;
    for (const NamedShape& shape : all_shapes()) names += (names.empty() ? "" : ", ") + std::string(shape.name);
    return names;
}

}  // namespace lk_bench
