// Q4_0, Q5_0 and the k-quants (Q4_K, Q5_K, Q6_K): blocks packed here the way llama.cpp's quantizers write them
// decode to the values they were packed from; every kernel against a double loop over the dequantized
// weights and inputs; the scalar and AVX2 k-quant kernels bit for bit equal; an input row's results the
// same alone and in a batch; Q8_K quantizing as llama.cpp's reference does; tensors through the C API.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/quant_types.h"
#include "cpu/kernels.h"
#include "cpu_kernels.h"
#include "test_model.h"

namespace {

using lk::cpu::MatmulArgs;
using lk::cpu::MatmulKernel;

// A block's meaning in plain integers: value i = d * scale[i / group] * q[i] - dmin * min[i / group].
struct Plain {
    float d = 0, dmin = 0;
    std::vector<int> q, scale, min;
    int group = 32;
    float value(int i) const {
        const int g = i / group;
        return d * static_cast<float>(scale[g]) * static_cast<float>(q[i]) - (min.empty() ? 0.0f : dmin * static_cast<float>(min[g]));
    }
};

// ---- packers, written from llama.cpp's quantize_row_*_ref layouts (the dequantizers read the other way) ----

lk::BlockQ4_0 pack_q4_0(const Plain& p) {  // q in -8..7, one scale of 1
    lk::BlockQ4_0 b{};
    b.d = lk::float_to_f16(p.d);
    for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>((p.q[j] + 8) | ((p.q[j + 16] + 8) << 4));
    return b;
}

lk::BlockQ5_0 pack_q5_0(const Plain& p) {  // q in -16..15
    lk::BlockQ5_0 b{};
    b.d = lk::float_to_f16(p.d);
    uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
        const int x0 = p.q[j] + 16, x1 = p.q[j + 16] + 16;
        qh |= static_cast<uint32_t>((x0 & 0x10) >> 4) << j;
        qh |= static_cast<uint32_t>((x1 & 0x10) >> 4) << (j + 16);
        b.qs[j] = static_cast<uint8_t>((x0 & 0x0F) | ((x1 & 0x0F) << 4));
    }
    std::memcpy(b.qh, &qh, sizeof qh);
    return b;
}

void pack_scales_mins(const Plain& p, uint8_t* scales) {
    std::memset(scales, 0, 12);
    for (int j = 0; j < 8; ++j) {
        const int ls = p.scale[j], lm = p.min[j];
        if (j < 4) {
            scales[j] = static_cast<uint8_t>(ls);
            scales[j + 4] = static_cast<uint8_t>(lm);
        } else {
            scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
            scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
            scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
        }
    }
}

lk::BlockQ4_K pack_q4_k(const Plain& p) {  // q in 0..15, scales and mins in 0..63
    lk::BlockQ4_K b{};
    b.d = lk::float_to_f16(p.d);
    b.dmin = lk::float_to_f16(p.dmin);
    pack_scales_mins(p, b.scales);
    for (int j = 0; j < 256; j += 64)
        for (int l = 0; l < 32; ++l) b.qs[j / 2 + l] = static_cast<uint8_t>(p.q[j + l] | (p.q[j + l + 32] << 4));
    return b;
}

lk::BlockQ5_K pack_q5_k(const Plain& p) {  // q in 0..31
    lk::BlockQ5_K b{};
    b.d = lk::float_to_f16(p.d);
    b.dmin = lk::float_to_f16(p.dmin);
    pack_scales_mins(p, b.scales);
    uint8_t m1 = 1, m2 = 2;
    for (int n = 0; n < 256; n += 64) {
        for (int j = 0; j < 32; ++j) {
            int l1 = p.q[n + j], l2 = p.q[n + j + 32];
            if (l1 > 15) { l1 -= 16; b.qh[j] |= m1; }
            if (l2 > 15) { l2 -= 16; b.qh[j] |= m2; }
            b.qs[n / 2 + j] = static_cast<uint8_t>(l1 | (l2 << 4));
        }
        m1 = static_cast<uint8_t>(m1 << 2);
        m2 = static_cast<uint8_t>(m2 << 2);
    }
    return b;
}

