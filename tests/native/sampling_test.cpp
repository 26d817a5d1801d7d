// The sampling rule's parts against published vectors and a literal, double-precision transcription of
// Hugging Face's logits processors (masks of -inf, an ascending sort for top-p, a softmax over what remains);
// the selection route the CUDA sampler takes (sampling_select.h, run here on the host) against the sort.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <random>
#include <vector>

#include "common/error.h"
#include "common/sampling.h"
#include "common/sampling_select.h"
#include "lookahead.h"
#include "sampling_cases.h"
#include "test_model.h"

namespace {

TEST(Sampling, SplitMix64MatchesThePublishedSequence) {
    // The first five outputs of SplitMix64 seeded with 1234567 (Vigna's reference implementation).
    const uint64_t want[] = {6457827717110365317ull, 3203168211198807973ull, 9817491932198370423ull, 4593380528125082431ull,
                             16408922859458223821ull};
    for (uint64_t k = 1; k <= 5; ++k) EXPECT_EQ(lk::sampling::splitmix64_output(1234567, k), want[k - 1]) << "output " << k;
}

TEST(Sampling, DrawsAreUniformNumbersKeyedBySeedAndIndex) {
    EXPECT_EQ(lk::sampling::draw_bits(1234567, 0), 6457827717110365317ull >> 11);
    EXPECT_EQ(lk::sampling::draw_bits(1234567, 4), 16408922859458223821ull >> 11);
    double sum = 0.0;
    for (uint64_t i = 0; i < 100000; ++i) {
        const uint64_t d = lk::sampling::draw_bits(42, i);
        ASSERT_LT(d, 1ull << 53);
        sum += static_cast<double>(d) * 0x1.0p-53;
    }
    EXPECT_NEAR(sum / 100000, 0.5, 0.01);
    EXPECT_NE(lk::sampling::draw_bits(1, 7), lk::sampling::draw_bits(2, 7));
}

TEST(Sampling, TheRulesExponentialIsAccurateAndExactAtZero) {
    EXPECT_EQ(lk::sampling::exp_nonpositive(0.0), 1.0);
    EXPECT_EQ(lk::sampling::mass_of(0.0), 1ull << lk::sampling::kMassBits);
    EXPECT_EQ(lk::sampling::mass_of(-30.5), 0u);
    double worst = 0.0;
    for (int i = 0; i <= 300000; ++i) {
        const double x = -30.0 * i / 300000;
        const double want = std::exp(x);
        worst = std::max(worst, std::fabs(lk::sampling::exp_nonpositive(x) - want) / want);
    }
    EXPECT_LT(worst, 1e-15);
}

TEST(Sampling, DrawThresholdsAndTopPTargetsAreExactIntegerArithmetic) {
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 wide;  // the compiler's own 128-bit product as the oracle
    std::mt19937_64 rng(8);
    for (int trial = 0; trial < 100000; ++trial) {
        const uint64_t draw = rng() >> 11, total = 1 + (rng() >> (1 + trial % 40));
        const auto want = static_cast<uint64_t>((static_cast<wide>(draw) * total) >> 53);
        ASSERT_EQ(lk::sampling::draw_threshold(draw, total), want) << draw << " x " << total;
        ASSERT_LT(want, total);
    }
#endif
    EXPECT_EQ(lk::sampling::draw_threshold((1ull << 53) - 1, 1), 0u);
    EXPECT_EQ(lk::sampling::draw_threshold(1ull << 52, 10), 5u);
    EXPECT_EQ(lk::sampling::draw_threshold((1ull << 53) - 1, ~0ull >> 1), (~0ull >> 1) - 1024);
    EXPECT_EQ(lk::sampling::top_p_target(0.5f, 10), 5u);
    EXPECT_EQ(lk::sampling::top_p_target(0.55f, 10), 6u);  // ceil
    EXPECT_EQ(lk::sampling::top_p_target(1.0f, 1ull << 43), 1ull << 43);
}

TEST(Sampling, OrderKeysSortLikeTheFixedOrder) {
    std::mt19937 rng(2);
    const float specials[] = {0.0f, -0.0f, 1.0f, -1.0f, 1e-38f, -1e-38f, 3e38f, -3e38f, 1e-45f, -1e-45f};
    auto value = [&](int i) {
        return i % 3 == 0 ? specials[rng() % 10] : std::uniform_real_distribution<float>(-50.0f, 50.0f)(rng);
    };
    for (int trial = 0; trial < 200000; ++trial) {
        const float a = value(trial), b = trial % 4 == 0 ? a : value(trial + 1);
        const int32_t ia = static_cast<int32_t>(rng() % (1 << 20)), ib = static_cast<int32_t>(rng() % (1 << 20));
        const bool a_first = a > b || (a == b && ia < ib);
        const uint64_t ka = lk::sampling::order_key(a, ia), kb = lk::sampling::order_key(b, ib);
        if (a == b && ia == ib) continue;
        ASSERT_EQ(ka < kb, a_first) << a << " (" << ia << ") vs " << b << " (" << ib << ")";
        ASSERT_EQ(lk::sampling::key_token(ka), ia);
    }
}

TEST(Sampling, SettingsOutOfRangeAreRefusedByName) {
    auto refused = [](lk::SamplingSettings s, const char* name) {
        try {
            lk::check_sampling_settings(s);
        } catch (const lk::Error& e) {
            return std::string(e.what()).find(name) != std::string::npos;
        }
        return false;
    };
    lk::SamplingSettings s;
    EXPECT_NO_THROW(lk::check_sampling_settings(s));
    s.temperature = -0.1f;
    EXPECT_TRUE(refused(s, "temperature"));
    s.temperature = std::numeric_limits<float>::quiet_NaN();
    EXPECT_TRUE(refused(s, "temperature"));
    s = {};
    s.top_p = 0.0f;
    EXPECT_TRUE(refused(s, "top_p"));
    s.top_p = 1.5f;
    EXPECT_TRUE(refused(s, "top_p"));
    s = {};
    s.top_k = -1;
    EXPECT_TRUE(refused(s, "top_k"));
    s = {};
    s.min_p = 1.1f;
    EXPECT_TRUE(refused(s, "min_p"));
    s = {};
    s.repetition_penalty = 0.0f;
    EXPECT_TRUE(refused(s, "repetition_penalty"));
    s = {};
    s.frequency_penalty = std::numeric_limits<float>::infinity();
    EXPECT_TRUE(refused(s, "frequency_penalty"));
}

// The processed distribution, written the way HF's processors are: each step masks tokens to -inf.
std::vector<double> reference_distribution(const std::vector<float>& logits, const lk::SamplingSettings& s,
                                           const lk::TokenCounts& counts) {
    const int n = static_cast<int>(logits.size());
    const double minus_inf = -std::numeric_limits<double>::infinity();
    std::vector<double> scores(n);
    for (int i = 0; i < n; ++i) {
        double x = logits[i];
        if (counts.all[i] > 0) x = x > 0 ? x / s.repetition_penalty : x * s.repetition_penalty;  // RepetitionPenalty
        x -= (counts.output[i] > 0 ? s.presence_penalty : 0.0) + s.frequency_penalty * counts.output[i];  // OpenAI
        scores[i] = x / s.temperature;  // Temperature
    }
    auto softmax = [&](const std::vector<double>& v) {
        const double top = *std::max_element(v.begin(), v.end());
        std::vector<double> p(n);
        double total = 0.0;
        for (int i = 0; i < n; ++i) total += p[i] = v[i] == minus_inf ? 0.0 : std::exp(v[i] - top);
        for (double& x : p) x /= total;
        return p;
    };
    if (s.top_k > 0 && s.top_k < n) {  // TopK: below the k-th largest score goes (ties at the edge: lowest ids stay)
        std::vector<int> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return scores[a] > scores[b]; });
        for (int j = s.top_k; j < n; ++j) scores[order[j]] = minus_inf;
    }
    if (s.top_p < 1.0f) {  // TopP: ascending sort, drop while the cumulative mass is <= 1 - top_p, keep the last
        std::vector<double> p = softmax(scores);
        std::vector<int> order(n);
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] < p[b] || (p[a] == p[b] && a > b); });
        double cumulative = 0.0;
        for (int j = 0; j < n - 1; ++j) {
            cumulative += p[order[j]];
            if (cumulative <= 1.0 - s.top_p) scores[order[j]] = minus_inf;
        }
    }
    if (s.min_p > 0.0f) {  // MinP: below min_p times the largest probability goes
        std::vector<double> p = softmax(scores);
        const double top = *std::max_element(p.begin(), p.end());
        for (int i = 0; i < n; ++i)
            if (p[i] < s.min_p * top) scores[i] = minus_inf;
    }
    return softmax(scores);
}

