// A decoding context: the committed-token count, the pending batch and the backend that computes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "backend.h"
#include "model.h"
#include "sampling.h"
#include "tree.h"

namespace lk {

class Context {
public:
    Context(Model& model, const lk_context_params& params);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

    lk_context_info info() const;
    void eval(const lk_batch& batch);
    const float* logits(int32_t node);
    void commit(const int32_t* nodes, int32_t n_nodes);
    void truncate(int32_t n_past);
    int32_t decode_greedy(const lk_batch& tree, int32_t* out_tokens, int32_t capacity);
    int32_t decode_sample(const lk_batch& tree, const lk_sampling_params& params, int32_t* out_tokens, int32_t capacity);

    // Sequences (lookahead.h's "sequences" section).
    int32_t seq_add();
    void seq_remove(int32_t seq);
    void seq_truncate(int32_t seq, int32_t n_past);
    lk_seq_info seq_info(int32_t seq) const;
    void seq_prefill(int32_t seq, const int32_t* tokens, int32_t n_tokens);
    int32_t seq_fork(int32_t src, int32_t n_past);
    int32_t seq_reuse_prefix(int32_t seq, const int32_t* tokens, int32_t n_tokens);
    lk_kv_pool_info kv_pool_info() const { return backend_->pool_info(); }
    void decode_greedy_seqs(const lk_seq_batch& batch, int32_t* out_tokens, int32_t* out_counts);
    void decode_sample_seqs(const lk_seq_batch& batch, const lk_sampling_params* params, int32_t* out_tokens, int32_t* out_counts);
    void set_profiling(int32_t mode) { backend_->profile().set_mode(mode); }
    int32_t profile(lk_stage_time* out, int32_t capacity) const { return backend_->profile().copy(out, capacity); }

private:
    struct Sequence {
        bool live = false;
        int32_t n_past = 0;
        std::vector<int32_t> committed;  // the tokens of its n_past committed slots (sampling penalties)
    };
    // Sequence 0, which the single-sequence calls use; LK_ERR_INVALID_STATE while it is removed.
    Sequence& main_sequence();
    Sequence& live_sequence(int32_t seq);
    const Sequence& live_sequence(int32_t seq) const;

    // One sequence's tree of a batched step.
    struct SeqTree {
        Tree tree;
        SeqSegment segment;
    };
    // Checks a batch of several sequences' trees and splits it into them, in batch order.
    std::vector<SeqTree> split_seq_batch(const lk_seq_batch& batch);
    // One forward pass over the trees, verify(k, segment, path, bonus) on each, then every commit.
    template <class Verify>
    void decode_seqs(std::vector<SeqTree>& trees, Verify&& verify, int32_t* out_tokens, int32_t* out_counts);
    // The sampling settings checked, with the sequence's committed tokens as the history.
    static SampledStep sampled_step(const lk_sampling_params& params, const Sequence& s);

    void prepare(const lk_batch& batch);
    // prepare() for a fused step whose output holds capacity tokens: the tree's depth + 1 must fit.
    void prepare_step(const lk_batch& batch, int32_t capacity);
    // A fused step whose root's logits are not finite names no token: LK_ERR_NON_FINITE.
    [[noreturn]] void fail_non_finite_root() const;
    // Commits a verified path (length nodes of path_, then bonus; -1 when the last node's logits are not
    // finite) and writes its tokens to out_tokens.
    int32_t finish_step(int32_t length, int32_t bonus, int32_t* out_tokens);
    // The lowest free sequence id; LK_ERR_CONTEXT_FULL when there is none.
    int32_t free_sequence() const;
    // Moves a root path's K/V after the sequence's committed context, records its tokens and publishes the
    // blocks they fill.
    void commit_path(int32_t seq, const Tree& tree, const int32_t* path, int32_t length);

    Model& model_;
    std::unique_ptr<Backend> backend_;
    Tree tree_;
    int32_t n_ctx_ = 0, n_batch_ = 0;
    int32_t kv_type_ = LK_DTYPE_F32;  // lk_dtype of the KV cache
    int32_t logits_mode_ = LK_LOGITS_NONE;
    std::vector<int32_t> path_;
    std::vector<Sequence> seqs_;
};

namespace testing {
// When set (tests only), a batched sequence step hands it every node's logits (batch index, vocab_size
// floats) before verifying, so tests can hold a sequence's logits bit for bit across batches.
extern std::function<void(int32_t node, const float* logits)> observe_seq_logits;
}  // namespace testing

}  // namespace lk
