// Forward-pass properties through the C API: a tree node's logits equal those of its root path run as
// a plain chain, greedy steps over trees reproduce plain greedy decoding, chunking and threading do
// not change results. (Element-wise agreement with an independent reference forward pass is checked
// by the managed test suite.)
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "test_model.h"

namespace {

using ModelPtr = std::unique_ptr<lk_model, lk_test::ModelDeleter>;
using ContextPtr = std::unique_ptr<lk_context, lk_test::ContextDeleter>;

struct Shape {
    const char* name;
    lk_model_params params;
    int32_t dtype;
    int32_t kv_type = LK_DTYPE_F32;
};

std::vector<Shape> shapes() {
    std::vector<Shape> all;
    all.push_back({"mha_f32", lk_test::small_params(24, 4, 4), LK_DTYPE_F32});
    all.push_back({"gqa2_bf16", lk_test::small_params(24, 4, 2), LK_DTYPE_BF16});
    all.push_back({"mha_f32_kv_bf16", lk_test::small_params(24, 4, 4), LK_DTYPE_F32, LK_DTYPE_BF16});
    all.push_back({"gqa2_bf16_kv_f16", lk_test::small_params(24, 4, 2), LK_DTYPE_BF16, LK_DTYPE_F16});
    lk_model_params gqa4 = lk_test::small_params(30, 8, 2, 3, 61);
    gqa4.flags = LK_MODEL_TIED_OUTPUT | LK_MODEL_QKV_BIAS;
    all.push_back({"gqa4_tied_bias_f16", gqa4, LK_DTYPE_F16});
    return all;
}

ModelPtr make_model(const lk_model_params& p, int32_t dtype, uint32_t seed) {
    lk_model* raw = nullptr;
    EXPECT_EQ(lk_model_init(&p, &raw), LK_OK) << lk_last_error();
    ModelPtr model(raw);
    EXPECT_EQ(lk_test::fill_random(model.get(), p, dtype, seed), LK_OK) << lk_last_error();
    return model;
}

ContextPtr make_context(lk_model* model, int32_t threads = 1, int32_t n_batch = 0, int32_t kv_type = LK_DTYPE_F32) {
    lk_context_params cp = lk_test::context_params(LK_BACKEND_CPU, 0, n_batch, threads);
    cp.kv_type = kv_type;
    lk_context* raw = nullptr;
    EXPECT_EQ(lk_context_init(model, &cp, &raw), LK_OK) << lk_last_error();
    return ContextPtr(raw);
}

void prefill(lk_context* ctx, const std::vector<int32_t>& tokens) {
    if (tokens.empty()) return;
    lk_batch chain{tokens.data(), nullptr, static_cast<int32_t>(tokens.size()), LK_LOGITS_NONE};
    ASSERT_EQ(lk_context_eval(ctx, &chain), LK_OK) << lk_last_error();
    ASSERT_EQ(lk_context_commit(ctx, nullptr, chain.n_tokens), LK_OK) << lk_last_error();
}

std::vector<float> logits_of(lk_context* ctx, int32_t node, int32_t vocab) {
    const float* logits = nullptr;
    EXPECT_EQ(lk_context_get_logits(ctx, node, &logits), LK_OK) << lk_last_error();
    return logits ? std::vector<float>(logits, logits + vocab) : std::vector<float>();
}

// Bit-identical logits: every node is computed the same way whatever else is in its batch, however
// the work is split over threads, and whether its ancestors are pending or committed (batch invariance,
// which lossless lookahead decoding rests on).
void expect_identical(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], want[i]) << what << " element " << i;
}