// The token the rule picks for draw u from a distribution: inverse CDF in the order (p desc, id asc).
int reference_token(const std::vector<double>& p, double u, double* margin) {
    std::vector<int> order(p.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    double cumulative = 0.0;
    int picked = order.back();
    *margin = 1.0;
    for (int id : order) {
        const double next = cumulative + p[id];
        if (next > u && p[id] > 0) {
            picked = id;
            *margin = std::min(u - cumulative, next - u);
            break;
        }
        cumulative = next;
    }
    return picked;
}

TEST(Sampling, TokensFollowTheProcessedDistributionOfTheReference) {
    std::mt19937 rng(11);
    lk::NodeSampler sampler;
    int compared = 0;
    for (int trial = 0; trial < 300; ++trial) {
        const int vocab = std::uniform_int_distribution<int>(1, 300)(rng);
        std::vector<float> logits(vocab);
        std::normal_distribution<float> normal(0.0f, trial % 3 == 0 ? 6.0f : 2.0f);
        for (float& x : logits) x = normal(rng);
        if (vocab > 4 && trial % 5 == 0) logits[1] = logits[3];  // exact ties
        lk::SamplingSettings s;
        const float temperatures[] = {0.3f, 0.7f, 1.0f, 1.5f};
        s.temperature = temperatures[trial % 4];
        const int ks[] = {0, 1, 8, 40};
        s.top_k = ks[(trial / 4) % 4];
        const float ps[] = {1.0f, 0.9f, 0.5f};
        s.top_p = ps[(trial / 16) % 3];
        s.min_p = trial % 7 == 0 ? 0.05f : 0.0f;
        s.repetition_penalty = trial % 2 == 0 ? 1.3f : 1.0f;
        s.presence_penalty = trial % 3 == 1 ? 0.5f : 0.0f;
        s.frequency_penalty = trial % 5 == 2 ? 0.3f : 0.0f;
        lk::TokenCounts counts;
        counts.reset(vocab);
        for (int h = 0; h < 20; ++h) counts.add(std::uniform_int_distribution<int>(0, vocab - 1)(rng), h >= 8);

        const std::vector<double> p = reference_distribution(logits, s, counts);
        for (int g = 0; g < 64; ++g) {
            const double u = (g + 0.5) / 64;
            double margin = 0.0;
            const int want = reference_token(p, u, &margin);
            if (margin < 1e-6) continue;  // float logits against double: too close to a boundary to judge
            const auto draw = static_cast<uint64_t>(u * 0x1.0p53);
            ASSERT_EQ(sampler.sample(logits.data(), vocab, s, counts, draw), want)
                << "trial " << trial << " u " << u << " vocab " << vocab << " T " << s.temperature << " k " << s.top_k << " p "
                << s.top_p << " min_p " << s.min_p;
            ++compared;
        }
    }
    EXPECT_GT(compared, 15000);
}

TEST(Sampling, TemperatureZeroAndTopKOneAreGreedyOnThePenalizedLogits) {
    std::mt19937 rng(5);
    lk::NodeSampler sampler;
    for (int trial = 0; trial < 200; ++trial) {
        const int vocab = std::uniform_int_distribution<int>(2, 100)(rng);
        std::vector<float> logits(vocab);
        for (float& x : logits) x = std::uniform_int_distribution<int>(-3, 3)(rng) * 0.5f;  // many ties
        lk::TokenCounts counts;
        counts.reset(vocab);
        for (int h = 0; h < 5; ++h) counts.add(std::uniform_int_distribution<int>(0, vocab - 1)(rng), true);
        lk::SamplingSettings s;
        s.repetition_penalty = 1.2f;
        s.frequency_penalty = 0.1f;
        int want = 0;
        std::vector<float> penalized(vocab);
        for (int i = 0; i < vocab; ++i) {
            float x = logits[i];
            if (counts.all[i] > 0) x = x > 0 ? x / 1.2f : x * 1.2f;
            if (counts.output[i] > 0) x -= 0.1f * static_cast<float>(counts.output[i]);
            penalized[i] = x;
            if (x > penalized[want]) want = i;
        }
        const uint64_t u = lk::sampling::draw_bits(trial, 0);
        EXPECT_EQ(sampler.sample(logits.data(), vocab, s, counts, u), want) << "temperature 0";
        s.temperature = 0.8f;
        s.top_k = 1;
        EXPECT_EQ(sampler.sample(logits.data(), vocab, s, counts, u), want) << "top-k 1";
    }
}

TEST(Sampling, NonFiniteLogitsNameNoToken) {
    lk::NodeSampler sampler;
    lk::TokenCounts counts;
    counts.reset(4);
    lk::SamplingSettings s;
    s.temperature = 1.0f;
    for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
        std::vector<float> logits{0.1f, bad, 0.3f, 0.2f};
        EXPECT_EQ(sampler.sample(logits.data(), 4, s, counts, 1ull << 52), -1);
        s.temperature = 0.0f;
        EXPECT_EQ(sampler.sample(logits.data(), 4, s, counts, 1ull << 52), -1);
        s.temperature = 1.0f;
    }
}

