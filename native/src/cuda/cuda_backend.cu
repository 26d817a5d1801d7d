// The CUDA backend: the same forward pass as the CPU backend, one kernel family per stage, every stage
// computing each node independently of the rest of the batch so lookahead stays lossless on the GPU.
#include <algorithm>
#include <string>
#include <vector>

#if __has_include(<nvtx3/nvToolsExt.h>)
#include <nvtx3/nvToolsExt.h>
#define LK_NVTX_PUSH(name) nvtxRangePushA(name)
#define LK_NVTX_POP() nvtxRangePop()
#else
#define LK_NVTX_PUSH(name) ((void)0)
#define LK_NVTX_POP() ((void)0)
#endif

#include "../common/backend.h"
#include "attention.cuh"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "elementwise.cuh"
#include "matmul.cuh"
#include "rope.cuh"
#include "sampling.cuh"
#include "verify.cuh"

namespace lk {
namespace {

// A named NVTX range for the Nsight timelines.
struct NvtxRange {
    explicit NvtxRange(const char* name) { LK_NVTX_PUSH(name); }
    ~NvtxRange() { LK_NVTX_POP(); }
};

struct DeviceTensor {
    cuda::DeviceBuffer<uint8_t> data;
    int32_t dtype = LK_DTYPE_F32;
    int64_t rows = 0, cols = 0;
    const void* get() const { return data.get(); }
    const float* f32() const { return reinterpret_cast<const float*>(data.get()); }
};

DeviceTensor upload(const Tensor& t) {
    DeviceTensor d;
    if (!t.present()) return d;
    d.dtype = t.dtype;
    d.rows = t.rows;
    d.cols = t.cols;
    d.data = cuda::DeviceBuffer<uint8_t>(t.data.size());
    cuda::check(cudaMemcpy(d.data.get(), t.data.data(), t.data.size(), cudaMemcpyHostToDevice), "weight upload");
    return d;
}

struct DeviceLayer {
    DeviceTensor attn_norm, q, k, v, o, q_bias, k_bias, v_bias, ffn_norm, gate, up, down;
};

// CUDA graphs (unless the context asks for LK_CUDA_GRAPHS_OFF): the forward pass of each decoding-step shape (nodes, chain or
// tree) is captured once and then replayed as one launch; everything that changes from step to step
// (tokens, positions, the tree, n_past) is in device memory that the kernels read, and the attention
// launches cover the whole context (chunks past n_past return at once). Only
// steps that keep every node's logits (decode_greedy's) and have at most kMaxGraphNodes nodes are graphed:
// prefill chunks of one-off lengths would each cost a capture for one replay.
struct GraphKey {
    int n;
    bool chain;
    bool operator==(const GraphKey& o) const { return n == o.n && chain == o.chain; }
};
constexpr int kMaxGraphNodes = 64;  // so at most 128 graphs per context

class CudaBackend final : public Backend {
public:
    CudaBackend(const Model& model, int32_t n_ctx, int32_t n_batch, const KernelChoices& requested)
        : model_(model), p_(model.params), n_ctx_(n_ctx), n_batch_(n_batch), device_(requested.cuda_device) {
        choices_.cuda_device = device_;
        choices_.cuda_matmul = requested.cuda_matmul == LK_CUDA_MATMUL_SIMT ? LK_CUDA_MATMUL_SIMT : LK_CUDA_MATMUL_TENSOR_CORES;
        choices_.cuda_attention = requested.cuda_attention == LK_CUDA_ATTENTION_SHARED_PREFIX ? LK_CUDA_ATTENTION_SHARED_PREFIX
                                                                                              : LK_CUDA_ATTENTION_PER_NODE;
        choices_.cuda_graphs = requested.cuda_graphs == LK_CUDA_GRAPHS_OFF ? LK_CUDA_GRAPHS_OFF : LK_CUDA_GRAPHS_ON;
        select_device();
        // Stage timing waits for the device at each boundary (errors surface at the next checked call).
        profile_.set_barrier([] { (void)cudaDeviceSynchronize(); });
        if (p_.head_dim > cuda::attention_max_head_dim())
            fail(LK_ERR_UNSUPPORTED, "head_dim " + std::to_string(p_.head_dim) + " exceeds the CUDA attention kernel's " +
                                         std::to_string(cuda::attention_max_head_dim()));
        plan_ = cuda::plan_attention(n_ctx, p_.head_dim,
                                     choices_.cuda_attention == LK_CUDA_ATTENTION_SHARED_PREFIX ? cuda::AttentionKernel::SharedPrefix
                                                                                                : cuda::AttentionKernel::PerNode);
        cuda::attention_prepare(plan_, p_.head_dim);
        attention_scratch_ = cuda::DeviceBuffer<float>(cuda::attention_scratch_floats(plan_, n_batch, p_.n_heads, p_.head_dim));

        token_embedding_ = upload(model.token_embedding);
        output_norm_ = upload(model.output_norm);
        if (!(p_.flags & LK_MODEL_TIED_OUTPUT)) output_ = upload(model.output);
        for (const LayerWeights& w : model.layers) {
            layers_.push_back(DeviceLayer{upload(w.attn_norm), upload(w.q), upload(w.k), upload(w.v), upload(w.o),
                                          upload(w.q_bias), upload(w.k_bias), upload(w.v_bias), upload(w.ffn_norm),
                                          upload(w.gate), upload(w.up), upload(w.down)});
        }
        inv_freq_ = cuda::DeviceBuffer<float>(model.rope_inv_freq.size());
        cuda::check(cudaMemcpy(inv_freq_.get(), model.rope_inv_freq.data(), model.rope_inv_freq.size() * sizeof(float),
                               cudaMemcpyHostToDevice), "rope upload");

        const int64_t hidden = p_.hidden_size, q_dim = model.q_dim(), kv_dim = model.kv_dim(), ffn = p_.intermediate_size;
        layer_stride_ = int64_t{n_ctx} * kv_dim;
        key_cache_ = cuda::DeviceBuffer<float>(layer_stride_ * p_.n_layers);
        value_cache_ = cuda::DeviceBuffer<float>(layer_stride_ * p_.n_layers);
        x_ = cuda::DeviceBuffer<float>(n_batch * hidden);
        xb_ = cuda::DeviceBuffer<float>(n_batch * hidden);
        q_ = cuda::DeviceBuffer<float>(n_batch * q_dim);
        k_ = cuda::DeviceBuffer<float>(n_batch * kv_dim);
        v_ = cuda::DeviceBuffer<float>(n_batch * kv_dim);
        attn_ = cuda::DeviceBuffer<float>(n_batch * q_dim);
        gate_ = cuda::DeviceBuffer<float>(n_batch * ffn);
        up_ = cuda::DeviceBuffer<float>(n_batch * ffn);
        logits_ = cuda::DeviceBuffer<float>(n_batch * int64_t{p_.vocab_size});
        // Scratch for the largest product of a batch: the layers' stacked q/k/v and gate/up, o, down, the head.
        cuda::MmaScratchSize scratch;
        for (int l = 0; l < p_.n_layers; ++l) {
            for (const Product& product : {attention_inputs(l, nullptr), attention_output(l, nullptr), feed_forward(l, nullptr),
                                           feed_forward_down(l, nullptr)}) {
                for (int first = 0; first < product.n_parts; first += product.launch_size) {
                    const cuda::MmaScratchSize need = cuda::matmul_scratch(product.parts + first, product.launch_size,
                                                                           product.dtypes[first], product.cols, n_batch,
                                                                           choices_.cuda_matmul);
                    scratch.floats = std::max(scratch.floats, need.floats);
                    scratch.counters = std::max(scratch.counters, need.counters);
                }
            }
        }
        const DeviceTensor& head = output_head();
        const cuda::MatmulPart head_part{head.get(), head.rows, nullptr, 0, nullptr};
        const cuda::MmaScratchSize head_need = cuda::matmul_scratch(&head_part, 1, head.dtype, head.cols, n_batch, choices_.cuda_matmul);
        scratch.floats = std::max(scratch.floats, head_need.floats);
        scratch.counters = std::max(scratch.counters, head_need.counters);
        matmul_partial_ = cuda::DeviceBuffer<float>(std::max<int64_t>(scratch.floats, 1));
        matmul_counters_ = cuda::DeviceBuffer<int>(std::max<int64_t>(scratch.counters, 1));
        cuda::check(cudaMemset(matmul_counters_.get(), 0, matmul_counters_.size() * sizeof(int)), "cudaMemset");
        // Per-batch integers: tokens, parents, positions, depths, ancestor offsets, n_past, argmax, path
        // scratch, result, then the flat ancestor lists (at most n_batch * n_batch).
        ints_ = cuda::DeviceBuffer<int32_t>(10 * int64_t{n_batch} + 4 + int64_t{n_batch} * n_batch);
        host_ints_.resize(ints_.size());
        // Poison the activations: a stage that fails to write its output shows up as NaN in the tests.
        for (cuda::DeviceBuffer<float>* buffer : {&x_, &xb_, &q_, &k_, &v_, &attn_, &gate_, &up_, &logits_})
            cuda::check(cudaMemset(buffer->get(), 0xFF, buffer->size() * sizeof(float)), "cudaMemset");
        host_logits_.resize(p_.vocab_size);
        cuda::check(cudaEventCreate(&work_start_), "cudaEventCreate");
        cuda::check(cudaEventCreate(&work_stop_), "cudaEventCreate");
        finish_on_this_thread();  // the memsets above, before another thread's first call
    }

