// The row and element-wise kernels (elementwise.cuh: RMS norm, SwiGLU, the embedding gather) against double
// references at odd widths. Skipped where no CUDA device exists; outputs are poisoned (NaN) before each run so
// that unwritten elements fail.
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

#include "cuda/elementwise.cuh"
#include "cuda_test_support.h"
#include "test_model.h"

namespace {

using namespace lk_cuda_test;

TEST(CudaElementwise, RowAndElementwiseKernelsMatchTheCpu) {
    REQUIRE_CUDA();
    std::mt19937 rng(5);
    for (int width : {1, 7, 64, 257}) {
        const int n = 5;
        std::vector<float> x = random_floats(rng, n * width), weight = random_floats(rng, width, 0.5f, 1.5f);
        Device<float> dx(x), dw(weight), dout(std::vector<float>(n * width, kPoison));
        lk::cuda::rms_norm(dx.data, dw.data, dout.data, 0, n, width, 1e-5f);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<double> want(n * width);
        for (int i = 0; i < n; ++i) {
            double ss = 0;
            for (int k = 0; k < width; ++k) ss += double(x[i * width + k]) * x[i * width + k];
            const double scale = 1.0 / std::sqrt(ss / width + 1e-5);
            for (int k = 0; k < width; ++k) want[i * width + k] = x[i * width + k] * scale * weight[k];
        }
        expect_close(dout.read(), want, "rms_norm width " + std::to_string(width));

        std::vector<float> gate = random_floats(rng, n * width, -4, 4), up = random_floats(rng, n * width);
        Device<float> dg(gate), du(up);
        lk::cuda::swiglu(dg.data, du.data, n * width);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<double> silu(n * width);
        for (int i = 0; i < n * width; ++i) silu[i] = gate[i] / (1.0 + std::exp(-double(gate[i]))) * up[i];
        expect_close(dg.read(), silu, "swiglu");
    }
    std::vector<float> table = random_floats(rng, 11 * 6);
    std::vector<int32_t> tokens{3, 0, 10, 3};
    Device<float> dt(table), dout(std::vector<float>(4 * 6, kPoison));
    Device<int32_t> dtok(tokens);
    lk::cuda::embed(dt.data, LK_DTYPE_F32, dtok.data, 4, 6, dout.data);
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    std::vector<double> want;
    for (int32_t t : tokens)
        for (int k = 0; k < 6; ++k) want.push_back(table[t * 6 + k]);
    expect_close(dout.read(), want, "embed");
}

}  // namespace