// Counts kept from step to step equal counts made afresh, through appends, truncations, rewrites and prompt
// lengths that change.
TEST(Sampling, CountedHistoryKeepsTheCountsOfTheLatestHistory) {
    std::mt19937 rng(17);
    const int vocab = 23;
    lk::TokenCounts kept;
    kept.reset(vocab);
    lk::CountedHistory counted;
    std::vector<int32_t> history;
    int32_t n_prompt = 3;
    for (int step = 0; step < 3000; ++step) {
        switch (std::uniform_int_distribution<int>(0, 9)(rng)) {
            case 0: history.resize(std::uniform_int_distribution<size_t>(0, history.size())(rng)); break;
            case 1:
                if (!history.empty()) history[rng() % history.size()] = static_cast<int32_t>(rng() % vocab);
                break;
            case 2: n_prompt = std::uniform_int_distribution<int>(0, 8)(rng); break;
            default:
                for (int k = std::uniform_int_distribution<int>(1, 4)(rng); k > 0; --k) history.push_back(static_cast<int32_t>(rng() % vocab));
        }
        counted.update(history.data(), static_cast<int32_t>(history.size()), n_prompt,
                       [&](const int32_t* tokens, int32_t n, int32_t first_output, int32_t delta) {
                           for (int32_t j = 0; j < n; ++j) kept.add(tokens[j], j >= first_output, delta);
                       });
        lk::TokenCounts fresh;
        fresh.reset(vocab);
        for (size_t j = 0; j < history.size(); ++j) {
            ++fresh.all[history[j]];
            if (static_cast<int32_t>(j) >= n_prompt) ++fresh.output[history[j]];
        }
        ASSERT_EQ(kept.all, fresh.all) << "step " << step;
        ASSERT_EQ(kept.output, fresh.output) << "step " << step;
    }
}

