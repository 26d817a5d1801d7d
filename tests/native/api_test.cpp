// The C boundary: every misuse returns a status and a message naming the problem; nothing crashes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cpu/kernels.h"
#include "test_model.h"

namespace {

using ModelPtr = std::unique_ptr<lk_model, lk_test::ModelDeleter>;
using ContextPtr = std::unique_ptr<lk_context, lk_test::ContextDeleter>;

bool error_mentions(const std::string& needle) { return std::string(lk_last_error()).find(needle) != std::string::npos; }

ModelPtr complete_model(const lk_model_params& p) {
    lk_model* raw = nullptr;
    EXPECT_EQ(lk_model_init(&p, &raw), LK_OK) << lk_last_error();
    EXPECT_EQ(lk_test::fill_random(raw, p, LK_DTYPE_F32, 1), LK_OK) << lk_last_error();
    return ModelPtr(raw);
}

ContextPtr context_for(lk_model* model, int32_t n_ctx = 0, int32_t n_batch = 0) {
    lk_context_params cp = lk_test::context_params(LK_BACKEND_CPU, n_ctx, n_batch, 1);
    lk_context* raw = nullptr;
    EXPECT_EQ(lk_context_init(model, &cp, &raw), LK_OK) << lk_last_error();
    return ContextPtr(raw);
}

TEST(Api, ReportsVersionAndSystemInfo) {
    EXPECT_EQ(lk_abi_version(), LK_ABI_VERSION);
    EXPECT_NE(std::string(lk_system_info()).find("cpu"), std::string::npos);
    EXPECT_EQ(lk_backend_available(LK_BACKEND_CPU), 1);
    EXPECT_EQ(lk_backend_available(12345), 0);
}

TEST(Api, NullArgumentsAreErrors) {
    lk_model* model = nullptr;
    EXPECT_EQ(lk_model_init(nullptr, &model), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("params is NULL"));
    lk_model_params p = lk_test::small_params();
    EXPECT_EQ(lk_model_init(&p, nullptr), LK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(lk_model_set_tensor(nullptr, 0, 0, 0, 1, 1, &p), LK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(lk_context_eval(nullptr, nullptr), LK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(lk_context_commit(nullptr, nullptr, 1), LK_ERR_INVALID_ARGUMENT);
    lk_context_info info;
    EXPECT_EQ(lk_context_get_info(nullptr, &info), LK_ERR_INVALID_ARGUMENT);
    lk_model_free(nullptr);
    lk_context_free(nullptr);
}

TEST(Api, MeasuresReadBandwidthAndRejectsBadArguments) {
    double gbps = -1;
    EXPECT_EQ(lk_measure_read_bandwidth(1, nullptr), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("out_gbps is NULL"));
    EXPECT_EQ(lk_measure_read_bandwidth(0, &gbps), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("n_threads"));
    EXPECT_EQ(gbps, -1);
    ASSERT_EQ(lk_measure_read_bandwidth(2, &gbps), LK_OK) << lk_last_error();
    EXPECT_GT(gbps, 0.1);  // a sanity bound only: tests never judge speed
}

TEST(Api, RejectsInconsistentModelParameters) {
    lk_model* model = nullptr;
    lk_model_params p = lk_test::small_params();
    p.n_kv_heads = 3;  // 4 heads are not a multiple of 3
    EXPECT_EQ(lk_model_init(&p, &model), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("n_kv_heads"));
    EXPECT_EQ(model, nullptr);
    p = lk_test::small_params();
    p.head_dim = 5;
    EXPECT_EQ(lk_model_init(&p, &model), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("head_dim"));
    p = lk_test::small_params();
    p.vocab_size = 0;
    EXPECT_EQ(lk_model_init(&p, &model), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("vocab_size"));
    p = lk_test::small_params();
    p.reserved = 1;
    EXPECT_EQ(lk_model_init(&p, &model), LK_ERR_INVALID_ARGUMENT);
}

TEST(Api, TensorShapeKindAndDtypeAreChecked) {
    lk_model_params p = lk_test::small_params();
    lk_model* raw = nullptr;
    ASSERT_EQ(lk_model_init(&p, &raw), LK_OK);
    ModelPtr model(raw);
    std::vector<float> data(p.vocab_size * p.hidden_size, 0.5f);
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, LK_DTYPE_F32, p.vocab_size, p.hidden_size - 1, data.data()),
              LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("token_embedding has shape"));
    EXPECT_EQ(lk_model_set_tensor(model.get(), 99, 0, LK_DTYPE_F32, 1, 1, data.data()), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("unknown tensor kind"));
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_ATTN_NORM, 0, 9, p.hidden_size, 1, data.data()), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("unknown dtype"));
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_ATTN_NORM, p.n_layers, LK_DTYPE_F32, p.hidden_size, 1, data.data()),
              LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("layer"));
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_ATTN_Q_BIAS, 0, LK_DTYPE_F32, p.n_heads * p.head_dim, 1, data.data()),
              LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("no q/k/v biases"));
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_ATTN_NORM, 0, LK_DTYPE_F32, p.hidden_size, 1, nullptr), LK_ERR_INVALID_ARGUMENT);
    std::vector<float> freqs(p.head_dim / 2 + 1, 0.1f);
    EXPECT_EQ(lk_model_set_rope_frequencies(model.get(), freqs.data(), static_cast<int32_t>(freqs.size())), LK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(lk_model_set_rope_frequencies(model.get(), freqs.data(), p.head_dim / 2), LK_OK) << lk_last_error();
}

