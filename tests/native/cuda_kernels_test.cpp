// Each CUDA kernel family against a CPU reference on random inputs (never zeros), odd sizes, with the
// outputs poisoned (NaN) before each run so that unwritten elements fail. Built only with LK_CUDA;
// skipped where no device exists. Tolerances: fp32 sums 1e-5 relative (+1e-5 absolute); the same weight
// values on both sides, so BF16/F16 weights need no wider bound (BF16 weights' inputs are rounded to BF16
// in the references too).
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "common/half.h"
#include "common/sampling.h"
#include "common/tree.h"
#include "cpu/kernels.h"
#include "cpu/vector_ops.h"
#include "cuda/attention.cuh"
#include "cuda/elementwise.cuh"
#include "cuda/matmul.cuh"
#include "cuda/matmul_mma.cuh"
#include "cuda/rope.cuh"
#include "cuda/sampling.cuh"
#include "cuda/verify.cuh"
#include "sampling_cases.h"
#include "test_model.h"

namespace {

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

std::vector<float> random_floats(std::mt19937& rng, size_t n, float lo = -1.0f, float hi = 1.0f) {
    std::uniform_real_distribution<float> dist(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) {
        do x = dist(rng); while (x == 0.0f);
    }
    return v;
}

const float kPoison = std::numeric_limits<float>::quiet_NaN();

// |got - want| <= bound[i] (default 1e-5 + 1e-5 |want|).
void expect_close(const std::vector<float>& got, const std::vector<double>& want, const std::string& what,
                  const std::vector<double>* bound = nullptr) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
        ASSERT_FALSE(std::isnan(got[i])) << what << ": element " << i << " not written";
        const double tolerance = bound ? (*bound)[i] : 1e-5 + 1e-5 * std::fabs(want[i]);
        ASSERT_NEAR(got[i], want[i], tolerance) << what << ": element " << i;
    }
}

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

