// The sampling rule's arithmetic, written once for the host and the device (docs/sampling.md).
//
// A token's share of a node's distribution is an integer mass, floor(exp(x) * 2^43) with x its scaled logit
// minus the largest; sums of masses are exact, so a total does not depend on the order a backend adds in,
// and every other step is an IEEE operation that rounds the same way on the CPU and the GPU (never
// contracted into a fused multiply-add), so both backends pick the same token from the same logits and draw.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define LK_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define LK_HOST_DEVICE inline
#endif

namespace lk::sampling {

// Masses are floor(exp(x) * 2^kMassBits): a row of at most 2^20 tokens sums to at most 2^63, and tokens less
// likely than 2^-43 times the top one (x < about -29.8) have none.
constexpr int kMassBits = 43;
constexpr double kMassScale = 0x1.0p43;
constexpr double kMassCutoff = -30.0;  // exp(-30) * 2^43 < 1: no mass below
constexpr uint64_t kAllKeys = ~0ull;   // a limit that keeps every key

// IEEE arithmetic that no compiler contracts (the library is built with -ffp-contract=off; nvcc contracts
// unless told, so the device uses the round-to-nearest intrinsics).
#if defined(__CUDA_ARCH__)
LK_HOST_DEVICE double dmul(double a, double b) { return __dmul_rn(a, b); }
LK_HOST_DEVICE double dadd(double a, double b) { return __dadd_rn(a, b); }
LK_HOST_DEVICE double dsub(double a, double b) { return __dsub_rn(a, b); }
LK_HOST_DEVICE double ddiv(double a, double b) { return __ddiv_rn(a, b); }
LK_HOST_DEVICE float fmul(float a, float b) { return __fmul_rn(a, b); }
LK_HOST_DEVICE float fadd(float a, float b) { return __fadd_rn(a, b); }
LK_HOST_DEVICE float fsub(float a, float b) { return __fsub_rn(a, b); }
LK_HOST_DEVICE float fdiv(float a, float b) { return __fdiv_rn(a, b); }
LK_HOST_DEVICE uint32_t float_bits(float x) { return __float_as_uint(x); }
LK_HOST_DEVICE uint64_t mul_high(uint64_t a, uint64_t b) { return __umul64hi(a, b); }
#else
LK_HOST_DEVICE double dmul(double a, double b) { return a * b; }
LK_HOST_DEVICE double dadd(double a, double b) { return a + b; }
LK_HOST_DEVICE double dsub(double a, double b) { return a - b; }
LK_HOST_DEVICE double ddiv(double a, double b) { return a / b; }
LK_HOST_DEVICE float fmul(float a, float b) { return a * b; }
LK_HOST_DEVICE float fadd(float a, float b) { return a + b; }
LK_HOST_DEVICE float fsub(float a, float b) { return a - b; }
LK_HOST_DEVICE float fdiv(float a, float b) { return a / b; }
LK_HOST_DEVICE uint32_t float_bits(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return bits;
}
LK_HOST_DEVICE uint64_t mul_high(uint64_t a, uint64_t b) {  // the high half of the 128-bit product, from 32-bit halves
    const uint64_t a_lo = a & 0xFFFFFFFFu, a_hi = a >> 32, b_lo = b & 0xFFFFFFFFu, b_hi = b >> 32;
    const uint64_t lo_lo = a_lo * b_lo, hi_lo = a_hi * b_lo, lo_hi = a_lo * b_hi, hi_hi = a_hi * b_hi;
    const uint64_t middle = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFu) + lo_hi;
    return hi_hi + (hi_lo >> 32) + (middle >> 32);
}
#endif