TEST(Forward, TreeNodeLogitsEqualTheirRootPathRunAsAChain) {
    std::mt19937 rng(5);
    for (const Shape& shape : shapes()) {
        const lk_model_params& p = shape.params;
        ModelPtr model = make_model(p, shape.dtype, 11);
        for (int32_t committed : {0, 1, 17}) {
            std::vector<int32_t> prefix(committed);
            for (int32_t& t : prefix) t = std::uniform_int_distribution<int>(0, p.vocab_size - 1)(rng);
            const int n = 12;
            std::vector<int32_t> tokens(n), parents(n, -1);
            for (int i = 0; i < n; ++i) {
                tokens[i] = std::uniform_int_distribution<int>(0, p.vocab_size - 1)(rng);
                if (i > 0) parents[i] = std::uniform_int_distribution<int>(0, i - 1)(rng);
            }
            ContextPtr tree_ctx = make_context(model.get(), 1, 0, shape.kv_type);
            prefill(tree_ctx.get(), prefix);
            lk_batch tree{tokens.data(), parents.data(), n, LK_LOGITS_ALL};
            ASSERT_EQ(lk_context_eval(tree_ctx.get(), &tree), LK_OK) << lk_last_error();

            for (int node = 0; node < n; ++node) {
                std::vector<int32_t> path;
                for (int a = node; a >= 0; a = parents[a]) path.insert(path.begin(), tokens[a]);
                ContextPtr chain_ctx = make_context(model.get(), 1, 0, shape.kv_type);
                prefill(chain_ctx.get(), prefix);
                lk_batch chain{path.data(), nullptr, static_cast<int32_t>(path.size()), LK_LOGITS_LAST};
                ASSERT_EQ(lk_context_eval(chain_ctx.get(), &chain), LK_OK) << lk_last_error();
                expect_identical(logits_of(tree_ctx.get(), node, p.vocab_size),
                             logits_of(chain_ctx.get(), chain.n_tokens - 1, p.vocab_size), std::string(shape.name) + " committed " + std::to_string(committed) + " node " +
                                 std::to_string(node));
            }
        }
    }
}

std::vector<int32_t> plain_greedy(lk_context* ctx, std::vector<int32_t> prompt, int count) {
    prefill(ctx, std::vector<int32_t>(prompt.begin(), prompt.end() - 1));
    std::vector<int32_t> out;
    int32_t last = prompt.back();
    while (static_cast<int>(out.size()) < count) {
        lk_batch one{&last, nullptr, 1, LK_LOGITS_NONE};
        int32_t token = -1, produced = 0;
        EXPECT_EQ(lk_context_decode_greedy(ctx, &one, &token, 1, &produced), LK_OK) << lk_last_error();
        EXPECT_EQ(produced, 1);
        out.push_back(token);
        last = token;
    }
    return out;
}

TEST(Forward, GreedyStepsOverDraftTreesReproducePlainGreedy) {
    std::mt19937 rng(77);
    for (const Shape& shape : shapes()) {
        const lk_model_params& p = shape.params;
        ModelPtr model = make_model(p, shape.dtype, 23);
        const std::vector<int32_t> prompt{3, 1, 4, 1, 5};
        const int count = 60;
        ContextPtr reference_ctx = make_context(model.get(), 1, 0, shape.kv_type);
        const std::vector<int32_t> expected = plain_greedy(reference_ctx.get(), prompt, count + 16);

        // Drafts built from the known answer, sometimes corrupted, with random distractor branches:
        // whatever the drafts, the output must be the plain greedy output.
        ContextPtr ctx = make_context(model.get(), 1, 0, shape.kv_type);
        prefill(ctx.get(), std::vector<int32_t>(prompt.begin(), prompt.end() - 1));
        std::vector<int32_t> produced;
        int32_t root = prompt.back();
        int steps = 0;
        while (static_cast<int>(produced.size()) < count) {
            std::vector<int32_t> tokens{root}, parents{-1};
            const int depth = std::uniform_int_distribution<int>(0, 6)(rng);
            int parent = 0;
            for (int d = 0; d < depth; ++d) {
                size_t index = produced.size() + d;
                int32_t token = expected[index];
                if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) token = (token + 1) % p.vocab_size;
                tokens.push_back(token);
                parents.push_back(parent);
                parent = static_cast<int>(tokens.size()) - 1;
                const int distractors = std::uniform_int_distribution<int>(0, 2)(rng);
                for (int k = 0; k < distractors; ++k) {
                    tokens.push_back(std::uniform_int_distribution<int>(0, p.vocab_size - 1)(rng));
                    parents.push_back(std::uniform_int_distribution<int>(0, static_cast<int>(tokens.size()) - 2)(rng));
                }
            }
            lk_batch tree{tokens.data(), parents.data(), static_cast<int32_t>(tokens.size()), LK_LOGITS_NONE};
            std::vector<int32_t> out(tokens.size());
            int32_t n_out = 0;
            ASSERT_EQ(lk_context_decode_greedy(ctx.get(), &tree, out.data(), static_cast<int32_t>(out.size()), &n_out), LK_OK)
                << lk_last_error();
            ASSERT_GE(n_out, 1);
            produced.insert(produced.end(), out.begin(), out.begin() + n_out);
            root = produced.back();
            ++steps;
        }
        produced.resize(count);
        ASSERT_EQ(produced, std::vector<int32_t>(expected.begin(), expected.begin() + count)) << shape.name;
        EXPECT_LT(steps, count) << shape.name << ": drafts that follow the answer should save steps";
        lk_context_info info{};
        ASSERT_EQ(lk_context_get_info(ctx.get(), &info), LK_OK);
        EXPECT_EQ(info.n_pending, 0);
    }
}