lk::BlockQ6_K pack_q6_k(const Plain& p) {  // q in -32..31, sixteen signed scales
    lk::BlockQ6_K b{};
    b.d = lk::float_to_f16(p.d);
    for (int g = 0; g < 16; ++g) b.scales[g] = static_cast<int8_t>(p.scale[g]);
    for (int j = 0; j < 256; j += 128) {
        uint8_t* ql = b.ql + j / 2;
        uint8_t* qh = b.qh + j / 4;
        for (int l = 0; l < 32; ++l) {
            const int L0 = p.q[j + l] + 32, L1 = p.q[j + l + 32] + 32, L2 = p.q[j + l + 64] + 32, L3 = p.q[j + l + 96] + 32;
            ql[l] = static_cast<uint8_t>((L0 & 0xF) | ((L2 & 0xF) << 4));
            ql[l + 32] = static_cast<uint8_t>((L1 & 0xF) | ((L3 & 0xF) << 4));
            qh[l] = static_cast<uint8_t>((L0 >> 4) | ((L1 >> 4) << 2) | ((L2 >> 4) << 4) | ((L3 >> 4) << 6));
        }
    }
    return b;
}

// ---- random weights of each type, as plain integers and as packed rows ----

struct Type {
    int32_t dtype;
    const char* name;
    int elements;  // per block
};
const Type kTypes[] = {{LK_DTYPE_Q4_0, "Q4_0", 32}, {LK_DTYPE_Q5_0, "Q5_0", 32}, {LK_DTYPE_Q4_K, "Q4_K", 256}, {LK_DTYPE_Q5_K, "Q5_K", 256}, {LK_DTYPE_Q6_K, "Q6_K", 256}};

Plain random_plain(int32_t dtype, std::mt19937& rng) {
    std::uniform_real_distribution<float> magnitude(-3.0f, 0.0f);
    auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    Plain p;
    // Scales rounded to halves first, so the plain value is exactly what the block holds.
    p.d = lk::f16_to_float(lk::float_to_f16(std::pow(10.0f, magnitude(rng)) / 16.0f));
    p.dmin = lk::f16_to_float(lk::float_to_f16(std::pow(10.0f, magnitude(rng)) / 16.0f));
    const int n = lk::block_elements(dtype) == 32 ? 32 : 256;
    switch (dtype) {
        case LK_DTYPE_Q4_0:
        case LK_DTYPE_Q5_0:
            for (int i = 0; i < n; ++i) p.q.push_back(dtype == LK_DTYPE_Q4_0 ? uniform(-8, 7) : uniform(-16, 15));
            p.scale = {1};
            break;
        case LK_DTYPE_Q4_K:
        case LK_DTYPE_Q5_K:
            for (int i = 0; i < n; ++i) p.q.push_back(uniform(0, dtype == LK_DTYPE_Q4_K ? 15 : 31));
            for (int j = 0; j < 8; ++j) {
                p.scale.push_back(uniform(0, 63));
                p.min.push_back(uniform(0, 63));
            }
            break;
        default:
            for (int i = 0; i < n; ++i) p.q.push_back(uniform(-32, 31));
            for (int g = 0; g < 16; ++g) p.scale.push_back(uniform(-128, 127));
            p.group = 16;
            break;
    }
    return p;
}

// rows x cols of random blocks: the packed bytes and every value as a float.
struct Matrix {
    std::vector<unsigned char> bytes;
    std::vector<float> values;
};

