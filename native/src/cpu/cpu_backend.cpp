// The CPU backend: a readable Llama forward pass (in the spirit of llama2.c) over a batch of tree
// nodes, with the matrix products spread over a persistent thread pool.
#include <cmath>
#include <cstring>
#include <vector>

#include "../common/backend.h"
#include "../common/half.h"
#include "kernels.h"
#include "thread_pool.h"

namespace lk {
namespace {

// Below this many multiply-adds a job is cheaper inline than handed to the pool.
constexpr int64_t kParallelWork = 1 << 16;

class CpuBackend final : public Backend {
public:
    CpuBackend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads)
        : model_(model), p_(model.params), n_ctx_(n_ctx), n_batch_(n_batch), pool_(n_threads),
          matmul_(cpu::best_matmul_kernel()) {
        const int64_t hidden = p_.hidden_size, q_dim = model.q_dim(), kv_dim = model.kv_dim();
        const int64_t cache_floats = int64_t{p_.n_layers} * n_ctx * kv_dim;
        key_cache_ = AlignedBuffer(cache_floats * sizeof(float));
        value_cache_ = AlignedBuffer(cache_floats * sizeof(float));
        x_ = floats(n_batch * hidden);
        xb_ = floats(n_batch * hidden);
        q_ = floats(n_batch * q_dim);
        attn_ = floats(n_batch * q_dim);
        gate_ = floats(n_batch * int64_t{p_.intermediate_size});
        up_ = floats(n_batch * int64_t{p_.intermediate_size});
        logits_ = floats(n_batch * int64_t{p_.vocab_size});
        scores_ = floats(int64_t{pool_.size()} * n_ctx);
        argmax_.resize(n_batch);

        const int half = p_.head_dim / 2;
        rope_cos_ = floats(int64_t{n_ctx} * half);
        rope_sin_ = floats(int64_t{n_ctx} * half);
        for (int64_t pos = 0; pos < n_ctx; ++pos) {
            for (int i = 0; i < half; ++i) {
                // float angle like the HF reference: position * inv_freq in fp32, then cos/sin.
                const float angle = static_cast<float>(pos) * model.rope_inv_freq[i];
                rope_cos_.as<float>()[pos * half + i] = std::cos(angle);
                rope_sin_.as<float>()[pos * half + i] = std::sin(angle);
            }
        }
    }

    int32_t kind() const override { return LK_BACKEND_CPU; }
    int32_t threads() const override { return pool_.size(); }

