// The Q8_0 matrix kernels against a double loop over the dequantized weights and inputs, and bit for bit
// the same for an input row alone or in a batch; the quantizer against llama.cpp's rounding rules, and
// Q8_0 tensors through the C API.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/q8_0.h"
#include "cpu/kernels.h"
#include "cpu_kernels.h"
#include "test_model.h"

namespace {

using lk::BlockQ8_0;
using lk::cpu::MatmulArgs;
using lk::cpu::MatmulKernel;

std::vector<MatmulKernel> kernels() { return lk_test::cpu_kernels(); }

// Random blocks with scales over several magnitudes and the full byte range, -128 included (files may
// hold it even though llama.cpp's quantizer never writes it).
std::vector<BlockQ8_0> random_blocks(int64_t count, std::mt19937& rng) {
    std::vector<BlockQ8_0> blocks(count);
    std::uniform_int_distribution<int> byte(-128, 127);
    std::uniform_real_distribution<float> scale(-3.0f, 1.0f);
    for (BlockQ8_0& b : blocks) {
        b.d = lk::float_to_f16(std::pow(10.0f, scale(rng)) / 127.0f);
        for (int8_t& q : b.qs) q = static_cast<int8_t>(byte(rng));
    }
    return blocks;
}

double dot_reference(const BlockQ8_0* w, const BlockQ8_0* x, int64_t blocks) {
    double sum = 0;
    for (int64_t i = 0; i < blocks * lk::kQ8Block; ++i) sum += double(lk::q8_0_value(w, i)) * lk::q8_0_value(x, i);
    return sum;
}

TEST(Q8_0, KernelsMatchADoubleLoopOverTheDequantizedValues) {
    std::mt19937 rng(8);
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    const float poison = std::numeric_limits<float>::quiet_NaN();
    for (MatmulKernel kernel : kernels()) {
        for (int64_t rows : {1, 3, 17}) {
            for (int64_t cols : {32, 96, 2048}) {
                for (int32_t n_x : {1, 3, 4, 5, 9}) {
                    const int64_t blocks = cols / lk::kQ8Block;
                    std::vector<BlockQ8_0> w = random_blocks(rows * blocks, rng);
                    std::vector<float> x(n_x * cols);
                    for (float& v : x) v = dist(rng);
                    std::vector<BlockQ8_0> xq(n_x * blocks);
                    for (int32_t j = 0; j < n_x; ++j) lk::quantize_row_q8_0(x.data() + j * cols, cols, xq.data() + j * blocks);
                    for (bool accumulate : {false, true}) {
                        const int64_t y_stride = rows + 1;
                        std::vector<float> y(n_x * y_stride, accumulate ? 0.5f : poison);
                        MatmulArgs args{w.data(), LK_DTYPE_Q8_0, cols, x.data(), cols, y.data(), y_stride, n_x, accumulate, nullptr, xq.data()};
                        kernel(args, 0, rows / 2);
                        kernel(args, rows / 2, rows);
                        for (int32_t j = 0; j < n_x; ++j) {
                            for (int64_t r = 0; r < rows; ++r) {
                                const double want = dot_reference(w.data() + r * blocks, xq.data() + j * blocks, blocks) + (accumulate ? 0.5 : 0.0);
                                ASSERT_NEAR(y[j * y_stride + r], want, 1e-4 + 1e-5 * std::fabs(want))
                                    << "rows " << rows << " cols " << cols << " n_x " << n_x << " at (" << j << ", " << r << ")";
                            }
                            if (!accumulate) {
                                ASSERT_TRUE(std::isnan(y[j * y_stride + rows])) << "wrote past the row range";
                            }
                        }
                    }
                }
            }
        }
    }
}

// Lossless decoding rests on this: an input row's outputs do not depend on the other rows of the call.
TEST(Q8_0, EachInputRowGivesBitIdenticalResultsAloneAndInABatch) {
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (MatmulKernel kernel : kernels()) {
        const int64_t rows = 21, cols = 768, blocks = cols / lk::kQ8Block;
        std::vector<BlockQ8_0> w = random_blocks(rows * blocks, rng);
        std::vector<float> x(12 * cols);
        for (float& v : x) v = dist(rng);
        std::vector<BlockQ8_0> xq(12 * blocks);
        for (int j = 0; j < 12; ++j) lk::quantize_row_q8_0(x.data() + j * cols, cols, xq.data() + j * blocks);
        for (int32_t n_x : {2, 5, 8, 12}) {
            std::vector<float> batch(n_x * rows);
            kernel(MatmulArgs{w.data(), LK_DTYPE_Q8_0, cols, x.data(), cols, batch.data(), rows, n_x, false, nullptr, xq.data()}, 0, 7);
            kernel(MatmulArgs{w.data(), LK_DTYPE_Q8_0, cols, x.data(), cols, batch.data(), rows, n_x, false, nullptr, xq.data()}, 7, rows);
            for (int32_t j = 0; j < n_x; ++j) {
                std::vector<float> alone(rows);
                kernel(MatmulArgs{w.data(), LK_DTYPE_Q8_0, cols, x.data() + j * cols, cols, alone.data(), rows, 1, false, nullptr,
                                  xq.data() + j * blocks},
                       0, rows);
                for (int64_t r = 0; r < rows; ++r) ASSERT_EQ(batch[j * rows + r], alone[r]) << "n_x " << n_x << " input " << j << " row " << r;
            }
        }
    }
}

// llama.cpp's quantize_row_q8_0_ref: d = max|x| / 127 as a half, q = roundf(x / d), halves away from zero.
TEST(Q8_0, QuantizingFollowsLlamaCppsReferenceRounding) {
    std::vector<float> x(32, 0.0f);
    x[0] = 127.0f;   // d = 1
    x[1] = 2.5f;     // a tie: away from zero, 3
    x[2] = -2.5f;    // -3
    x[3] = 0.49f;
    x[4] = -127.0f;
    BlockQ8_0 block;
    lk::quantize_row_q8_0(x.data(), 32, &block);
    EXPECT_EQ(lk::f16_to_float(block.d), 1.0f);
    EXPECT_EQ(block.qs[0], 127);
    EXPECT_EQ(block.qs[1], 3);
    EXPECT_EQ(block.qs[2], -3);
    EXPECT_EQ(block.qs[3], 0);
    EXPECT_EQ(block.qs[4], -127);
    std::vector<float> zeros(32, 0.0f);
    lk::quantize_row_q8_0(zeros.data(), 32, &block);
    EXPECT_EQ(block.d, 0);
    for (int8_t q : block.qs) EXPECT_EQ(q, 0);
}

TEST(Q8_0, ANonFiniteInputMakesItsBlockNaN) {
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        std::vector<float> x(64, 0.25f);
        x[40] = bad;
        BlockQ8_0 blocks[2];
        lk::quantize_row_q8_0(x.data(), 64, blocks);
        EXPECT_EQ(blocks[0].d, lk::float_to_f16(0.25f / 127.0f)) << "the other block is untouched";
        EXPECT_TRUE(std::isnan(lk::f16_to_float(blocks[1].d))) << "the block holding " << bad;
    }
}

