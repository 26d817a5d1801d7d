// The CUDA backend against the CPU backend, through the C API (skipped where no CUDA device exists).
// Tolerance: |cuda - cpu| <= t + t |cpu| per logit, t = 2e-4 for F32 and F16 weights (both backends see
// the same weight values; only summation order differs). BF16 weights multiply inputs rounded to BF16, so a
// one-ulp float difference next to a rounding boundary becomes a whole BF16 step (up to 2^-7 relative) in
// one input, which can move every logit by up to about 1e-2 (measured between the CPU kernels): t = 2e-2.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "test_model.h"

namespace {

using ModelPtr = std::unique_ptr<lk_model, lk_test::ModelDeleter>;
using ContextPtr = std::unique_ptr<lk_context, lk_test::ContextDeleter>;

constexpr double kTolerance = 2e-4, kBf16Tolerance = 2e-2;

// GTEST_SKIP returns from the function it is in, so this is a macro used at the top of each test.
#define REQUIRE_CUDA()                                \
    if (!lk_backend_available(LK_BACKEND_CUDA))       \
    GTEST_SKIP() << "no CUDA device: " << lk_system_info()

struct Shape {
    std::string name;
    lk_model_params params;
    int32_t dtype;
    double tolerance() const { return dtype == LK_DTYPE_BF16 ? kBf16Tolerance : kTolerance; }
};

std::vector<Shape> shapes() {
    auto make = [](int hidden, int heads, int kv_heads, int head_dim, int vocab, uint32_t flags) {
        lk_model_params p = lk_test::small_params(hidden, heads, kv_heads, 2, vocab);
        p.head_dim = head_dim;
        p.flags = flags;
        p.max_context = 4096;
        return p;
    };
    return {
        {"gqa1_odd_f32", make(33, 3, 3, 6, 101, 0), LK_DTYPE_F32},
        {"gqa2_bf16", make(64, 4, 2, 16, 257, 0), LK_DTYPE_BF16},
        {"gqa4_f16_tied_bias", make(96, 8, 2, 12, 200, LK_MODEL_TIED_OUTPUT | LK_MODEL_QKV_BIAS), LK_DTYPE_F16},
        {"gqa8_bf16_wide_head", make(128, 8, 1, 64, 300, 0), LK_DTYPE_BF16},
    };
}

ModelPtr make_model(const Shape& shape, uint32_t seed) {
    lk_model* raw = nullptr;
    EXPECT_EQ(lk_model_init(&shape.params, &raw), LK_OK) << lk_last_error();
    EXPECT_EQ(lk_test::fill_random(raw, shape.params, shape.dtype, seed), LK_OK) << lk_last_error();
    return ModelPtr(raw);
}

// The CUDA kernel choices a context can make (lk_context_params); the tests against the CPU backend and
// against plain decoding run for each.
struct Variant {
    const char* name;
    int32_t matmul, attention, graphs;
};

void PrintTo(const Variant& variant, std::ostream* out) { *out << variant.name; }

const Variant kDefault{"default", LK_CUDA_MATMUL_AUTO, LK_CUDA_ATTENTION_AUTO, LK_CUDA_GRAPHS_AUTO};

ContextPtr make_context(lk_model* model, int32_t backend, int32_t n_ctx = 0, const Variant& variant = kDefault) {
    lk_context_params cp = lk_context_default_params();
    cp.backend = backend;
    cp.n_ctx = n_ctx;
    cp.n_threads = 2;
    cp.cuda_matmul = variant.matmul;
    cp.cuda_attention = variant.attention;
    cp.cuda_graphs = variant.graphs;
    lk_context* raw = nullptr;
    EXPECT_EQ(lk_context_init(model, &cp, &raw), LK_OK) << lk_last_error();
    return ContextPtr(raw);
}

class Cuda : public ::testing::TestWithParam<Variant> {
protected:
    ContextPtr gpu_context(lk_model* model, int32_t n_ctx = 0) const {
        return make_context(model, LK_BACKEND_CUDA, n_ctx, GetParam());
    }
};

INSTANTIATE_TEST_SUITE_P(Variants, Cuda,
                         ::testing::Values(kDefault,
                                           Variant{"direct_launches", LK_CUDA_MATMUL_AUTO, LK_CUDA_ATTENTION_AUTO, LK_CUDA_GRAPHS_OFF},
                                           Variant{"shared_prefix_attention", LK_CUDA_MATMUL_AUTO, LK_CUDA_ATTENTION_SHARED_PREFIX,
                                                   LK_CUDA_GRAPHS_AUTO},
                                           Variant{"simt_matmul", LK_CUDA_MATMUL_SIMT, LK_CUDA_ATTENTION_AUTO, LK_CUDA_GRAPHS_AUTO}),
                         [](const ::testing::TestParamInfo<Variant>& info) { return std::string(info.param.name); });

void prefill(lk_context* ctx, const std::vector<int32_t>& tokens) {
    for (size_t start = 0; start < tokens.size(); start += 256) {
        const int32_t n = static_cast<int32_t>(std::min<size_t>(256, tokens.size() - start));
        lk_batch chain{tokens.data() + start, nullptr, n, LK_LOGITS_NONE};
        ASSERT_EQ(lk_context_eval(ctx, &chain), LK_OK) << lk_last_error();
        ASSERT_EQ(lk_context_commit(ctx, nullptr, n), LK_OK) << lk_last_error();
    }
}

void expect_same_logits(lk_context* cpu, lk_context* gpu, int32_t node, int32_t vocab, double tolerance, const std::string& what) {
    const float* a = nullptr;
    ASSERT_EQ(lk_context_get_logits(cpu, node, &a), LK_OK) << lk_last_error();
    std::vector<float> want(a, a + vocab);
    const float* b = nullptr;
    ASSERT_EQ(lk_context_get_logits(gpu, node, &b), LK_OK) << lk_last_error();
    for (int32_t i = 0; i < vocab; ++i) {
        ASSERT_FALSE(std::isnan(b[i])) << what << ": logit " << i << " was never written";
        ASSERT_NEAR(b[i], want[i], tolerance * (1 + std::fabs(want[i]))) << what << ": logit " << i;
    }
}

enum class TreeShape { Chain, Star, Binary, Ternary, Random };

std::vector<int32_t> parents_for(TreeShape shape, int n, std::mt19937& rng) {
    std::vector<int32_t> parents(n, -1);
    for (int i = 1; i < n; ++i) {
        switch (shape) {
            case TreeShape::Chain: parents[i] = i - 1; break;
            case TreeShape::Star: parents[i] = 0; break;
            case TreeShape::Binary: parents[i] = (i - 1) / 2; break;
            case TreeShape::Ternary: parents[i] = (i - 1) / 3; break;
            case TreeShape::Random: parents[i] = std::uniform_int_distribution<int>(0, i - 1)(rng); break;
        }
    }
    return parents;
}

TEST_P(Cuda, TreeLogitsMatchTheCpuBackendForEveryShapeAndContext) {
    REQUIRE_CUDA();
    std::mt19937 rng(17);
    for (const Shape& shape : shapes()) {
        ModelPtr model = make_model(shape, 5);
        for (int committed : {0, 1, 63, 700}) {
            std::vector<int32_t> prefix(committed);
            for (int32_t& t : prefix) t = std::uniform_int_distribution<int>(0, shape.params.vocab_size - 1)(rng);
            ContextPtr cpu = make_context(model.get(), LK_BACKEND_CPU);
            ContextPtr gpu = gpu_context(model.get());
            prefill(cpu.get(), prefix);
            prefill(gpu.get(), prefix);
            for (TreeShape tree : {TreeShape::Chain, TreeShape::Star, TreeShape::Binary, TreeShape::Ternary, TreeShape::Random}) {
                for (int n : {1, 2, 7, 31, 64}) {
                    std::vector<int32_t> tokens(n);
                    for (int32_t& t : tokens) t = std::uniform_int_distribution<int>(0, shape.params.vocab_size - 1)(rng);
                    std::vector<int32_t> parents = parents_for(tree, n, rng);
                    lk_batch batch{tokens.data(), parents.data(), n, LK_LOGITS_ALL};
                    ASSERT_EQ(lk_context_eval(cpu.get(), &batch), LK_OK) << lk_last_error();
                    ASSERT_EQ(lk_context_eval(gpu.get(), &batch), LK_OK) << lk_last_error();
                    for (int node = 0; node < n; ++node) {
                        expect_same_logits(cpu.get(), gpu.get(), node, shape.params.vocab_size, shape.tolerance(),
                                           shape.name + " committed " + std::to_string(committed) + " tree " +
                                               std::to_string(static_cast<int>(tree)) + " n " + std::to_string(n) +
                                               " node " + std::to_string(node));
                        if (HasFatalFailure()) return;
                    }
                }
            }
        }
    }
}

// Layers whose matrices differ in dtype (BF16 q and gate, F16 k and up, F32 v): stacked products of
// mixed dtypes go out one matrix at a time, each read as its own dtype.
TEST_P(Cuda, MixedDtypeLayersMatchTheCpuBackend) {
    REQUIRE_CUDA();
    const Shape shape = shapes()[1];  // BF16
    const lk_model_params& p = shape.params;
    ModelPtr model = make_model(shape, 23);
    std::mt19937 rng(29);
    const int64_t h = p.hidden_size, kv = int64_t{p.n_kv_heads} * p.head_dim, f = p.intermediate_size;
    auto replace = [&](int32_t kind, int layer, int32_t dtype, int64_t rows, int64_t cols) {
        std::uniform_real_distribution<float> dist(-0.08f, 0.08f);
        std::vector<float> values(rows * cols);
        for (float& v : values) v = dist(rng);
        std::vector<uint16_t> packed(values.size());
        for (size_t i = 0; i < values.size(); ++i) packed[i] = lk_test::float_to_f16(values[i]);
        const void* data = dtype == LK_DTYPE_F32 ? static_cast<const void*>(values.data()) : packed.data();
        ASSERT_EQ(lk_model_set_tensor(model.get(), kind, layer, dtype, rows, cols, data), LK_OK) << lk_last_error();
    };
    for (int l = 0; l < p.n_layers; ++l) {
        replace(LK_TENSOR_ATTN_K, l, LK_DTYPE_F16, kv, h);
        replace(LK_TENSOR_ATTN_V, l, LK_DTYPE_F32, kv, h);
        replace(LK_TENSOR_FFN_UP, l, LK_DTYPE_F16, f, h);
        if (HasFatalFailure()) return;
    }
    ContextPtr cpu = make_context(model.get(), LK_BACKEND_CPU), gpu = gpu_context(model.get());
    std::vector<int32_t> tokens(40);
    for (int32_t& t : tokens) t = std::uniform_int_distribution<int>(0, p.vocab_size - 1)(rng);
    lk_batch chain{tokens.data(), nullptr, static_cast<int32_t>(tokens.size()), LK_LOGITS_ALL};
    ASSERT_EQ(lk_context_eval(cpu.get(), &chain), LK_OK) << lk_last_error();
    ASSERT_EQ(lk_context_eval(gpu.get(), &chain), LK_OK) << lk_last_error();
    for (int node = 0; node < chain.n_tokens; ++node) {
        expect_same_logits(cpu.get(), gpu.get(), node, p.vocab_size, shape.tolerance(), "mixed dtypes node " + std::to_string(node));
        if (HasFatalFailure()) return;
    }
}

TEST_P(Cuda, LongContextMatchesTheCpuBackend) {
    REQUIRE_CUDA();
    const Shape shape = shapes()[1];
    ModelPtr model = make_model(shape, 9);
    std::mt19937 rng(3);
    std::vector<int32_t> prefix(3000);
    for (int32_t& t : prefix) t = std::uniform_int_distribution<int>(0, shape.params.vocab_size - 1)(rng);
    ContextPtr cpu = make_context(model.get(), LK_BACKEND_CPU);
    ContextPtr gpu = gpu_context(model.get());
    prefill(cpu.get(), prefix);
    prefill(gpu.get(), prefix);
    std::vector<int32_t> tokens{1, 2, 3, 4, 5, 6, 7, 8};
    std::vector<int32_t> parents{-1, 0, 0, 1, 1, 2, 5, 6};
    lk_batch batch{tokens.data(), parents.data(), 8, LK_LOGITS_ALL};
    ASSERT_EQ(lk_context_eval(cpu.get(), &batch), LK_OK) << lk_last_error();
    ASSERT_EQ(lk_context_eval(gpu.get(), &batch), LK_OK) << lk_last_error();
    for (int node = 0; node < 8; ++node)
        expect_same_logits(cpu.get(), gpu.get(), node, shape.params.vocab_size, shape.tolerance(), "context 3000 node " + std::to_string(node));
}

// Greedy ids on both backends in lockstep for 200 tokens. Where they differ the CPU's two candidates must be
// a near tie (within the logit tolerance); decoding then continues from the CPU's choice on both.
// A draft rooted at root: up to max_depth tokens of the known continuation expected[at...] (each made wrong
// one time in ten), every level followed by up to max_extra random distractors hung anywhere in the tree.
void draft_from(const std::vector<int32_t>& expected, size_t at, int32_t root, int32_t vocab, int max_depth, int max_extra,
                std::mt19937& rng, std::vector<int32_t>& tokens, std::vector<int32_t>& parents) {
    tokens = {root};
    parents = {-1};
    const int depth = std::uniform_int_distribution<int>(0, max_depth)(rng);
    int parent = 0;
    for (int d = 0; d < depth; ++d) {
        int32_t token = expected[at + d];
        if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) token = (token + 1) % vocab;
        tokens.push_back(token);
        parents.push_back(parent);
        parent = static_cast<int>(tokens.size()) - 1;
        for (int k = std::uniform_int_distribution<int>(0, max_extra)(rng); k > 0; --k) {
            tokens.push_back(std::uniform_int_distribution<int>(0, vocab - 1)(rng));
            parents.push_back(std::uniform_int_distribution<int>(0, static_cast<int>(tokens.size()) - 2)(rng));
        }
    }
}