// The selection route's questions answered by plain loops over one row of penalized logits.
struct HostRowOps {
    std::vector<float> logits;
    float largest = 0.0f;
    double inverse_temperature = 1.0;
    uint64_t weight[256] = {};
    uint32_t count[256] = {};

    uint64_t key(int i) const { return lk::sampling::order_key(logits[i], i); }
    double offset(int i) const { return lk::sampling::scaled_offset(logits[i], largest, inverse_temperature); }
    int size() const { return static_cast<int>(logits.size()); }

    int32_t argmax() const {
        int32_t best = 0;
        for (int i = 1; i < size(); ++i)
            if (logits[i] > logits[best]) best = i;
        return best;
    }
    uint64_t sum_mass(uint64_t limit) const {
        uint64_t total = 0;
        for (int i = 0; i < size(); ++i)
            if (key(i) <= limit) total += lk::sampling::mass_of(offset(i));
        return total;
    }
    uint64_t last_key_at_least(double x) const {
        uint64_t last = 0;
        for (int i = 0; i < size(); ++i)
            if (offset(i) >= x) last = std::max(last, key(i));
        return last;
    }
    void histogram(uint64_t prefix, uint64_t mask, int shift, uint64_t limit, bool by_mass) {
        std::fill(std::begin(weight), std::end(weight), 0);
        std::fill(std::begin(count), std::end(count), 0);
        for (int i = 0; i < size(); ++i) {
            const uint64_t k = key(i);
            if (k > limit || (k & mask) != prefix) continue;
            weight[(k >> shift) & 255] += by_mass ? lk::sampling::mass_of(offset(i)) : 1;
            ++count[(k >> shift) & 255];
        }
    }
    lk::sampling::SelectBucket bucket(uint64_t target) const {
        uint64_t before = 0;
        for (int d = 0; d < 256; ++d) {
            if (before + weight[d] >= target) return {d, before, count[d]};
            before += weight[d];
        }
        ADD_FAILURE() << "target " << target << " beyond the histogram's weight " << before;
        return {255, before, 0};
    }
    uint64_t only_key(uint64_t prefix, uint64_t mask, uint64_t limit) const {
        for (int i = 0; i < size(); ++i)
            if (key(i) <= limit && (key(i) & mask) == prefix) return key(i);
        ADD_FAILURE() << "no key matches";
        return 0;
    }
};

