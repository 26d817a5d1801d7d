#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "error.h"

namespace lk {

uint64_t splitmix64_output(uint64_t seed, uint64_t k) {
    uint64_t z = seed + k * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double sampling_draw(uint64_t seed, uint64_t index) {
    return static_cast<double>(splitmix64_output(seed, index + 1) >> 11) * 0x1.0p-53;
}

void check_sampling_settings(const SamplingSettings& s) {
    require(std::isfinite(s.temperature) && s.temperature >= 0.0f,
            "temperature must be a finite number >= 0, got " + std::to_string(s.temperature));
    require(s.top_k >= 0, "top_k must be >= 0 (0 = off), got " + std::to_string(s.top_k));
    require(s.top_p > 0.0f && s.top_p <= 1.0f, "top_p must be in (0, 1], got " + std::to_string(s.top_p));
    require(s.min_p >= 0.0f && s.min_p <= 1.0f, "min_p must be in [0, 1], got " + std::to_string(s.min_p));
    require(std::isfinite(s.repetition_penalty) && s.repetition_penalty > 0.0f,
            "repetition_penalty must be a finite number > 0, got " + std::to_string(s.repetition_penalty));
    require(std::isfinite(s.presence_penalty), "presence_penalty must be finite");
    require(std::isfinite(s.frequency_penalty), "frequency_penalty must be finite");
}

void TokenCounts::reset(int32_t vocab_size) {
    all.assign(vocab_size, 0);
    output.assign(vocab_size, 0);
}

void TokenCounts::add(int32_t token, bool is_output) {
    ++all[token];
    if (is_output) ++output[token];
}

int32_t NodeSampler::sample(const float* logits, int32_t vocab_size, const SamplingSettings& s, const TokenCounts& counts,
                            double u) {
    candidates_.resize(vocab_size);
    for (int32_t i = 0; i < vocab_size; ++i) {
        float logit = logits[i];
        if (counts.all[i] > 0) logit = logit > 0.0f ? logit / s.repetition_penalty : logit * s.repetition_penalty;
        if (counts.output[i] > 0)
            logit -= s.presence_penalty + s.frequency_penalty * static_cast<float>(counts.output[i]);
        if (!std::isfinite(logit)) return -1;
        candidates_[i] = {logit, i};
    }
    if (s.temperature == 0.0f) {
        int32_t best = 0;  // strict > keeps the lowest id on ties
        for (int32_t i = 1; i < vocab_size; ++i)
            if (candidates_[i].logit > candidates_[best].logit) best = i;
        return best;
    }
    for (Candidate& c : candidates_) c.logit /= s.temperature;

    // The fixed order: probability (that is, logit) descending, id ascending on ties. Top-k keeps a prefix
    // of it, so a partial sort suffices.
    auto before = [](const Candidate& a, const Candidate& b) { return a.logit > b.logit || (a.logit == b.logit && a.token < b.token); };
    int32_t kept = s.top_k > 0 && s.top_k < vocab_size ? s.top_k : vocab_size;
    std::partial_sort(candidates_.begin(), candidates_.begin() + kept, candidates_.end(), before);

    // Probabilities relative to the largest (exp(0) = 1), summed in the fixed order.
    probabilities_.resize(kept);
    const double top = candidates_[0].logit;
    double total = 0.0;
    for (int32_t j = 0; j < kept; ++j) {
        probabilities_[j] = std::exp(static_cast<double>(candidates_[j].logit) - top);
        total += probabilities_[j];
    }
    // Top-p keeps the shortest prefix whose mass reaches top_p (a token is kept while the mass before it is
    // below top_p, as in HF's ascending formulation); min-p keeps tokens at least min_p times the largest.
    if (s.top_p < 1.0f || s.min_p > 0.0f) {
        const double mass_limit = static_cast<double>(s.top_p) * total, floor = s.min_p;
        double before_mass = 0.0;
        int32_t cut = 1;
        for (; cut < kept; ++cut) {
            before_mass += probabilities_[cut - 1];
            if (s.top_p < 1.0f && before_mass >= mass_limit) break;
            if (probabilities_[cut] < floor) break;
        }
        kept = cut;
        total = 0.0;
        for (int32_t j = 0; j < kept; ++j) total += probabilities_[j];
    }
    // Inverse CDF over the kept prefix.
    const double threshold = u * total;
    double cumulative = 0.0;
    for (int32_t j = 0; j < kept; ++j) {
        cumulative += probabilities_[j];
        if (cumulative > threshold) return candidates_[j].token;
    }
    return candidates_[kept - 1].token;  // u * total rounded up to the whole mass
}

}  // namespace lk