TEST(Forward, ChunkedPrefillAndThreadCountDoNotChangeLogits) {
    lk_model_params p = lk_test::small_params(128, 8, 4, 2, 300);
    p.head_dim = 16;
    for (auto [dtype, kv_type] : {std::pair{LK_DTYPE_F32, LK_DTYPE_F32}, std::pair{LK_DTYPE_BF16, LK_DTYPE_F32},
                                  std::pair{LK_DTYPE_F32, LK_DTYPE_F16}, std::pair{LK_DTYPE_BF16, LK_DTYPE_BF16}}) {
        const std::string name = std::string(dtype == LK_DTYPE_F32 ? "f32" : "bf16") + " weights, kv_type " + std::to_string(kv_type) + ": ";
        ModelPtr model = make_model(p, dtype, 3);
        std::vector<int32_t> tokens(40);
        std::mt19937 rng(8);
        for (int32_t& t : tokens) t = std::uniform_int_distribution<int>(0, p.vocab_size - 1)(rng);

        ContextPtr whole = make_context(model.get(), 1, 0, kv_type);
        lk_batch all{tokens.data(), nullptr, 40, LK_LOGITS_ALL};
        ASSERT_EQ(lk_context_eval(whole.get(), &all), LK_OK) << lk_last_error();

        ContextPtr threaded = make_context(model.get(), 2, 0, kv_type);
        ASSERT_EQ(lk_context_eval(threaded.get(), &all), LK_OK) << lk_last_error();

        ContextPtr chunked = make_context(model.get(), 2, 16, kv_type);
        prefill(chunked.get(), std::vector<int32_t>(tokens.begin(), tokens.begin() + 16));
        prefill(chunked.get(), std::vector<int32_t>(tokens.begin() + 16, tokens.begin() + 32));
        lk_batch rest{tokens.data() + 32, nullptr, 8, LK_LOGITS_ALL};
        ASSERT_EQ(lk_context_eval(chunked.get(), &rest), LK_OK) << lk_last_error();

        for (int i = 0; i < 40; ++i) {
            const std::vector<float> want = logits_of(whole.get(), i, p.vocab_size);
            expect_identical(logits_of(threaded.get(), i, p.vocab_size), want, name + "two threads, node " + std::to_string(i));
            if (i >= 32) expect_identical(logits_of(chunked.get(), i - 32, p.vocab_size), want, name + "chunked, node " + std::to_string(i));
        }
    }
}

