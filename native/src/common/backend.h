// The interface every compute backend implements; the context (context.h) drives it.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "error.h"
#include "model.h"
#include "sampling.h"
#include "stage_profile.h"
#include "tree.h"

namespace lk {

// The kernel choices of lk_context_params as a backend resolved them (lk_context_info reports them):
// fields the backend does not use stay AUTO.
struct KernelChoices {
    int32_t cuda_device = 0;
    int32_t cpu_kernel = LK_CPU_KERNEL_AUTO;
    int32_t cuda_matmul = LK_CUDA_MATMUL_AUTO;
    int32_t cuda_attention = LK_CUDA_ATTENTION_AUTO;
    int32_t cuda_graphs = LK_CUDA_GRAPHS_AUTO;
};

// One sequence's tree within a batch of several (forward_seqs): batch nodes [first, first + tree->size()),
// below the sequence's n_past committed tokens.
struct SeqSegment {
    int32_t seq;
    int32_t first;
    int32_t n_past;
    const Tree* tree;
};

class Backend {
public:
    virtual ~Backend() = default;

    virtual int32_t kind() const = 0;  // LK_BACKEND_CPU or LK_BACKEND_CUDA
    virtual int32_t threads() const = 0;

    // One forward pass over the tree hanging below n_past committed tokens. Node i writes its K/V to
    // cache slot n_past + i and sits at position n_past + depth(i). Keeps logits per logits_mode.
    virtual void forward(const Tree& tree, int32_t n_past, int32_t logits_mode) = 0;

    // Host copy of a node's logits kept by the last forward.
    virtual const float* logits(int32_t node) = 0;

    // Greedy verification over the last forward (which kept all logits): writes the accepted root
    // path to path, the bonus token (argmax at the path's last node) to bonus, returns the path length.
    virtual int32_t verify_greedy(const Tree& tree, int32_t* path, int32_t* bonus) = 0;

    // Sampled verification over the last forward (which kept all logits): from the root, each node's token
    // is sampled with draw token_index + depth and the walk follows the children holding it; the accepted
    // root path is the deepest such path (then lowest node indices, as verify_greedy). Writes it to path and
    // the sample at its last node to bonus (-1 when that node's logits are not finite), returns its length.
    // Both backends pick the same token from the same logits and draw.
    virtual int32_t verify_sample(const Tree& tree, const SampledStep& step, int32_t* path, int32_t* bonus) = 0;

    // Moves the K/V of pending slots n_past + path[j] to n_past + j, for j in [0, n).
    virtual void compact(int32_t n_past, const int32_t* path, int32_t n) = 0;

    // Several sequences' trees in one forward pass (node indices are the batch's). A backend that holds one
    // sequence (the default below) takes one segment of sequence 0.
    virtual void forward_seqs(const std::vector<SeqSegment>& segments, int32_t logits_mode) {
        require_one_sequence(segments);
        forward(*segments[0].tree, segments[0].n_past, logits_mode);
    }
    // verify_greedy over one segment of the last forward_seqs.
    virtual int32_t verify_greedy_seq(const SeqSegment& segment, int32_t* path, int32_t* bonus) {
        require_one_sequence({segment});
        return verify_greedy(*segment.tree, path, bonus);
    }
    // verify_sample over one segment of the last forward_seqs, step holding that sequence's settings.
    virtual int32_t verify_sample_seq(const SeqSegment& segment, const SampledStep& step, int32_t* path, int32_t* bonus) {
        require_one_sequence({segment});
        return verify_sample(*segment.tree, step, path, bonus);
    }
    // compact for one sequence.
    virtual void compact_seq(int32_t seq, int32_t n_past, const int32_t* path, int32_t n) {
        require_one_sequence({SeqSegment{seq, 0, n_past, nullptr}});
        compact(n_past, path, n);
    }
    // Frees the sequence's KV memory holding no slot below n_slots (a removed sequence: 0).
    virtual void release_seq(int32_t /*seq*/, int32_t /*n_slots*/) {}
    // KV pool blocks the sequence holds (0 where the backend has no pool).
    virtual int32_t seq_blocks(int32_t /*seq*/) const { return 0; }

    // Prefix sharing, for backends with a KV pool (the defaults: no pool, nothing to share).
    // Publishes the sequence's full blocks of committed tokens (tokens[0, n_past)) under their prefix.
    virtual void publish_seq(int32_t /*seq*/, const int32_t* /*tokens*/, int32_t /*n_past*/) {}
    // Gives an empty sequence the published blocks holding the longest whole-block prefix of tokens[0, n);
    // returns the slots they cover.
    virtual int32_t reuse_prefix(int32_t /*seq*/, const int32_t* /*tokens*/, int32_t /*n*/) { return 0; }
    // Gives an empty sequence dst the K/V of src's first n_slots slots: full blocks shared, a partial one copied.
    virtual void fork_seq(int32_t /*src*/, int32_t /*dst*/, int32_t /*n_slots*/) {
        fail(LK_ERR_UNSUPPORTED, "this backend holds one sequence per context");
    }
    // The pool's blocks: all, free, and cached (published, held by no sequence); zeros without a pool.
    virtual lk_kv_pool_info pool_info() const { return {}; }

    // Per-stage timing of the calls above (lk_context_set_profiling).
    StageProfile& profile() { return profile_; }
    const StageProfile& profile() const { return profile_; }

    const KernelChoices& choices() const { return choices_; }

protected:
    StageProfile profile_;
    KernelChoices choices_;

private:
    static void require_one_sequence(const std::vector<SeqSegment>& segments) {
        if (segments.size() != 1 || segments[0].seq != 0 || segments[0].first != 0)
            fail(LK_ERR_UNSUPPORTED, "this backend holds one sequence per context");
    }
};

// cpu_kernel caps the matrix kernel (lk_cpu_kernel); the KV pool holds n_kv_tokens slots for up to
// n_seq_max sequences, its elements of type kv_type (lk_dtype).
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads,
                                          int32_t cpu_kernel, int32_t n_seq_max, int64_t n_kv_tokens, int32_t kv_type);

}  // namespace lk
