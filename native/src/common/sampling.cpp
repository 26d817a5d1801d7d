#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "error.h"

namespace lk {

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

sampling::RowRule row_rule(const SamplingSettings& s, int32_t vocab_size) {
    return {s.temperature, s.top_k, s.top_p, s.min_p > 0.0f, s.min_p > 0.0f ? std::log(static_cast<double>(s.min_p)) : 0.0,
            vocab_size};
}

void TokenCounts::reset(int32_t vocab_size) {
    all.assign(vocab_size, 0);
    output.assign(vocab_size, 0);
}

void TokenCounts::add(int32_t token, bool is_output, int32_t delta) {
    all[token] += delta;
    if (is_output) output[token] += delta;
}

namespace {

// The fixed order: penalized logit descending, id ascending on ties.
struct Before {
    bool operator()(const NodeSampler::Candidate& a, const NodeSampler::Candidate& b) const {
        return a.logit > b.logit || (a.logit == b.logit && a.token < b.token);
    }
};


}  // namespace

void NodeSampler::sort_through(int32_t j) {
    const int32_t n = static_cast<int32_t>(candidates_.size());
    if (j < sorted_) return;
    int32_t head = std::max(64, sorted_ * 8);
    while (head <= j) head *= 8;
    head = std::min(n, head);
    std::partial_sort(candidates_.begin() + sorted_, candidates_.begin() + head, candidates_.end(), Before{});
    sorted_ = head;
}

int32_t NodeSampler::sample(const float* logits, int32_t vocab_size, const SamplingSettings& s, const TokenCounts& counts,
                            uint64_t draw) {
    candidates_.resize(vocab_size);
    int32_t best = 0;  // the argmax: strict > keeps the lowest id on ties
    float largest = 0.0f;
    for (int32_t i = 0; i < vocab_size; ++i) {
        const float logit = sampling::penalized_logit(logits[i], counts.all[i], counts.output[i], s.repetition_penalty,
                                                      s.presence_penalty, s.frequency_penalty);
        if (!std::isfinite(logit)) return -1;
        candidates_[i] = {logit, i, 0};
        if (i == 0 || logit > largest) {
            largest = logit;
            best = i;
        }
    }
    if (s.temperature == 0.0f) return best;
    // The masses of the tokens top-k keeps (all without top-k), and their total: an exact integer sum, so in
    // any order.
    sorted_ = 0;
    int32_t kept = vocab_size;
    if (s.top_k > 0 && s.top_k < vocab_size) {
        kept = s.top_k;
        std::partial_sort(candidates_.begin(), candidates_.begin() + kept, candidates_.end(), Before{});
        sorted_ = kept;
    }
    const double inverse_temperature = sampling::inverse(s.temperature);
    uint64_t total = 0;
    for (int32_t j = 0; j < kept; ++j) {
        Candidate& c = candidates_[j];
        total += c.mass = sampling::mass_of(sampling::scaled_offset(c.logit, largest, inverse_temperature));
    }
    // Top-p: the last kept token is the first whose cumulative mass reaches the target.
    if (s.top_p < 1.0f) {
        const uint64_t target = sampling::top_p_target(s.top_p, total);
        uint64_t cumulative = 0;
        for (int32_t j = 0; j < kept; ++j) {
            sort_through(j);
            cumulative += candidates_[j].mass;
            if (cumulative >= target) {
                kept = j + 1;
                total = cumulative;
                break;
            }
        }
    }
    // Min-p: tokens at least min_p times as likely as the top one, that is with offset >= log(min_p).
    if (s.min_p > 0.0f) {
        const sampling::RowRule rule = row_rule(s, vocab_size);
        for (int32_t j = 1; j < kept; ++j) {
            sort_through(j);
            if (sampling::scaled_offset(candidates_[j].logit, largest, inverse_temperature) < rule.min_p_offset) {
                kept = j;
                total = 0;
                for (int32_t i = 0; i < kept; ++i) total += candidates_[i].mass;
                break;
            }
        }
    }
    // The inverse CDF over the kept mass.
    const uint64_t threshold = sampling::draw_threshold(draw, total);
    uint64_t cumulative = 0;
    for (int32_t j = 0; j < kept; ++j) {
        sort_through(j);
        cumulative += candidates_[j].mass;
        if (cumulative > threshold) return candidates_[j].token;
    }
    return -1;  // unreachable: the threshold is below the kept mass
}

}  // namespace lk