// The selections the CUDA sampler makes give the sort's token for every row shape, setting and draw.
TEST(Sampling, TheDeviceSamplersSelectionsPickTheSortsToken) {
    std::mt19937 rng(23);
    lk::NodeSampler sampler;
    HostRowOps ops;
    int sampled = 0;
    for (int trial = 0; trial < 1500; ++trial) {
        const int vocab = trial % 50 == 0 ? std::uniform_int_distribution<int>(20000, 40000)(rng)
                                          : std::uniform_int_distribution<int>(1, 700)(rng);
        std::vector<float> logits(vocab);
        const int shape = trial % 5;
        std::normal_distribution<float> normal(0.0f, shape == 0 ? 8.0f : shape == 1 ? 0.05f : 2.0f);
        for (float& x : logits) x = shape == 2 ? std::uniform_int_distribution<int>(-4, 4)(rng) * 0.25f : normal(rng);
        if (vocab > 3 && shape == 3) logits[0] = -0.0f, logits[2] = 0.0f;
        const lk::SamplingSettings s = lk_test::corner_sampling_settings(trial);
        lk::TokenCounts counts;
        counts.reset(vocab);
        for (int h = 0; h < 30; ++h) counts.add(std::uniform_int_distribution<int>(0, vocab - 1)(rng), h >= 10);

        ops.logits.resize(vocab);
        for (int i = 0; i < vocab; ++i)
            ops.logits[i] = lk::sampling::penalized_logit(logits[i], counts.all[i], counts.output[i], s.repetition_penalty,
                                                          s.presence_penalty, s.frequency_penalty);
        ops.largest = *std::max_element(ops.logits.begin(), ops.logits.end());
        ops.inverse_temperature = lk::sampling::inverse(s.temperature);
        const lk::sampling::RowRule rule = lk::row_rule(s, vocab);
        for (int g = 0; g < (vocab > 10000 ? 4 : 12); ++g) {
            const uint64_t draw = g == 0 ? 0 : g == 1 ? (1ull << 53) - 1 : lk::sampling::draw_bits(trial, g);
            const int32_t want = sampler.sample(logits.data(), vocab, s, counts, draw);
            ASSERT_EQ(lk::sampling::sample_row(ops, rule, draw), want)
                << "trial " << trial << " vocab " << vocab << " T " << s.temperature << " k " << s.top_k << " p " << s.top_p
                << " min_p " << s.min_p << " draw " << draw;
            ++sampled;
        }
    }
    EXPECT_GT(sampled, 15000);
}

}  // namespace

// ---- the fused sampling step through the C API ----

namespace {

struct ModelDeleter {
    void operator()(lk_model* m) const { lk_model_free(m); }
};
struct ContextDeleter {
    void operator()(lk_context* c) const { lk_context_free(c); }
};

struct Fixture {
    std::unique_ptr<lk_model, ModelDeleter> model;
    std::unique_ptr<lk_context, ContextDeleter> context;
    lk_model_params params;

    explicit Fixture(uint32_t seed) : params(lk_test::small_params(24, 4, 2, 2, 37)) {
        lk_model* m = nullptr;
        EXPECT_EQ(lk_model_init(&params, &m), LK_OK);
        EXPECT_EQ(lk_test::fill_random(m, params, LK_DTYPE_F32, seed), LK_OK);
        model.reset(m);
        lk_context_params cp = lk_test::context_params(LK_BACKEND_CPU, 128, 16, 1);
        lk_context* c = nullptr;
        EXPECT_EQ(lk_context_init(m, &cp, &c), LK_OK) << lk_last_error();
        context.reset(c);
    }

