// Lossless sampling, one node at a time: the counter-based draw and the processed distribution.
//
// The rule (docs and issue "lossless sampling"): generated token i uses the uniform number
// sampling_draw(seed, i), whatever the step structure, so plain sampling and lookahead consume the same
// number for the same position. At a node the logits are processed in Hugging Face's order: repetition
// penalty (over prompt and output tokens), presence and frequency penalties (OpenAI's, over output tokens),
// temperature, top-k, top-p, min-p; the token is the inverse CDF of the draw over the kept tokens ordered by
// probability descending, id ascending on ties. Temperature 0 is greedy: the argmax of the penalized
// logits, ties to the lowest id.
#pragma once

#include <cstdint>
#include <vector>

namespace lk {

// The k-th output (k >= 1) of Vigna's SplitMix64 seeded with seed: the state advances by the golden
// gamma before each output, so output k is a pure function of (seed, k).
uint64_t splitmix64_output(uint64_t seed, uint64_t k);

// The uniform number in [0, 1) for generated token index (0-based): the top 53 bits of output index + 1.
double sampling_draw(uint64_t seed, uint64_t index);

struct SamplingSettings {
    float temperature = 0.0f;         // 0: greedy
    int32_t top_k = 0;                // 0: off
    float top_p = 1.0f;               // 1: off
    float min_p = 0.0f;               // 0: off
    float repetition_penalty = 1.0f;  // 1: off
    float presence_penalty = 0.0f;    // 0: off
    float frequency_penalty = 0.0f;   // 0: off
};

// Throws lk::Error (LK_ERR_INVALID_ARGUMENT) naming the first setting out of range.
void check_sampling_settings(const SamplingSettings& settings);

// How often each token occurs before a node: in the whole history (prompt and output: the repetition
// penalty) and in the output alone (presence and frequency penalties).
struct TokenCounts {
    std::vector<int32_t> all, output;

    void reset(int32_t vocab_size);
    void add(int32_t token, bool is_output);
};

// Samples one node's token; keeps its scratch buffers between calls (no allocation in steady state).
class NodeSampler {
public:
    // The token for draw u in [0, 1) given the node's logits (vocab_size floats), or -1 when a logit (after
    // the penalties) is NaN or infinite: such a node names no token.
    int32_t sample(const float* logits, int32_t vocab_size, const SamplingSettings& settings, const TokenCounts& counts,
                   double u);

    struct Candidate {
        float logit;
        int32_t token;
    };

private:
    int32_t sample_top_k(const SamplingSettings& settings, double u);
    int32_t sample_head_first(int32_t vocab_size, const SamplingSettings& settings, double u);
    int32_t cut(int32_t kept, const SamplingSettings& settings) const;
    int32_t pick(int32_t kept, double u) const;

    std::vector<Candidate> candidates_;   // penalized, scaled logits; a prefix sorted in the fixed order
    std::vector<double> probabilities_;   // exp(logit - largest) of that sorted prefix
};

}  // namespace lk
