// Greedy verification on the device (verify.cuh: argmax rows, the tree walk, KV compaction) against the host logic
// of common/tree.h. Skipped where no CUDA device exists; outputs are poisoned (NaN) before each run so that
// unwritten elements fail.
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

#include "common/tree.h"
#include "cpu/kernels.h"
#include "cuda/verify.cuh"
#include "cuda_test_support.h"
#include "test_model.h"

namespace {

using namespace lk_cuda_test;

TEST(CudaVerify, ArgmaxVerificationAndCompactionMatchTheHostLogic) {
    REQUIRE_CUDA();
    std::mt19937 rng(9);
    for (int trial = 0; trial < 200; ++trial) {
        const int n = std::uniform_int_distribution<int>(1, 40)(rng), vocab = std::uniform_int_distribution<int>(1, 600)(rng);
        std::vector<float> logits = random_floats(rng, static_cast<size_t>(n) * vocab);
        // Exact ties: the lowest id must win. Some rows get a NaN or an infinity: their argmax is -1, so the
        // walk stops at them with a bonus of -1.
        const float bad[] = {kPoison, std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
        for (int i = 0; i < n; ++i) {
            float* row = logits.data() + static_cast<size_t>(i) * vocab;
            const int a = std::uniform_int_distribution<int>(0, vocab - 1)(rng), b = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
            row[a] = row[b] = 5.0f;
            if (trial % 3 == 0 && i % 4 == 3) row[std::uniform_int_distribution<int>(0, vocab - 1)(rng)] = bad[i % 3];
        }
        std::vector<int32_t> tokens(n), parents(n, -1);
        for (int i = 0; i < n; ++i) {
            tokens[i] = std::uniform_int_distribution<int>(0, std::min(vocab, 4) - 1)(rng);
            if (i > 0) parents[i] = std::uniform_int_distribution<int>(0, i - 1)(rng);
        }
        Device<float> dl(logits);
        Device<int32_t> dtok(tokens), dpar(parents), darg(std::vector<int32_t>(n, -7)), dscratch(std::vector<int32_t>(2 * n)),
            dresult(std::vector<int32_t>(n + 2, -7));
        lk::cuda::argmax_rows(dl.data, n, vocab, darg.data);
        lk::cuda::greedy_path(dtok.data, dpar.data, darg.data, n, dscratch.data, dresult.data);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<int32_t> argmax = darg.read();
        for (int i = 0; i < n; ++i)
            ASSERT_EQ(argmax[i], lk::cpu::argmax(logits.data() + static_cast<size_t>(i) * vocab, vocab)) << "trial " << trial << " node " << i;
        lk::Tree tree;
        lk_batch batch{tokens.data(), parents.data(), n, LK_LOGITS_ALL};
        tree.assign(batch, std::max(vocab, 4), 64);
        std::vector<int32_t> path(n);
        const int32_t length = tree.greedy_path(argmax.data(), path.data());
        std::vector<int32_t> result = dresult.read();
        ASSERT_EQ(result[0], length) << "trial " << trial;
        for (int j = 0; j < length; ++j) ASSERT_EQ(result[1 + j], path[j]) << "trial " << trial;
        ASSERT_EQ(result[1 + length], argmax[path[length - 1]]);

        // Compaction of that path in a two-layer cache of 3 floats per slot after 2 committed slots.
        const int layers = 2, kv = 3, n_past = 2, slots = n_past + n;
        std::vector<float> keys = random_floats(rng, static_cast<size_t>(layers) * slots * kv), values = random_floats(rng, keys.size());
        Device<float> dk(keys), dv(values);
        Device<int32_t> dp(std::vector<int32_t>(path.begin(), path.begin() + length));
        lk::cuda::compact(dk.data, dv.data, layers, static_cast<int64_t>(slots) * kv, kv, n_past, dp.data, length);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<float> k2 = dk.read(), v2 = dv.read();
        for (int l = 0; l < layers; ++l)
            for (int j = 0; j < length; ++j)
                for (int i = 0; i < kv; ++i) {
                    const size_t to = (static_cast<size_t>(l) * slots + n_past + j) * kv + i;
                    const size_t from = (static_cast<size_t>(l) * slots + n_past + path[j]) * kv + i;
                    ASSERT_EQ(k2[to], keys[from]);
                    ASSERT_EQ(v2[to], values[from]);
                }
    }
}

}  // namespace