TEST(Api, ContextNeedsEveryTensorAndValidParameters) {
    lk_model_params p = lk_test::small_params();
    lk_model* raw = nullptr;
    ASSERT_EQ(lk_model_init(&p, &raw), LK_OK);
    ModelPtr model(raw);
    lk_context_params cp = lk_test::context_params(LK_BACKEND_CPU, 0, 0, 1);
    lk_context* ctx = nullptr;
    EXPECT_EQ(lk_context_init(model.get(), &cp, &ctx), LK_ERR_INVALID_STATE);
    EXPECT_TRUE(error_mentions("token_embedding was never set"));

    ModelPtr full = complete_model(p);
    cp.n_ctx = p.max_context + 1;
    EXPECT_EQ(lk_context_init(full.get(), &cp, &ctx), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("n_ctx"));
    cp = lk_test::context_params(LK_BACKEND_CPU, 16, 17, 1);
    EXPECT_EQ(lk_context_init(full.get(), &cp, &ctx), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("n_batch"));
    cp = lk_test::context_params(77, 0, 0, 1);
    EXPECT_EQ(lk_context_init(full.get(), &cp, &ctx), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("unknown backend"));
    cp = lk_test::context_params(LK_BACKEND_CPU, 0, 0, -1);
    EXPECT_EQ(lk_context_init(full.get(), &cp, &ctx), LK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(ctx, nullptr);

    cp = lk_test::context_params(LK_BACKEND_AUTO, 0, 0, 0);
    ASSERT_EQ(lk_context_init(full.get(), &cp, &ctx), LK_OK) << lk_last_error();
    ContextPtr owned(ctx);
    lk_context_info info{};
    ASSERT_EQ(lk_context_get_info(ctx, &info), LK_OK);
    EXPECT_EQ(info.backend, lk_backend_available(LK_BACKEND_CUDA) ? LK_BACKEND_CUDA : LK_BACKEND_CPU)
        << "auto picks CUDA exactly when a device is present";
    EXPECT_EQ(info.n_ctx, p.max_context);
    EXPECT_GE(info.n_threads, 1);

    std::vector<float> norm(p.hidden_size, 1.0f);
    EXPECT_EQ(lk_model_set_tensor(full.get(), LK_TENSOR_OUTPUT_NORM, 0, LK_DTYPE_F32, p.hidden_size, 1, norm.data()),
              LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("in use by a context"));
}

TEST(Api, CallOrderAndCapacityAreEnforced) {
    lk_model_params p = lk_test::small_params();
    ModelPtr model = complete_model(p);
    ContextPtr ctx = context_for(model.get(), 8, 4);
    const float* logits = nullptr;
    EXPECT_EQ(lk_context_get_logits(ctx.get(), 0, &logits), LK_ERR_INVALID_STATE);
    EXPECT_EQ(lk_context_commit(ctx.get(), nullptr, 1), LK_ERR_INVALID_STATE);

    std::vector<int32_t> tokens{1, 2, 3, 4};
    lk_batch last{tokens.data(), nullptr, 4, LK_LOGITS_LAST};
    ASSERT_EQ(lk_context_eval(ctx.get(), &last), LK_OK) << lk_last_error();
    EXPECT_EQ(lk_context_get_logits(ctx.get(), 0, &logits), LK_ERR_INVALID_STATE);
    EXPECT_TRUE(error_mentions("did not keep logits"));
    EXPECT_EQ(lk_context_get_logits(ctx.get(), 3, &logits), LK_OK);
    EXPECT_EQ(lk_context_get_logits(ctx.get(), 4, &logits), LK_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(lk_context_commit(ctx.get(), nullptr, 4), LK_OK);
    ASSERT_EQ(lk_context_eval(ctx.get(), &last), LK_OK);
    ASSERT_EQ(lk_context_commit(ctx.get(), nullptr, 4), LK_OK);

    lk_batch one{tokens.data(), nullptr, 1, LK_LOGITS_ALL};
    EXPECT_EQ(lk_context_eval(ctx.get(), &one), LK_ERR_CONTEXT_FULL);
    EXPECT_TRUE(error_mentions("does not fit"));
    EXPECT_EQ(lk_context_truncate(ctx.get(), 9), LK_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(lk_context_truncate(ctx.get(), 7), LK_OK);

    std::vector<int32_t> bad_token{p.vocab_size};
    lk_batch bad{bad_token.data(), nullptr, 1, LK_LOGITS_ALL};
    EXPECT_EQ(lk_context_eval(ctx.get(), &bad), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("out of range"));

    int32_t out[2];
    int32_t count = -1;
    std::vector<int32_t> parents{-1, 0};
    lk_batch tree{tokens.data(), parents.data(), 2, LK_LOGITS_NONE};
    ASSERT_EQ(lk_context_truncate(ctx.get(), 0), LK_OK);
    EXPECT_EQ(lk_context_decode_greedy(ctx.get(), &tree, out, 1, &count), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("capacity"));
    EXPECT_EQ(count, 0);
    ASSERT_EQ(lk_context_decode_greedy(ctx.get(), &tree, out, 2, &count), LK_OK) << lk_last_error();
    EXPECT_GE(count, 1);
    lk_context_info info{};
    ASSERT_EQ(lk_context_get_info(ctx.get(), &info), LK_OK);
    EXPECT_EQ(info.n_past, count);
}

// Greedy over a draft tree from a fixed prefix; returns the emitted tokens.
std::vector<int32_t> draft_step(lk_context* ctx) {
    std::vector<int32_t> prefix{1, 5, 9, 2, 7}, tokens{3, 8, 4, 6}, parents{-1, 0, 0, 1}, out(4);
    EXPECT_EQ(lk_context_truncate(ctx, 0), LK_OK);
    lk_batch chain{prefix.data(), nullptr, 5, LK_LOGITS_NONE};
    EXPECT_EQ(lk_context_eval(ctx, &chain), LK_OK) << lk_last_error();
    EXPECT_EQ(lk_context_commit(ctx, nullptr, 5), LK_OK) << lk_last_error();
    lk_batch tree{tokens.data(), parents.data(), 4, LK_LOGITS_NONE};
    int32_t count = 0;
    EXPECT_EQ(lk_context_decode_greedy(ctx, &tree, out.data(), 4, &count), LK_OK) << lk_last_error();
    out.resize(count);
    return out;
}

TEST(Api, ProfilingTimesEveryStageWithoutChangingResults) {
    lk_model_params p = lk_test::small_params();
    ModelPtr model = complete_model(p);
    ContextPtr plain = context_for(model.get(), 32, 8), profiled = context_for(model.get(), 32, 8);
    int32_t count = -1;
    ASSERT_EQ(lk_context_get_profile(profiled.get(), nullptr, 0, &count), LK_OK) << lk_last_error();
    ASSERT_EQ(count, 10);

    ASSERT_EQ(lk_context_set_profiling(profiled.get(), LK_PROFILE_STAGES), LK_OK);
    EXPECT_EQ(draft_step(profiled.get()), draft_step(plain.get()));
    std::vector<lk_stage_time> stages(count);
    ASSERT_EQ(lk_context_get_profile(profiled.get(), stages.data(), count, &count), LK_OK) << lk_last_error();
    const char* names[] = {"embed", "attention_inputs", "attention", "attention_output", "feed_forward",
                           "feed_forward_down", "output", "verify", "compact", "device"};
    EXPECT_STREQ(stages[9].name, "device");
    EXPECT_EQ(stages[9].calls, 0) << "device time is a mode of its own";
    for (int i = 0; i < 9; ++i) {
        EXPECT_STREQ(stages[i].name, names[i]);
        EXPECT_GT(stages[i].calls, 0) << names[i];
        EXPECT_GE(stages[i].milliseconds, 0.0) << names[i];
        EXPECT_LT(stages[i].milliseconds, 60e3) << names[i];
    }
    // Two forward passes (the prefix and the tree), one per layer and stage inside them.
    EXPECT_EQ(stages[0].calls, 2);
    EXPECT_EQ(stages[2].calls, 2 * p.n_layers);
    EXPECT_EQ(stages[6].calls, 1) << "the prefix kept no logits";
    EXPECT_EQ(stages[7].calls, 1);

    // A short copy writes only what fits; turning profiling off clears the totals.
    std::vector<lk_stage_time> few(4, lk_stage_time{nullptr, -5, -5.0});
    ASSERT_EQ(lk_context_get_profile(profiled.get(), few.data(), 3, &count), LK_OK);
    EXPECT_EQ(count, 10);
    EXPECT_STREQ(few[2].name, "attention");
    EXPECT_EQ(few[3].calls, -5);
    ASSERT_EQ(lk_context_set_profiling(profiled.get(), 0), LK_OK);
    draft_step(profiled.get());
    ASSERT_EQ(lk_context_get_profile(profiled.get(), stages.data(), count, &count), LK_OK);
    for (const lk_stage_time& stage : stages) EXPECT_EQ(stage.calls, 0) << stage.name;

    EXPECT_EQ(lk_context_get_profile(profiled.get(), stages.data(), count, nullptr), LK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(lk_context_get_profile(profiled.get(), nullptr, 2, &count), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("out_stages"));
    EXPECT_EQ(lk_context_get_profile(profiled.get(), stages.data(), -1, &count), LK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(lk_context_set_profiling(nullptr, 1), LK_ERR_INVALID_ARGUMENT);

    // Device time counts nothing on the CPU backend and leaves the stages alone; unknown modes are refused.
    ASSERT_EQ(lk_context_set_profiling(profiled.get(), LK_PROFILE_DEVICE), LK_OK);
    EXPECT_EQ(draft_step(profiled.get()), draft_step(plain.get()));
    ASSERT_EQ(lk_context_get_profile(profiled.get(), stages.data(), count, &count), LK_OK);
    for (const lk_stage_time& stage : stages) EXPECT_EQ(stage.calls, 0) << stage.name;
    EXPECT_EQ(lk_context_set_profiling(profiled.get(), 3), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("profiling mode"));
}

TEST(Api, NonFiniteWeightsAreRefusedByName) {
    const lk_model_params p = lk_test::small_params();
    const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
    ModelPtr model = complete_model(p);
    const int64_t h = p.hidden_size, q = int64_t{p.n_heads} * p.head_dim;
    std::vector<float> q_proj(q * h, 0.01f);
    q_proj[2 * h + 5] = nan;
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_ATTN_Q, 1, LK_DTYPE_F32, q, h, q_proj.data()), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("layer 1 attn_q holds NaN at element " + std::to_string(2 * h + 5) + " (row 2, column 5)"))
        << lk_last_error();
    std::vector<float> norm(h, 1.0f);
    norm[h - 1] = -inf;
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_OUTPUT_NORM, 0, LK_DTYPE_F32, h, 1, norm.data()), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("output_norm holds -inf")) << lk_last_error();
    // 16-bit encodings: +inf in F16 (0x7C00), a NaN in BF16 (0x7FC1).
    std::vector<uint16_t> down(h * p.intermediate_size, lk_test::float_to_bf16(0.01f));
    down.back() = 0x7FC1;
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_FFN_DOWN, 0, LK_DTYPE_BF16, h, p.intermediate_size, down.data()),
              LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("layer 0 ffn_down holds NaN")) << lk_last_error();
    std::fill(down.begin(), down.end(), lk_test::float_to_f16(0.01f));
    down[7] = 0x7C00;
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_FFN_DOWN, 0, LK_DTYPE_F16, h, p.intermediate_size, down.data()),
              LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("layer 0 ffn_down holds +inf at element 7")) << lk_last_error();
    // The refused tensors left the random ones in place: the model still serves a context.
    ContextPtr ctx = context_for(model.get(), 16, 4);
    EXPECT_NE(ctx, nullptr);
}

