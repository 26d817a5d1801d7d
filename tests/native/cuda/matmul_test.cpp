// The matrix kernels (matmul.cuh: CUDA cores; matmul_mma.cuh: tensor cores for BF16 weights) against double loops:
// every dtype, odd sizes, 1 to 64 input rows, stacked parts, residual adds, and each input row's bits alone and in
// a batch. Skipped where no CUDA device exists; outputs are poisoned (NaN) before each run so that unwritten
// elements fail.
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

#include "common/half.h"
#include "cuda/matmul.cuh"
#include "cuda/matmul_mma.cuh"
#include "cuda_test_support.h"
#include "test_model.h"

namespace {

using namespace lk_cuda_test;

// The device matrix kernels: the CUDA-core one for every dtype, the tensor-core one for BF16 weights.
struct MatmulKernel {
    const char* name;
    bool tensor_cores;
};
const MatmulKernel kMatmulKernels[] = {{"simt", false}, {"mma", true}};

// Runs one kernel on device buffers (with the scratch the tensor-core kernel asks for: poisoned partial
// sums, zeroed counters); several parts go out in one tensor-core launch.
void run_matmul_parts(const MatmulKernel& kernel, const std::vector<lk::cuda::MatmulPart>& parts, int32_t dtype, int64_t cols,
                      const float* x, int64_t x_stride, int n_x, bool accumulate) {
    if (!kernel.tensor_cores) {
        for (const lk::cuda::MatmulPart& part : parts) lk::cuda::matmul_simt(part, dtype, cols, x, x_stride, n_x, accumulate);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        return;
    }
    const int n_parts = static_cast<int>(parts.size());
    const lk::cuda::MmaScratchSize size = lk::cuda::matmul_bf16_mma_scratch(parts.data(), n_parts, cols, n_x);
    Device<float> partial(std::vector<float>(static_cast<size_t>(std::max<int64_t>(size.floats, 1)), kPoison));
    Device<int> counters(std::vector<int>(static_cast<size_t>(std::max<int64_t>(size.counters, 1)), 0));
    lk::cuda::matmul_bf16_mma(parts.data(), n_parts, cols, x, x_stride, n_x, accumulate, {partial.data, counters.data});
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(counters.read(), std::vector<int>(counters.count, 0)) << "every launch leaves the slice counters at zero";
}

void run_matmul(const MatmulKernel& kernel, const void* w, int32_t dtype, int64_t rows, int64_t cols, const float* x, int64_t x_stride,
                int n_x, float* y, int64_t y_stride, const float* bias) {
    run_matmul_parts(kernel, {lk::cuda::MatmulPart{w, rows, y, y_stride, bias}}, dtype, cols, x, x_stride, n_x, false);
}

// Random weights of `dtype`: the device bytes, and in `w` the values they hold.
std::vector<uint8_t> weight_bytes(std::vector<float>& w, int32_t dtype) {
    std::vector<uint8_t> bytes(dtype == LK_DTYPE_F32 ? w.size() * 4 : w.size() * 2);
    if (dtype == LK_DTYPE_F32) {
        std::memcpy(bytes.data(), w.data(), bytes.size());
        return bytes;
    }
    std::vector<uint16_t> packed(w.size());
    for (size_t i = 0; i < w.size(); ++i) {
        packed[i] = dtype == LK_DTYPE_F16 ? lk_test::float_to_f16(w[i]) : lk_test::float_to_bf16(w[i]);
        w[i] = dtype == LK_DTYPE_F16 ? lk::f16_to_float(packed[i]) : lk::bf16_to_float(packed[i]);
    }
    std::memcpy(bytes.data(), packed.data(), bytes.size());
    return bytes;
}

TEST(CudaMatmul, MatmulMatchesDoubleLoopsForEveryDtypeSizeAndBatch) {
    REQUIRE_CUDA();
    std::mt19937 rng(3);
    for (const MatmulKernel& kernel : kMatmulKernels) {
        for (int32_t dtype : {LK_DTYPE_F32, LK_DTYPE_F16, LK_DTYPE_BF16}) {
            if (kernel.tensor_cores && dtype != LK_DTYPE_BF16) continue;
            // 4100 rows are few enough row tiles that the tensor-core kernel splits the columns.
            for (int64_t rows : {1, 7, 33, 130, 4100}) {
                for (int64_t cols : {1, 7, 8, 33, 256, 264, 1000}) {
                    for (int n_x : {1, 2, 7, 9, 64, 65, 130}) {
                        if (rows * cols * n_x > (int64_t{1} << 27)) continue;  // keeps the double loops quick
                        std::vector<float> w = random_floats(rng, rows * cols);
                        const std::vector<uint8_t> bytes = weight_bytes(w, dtype);
                        std::vector<float> x = random_floats(rng, static_cast<size_t>(n_x) * cols);
                        std::vector<float> bias = random_floats(rng, rows);
                        // BF16 weights multiply inputs rounded to BF16 (the kernels round them themselves).
                        std::vector<float> x_seen = x;
                        if (dtype == LK_DTYPE_BF16)
                            for (float& v : x_seen) v = lk::bf16_to_float(lk_test::float_to_bf16(v));
                        Device<uint8_t> dw(bytes);
                        Device<float> dx(x), db(bias), dy(std::vector<float>(static_cast<size_t>(n_x) * rows, kPoison));
                        run_matmul(kernel, dw.data, dtype, rows, cols, dx.data, cols, n_x, dy.data, rows, db.data);
                        if (HasFatalFailure()) return;
                        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
                        // fp32 summation error bound: about (cols + 1) * 2^-24 * sum |terms|, times 2 for margin;
                        // times 8 on the tensor cores, which may truncate rather than round when they add the
                        // products of one k-step (Fasi et al., "Numerical behavior of NVIDIA tensor cores", 2021).
                        const double margin = kernel.tensor_cores ? 8.0 : 2.0;
                        std::vector<double> want(static_cast<size_t>(n_x) * rows), bound(want.size());
                        for (int j = 0; j < n_x; ++j)
                            for (int64_t r = 0; r < rows; ++r) {
                                double sum = bias[r], magnitude = std::fabs(bias[r]);
                                for (int64_t c = 0; c < cols; ++c) {
                                    const double term = double(w[r * cols + c]) * x_seen[j * cols + c];
                                    sum += term;
                                    magnitude += std::fabs(term);
                                }
                                want[j * rows + r] = sum;
                                bound[j * rows + r] = margin * (cols + 1) * 0x1p-24 * magnitude + 1e-7;
                            }
                        expect_close(dy.read(), want,
                                     std::string(kernel.name) + " matmul dtype " + std::to_string(dtype) + " " + std::to_string(rows) +
                                         "x" + std::to_string(cols) + " n_x " + std::to_string(n_x),
                                     &bound);
                        if (HasFatalFailure()) return;
                    }
                }
            }
        }
    }
}

// The lossless guarantee on the device: an input row's outputs are bit for bit the same alone and in a
// batch of any size, for both kernels (including column-split tensor-core runs and inputs past 64).
TEST(CudaMatmul, MatmulGivesEachInputRowTheSameBitsAloneAndInABatch) {
    REQUIRE_CUDA();
    std::mt19937 rng(8);
    for (const MatmulKernel& kernel : kMatmulKernels) {
        for (int32_t dtype : {LK_DTYPE_F32, LK_DTYPE_F16, LK_DTYPE_BF16}) {
            if (kernel.tensor_cores && dtype != LK_DTYPE_BF16) continue;
            for (int64_t rows : {37, 4100}) {
                for (int64_t cols : {72, 777, 2048}) {
                    std::vector<float> w = random_floats(rng, rows * cols);
                    Device<uint8_t> dw(weight_bytes(w, dtype));
                    const int batch = 130;
                    std::vector<float> x = random_floats(rng, static_cast<size_t>(batch) * cols);
                    Device<float> dx(x);
                    Device<float> all(std::vector<float>(static_cast<size_t>(batch) * rows, kPoison));
                    run_matmul(kernel, dw.data, dtype, rows, cols, dx.data, cols, batch, all.data, rows, nullptr);
                    if (HasFatalFailure()) return;
                    const std::vector<float> together = all.read();
                    for (int j : {0, 1, 63, 64, 129}) {
                        Device<float> one(std::vector<float>(static_cast<size_t>(rows), kPoison));
                        run_matmul(kernel, dw.data, dtype, rows, cols, dx.data + static_cast<int64_t>(j) * cols, cols, 1, one.data, rows, nullptr);
                        if (HasFatalFailure()) return;
                        const std::vector<float> alone = one.read();
                        for (int64_t r = 0; r < rows; ++r)
                            ASSERT_EQ(std::memcmp(&alone[r], &together[static_cast<size_t>(j) * rows + r], sizeof(float)), 0)
                                << kernel.name << " dtype " << dtype << " " << rows << "x" << cols << " input " << j << " row " << r
                                << ": " << alone[r] << " alone, " << together[static_cast<size_t>(j) * rows + r] << " in the batch";
                    }
                }
            }
        }
    }
}

// The tensor-core kernel's staged inputs (more than 8 inputs: each step's inputs go through shared
// memory once per block), on shapes small enough for compute-sanitizer's racecheck and memcheck:
// ragged columns (scalar staging), 16-byte columns, a partial last tile, and a second 64-input launch.
TEST(CudaMatmul, TensorCoreMatmulStagesManyInputsExactly) {
    REQUIRE_CUDA();
    std::mt19937 rng(21);
    const MatmulKernel& mma = kMatmulKernels[1];
    for (int64_t rows : {37, 130}) {
        for (int64_t cols : {72, 777}) {
            for (int n_x : {9, 64, 70}) {
                std::vector<float> w = random_floats(rng, rows * cols);
                const std::vector<uint8_t> bytes = weight_bytes(w, LK_DTYPE_BF16);
                std::vector<float> x = random_floats(rng, static_cast<size_t>(n_x) * cols);
                Device<uint8_t> dw(bytes);
                Device<float> dx(x), dy(std::vector<float>(static_cast<size_t>(n_x) * rows, kPoison));
                run_matmul(mma, dw.data, LK_DTYPE_BF16, rows, cols, dx.data, cols, n_x, dy.data, rows, nullptr);
                if (HasFatalFailure()) return;
                std::vector<double> want(static_cast<size_t>(n_x) * rows), bound(want.size());
                for (int j = 0; j < n_x; ++j)
                    for (int64_t r = 0; r < rows; ++r) {
                        double sum = 0, magnitude = 0;
                        for (int64_t c = 0; c < cols; ++c) {
                            const double term = double(w[r * cols + c]) * lk::bf16_to_float(lk_test::float_to_bf16(x[j * cols + c]));
                            sum += term;
                            magnitude += std::fabs(term);
                        }
                        want[j * rows + r] = sum;
                        bound[j * rows + r] = 8.0 * (cols + 1) * 0x1p-24 * magnitude + 1e-7;
                    }
                expect_close(dy.read(), want, "mma " + std::to_string(rows) + "x" + std::to_string(cols) + " n_x " + std::to_string(n_x),
                             &bound);
                if (HasFatalFailure()) return;
            }
        }
    }
}

// Stacked parts (q, k and v; gate and up) in one launch: each part matches the double loops, an input's
// bits are the same alone and in the batch, and accumulate adds exactly the stored result to what y held
// (the residual add), for both kernels; the tensor-core runs of 4100 + 37 + 130 rows split the columns.
TEST(CudaMatmul, StackedPartsAndResidualAddsStayExactAndBatchInvariant) {
    REQUIRE_CUDA();
    std::mt19937 rng(12);
    const int64_t part_rows[] = {4100, 37, 130};
    const int32_t dtype = LK_DTYPE_BF16;
    for (const MatmulKernel& kernel : kMatmulKernels) {
        for (int64_t cols : {72, 777, 2048}) {
            for (int n_x : {1, 5, 9, 70}) {
                std::vector<float> x = random_floats(rng, static_cast<size_t>(n_x) * cols);
                std::vector<float> x_seen = x;
                for (float& v : x_seen) v = lk::bf16_to_float(lk_test::float_to_bf16(v));
                Device<float> dx(x);
                std::vector<std::vector<float>> w(3), bias(3);
                std::vector<std::unique_ptr<Device<uint8_t>>> weights;
                std::vector<std::unique_ptr<Device<float>>> biases, outputs, singles;
                std::vector<lk::cuda::MatmulPart> parts, single_parts;
                for (int p = 0; p < 3; ++p) {
                    const int64_t rows = part_rows[p];
                    w[p] = random_floats(rng, rows * cols);
                    weights.push_back(std::make_unique<Device<uint8_t>>(weight_bytes(w[p], dtype)));
                    bias[p] = random_floats(rng, rows);
                    biases.push_back(std::make_unique<Device<float>>(bias[p]));
                    outputs.push_back(std::make_unique<Device<float>>(std::vector<float>(static_cast<size_t>(n_x) * rows, kPoison)));
                    singles.push_back(std::make_unique<Device<float>>(std::vector<float>(static_cast<size_t>(rows), kPoison)));
                    parts.push_back({weights.back()->data, rows, outputs.back()->data, rows, biases.back()->data});
                    single_parts.push_back({weights.back()->data, rows, singles.back()->data, rows, biases.back()->data});
                }
                run_matmul_parts(kernel, parts, dtype, cols, dx.data, cols, n_x, false);
                if (HasFatalFailure()) return;
                const int last = n_x - 1;
                run_matmul_parts(kernel, single_parts, dtype, cols, dx.data + static_cast<int64_t>(last) * cols, cols, 1, false);
                if (HasFatalFailure()) return;
                const std::string what = std::string(kernel.name) + ", " + std::to_string(cols) + " columns, n_x " + std::to_string(n_x);
                for (int p = 0; p < 3; ++p) {
                    const int64_t rows = part_rows[p];
                    const std::vector<float> got = outputs[p]->read(), alone = singles[p]->read();
                    std::vector<double> want(got.size()), bound(got.size());
                    for (int j = 0; j < n_x; ++j)
                        for (int64_t r = 0; r < rows; ++r) {
                            double sum = bias[p][r], magnitude = std::fabs(bias[p][r]);
                            for (int64_t c = 0; c < cols; ++c) {
                                const double term = double(w[p][r * cols + c]) * x_seen[j * cols + c];
                                sum += term;
                                magnitude += std::fabs(term);
                            }
                            want[j * rows + r] = sum;
                            bound[j * rows + r] = 8.0 * (cols + 1) * 0x1p-24 * magnitude + 1e-7;
                        }
                    expect_close(got, want, what + ", part " + std::to_string(p), &bound);
                    if (HasFatalFailure()) return;
                    ASSERT_EQ(std::memcmp(alone.data(), got.data() + static_cast<size_t>(last) * rows, rows * sizeof(float)), 0)
                        << what << ", part " << p << ": the last input alone differs from its row in the batch";
                }
                // Residual, every part: y = r + (W x + b), the fp32 add a separate kernel would do, on the
                // same stack (so the same column slices) as the stored results above.
                std::vector<std::vector<float>> stored, residual;
                std::vector<std::unique_ptr<Device<float>>> targets;
                std::vector<lk::cuda::MatmulPart> accumulating = parts;
                for (int p = 0; p < 3; ++p) {
                    stored.push_back(outputs[p]->read());
                    residual.push_back(random_floats(rng, stored.back().size()));
                    targets.push_back(std::make_unique<Device<float>>(residual.back()));
                    accumulating[p].y = targets.back()->data;
                }
                run_matmul_parts(kernel, accumulating, dtype, cols, dx.data, cols, n_x, true);
                if (HasFatalFailure()) return;
                for (int p = 0; p < 3; ++p) {
                    const std::vector<float> got = targets[p]->read();
                    for (size_t i = 0; i < got.size(); ++i) {
                        const float want = residual[p][i] + stored[p][i];
                        ASSERT_EQ(std::memcmp(&want, &got[i], sizeof(float)), 0) << what << ", part " << p << ", residual element " << i;
                    }
                }
            }
        }
    }
}

}  // namespace
