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
    return s.top_k > 0 && s.top_k < vocab_size ? sample_top_k(s, u) : sample_head_first(vocab_size, s, u);
}

namespace {

// The fixed order: logit (so probability) descending, id ascending on ties.
bool before(const NodeSampler::Candidate& a, const NodeSampler::Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
}

}  // namespace

// Top-k: only k candidates matter, so they are sorted and summed in the fixed order.
int32_t NodeSampler::sample_top_k(const SamplingSettings& s, double u) {
    const int32_t k = s.top_k;
    std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(), before);
    probabilities_.resize(k);
    const double top = candidates_[0].logit;
    for (int32_t j = 0; j < k; ++j) probabilities_[j] = std::exp(static_cast<double>(candidates_[j].logit) - top);
    return pick(cut(k, s), u);
}

// Without top-k the whole vocabulary is kept before top-p and min-p: its mass is summed in id order (one
// pass), and only the head of the fixed order is sorted, growing until it decides the top-p or min-p cut
// or the draw, which most mass being in few tokens makes short.
int32_t NodeSampler::sample_head_first(int32_t vocab_size, const SamplingSettings& s, double u) {
    float top = candidates_[0].logit;
    for (const Candidate& c : candidates_) top = std::max(top, c.logit);
    double total = 0.0;
    for (const Candidate& c : candidates_) total += std::exp(static_cast<double>(c.logit) - top);
    const bool cuts = s.top_p < 1.0f || s.min_p > 0.0f;
    const double mass_limit = static_cast<double>(s.top_p) * total, threshold = u * total;
    probabilities_.clear();
    double cumulative = 0.0;
    for (int32_t sorted = 0, head = std::min(vocab_size, 64); sorted < vocab_size; head = std::min(vocab_size, head * 8)) {
        std::partial_sort(candidates_.begin() + sorted, candidates_.begin() + head, candidates_.end(), before);
        for (int32_t j = sorted; j < head; ++j) {
            const double p = std::exp(static_cast<double>(candidates_[j].logit) - top);
            if (cuts && j > 0 && ((s.top_p < 1.0f && cumulative >= mass_limit) || p < s.min_p)) return pick(j, u);
            probabilities_.push_back(p);
            cumulative += p;
            if (!cuts && cumulative > threshold) return candidates_[j].token;
        }
        sorted = head;
    }
    return cuts ? pick(vocab_size, u) : candidates_[vocab_size - 1].token;  // u * total rounded up to the whole mass
}

// Top-p keeps the shortest prefix whose mass reaches top_p (a token is kept while the mass before it is below
// top_p, as in HF's ascending formulation); min-p keeps tokens at least min_p times the largest. Returns how
// many of the kept candidates (probabilities_ holds theirs, in the fixed order) remain.
int32_t NodeSampler::cut(int32_t kept, const SamplingSettings& s) const {
    if (s.top_p >= 1.0f && s.min_p <= 0.0f) return kept;
    double total = 0.0;
    for (int32_t j = 0; j < kept; ++j) total += probabilities_[j];
    const double mass_limit = static_cast<double>(s.top_p) * total;
    double before_mass = 0.0;
    int32_t j = 1;
    for (; j < kept; ++j) {
        before_mass += probabilities_[j - 1];
        if ((s.top_p < 1.0f && before_mass >= mass_limit) || probabilities_[j] < s.min_p) break;
    }
    return j;
}

// The inverse CDF of draw u over the first kept candidates, their mass summed in the fixed order.
int32_t NodeSampler::pick(int32_t kept, double u) const {
    double total = 0.0;
    for (int32_t j = 0; j < kept; ++j) total += probabilities_[j];
    const double threshold = u * total;
    double cumulative = 0.0;
    for (int32_t j = 0; j < kept; ++j) {
        cumulative += probabilities_[j];
        if (cumulative > threshold) return candidates_[j].token;
    }
    return candidates_[kept - 1].token;  // u * total rounded up to the whole mass
}

}  // namespace lk