    ~CudaBackend() override {
        (void)cudaSetDevice(device_);
        clear_graphs();
        (void)cudaEventDestroy(work_start_);
        (void)cudaEventDestroy(work_stop_);
    }

    int32_t kind() const override { return LK_BACKEND_CUDA; }
    int32_t threads() const override { return 1; }

    void forward(const Tree& tree, int32_t n_past, int32_t logits_mode) override {
        NvtxRange range("lk forward");
        select_device();
        const cuda::TreeView view = upload_tree(tree, n_past);
        // Stage timing synchronizes inside the pass, which a graph cannot; profiled passes launch directly.
        if (choices_.cuda_graphs == LK_CUDA_GRAPHS_ON && !profile_.enabled() && logits_mode == LK_LOGITS_ALL && view.n <= kMaxGraphNodes) {
            const cudaGraphExec_t graph = graph_for(GraphKey{view.n, tree.is_chain()}, view, n_past);
            mark_work_start();  // after a capture, which is host work
            cuda::check(cudaGraphLaunch(graph, cudaStreamPerThread), "cudaGraphLaunch");
        } else {
            mark_work_start();
            encode_forward(view, n_past, nullptr, logits_mode);
        }
        mark_work_stop();
        finish_on_this_thread();
        add_work_time();
    }

private:
    // Issues the forward pass's kernels, directly or into a graph being captured. device_n_past: where the
    // kernels read n_past (graphs), or null to pass it by value.
    void encode_forward(const cuda::TreeView& view, int32_t n_past, const int32_t* device_n_past, int32_t logits_mode) {
        const int n = view.n;
        const int64_t hidden = p_.hidden_size, ffn = p_.intermediate_size;
        const DeviceTensor& embedding = token_embedding_;
        {
            StageProfile::Scope stage(profile_, Stage::kEmbed);
            cuda::embed(embedding.get(), embedding.dtype, tokens(), n, p_.hidden_size, x_.get());
        }

        for (int l = 0; l < p_.n_layers; ++l) {
            const DeviceLayer& w = layers_[l];
            float* keys = key_cache_.get() + l * layer_stride_;
            float* values = value_cache_.get() + l * layer_stride_;
            {
                StageProfile::Scope stage(profile_, Stage::kAttentionInputs);
                cuda::rms_norm(x_.get(), w.attn_norm.f32(), xb_.get(), 0, n, p_.hidden_size, p_.rms_norm_eps);
                run(attention_inputs(l, xb_.get()), n);
                cuda::rope_and_store(q_.get(), k_.get(), v_.get(), positions(), inv_freq_.get(), n, p_.n_heads, p_.n_kv_heads,
                                     p_.head_dim, n_past, device_n_past, keys, values);
            }
            {
                StageProfile::Scope stage(profile_, Stage::kAttention);
                cuda::tree_attention(q_.get(), keys, values, n_past, device_n_past, view, p_.n_heads, p_.n_kv_heads, p_.head_dim,
                                     plan_, attention_scratch_.get(), attn_.get());
            }
            {
                StageProfile::Scope stage(profile_, Stage::kAttentionOutput);
                run(attention_output(l, attn_.get()), n);  // adds to the residual stream x
            }
            {
                StageProfile::Scope stage(profile_, Stage::kFeedForward);
                cuda::rms_norm(x_.get(), w.ffn_norm.f32(), xb_.get(), 0, n, p_.hidden_size, p_.rms_norm_eps);
                run(feed_forward(l, xb_.get()), n);
                cuda::swiglu(gate_.get(), up_.get(), n * ffn);
            }
            {
                StageProfile::Scope stage(profile_, Stage::kFeedForwardDown);
                run(feed_forward_down(l, gate_.get()), n);  // adds to the residual stream x
            }
        }
        if (logits_mode == LK_LOGITS_NONE) return;
        StageProfile::Scope stage(profile_, Stage::kOutput);
        const int first = logits_mode == LK_LOGITS_LAST ? n - 1 : 0;
        cuda::rms_norm(x_.get(), output_norm_.f32(), xb_.get(), first, n, p_.hidden_size, p_.rms_norm_eps);
        const DeviceTensor& head = output_head();
        const cuda::MatmulPart part{head.get(), head.rows, logits_.get() + int64_t{first} * p_.vocab_size, p_.vocab_size, nullptr};
        cuda::matmul(&part, 1, head.dtype, head.cols, xb_.get() + first * hidden, hidden, n - first, false, choices_.cuda_matmul,
                     matmul_scratch());
    }

