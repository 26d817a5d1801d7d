// What every CUDA kernel test (tests/native/cuda/<family>_test.cpp) needs: a skip without a device, device
// buffers, random inputs (never zero), the NaN poison for outputs, and a closeness check against double
// references. Tolerances: fp32 sums 1e-5 relative (+1e-5 absolute); the same weight values on both sides, so
// BF16/F16 weights need no wider bound (BF16 weights' inputs are rounded to BF16 in the references too).
#pragma once

#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lookahead.h"

namespace lk_cuda_test {

#define REQUIRE_CUDA()                            \
    if (!lk_backend_available(LK_BACKEND_CUDA))   \
    GTEST_SKIP() << "no CUDA device"

template <typename T>
struct Device {
    T* data = nullptr;
    size_t count = 0;
    explicit Device(const std::vector<T>& host) : count(host.size()) {
        EXPECT_EQ(cudaMalloc(&data, count * sizeof(T)), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(data, host.data(), count * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
    ~Device() { cudaFree(data); }
    std::vector<T> read() const {
        std::vector<T> host(count);
        EXPECT_EQ(cudaMemcpy(host.data(), data, count * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
        return host;
    }
};

inline std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) {
        do x = dist(rng); while (x == 0.0f);
    }
    return v;
}

inline const float kPoison = std::numeric_limits<float>::quiet_NaN();

// |got - want| <= bound[i] (default 1e-5 + 1e-5 |want|).
inline void expect_close(const std::vector<float>& got, const std::vector<double>& want, const std::string& what,
                  const std::vector<double>* bound = nullptr) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_FALSE(std::isnan(got[i])) << what << ": element " << i << " not written";
        const double tolerance = bound ? (*bound)[i] : 1e-5 + 1e-5 * std::fabs(want[i]);
        ASSERT_NEAR(got[i], want[i], tolerance) << what << ": element " << i;
    }
}

}  // namespace lk_cuda_test