TEST(Api, UnalignedTensorDataIsRead) {
    // A safetensors data section may start at any byte: the library must not assume alignment (UBSan checks it).
    const lk_model_params p = lk_test::small_params();
    ModelPtr model = complete_model(p);
    const int64_t h = p.hidden_size;
    std::vector<unsigned char> bytes(h * sizeof(float) + 1);
    for (int64_t i = 0; i < h; ++i) {
        const float value = 1.0f + 0.01f * static_cast<float>(i);
        std::memcpy(bytes.data() + 1 + i * sizeof(float), &value, sizeof value);
    }
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_OUTPUT_NORM, 0, LK_DTYPE_F32, h, 1, bytes.data() + 1), LK_OK) << lk_last_error();
    std::vector<unsigned char> embedding(p.vocab_size * h * 2 + 1, 0x3C);
    EXPECT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, LK_DTYPE_F16, p.vocab_size, h, embedding.data() + 1), LK_OK)
        << lk_last_error();
}

TEST(Api, NonFiniteLogitsFailTheStepAndCommitNothing) {
    // Finite weights whose activations overflow: embeddings near FLT_MAX make the norms infinite.
    const lk_model_params p = lk_test::small_params();
    ModelPtr model = complete_model(p);
    std::vector<float> huge(int64_t{p.vocab_size} * p.hidden_size, 3e38f);
    ASSERT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, LK_DTYPE_F32, p.vocab_size, p.hidden_size, huge.data()), LK_OK);
    ContextPtr ctx = context_for(model.get(), 16, 4);
    std::vector<int32_t> prefix{1, 2}, tokens{3, 4, 5}, parents{-1, 0, 0}, out(4, -9);
    lk_batch chain{prefix.data(), nullptr, 2, LK_LOGITS_NONE};
    ASSERT_EQ(lk_context_eval(ctx.get(), &chain), LK_OK) << "prefill keeps no logits and judges none";
    ASSERT_EQ(lk_context_commit(ctx.get(), nullptr, 2), LK_OK);
    lk_batch tree{tokens.data(), parents.data(), 3, LK_LOGITS_NONE};
    int32_t count = -1;
    EXPECT_EQ(lk_context_decode_greedy(ctx.get(), &tree, out.data(), 4, &count), LK_ERR_NON_FINITE);
    EXPECT_TRUE(error_mentions("the logits at position 2 hold NaN or infinity")) << lk_last_error();
    EXPECT_EQ(count, 0);
    EXPECT_EQ(out[0], -9) << "no token is written";
    lk_context_info info{};
    ASSERT_EQ(lk_context_get_info(ctx.get(), &info), LK_OK);
    EXPECT_EQ(info.n_past, 2) << "nothing is committed";
    EXPECT_EQ(info.n_pending, 0) << "nothing stays pending";
}