TEST(Q8_0, TensorsAreMatricesOfWholeBlocksWithFiniteScales) {
    lk_model_params p = lk_test::small_params(64, 4, 2, 1, 40);
    lk_model* raw = nullptr;
    ASSERT_EQ(lk_model_init(&p, &raw), LK_OK);
    std::unique_ptr<lk_model, lk_test::ModelDeleter> model(raw);
    std::mt19937 rng(3);
    std::vector<BlockQ8_0> blocks = random_blocks(p.vocab_size * 2, rng);
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, LK_DTYPE_Q8_0, p.vocab_size, 64, blocks.data()), LK_OK) << lk_last_error();
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_OUTPUT_NORM, 0, LK_DTYPE_Q8_0, 64, 1, blocks.data()), LK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(lk_last_error()).find("Q8_0 is for matrices"), std::string::npos) << lk_last_error();
    blocks[5].d = 0x7C00;  // +inf
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, LK_DTYPE_Q8_0, p.vocab_size, 64, blocks.data()), LK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(lk_last_error()).find("block scale at element 160 (row 2, column 32)"), std::string::npos) << lk_last_error();
    lk_model_params odd = lk_test::small_params(24, 4, 2, 1, 40);
    ASSERT_EQ(lk_model_init(&odd, &raw), LK_OK);
    std::unique_ptr<lk_model, lk_test::ModelDeleter> odd_model(raw);
    EXPECT_EQ(lk_model_set_tensor(odd_model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, LK_DTYPE_Q8_0, odd.vocab_size, 24, blocks.data()), LK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(lk_last_error()).find("not a multiple of 32"), std::string::npos) << lk_last_error();
}

}  // namespace
