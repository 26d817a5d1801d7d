// Sampling settings that reach the rule's corners, picked by trial number: temperatures from 0 to 4, top-k
// 1 to 1000, top-p from 1e-6 to 1, min-p 1e-6 to 1, each penalty on and off (frequency negative too). The
// cycles have different periods, so trials combine them.
#pragma once

#include "common/sampling.h"

namespace lk_test {

inline lk::SamplingSettings corner_sampling_settings(int trial) {
    lk::SamplingSettings s;
    const float temperatures[] = {0.0f, 0.05f, 0.3f, 0.7f, 1.0f, 1.5f, 4.0f};
    s.temperature = temperatures[trial % 7];
    const int ks[] = {0, 1, 2, 8, 40, 1000};
    s.top_k = ks[(trial / 7) % 6];
    const float ps[] = {1.0f, 0.9f, 0.5f, 1e-6f, 0.999f};
    s.top_p = ps[(trial / 3) % 5];
    const float min_ps[] = {0.0f, 0.05f, 0.0f, 1.0f, 1e-6f};
    s.min_p = min_ps[(trial / 11) % 5];
    s.repetition_penalty = trial % 2 == 0 ? 1.3f : 1.0f;
    s.presence_penalty = trial % 3 == 1 ? 0.5f : 0.0f;
    s.frequency_penalty = trial % 5 == 2 ? -0.3f : 0.0f;
    return s;
}

}  // namespace lk_test