TEST(Api, OverflowingAttentionScoresFailTheStep) {
    // Finite but huge q/k projections: q.k overflows to infinity, softmax computes inf - inf. That NaN must
    // reach the logits (and fail the step) rather than turn into uniform attention weights.
    const lk_model_params p = lk_test::small_params();
    ModelPtr model = complete_model(p);
    const int64_t h = p.hidden_size, q = int64_t{p.n_heads} * p.head_dim, kv = int64_t{p.n_kv_heads} * p.head_dim;
    std::vector<float> huge_q(q * h, 1e20f), huge_k(kv * h, 1e20f);
    ASSERT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_ATTN_Q, 0, LK_DTYPE_F32, q, h, huge_q.data()), LK_OK);
    ASSERT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_ATTN_K, 0, LK_DTYPE_F32, kv, h, huge_k.data()), LK_OK);
    ContextPtr ctx = context_for(model.get(), 16, 4);
    const int32_t tokens[] = {3, 4};
    lk_batch two{tokens, nullptr, 2, LK_LOGITS_NONE};
    int32_t out[2], count = -1;
    EXPECT_EQ(lk_context_decode_greedy(ctx.get(), &two, out, 2, &count), LK_ERR_NON_FINITE) << "emitted a token from NaN";
}

// Plain greedy tokens after a prefix, one single-node step at a time, until n tokens or a failure.
std::vector<int32_t> plain_greedy(lk_context* ctx, const std::vector<int32_t>& prefix, int n, lk_status* last) {
    lk_context_truncate(ctx, 0);
    lk_batch chain{prefix.data(), nullptr, static_cast<int32_t>(prefix.size()) - 1, LK_LOGITS_NONE};
    EXPECT_EQ(lk_context_eval(ctx, &chain), LK_OK);
    EXPECT_EQ(lk_context_commit(ctx, nullptr, chain.n_tokens), LK_OK);
    std::vector<int32_t> out;
    int32_t root = prefix.back();
    *last = LK_OK;
    while (static_cast<int>(out.size()) < n) {
        lk_batch one{&root, nullptr, 1, LK_LOGITS_NONE};
        int32_t token = -1, count = 0;
        *last = lk_context_decode_greedy(ctx, &one, &token, 1, &count);
        if (*last != LK_OK) break;
        out.push_back(token);
        root = token;
    }
    return out;
}

