#include "model.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "error.h"
#include "half.h"
#include "quant_types.h"

namespace lk {
namespace {

constexpr int64_t kMaxDimension = 1 << 20;
// Every layer costs a slot table entry before any weight arrives: bound it far above real models (126
// layers for Llama 3.1 405B) so that a corrupt n_layers cannot allocate gigabytes.
constexpr int64_t kMaxLayers = 4096;

bool is_per_layer(int32_t kind) { return kind >= LK_TENSOR_ATTN_NORM && kind < LK_TENSOR_KIND_COUNT; }

bool is_vector(int32_t kind) {
    switch (kind) {
        case LK_TENSOR_OUTPUT_NORM:
        case LK_TENSOR_ATTN_NORM:
        case LK_TENSOR_FFN_NORM:
        case LK_TENSOR_ATTN_Q_BIAS:
        case LK_TENSOR_ATTN_K_BIAS:
        case LK_TENSOR_ATTN_V_BIAS:
            return true;
        default:
            return false;
    }
}

// Bytes of a rows x cols matrix (quantized: cols a multiple of the block).
int64_t matrix_bytes(int32_t dtype, int64_t rows, int64_t cols) { return rows * row_bytes(dtype, cols); }

// The caller's data may sit at any address (a safetensors data section has no alignment): read it
// through memcpy, never through a typed pointer. Float types only (vectors and float matrices).
float element_as_float(const void* data, int32_t dtype, int64_t index) {
    const unsigned char* bytes = static_cast<const unsigned char*>(data);
    if (dtype == LK_DTYPE_F32) {
        float value;
        std::memcpy(&value, bytes + index * 4, 4);
        return value;
    }
    uint16_t bits;
    std::memcpy(&bits, bytes + index * 2, 2);
    return dtype == LK_DTYPE_F16 ? f16_to_float(bits) : bf16_to_float(bits);
}

// Index of the first NaN or infinity among count elements of an aligned copy, or -1. An element is
// non-finite when its exponent bits are all ones; the chunked OR keeps the common (clean) case a
// branch-free, vectorizable pass.
template <typename Bits>
int64_t find_non_finite_bits(const Bits* values, int64_t count, Bits exponent) {
    constexpr int64_t kChunk = 4096;
    for (int64_t start = 0; start < count; start += kChunk) {
        const int64_t end = std::min(count, start + kChunk);
        Bits any = 0;
        for (int64_t i = start; i < end; ++i) any |= static_cast<Bits>((values[i] & exponent) == exponent);
        if (!any) continue;
        for (int64_t i = start; i < end; ++i)
            if ((values[i] & exponent) == exponent) return i;
    }
    return -1;
}

int64_t find_non_finite(const void* data, int32_t dtype, int64_t count) {
    if (is_quantized(dtype)) return first_non_finite_scale(dtype, data, count);
    switch (dtype) {
        case LK_DTYPE_F32: return find_non_finite_bits(static_cast<const uint32_t*>(data), count, uint32_t{0x7F800000u});
        case LK_DTYPE_F16: return find_non_finite_bits(static_cast<const uint16_t*>(data), count, uint16_t{0x7C00u});
        default: return find_non_finite_bits(static_cast<const uint16_t*>(data), count, uint16_t{0x7F80u});
    }
}

std::string tensor_label(int32_t kind, int32_t layer) {
    std::string name = tensor_kind_name(kind);
    return is_per_layer(kind) ? "layer " + std::to_string(layer) + " " + name : name;
}

}  // namespace

const char* dtype_name(int32_t dtype) {
    switch (dtype) {
        case LK_DTYPE_F32: return "F32";
        case LK_DTYPE_F16: return "F16";
        case LK_DTYPE_BF16: return "BF16";
        case LK_DTYPE_Q8_0: return "Q8_0";
        case LK_DTYPE_Q4_0: return "Q4_0";
        case LK_DTYPE_Q5_0: return "Q5_0";
        case LK_DTYPE_Q4_K: return "Q4_K";
        case LK_DTYPE_Q5_K: return "Q5_K";
        case LK_DTYPE_Q6_K: return "Q6_K";
        default: return "unknown";
    }
}

const char* tensor_kind_name(int32_t kind) {
    static const char* const names[LK_TENSOR_KIND_COUNT] = {
        "token_embedding", "output_norm", "output",      "attn_norm",   "attn_q",
        "attn_k",          "attn_v",      "attn_output", "attn_q_bias", "attn_k_bias",
        "attn_v_bias",     "ffn_norm",    "ffn_gate",    "ffn_up",      "ffn_down"};
    return kind >= 0 && kind < LK_TENSOR_KIND_COUNT ? names[kind] : "unknown";
}

Model::Model(const lk_model_params& p) : params(p) {
    auto positive = [](int64_t value, const char* name) {
        require(value > 0 && value <= kMaxDimension,
                std::string(name) + " must be in 1.." + std::to_string(kMaxDimension) + ", got " +
                    std::to_string(value));
    };
    positive(p.vocab_size, "vocab_size");
    positive(p.hidden_size, "hidden_size");
    positive(p.intermediate_size, "intermediate_size");
    require(p.n_layers > 0 && p.n_layers <= kMaxLayers,
            "n_layers must be in 1.." + std::to_string(kMaxLayers) + ", got " + std::to_string(p.n_layers));
    positive(p.n_heads, "n_heads");
    positive(p.n_kv_heads, "n_kv_heads");
    positive(p.head_dim, "head_dim");
    positive(p.max_context, "max_context");
    require(p.n_heads % p.n_kv_heads == 0, "n_heads (" + std::to_string(p.n_heads) +
                                               ") must be a multiple of n_kv_heads (" +
                                               std::to_string(p.n_kv_heads) + ")");
    require(p.head_dim % 2 == 0, "head_dim must be even for RoPE, got " + std::to_string(p.head_dim));
    require(std::isfinite(p.rms_norm_eps) && p.rms_norm_eps > 0, "rms_norm_eps must be positive and finite");
    require(std::isfinite(p.rope_theta) && p.rope_theta > 1, "rope_theta must be finite and greater than 1");
    require((p.flags & ~(LK_MODEL_TIED_OUTPUT | LK_MODEL_QKV_BIAS)) == 0, "unknown bits in flags");
    require(p.reserved == 0, "reserved must be 0");

    rope_inv_freq.resize(p.head_dim / 2);
    for (int i = 0; i < p.head_dim / 2; ++i) {
        rope_inv_freq[i] = static_cast<float>(1.0 / std::pow(static_cast<double>(p.rope_theta),
                                                             2.0 * i / static_cast<double>(p.head_dim)));
    }
    layers.resize(p.n_layers);
}

void Model::set_tensor(int32_t kind, int32_t layer, int32_t dtype, int64_t rows, int64_t cols, const void* data) {
    require(kind >= 0 && kind < LK_TENSOR_KIND_COUNT, "unknown tensor kind " + std::to_string(kind));
    require(dtype == LK_DTYPE_F32 || dtype == LK_DTYPE_F16 || dtype == LK_DTYPE_BF16 || is_quantized(dtype),
            "unknown dtype " + std::to_string(dtype));
    require(data != nullptr, "tensor data is NULL");
    if (is_per_layer(kind)) {
        require(layer >= 0 && layer < params.n_layers,
                "layer " + std::to_string(layer) + " out of range 0.." + std::to_string(params.n_layers - 1));
    } else {
        layer = 0;
    }
    require(live_contexts.load() == 0, "the model is in use by a context; weights can no longer change");

    const int64_t hidden = params.hidden_size, ffn = params.intermediate_size;
    int64_t want_rows = 0, want_cols = 1;
    Tensor* slot = nullptr;
    LayerWeights& lw = layers[layer];
    switch (kind) {
        case LK_TENSOR_TOKEN_EMBEDDING: slot = &token_embedding; want_rows = params.vocab_size; want_cols = hidden; break;
        case LK_TENSOR_OUTPUT_NORM: slot = &output_norm; want_rows = hidden; break;
        case LK_TENSOR_OUTPUT:
            require(!(params.flags & LK_MODEL_TIED_OUTPUT), "output is tied to token_embedding; do not set it");
            slot = &output; want_rows = params.vocab_size; want_cols = hidden; break;
        case LK_TENSOR_ATTN_NORM: slot = &lw.attn_norm; want_rows = hidden; break;
        case LK_TENSOR_ATTN_Q: slot = &lw.q; want_rows = q_dim(); want_cols = hidden; break;
        case LK_TENSOR_ATTN_K: slot = &lw.k; want_rows = kv_dim(); want_cols = hidden; break;
        case LK_TENSOR_ATTN_V: slot = &lw.v; want_rows = kv_dim(); want_cols = hidden; break;
        case LK_TENSOR_ATTN_OUTPUT: slot = &lw.o; want_rows = hidden; want_cols = q_dim(); break;
        case LK_TENSOR_ATTN_Q_BIAS: slot = &lw.q_bias; want_rows = q_dim(); break;
        case LK_TENSOR_ATTN_K_BIAS: slot = &lw.k_bias; want_rows = kv_dim(); break;
        case LK_TENSOR_ATTN_V_BIAS: slot = &lw.v_bias; want_rows = kv_dim(); break;
        case LK_TENSOR_FFN_NORM: slot = &lw.ffn_norm; want_rows = hidden; break;
        case LK_TENSOR_FFN_GATE: slot = &lw.gate; want_rows = ffn; want_cols = hidden; break;
        case LK_TENSOR_FFN_UP: slot = &lw.up; want_rows = ffn; want_cols = hidden; break;
        case LK_TENSOR_FFN_DOWN: slot = &lw.down; want_rows = hidden; want_cols = ffn; break;
    }
    if (kind == LK_TENSOR_ATTN_Q_BIAS || kind == LK_TENSOR_ATTN_K_BIAS || kind == LK_TENSOR_ATTN_V_BIAS) {
        require(has_qkv_bias(), tensor_label(kind, layer) + " given but the model has no q/k/v biases");
    }
    require(rows == want_rows && cols == want_cols,
            tensor_label(kind, layer) + " has shape [" + std::to_string(rows) + ", " + std::to_string(cols) +
                "], expected [" + std::to_string(want_rows) + ", " + std::to_string(want_cols) + "]");

    if (is_quantized(dtype)) {
        const std::string type = dtype_name(dtype);
        require(!is_vector(kind), tensor_label(kind, layer) + " is a vector: " + type + " is for matrices (give vectors as F32, F16 or BF16)");
        require(cols % block_elements(dtype) == 0, tensor_label(kind, layer) + " is " + type + " but its rows hold " + std::to_string(cols) +
                                                       " values, not a multiple of " + std::to_string(block_elements(dtype)));
    }

    Tensor tensor;
    tensor.rows = rows;
    tensor.cols = cols;
    const int64_t count = rows * cols;
    if (is_vector(kind)) {
        tensor.dtype = LK_DTYPE_F32;
        tensor.data = AlignedBuffer(count * sizeof(float));
        float* out = tensor.data.as<float>();
        for (int64_t i = 0; i < count; ++i) out[i] = element_as_float(data, dtype, i);
    } else {
        tensor.dtype = dtype;
        tensor.data = AlignedBuffer(matrix_bytes(dtype, rows, cols));
        std::memcpy(tensor.data.data(), data, matrix_bytes(dtype, rows, cols));
    }
    // Checked on the aligned copy: weights with NaN or infinity would only ever produce NaN logits.
    const int64_t bad = find_non_finite(tensor.data.data(), tensor.dtype, count);
    if (bad >= 0 && is_quantized(dtype)) {
        fail(LK_ERR_INVALID_ARGUMENT, tensor_label(kind, layer) + " has a NaN or infinite block scale at element " + std::to_string(bad) +
                                          " (row " + std::to_string(bad / cols) + ", column " + std::to_string(bad % cols) +
                                          "); weights must be finite");
    }
    if (bad >= 0) {
        const float value = element_as_float(tensor.data.data(), tensor.dtype, bad);
        fail(LK_ERR_INVALID_ARGUMENT, tensor_label(kind, layer) + " holds " + (std::isnan(value) ? "NaN" : value > 0 ? "+inf" : "-inf") +
                                          " at element " + std::to_string(bad) + " (row " + std::to_string(bad / cols) +
                                          ", column " + std::to_string(bad % cols) + "); weights must be finite");
    }
    *slot = std::move(tensor);
}

int32_t Model::matrix_dtype_where(bool (*holds)(int32_t)) const {
    std::vector<const Tensor*> matrices = {&token_embedding, &output};
    for (const LayerWeights& w : layers) matrices.insert(matrices.end(), {&w.q, &w.k, &w.v, &w.o, &w.gate, &w.up, &w.down});
    for (const Tensor* m : matrices)
        if (holds(m->dtype)) return m->dtype;
    return -1;
}

void Model::set_rope_frequencies(const float* inv_freq, int32_t count) {
    require(inv_freq != nullptr, "inv_freq is NULL");
    require(count == params.head_dim / 2, "expected head_dim/2 = " + std::to_string(params.head_dim / 2) +
                                              " RoPE frequencies, got " + std::to_string(count));
    require(live_contexts.load() == 0, "the model is in use by a context; RoPE frequencies can no longer change");
    for (int i = 0; i < count; ++i) {
        require(std::isfinite(inv_freq[i]) && inv_freq[i] >= 0, "RoPE frequency " + std::to_string(i) + " is invalid");
    }
    rope_inv_freq.assign(inv_freq, inv_freq + count);
}

void Model::check_complete() const {
    auto need = [](const Tensor& tensor, int32_t kind, int32_t layer) {
        if (!tensor.present()) fail(LK_ERR_INVALID_STATE, "tensor " + tensor_label(kind, layer) + " was never set");
    };
    need(token_embedding, LK_TENSOR_TOKEN_EMBEDDING, 0);
    need(output_norm, LK_TENSOR_OUTPUT_NORM, 0);
    if (!(params.flags & LK_MODEL_TIED_OUTPUT)) need(output, LK_TENSOR_OUTPUT, 0);
    for (int l = 0; l < params.n_layers; ++l) {
        const LayerWeights& w = layers[l];
        need(w.attn_norm, LK_TENSOR_ATTN_NORM, l);
        need(w.q, LK_TENSOR_ATTN_Q, l);
        need(w.k, LK_TENSOR_ATTN_K, l);
        need(w.v, LK_TENSOR_ATTN_V, l);
        need(w.o, LK_TENSOR_ATTN_OUTPUT, l);
        if (has_qkv_bias()) {
            need(w.q_bias, LK_TENSOR_ATTN_Q_BIAS, l);
            need(w.k_bias, LK_TENSOR_ATTN_K_BIAS, l);
            need(w.v_bias, LK_TENSOR_ATTN_V_BIAS, l);
        }
        need(w.ffn_norm, LK_TENSOR_FFN_NORM, l);
        need(w.gate, LK_TENSOR_FFN_GATE, l);
        need(w.up, LK_TENSOR_FFN_UP, l);
        need(w.down, LK_TENSOR_FFN_DOWN, l);
    }
}

}  // namespace lk
