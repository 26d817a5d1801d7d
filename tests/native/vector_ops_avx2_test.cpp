// vector_ops.h compiled with AVX2 and the library's rounding (as the CPU backend's SIMD variants are),
// so its intrinsic paths are the ones tested; skipped on CPUs without AVX2.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include <immintrin.h>

#include "cpu/vector_ops.h"

namespace {

bool cpu_has_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// A draft node's key is scored one slot at a time (key_score) while it is pending and by the vector
// path once committed; lookahead is lossless only if both give the same bits, for every slot alignment,
// and wherever the KV pool put the blocks (here in descending order, so no two logical neighbours are
// physical ones). Attention outputs are the same bits through the scattered table as through the
// contiguous one.
// For a cache of element type T (the context's kv_type): the stored values are the plain ones rounded to
// T, and every path reads them back widened exactly.
template <typename T>
void check_paged_head() {
    std::mt19937 rng(17);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (int d : {8, 13, 64}) {
        const int slots = 131, blocks = (slots + lk::cpu::kKeyBlock - 1) / lk::cpu::kKeyBlock;
        std::vector<int32_t> contiguous(blocks), scattered(blocks);
        for (int b = 0; b < blocks; ++b) contiguous[b] = b, scattered[b] = blocks - 1 - b;
        // Blocked keys and value rows, filled through each table and checked against a plain [slot][dim] copy.
        std::vector<float> plain(slots * d), plain_values(slots * d), q(d), weights(slots);
        for (float& v : plain) v = lk::cpu::widen(lk::cpu::narrow<T>(dist(rng)));
        for (float& v : plain_values) v = lk::cpu::widen(lk::cpu::narrow<T>(dist(rng)));
        for (float& v : q) v = dist(rng);
        for (float& v : weights) v = dist(rng);
        auto fill = [&](const std::vector<int32_t>& table, std::vector<T>& keys, std::vector<T>& values) {
            keys.assign(int64_t{blocks} * lk::cpu::kKeyBlock * d, lk::cpu::narrow<T>(0.0f));
            values.assign(keys.size(), lk::cpu::narrow<T>(0.0f));
            for (int s = 0; s < slots; ++s) {
                const int64_t physical = int64_t{table[s / lk::cpu::kKeyBlock]} * lk::cpu::kKeyBlock + s % lk::cpu::kKeyBlock;
                for (int t = 0; t < d; ++t) keys[lk::cpu::key_offset(d, physical, t)] = lk::cpu::narrow<T>(plain[s * d + t]);
                for (int t = 0; t < d; ++t) values[physical * d + t] = lk::cpu::narrow<T>(plain_values[s * d + t]);
            }
        };
        std::vector<T> keys_a, values_a, keys_b, values_b;
        fill(contiguous, keys_a, values_a);
        fill(scattered, keys_b, values_b);
        const lk::cpu::PagedHead<T> heads[2] = {{keys_a.data(), values_a.data(), contiguous.data(), d},
                                             {keys_b.data(), values_b.data(), scattered.data(), d}};
        std::vector<float> rows[2] = {std::vector<float>(slots), std::vector<float>(slots)};
        for (auto [begin, end] : {std::pair{0, 131}, std::pair{5, 100}, std::pair{17, 29}, std::pair{3, 4}, std::pair{8, 40}}) {
            for (int h = 0; h < 2; ++h) {
                lk::cpu::scores_against_columns(q.data(), heads[h], begin, end, rows[h].data());
                for (int s = begin; s < end; ++s) {
                    ASSERT_EQ(rows[h][s], lk::cpu::key_score(q.data(), heads[h], s)) << "d " << d << " slot " << s << " table " << h;
                    double want = 0;
                    for (int t = 0; t < d; ++t) want += double(q[t]) * plain[s * d + t];
                    ASSERT_NEAR(rows[h][s], want, 1e-5 * d);
                }
            }
            for (int s = begin; s < end; ++s) ASSERT_EQ(rows[0][s], rows[1][s]) << "d " << d << " slot " << s;
        }
        // Values: 100 committed rows and three pending ones, through both tables.
        const std::vector<int32_t> visible = {2, 11, 30};
        volatile int committed = 100;  // a run-time value, as in the backend (GCC misjudges a constant one)
        const int n_past = committed, total = n_past + static_cast<int>(visible.size());
        std::vector<float> out[2] = {std::vector<float>(d), std::vector<float>(d)};
        for (int h = 0; h < 2; ++h) lk::cpu::weighted_values(weights.data(), n_past, visible.data(), total, heads[h], out[h].data());
        for (int t = 0; t < d; ++t) {
            ASSERT_EQ(out[0][t], out[1][t]) << "d " << d << " element " << t;
            double want = 0;
            for (int p = 0; p < 100; ++p) want += double(weights[p]) * plain_values[p * d + t];
            for (int j = 0; j < 3; ++j) want += double(weights[100 + j]) * plain_values[(100 + visible[j]) * d + t];
            ASSERT_NEAR(out[0][t], want, 1e-4);
        }
    }
}

TEST(VectorOpsAvx2, VectorScoresEqualSingleSlotScoresBitForBit) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
    check_paged_head<float>();
    check_paged_head<lk::cpu::Half>();
    check_paged_head<lk::cpu::BFloat16>();
}

// The scalar rounding to IEEE half (the stores of an F16 cache) against F16C's vcvtps2ph, round to
// nearest even, over every class of input: normals, subnormals, ties, overflow, infinities, NaN.
TEST(VectorOpsAvx2, FloatToHalfRoundsAsF16C) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
    std::mt19937 rng(3);
    std::vector<uint32_t> inputs = {0u, 0x80000000u, 0x7F800000u, 0xFF800000u, 0x7FC00000u, 0x477FE000u, 0x477FEFFFu, 0x477FF000u,
                                    0x477FF001u, 0x38800000u, 0x387FFFFFu, 0x33800000u, 0x33800001u, 0x33000000u, 0x33000001u, 0x00000001u};
    for (uint32_t half = 0; half < 0x10000u; ++half) {  // every half's value and the midpoints around it
        const uint32_t bits = std::bit_cast<uint32_t>(lk::f16_to_float(static_cast<uint16_t>(half)));
        for (int32_t delta : {-1, 0, 1, 0x1000, 0xFFF, 0x1001}) inputs.push_back(bits + static_cast<uint32_t>(delta));
    }
    for (int i = 0; i < 1000000; ++i) inputs.push_back(static_cast<uint32_t>(rng()));
    for (uint32_t bits : inputs) {
        const float x = std::bit_cast<float>(bits);
        const uint16_t want = static_cast<uint16_t>(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(x), _MM_FROUND_TO_NEAREST_INT), 0));
        const uint16_t got = lk::float_to_f16(x);
        if (std::isnan(x)) {
            ASSERT_TRUE((got & 0x7C00u) == 0x7C00u && (got & 0x3FFu) != 0 && (got & 0x8000u) == (want & 0x8000u)) << std::hex << bits;
        } else {
            ASSERT_EQ(got, want) << "input bits " << std::hex << bits;
        }
    }
}

}  // namespace
