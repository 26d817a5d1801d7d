// lookahead_quant_kernels_bench: each CPU matrix kernel on one thread, per weight type, for a 2048 x 768
// matrix (stories110M's ffn_up; 1.5M weights, larger than L2 so the rows stream from L3 or memory) and
// 1, 4 and 16 input rows: median time per call, weight bytes streamed per second and multiply-adds per
// second. Inputs are quantized before timing (the engine quantizes each input once per matrix, not per call
// of the kernel on a row range).
//   build/cpu/bench/native/lookahead_quant_kernels_bench
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "common/quant_types.h"
#include "cpu/kernels.h"

namespace {

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

struct Type {
    int32_t dtype;
    const char* name;
};

// Blocks with random bytes and small finite half scales: the kernels' speed does not depend on the values.
std::vector<unsigned char> random_weights(int32_t dtype, int64_t rows, int64_t cols, std::mt19937& rng) {
    const int64_t bytes = dtype == LK_DTYPE_F32 ? rows * cols * 4 : dtype == LK_DTYPE_BF16 ? rows * cols * 2 : rows * lk::row_bytes(dtype, cols);
    std::vector<unsigned char> w(bytes);
    std::uniform_int_distribution<int> byte(0, 255);
    for (unsigned char& b : w) b = static_cast<unsigned char>(byte(rng));
    const uint16_t small = lk::float_to_f16(0.01f);
    const int64_t block = lk::block_bytes(dtype);
    auto set_half = [&](int64_t at) { std::memcpy(w.data() + at, &small, 2); };
    if (dtype == LK_DTYPE_F32) {
        for (int64_t i = 0; i < rows * cols; ++i) {
            const float v = 0.01f;
            std::memcpy(w.data() + 4 * i, &v, 4);
        }
    } else if (dtype == LK_DTYPE_BF16) {
        for (int64_t i = 0; i < rows * cols; ++i) w[2 * i + 1] = 0x3C;
    } else {
        for (int64_t b = 0; b < static_cast<int64_t>(w.size()) / block; ++b) {
            if (dtype == LK_DTYPE_Q6_K) {
                set_half(b * block + 208);
            } else {
                set_half(b * block);
                if (dtype == LK_DTYPE_Q4_K || dtype == LK_DTYPE_Q5_K) set_half(b * block + 2);
            }
        }
    }
    return w;
}

}  // namespace

int main() {
    const int64_t rows = 2048, cols = 768;
    const Type types[] = {{LK_DTYPE_F32, "F32"},   {LK_DTYPE_BF16, "BF16"}, {LK_DTYPE_Q8_0, "Q8_0"}, {LK_DTYPE_Q4_0, "Q4_0"}, {LK_DTYPE_Q5_0, "Q5_0"},
                          {LK_DTYPE_Q4_K, "Q4_K"}, {LK_DTYPE_Q5_K, "Q5_K"}, {LK_DTYPE_Q6_K, "Q6_K"}};
    std::mt19937 rng(1);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    std::vector<float> x(16 * cols);
    for (float& v : x) v = dist(rng);
    std::vector<lk::BlockQ8_0> q8(16 * cols / lk::kQ8Block);
    std::vector<lk::BlockQ8_K> q8k(16 * cols / lk::kQkK);
    std::vector<uint16_t> packed(16 * cols);
    std::vector<float> rounded(16 * cols);
    for (int j = 0; j < 16; ++j) {
        lk::quantize_row_q8_0(x.data() + j * cols, cols, q8.data() + j * cols / lk::kQ8Block);
        lk::quantize_row_q8_k(x.data() + j * cols, cols, q8k.data() + j * cols / lk::kQkK);
        for (int64_t c = 0; c < cols; ++c) {
            packed[j * cols + c] = lk::float_to_bf16(x[j * cols + c]);
            rounded[j * cols + c] = lk::bf16_to_float(packed[j * cols + c]);
        }
    }
    std::vector<float> y(16 * rows);
    const lk::cpu::ChosenKernel best = lk::cpu::choose_matmul_kernel(LK_CPU_KERNEL_AUTO);
    std::printf("%d x %d matrix, one thread, %s kernel (and scalar for the quantized types at 1 input)\n", int(rows), int(cols),
                lk::cpu::matmul_kernel_name(best.level));
    std::printf("%-6s %-7s %6s %12s %12s %12s\n", "type", "kernel", "inputs", "us/call", "GB/s", "GMAC/s");
    for (const Type& t : types) {
        const std::vector<unsigned char> w = random_weights(t.dtype, rows, cols, rng);
        for (lk::cpu::MatmulKernel kernel : {best.run, lk::cpu::matmul_scalar}) {
            const bool scalar = kernel == lk::cpu::matmul_scalar && best.run != lk::cpu::matmul_scalar;
            if (scalar && !lk::is_quantized(t.dtype)) continue;
            for (int32_t n_x : {1, 4, 16}) {
                if (scalar && n_x > 1) continue;
                const bool bf16 = t.dtype == LK_DTYPE_BF16;
                const lk::cpu::MatmulArgs args{w.data(), t.dtype, cols, bf16 ? rounded.data() : x.data(), cols, y.data(), rows, n_x, false,
                                               bf16 ? packed.data() : nullptr, q8.data(), q8k.data()};
                std::vector<double> times;
                for (int rep = 0; rep < (scalar ? 5 : 25); ++rep) {
                    const auto start = std::chrono::steady_clock::now();
                    kernel(args, 0, rows);
                    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
                }
                const double s = median(times);
                std::printf("%-6s %-7s %6d %12.1f %12.2f %12.2f\n", t.name, scalar ? "scalar" : lk::cpu::matmul_kernel_name(best.level), n_x,
                            s * 1e6, double(w.size()) / s / 1e9, double(rows * cols * n_x) / s / 1e9);
            }
        }
    }
    return 0;
}