TEST(Api, NonFiniteLogitsInsideADraftEndItWhereGreedyWould) {
    // Token X's embedding overflows, so every node that is X or sits below X has NaN logits. A draft that
    // is plain decoding's own continuation runs through X: lookahead must emit what plain decoding emits
    // (up to and including X) and fail where it fails (the step rooted at X).
    const lk_model_params p = lk_test::small_params(24, 4, 2, 2, 53);
    int tried = 0;
    for (uint32_t seed = 1; seed < 40 && tried < 4; ++seed) {
        ModelPtr clean = complete_model(p);
        ASSERT_EQ(lk_test::fill_random(clean.get(), p, LK_DTYPE_F32, seed), LK_OK);
        ContextPtr clean_ctx = context_for(clean.get(), 32, 8);
        const std::vector<int32_t> prefix{1, 5, 9};
        lk_status status = LK_OK;
        const std::vector<int32_t> clean_tokens = plain_greedy(clean_ctx.get(), prefix, 5, &status);
        ASSERT_EQ(status, LK_OK);
        const int32_t x = clean_tokens[2];
        if (std::find(prefix.begin(), prefix.end(), x) != prefix.end() || clean_tokens[0] == x || clean_tokens[1] == x) continue;
        ++tried;

        ModelPtr poisoned = complete_model(p);
        ASSERT_EQ(lk_test::fill_random(poisoned.get(), p, LK_DTYPE_F32, seed), LK_OK);
        std::vector<float> embedding(int64_t{p.vocab_size} * p.hidden_size);
        std::mt19937 rng(seed);  // fill_random draws the embedding first, from this generator
        std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
        for (float& v : embedding) v = dist(rng);
        for (int i = 0; i < p.hidden_size; ++i) embedding[int64_t{x} * p.hidden_size + i] = 3e38f;
        ASSERT_EQ(lk_model_set_tensor(poisoned.get(), LK_TENSOR_TOKEN_EMBEDDING, 0, LK_DTYPE_F32, p.vocab_size, p.hidden_size,
                                      embedding.data()), LK_OK);
        ContextPtr ctx = context_for(poisoned.get(), 32, 8);
        const std::vector<int32_t> plain = plain_greedy(ctx.get(), prefix, 5, &status);
        ASSERT_EQ(status, LK_ERR_NON_FINITE) << "seed " << seed;
        ASSERT_EQ(plain, std::vector<int32_t>(clean_tokens.begin(), clean_tokens.begin() + 3)) << "plain stops after emitting X";

        // One chain draft: the root, then plain decoding's next four tokens (X third).
        plain_greedy(ctx.get(), prefix, 0, &status);  // commits 1, 5: the root 9 comes next
        std::vector<int32_t> draft{9, clean_tokens[0], clean_tokens[1], x, clean_tokens[3]}, out(5, -1);
        lk_batch tree{draft.data(), nullptr, 5, LK_LOGITS_NONE};
        int32_t count = 0;
        ASSERT_EQ(lk_context_decode_greedy(ctx.get(), &tree, out.data(), 5, &count), LK_OK) << lk_last_error();
        out.resize(count);
        EXPECT_EQ(out, plain) << "seed " << seed << ": the draft's tokens up to X, X the bonus";
        lk_batch next{&x, nullptr, 1, LK_LOGITS_NONE};
        int32_t token = -1;
        EXPECT_EQ(lk_context_decode_greedy(ctx.get(), &next, &token, 1, &count), LK_ERR_NON_FINITE);
    }
    EXPECT_EQ(tried, 4) << "too few seeds put a fresh token third";
}

