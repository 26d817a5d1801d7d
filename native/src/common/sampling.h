// Lossless sampling on the host: the settings, the sequence counts the penalties use, and the node sampler.
//
// The rule (docs/sampling.md): generated token i uses draw_bits(seed, i), whatever the step structure, so
// plain sampling and lookahead consume the same number for the same position. At a node the logits are
// processed in Hugging Face's order: repetition penalty (over prompt and output tokens), presence and
// frequency penalties (OpenAI's, over output tokens), temperature, top-k, top-p, min-p; the token is the
// inverse CDF of the draw over the kept tokens' integer masses (sampling_rule.h) in the fixed order:
// penalized logit descending, id ascending on ties. Temperature 0 is greedy: the argmax of the penalized
// logits, ties to the lowest id.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "sampling_select.h"

namespace lk {

struct SamplingSettings {
    float temperature = 0.0f;         // 0: greedy
    int32_t top_k = 0;                // 0: off
    float top_p = 1.0f;               // 1: off
    float min_p = 0.0f;               // 0: off
    float repetition_penalty = 1.0f;  // 1: off
    float presence_penalty = 0.0f;    // 0: off
    float frequency_penalty = 0.0f;   // 0: off

    bool penalizes() const { return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f; }
};

// Throws lk::Error (LK_ERR_INVALID_ARGUMENT) naming the first setting out of range.
void check_sampling_settings(const SamplingSettings& settings);

// The settings as the per-node rule uses them (log(min_p) computed here, once, for every backend).
sampling::RowRule row_rule(const SamplingSettings& settings, int32_t vocab_size);

// How often each token occurs before a node: in the whole history (prompt and output: the repetition
// penalty) and in the output alone (presence and frequency penalties).
struct TokenCounts {
    std::vector<int32_t> all, output;

    void reset(int32_t vocab_size);
    void add(int32_t token, bool is_output, int32_t delta = 1);
};

// The committed tokens a set of counts holds, and the change that brings it to the next step's history:
// the tokens past the common prefix come off (as counted, under the prompt length of then) and the new ones
// go on, so a step counts only what changed. A new prompt length changes which tokens are output, so then
// everything is counted again.
class CountedHistory {
public:
    // Calls apply(tokens, n, first_output, delta) to add delta to the counts of tokens[0, n) (and to their
    // output counts from index first_output on): once for the tokens that come off (-1), once for those that
    // go on (+1). If apply throws, the caller's counts are unknown: it must start again from zero counts and
    // clear().
    template <class Apply>
    void update(const int32_t* history, int32_t n_history, int32_t n_prompt, Apply&& apply) {
        const int32_t n_counted = static_cast<int32_t>(counted_.size());
        int32_t same = 0;
        if (n_prompt == n_prompt_) {
            while (same < n_counted && same < n_history && counted_[same] == history[same]) ++same;
        }
        if (same < n_counted) apply(counted_.data() + same, n_counted - same, std::max(0, n_prompt_ - same), -1);
        if (same < n_history) apply(history + same, n_history - same, std::max(0, n_prompt - same), 1);
        counted_.resize(same);
        counted_.insert(counted_.end(), history + same, history + n_history);
        n_prompt_ = n_prompt;
    }
    void clear() {
        counted_.clear();
        n_prompt_ = 0;
    }

private:
    std::vector<int32_t> counted_;
    int32_t n_prompt_ = 0;
};

// Samples one node's token by sorting the head of the fixed order only as far as the cuts and the draw
// need; keeps its scratch between calls (no allocation in steady state).
class NodeSampler {
public:
    // The token for draw (53 bits, sampling::draw_bits) given the node's logits (vocab_size floats), or -1
    // when a logit (after the penalties) is NaN or infinite: such a node names no token.
    int32_t sample(const float* logits, int32_t vocab_size, const SamplingSettings& settings, const TokenCounts& counts,
                   uint64_t draw);

    struct Candidate {
        float logit;  // penalized
        int32_t token;
        uint64_t mass;
    };

private:
    // Sorts the fixed order's head at least through position j (growing it eightfold at a time).
    void sort_through(int32_t j);

    std::vector<Candidate> candidates_;  // a prefix [0, sorted_) in the fixed order
    int32_t sorted_ = 0;
};

// One fused sampling step's inputs besides the tree: the settings, the draws' seed and first index, and
// the committed sequence (its first n_prompt tokens, then the root, are the prompt).
struct SampledStep {
    SamplingSettings settings;
    uint64_t seed = 0;
    int64_t token_index = 0;
    int32_t n_prompt = 0;
    const int32_t* history = nullptr;  // the committed tokens before the root
    int32_t n_history = 0;
};

}  // namespace lk
