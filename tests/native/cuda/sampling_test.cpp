// The device sampler (sampling.cuh) against the CPU sampler (common/sampling.h) on identical logits. Skipped where
// no CUDA device exists; outputs are poisoned (NaN) before each run so that unwritten elements fail.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/sampling.h"
#include "cuda/sampling.cuh"
#include "sampling_cases.h"
#include "cuda_test_support.h"
#include "test_model.h"

namespace {

using namespace lk_cuda_test;

// The device sampler against the CPU's NodeSampler on the same logits and draws: every node of random trees
// (penalties counting the committed sequence and each node's chain to the root), every setting family,
// vocabularies up to 128,256 tokens, exact ties and a row holding NaN. The two must agree exactly.
// Returns how many nodes were compared.
int compare_device_sampler(int trials, bool large_vocabularies) {
    std::mt19937 rng(31);
    lk::NodeSampler sampler;
    int compared = 0;
    for (int trial = 0; trial < trials; ++trial) {
        // Vocabulary sizes cycle apart from the settings, so large rows meet every setting family.
        const int size_class = (trial / 7) % 10;
        const int vocab = large_vocabularies && size_class == 0   ? 128256
                          : large_vocabularies && size_class == 5 ? 32000
                                                                  : std::uniform_int_distribution<int>(1, 3000)(rng);
        const int n = std::uniform_int_distribution<int>(1, 12)(rng);
        std::vector<int32_t> tokens(n), parents(n, -1);
        for (int i = 0; i < n; ++i) {
            tokens[i] = std::uniform_int_distribution<int>(0, std::min(vocab - 1, 40))(rng);  // repeats along chains
            if (i > 0) parents[i] = std::uniform_int_distribution<int>(0, i - 1)(rng);
        }
        const float spread = trial % 3 == 0 ? 8.0f : trial % 3 == 1 ? 0.05f : 2.0f;
        std::normal_distribution<float> normal(0.0f, spread);
        std::vector<float> logits(static_cast<size_t>(n) * vocab);
        for (float& x : logits) x = trial % 7 == 3 ? std::uniform_int_distribution<int>(-3, 3)(rng) * 0.5f : normal(rng);
        if (trial % 11 == 5 && n > 1) logits[static_cast<size_t>(n - 1) * vocab] = std::numeric_limits<float>::quiet_NaN();

        if (vocab > 3 && trial % 9 == 4) logits[0] = -0.0f, logits[2] = 0.0f;
        const lk::SamplingSettings s = lk_test::corner_sampling_settings(trial);
        const int n_prompts[] = {6, 20, 25};  // the root is output, output, prompt
        const int n_prompt = n_prompts[trial % 3];
        std::vector<int32_t> history(20);
        for (int32_t& t : history) t = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
        const bool root_is_output = static_cast<int>(history.size()) >= n_prompt;

        Device<float> device_logits(logits), penalized(std::vector<float>(logits.size(), kPoison));
        Device<int32_t> device_tokens(tokens), device_parents(parents), sampled(std::vector<int32_t>(n, -7));
        Device<int32_t> counts(std::vector<int32_t>(2 * static_cast<size_t>(vocab), 0)), device_history(history);
        lk::cuda::count_tokens(counts.data, counts.data + vocab, device_history.data, static_cast<int>(history.size()), n_prompt, 1);
        const uint64_t seed = 1000 + trial;
        const int64_t token_index = trial * 3;
        const lk::cuda::SamplerArgs args{lk::row_rule(s, vocab), s.repetition_penalty, s.presence_penalty, s.frequency_penalty,
                                         s.penalizes(), seed, token_index, root_is_output};
        lk::cuda::sample_rows(device_logits.data, n, vocab, device_tokens.data, device_parents.data, counts.data,
                              counts.data + vocab, args, penalized.data, sampled.data);
        EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const std::vector<int32_t> got = sampled.read();
        for (int i = 0; i < n; ++i) {
            lk::TokenCounts c;
            c.reset(vocab);
            for (size_t j = 0; j < history.size(); ++j) c.add(history[j], static_cast<int>(j) >= n_prompt);
            int depth = 0;
            for (int a = i; a >= 0; a = parents[a], ++depth) c.add(tokens[a], parents[a] >= 0 || root_is_output);
            --depth;
            const uint64_t draw = lk::sampling::draw_bits(seed, static_cast<uint64_t>(token_index + depth));
            const int32_t want = sampler.sample(logits.data() + static_cast<size_t>(i) * vocab, vocab, s, c, draw);
            EXPECT_EQ(got[i], want) << "trial " << trial << " node " << i << " depth " << depth << " vocab " << vocab << " T "
                                    << s.temperature << " k " << s.top_k << " p " << s.top_p << " min_p " << s.min_p;
            if (got[i] != want) return compared;
            ++compared;
        }
    }
    return compared;
}

TEST(CudaSampler, DeviceSamplerPicksTheCpuSamplersToken) {
    REQUIRE_CUDA();
    EXPECT_GT(compare_device_sampler(120, true), 500);
}

// The same on a few small trees, quick enough for compute-sanitizer's racecheck and memcheck.
TEST(CudaSampler, DeviceSamplerOfSmallTreesForTheSanitizers) {
    REQUIRE_CUDA();
    EXPECT_GT(compare_device_sampler(12, false), 20);
}

}  // namespace
