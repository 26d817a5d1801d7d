// lookahead_sampler_bench: the node sampler's cost per node (the work lk_context_decode_sample adds per
// accepted node) at real vocabulary sizes, on random logits, median of repeated runs.
//   build/native/bench/native/lookahead_sampler_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "common/sampling.h"

int main() {
    struct Setting {
        const char* name;
        lk::SamplingSettings settings;
    };
    lk::SamplingSettings greedy;
    lk::SamplingSettings plain;
    plain.temperature = 0.8f;
    lk::SamplingSettings top_k = plain;
    top_k.top_k = 40;
    lk::SamplingSettings top_p = plain;
    top_p.top_p = 0.9f;
    lk::SamplingSettings penalized = top_p;
    penalized.repetition_penalty = 1.1f;
    penalized.frequency_penalty = 0.2f;
    const Setting settings[] = {{"temperature 0 (greedy)", greedy}, {"temperature 0.8", plain}, {"temperature 0.8, top-k 40", top_k},
                                {"temperature 0.8, top-p 0.9", top_p}, {"top-p 0.9 + penalties", penalized}};
    std::printf("%-28s %12s %12s\n", "setting", "vocab 32000", "vocab 128256");
    std::mt19937 rng(1);
    for (const Setting& s : settings) {
        std::printf("%-28s", s.name);
        for (int vocab : {32000, 128256}) {
            std::vector<float> logits(vocab);
            std::normal_distribution<float> normal(0.0f, 3.0f);
            for (float& x : logits) x = normal(rng);
            lk::TokenCounts counts;
            counts.reset(vocab);
            for (int i = 0; i < 512; ++i) counts.add(static_cast<int32_t>(rng() % vocab), i >= 256);
            lk::NodeSampler sampler;
            std::vector<double> times;
            volatile int32_t sink = 0;
            for (int r = 0; r < 25; ++r) {
                const auto start = std::chrono::steady_clock::now();
                sink = sampler.sample(logits.data(), vocab, s.settings, counts, lk::sampling_draw(7, r));
                times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
            }
            (void)sink;
            std::sort(times.begin(), times.end());
            std::printf(" %9.1f us", times[times.size() / 2]);
        }
        std::printf("\n");
    }
    return 0;
}
