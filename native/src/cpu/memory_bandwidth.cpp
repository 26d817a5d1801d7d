#include "memory_bandwidth.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "../common/aligned_buffer.h"

namespace lk::cpu {
namespace {

constexpr int64_t kBytes = int64_t{1} << 30;
constexpr int kPasses = 5;

// Four independent sums, so the loads are not serialized behind one dependency chain.
uint64_t sum_words(const uint64_t* words, int64_t count) {
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (int64_t i = 0; i + 4 <= count; i += 4) {
        a += words[i];
        b += words[i + 1];
        c += words[i + 2];
        d += words[i + 3];
    }
    return a ^ b ^ c ^ d;
}

}  // namespace

double measure_read_bandwidth(int32_t n_threads) {
    AlignedBuffer buffer(kBytes);
    // Distinct non-zero words: untouched or identical pages could be served from one physical page.
    uint64_t* words = buffer.as<uint64_t>();
    const int64_t count = kBytes / 8;
    for (int64_t i = 0; i < count; ++i) words[i] = static_cast<uint64_t>(i) * 0x9E3779B97F4A7C15ull + 1;
    double best = 0;
    std::vector<uint64_t> sums(n_threads);
    for (int pass = 0; pass < kPasses; ++pass) {
        const auto start = std::chrono::steady_clock::now();
        std::vector<std::thread> workers;
        for (int t = 0; t < n_threads; ++t)
            workers.emplace_back([&, t] { sums[t] = sum_words(words + count * t / n_threads, count / n_threads); });
        for (std::thread& worker : workers) worker.join();
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best = std::max(best, static_cast<double>(kBytes) / seconds / 1e9);
    }
    // Keeps the sums observable so the loops are not removed.
    volatile uint64_t sink = 0;
    for (uint64_t s : sums) sink = sink ^ s;
    return best;
}

}  // namespace lk::cpu