TEST_P(Cuda, GreedyTokensMatchTheCpuBackend) {
    REQUIRE_CUDA();
    for (const Shape& shape : shapes()) {
        ModelPtr model = make_model(shape, 11);
        ContextPtr cpu = make_context(model.get(), LK_BACKEND_CPU);
        ContextPtr gpu = gpu_context(model.get());
        int32_t token = 1, differences = 0;
        for (int step = 0; step < 200; ++step) {
            lk_batch one{&token, nullptr, 1, LK_LOGITS_LAST};
            ASSERT_EQ(lk_context_eval(cpu.get(), &one), LK_OK) << lk_last_error();
            ASSERT_EQ(lk_context_eval(gpu.get(), &one), LK_OK) << lk_last_error();
            const float* a = nullptr;
            ASSERT_EQ(lk_context_get_logits(cpu.get(), 0, &a), LK_OK);
            std::vector<float> cpu_logits(a, a + shape.params.vocab_size);
            const float* b = nullptr;
            ASSERT_EQ(lk_context_get_logits(gpu.get(), 0, &b), LK_OK);
            const int32_t cpu_token = static_cast<int32_t>(std::max_element(cpu_logits.begin(), cpu_logits.end()) - cpu_logits.begin());
            const int32_t gpu_token = static_cast<int32_t>(std::max_element(b, b + shape.params.vocab_size) - b);
            if (cpu_token != gpu_token) {
                ++differences;
                EXPECT_NEAR(cpu_logits[cpu_token], cpu_logits[gpu_token], shape.tolerance() * (1 + std::fabs(cpu_logits[cpu_token])))
                    << shape.name << " step " << step << ": the backends disagree on a clear choice";
            }
            ASSERT_EQ(lk_context_commit(cpu.get(), nullptr, 1), LK_OK);
            ASSERT_EQ(lk_context_commit(gpu.get(), nullptr, 1), LK_OK);
            token = cpu_token;
        }
        EXPECT_LE(differences, 2) << shape.name;
    }
}

