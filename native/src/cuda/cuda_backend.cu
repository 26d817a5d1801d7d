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
#include "../common/forward_pass.h"
#include "attention.cuh"
#include "cuda_backend.h"
#include "cuda_check.h"
#include "device_timer.cuh"
#include "device_weights.cuh"
#include "elementwise.cuh"
#include "graph_cache.cuh"
#include "matmul.cuh"
#include "rope.cuh"
#include "sampling.cuh"
#include "step_inputs.cuh"
#include "verify.cuh"

namespace lk {
namespace {

using cuda::DeviceBuffer;
using cuda::DeviceLayer;
using cuda::DeviceTensor;

// A named NVTX range for the Nsight timelines.
struct NvtxRange {
    explicit NvtxRange(const char* name) { LK_NVTX_PUSH(name); }
    ~NvtxRange() { LK_NVTX_POP(); }
};

// Kernels launch on the calling thread's current device: the backend selects its device on construction
// (this member comes first, so every allocation after it lands there) and at every entry point. It also
// refuses a model the kernels cannot run before any weight is uploaded.
struct DeviceIndex {
    DeviceIndex(int32_t index, const lk_model_params& p) : index(index) {
        if (p.head_dim > cuda::attention_max_head_dim())
            fail(LK_ERR_UNSUPPORTED, "head_dim " + std::to_string(p.head_dim) + " exceeds the CUDA attention kernel's " +
                                         std::to_string(cuda::attention_max_head_dim()));
        select();
    }
    void select() const { cuda::check(cudaSetDevice(index), "cudaSetDevice"); }
    int32_t index;
};

class CudaBackend final : public Backend {
public:
    CudaBackend(const Model& model, int32_t n_ctx, int32_t n_batch, const KernelChoices& requested);
    // The members free device memory and graphs on this device; a destructor must not throw, so a failure
    // to select it (a device already in a sticky error state) is ignored.
    ~CudaBackend() override { (void)cudaSetDevice(device_.index); }

    int32_t kind() const override { return LK_BACKEND_CUDA; }
    int32_t threads() const override { return 1; }
    void forward(const Tree& tree, int32_t n_past, int32_t logits_mode) override;
    const float* logits(int32_t node) override;
    int32_t verify_greedy(const Tree& tree, int32_t* path, int32_t* bonus) override;
    int32_t verify_sample(const Tree& tree, const SampledStep& step, int32_t* path, int32_t* bonus) override;
    void compact(int32_t n_past, const int32_t* path, int32_t n) override;

private:
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
                           bool accumulate);
    Product attention_inputs(int l, const float* x) const;
    Product attention_output(int l, const float* x) const;
    Product feed_forward(int l, const float* x) const;
    Product feed_forward_down(int l, const float* x) const;
    void run(const Product& product, int n);
    cuda::MmaScratch matmul_scratch() const { return {matmul_partial_.get(), matmul_counters_.get()}; }
    // Device memory for the largest product of a batch: the layers' stacked q/k/v and gate/up, o, down, the head.
    void allocate_matmul_scratch();

    // The stages of one forward pass (run_forward_pass) as kernel launches. device_n_past: where the kernels
    // read n_past (graphs), or null to pass it by value.
    struct Pass {
        CudaBackend& b;
        const cuda::TreeView& view;
        int32_t n_past;
        const int32_t* device_n_past;

        void embed() const;
        void attention_inputs(int l) const;
        void attention(int l) const;
        void attention_output(int l) const;
        void feed_forward(int l) const;
        void feed_forward_down(int l) const;
        void output(int first) const;
    };
    // Issues the forward pass's kernels, directly or into a graph being captured.
    void encode_forward(const cuda::TreeView& view, int32_t n_past, const int32_t* device_n_past, int32_t logits_mode);
    float* keys(int l) const { return key_cache_.get() + l * layer_stride_; }
    float* values(int l) const { return value_cache_.get() + l * layer_stride_; }
    // The verification's result comes back; the call then leaves no work queued.
    int32_t finish_verify(int n, int32_t* path, int32_t* bonus);
    // Brings the device's token counts (the penalties') to the committed sequence before the root: counts
    // of tokens no longer there come off, new ones go on, so a step uploads only what changed.
    void count_history(const SampledStep& step);