    void forward(const Tree& tree, int32_t n_past, int32_t logits_mode) override {
        const int n = tree.size();
        const int64_t hidden = p_.hidden_size, q_dim = model_.q_dim(), kv_dim = model_.kv_dim();
        const int64_t ffn = p_.intermediate_size;
        float* x = x_.as<float>();
        float* xb = xb_.as<float>();

        for (int i = 0; i < n; ++i) embed(tree.token(i), x + i * hidden);

        for (int l = 0; l < p_.n_layers; ++l) {
            const LayerWeights& w = model_.layers[l];
            float* keys = key_cache_.as<float>() + (int64_t{l} * n_ctx_ + n_past) * kv_dim;
            float* values = value_cache_.as<float>() + (int64_t{l} * n_ctx_ + n_past) * kv_dim;

            for (int i = 0; i < n; ++i) cpu::rms_norm(x + i * hidden, w.attn_norm.f32(), xb + i * hidden, hidden, p_.rms_norm_eps);
            project(w.q, xb, hidden, n, q_.as<float>(), q_dim);
            project(w.k, xb, hidden, n, keys, kv_dim);
            project(w.v, xb, hidden, n, values, kv_dim);
            if (model_.has_qkv_bias()) {
                for (int i = 0; i < n; ++i) {
                    add(q_.as<float>() + i * q_dim, w.q_bias.f32(), q_dim);
                    add(keys + i * kv_dim, w.k_bias.f32(), kv_dim);
                    add(values + i * kv_dim, w.v_bias.f32(), kv_dim);
                }
            }
            for (int i = 0; i < n; ++i) {
                const int64_t pos = n_past + tree.depth(i);
                for (int h = 0; h < p_.n_heads; ++h) rotate(q_.as<float>() + i * q_dim + h * p_.head_dim, pos);
                for (int h = 0; h < p_.n_kv_heads; ++h) rotate(keys + i * kv_dim + h * p_.head_dim, pos);
            }

            attention(l, tree, n_past);
            project(w.o, attn_.as<float>(), q_dim, n, xb, hidden);
            for (int i = 0; i < n * hidden; ++i) x[i] += xb[i];

            for (int i = 0; i < n; ++i) cpu::rms_norm(x + i * hidden, w.ffn_norm.f32(), xb + i * hidden, hidden, p_.rms_norm_eps);
            project(w.gate, xb, hidden, n, gate_.as<float>(), ffn);
            project(w.up, xb, hidden, n, up_.as<float>(), ffn);
            for (int i = 0; i < n; ++i) cpu::swiglu(gate_.as<float>() + i * ffn, up_.as<float>() + i * ffn, ffn);
            project(w.down, gate_.as<float>(), ffn, n, xb, hidden);
            for (int i = 0; i < n * hidden; ++i) x[i] += xb[i];
        }

        if (logits_mode == LK_LOGITS_NONE) return;
        const int first = logits_mode == LK_LOGITS_LAST ? n - 1 : 0;
        for (int i = first; i < n; ++i) cpu::rms_norm(x + i * hidden, model_.output_norm.f32(), xb + i * hidden, hidden, p_.rms_norm_eps);
        project(model_.output_weights(), xb + first * hidden, hidden, n - first,
                logits_.as<float>() + int64_t{first} * p_.vocab_size, p_.vocab_size);
    }

    const float* logits(int32_t node) override { return logits_.as<float>() + int64_t{node} * p_.vocab_size; }

    int32_t verify_greedy(const Tree& tree, int32_t* path, int32_t* bonus) override {
        for (int i = 0; i < tree.size(); ++i) argmax_[i] = cpu::argmax(logits(i), p_.vocab_size);
        const int32_t length = tree.greedy_path(argmax_.data(), path);
        *bonus = argmax_[path[length - 1]];
        return length;
    }

    void compact(int32_t n_past, const int32_t* path, int32_t n) override {
        const int64_t kv_dim = model_.kv_dim();
        for (int l = 0; l < p_.n_layers; ++l) {
            float* keys = key_cache_.as<float>() + (int64_t{l} * n_ctx_ + n_past) * kv_dim;
            float* values = value_cache_.as<float>() + (int64_t{l} * n_ctx_ + n_past) * kv_dim;
            // path[j] >= j and increasing, so copying in order never overwrites a slot still to be read.
            for (int j = 0; j < n; ++j) {
                if (path[j] == j) continue;
                std::memcpy(keys + j * kv_dim, keys + path[j] * kv_dim, kv_dim * sizeof(float));
                std::memcpy(values + j * kv_dim, values + path[j] * kv_dim, kv_dim * sizeof(float));
            }
        }
    }

private:
    static AlignedBuffer floats(int64_t count) { return AlignedBuffer(count * sizeof(float)); }

    static void add(float* y, const float* b, int64_t n) {
        for (int64_t i = 0; i < n; ++i) y[i] += b[i];
    }

    void embed(int32_t token, float* out) const {
        const Tensor& e = model_.token_embedding;
        const int64_t hidden = p_.hidden_size, offset = int64_t{token} * hidden;
        switch (e.dtype) {
            case LK_DTYPE_F32: std::memcpy(out, e.f32() + offset, hidden * sizeof(float)); break;
            case LK_DTYPE_F16:
                for (int64_t i = 0; i < hidden; ++i) out[i] = f16_to_float(e.data.as<uint16_t>()[offset + i]);
                break;
            default:
                for (int64_t i = 0; i < hidden; ++i) out[i] = bf16_to_float(e.data.as<uint16_t>()[offset + i]);
                break;
        }
    }

