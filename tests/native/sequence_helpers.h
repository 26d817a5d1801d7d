// Helpers of the tests of several sequences per context (sequences_test.cpp, prefix_sharing_test.cpp):
// small random models, contexts with a KV pool, and the plain-decoding oracle.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "test_model.h"

namespace lk_test::sequences {

using ModelPtr = std::unique_ptr<lk_model, lk_test::ModelDeleter>;
using ContextPtr = std::unique_ptr<lk_context, lk_test::ContextDeleter>;

inline bool error_mentions(const std::string& needle) { return std::string(lk_last_error()).find(needle) != std::string::npos; }

inline ModelPtr make_model(int32_t dtype, uint32_t seed) {
    const lk_model_params p = lk_test::small_params(32, 4, 2, 2, 37);
    lk_model* raw = nullptr;
    EXPECT_EQ(lk_model_init(&p, &raw), LK_OK) << lk_last_error();
    ModelPtr model(raw);
    EXPECT_EQ(lk_test::fill_random(model.get(), p, dtype, seed), LK_OK) << lk_last_error();
    return model;
}

inline ContextPtr make_context(lk_model* model, int32_t n_seq_max, int32_t n_ctx, int32_t n_kv_tokens = 0,
                               int32_t kv_type = LK_DTYPE_F32) {
    lk_context_params cp = lk_test::context_params(LK_BACKEND_CPU, n_ctx, std::min(64, n_ctx), 1);
    cp.n_seq_max = n_seq_max;
    cp.n_kv_tokens = n_kv_tokens;
    cp.kv_type = kv_type;
    lk_context* raw = nullptr;
    EXPECT_EQ(lk_context_init(model, &cp, &raw), LK_OK) << lk_last_error();
    return ContextPtr(raw);
}

// Sampling settings for sequence s of the sampled tests: a seed and penalties of its own.
inline lk_sampling_params sampling_for(int s, int32_t n_prompt) {
    lk_sampling_params sp{};
    sp.temperature = 0.7f + 0.2f * s;
    sp.top_k = s % 2 == 0 ? 0 : 12;
    sp.top_p = s == 2 ? 0.9f : 1.0f;
    sp.min_p = 0.0f;
    sp.repetition_penalty = s == 3 ? 1.3f : 1.0f;
    sp.presence_penalty = s == 1 ? 0.5f : 0.0f;
    sp.frequency_penalty = 0.0f;
    sp.n_prompt = n_prompt;
    sp.seed = 1000 + s;
    return sp;
}

// Plain decoding (one node per step; greedy, or sampling with sequence s's settings) of a prompt on a
// context of its own through the single-sequence calls: the oracle batched steps are held to.
inline std::vector<int32_t> plain_decode(lk_model* model, const std::vector<int32_t>& prompt, int n, bool sampled, int s,
                                         int32_t kv_type = LK_DTYPE_F32) {
    ContextPtr ctx = make_context(model, 1, 200, 0, kv_type);
    lk_batch chain{prompt.data(), nullptr, static_cast<int32_t>(prompt.size()) - 1, LK_LOGITS_NONE};
    EXPECT_EQ(lk_context_eval(ctx.get(), &chain), LK_OK) << lk_last_error();
    EXPECT_EQ(lk_context_commit(ctx.get(), nullptr, chain.n_tokens), LK_OK);
    lk_sampling_params sp = sampling_for(s, static_cast<int32_t>(prompt.size()));
    std::vector<int32_t> out;
    int32_t root = prompt.back();
    for (int i = 0; i < n; ++i) {
        lk_batch one{&root, nullptr, 1, LK_LOGITS_NONE};
        int32_t count = 0;
        sp.token_index = i;
        const lk_status status = sampled ? lk_context_decode_sample(ctx.get(), &one, &sp, &root, 1, &count)
                                         : lk_context_decode_greedy(ctx.get(), &one, &root, 1, &count);
        EXPECT_EQ(status, LK_OK) << lk_last_error();
        out.push_back(root);
    }
    return out;
}

}  // namespace lk_test::sequences