Matrix random_matrix(int32_t dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
    Matrix m;
    const int64_t n = lk::block_elements(dtype), blocks = rows * cols / n;
    m.bytes.resize(blocks * lk::block_bytes(dtype));
    for (int64_t b = 0; b < blocks; ++b) {
        const Plain p = random_plain(dtype, rng);
        unsigned char* at = m.bytes.data() + b * lk::block_bytes(dtype);
        switch (dtype) {
            case LK_DTYPE_Q4_0: { const lk::BlockQ4_0 x = pack_q4_0(p); std::memcpy(at, &x, sizeof x); break; }
            case LK_DTYPE_Q5_0: { const lk::BlockQ5_0 x = pack_q5_0(p); std::memcpy(at, &x, sizeof x); break; }
            case LK_DTYPE_Q4_K: { const lk::BlockQ4_K x = pack_q4_k(p); std::memcpy(at, &x, sizeof x); break; }
            case LK_DTYPE_Q5_K: { const lk::BlockQ5_K x = pack_q5_k(p); std::memcpy(at, &x, sizeof x); break; }
            default: { const lk::BlockQ6_K x = pack_q6_k(p); std::memcpy(at, &x, sizeof x); break; }
        }
        for (int i = 0; i < n; ++i) m.values.push_back(p.value(i));
    }
    return m;
}

// Inputs quantized as the type's products take them, and their values as floats.
struct Inputs {
    std::vector<lk::BlockQ8_0> q8;
    std::vector<lk::BlockQ8_K> q8k;
    std::vector<float> values;
};

Inputs quantize_inputs(int32_t dtype, const std::vector<float>& x, int32_t n_x, int64_t cols) {
    Inputs in;
    in.values.resize(x.size());
    if (lk::takes_q8_k_inputs(dtype)) {
        in.q8k.resize(n_x * cols / 256);
        for (int32_t j = 0; j < n_x; ++j) lk::quantize_row_q8_k(x.data() + j * cols, cols, in.q8k.data() + j * cols / 256);
        for (int64_t i = 0; i < n_x * cols; ++i) in.values[i] = in.q8k[i / 256].d * static_cast<float>(in.q8k[i / 256].qs[i % 256]);
    } else {
        in.q8.resize(n_x * cols / 32);
        for (int32_t j = 0; j < n_x; ++j) lk::quantize_row_q8_0(x.data() + j * cols, cols, in.q8.data() + j * cols / 32);
        for (int64_t i = 0; i < n_x * cols; ++i) in.values[i] = lk::q8_0_value(in.q8.data(), i);
    }
    return in;
}

MatmulArgs args_for(int32_t dtype, const Matrix& w, int64_t cols, const std::vector<float>& x, const Inputs& in, int64_t x_row,
                    float* y, int64_t y_stride, int32_t n_x, bool accumulate = false) {
    const int64_t offset = x_row * cols;
    return MatmulArgs{w.bytes.data(), dtype, cols, x.data() + offset, cols, y, y_stride, n_x, accumulate, nullptr,
                      in.q8.empty() ? nullptr : in.q8.data() + offset / 32, in.q8k.empty() ? nullptr : in.q8k.data() + offset / 256};
}

std::vector<float> random_floats(int64_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
    std::vector<float> x(n);
    for (float& v : x) v = dist(rng);
    return x;
}

TEST(KQuants, PackedBlocksDequantizeToTheValuesTheyWerePackedFrom) {
    std::mt19937 rng(21);
    for (const Type& t : kTypes) {
        for (int trial = 0; trial < 200; ++trial) {
            const Matrix m = random_matrix(t.dtype, 1, t.elements, rng);
            std::vector<float> out(t.elements);
            lk::dequantize_row(t.dtype, m.bytes.data(), t.elements, out.data());
            for (int i = 0; i < t.elements; ++i) ASSERT_FLOAT_EQ(out[i], m.values[i]) << t.name << " value " << i;
        }
    }
}