TEST(Api, FailedCallsLeaveNothingPending) {
    const lk_model_params p = lk_test::small_params();
    ModelPtr model = complete_model(p);
    ContextPtr ctx = context_for(model.get(), 8, 4);
    std::vector<int32_t> tokens{1, 2, 3}, parents{-1, 0, 0};
    lk_batch ok{tokens.data(), parents.data(), 3, LK_LOGITS_ALL};
    ASSERT_EQ(lk_context_eval(ctx.get(), &ok), LK_OK);
    std::vector<int32_t> bad_parents{-1, 0, 2};
    lk_batch bad{tokens.data(), bad_parents.data(), 3, LK_LOGITS_ALL};
    EXPECT_EQ(lk_context_eval(ctx.get(), &bad), LK_ERR_INVALID_ARGUMENT);
    lk_context_info info{};
    ASSERT_EQ(lk_context_get_info(ctx.get(), &info), LK_OK);
    EXPECT_EQ(info.n_pending, 0);
    EXPECT_EQ(lk_context_commit(ctx.get(), nullptr, 1), LK_ERR_INVALID_STATE);
    // A refused commit keeps the pending nodes.
    ASSERT_EQ(lk_context_eval(ctx.get(), &ok), LK_OK);
    const int32_t not_a_path[] = {0, 2, 1};
    EXPECT_EQ(lk_context_commit(ctx.get(), not_a_path, 3), LK_ERR_INVALID_ARGUMENT);
    ASSERT_EQ(lk_context_get_info(ctx.get(), &info), LK_OK);
    EXPECT_EQ(info.n_pending, 3);
    const int32_t path[] = {0, 2};
    EXPECT_EQ(lk_context_commit(ctx.get(), path, 2), LK_OK) << lk_last_error();
}