// Lookahead on CUDA equals greedy on CUDA, token for token: drafts built from the known answer (sometimes
// wrong) with random distractor branches, verified and compacted on the device.
TEST_P(Cuda, DraftTreeStepsReproduceCudaGreedy) {
    REQUIRE_CUDA();
    std::mt19937 rng(23);
    for (const Shape& shape : shapes()) {
        ModelPtr model = make_model(shape, 13);
        const int32_t vocab = shape.params.vocab_size;
        ContextPtr reference = gpu_context(model.get());
        std::vector<int32_t> expected;
        int32_t last = 3;
        while (expected.size() < 150) {
            lk_batch one{&last, nullptr, 1, LK_LOGITS_NONE};
            int32_t produced = 0;
            ASSERT_EQ(lk_context_decode_greedy(reference.get(), &one, &last, 1, &produced), LK_OK) << lk_last_error();
            expected.push_back(last);
        }
        ContextPtr ctx = gpu_context(model.get());
        std::vector<int32_t> produced;
        int32_t root = 3;
        int steps = 0;
        while (produced.size() < 120) {
            std::vector<int32_t> tokens, parents;
            draft_from(expected, produced.size(), root, vocab, 8, 3, rng, tokens, parents);
            lk_batch tree{tokens.data(), parents.data(), static_cast<int32_t>(tokens.size()), LK_LOGITS_NONE};
            std::vector<int32_t> out(tokens.size());
            int32_t count = 0;
            ASSERT_EQ(lk_context_decode_greedy(ctx.get(), &tree, out.data(), static_cast<int32_t>(out.size()), &count), LK_OK)
                << lk_last_error();
            produced.insert(produced.end(), out.begin(), out.begin() + count);
            root = produced.back();
            ++steps;
        }
        produced.resize(120);
        ASSERT_EQ(produced, std::vector<int32_t>(expected.begin(), expected.begin() + 120)) << shape.name;
        EXPECT_LT(steps, 120) << shape.name;
    }
}