TEST(Forward, TruncateThenReplayGivesTheSameLogits) {
    lk_model_params p = lk_test::small_params();
    ModelPtr model = make_model(p, LK_DTYPE_F32, 4);
    ContextPtr ctx = make_context(model.get());
    std::vector<int32_t> tokens{5, 9, 2, 7, 7, 1};
    lk_batch chain{tokens.data(), nullptr, 6, LK_LOGITS_LAST};
    ASSERT_EQ(lk_context_eval(ctx.get(), &chain), LK_OK);
    const std::vector<float> first = logits_of(ctx.get(), 5, p.vocab_size);
    ASSERT_EQ(lk_context_commit(ctx.get(), nullptr, 3), LK_OK) << lk_last_error();
    std::vector<int32_t> other{8, 8, 8};
    lk_batch detour{other.data(), nullptr, 3, LK_LOGITS_NONE};
    ASSERT_EQ(lk_context_eval(ctx.get(), &detour), LK_OK);
    ASSERT_EQ(lk_context_commit(ctx.get(), nullptr, 3), LK_OK);
    ASSERT_EQ(lk_context_truncate(ctx.get(), 3), LK_OK);
    lk_batch tail{tokens.data() + 3, nullptr, 3, LK_LOGITS_LAST};
    ASSERT_EQ(lk_context_eval(ctx.get(), &tail), LK_OK);
    expect_identical(logits_of(ctx.get(), 2, p.vocab_size), first, "after truncate");
}

// BF16 weights multiply their inputs rounded to BF16, and F32 weights the unrounded ones, exactly. The
// model passes its input through unchanged (zero attention-output and down projections, so both
// residual adds add 0): every final-norm output is 1 / sqrt(1 + eps) * (1 + 3 * 2^-9) = 1.0058543...,
// which rounds to BF16 1.0078125, and a head of ones sums `hidden` of them.
TEST(Forward, Bf16WeightsMultiplyInputsRoundedToBf16) {
    const lk_model_params p = lk_test::small_params(24, 4, 2);
    for (int32_t head_dtype : {LK_DTYPE_BF16, LK_DTYPE_F32}) {
        ModelPtr model = make_model(p, LK_DTYPE_BF16, 41);
        auto constant = [&](int32_t kind, int32_t layer, int32_t dtype, int64_t rows, int64_t cols, float value) {
            std::vector<float> f32(rows * cols, value);
            std::vector<uint16_t> bf16(rows * cols, lk_test::float_to_bf16(value));
            const void* data = dtype == LK_DTYPE_F32 ? static_cast<const void*>(f32.data()) : bf16.data();
            ASSERT_EQ(lk_model_set_tensor(model.get(), kind, layer, dtype, rows, cols, data), LK_OK) << lk_last_error();
        };
        const int64_t h = p.hidden_size, q = int64_t{p.n_heads} * p.head_dim;
        constant(LK_TENSOR_TOKEN_EMBEDDING, 0, LK_DTYPE_BF16, p.vocab_size, h, 1.0f);
        for (int l = 0; l < p.n_layers; ++l) {
            constant(LK_TENSOR_ATTN_OUTPUT, l, LK_DTYPE_BF16, h, q, 0.0f);
            constant(LK_TENSOR_FFN_DOWN, l, LK_DTYPE_BF16, h, p.intermediate_size, 0.0f);
        }
        constant(LK_TENSOR_OUTPUT_NORM, 0, LK_DTYPE_F32, h, 1, 1.0f + 3.0f / 512.0f);
        constant(LK_TENSOR_OUTPUT, 0, head_dtype, p.vocab_size, h, 1.0f);
        ContextPtr ctx = make_context(model.get(), 2);
        int32_t token = 5;
        lk_batch one{&token, nullptr, 1, LK_LOGITS_ALL};
        ASSERT_EQ(lk_context_eval(ctx.get(), &one), LK_OK) << lk_last_error();
        const std::vector<float> logits = logits_of(ctx.get(), 0, p.vocab_size);
        const float normed = 1.0f / std::sqrt(1.0f + p.rms_norm_eps) * (1.0f + 3.0f / 512.0f);
        for (int32_t v = 0; v < p.vocab_size; ++v) {
            if (head_dtype == LK_DTYPE_BF16)
                ASSERT_EQ(logits[v], 24 * 1.0078125f) << "logit " << v << ": the BF16 head's inputs were not rounded to BF16";
            else
                ASSERT_NEAR(logits[v], 24 * normed, 1e-4) << "logit " << v << ": the F32 head must read the unrounded inputs";
        }
    }
}

}  // namespace