TEST(Api, DefaultParamsAreTheLibrarysChoices) {
    const lk_context_params cp = lk_context_default_params();
    const lk_context_params zero{};
    EXPECT_EQ(std::memcmp(&cp, &zero, sizeof cp), 0) << "0 in every field is the documented default";
    const lk_model_params mp = lk_model_default_params();
    EXPECT_EQ(mp.rms_norm_eps, 1e-5f);
    EXPECT_EQ(mp.rope_theta, 10000.0f);
    EXPECT_EQ(mp.flags, 0u);
    lk_model* raw = nullptr;
    EXPECT_EQ(lk_model_init(&mp, &raw), LK_ERR_INVALID_ARGUMENT) << "the dimensions are the caller's to fill in";
    EXPECT_EQ(raw, nullptr);
}

// Each field of lk_context_params outside its enum is refused by name; the CPU kernel is a cap that the
// context reports resolved, and the CUDA choices stay AUTO on the CPU backend.
TEST(Api, KernelChoicesAreCheckedAndReported) {
    ModelPtr model = complete_model(lk_test::small_params());
    struct Bad {
        int32_t lk_context_params::*field;
        int32_t value;
        const char* name;
    };
    for (const Bad& bad : {Bad{&lk_context_params::cpu_kernel, 5, "cpu_kernel"}, Bad{&lk_context_params::cpu_kernel, -1, "cpu_kernel"},
                           Bad{&lk_context_params::cuda_matmul, 3, "cuda_matmul"},
                           Bad{&lk_context_params::cuda_attention, 3, "cuda_attention"},
                           Bad{&lk_context_params::cuda_graphs, 3, "cuda_graphs"},
                           Bad{&lk_context_params::cuda_device, -1, "cuda_device"},
                           Bad{&lk_context_params::kv_type, 3, "kv_type"}, Bad{&lk_context_params::kv_type, -1, "kv_type"}}) {
        lk_context_params cp = lk_context_default_params();
        cp.backend = LK_BACKEND_CPU;
        cp.*bad.field = bad.value;
        lk_context* ctx = nullptr;
        EXPECT_EQ(lk_context_init(model.get(), &cp, &ctx), LK_ERR_INVALID_ARGUMENT) << bad.name << " " << bad.value;
        EXPECT_TRUE(error_mentions(bad.name)) << lk_last_error();
        EXPECT_EQ(ctx, nullptr);
    }
    int32_t best = 0;
    for (int32_t cap : {LK_CPU_KERNEL_AUTO, LK_CPU_KERNEL_SCALAR, LK_CPU_KERNEL_AVX2, LK_CPU_KERNEL_AVX512, LK_CPU_KERNEL_AVX512_BF16}) {
        lk_context_params cp = lk_context_default_params();
        cp.backend = LK_BACKEND_CPU;
        cp.n_threads = 1;
        cp.cpu_kernel = cap;
        lk_context* ctx = nullptr;
        ASSERT_EQ(lk_context_init(model.get(), &cp, &ctx), LK_OK) << lk_last_error();
        ContextPtr owned(ctx);
        lk_context_info info{};
        ASSERT_EQ(lk_context_get_info(ctx, &info), LK_OK);
        if (cap == LK_CPU_KERNEL_AUTO) {
            best = info.cpu_kernel;
            EXPECT_GE(best, LK_CPU_KERNEL_SCALAR);
            EXPECT_NE(std::string(lk_system_info()).find(std::string(lk::cpu::matmul_kernel_name(best)) + " kernels"), std::string::npos)
                << lk_system_info();
        } else {
            EXPECT_EQ(info.cpu_kernel, std::min(cap, best)) << "cap " << cap;
        }
        EXPECT_EQ(info.cuda_matmul, LK_CUDA_MATMUL_AUTO);
        EXPECT_EQ(info.cuda_attention, LK_CUDA_ATTENTION_AUTO);
        EXPECT_EQ(info.cuda_graphs, LK_CUDA_GRAPHS_AUTO);
        EXPECT_EQ(info.kv_type, LK_DTYPE_F32);
    }
    for (int32_t kv_type : {LK_DTYPE_F16, LK_DTYPE_BF16}) {
        lk_context_params cp = lk_test::context_params(LK_BACKEND_CPU, 0, 0, 1);
        cp.kv_type = kv_type;
        lk_context* ctx = nullptr;
        ASSERT_EQ(lk_context_init(model.get(), &cp, &ctx), LK_OK) << lk_last_error();
        ContextPtr owned(ctx);
        lk_context_info info{};
        ASSERT_EQ(lk_context_get_info(ctx, &info), LK_OK);
        EXPECT_EQ(info.kv_type, kv_type);
    }
}