// Sampled lookahead on CUDA equals plain sampling on CUDA, token for token, for many seeds and settings
// (penalties included): drafts from the known answer, sometimes wrong, with distractor branches. And plain
// sampling on CUDA follows the CPU backend's, but for the rare draw that falls within the backends' logit
// difference of a boundary.
TEST_P(Cuda, SampledDraftTreeStepsReproducePlainSampling) {
    REQUIRE_CUDA();
    std::mt19937 rng(29);
    const Shape shape = shapes()[0];
    ModelPtr model = make_model(shape, 17);
    const int32_t vocab = shape.params.vocab_size;
    const std::vector<int32_t> prompt{3, 7, 11, 2};
    auto plain = [&](lk_context* ctx, lk_sampling_params p, int count) {
        lk_context_truncate(ctx, 0);
        prefill(ctx, std::vector<int32_t>(prompt.begin(), prompt.end() - 1));
        std::vector<int32_t> out;
        int32_t root = prompt.back();
        while (static_cast<int>(out.size()) < count) {
            p.token_index = static_cast<int64_t>(out.size());
            lk_batch one{&root, nullptr, 1, LK_LOGITS_NONE};
            int32_t produced = 0;
            EXPECT_EQ(lk_context_decode_sample(ctx, &one, &p, &root, 1, &produced), LK_OK) << lk_last_error();
            if (produced != 1) break;
            out.push_back(root);
        }
        return out;
    };
    ContextPtr gpu = gpu_context(model.get());
    ContextPtr cpu = make_context(model.get(), LK_BACKEND_CPU);
    int backend_differences = 0, accepted = 0;
    for (uint64_t seed = 0; seed < 40; ++seed) {
        const lk_sampling_params p = lk_test::sampling_settings(static_cast<int>(seed), seed * 131 + 5);
        const std::vector<int32_t> expected = plain(gpu.get(), p, 60);
        ASSERT_EQ(expected.size(), 60u);
        if (plain(cpu.get(), p, 60) != expected) ++backend_differences;

        lk_context_truncate(gpu.get(), 0);
        prefill(gpu.get(), std::vector<int32_t>(prompt.begin(), prompt.end() - 1));
        std::vector<int32_t> produced;
        int32_t root = prompt.back();
        while (produced.size() < 50) {
            std::vector<int32_t> tokens, parents;
            draft_from(expected, produced.size(), root, vocab, 6, 2, rng, tokens, parents);
            lk_sampling_params step = p;
            step.token_index = static_cast<int64_t>(produced.size());
            lk_batch tree{tokens.data(), parents.data(), static_cast<int32_t>(tokens.size()), LK_LOGITS_NONE};
            std::vector<int32_t> out(tokens.size());
            int32_t count = 0;
            ASSERT_EQ(lk_context_decode_sample(gpu.get(), &tree, &step, out.data(), static_cast<int32_t>(out.size()), &count), LK_OK)
                << lk_last_error();
            accepted += count - 1;
            produced.insert(produced.end(), out.begin(), out.begin() + count);
            root = produced.back();
        }
        produced.resize(50);
        ASSERT_EQ(produced, std::vector<int32_t>(expected.begin(), expected.begin() + 50)) << "seed " << seed;
    }
    EXPECT_GT(accepted, 300);
    EXPECT_LE(backend_differences, 2) << "plain sampling on CUDA and on the CPU differ beyond boundary cases";
}