    void start(const std::vector<int32_t>& prompt) {
        lk_context_truncate(context.get(), 0);
        lk_batch chain{prompt.data(), nullptr, static_cast<int32_t>(prompt.size()) - 1, LK_LOGITS_NONE};
        ASSERT_EQ(lk_context_eval(context.get(), &chain), LK_OK);
        ASSERT_EQ(lk_context_commit(context.get(), nullptr, chain.n_tokens), LK_OK);
    }
};

// Plain sampling: one node per step, token_index = tokens generated so far.
std::vector<int32_t> plain_sampling(Fixture& f, const std::vector<int32_t>& prompt, lk_sampling_params p, int n) {
    f.start(prompt);
    std::vector<int32_t> out;
    int32_t root = prompt.back();
    while (static_cast<int>(out.size()) < n) {
        p.token_index = static_cast<int64_t>(out.size());
        lk_batch one{&root, nullptr, 1, LK_LOGITS_NONE};
        int32_t token = -1, count = 0;
        EXPECT_EQ(lk_context_decode_sample(f.context.get(), &one, &p, &token, 1, &count), LK_OK) << lk_last_error();
        if (count != 1) break;
        out.push_back(token);
        root = token;
    }
    return out;
}

}  // namespace

TEST(SamplingStep, LookaheadEmitsExactlyThePlainSampledTokensForEverySeed) {
    const std::vector<int32_t> prompt{1, 5, 9, 2};
    constexpr int kTokens = 40;
    std::mt19937 rng(3);
    int accepted_drafts = 0;
    for (uint32_t model_seed = 1; model_seed <= 2; ++model_seed) {
        Fixture f(model_seed);
        for (uint64_t seed = 0; seed < 60; ++seed) {
            const lk_sampling_params p = lk_test::sampling_settings(static_cast<int>(seed), seed * 7919 + model_seed);
            const std::vector<int32_t> plain = plain_sampling(f, prompt, p, kTokens);
            ASSERT_EQ(static_cast<int>(plain.size()), kTokens);

            // Drafts: plain's own continuation on one branch (so runs get accepted), random tokens on others,
            // and now and then a wrong first token, in random tree shapes.
            f.start(prompt);
            std::vector<int32_t> emitted;
            int32_t root = prompt.back();
            while (static_cast<int>(emitted.size()) < kTokens) {
                const size_t at = emitted.size();
                std::vector<int32_t> tokens{root}, parents{-1};
                int32_t parent = 0;
                const int chain = std::uniform_int_distribution<int>(0, 5)(rng);
                for (int d = 0; d < chain && at + d < plain.size(); ++d) {
                    tokens.push_back(d == 0 && rng() % 5 == 0 ? static_cast<int32_t>(rng() % 37) : plain[at + d]);
                    parents.push_back(parent);
                    parent = static_cast<int32_t>(tokens.size()) - 1;
                }
                for (int extra = std::uniform_int_distribution<int>(0, 6)(rng); extra > 0; --extra) {
                    tokens.push_back(static_cast<int32_t>(rng() % 37));
                    parents.push_back(static_cast<int32_t>(rng() % (tokens.size() - 1)));
                }
                lk_sampling_params step = p;
                step.token_index = static_cast<int64_t>(at);
                lk_batch tree{tokens.data(), parents.data(), static_cast<int32_t>(tokens.size()), LK_LOGITS_NONE};
                std::vector<int32_t> out(tokens.size());
                int32_t count = 0;
                ASSERT_EQ(lk_context_decode_sample(f.context.get(), &tree, &step, out.data(), static_cast<int32_t>(out.size()), &count),
                          LK_OK)
                    << lk_last_error();
                accepted_drafts += count - 1;
                emitted.insert(emitted.end(), out.begin(), out.begin() + count);
                root = emitted.back();
            }
            emitted.resize(kTokens);
            ASSERT_EQ(emitted, plain) << "model " << model_seed << " seed " << seed;
        }
    }
    EXPECT_GT(accepted_drafts, 1000) << "the drafts must get accepted often for the test to mean anything";
}