// The k-th output (k >= 1) of Vigna's SplitMix64 seeded with seed: the state advances by the golden gamma
// before each output, so output k is a pure function of (seed, k).
LK_HOST_DEVICE uint64_t splitmix64_output(uint64_t seed, uint64_t k) {
    uint64_t z = seed + k * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// The draw of generated token index (0-based): the top 53 bits of output index + 1, the uniform number
// draw * 2^-53 in [0, 1).
LK_HOST_DEVICE uint64_t draw_bits(uint64_t seed, uint64_t index) { return splitmix64_output(seed, index + 1) >> 11; }

// Repetition penalty (HF: divide a positive logit, multiply a negative one) when the token occurred before,
// then presence and frequency penalties (OpenAI: minus presence + frequency * count over the output).
LK_HOST_DEVICE float penalized_logit(float logit, int32_t count_all, int32_t count_output, float repetition,
                                     float presence, float frequency) {
    if (count_all > 0) logit = logit > 0.0f ? fdiv(logit, repetition) : fmul(logit, repetition);
    if (count_output > 0) logit = fsub(logit, fadd(presence, fmul(frequency, static_cast<float>(count_output))));
    return logit;
}

// The fixed order as one integer: ascending keys are penalized logits descending, ids ascending on ties
// (+0 and -0 tie). Ids are below 2^20, so bits 24..31 of a key are always 0.
LK_HOST_DEVICE uint64_t order_key(float logit, int32_t id) {
    const uint32_t bits = float_bits(logit == 0.0f ? 0.0f : logit);
    const uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return (static_cast<uint64_t>(~ascending) << 32) | static_cast<uint32_t>(id);
}
LK_HOST_DEVICE int32_t key_token(uint64_t key) { return static_cast<int32_t>(key & 0xFFFFFFFFu); }

// x = (logit - largest) * (1 / temperature) in double: <= 0, no overflow, and monotone in the logit, so
// every cut on x (min-p) keeps a prefix of the fixed order. inverse_temperature comes from inverse().
LK_HOST_DEVICE double inverse(float temperature) { return ddiv(1.0, static_cast<double>(temperature)); }
LK_HOST_DEVICE double scaled_offset(float logit, float largest, double inverse_temperature) {
    return dmul(dsub(static_cast<double>(logit), static_cast<double>(largest)), inverse_temperature);
}

// e^x for x in [kMassCutoff, 0]: Cody-Waite reduction by ln 2 and a degree-13 Taylor polynomial in Estrin's
// form (short dependency chains; error about 1e-16 relative), every operation an IEEE one, so host and
// device agree bit for bit. exp(0) is exactly 1.
LK_HOST_DEVICE double exp_nonpositive(double x) {
    // The nearest integer to x / ln 2 (ties to even): adding and taking away 1.5 * 2^52 rounds away the fraction.
    const double k = dsub(dadd(dmul(x, 0x1.71547652b82fep+0), 0x1.8p52), 0x1.8p52);
    double r = dsub(x, dmul(k, 0x1.62e42fee00000p-1));                  // ln 2's high part: k * it is exact
    r = dsub(r, dmul(k, 0x1.a39ef35793c76p-33));
    const double r2 = dmul(r, r), r4 = dmul(r2, r2), r8 = dmul(r4, r4);
    // 1/n! for n = 0..13, paired: q_j = c_2j + c_2j+1 r.
    const double q0 = dadd(1.0, r);
    const double q1 = dadd(0.5, dmul(0x1.5555555555555p-3, r));
    const double q2 = dadd(0x1.5555555555555p-5, dmul(0x1.1111111111111p-7, r));
    const double q3 = dadd(0x1.6c16c16c16c17p-10, dmul(0x1.a01a01a01a01ap-13, r));
    const double q4 = dadd(0x1.a01a01a01a01ap-16, dmul(0x1.71de3a556c734p-19, r));
    const double q5 = dadd(0x1.27e4fb7789f5cp-22, dmul(0x1.ae64567f544e4p-26, r));
    const double q6 = dadd(0x1.1eed8eff8d898p-29, dmul(0x1.6124613a86d09p-33, r));
    const double s0 = dadd(q0, dmul(q1, r2)), s1 = dadd(q2, dmul(q3, r2)), s2 = dadd(q4, dmul(q5, r2));
    const double t0 = dadd(s0, dmul(s1, r4)), t1 = dadd(s2, dmul(q6, r4));
    const double p = dadd(t0, dmul(t1, r8));
    // 2^k as a double built from its exponent bits (k is in [-44, 0] here), an exact scaling.
    const uint64_t exponent = static_cast<uint64_t>(1023 + static_cast<int64_t>(k)) << 52;
    double scale;
    memcpy(&scale, &exponent, sizeof scale);
    return dmul(p, scale);
}

// A token's integer mass from its scaled offset.
LK_HOST_DEVICE uint64_t mass_of(double x) {
    return x < kMassCutoff ? 0 : static_cast<uint64_t>(dmul(exp_nonpositive(x), kMassScale));
}

// The draw's place in a total mass: floor(draw * 2^-53 * total), exactly; below total, so some token with
// mass has cumulative mass above it.
LK_HOST_DEVICE uint64_t draw_threshold(uint64_t draw, uint64_t total) {
    const uint64_t low = draw * total, high = mul_high(draw, total);
    return (high << 11) | (low >> 53);
}

// Top-p keeps a token while the mass before it is below top_p * total; the last kept token is the first
// whose cumulative mass reaches ceil(top_p * total) (computed in double: the same rounding everywhere).
LK_HOST_DEVICE uint64_t top_p_target(float top_p, uint64_t total) {
    return static_cast<uint64_t>(ceil(dmul(static_cast<double>(top_p), static_cast<double>(total))));
}

}  // namespace lk::sampling