// Two identical output rows give exactly tied logits; both backends must pick the lower id, so fused
// verification over random trees accepts the same paths on both.
TEST_P(Cuda, VerificationBreaksExactTiesToTheLowestId) {
    REQUIRE_CUDA();
    Shape shape = shapes()[1];
    ModelPtr model = make_model(shape, 29);
    const lk_model_params& p = shape.params;
    std::mt19937 rng(31);
    std::vector<uint16_t> head(static_cast<size_t>(p.vocab_size) * p.hidden_size);
    for (uint16_t& v : head) v = lk_test::float_to_bf16(std::uniform_real_distribution<float>(-0.4f, 0.4f)(rng));
    for (int r = 0; r < 4; ++r) std::copy_n(head.begin() + r * p.hidden_size, p.hidden_size, head.begin() + (r + 4) * p.hidden_size);
    ASSERT_EQ(lk_model_set_tensor(model.get(), LK_TENSOR_OUTPUT, 0, LK_DTYPE_BF16, p.vocab_size, p.hidden_size, head.data()), LK_OK);
    // Bias the head towards the duplicated rows so ties are common.
    ContextPtr cpu = make_context(model.get(), LK_BACKEND_CPU);
    ContextPtr gpu = gpu_context(model.get());
    for (int trial = 0; trial < 100; ++trial) {
        const int n = std::uniform_int_distribution<int>(1, 20)(rng);
        std::vector<int32_t> tokens(n);
        for (int32_t& t : tokens) t = std::uniform_int_distribution<int>(0, 8)(rng);
        std::vector<int32_t> parents = parents_for(TreeShape::Random, n, rng);
        lk_batch tree{tokens.data(), parents.data(), n, LK_LOGITS_NONE};
        std::vector<int32_t> a(n), b(n);
        int32_t count_a = 0, count_b = 0;
        ASSERT_EQ(lk_context_truncate(cpu.get(), 0), LK_OK);
        ASSERT_EQ(lk_context_truncate(gpu.get(), 0), LK_OK);
        ASSERT_EQ(lk_context_decode_greedy(cpu.get(), &tree, a.data(), n, &count_a), LK_OK) << lk_last_error();
        ASSERT_EQ(lk_context_decode_greedy(gpu.get(), &tree, b.data(), n, &count_b), LK_OK) << lk_last_error();
        a.resize(count_a);
        b.resize(count_b);
        ASSERT_EQ(b, a) << "trial " << trial;
    }
}