// The penalties count the sequence the context holds now: after other generations and truncations, a
// penalized generation equals the same generation in a fresh context.
TEST(SamplingStep, PenaltiesCountTheCurrentSequenceAfterEarlierGenerations) {
    const std::vector<int32_t> first{1, 5, 9, 2, 7, 7}, second{3, 3, 8, 1};
    lk_sampling_params p = lk_test::sampling_settings(1, 42);  // repetition penalty 1.2, top-k 8
    p.presence_penalty = 0.4f;
    p.frequency_penalty = 0.3f;
    Fixture fresh(9);
    p.n_prompt = static_cast<int32_t>(second.size());
    const std::vector<int32_t> want = plain_sampling(fresh, second, p, 30);
    Fixture reused(9);
    lk_sampling_params other = p;
    other.n_prompt = static_cast<int32_t>(first.size());
    plain_sampling(reused, first, other, 25);
    plain_sampling(reused, second, other, 10);  // the same tokens counted under another prompt length
    EXPECT_EQ(plain_sampling(reused, second, p, 30), want);
}

// Siblings with the same token (the parallel draft mode copies branches) sample alike: the step takes the
// deepest matching path, not the first sibling's.
TEST(SamplingStep, DuplicateSiblingsYieldTheDeepestMatchingPath) {
    Fixture f(6);
    const std::vector<int32_t> prompt{2, 8, 1, 5};
    for (uint64_t seed = 0; seed < 20; ++seed) {
        const lk_sampling_params p = lk_test::sampling_settings(static_cast<int>(seed), seed + 77);
        const std::vector<int32_t> plain = plain_sampling(f, prompt, p, 4);
        ASSERT_EQ(plain.size(), 4u);
        f.start(prompt);
        // root -> a (plain[0]) ; root -> b (plain[0]) -> plain[1] -> plain[2]
        const std::vector<int32_t> tokens{prompt.back(), plain[0], plain[0], plain[1], plain[2]};
        const std::vector<int32_t> parents{-1, 0, 0, 2, 3};
        lk_batch tree{tokens.data(), parents.data(), 5, LK_LOGITS_NONE};
        lk_sampling_params step = p;
        std::vector<int32_t> out(5);
        int32_t count = 0;
        ASSERT_EQ(lk_context_decode_sample(f.context.get(), &tree, &step, out.data(), 5, &count), LK_OK) << lk_last_error();
        ASSERT_EQ(count, 4) << "seed " << seed;
        EXPECT_EQ(std::vector<int32_t>(out.begin(), out.begin() + 4), plain) << "seed " << seed;
    }
}

TEST(SamplingStep, TemperatureZeroIsGreedyDecoding) {
    Fixture f(4);
    const std::vector<int32_t> prompt{3, 1, 4};
    lk_sampling_params p{};
    p.top_p = 1.0f;
    p.repetition_penalty = 1.0f;
    p.seed = 99;
    const std::vector<int32_t> sampled = plain_sampling(f, prompt, p, 30);
    f.start(prompt);
    std::vector<int32_t> greedy;
    int32_t root = prompt.back();
    for (int i = 0; i < 30; ++i) {
        lk_batch one{&root, nullptr, 1, LK_LOGITS_NONE};
        int32_t count = 0;
        ASSERT_EQ(lk_context_decode_greedy(f.context.get(), &one, &root, 1, &count), LK_OK);
        greedy.push_back(root);
    }
    EXPECT_EQ(sampled, greedy);
}

TEST(SamplingStep, BadSettingsAreRefusedAndCommitNothing) {
    Fixture f(5);
    f.start({1, 2, 3});
    lk_sampling_params p = lk_test::sampling_settings(0, 1);
    p.top_p = 0.0f;
    const int32_t root = 3;
    lk_batch one{&root, nullptr, 1, LK_LOGITS_NONE};
    int32_t out = -1, count = -1;
    EXPECT_EQ(lk_context_decode_sample(f.context.get(), &one, &p, &out, 1, &count), LK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(std::string(lk_last_error()).find("top_p"), std::string::npos) << lk_last_error();
    EXPECT_EQ(count, 0);
    EXPECT_EQ(lk_context_decode_sample(f.context.get(), &one, nullptr, &out, 1, &count), LK_ERR_INVALID_ARGUMENT);
    lk_context_info info{};
    ASSERT_EQ(lk_context_get_info(f.context.get(), &info), LK_OK);
    EXPECT_EQ(info.n_past, 2);
    EXPECT_EQ(info.n_pending, 0);
}