// Without a device, any cuda_device is refused for the CUDA backend; with one, an ordinal past the last.
TEST(Api, AMissingCudaDeviceIsRefused) {
    ModelPtr model = complete_model(lk_test::small_params());
    lk_context_params cp = lk_context_default_params();
    cp.backend = LK_BACKEND_CUDA;
    cp.cuda_device = 4096;
    lk_context* ctx = nullptr;
    const lk_status status = lk_context_init(model.get(), &cp, &ctx);
    EXPECT_TRUE(status == LK_ERR_UNSUPPORTED || status == LK_ERR_NO_DEVICE) << status;
    EXPECT_EQ(ctx, nullptr);
}

TEST(Api, CudaRequestFailsCleanlyWithoutCuda) {
    ModelPtr model = complete_model(lk_test::small_params());
    lk_context_params cp = lk_test::context_params(LK_BACKEND_CUDA, 0, 0, 1);
    lk_context* ctx = nullptr;
    const lk_status status = lk_context_init(model.get(), &cp, &ctx);
    if (lk_backend_available(LK_BACKEND_CUDA)) {
        EXPECT_EQ(status, LK_OK);
        lk_context_free(ctx);
    } else {
        EXPECT_TRUE(status == LK_ERR_UNSUPPORTED || status == LK_ERR_NO_DEVICE) << status;
        EXPECT_TRUE(error_mentions("CUDA")) << lk_last_error();
        EXPECT_EQ(ctx, nullptr);
    }
}

}  // namespace