// A prefix and one draft-tree step on two CUDA contexts, one of them profiled in `mode`: expects the same
// tokens from both and returns the profiled context's stage totals and the host time of its calls.
struct ProfiledStep {
    std::vector<lk_stage_time> stages;
    double host_ms = 0;
};
ProfiledStep profiled_draft_step(int32_t mode) {
    ProfiledStep result;
    ModelPtr model = make_model(shapes()[1], 17);
    ContextPtr plain = make_context(model.get(), LK_BACKEND_CUDA), profiled = make_context(model.get(), LK_BACKEND_CUDA);
    EXPECT_EQ(lk_context_set_profiling(profiled.get(), mode), LK_OK) << lk_last_error();
    std::vector<int32_t> prefix{1, 5, 9, 2, 7}, tokens{3, 8, 4, 6}, parents{-1, 0, 0, 1};
    std::vector<int32_t> out[2];
    int i = 0;
    for (lk_context* ctx : {plain.get(), profiled.get()}) {
        const auto start = std::chrono::steady_clock::now();
        prefill(ctx, prefix);
        lk_batch tree{tokens.data(), parents.data(), 4, LK_LOGITS_NONE};
        int32_t count = 0;
        out[i].resize(4);
        EXPECT_EQ(lk_context_decode_greedy(ctx, &tree, out[i].data(), 4, &count), LK_OK) << lk_last_error();
        out[i++].resize(count);
        result.host_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    }
    EXPECT_EQ(out[0], out[1]);
    result.stages.resize(16);
    int32_t count = 0;
    EXPECT_EQ(lk_context_get_profile(profiled.get(), result.stages.data(), 16, &count), LK_OK) << lk_last_error();
    result.stages.resize(count);
    return result;
}

