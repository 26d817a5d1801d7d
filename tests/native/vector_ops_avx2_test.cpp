// vector_ops.h compiled with AVX2 and the library's rounding (as the CPU backend's SIMD variants are),
// so its intrinsic paths are the ones tested; skipped on CPUs without AVX2.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "cpu/vector_ops.h"

namespace {

bool cpu_has_avx2() {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

// A draft node's key is scored one slot at a time (key_score) while it is pending and by the vector
// path once committed; lookahead is lossless only if both give the same bits, for every slot alignment.
TEST(VectorOpsAvx2, VectorScoresEqualSingleSlotScoresBitForBit) {
    if (!cpu_has_avx2()) GTEST_SKIP() << "no AVX2 on this CPU";
    std::mt19937 rng(17);
    std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
    for (int d : {8, 13, 64}) {
        const int slots = 131;
        // Blocked keys (whole blocks allocated), filled through the layout's own indexing and checked
        // against a plain [slot][dim] copy.
        const int64_t blocked = (slots + lk::cpu::kKeyBlock - 1) / lk::cpu::kKeyBlock * lk::cpu::kKeyBlock * d;
        std::vector<float> plain(slots * d), keys(blocked), q(d), row(slots);
        for (float& v : plain) v = dist(rng);
        for (float& v : q) v = dist(rng);
        for (int s = 0; s < slots; ++s)
            for (int t = 0; t < d; ++t) keys[lk::cpu::key_offset(d, s, t)] = plain[s * d + t];
        for (auto [begin, end] : {std::pair{0, 131}, std::pair{5, 100}, std::pair{17, 29}, std::pair{3, 4}, std::pair{8, 40}}) {
            lk::cpu::scores_against_columns(q.data(), keys.data(), d, begin, end, row.data());
            for (int s = begin; s < end; ++s) {
                ASSERT_EQ(row[s], lk::cpu::key_score(q.data(), keys.data(), d, s)) << "d " << d << " slot " << s;
                double want = 0;
                for (int t = 0; t < d; ++t) want += double(q[t]) * plain[s * d + t];
                ASSERT_NEAR(row[s], want, 1e-5 * d);
            }
        }
    }
}

}  // namespace
