// lookahead_sampler_bench: the sampler's cost per node (the work lk_context_decode_sample adds per node) at
// real vocabulary sizes, on random logits (normal, sd 3; 512 earlier tokens for the penalties), median of
// repeated runs. The CPU's NodeSampler per node; with a CUDA device, also the device sampler (cuda/sampling.cu)
// for one node and for a 16-node tree (all nodes in one launch), timed with CUDA events.
//   build/native/bench/native/lookahead_sampler_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "common/sampling.h"
#include "lookahead.h"
#if defined(LK_HAVE_CUDA)
#include <cuda_runtime.h>

#include "cuda/sampling.cuh"
#endif

namespace {

struct Setting {
    const char* name;
    lk::SamplingSettings settings;
};

double median(std::vector<double> times) {
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

double cpu_microseconds(const Setting& s, const std::vector<float>& logits, const lk::TokenCounts& counts) {
    const int vocab = static_cast<int>(logits.size());
    lk::NodeSampler sampler;
    std::vector<double> times;
    volatile int32_t sink = 0;
    for (int r = 0; r < 25; ++r) {
        const auto start = std::chrono::steady_clock::now();
        sink = sampler.sample(logits.data(), vocab, s.settings, counts, lk::sampling::draw_bits(7, r));
        times.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count());
    }
    (void)sink;
    return median(times);
}

#if defined(LK_HAVE_CUDA)
// The device sampler over n nodes (a chain: each node's penalties also count its ancestors).
double cuda_microseconds(const Setting& s, const std::vector<float>& logits, const lk::TokenCounts& counts, int n) {
    const int vocab = static_cast<int>(logits.size());
    std::vector<float> rows;
    for (int i = 0; i < n; ++i) rows.insert(rows.end(), logits.begin(), logits.end());
    std::vector<int32_t> ints(2 * n + 2 * vocab);
    for (int i = 0; i < n; ++i) {
        ints[i] = i % vocab;   // tokens
        ints[n + i] = i - 1;   // parents
    }
    std::copy(counts.all.begin(), counts.all.end(), ints.begin() + 2 * n);
    std::copy(counts.output.begin(), counts.output.end(), ints.begin() + 2 * n + vocab);
    float *device_rows = nullptr, *penalized = nullptr;
    int32_t *device_ints = nullptr, *sampled = nullptr;
    cudaMalloc(&device_rows, rows.size() * sizeof(float));
    cudaMalloc(&penalized, rows.size() * sizeof(float));
    cudaMalloc(&device_ints, ints.size() * sizeof(int32_t));
    cudaMalloc(&sampled, n * sizeof(int32_t));
    cudaMemcpy(device_rows, rows.data(), rows.size() * sizeof(float), cudaMemcpyHostToDevice);
    cudaMemcpy(device_ints, ints.data(), ints.size() * sizeof(int32_t), cudaMemcpyHostToDevice);
    const lk::SamplingSettings& t = s.settings;
    cudaEvent_t start, stop;
    cudaEventCreate(&start);
    cudaEventCreate(&stop);
    std::vector<double> times;
    for (int r = 0; r < 25; ++r) {
        const lk::cuda::SamplerArgs args{lk::row_rule(t, vocab), t.repetition_penalty, t.presence_penalty, t.frequency_penalty,
                                         t.penalizes(), 7, r, true};
        cudaEventRecord(start);
        lk::cuda::sample_rows(device_rows, n, vocab, device_ints, device_ints + n, device_ints + 2 * n,
                              device_ints + 2 * n + vocab, args, penalized, sampled);
        cudaEventRecord(stop);
        cudaEventSynchronize(stop);
        float ms = 0.0f;
        cudaEventElapsedTime(&ms, start, stop);
        times.push_back(1000.0 * ms);
    }
    const cudaError_t status = cudaGetLastError();
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    cudaFree(device_rows);
    cudaFree(penalized);
    cudaFree(device_ints);
    cudaFree(sampled);
    if (status != cudaSuccess) {
        std::fprintf(stderr, "CUDA error: %s\n", cudaGetErrorString(status));
        return -1.0;
    }
    return median(times);
}
#endif

}  // namespace

int main() {
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
    const bool cuda = lk_backend_available(LK_BACKEND_CUDA) != 0;
    std::printf("per node, microseconds (median of 25)\n%-28s %12s %12s", "setting", "cpu 32000", "cpu 128256");
    if (cuda) std::printf(" %12s %12s %16s", "cuda 32000", "cuda 128256", "cuda 128256 x16");
    std::printf("\n");
    std::mt19937 rng(1);
    for (const Setting& s : settings) {
        std::printf("%-28s", s.name);
        std::vector<std::vector<float>> rows;
        std::vector<lk::TokenCounts> counts;
        for (int vocab : {32000, 128256}) {
            std::vector<float> logits(vocab);
            std::normal_distribution<float> normal(0.0f, 3.0f);
            for (float& x : logits) x = normal(rng);
            lk::TokenCounts c;
            c.reset(vocab);
            for (int i = 0; i < 512; ++i) c.add(static_cast<int32_t>(rng() % vocab), i >= 256);
            std::printf(" %12.1f", cpu_microseconds(s, logits, c));
            rows.push_back(std::move(logits));
            counts.push_back(std::move(c));
        }
#if defined(LK_HAVE_CUDA)
        if (cuda) {
            std::printf(" %12.1f %12.1f", cuda_microseconds(s, rows[0], counts[0], 1), cuda_microseconds(s, rows[1], counts[1], 1));
            std::printf(" %16.1f", cuda_microseconds(s, rows[1], counts[1], 16));
        }
#endif
        std::printf("\n");
    }
    return 0;
}