    // Kernels go to the calling thread's default stream (--default-stream per-thread, which graphs can
    // capture). A context may be driven from different threads one call after another (an async host),
    // and another thread's stream is not ordered after this one: every call leaves no work queued.
    static void finish_on_this_thread() { cuda::check(cudaStreamSynchronize(cudaStreamPerThread), "cudaStreamSynchronize"); }

    const Model& model_;
    const lk_model_params& p_;
    const int32_t n_ctx_, n_batch_;
    const DeviceIndex device_;  // first: everything below is allocated on it
    const cuda::DeviceWeights weights_;
    cuda::AttentionPlan plan_{};
    DeviceBuffer<float> attention_scratch_;
    DeviceBuffer<float> matmul_partial_;  // split-K partial sums of the BF16 tensor-core matmul
    DeviceBuffer<int> matmul_counters_;   // its per-row-block slice counters (zero between launches)
    int64_t layer_stride_ = 0;            // floats of one layer's K (or V) cache: n_ctx x kv_dim
    DeviceBuffer<float> key_cache_, value_cache_;
    DeviceBuffer<float> x_, xb_, q_, k_, v_, attn_, gate_, up_, logits_;  // activations, n_batch rows each
    cuda::StepInputs inputs_;
    cuda::GraphCache graphs_;
    cuda::DeviceTimer timer_;
    std::vector<float> host_logits_;
    // Sampling with penalties (allocated at its first step): the committed sequence's token counts (all, then
    // output), an upload buffer of the tokens they count, the penalized logits of a step's nodes.
    DeviceBuffer<int32_t> counts_, history_;
    DeviceBuffer<float> penalized_;
    CountedHistory counted_;  // what counts_ holds
};

CudaBackend::CudaBackend(const Model& model, int32_t n_ctx, int32_t n_batch, const KernelChoices& requested)
    : model_(model),
      p_(model.params),
      n_ctx_(n_ctx),
      n_batch_(n_batch),
      device_(requested.cuda_device, model.params),
      weights_(model),
      inputs_(n_batch),
      timer_(profile_) {
    choices_.cuda_device = device_.index;
    choices_.cuda_matmul = requested.cuda_matmul == LK_CUDA_MATMUL_SIMT ? LK_CUDA_MATMUL_SIMT : LK_CUDA_MATMUL_TENSOR_CORES;
    choices_.cuda_attention = requested.cuda_attention == LK_CUDA_ATTENTION_SHARED_PREFIX ? LK_CUDA_ATTENTION_SHARED_PREFIX
                                                                                          : LK_CUDA_ATTENTION_PER_NODE;
    choices_.cuda_graphs = requested.cuda_graphs == LK_CUDA_GRAPHS_OFF ? LK_CUDA_GRAPHS_OFF : LK_CUDA_GRAPHS_ON;
    // Stage timing waits for the device at each boundary (errors surface at the next checked call).
    profile_.set_barrier([] { (void)cudaDeviceSynchronize(); });
    plan_ = cuda::plan_attention(n_ctx, p_.head_dim,
                                 choices_.cuda_attention == LK_CUDA_ATTENTION_SHARED_PREFIX ? cuda::AttentionKernel::SharedPrefix
                                                                                            : cuda::AttentionKernel::PerNode);
    cuda::attention_prepare(plan_, p_.head_dim);
    attention_scratch_ = DeviceBuffer<float>(cuda::attention_scratch_floats(plan_, n_batch, p_.n_heads, p_.head_dim));

    const int64_t hidden = p_.hidden_size, q_dim = model.q_dim(), kv_dim = model.kv_dim(), ffn = p_.intermediate_size;
    layer_stride_ = int64_t{n_ctx} * kv_dim;
    key_cache_ = DeviceBuffer<float>(layer_stride_ * p_.n_layers);
    value_cache_ = DeviceBuffer<float>(layer_stride_ * p_.n_layers);
    x_ = DeviceBuffer<float>(n_batch * hidden);
    xb_ = DeviceBuffer<float>(n_batch * hidden);
    q_ = DeviceBuffer<float>(n_batch * q_dim);
    k_ = DeviceBuffer<float>(n_batch * kv_dim);
    v_ = DeviceBuffer<float>(n_batch * kv_dim);
    attn_ = DeviceBuffer<float>(n_batch * q_dim);
    gate_ = DeviceBuffer<float>(n_batch * ffn);
    up_ = DeviceBuffer<float>(n_batch * ffn);
    logits_ = DeviceBuffer<float>(n_batch * int64_t{p_.vocab_size});
    allocate_matmul_scratch();
    // Poison the activations: a stage that fails to write its output shows up as NaN in the tests.
    for (DeviceBuffer<float>* buffer : {&x_, &xb_, &q_, &k_, &v_, &attn_, &gate_, &up_, &logits_})
        cuda::check(cudaMemset(buffer->get(), 0xFF, buffer->size() * sizeof(float)), "cudaMemset");
    host_logits_.resize(p_.vocab_size);
    finish_on_this_thread();  // the memsets above, before another thread's first call
}

void CudaBackend::allocate_matmul_scratch() {
    cuda::MmaScratchSize scratch;
    auto need = [&](const cuda::MatmulPart* parts, int n_parts, int32_t dtype, int64_t cols) {
        const cuda::MmaScratchSize size = cuda::matmul_scratch(parts, n_parts, dtype, cols, n_batch_, choices_.cuda_matmul);
        scratch.floats = std::max(scratch.floats, size.floats);
        scratch.counters = std::max(scratch.counters, size.counters);
    };
    for (int l = 0; l < p_.n_layers; ++l) {
        for (const Product& product : {attention_inputs(l, nullptr), attention_output(l, nullptr), feed_forward(l, nullptr),
                                       feed_forward_down(l, nullptr)}) {
            for (int first = 0; first < product.n_parts; first += product.launch_size)
                need(product.parts + first, product.launch_size, product.dtypes[first], product.cols);
        }
    }
    const DeviceTensor& head = weights_.output_head();
    const cuda::MatmulPart head_part{head.get(), head.rows, nullptr, 0, nullptr};
    need(&head_part, 1, head.dtype, head.cols);
    matmul_partial_ = DeviceBuffer<float>(std::max<int64_t>(scratch.floats, 1));
    matmul_counters_ = DeviceBuffer<int>(std::max<int64_t>(scratch.counters, 1));
    cuda::check(cudaMemset(matmul_counters_.get(), 0, matmul_counters_.size() * sizeof(int)), "cudaMemset");
}

void CudaBackend::forward(const Tree& tree, int32_t n_past, int32_t logits_mode) {
    NvtxRange range("lk forward");
    device_.select();
    const cuda::TreeView view = inputs_.upload(tree, n_past);
    // Stage timing synchronizes inside the pass, which a graph cannot; profiled passes launch directly.
    if (choices_.cuda_graphs == LK_CUDA_GRAPHS_ON && !profile_.enabled() && logits_mode == LK_LOGITS_ALL &&
        view.n <= cuda::GraphCache::kMaxNodes) {
        const cuda::GraphKey key{view.n, tree.is_chain()};
        cudaGraphExec_t graph = graphs_.find(key);
        if (!graph) {
            NvtxRange capture("lk graph capture");  // capture and instantiation
            graph = graphs_.capture(key, [&] { encode_forward(view, n_past, inputs_.n_past(), LK_LOGITS_ALL); });
        }
        timer_.start();  // after a capture, which is host work
        cuda::check(cudaGraphLaunch(graph, cudaStreamPerThread), "cudaGraphLaunch");
    } else {
        timer_.start();
        encode_forward(view, n_past, nullptr, logits_mode);
    }
    timer_.stop();
    finish_on_this_thread();
    timer_.add();
}

void CudaBackend::encode_forward(const cuda::TreeView& view, int32_t n_past, const int32_t* device_n_past, int32_t logits_mode) {
    Pass pass{*this, view, n_past, device_n_past};
    run_forward_pass(pass, profile_, p_.n_layers, view.n, logits_mode);
}

void CudaBackend::Pass::embed() const {
    const DeviceTensor& embedding = b.weights_.token_embedding();
    cuda::embed(embedding.get(), embedding.dtype, b.inputs_.tokens(), view.n, b.p_.hidden_size, b.x_.get());
}

void CudaBackend::Pass::attention_inputs(int l) const {
    const DeviceLayer& w = b.weights_.layer(l);
    cuda::rms_norm(b.x_.get(), w.attn_norm.f32(), b.xb_.get(), 0, view.n, b.p_.hidden_size, b.p_.rms_norm_eps);
    b.run(b.attention_inputs(l, b.xb_.get()), view.n);
    cuda::rope_and_store(b.q_.get(), b.k_.get(), b.v_.get(), b.inputs_.positions(), b.weights_.rope_inv_freq(), view.n, b.p_.n_heads,
                         b.p_.n_kv_heads, b.p_.head_dim, n_past, device_n_past, b.keys(l), b.values(l));
}

void CudaBackend::Pass::attention(int l) const {
    cuda::tree_attention(b.q_.get(), b.keys(l), b.values(l), n_past, device_n_past, view, b.p_.n_heads, b.p_.n_kv_heads, b.p_.head_dim,
                         b.plan_, b.attention_scratch_.get(), b.attn_.get());
}

void CudaBackend::Pass::attention_output(int l) const { b.run(b.attention_output(l, b.attn_.get()), view.n); }

void CudaBackend::Pass::feed_forward(int l) const {
    const DeviceLayer& w = b.weights_.layer(l);
    cuda::rms_norm(b.x_.get(), w.ffn_norm.f32(), b.xb_.get(), 0, view.n, b.p_.hidden_size, b.p_.rms_norm_eps);
    b.run(b.feed_forward(l, b.xb_.get()), view.n);
    cuda::swiglu(b.gate_.get(), b.up_.get(), int64_t{view.n} * b.p_.intermediate_size);
}

void CudaBackend::Pass::feed_forward_down(int l) const { b.run(b.feed_forward_down(l, b.gate_.get()), view.n); }

void CudaBackend::Pass::output(int first) const {
    const int64_t hidden = b.p_.hidden_size;
    cuda::rms_norm(b.x_.get(), b.weights_.output_norm().f32(), b.xb_.get(), first, view.n, b.p_.hidden_size, b.p_.rms_norm_eps);
    const DeviceTensor& head = b.weights_.output_head();
    const cuda::MatmulPart part{head.get(), head.rows, b.logits_.get() + int64_t{first} * b.p_.vocab_size, b.p_.vocab_size, nullptr};
    cuda::matmul(&part, 1, head.dtype, head.cols, b.xb_.get() + first * hidden, hidden, view.n - first, false, b.choices_.cuda_matmul,
                 b.matmul_scratch());
}

const float* CudaBackend::logits(int32_t node) {
    device_.select();
    cuda::check(cudaMemcpy(host_logits_.data(), logits_.get() + int64_t{node} * p_.vocab_size, p_.vocab_size * sizeof(float),
                           cudaMemcpyDeviceToHost),
                "logits download");
    return host_logits_.data();
}

int32_t CudaBackend::verify_greedy(const Tree& tree, int32_t* path, int32_t* bonus) {
    NvtxRange range("lk verify");
    device_.select();
    StageProfile::Scope stage(profile_, Stage::kVerify);
    const int n = tree.size();
    timer_.start();
    cuda::argmax_rows(logits_.get(), n, p_.vocab_size, inputs_.argmax());
    cuda::greedy_path(inputs_.tokens(), inputs_.parents(), inputs_.argmax(), n, inputs_.walk(), inputs_.result());
    timer_.stop();
    return finish_verify(n, path, bonus);
}

// The rule at every node on the device (one block per node), then greedy_path's walk with the sampled
// tokens in place of the argmax: only the path and the bonus come back.
int32_t CudaBackend::verify_sample(const Tree& tree, const SampledStep& step, int32_t* path, int32_t* bonus) {
    NvtxRange range("lk verify");
    device_.select();
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
    timer_.start();
    cuda::sample_rows(logits_.get(), n, p_.vocab_size, inputs_.tokens(), inputs_.parents(), counts_all, counts_output, args,
                      penalized_.get(), inputs_.argmax());
    cuda::greedy_path(inputs_.tokens(), inputs_.parents(), inputs_.argmax(), n, inputs_.walk(), inputs_.result());
    timer_.stop();
    return finish_verify(n, path, bonus);
}

int32_t CudaBackend::finish_verify(int n, int32_t* path, int32_t* bonus) {
    const int32_t length = inputs_.download_path(n, path, bonus);  // a blocking copy: the work is done
    timer_.add();
    return length;
}

void CudaBackend::compact(int32_t n_past, const int32_t* path, int32_t n) {
    NvtxRange range("lk compact");
    device_.select();
    StageProfile::Scope stage(profile_, Stage::kCompact);
    inputs_.upload_path(path, n);
    timer_.start();
    cuda::compact(key_cache_.get(), value_cache_.get(), p_.n_layers, layer_stride_, model_.kv_dim(), n_past, inputs_.path(), n);
    timer_.stop();
    finish_on_this_thread();
    timer_.add();
}

void CudaBackend::count_history(const SampledStep& step) {
    if (!counts_.get()) {
        // Into locals first: if an allocation fails, nothing half-made stays behind for the next step.
        DeviceBuffer<int32_t> counts(2 * int64_t{p_.vocab_size}), history(std::max(n_ctx_, 1));
        DeviceBuffer<float> penalized(int64_t{n_batch_} * p_.vocab_size);
        cuda::check(cudaMemset(counts.get(), 0, counts.size() * sizeof(int32_t)), "cudaMemset");
        history_ = std::move(history);
        penalized_ = std::move(penalized);
        counts_ = std::move(counts);
        counted_.clear();
    }
    int32_t* all = counts_.get();
    int32_t* output = all + p_.vocab_size;
    try {
        counted_.update(step.history, step.n_history, step.n_prompt, [&](const int32_t* tokens, int32_t n, int32_t first_output, int32_t delta) {
            cuda::check(cudaMemcpy(history_.get(), tokens, n * sizeof(int32_t), cudaMemcpyHostToDevice), "counts upload");
            cuda::count_tokens(all, output, history_.get(), n, first_output, delta);
        });
    } catch (...) {
        counts_ = {};  // counts half changed: the next penalized step starts again from zero
        counted_.clear();
        throw;
    }
}

CudaBackend::Product CudaBackend::product(std::initializer_list<std::pair<const DeviceTensor*, cuda::MatmulPart>> parts,
                                          const float* x, bool accumulate) {
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

CudaBackend::Product CudaBackend::attention_inputs(int l, const float* x) const {
    const DeviceLayer& w = weights_.layer(l);
    return product({{&w.q, {w.q.get(), w.q.rows, q_.get(), model_.q_dim(), w.q_bias.bias()}},
                    {&w.k, {w.k.get(), w.k.rows, k_.get(), model_.kv_dim(), w.k_bias.bias()}},
                    {&w.v, {w.v.get(), w.v.rows, v_.get(), model_.kv_dim(), w.v_bias.bias()}}},
                   x, false);
}

CudaBackend::Product CudaBackend::attention_output(int l, const float* x) const {
    const DeviceLayer& w = weights_.layer(l);
    return product({{&w.o, {w.o.get(), w.o.rows, x_.get(), p_.hidden_size, nullptr}}}, x, true);
}

CudaBackend::Product CudaBackend::feed_forward(int l, const float* x) const {
    const DeviceLayer& w = weights_.layer(l);
    return product({{&w.gate, {w.gate.get(), w.gate.rows, gate_.get(), p_.intermediate_size, nullptr}},
                    {&w.up, {w.up.get(), w.up.rows, up_.get(), p_.intermediate_size, nullptr}}},
                   x, false);
}

CudaBackend::Product CudaBackend::feed_forward_down(int l, const float* x) const {
    const DeviceLayer& w = weights_.layer(l);
    return product({{&w.down, {w.down.get(), w.down.rows, x_.get(), p_.hidden_size, nullptr}}}, x, true);
}

void CudaBackend::run(const Product& product, int n) {
    for (int first = 0; first < product.n_parts; first += product.launch_size)
        cuda::matmul(product.parts + first, product.launch_size, product.dtypes[first], product.cols, product.x, product.cols, n,
                     product.accumulate, choices_.cuda_matmul, matmul_scratch());
}

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