    // The instantiated graph of this key, captured on first use.
    cudaGraphExec_t graph_for(const GraphKey& key, const cuda::TreeView& view, int32_t n_past) {
        for (const CachedGraph& cached : graphs_cache_)
            if (cached.key == key) return cached.exec;
        NvtxRange range("lk graph capture");
        const cudaStream_t stream = cudaStreamPerThread;  // kernels launch there (--default-stream per-thread)
        cuda::check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
        cudaGraph_t graph = nullptr;
        try {
            encode_forward(view, n_past, device_n_past(), LK_LOGITS_ALL);
        } catch (...) {
            (void)cudaStreamEndCapture(stream, &graph);
            if (graph) (void)cudaGraphDestroy(graph);
            throw;
        }
        cuda::check(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
        cudaGraphExec_t exec = nullptr;
        const cudaError_t status = cudaGraphInstantiateWithFlags(&exec, graph, 0);
        (void)cudaGraphDestroy(graph);
        cuda::check(status, "cudaGraphInstantiate");
        graphs_cache_.push_back({key, exec});
        return exec;
    }

    // Kernels go to the calling thread's default stream (--default-stream per-thread, which graphs can
    // capture). A context may be driven from different threads one call after another (an async host),
    // and another thread's stream is not ordered after this one: every call leaves no work queued.
    static void finish_on_this_thread() { cuda::check(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize"); }

    // Device time (LK_PROFILE_DEVICE): events on the stream around a call's device work, read once the
    // call has waited for the device.
    void mark_work_start() {
        if (profile_.device_timing()) cuda::check(cudaEventRecord(work_start_, cudaStreamPerThread), "cudaEventRecord");
    }
    void mark_work_stop() {
        if (profile_.device_timing()) cuda::check(cudaEventRecord(work_stop_, cudaStreamPerThread), "cudaEventRecord");
    }
    void add_work_time() {
        if (!profile_.device_timing()) return;
        cuda::check(cudaEventSynchronize(work_stop_), "cudaEventSynchronize");
        float ms = 0;
        cuda::check(cudaEventElapsedTime(&ms, work_start_, work_stop_), "cudaEventElapsedTime");
        profile_.add_device_time(ms * 1e-3);
    }

    void clear_graphs() {
        for (const CachedGraph& cached : graphs_cache_) (void)cudaGraphExecDestroy(cached.exec);
        graphs_cache_.clear();
    }

public:
    const float* logits(int32_t node) override {
        select_device();
        cuda::check(cudaMemcpy(host_logits_.data(), logits_.get() + int64_t{node} * p_.vocab_size,
                               p_.vocab_size * sizeof(float), cudaMemcpyDeviceToHost), "logits download");
        return host_logits_.data();
    }

    int32_t verify_greedy(const Tree& tree, int32_t* path, int32_t* bonus) override {
        NvtxRange range("lk verify");
        select_device();
        StageProfile::Scope stage(profile_, Stage::kVerify);
        const int n = tree.size();
        mark_work_start();
        cuda::argmax_rows(logits_.get(), n, p_.vocab_size, argmax());
        cuda::greedy_path(tokens(), parents(), argmax(), n, scratch(), result());
        mark_work_stop();
        return download_path(n, path, bonus);
    }

    // The rule at every node on the device (one block per node), then greedy_path's walk with the sampled
    // tokens in place of the argmax: only the path and the bonus come back.
    int32_t verify_sample(const Tree& tree, const SampledStep& step, int32_t* path, int32_t* bonus) override {
        NvtxRange range("lk verify");
        select_device();
        StageProfile::Scope stage(profile_, Stage::kVerify);
        const int n = tree.size();
        const SamplingSettings& s = step.settings;
        cuda::SamplerArgs args{row_rule(s, p_.vocab_size), s.repetition_penalty, s.presence_penalty, s.frequency_penalty,
                               s.penalizes(), step.seed, step.token_index, step.n_history >= step.n_prompt};
        const int32_t* counts_all = nullptr;
        const int32_t* counts_output = nullptr;
        if (args.penalizes) {
            count_history(step);
            counts_all = counts_.get();
            counts_output = counts_.get() + p_.vocab_size;
        }
        mark_work_start();
        cuda::sample_rows(logits_.get(), n, p_.vocab_size, tokens(), parents(), counts_all, counts_output, args,
                          penalized_.get(), argmax());
        cuda::greedy_path(tokens(), parents(), argmax(), n, scratch(), result());
        mark_work_stop();
        return download_path(n, path, bonus);
    }

    void compact(int32_t n_past, const int32_t* path, int32_t n) override {
        NvtxRange range("lk compact");
        select_device();
        StageProfile::Scope stage(profile_, Stage::kCompact);
        cuda::check(cudaMemcpy(scratch(), path, n * sizeof(int32_t), cudaMemcpyHostToDevice), "path upload");
        mark_work_start();
        cuda::compact(key_cache_.get(), value_cache_.get(), p_.n_layers, layer_stride_, model_.kv_dim(), n_past, scratch(), n);
        mark_work_stop();
        finish_on_this_thread();
        add_work_time();
    }

private:
    // Only the path and the bonus token come back from a verification: length, n path entries at most, bonus.
    int32_t download_path(int n, int32_t* path, int32_t* bonus) {
        cuda::check(cudaMemcpy(host_ints_.data(), result(), (n + 2) * sizeof(int32_t), cudaMemcpyDeviceToHost), "verify download");
        add_work_time();
        const int32_t length = host_ints_[0];
        std::memcpy(path, host_ints_.data() + 1, length * sizeof(int32_t));
        *bonus = host_ints_[1 + length];
        return length;
    }

    // Brings the device's token counts (the penalties') to the committed sequence before the root: counts
    // of tokens no longer there come off, new ones go on, so a step uploads only what changed.
    void count_history(const SampledStep& step) {
        if (!counts_.get()) {
            // Into locals first: if an allocation fails, nothing half-made stays behind for the next step.
            cuda::DeviceBuffer<int32_t> counts(2 * int64_t{p_.vocab_size}), history(std::max(n_ctx_, 1));
            cuda::DeviceBuffer<float> penalized(int64_t{n_batch_} * p_.vocab_size);
            cuda::check(cudaMemset(counts.get(), 0, counts.size() * sizeof(int32_t)), "cudaMemset");
            history_ = std::move(history);
            penalized_ = std::move(penalized);
            counts_ = std::move(counts);
            counted_.clear();
        }
        int32_t* all = counts_.get();
        int32_t* output = all + p_.vocab_size;
        try {
            counted_.update(step.history, step.n_history, step.n_prompt,
                            [&](const int32_t* tokens, int32_t n, int32_t first_output, int32_t delta) {
                                cuda::check(cudaMemcpy(history_.get(), tokens, n * sizeof(int32_t), cudaMemcpyHostToDevice),
                                            "counts upload");
                                cuda::count_tokens(all, output, history_.get(), n, first_output, delta);
                            });
        } catch (...) {
            counts_ = {};  // counts half changed: the next penalized step starts again from zero
            counted_.clear();
            throw;
        }
    }

    int32_t* tokens() const { return ints_.get(); }
    int32_t* parents() const { return ints_.get() + n_batch_; }
    int32_t* positions() const { return ints_.get() + 2 * int64_t{n_batch_}; }
    int32_t* depths() const { return ints_.get() + 3 * int64_t{n_batch_}; }
    int32_t* offsets() const { return ints_.get() + 4 * int64_t{n_batch_}; }
    int32_t* device_n_past() const { return ints_.get() + 5 * int64_t{n_batch_}; }
    int32_t* argmax() const { return ints_.get() + 5 * int64_t{n_batch_} + 1; }
    int32_t* scratch() const { return ints_.get() + 6 * int64_t{n_batch_} + 1; }  // 2 * n_batch
    int32_t* result() const { return ints_.get() + 8 * int64_t{n_batch_} + 1; }   // n_batch + 2
    int32_t* ancestors() const { return ints_.get() + 9 * int64_t{n_batch_} + 4; }

    // One host-to-device copy of the batch's integers and n_past; trees also send their ancestor lists.
    cuda::TreeView upload_tree(const Tree& tree, int32_t n_past) {
        const int n = tree.size();
        int32_t* h = host_ints_.data();
        for (int i = 0; i < n; ++i) {
            h[i] = tree.token(i);
            h[n_batch_ + i] = tree.parent(i);
            h[2 * n_batch_ + i] = n_past + tree.depth(i);
            h[3 * n_batch_ + i] = tree.depth(i);
        }
        int64_t flat = 0;
        if (!tree.is_chain()) {
            int32_t* list = h + 9 * int64_t{n_batch_} + 4;
            for (int i = 0; i < n; ++i) {
                h[4 * n_batch_ + i] = static_cast<int32_t>(flat);
                std::memcpy(list + flat, tree.visible(i), tree.visible_count(i) * sizeof(int32_t));
                flat += tree.visible_count(i);
            }
        }
        h[5 * n_batch_] = n_past;
        cuda::check(cudaMemcpy(ints_.get(), h, (5 * int64_t{n_batch_} + 1) * sizeof(int32_t), cudaMemcpyHostToDevice), "batch upload");
        if (flat > 0)
            cuda::check(cudaMemcpy(ancestors(), h + 9 * int64_t{n_batch_} + 4, flat * sizeof(int32_t), cudaMemcpyHostToDevice),
                        "ancestor upload");
        return cuda::TreeView{depths(), offsets(), tree.is_chain() ? nullptr : ancestors(), n, tree.max_depth()};
    }

    // The products of a layer, as parts that share their inputs: launch_size parts go out in one launch
    // (all of them when their dtypes agree, else one each).
    struct Product {
        cuda::MatmulPart parts[cuda::kMaxMatmulParts];
        int32_t dtypes[cuda::kMaxMatmulParts] = {};
        int n_parts = 0;
        int launch_size = 1;
        int64_t cols = 0;
        const float* x = nullptr;
        bool accumulate = false;
    };
    static Product product(std::initializer_list<std::pair<const DeviceTensor*, cuda::MatmulPart>> parts, const float* x,
                           bool accumulate) {
        Product result;
        result.x = x;
        result.accumulate = accumulate;
        bool same_dtype = true;
        for (const auto& [tensor, part] : parts) {
            if (result.n_parts == 0) result.cols = tensor->cols;
            same_dtype = same_dtype && tensor->dtype == parts.begin()->first->dtype;
            result.dtypes[result.n_parts] = tensor->dtype;
            result.parts[result.n_parts++] = part;
        }
        result.launch_size = same_dtype ? result.n_parts : 1;
        return result;
    }
    static const float* bias_of(const DeviceTensor& bias) { return bias.rows ? bias.f32() : nullptr; }
    Product attention_inputs(int l, const float* x) const {
        const DeviceLayer& w = layers_[l];
        return product({{&w.q, {w.q.get(), w.q.rows, q_.get(), model_.q_dim(), bias_of(w.q_bias)}},
                        {&w.k, {w.k.get(), w.k.rows, k_.get(), model_.kv_dim(), bias_of(w.k_bias)}},
                        {&w.v, {w.v.get(), w.v.rows, v_.get(), model_.kv_dim(), bias_of(w.v_bias)}}},
                       x, false);
    }
    Product attention_output(int l, const float* x) const {
        const DeviceLayer& w = layers_[l];
        return product({{&w.o, {w.o.get(), w.o.rows, x_.get(), p_.hidden_size, nullptr}}}, x, true);
    }
    Product feed_forward(int l, const float* x) const {
        const DeviceLayer& w = layers_[l];
        return product({{&w.gate, {w.gate.get(), w.gate.rows, gate_.get(), p_.intermediate_size, nullptr}},
                        {&w.up, {w.up.get(), w.up.rows, up_.get(), p_.intermediate_size, nullptr}}},
                       x, false);
    }
    Product feed_forward_down(int l, const float* x) const {
        const DeviceLayer& w = layers_[l];
        return product({{&w.down, {w.down.get(), w.down.rows, x_.get(), p_.hidden_size, nullptr}}}, x, true);
    }
    void run(const Product& product, int n) {
        for (int first = 0; first < product.n_parts; first += product.launch_size)
            cuda::matmul(product.parts + first, product.launch_size, product.dtypes[first], product.cols, product.x, product.cols,
                         n, product.accumulate, choices_.cuda_matmul, matmul_scratch());
    }
    cuda::MmaScratch matmul_scratch() const { return {matmul_partial_.get(), matmul_counters_.get()}; }

    // Kernels launch on the calling thread's current device: every entry point selects this context's.
    void select_device() const { cuda::check(cudaSetDevice(device_), "cudaSetDevice"); }

    const DeviceTensor& output_head() const { return (p_.flags & LK_MODEL_TIED_OUTPUT) ? token_embedding_ : output_; }

    const Model& model_;
    const lk_model_params& p_;
    const int32_t n_ctx_, n_batch_;
    const int32_t device_;
    int64_t layer_stride_ = 0;
    DeviceTensor token_embedding_, output_norm_, output_;
    std::vector<DeviceLayer> layers_;
    cuda::AttentionPlan plan_{};
    cuda::DeviceBuffer<float> attention_scratch_;
    cuda::DeviceBuffer<float> matmul_partial_;   // split-K partial sums of the BF16 tensor-core matmul
    cuda::DeviceBuffer<int> matmul_counters_;    // its per-row-block slice counters (zero between launches)
    cuda::DeviceBuffer<float> inv_freq_, key_cache_, value_cache_, x_, xb_, q_, k_, v_, attn_, gate_, up_, logits_;
    cuda::DeviceBuffer<int32_t> ints_;
    cudaEvent_t work_start_ = nullptr, work_stop_ = nullptr;
    struct CachedGraph {
        GraphKey key;
        cudaGraphExec_t exec;
    };
    std::vector<CachedGraph> graphs_cache_;  // a few dozen keys in practice: a linear search is enough
    std::vector<int32_t> host_ints_;
    std::vector<float> host_logits_;
    // Sampling with penalties (allocated at its first step): the committed sequence's token counts (all, then
    // output), the tokens they count, an upload buffer, the penalized logits of a step's nodes.
    cuda::DeviceBuffer<int32_t> counts_, history_;
    cuda::DeviceBuffer<float> penalized_;
    CountedHistory counted_;  // what counts_ holds
};

}  // namespace

int32_t cuda_device_count(std::string* reason) {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    if (status != cudaSuccess) {
        if (reason) *reason = cudaGetErrorString(status);
        cudaGetLastError();  // clear the sticky error for later calls
        return 0;
    }
    if (count == 0 && reason) *reason = "no CUDA device found";
    return count;
}

std::unique_ptr<Backend> make_cuda_backend(const Model& model, int32_t n_ctx, int32_t n_batch, const KernelChoices& requested) {
    return std::make_unique<CudaBackend>(model, n_ctx, n_batch, requested);
}

}  // namespace lk
