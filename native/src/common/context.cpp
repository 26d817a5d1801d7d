#include "context.h"

#include <algorithm>
#include <string>

#include "../cpu/thread_pool.h"
#if defined(LK_HAVE_CUDA)
#include "../cuda/cuda_backend.h"
#endif
#include "error.h"
#include "kv_pool.h"
#include "quant_types.h"

namespace lk {
namespace {

constexpr int32_t kDefaultBatch = 512;
constexpr int32_t kMaxThreads = 256;
constexpr int32_t kMaxSequences = 256;

// A node whose logits hold NaN or infinity names no token (bonus -1): the walk stops there. Past the root,
// that node's own token is still its parent's choice, so it becomes the bonus and the step succeeds, exactly
// as plain decoding would emit it; the next step, rooted at it, then fails. Returns the path's length after
// that (bonus stays -1 only when the root's logits are not finite).
int32_t settle_bonus(const Tree& tree, const int32_t* path, int32_t length, int32_t& bonus) {
    if (bonus < 0 && length > 1) {
        --length;
        bonus = tree.token(path[length]);
    }
    return length;
}

// Writes a committed path's accepted draft tokens (its nodes after the root) and then the bonus.
void write_step_tokens(const Tree& tree, const int32_t* path, int32_t length, int32_t bonus, int32_t* out) {
    for (int32_t j = 1; j < length; ++j) out[j - 1] = tree.token(path[j]);
    out[length - 1] = bonus;
}

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
    const int32_t n_seq_max = params.n_seq_max == 0 ? 1 : params.n_seq_max;
    require(n_seq_max >= 1 && n_seq_max <= kMaxSequences,
            "n_seq_max " + std::to_string(params.n_seq_max) + " must be in 0.." + std::to_string(kMaxSequences));
    // By default every sequence can reach n_ctx at once: whole blocks per sequence.
    const int64_t n_kv_tokens = params.n_kv_tokens == 0
                                    ? (int64_t{n_ctx_} + kKvBlockSlots - 1) / kKvBlockSlots * kKvBlockSlots * n_seq_max
                                    : params.n_kv_tokens;
    require(n_kv_tokens >= 1 && n_kv_tokens <= int64_t{kMaxSequences} * p.max_context,
            "n_kv_tokens " + std::to_string(params.n_kv_tokens) + " must be 0 (room for every sequence at n_ctx) or in 1.." +
                std::to_string(int64_t{kMaxSequences} * p.max_context));
    require(params.kv_type == LK_DTYPE_F32 || params.kv_type == LK_DTYPE_F16 || params.kv_type == LK_DTYPE_BF16,
            "kv_type " + std::to_string(params.kv_type) + " must be an lk_dtype: 0 (F32), 1 (F16) or 2 (BF16)");
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
    if (use_cuda && (n_seq_max > 1 || params.n_kv_tokens != 0))
        fail(LK_ERR_UNSUPPORTED, "the CUDA backend holds one sequence in a contiguous cache: n_seq_max and n_kv_tokens "
                                 "must be 0 there (several sequences per context run on the CPU backend)");
    if (const int32_t quantized = model.matrix_dtype_where(is_quantized); use_cuda && quantized >= 0)
        fail(LK_ERR_UNSUPPORTED, std::string("the CUDA backend has no ") + dtype_name(quantized) +
                                     " kernels yet: run quantized weights on the CPU backend");
    if (use_cuda && params.kv_type != LK_DTYPE_F32)
        fail(LK_ERR_UNSUPPORTED, "the CUDA backend keeps an F32 KV cache: kv_type must be 0 (F32) there "
                                 "(F16 and BF16 caches run on the CPU backend)");
    try {
#if defined(LK_HAVE_CUDA)
        if (use_cuda) backend_ = make_cuda_backend(model, n_ctx_, n_batch_, requested);
#endif
        if (!backend_) backend_ = make_cpu_backend(model, n_ctx_, n_batch_, threads, params.cpu_kernel, n_seq_max, n_kv_tokens,
                                                   params.kv_type);
    } catch (const std::bad_alloc&) {
        const double kv_bytes = 2.0 * p.n_layers * n_kv_tokens * model.kv_dim() * (params.kv_type == LK_DTYPE_F32 ? 4 : 2);
        fail(LK_ERR_OUT_OF_MEMORY, "out of memory allocating a context of " + std::to_string(n_ctx_) +
                                       " tokens (KV cache " + mib(kv_bytes) + "); try a smaller n_ctx or n_kv_tokens, or a 16-bit kv_type");
    }
    kv_type_ = params.kv_type;
    path_.resize(n_batch_);
    seqs_.resize(n_seq_max);
    seqs_[0].live = true;
    ++model_.live_contexts;
}

Context::~Context() { --model_.live_contexts; }

lk_context_info Context::info() const {
    const KernelChoices& c = backend_->choices();
    return lk_context_info{backend_->kind(), n_ctx_, n_batch_, backend_->threads(), seqs_[0].live ? seqs_[0].n_past : 0, tree_.size(),
                           c.cuda_device, c.cpu_kernel, c.cuda_matmul, c.cuda_attention, c.cuda_graphs, kv_type_};
}

Context::Sequence& Context::main_sequence() {
    if (!seqs_[0].live) fail(LK_ERR_INVALID_STATE, "sequence 0, which this call uses, was removed (lk_seq_add makes it again)");
    return seqs_[0];
}

Context::Sequence& Context::live_sequence(int32_t seq) {
    return const_cast<Sequence&>(static_cast<const Context*>(this)->live_sequence(seq));
}

const Context::Sequence& Context::live_sequence(int32_t seq) const {
    require(seq >= 0 && seq < static_cast<int32_t>(seqs_.size()),
            "sequence " + std::to_string(seq) + " is out of range 0.." + std::to_string(seqs_.size() - 1) + " (n_seq_max)");
    if (!seqs_[seq].live) fail(LK_ERR_INVALID_STATE, "sequence " + std::to_string(seq) + " is not live (lk_seq_add)");
    return seqs_[seq];
}

void Context::prepare(const lk_batch& batch) {
    const int32_t n_past = main_sequence().n_past;
    tree_.clear();
    logits_mode_ = LK_LOGITS_NONE;
    try {
        tree_.assign(batch, model_.params.vocab_size, n_batch_);
    } catch (...) {
        tree_.clear();  // a batch refused halfway leaves nothing pending
        throw;
    }
    if (n_past + tree_.size() > n_ctx_) {
        const int32_t n = tree_.size();
        tree_.clear();
        fail(LK_ERR_CONTEXT_FULL, "batch of " + std::to_string(n) + " nodes does not fit: " +
                                      std::to_string(n_past) + " of " + std::to_string(n_ctx_) +
                                      " context slots are committed");
    }
}

void Context::eval(const lk_batch& batch) {
    prepare(batch);
    try {
        backend_->forward(tree_, seqs_[0].n_past, batch.logits);
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
    commit_path(0, tree_, path_.data(), n_nodes);
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
    fail(LK_ERR_NON_FINITE, "the logits at position " + std::to_string(seqs_[0].n_past) +
                                " hold NaN or infinity: the model's activations overflowed, so it names no token");
}

void Context::commit_path(int32_t seq, const Tree& tree, const int32_t* path, int32_t length) {
    Sequence& s = seqs_[seq];
    backend_->compact_seq(seq, s.n_past, path, length);
    for (int32_t j = 0; j < length; ++j) s.committed.push_back(tree.token(path[j]));
    s.n_past += length;
    backend_->publish_seq(seq, s.committed.data(), s.n_past);
}

void Context::truncate(int32_t n_past) {
    main_sequence();
    seq_truncate(0, n_past);
}

int32_t Context::decode_greedy(const lk_batch& batch, int32_t* out_tokens, int32_t capacity) {
    require(out_tokens != nullptr, "out_tokens is NULL");
    prepare_step(batch, capacity);
    const PendingGuard clear_on_exit{tree_};  // whatever fails below, nothing stays pending
    backend_->forward(tree_, seqs_[0].n_past, LK_LOGITS_ALL);
    int32_t bonus = 0;
    const int32_t length = backend_->verify_greedy(tree_, path_.data(), &bonus);
    return finish_step(length, bonus, out_tokens);
}

SampledStep Context::sampled_step(const lk_sampling_params& params, const Sequence& s) {
    SampledStep step;
    step.settings = {params.temperature,        params.top_k,           params.top_p,           params.min_p,
                     params.repetition_penalty, params.presence_penalty, params.frequency_penalty};
    check_sampling_settings(step.settings);
    require(params.n_prompt >= 0, "n_prompt must be >= 0, got " + std::to_string(params.n_prompt));
    require(params.token_index >= 0, "token_index must be >= 0");
    step.seed = params.seed;
    step.token_index = params.token_index;
    step.n_prompt = params.n_prompt;
    step.history = s.committed.data();
    step.n_history = s.n_past;
    return step;
}

int32_t Context::decode_sample(const lk_batch& batch, const lk_sampling_params& params, int32_t* out_tokens, int32_t capacity) {
    const SampledStep step = sampled_step(params, main_sequence());
    require(out_tokens != nullptr, "out_tokens is NULL");
    prepare_step(batch, capacity);
    const PendingGuard clear_on_exit{tree_};
    backend_->forward(tree_, seqs_[0].n_past, LK_LOGITS_ALL);
    int32_t bonus = 0;
    const int32_t length = backend_->verify_sample(tree_, step, path_.data(), &bonus);
    return finish_step(length, bonus, out_tokens);
}

int32_t Context::finish_step(int32_t length, int32_t bonus, int32_t* out_tokens) {
    length = settle_bonus(tree_, path_.data(), length, bonus);
    if (bonus < 0) fail_non_finite_root();
    commit_path(0, tree_, path_.data(), length);
    write_step_tokens(tree_, path_.data(), length, bonus, out_tokens);
    return length;
}

int32_t Context::free_sequence() const {
    for (int32_t seq = 0; seq < static_cast<int32_t>(seqs_.size()); ++seq)
        if (!seqs_[seq].live) return seq;
    fail(LK_ERR_CONTEXT_FULL, "all " + std::to_string(seqs_.size()) + " sequences (n_seq_max) are live");
}

int32_t Context::seq_add() {
    const int32_t seq = free_sequence();
    seqs_[seq] = Sequence{true, 0, {}};
    return seq;
}

int32_t Context::seq_fork(int32_t src, int32_t n_past) {
    const Sequence& from = live_sequence(src);
    require(n_past >= 0 && n_past <= from.n_past, "cannot fork " + std::to_string(n_past) + " tokens of sequence " + std::to_string(src) +
                                                      ": it has " + std::to_string(from.n_past) + " committed");
    const int32_t seq = free_sequence();
    backend_->fork_seq(src, seq, n_past);
    seqs_[seq] = Sequence{true, n_past, std::vector<int32_t>(from.committed.begin(), from.committed.begin() + n_past)};
    return seq;
}

int32_t Context::seq_reuse_prefix(int32_t seq, const int32_t* tokens, int32_t n_tokens) {
    Sequence& s = live_sequence(seq);
    require(tokens != nullptr || n_tokens == 0, "tokens is NULL");
    require(n_tokens >= 0 && n_tokens <= n_ctx_, "n_tokens " + std::to_string(n_tokens) + " must be in 0.." + std::to_string(n_ctx_) + " (n_ctx)");
    if (s.n_past != 0) fail(LK_ERR_INVALID_STATE, "sequence " + std::to_string(seq) + " holds " + std::to_string(s.n_past) +
                                                      " tokens: a prefix is reused by an empty sequence");
    if (seq == 0) tree_.clear();
    const int32_t reused = backend_->reuse_prefix(seq, tokens, n_tokens);
    s.committed.assign(tokens, tokens + reused);
    s.n_past = reused;
    return reused;
}

void Context::seq_remove(int32_t seq) {
    live_sequence(seq);
    backend_->release_seq(seq, 0);
    seqs_[seq] = Sequence{};
    if (seq == 0) tree_.clear();
}

void Context::seq_truncate(int32_t seq, int32_t n_past) {
    Sequence& s = live_sequence(seq);
    require(n_past >= 0 && n_past <= s.n_past, "cannot truncate to " + std::to_string(n_past) + ": only " +
                                                   std::to_string(s.n_past) + " tokens are committed");
    s.n_past = n_past;
    s.committed.resize(n_past);
    backend_->release_seq(seq, n_past);
    if (seq == 0) tree_.clear();
}

lk_seq_info Context::seq_info(int32_t seq) const {
    const Sequence& s = live_sequence(seq);
    return lk_seq_info{s.n_past, backend_->seq_blocks(seq)};
}

void Context::seq_prefill(int32_t seq, const int32_t* tokens, int32_t n_tokens) {
    Sequence& s = live_sequence(seq);
    require(tokens != nullptr, "tokens is NULL");
    require(n_tokens >= 1 && n_tokens <= n_batch_,
            "n_tokens " + std::to_string(n_tokens) + " must be in 1.." + std::to_string(n_batch_) + " (n_batch)");
    if (s.n_past + n_tokens > n_ctx_)
        fail(LK_ERR_CONTEXT_FULL, "sequence " + std::to_string(seq) + ": " + std::to_string(n_tokens) + " tokens do not fit after " +
                                      std::to_string(s.n_past) + " of " + std::to_string(n_ctx_) + " (n_ctx)");
    Tree chain;
    chain.assign(lk_batch{tokens, nullptr, n_tokens, LK_LOGITS_NONE}, model_.params.vocab_size, n_batch_);
    tree_.clear();  // the pass overwrites what a pending eval computed
    backend_->forward_seqs({SeqSegment{seq, 0, s.n_past, &chain}}, LK_LOGITS_NONE);
    s.committed.insert(s.committed.end(), tokens, tokens + n_tokens);
    s.n_past += n_tokens;
    backend_->publish_seq(seq, s.committed.data(), s.n_past);
}

std::vector<Context::SeqTree> Context::split_seq_batch(const lk_seq_batch& batch) {
    require(batch.tokens && batch.parents && batch.seq_ids, "tokens, parents and seq_ids must not be NULL");
    require(batch.reserved == 0, "reserved must be 0");
    const int32_t n = batch.n_tokens;
    require(n >= 1 && n <= n_batch_, "n_tokens " + std::to_string(n) + " must be in 1.." + std::to_string(n_batch_) + " (n_batch)");
    // Contiguous runs of one sequence id, each rooted at its first node.
    std::vector<SeqTree> trees;
    std::vector<bool> seen(seqs_.size(), false);
    std::vector<int32_t> local;
    for (int32_t first = 0; first < n;) {
        const int32_t seq = batch.seq_ids[first];
        Sequence& s = live_sequence(seq);
        require(!seen[seq], "sequence " + std::to_string(seq) + "'s nodes are not contiguous in the batch (or it appears twice)");
        seen[seq] = true;
        int32_t end = first + 1;
        while (end < n && batch.seq_ids[end] == seq) ++end;
        require(batch.parents[first] == -1, "node " + std::to_string(first) + ", the first of sequence " + std::to_string(seq) +
                                                 ", must be its root (parent -1)");
        local.assign(end - first, -1);
        for (int32_t i = first + 1; i < end; ++i) {
            require(batch.parents[i] >= first && batch.parents[i] < i,
                    "node " + std::to_string(i) + " names parent " + std::to_string(batch.parents[i]) + ", not an earlier node of sequence " +
                        std::to_string(seq));
            local[i - first] = batch.parents[i] - first;
        }
        if (s.n_past + (end - first) > n_ctx_)
            fail(LK_ERR_CONTEXT_FULL, "sequence " + std::to_string(seq) + ": a tree of " + std::to_string(end - first) +
                                          " nodes does not fit after " + std::to_string(s.n_past) + " of " + std::to_string(n_ctx_) +
                                          " (n_ctx)");
        trees.emplace_back();
        trees.back().tree.assign(lk_batch{batch.tokens + first, local.data(), end - first, LK_LOGITS_ALL}, model_.params.vocab_size,
                                 n_batch_);
        trees.back().segment = SeqSegment{seq, first, s.n_past, nullptr};
        first = end;
    }
    for (SeqTree& t : trees) t.segment.tree = &t.tree;
    return trees;
}

template <class Verify>
void Context::decode_seqs(std::vector<SeqTree>& trees, Verify&& verify, int32_t* out_tokens, int32_t* out_counts) {
    std::vector<SeqSegment> segments;
    segments.reserve(trees.size());
    for (const SeqTree& t : trees) segments.push_back(t.segment);
    tree_.clear();  // the pass overwrites what a pending eval computed
    backend_->forward_seqs(segments, LK_LOGITS_ALL);
    if (testing::observe_seq_logits)
        for (const SeqTree& t : trees)
            for (int32_t i = 0; i < t.tree.size(); ++i) testing::observe_seq_logits(t.segment.first + i, backend_->logits(t.segment.first + i));
    // Every sequence is verified before any is committed, so a failure commits nothing.
    std::vector<std::vector<int32_t>> paths(trees.size());
    std::vector<int32_t> bonuses(trees.size());
    for (size_t k = 0; k < trees.size(); ++k) {
        paths[k].resize(trees[k].tree.size());
        int32_t bonus = 0;
        int32_t length = verify(k, trees[k].segment, paths[k].data(), &bonus);
        length = settle_bonus(trees[k].tree, paths[k].data(), length, bonus);
        if (bonus < 0)
            fail(LK_ERR_NON_FINITE, "sequence " + std::to_string(trees[k].segment.seq) + ": the logits at position " +
                                        std::to_string(trees[k].segment.n_past) + " hold NaN or infinity, so they name no token");
        paths[k].resize(length);
        bonuses[k] = bonus;
    }
    for (size_t k = 0; k < trees.size(); ++k) {
        const int32_t length = static_cast<int32_t>(paths[k].size());
        commit_path(trees[k].segment.seq, trees[k].tree, paths[k].data(), length);
        write_step_tokens(trees[k].tree, paths[k].data(), length, bonuses[k], out_tokens + trees[k].segment.first);
        out_counts[k] = length;
    }
}

void Context::decode_greedy_seqs(const lk_seq_batch& batch, int32_t* out_tokens, int32_t* out_counts) {
    require(out_tokens != nullptr && out_counts != nullptr, "out_tokens and out_counts must not be NULL");
    std::vector<SeqTree> trees = split_seq_batch(batch);
    decode_seqs(
        trees,
        [&](size_t, const SeqSegment& segment, int32_t* path, int32_t* bonus) { return backend_->verify_greedy_seq(segment, path, bonus); },
        out_tokens, out_counts);
}

void Context::decode_sample_seqs(const lk_seq_batch& batch, const lk_sampling_params* params, int32_t* out_tokens, int32_t* out_counts) {
    require(params != nullptr, "params is NULL");
    require(out_tokens != nullptr && out_counts != nullptr, "out_tokens and out_counts must not be NULL");
    std::vector<SeqTree> trees = split_seq_batch(batch);
    std::vector<SampledStep> steps(trees.size());
    for (size_t k = 0; k < trees.size(); ++k) {
        try {
            steps[k] = sampled_step(params[k], seqs_[trees[k].segment.seq]);
        } catch (const Error& e) {
            fail(e.status(), "params[" + std::to_string(k) + "] (sequence " + std::to_string(trees[k].segment.seq) + "): " + e.what());
        }
    }
    decode_seqs(
        trees,
        [&](size_t k, const SeqSegment& segment, int32_t* path, int32_t* bonus) {
            return backend_->verify_sample_seq(segment, steps[k], path, bonus);
        },
        out_tokens, out_counts);
}

namespace testing {
std::function<void(int32_t, const float*)> observe_seq_logits;
}  // namespace testing

}  // namespace lk
