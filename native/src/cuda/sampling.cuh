// The device sampler: the sampling rule at every node of a tree at once, one thread block per node, by the
// selections of common/sampling_select.h (no sort, no copy of a vocabulary row to the host). It picks the
// same token as the CPU's NodeSampler for the same logits and draw (sampling_rule.h's exact arithmetic).
#pragma once

#include <cstdint>

#include "../common/sampling_select.h"

namespace lk::cuda {

struct SamplerArgs {
    sampling::RowRule rule;
    float repetition_penalty, presence_penalty, frequency_penalty;
    bool penalizes;             // any penalty on: counts and penalized are read
    uint64_t seed;
    int64_t token_index;        // the root's draw; a node's is token_index + its depth
    bool root_is_output;        // the root is an output token (presence and frequency penalties count it)
};

// sampled[i] = the rule's token at node i of the tree (tokens, parents: n nodes, parents before children),
// -1 when node i's penalized logits hold NaN or infinity. The penalties count counts_all / counts_output (the
// committed sequence; vocab ints each) plus the tokens from the root down to node i. penalized: n * vocab
// floats of scratch, used only when args.penalizes.
void sample_rows(const float* logits, int n, int vocab, const int32_t* tokens, const int32_t* parents,
                 const int32_t* counts_all, const int32_t* counts_output, const SamplerArgs& args, float* penalized,
                 int32_t* sampled);

// Adds delta to counts_all[tokens[j]] for j in [0, n), and to counts_output[tokens[j]] for j >= first_output.
void count_tokens(int32_t* counts_all, int32_t* counts_output, const int32_t* tokens, int n, int first_output, int delta);

}  // namespace lk::cuda