// Stage timing on the device (with a synchronization per stage) covers every stage and leaves the
// tokens as they are.
TEST(CudaContext, ProfilingReportsEveryStageAndKeepsTheTokens) {
    REQUIRE_CUDA();
    const ProfiledStep step = profiled_draft_step(LK_PROFILE_STAGES);
    ASSERT_EQ(step.stages.size(), 10u);
    for (int s = 0; s < 9; ++s) {
        EXPECT_GT(step.stages[s].calls, 0) << step.stages[s].name;
        EXPECT_GT(step.stages[s].milliseconds, 0.0) << step.stages[s].name;
    }
    EXPECT_EQ(step.stages[9].calls, 0) << "device time is a mode of its own";
}

// Device time (CUDA events around each call's device work): one entry per forward pass, verification
// and compaction, graphs and tokens as usual, and no more GPU time than the calls took on the host.
TEST(CudaContext, DeviceTimeCountsEveryCallAndKeepsTheTokens) {
    REQUIRE_CUDA();
    const ProfiledStep step = profiled_draft_step(LK_PROFILE_DEVICE);
    ASSERT_EQ(step.stages.size(), 10u);
    for (int s = 0; s < 9; ++s) EXPECT_EQ(step.stages[s].calls, 0) << step.stages[s].name;
    EXPECT_STREQ(step.stages[9].name, "device");
    // The prefix's forward pass and compaction (its commit); the tree's forward pass, verification and compaction.
    EXPECT_EQ(step.stages[9].calls, 5);
    EXPECT_GT(step.stages[9].milliseconds, 0.0);
    EXPECT_LE(step.stages[9].milliseconds, step.host_ms);
}

