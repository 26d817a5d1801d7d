#include "context.h"

#include <algorithm>
#include <string>

#include "../cpu/thread_pool.h"
#if defined(LK_HAVE_CUDA)
#include "../cuda/cuda_backend.h"
#endif
#include "error.h"

namespace lk {
namespace {

constexpr int32_t kDefaultBatch = 512;
constexpr int32_t kMaxThreads = 256;

// Drops the pending nodes when a fused step ends, whether it returns or throws.
struct PendingGuard {
    Tree& tree;
    ~PendingGuard() { tree.clear(); }
};

std::string mib(double bytes) { return std::to_string(static_cast<long long>(bytes / (1024.0 * 1024.0))) + " MiB"; }

void require_choice(int32_t value, int32_t last, const char* field) {
    require(value >= 0 && value <= last,
            std::string(field) + " " + std::to_string(value) + " must be in 0.." + std::to_string(last) + " (lk_" + field + ")");
}

}  // namespace

Context::Context(Model& model, const lk_context_params& params) : model_(model) {
    const lk_model_params& p = model.params;
    model.check_complete();
    n_ctx_ = params.n_ctx == 0 ? p.max_context : params.n_ctx;
    require(n_ctx_ >= 1 && n_ctx_ <= p.max_context, "n_ctx " + std::to_string(n_ctx_) + " must be in 1.." +
                                                         std::to_string(p.max_context) + " (the model's max_context)");
    n_batch_ = params.n_batch == 0 ? std::min(kDefaultBatch, n_ctx_) : params.n_batch;
    require(n_batch_ >= 1 && n_batch_ <= n_ctx_, "n_batch " + std::to_string(n_batch_) + " must be in 1.." +
                                                      std::to_string(n_ctx_) + " (n_ctx)");
    const int32_t threads = params.n_threads == 0 ? hardware_threads() : params.n_threads;
    require(threads >= 1 && threads <= kMaxThreads, "n_threads " + std::to_string(params.n_threads) +
                                                        " must be in 0.." + std::to_string(kMaxThreads));

    require(params.backend == LK_BACKEND_AUTO || params.backend == LK_BACKEND_CPU || params.backend == LK_BACKEND_CUDA,
            "unknown backend " + std::to_string(params.backend));
    require_choice(params.cpu_kernel, LK_CPU_KERNEL_AVX512_BF16, "cpu_kernel");
    require_choice(params.cuda_matmul, LK_CUDA_MATMUL_SIMT, "cuda_matmul");
    require_choice(params.cuda_attention, LK_CUDA_ATTENTION_SHARED_PREFIX, "cuda_attention");
    require_choice(params.cuda_graphs, LK_CUDA_GRAPHS_OFF, "cuda_graphs");
    require(params.cuda_device >= 0, "cuda_device " + std::to_string(params.cuda_device) + " must not be negative");
    KernelChoices requested;
    requested.cuda_device = params.cuda_device;
    requested.cuda_matmul = params.cuda_matmul;
    requested.cuda_attention = params.cuda_attention;
    requested.cuda_graphs = params.cuda_graphs;

    bool use_cuda = params.backend == LK_BACKEND_CUDA;
#if defined(LK_HAVE_CUDA)
    std::string no_device;
    const int32_t devices = cuda_device_count(&no_device);
    if (use_cuda && devices == 0) fail(LK_ERR_NO_DEVICE, "no CUDA device: " + no_device);
    if (params.backend == LK_BACKEND_AUTO) use_cuda = devices > 0;
    if (use_cuda && params.cuda_device >= devices)
        fail(LK_ERR_NO_DEVICE, "cuda_device " + std::to_string(params.cuda_device) + " does not exist: this machine has " +
                                   std::to_string(devices) + " CUDA device(s)");
#else
    if (use_cuda) fail(LK_ERR_UNSUPPORTED, "this build of the native library has no CUDA backend");
#endif
    try {
#if defined(LK_HAVE_CUDA)
        if (use_cuda) backend_ = make_cuda_backend(model, n_ctx_, n_batch_, requested);
#endif
        if (!backend_) backend_ = make_cpu_backend(model, n_ctx_, n_batch_, threads, params.cpu_kernel);
    } catch (const std::bad_alloc&) {
        const double kv_bytes = 2.0 * p.n_layers * n_ctx_ * model.kv_dim() * sizeof(float);
        fail(LK_ERR_OUT_OF_MEMORY, "out of memory allocating a context of " + std::to_string(n_ctx_) +
                                       " tokens (KV cache " + mib(kv_bytes) + "); try a smaller n_ctx");
    }
    path_.resize(n_batch_);
    ++model_.live_contexts;
}

Context::~Context() { --model_.live_contexts; }

lk_context_info Context::info() const {
    const KernelChoices& c = backend_->choices();
    return lk_context_info{backend_->kind(), n_ctx_, n_batch_, backend_->threads(), n_past_, tree_.size(),
                           c.cuda_device, c.cpu_kernel, c.cuda_matmul, c.cuda_attention, c.cuda_graphs};
}

void Context::prepare(const lk_batch& batch) {
    tree_.clear();
    logits_mode_ = LK_LOGITS_NONE;
    try {
        tree_.assign(batch, model_.params.vocab_size, n_batch_);
    } catch (...) {
        tree_.clear();  // a batch refused halfway leaves nothing pending
        throw;
    }
    if (n_past_ + tree_.size() > n_ctx_) {
        const int32_t n = tree_.size();
        tree_.clear();
        fail(LK_ERR_CONTEXT_FULL, "batch of " + std::to_string(n) + " nodes does not fit: " +
                                      std::to_string(n_past_) + " of " + std::to_string(n_ctx_) +
                                      " context slots are committed");
    }
}

void Context::eval(const lk_batch& batch) {
    prepare(batch);
    try {
        backend_->forward(tree_, n_past_, batch.logits);
    } catch (...) {
        tree_.clear();  // a failed pass leaves nothing pending
        throw;
    }
    logits_mode_ = batch.logits;
}

const float* Context::logits(int32_t node) {
    if (tree_.empty()) fail(LK_ERR_INVALID_STATE, "no pending batch: logits exist only after lk_context_eval");
    require(node >= 0 && node < tree_.size(), "node " + std::to_string(node) + " is out of range 0.." +
                                                  std::to_string(tree_.size() - 1));
    const bool kept = logits_mode_ == LK_LOGITS_ALL || (logits_mode_ == LK_LOGITS_LAST && node == tree_.size() - 1);
    if (!kept) fail(LK_ERR_INVALID_STATE, "the last eval did not keep logits for node " + std::to_string(node));
    return backend_->logits(node);
}

void Context::commit(const int32_t* nodes, int32_t n_nodes) {
    if (tree_.empty()) fail(LK_ERR_INVALID_STATE, "nothing to commit: call lk_context_eval first");
    tree_.check_root_path(nodes, n_nodes);
    for (int32_t j = 0; j < n_nodes; ++j) path_[j] = nodes ? nodes[j] : j;
    commit_path(n_nodes);
    tree_.clear();
}

void Context::prepare_step(const lk_batch& batch, int32_t capacity) {
    prepare(batch);
    if (capacity < tree_.max_depth() + 1) {
        const int32_t depth = tree_.max_depth();
        tree_.clear();
        fail(LK_ERR_INVALID_ARGUMENT, "capacity " + std::to_string(capacity) + " is too small for a tree of depth " +
                                          std::to_string(depth) + " (needs " + std::to_string(depth + 1) + ")");
    }
}

void Context::fail_non_finite_root() const {
    fail(LK_ERR_NON_FINITE, "the logits at position " + std::to_string(n_past_) +
                                " hold NaN or infinity: the model's activations overflowed, so it names no token");
}

void Context::commit_path(int32_t length) {
    backend_->compact(n_past_, path_.data(), length);
    for (int32_t j = 0; j < length; ++j) committed_.push_back(tree_.token(path_[j]));
    n_past_ += length;
}

void Context::truncate(int32_t n_past) {
    require(n_past >= 0 && n_past <= n_past_, "cannot truncate to " + std::to_string(n_past) + ": only " +
                                                  std::to_string(n_past_) + " tokens are committed");
    n_past_ = n_past;
    committed_.resize(n_past);
    tree_.clear();
}

int32_t Context::decode_greedy(const lk_batch& batch, int32_t* out_tokens, int32_t capacity) {
    require(out_tokens != nullptr, "out_tokens is NULL");
    prepare_step(batch, capacity);
    const PendingGuard clear_on_exit{tree_};  // whatever fails below, nothing stays pending
    backend_->forward(tree_, n_past_, LK_LOGITS_ALL);
    int32_t bonus = 0;
    const int32_t length = backend_->verify_greedy(tree_, path_.data(), &bonus);
    return finish_step(length, bonus, out_tokens);
}

int32_t Context::decode_sample(const lk_batch& batch, const lk_sampling_params& params, int32_t* out_tokens, int32_t capacity) {
    SampledStep step;
    step.settings = {params.temperature,        params.top_k,           params.top_p,           params.min_p,
                     params.repetition_penalty, params.presence_penalty, params.frequency_penalty};
    check_sampling_settings(step.settings);
    require(params.n_prompt >= 0, "n_prompt must be >= 0, got " + std::to_string(params.n_prompt));
    require(params.token_index >= 0, "token_index must be >= 0");
    require(out_tokens != nullptr, "out_tokens is NULL");
    prepare_step(batch, capacity);
    const PendingGuard clear_on_exit{tree_};
    step.seed = params.seed;
    step.token_index = params.token_index;
    step.n_prompt = params.n_prompt;
    step.history = committed_.data();
    step.n_history = n_past_;
    backend_->forward(tree_, n_past_, LK_LOGITS_ALL);
    int32_t bonus = 0;
    const int32_t length = backend_->verify_sample(tree_, step, path_.data(), &bonus);
    return finish_step(length, bonus, out_tokens);
}

int32_t Context::finish_step(int32_t length, int32_t bonus, int32_t* out_tokens) {
    // A node whose logits hold NaN or infinity names no token (-1): the walk stops there. Past the root, that
    // node's own token is still its parent's choice, so it becomes the bonus and the step succeeds, exactly as
    // plain decoding would emit it; the next step, rooted at it, then fails.
    if (bonus < 0 && length > 1) {
        --length;
        bonus = tree_.token(path_[length]);
    }
    if (bonus < 0) {
        fail_non_finite_root();
    }
    commit_path(length);
    for (int32_t j = 1; j < length; ++j) out_tokens[j - 1] = tree_.token(path_[j]);
    out_tokens[length - 1] = bonus;
    return length;
}

}  // namespace lk