    void rotate(float* head, int64_t pos) const {
        const int half = p_.head_dim / 2;
        cpu::rope_rotate(head, rope_cos_.as<float>() + pos * half, rope_sin_.as<float>() + pos * half, half);
    }

    // y[j] = W x[j] for the n_x input rows.
    void project(const Tensor& w, const float* x, int64_t x_stride, int n_x, float* y, int64_t y_stride) {
        const cpu::MatmulArgs args{w.data.data(), w.dtype, w.cols, x, x_stride, y, y_stride, n_x};
        if (pool_.size() == 1 || w.rows * w.cols * n_x < kParallelWork) {
            matmul_(args, 0, w.rows);
            return;
        }
        pool_.parallel_for(w.rows, 16, [&](int64_t begin, int64_t end) { matmul_(args, begin, end); });
    }

    // attn[i, head] = softmax over (committed slots + i's ancestors) of q.k / sqrt(d), applied to v.
    void attention(int layer, const Tree& tree, int32_t n_past) {
        const int n = tree.size(), heads = p_.n_heads, d = p_.head_dim;
        const int group = p_.n_heads / p_.n_kv_heads;
        const int64_t q_dim = model_.q_dim(), kv_dim = model_.kv_dim();
        const float* keys = key_cache_.as<float>() + int64_t{layer} * n_ctx_ * kv_dim;
        const float* values = value_cache_.as<float>() + int64_t{layer} * n_ctx_ * kv_dim;
        const float scale = 1.0f / std::sqrt(static_cast<float>(d));

        auto run = [&](int thread, int64_t begin, int64_t end) {
            float* scores = scores_.as<float>() + int64_t{thread} * n_ctx_;
            for (int64_t item = begin; item < end; ++item) {
                const int i = static_cast<int>(item / heads), h = static_cast<int>(item % heads);
                const int64_t kv_offset = int64_t{h / group} * d;
                const float* q = q_.as<float>() + i * q_dim + int64_t{h} * d;
                const int32_t* visible = tree.visible(i);
                const int count = n_past + tree.visible_count(i);
                auto slot = [&](int s) -> int64_t { return s < n_past ? s : n_past + visible[s - n_past]; };

                float max_score = -INFINITY;
                for (int s = 0; s < count; ++s) {
                    scores[s] = cpu::dot(q, keys + slot(s) * kv_dim + kv_offset, d) * scale;
                    if (scores[s] > max_score) max_score = scores[s];
                }
                float total = 0.0f;
                for (int s = 0; s < count; ++s) {
                    scores[s] = std::exp(scores[s] - max_score);
                    total += scores[s];
                }
                float* out = attn_.as<float>() + i * q_dim + int64_t{h} * d;
                std::memset(out, 0, d * sizeof(float));
                const float inv_total = 1.0f / total;
                for (int s = 0; s < count; ++s) cpu::axpy(scores[s] * inv_total, values + slot(s) * kv_dim + kv_offset, out, d);
            }
        };

        const int64_t items = int64_t{n} * heads;
        const int64_t work = items * (n_past + tree.max_depth() + 1) * d;
        if (pool_.size() == 1 || work < kParallelWork) {
            run(0, 0, items);
            return;
        }
        pool_.run([&](int thread, int threads) {
            run(thread, items * thread / threads, items * (thread + 1) / threads);
        });
    }

    const Model& model_;
    const lk_model_params& p_;
    const int32_t n_ctx_, n_batch_;
    ThreadPool pool_;
    const cpu::MatmulKernel matmul_;
    AlignedBuffer key_cache_, value_cache_;  // [layer][slot][kv_dim]
    AlignedBuffer x_, xb_, q_, attn_, gate_, up_, logits_, scores_;
    AlignedBuffer rope_cos_, rope_sin_;  // [position][head_dim / 2]
    std::vector<int32_t> argmax_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads) {
    return std::make_unique<CpuBackend>(model, n_ctx, n_batch, n_threads);
}

}  // namespace lk