// CUDA graphs (the default) replay what the direct launches (LK_CUDA_GRAPHS_OFF) compute, bit for bit: the same steps on
// two contexts, across attention chunk boundaries, trees and chains of 1 to 64 nodes,
// every node's logits compared exactly, then the fused greedy step (verify + compact) on both.
TEST(CudaContext, GraphsReplayTheDirectLaunchesBitForBit) {
    REQUIRE_CUDA();
    std::mt19937 rng(41);
    for (const Shape& shape : shapes()) {
        const int32_t vocab = shape.params.vocab_size;
        ModelPtr model = make_model(shape, 43);
        ContextPtr direct = make_context(model.get(), LK_BACKEND_CUDA, 0,
                                         Variant{"direct", LK_CUDA_MATMUL_AUTO, LK_CUDA_ATTENTION_AUTO, LK_CUDA_GRAPHS_OFF});
        ContextPtr graphs = make_context(model.get(), LK_BACKEND_CUDA);
        std::vector<int32_t> prefix(240);
        for (int32_t& t : prefix) t = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
        prefill(direct.get(), prefix);
        prefill(graphs.get(), prefix);
        const int sizes[] = {1, 2, 7, 31, 64, 1, 3, 1};
        for (int step = 0; step < 40; ++step) {
            const int n = sizes[step % 8];
            std::vector<int32_t> tokens(n);
            for (int32_t& t : tokens) t = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
            const std::vector<int32_t> parents = parents_for(static_cast<TreeShape>(step % 5), n, rng);
            const std::string what = shape.name + " step " + std::to_string(step) + " n " + std::to_string(n);
            lk_batch batch{tokens.data(), parents.data(), n, LK_LOGITS_ALL};
            ASSERT_EQ(lk_context_eval(direct.get(), &batch), LK_OK) << lk_last_error();
            ASSERT_EQ(lk_context_eval(graphs.get(), &batch), LK_OK) << lk_last_error();
            for (int node = 0; node < n; ++node) {
                const float* a = nullptr;
                ASSERT_EQ(lk_context_get_logits(direct.get(), node, &a), LK_OK) << lk_last_error();
                const std::vector<float> want(a, a + vocab);
                const float* b = nullptr;
                ASSERT_EQ(lk_context_get_logits(graphs.get(), node, &b), LK_OK) << lk_last_error();
                ASSERT_EQ(std::memcmp(want.data(), b, vocab * sizeof(float)), 0) << what << " node " << node;
            }
            std::vector<int32_t> out_direct(n), out_graphs(n);
            int32_t count_direct = 0, count_graphs = 0;
            lk_batch tree{tokens.data(), parents.data(), n, LK_LOGITS_NONE};
            ASSERT_EQ(lk_context_decode_greedy(direct.get(), &tree, out_direct.data(), n, &count_direct), LK_OK) << lk_last_error();
            ASSERT_EQ(lk_context_decode_greedy(graphs.get(), &tree, out_graphs.data(), n, &count_graphs), LK_OK) << lk_last_error();
            out_direct.resize(count_direct);
            out_graphs.resize(count_graphs);
            ASSERT_EQ(out_graphs, out_direct) << what;
        }
    }
}

TEST(CudaContext, ReportsTheDeviceInSystemInfo) {
    REQUIRE_CUDA();
    EXPECT_NE(std::string(lk_system_info()).find("device"), std::string::npos) << lk_system_info();
}

}  // namespace
