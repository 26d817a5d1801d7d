// The sampling rule by selections over order keys instead of a sort: what the CUDA sampler runs, one thread
// block per node, and what the host runs in tests against NodeSampler's sort (two independent routes to the
// same token). Each cut of the rule keeps a prefix of the fixed order, so it is one key: the last one kept.
//
// Ops answers questions about one node's row of penalized logits, every answer the same in every thread:
//   int32_t argmax()                     the greedy token (ties to the lowest id)
//   uint64_t sum_mass(uint64_t limit)    the mass of the keys <= limit
//   uint64_t last_key_at_least(double x) the largest key whose scaled offset is >= x
//   void histogram(uint64_t prefix, uint64_t mask, int shift, uint64_t limit, bool by_mass)
//                                        over keys <= limit with (key & mask) == prefix: the weight (mass, or 1)
//                                        and the count of each digit (key >> shift) & 255
//   SelectBucket bucket(uint64_t target) the first digit of that histogram whose cumulative weight reaches target
//   uint64_t only_key(uint64_t prefix, uint64_t mask, uint64_t limit)
//                                        the one key <= limit with (key & mask) == prefix
#pragma once

#include "sampling_rule.h"

// The selections are templates over host or device Ops: nvcc is told not to check a host instantiation
// that would call device-only methods (none is made).
#if defined(__CUDACC__)
#define LK_ANY_OPS _Pragma("nv_exec_check_disable")
#else
#define LK_ANY_OPS
#endif

namespace lk::sampling {

// One node's settings as the selections use them; min_p_offset = log(min_p), computed once on the host.
struct RowRule {
    float temperature;
    int32_t top_k;
    float top_p;
    bool min_p_on;
    double min_p_offset;
    int32_t vocab;
};

struct SelectBucket {
    int digit;
    uint64_t before;  // weight of the digits below it
    uint32_t count;
};

// The digits of a key, most significant first: 8 bits at a time over the logit half, then the id's low 24.
constexpr int kSelectRounds = 7;
LK_HOST_DEVICE int select_shift(int round) { return round < 4 ? 56 - 8 * round : 16 - 8 * (round - 4); }

// The first key (<= limit) in the fixed order whose cumulative weight reaches target (1 <= target <= the
// weight of the keys <= limit): a radix select, narrowing the prefix one digit per round.
LK_ANY_OPS
template <class Ops>
LK_HOST_DEVICE uint64_t select_key(Ops& ops, uint64_t limit, uint64_t target, bool by_mass) {
    uint64_t prefix = 0, mask = 0xFF000000ull;  // bits 24..31 are 0 in every key
    for (int round = 0; round < kSelectRounds; ++round) {
        const int shift = select_shift(round);
        ops.histogram(prefix, mask, shift, limit, by_mass);
        const SelectBucket b = ops.bucket(target);
        target -= b.before;
        prefix |= static_cast<uint64_t>(b.digit) << shift;
        mask |= 0xFFull << shift;
        if (b.count == 1) return ops.only_key(prefix, mask, limit);
    }
    return prefix;  // all digits chosen: keys are distinct, so the last round's count was 1
}

// The token for draw (53 bits) at one node: top-k, top-p, min-p (each a last kept key), then the draw's
// inverse CDF over the kept mass.
LK_ANY_OPS
template <class Ops>
LK_HOST_DEVICE int32_t sample_row(Ops& ops, const RowRule& rule, uint64_t draw) {
    if (rule.temperature == 0.0f) return ops.argmax();
    uint64_t last = kAllKeys;
    if (rule.top_k > 0 && rule.top_k < rule.vocab) last = select_key(ops, kAllKeys, static_cast<uint64_t>(rule.top_k), false);
    if (rule.top_p < 1.0f) {
        const uint64_t total = ops.sum_mass(last);
        const uint64_t target = top_p_target(rule.top_p, total);
        if (target <= total) last = select_key(ops, last, target, true);
    }
    if (rule.min_p_on) {
        const uint64_t min_p_last = ops.last_key_at_least(rule.min_p_offset);
        if (min_p_last < last) last = min_p_last;
    }
    const uint64_t kept = ops.sum_mass(last);
    return key_token(select_key(ops, last, draw_threshold(draw, kept) + 1, true));
}

}  // namespace lk::sampling