TEST(CudaKernels, MatmulMatchesDoubleLoopsForEveryDtypeSizeAndBatch) {
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
TEST(CudaKernels, MatmulGivesEachInputRowTheSameBitsAloneAndInABatch) {
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
TEST(CudaKernels, TensorCoreMatmulStagesManyInputsExactly) {
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
TEST(CudaKernels, StackedPartsAndResidualAddsStayExactAndBatchInvariant) {
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

TEST(CudaKernels, RowAndElementwiseKernelsMatchTheCpu) {
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

TEST(CudaKernels, ArgmaxVerificationAndCompactionMatchTheHostLogic) {
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

// RoPE fused with the cache write, alone: HF rotate-half with the float angle position * inv_freq (as
// HF computes it), keys and values written to the batch's cache slots and nowhere else.
TEST(CudaKernels, RopeAndStoreRotateHalfAndWriteOnlyTheBatchSlots) {
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

// Tree attention alone, against a double softmax over each node's visible positions (the committed
// prefix and the node's ancestors with itself), for both kernels; scratch (re-poisoned before every
// launch) and output poisoned; n_past read from device memory and a smaller batch give the same bits.
struct AttentionCase {
    int heads, kv_heads, head_dim;
    int32_t n_ctx, n_past;
    bool chain;
    int n;
};

void poison(Device<float>& buffer) { ASSERT_EQ(cudaMemset(buffer.data, 0xFF, buffer.count * sizeof(float)), cudaSuccess); }

void check_tree_attention(const AttentionCase& c, std::mt19937& rng) {
    const int n = c.n, slots = c.n_past + n;
    const int64_t q_dim = int64_t{c.heads} * c.head_dim, kv_dim = int64_t{c.kv_heads} * c.head_dim;
    std::vector<int32_t> tokens(n, 1), parents(n, -1);
    for (int i = 1; i < n; ++i) parents[i] = c.chain ? i - 1 : std::uniform_int_distribution<int>(0, i - 1)(rng);
    lk::Tree tree;
    tree.assign(lk_batch{tokens.data(), c.chain ? nullptr : parents.data(), n, LK_LOGITS_ALL}, 4, n);

    std::vector<int32_t> depths(n), offsets(n), ancestors;
    for (int i = 0; i < n; ++i) {
        depths[i] = tree.depth(i);
        offsets[i] = static_cast<int32_t>(ancestors.size());
        ancestors.insert(ancestors.end(), tree.visible(i), tree.visible(i) + tree.visible_count(i));
    }
    // Peaked scores (queries up to +-4), so that one wrongly included or missed position shows.
    std::vector<float> q = random_floats(rng, n * q_dim, -4.0f, 4.0f), keys = random_floats(rng, slots * kv_dim),
                       values = random_floats(rng, slots * kv_dim);
    std::vector<double> want(n * q_dim), bound(n * q_dim);
    const int group = c.heads / c.kv_heads;
    for (int node = 0; node < n; ++node) {
        std::vector<int64_t> visible;
        for (int64_t p = 0; p < c.n_past; ++p) visible.push_back(p);
        for (int j = 0; j < tree.visible_count(node); ++j) visible.push_back(c.n_past + tree.visible(node)[j]);
        for (int h = 0; h < c.heads; ++h) {
            const float* qh = q.data() + (int64_t{node} * c.heads + h) * c.head_dim;
            const int64_t kv_offset = int64_t{h / group} * c.head_dim;
            std::vector<double> score(visible.size());
            double top = -1e300, total = 0;
            for (size_t s = 0; s < visible.size(); ++s) {
                double dot = 0;
                for (int t = 0; t < c.head_dim; ++t) dot += double(qh[t]) * keys[visible[s] * kv_dim + kv_offset + t];
                score[s] = dot / std::sqrt(double(c.head_dim));
                top = std::max(top, score[s]);
            }
            for (double& e : score) total += (e = std::exp(e - top));
            for (int t = 0; t < c.head_dim; ++t) {
                double sum = 0;
                for (size_t s = 0; s < visible.size(); ++s) sum += score[s] * values[visible[s] * kv_dim + kv_offset + t];
                const int64_t at = (int64_t{node} * c.heads + h) * c.head_dim + t;
                want[at] = sum / total;
                // fp32 sums: the output's over the visible positions and each score's over head_dim
                // terms of size up to 4 (worst cases, linear in the term counts).
                bound[at] = 1e-5 + 2.0 * static_cast<double>(visible.size()) * 0x1p-24 + 4.0 * c.head_dim * 0x1p-24;
            }
        }
    }
    for (lk::cuda::AttentionKernel kernel : {lk::cuda::AttentionKernel::PerNode, lk::cuda::AttentionKernel::SharedPrefix}) {
        const std::string what = std::string(kernel == lk::cuda::AttentionKernel::PerNode ? "per-node" : "shared-prefix") +
                                 " attention heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " head_dim " +
                                 std::to_string(c.head_dim) + " n_past " + std::to_string(c.n_past) + (c.chain ? " chain" : " tree");
        const lk::cuda::AttentionPlan plan = lk::cuda::plan_attention(c.n_ctx, c.head_dim, kernel);
        lk::cuda::attention_prepare(plan, c.head_dim);
        Device<float> dq(q), dkeys(keys), dvalues(values), dout(std::vector<float>(n * q_dim, kPoison)),
            dscratch(std::vector<float>(lk::cuda::attention_scratch_floats(plan, n, c.heads, c.head_dim), kPoison));
        Device<int32_t> ddepths(depths), doffsets(offsets), dancestors(ancestors);
        const lk::cuda::TreeView view{ddepths.data, doffsets.data, c.chain ? nullptr : dancestors.data, n, tree.max_depth()};
        lk::cuda::tree_attention(dq.data, dkeys.data, dvalues.data, c.n_past, nullptr, view, c.heads, c.kv_heads, c.head_dim,
                                 plan, dscratch.data, dout.data);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const std::vector<float> host_result = dout.read();
        // The same launch reading n_past from device memory (as CUDA graphs do) gives the same bits.
        Device<int32_t> dpast(std::vector<int32_t>{c.n_past});
        Device<float> dout_device(std::vector<float>(n * q_dim, kPoison));
        poison(dscratch);
        lk::cuda::tree_attention(dq.data, dkeys.data, dvalues.data, c.n_past, dpast.data, view, c.heads, c.kv_heads, c.head_dim,
                                 plan, dscratch.data, dout_device.data);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const std::vector<float> device_result = dout_device.read();
        ASSERT_EQ(std::memcmp(host_result.data(), device_result.data(), host_result.size() * sizeof(float)), 0)
            << what << ": n_past from device memory changed the result";
        // The first three nodes alone (a tree of their own) get the bits they get in the whole batch.
        const int few = 3;
        int few_depth = 0;
        for (int node = 0; node < few; ++node) few_depth = std::max(few_depth, depths[node]);
        const lk::cuda::TreeView few_view{ddepths.data, doffsets.data, c.chain ? nullptr : dancestors.data, few, few_depth};
        Device<float> dout_few(std::vector<float>(n * q_dim, kPoison));
        poison(dscratch);
        lk::cuda::tree_attention(dq.data, dkeys.data, dvalues.data, c.n_past, nullptr, few_view, c.heads, c.kv_heads, c.head_dim,
                                 plan, dscratch.data, dout_few.data);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        ASSERT_EQ(std::memcmp(dout_few.read().data(), host_result.data(), few * q_dim * sizeof(float)), 0)
            << what << ": a node's result depends on the rest of the batch";
        expect_close(host_result, want, what, &bound);
        if (::testing::Test::HasFatalFailure()) return;
    }
}

// Contexts spanning one to 27 position chunks, GQA 1/2/4/8, head dims 8 to 256, chains and random trees
// of 9 and 70 nodes (more than a shared-prefix block takes at head_dim 128).
TEST(CudaKernels, TreeAttentionMatchesASoftmaxOverEachNodesVisiblePositions) {
    REQUIRE_CUDA();
    std::mt19937 rng(33);
    for (const AttentionCase& c : {AttentionCase{4, 4, 8, 512, 0, false, 9}, AttentionCase{8, 2, 64, 5000, 1, false, 9},
                                   AttentionCase{8, 8, 64, 5000, 700, true, 9}, AttentionCase{8, 1, 128, 5000, 4000, false, 9},
                                   AttentionCase{2, 2, 256, 1024, 300, false, 9}, AttentionCase{4, 2, 128, 2048, 600, false, 70},
                                   AttentionCase{4, 4, 128, 2048, 130, true, 70}}) {
        check_tree_attention(c, rng);
        if (HasFatalFailure()) return;
    }
}

// The same on two small cases (a tree and a chain across chunk and tile boundaries), for compute-sanitizer.
TEST(CudaKernels, TreeAttentionOfSmallBatchesForTheSanitizers) {
    REQUIRE_CUDA();
    std::mt19937 rng(34);
    for (const AttentionCase& c : {AttentionCase{4, 2, 16, 512, 70, false, 9}, AttentionCase{2, 2, 8, 300, 130, true, 12}}) {
        check_tree_attention(c, rng);
        if (HasFatalFailure()) return;
    }
}

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

TEST(CudaKernels, DeviceSamplerPicksTheCpuSamplersToken) {
    REQUIRE_CUDA();
    EXPECT_GT(compare_device_sampler(120, true), 500);
}

// The same on a few small trees, quick enough for compute-sanitizer's racecheck and memcheck.
TEST(CudaKernels, DeviceSamplerOfSmallTreesForTheSanitizers) {
    REQUIRE_CUDA();
    EXPECT_GT(compare_device_sampler(12, false), 20);
}

}  // namespace