TEST(KQuants, KernelsMatchADoubleLoopOverTheDequantizedValues) {
    std::mt19937 rng(22);
    const float poison = std::numeric_limits<float>::quiet_NaN();
    for (const Type& t : kTypes) {
        for (MatmulKernel kernel : lk_test::cpu_kernels()) {
            for (int64_t rows : {1, 3, 17}) {
                for (int64_t blocks_per_row : {1, 3, 8}) {
                    for (int32_t n_x : {1, 3, 4, 5, 9}) {
                        const int64_t cols = blocks_per_row * t.elements;
                        const Matrix w = random_matrix(t.dtype, rows, cols, rng);
                        const std::vector<float> x = random_floats(n_x * cols, rng);
                        const Inputs in = quantize_inputs(t.dtype, x, n_x, cols);
                        for (bool accumulate : {false, true}) {
                            const int64_t y_stride = rows + 1;
                            std::vector<float> y(n_x * y_stride, accumulate ? 0.5f : poison);
                            const MatmulArgs args = args_for(t.dtype, w, cols, x, in, 0, y.data(), y_stride, n_x, accumulate);
                            kernel(args, 0, rows / 2);
                            kernel(args, rows / 2, rows);
                            for (int32_t j = 0; j < n_x; ++j) {
                                for (int64_t r = 0; r < rows; ++r) {
                                    double want = accumulate ? 0.5 : 0.0, magnitude = 0.0;
                                    for (int64_t c = 0; c < cols; ++c) {
                                        const double term = double(w.values[r * cols + c]) * in.values[j * cols + c];
                                        want += term;
                                        magnitude += std::fabs(term);
                                    }
                                    ASSERT_NEAR(y[j * y_stride + r], want, 1e-5 + 1e-5 * magnitude)
                                        << t.name << " rows " << rows << " cols " << cols << " n_x " << n_x << " at (" << j << ", " << r << ")";
                                }
                                if (!accumulate) {
                                    ASSERT_TRUE(std::isnan(y[j * y_stride + rows])) << t.name << " wrote past the row range";
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

// Lossless decoding rests on this: an input row's outputs do not depend on the other rows of the call.
TEST(KQuants, EachInputRowGivesBitIdenticalResultsAloneAndInABatch) {
    std::mt19937 rng(23);
    for (const Type& t : kTypes) {
        for (MatmulKernel kernel : lk_test::cpu_kernels()) {
            const int64_t rows = 21, cols = 3 * 256;
            const Matrix w = random_matrix(t.dtype, rows, cols, rng);
            const std::vector<float> x = random_floats(12 * cols, rng);
            const Inputs in = quantize_inputs(t.dtype, x, 12, cols);
            for (int32_t n_x : {2, 5, 8, 12}) {
                std::vector<float> batch(n_x * rows);
                kernel(args_for(t.dtype, w, cols, x, in, 0, batch.data(), rows, n_x), 0, 7);
                kernel(args_for(t.dtype, w, cols, x, in, 0, batch.data(), rows, n_x), 7, rows);
                for (int32_t j = 0; j < n_x; ++j) {
                    std::vector<float> alone(rows);
                    kernel(args_for(t.dtype, w, cols, x, in, j, alone.data(), rows, 1), 0, rows);
                    for (int64_t r = 0; r < rows; ++r)
                        ASSERT_EQ(batch[j * rows + r], alone[r]) << t.name << " n_x " << n_x << " input " << j << " row " << r;
                }
            }
        }
    }
}

// The k-quant kernels form the same integers and the same float operations on every instruction set.
TEST(KQuants, EveryKernelGivesTheScalarKernelsBitsForTheKQuants) {
    std::mt19937 rng(24);
    for (const Type& t : kTypes) {
        if (t.elements == 32) continue;  // Q4_0 and Q5_0 sum in vector lanes, like Q8_0
        const int64_t rows = 9, cols = 5 * 256;
        const Matrix w = random_matrix(t.dtype, rows, cols, rng);
        const std::vector<float> x = random_floats(6 * cols, rng);
        const Inputs in = quantize_inputs(t.dtype, x, 6, cols);
        std::vector<float> want(6 * rows);
        lk::cpu::matmul_scalar(args_for(t.dtype, w, cols, x, in, 0, want.data(), rows, 6), 0, rows);
        for (MatmulKernel kernel : lk_test::cpu_kernels()) {
            std::vector<float> got(6 * rows);
            kernel(args_for(t.dtype, w, cols, x, in, 0, got.data(), rows, 6), 0, rows);
            for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << t.name << " output " << i;
        }
    }
}

// llama.cpp's quantize_row_q8_K_ref: the value of largest magnitude maps to -127, the rest round half to
// even against its scale, capped at 127; bsums are the sums of 16.
TEST(KQuants, Q8_KQuantizingFollowsLlamaCppsReference) {
    std::vector<float> x(256, 0.0f);
    x[0] = 127.0f;  // the largest: iscale = -1
    x[1] = 2.5f;    // a tie: to even, -2
    x[2] = 3.5f;    // -4
    x[3] = -126.6f; // 127 after rounding
    x[17] = 1.0f;
    lk::BlockQ8_K block;
    lk::quantize_row_q8_k(x.data(), 256, &block);
    EXPECT_EQ(block.d, -1.0f);
    EXPECT_EQ(block.qs[0], -127);
    EXPECT_EQ(block.qs[1], -2);
    EXPECT_EQ(block.qs[2], -4);
    EXPECT_EQ(block.qs[3], 127);
    EXPECT_EQ(block.bsums[0], -127 - 2 - 4 + 127);
    EXPECT_EQ(block.bsums[1], -1);
    std::vector<float> zeros(256, 0.0f);
    lk::quantize_row_q8_k(zeros.data(), 256, &block);
    EXPECT_EQ(block.d, 0.0f);
    for (int16_t s : block.bsums) EXPECT_EQ(s, 0);
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::infinity()}) {
        std::vector<float> row(512, 0.25f);
        row[300] = bad;
        lk::BlockQ8_K blocks[2];
        lk::quantize_row_q8_k(row.data(), 512, blocks);
        EXPECT_EQ(blocks[0].d, 1.0f / (-127.0f / 0.25f)) << "the other block is untouched";
        EXPECT_TRUE(std::isnan(blocks[1].d)) << "the block holding " << bad;
    }
}

TEST(KQuants, TensorsAreMatricesOfWholeBlocksWithFiniteScales) {
    std::mt19937 rng(25);
    for (const Type& t : kTypes) {
        const int hidden = 256;
        lk_model_params p = lk_test::small_params(hidden, 4, 2, 1, 40);
        lk_model* raw = nullptr;
        ASSERT_EQ(lk_model_init(&p, &raw), LK_OK);
        std::unique_ptr<lk_model, lk_test::ModelDeleter> model(raw);
        Matrix m = random_matrix(t.dtype, p.vocab_size, hidden, rng);
        EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, t.dtype, p.vocab_size, hidden, m.bytes.data()), LK_OK)
            << lk_last_error();
        EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_OUTPUT_NORM, 0, t.dtype, hidden, 1, m.bytes.data()), LK_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(lk_last_error()).find(std::string(t.name) + " is for matrices"), std::string::npos) << lk_last_error();
        // Row 2's first block gets an infinite d (Q6_K keeps d last in its block).
        const int64_t block = 2 * hidden / t.elements, d_offset = t.dtype == LK_DTYPE_Q6_K ? 208 : 0;
        const uint16_t inf = 0x7C00;
        std::memcpy(m.bytes.data() + block * lk::block_bytes(t.dtype) + d_offset, &inf, 2);
        EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, t.dtype, p.vocab_size, hidden, m.bytes.data()),
                  LK_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(lk_last_error()).find("block scale at element 512 (row 2, column 0)"), std::string::npos) << lk_last_error();
        lk_model_params odd = lk_test::small_params(t.elements == 32 ? 48 : 160, 4, 2, 1, 40);
        ASSERT_EQ(lk_model_init(&odd, &raw), LK_OK);
        std::unique_ptr<lk_model, lk_test::ModelDeleter> odd_model(raw);
        EXPECT_EQ(lk_model_set_tensor(odd_model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, t.dtype, odd.vocab_size, odd.hidden_size, m.bytes.data()),
                  LK_ERR_INVALID_ARGUMENT);
        EXPECT_NE(std::string(lk_last_error()).find("not a multiple of " + std::to_string(t.elements)), std::string::npos) << lk_last_error();
    }
}

}  // namespace
