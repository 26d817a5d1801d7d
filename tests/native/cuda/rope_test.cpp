// RoPE fused with the KV cache write (rope.cuh) against HF's rotate-half in double. Skipped where no CUDA device
// exists; outputs are poisoned (NaN) before each run so that unwritten elements fail.
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

#include "cuda/rope.cuh"
#include "cuda_test_support.h"
#include "test_model.h"

namespace {

using namespace lk_cuda_test;

// RoPE fused with the cache write, alone: HF rotate-half with the float angle position * inv_freq (as
// HF computes it), keys and values written to the batch's cache slots and nowhere else.
TEST(CudaRope, RopeAndStoreRotateHalfAndWriteOnlyTheBatchSlots) {
    REQUIRE_CUDA();
    std::mt19937 rng(21);
    struct Case {
        int heads, kv_heads, head_dim;
        double theta;
        int32_t n_past;
    };
    const Case cases[] = {Case{4, 4, 8, 10000.0, 0}, Case{8, 2, 64, 10000.0, 37}, Case{4, 1, 128, 500000.0, 3990}};
    for (const Case& c : cases) {
        // The middle case reads n_past from device memory (as CUDA graphs do), with a wrong host value.
        const bool from_device = &c == &cases[1];
        const int n = 6, half = c.head_dim / 2, slots = c.n_past + n + 3;
        const int64_t q_dim = int64_t{c.heads} * c.head_dim, kv_dim = int64_t{c.kv_heads} * c.head_dim;
        std::vector<float> inv_freq(half);
        for (int i = 0; i < half; ++i) inv_freq[i] = static_cast<float>(1.0 / std::pow(c.theta, 2.0 * i / c.head_dim));
        std::vector<int32_t> positions(n);
        for (int i = 0; i < n; ++i) positions[i] = c.n_past + std::uniform_int_distribution<int>(0, 3)(rng);  // tree depths
        std::vector<float> q = random_floats(rng, n * q_dim), k = random_floats(rng, n * kv_dim), v = random_floats(rng, n * kv_dim);
        Device<float> dq(q), dk(k), dv(v), dfreq(inv_freq), dkeys(std::vector<float>(slots * kv_dim, kPoison)),
            dvalues(std::vector<float>(slots * kv_dim, kPoison));
        Device<int32_t> dpos(positions), dpast(std::vector<int32_t>{c.n_past});
        lk::cuda::rope_and_store(dq.data, dk.data, dv.data, dpos.data, dfreq.data, n, c.heads, c.kv_heads, c.head_dim,
                                 from_device ? 0 : c.n_past, from_device ? dpast.data : nullptr, dkeys.data, dvalues.data);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

        // Rotated copy of n rows of `heads` heads, in double from the float angles.
        auto rotated = [&](const std::vector<float>& x, int heads) {
            std::vector<double> out(x.size());
            for (int node = 0; node < n; ++node)
                for (int h = 0; h < heads; ++h)
                    for (int i = 0; i < half; ++i) {
                        const int64_t lo = (int64_t{node} * heads + h) * c.head_dim + i;
                        const double angle = static_cast<float>(positions[node]) * inv_freq[i];
                        out[lo] = x[lo] * std::cos(angle) - x[lo + half] * std::sin(angle);
                        out[lo + half] = x[lo + half] * std::cos(angle) + x[lo] * std::sin(angle);
                    }
            return out;
        };
        const std::string what = "rope head_dim " + std::to_string(c.head_dim) + " n_past " + std::to_string(c.n_past);
        expect_close(dq.read(), rotated(q, c.heads), what + " queries");
        if (HasFatalFailure()) return;
        const std::vector<float> keys = dkeys.read(), values = dvalues.read();
        const std::vector<double> want_keys = rotated(k, c.kv_heads);
        for (int64_t slot = 0; slot < slots; ++slot) {
            for (int64_t i = 0; i < kv_dim; ++i) {
                const int64_t at = slot * kv_dim + i, node = slot - c.n_past;
                if (node < 0 || node >= n) {
                    ASSERT_TRUE(std::isnan(keys[at]) && std::isnan(values[at])) << what << ": wrote slot " << slot;
                    continue;
                }
                ASSERT_NEAR(keys[at], want_keys[node * kv_dim + i], 1e-5 + 1e-5 * std::fabs(want_keys[node * kv_dim + i]))
                    << what << " key slot " << slot << " element " << i;
                ASSERT_EQ(values[at], v[node * kv_dim + i]) << what << " value slot " << slot << " element " << i;
            }
        }
    }
}

}  // namespace
