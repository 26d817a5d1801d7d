// Several sequences in one context (lookahead.h's "sequences"): a batched step emits for each sequence
// exactly what a step on that sequence alone emits, whatever else is in the batch, in any order, with
// contiguous or scattered KV blocks; the pool's blocks follow the tokens; misuse is refused by name and
// changes nothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/context.h"
#include "common/kv_pool.h"
#include "sequence_helpers.h"

namespace {

using namespace lk_test::sequences;

void run_batched(lk_model* model, uint32_t seed, bool sampled, int32_t kv_type = LK_DTYPE_F32) {
    constexpr int kSeqs = 4, kTokens = 40;
    std::mt19937 rng(seed);
    std::vector<std::vector<int32_t>> prompts(kSeqs), expected(kSeqs), produced(kSeqs);
    for (int s = 0; s < kSeqs; ++s) {
        prompts[s].resize(3 + 11 * s);  // 3, 14, 25, 36 tokens: different block fills
        for (int32_t& t : prompts[s]) t = std::uniform_int_distribution<int32_t>(0, 36)(rng);
        expected[s] = plain_decode(model, prompts[s], kTokens, sampled, s, kv_type);
    }
    ContextPtr ctx = make_context(model, kSeqs, 120, 0, kv_type);
    for (int s = 1; s < kSeqs; ++s) {
        int32_t id = -1;
        ASSERT_EQ(lk_seq_add(ctx.get(), &id), LK_OK) << lk_last_error();
        ASSERT_EQ(id, s);
    }
    for (int s = 0; s < kSeqs; ++s)
        ASSERT_EQ(lk_seq_prefill(ctx.get(), s, prompts[s].data(), static_cast<int32_t>(prompts[s].size()) - 1), LK_OK) << lk_last_error();
    int steps = 0;  // sequence steps, summed over the batches
    for (int step = 0; step < 60; ++step) {
        // A random subset of the unfinished sequences, in a random order, each with a tree: its last token,
        // the next expected tokens as a chain of random length (accepted), and random siblings (rejected).
        std::vector<int> order;
        for (int s = 0; s < kSeqs; ++s)
            if (static_cast<int>(produced[s].size()) < kTokens && rng() % 4 != 0) order.push_back(s);
        if (order.empty()) continue;
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<int32_t> tokens, parents, seq_ids;
        std::vector<lk_sampling_params> params;
        for (int s : order) {
            const int first = static_cast<int>(tokens.size());
            const size_t done = produced[s].size();
            params.push_back(sampling_for(s, static_cast<int32_t>(prompts[s].size())));
            params.back().token_index = static_cast<int64_t>(done);
            tokens.push_back(done == 0 ? prompts[s].back() : produced[s].back());
            parents.push_back(-1);
            seq_ids.push_back(s);
            const int chain = std::uniform_int_distribution<int>(0, 4)(rng);
            for (int j = 0; j < chain && done + j < expected[s].size(); ++j) {
                parents.push_back(static_cast<int32_t>(tokens.size()) - 1);  // the root, then the chain's previous node
                tokens.push_back(expected[s][done + j]);
                seq_ids.push_back(s);
            }
            for (int extra = std::uniform_int_distribution<int>(0, 3)(rng); extra > 0; --extra) {
                tokens.push_back(std::uniform_int_distribution<int32_t>(0, 36)(rng));
                parents.push_back(std::uniform_int_distribution<int32_t>(first, static_cast<int32_t>(tokens.size()) - 2)(rng));
                seq_ids.push_back(s);
            }
        }
        steps += static_cast<int>(order.size());
        std::vector<int32_t> out(tokens.size(), -7), counts(order.size(), -7);
        const lk_seq_batch batch{tokens.data(), parents.data(), seq_ids.data(), static_cast<int32_t>(tokens.size()), 0};
        const lk_status status = sampled ? lk_context_decode_sample_seqs(ctx.get(), &batch, params.data(), out.data(), counts.data())
                                         : lk_context_decode_greedy_seqs(ctx.get(), &batch, out.data(), counts.data());
        ASSERT_EQ(status, LK_OK) << lk_last_error();
        int first = 0;
        for (size_t k = 0; k < order.size(); ++k) {
            const int s = order[k];
            ASSERT_GE(counts[k], 1);
            for (int j = 0; j < counts[k] && produced[s].size() < static_cast<size_t>(kTokens); ++j) produced[s].push_back(out[first + j]);
            while (first < static_cast<int>(tokens.size()) && seq_ids[first] == s) ++first;
        }
    }
    EXPECT_LT(steps, kSeqs * kTokens) << "drafts were accepted";
    for (int s = 0; s < kSeqs; ++s) {
        ASSERT_EQ(produced[s].size(), static_cast<size_t>(kTokens)) << "sequence " << s << " did not finish";
        EXPECT_EQ(produced[s], expected[s]) << "sequence " << s << " in batches vs alone";
        lk_seq_info info{};
        ASSERT_EQ(lk_seq_get_info(ctx.get(), s, &info), LK_OK);
        EXPECT_GE(info.n_past, static_cast<int32_t>(prompts[s].size()) - 1 + kTokens - 1);
        // Blocks for the committed tokens, and for the last step's pending slots at most.
        EXPECT_GE(info.n_blocks, (info.n_past + 15) / 16);
        EXPECT_LE(info.n_blocks, (info.n_past + 8 + 15) / 16);
    }
}

TEST(Sequences, BatchedStepsEmitWhatEachSequenceAloneEmits) {
    for (int32_t dtype : {LK_DTYPE_F32, LK_DTYPE_BF16}) {
        ModelPtr model = make_model(dtype, 5);
        run_batched(model.get(), 11, false);
        lk::testing::scatter_kv_blocks = true;
        run_batched(model.get(), 12, false);
        lk::testing::scatter_kv_blocks = false;
    }
    // 16-bit caches: the same, since every read widens the stored element the same way.
    ModelPtr model = make_model(LK_DTYPE_F32, 6);
    for (int32_t kv_type : {LK_DTYPE_F16, LK_DTYPE_BF16}) {
        run_batched(model.get(), 13, false, kv_type);
        lk::testing::scatter_kv_blocks = true;
        run_batched(model.get(), 14, true, kv_type);
        lk::testing::scatter_kv_blocks = false;
    }
}

// A sequence's logits in a batched step are bit for bit those of its step alone, for batches of 2..16
// sequences in random order, with contiguous and scattered KV blocks (what makes batching lossless).
void check_logits_alone_and_batched(int32_t kv_type) {
    constexpr int kSeqs = 16, kVocab = 37;
    ModelPtr model = make_model(LK_DTYPE_F32, 41);
    std::mt19937 rng(41);
    std::vector<std::vector<int32_t>> prompts(kSeqs), trees(kSeqs), parents(kSeqs);
    for (int s = 0; s < kSeqs; ++s) {
        prompts[s].resize(std::uniform_int_distribution<int>(1, 40)(rng));
        for (int32_t& t : prompts[s]) t = std::uniform_int_distribution<int32_t>(0, kVocab - 1)(rng);
        trees[s] = {prompts[s].back()};
        parents[s] = {-1};
        for (int extra = std::uniform_int_distribution<int>(0, 3)(rng); extra > 0; --extra) {  // at most 64 nodes: n_batch
            trees[s].push_back(std::uniform_int_distribution<int32_t>(0, kVocab - 1)(rng));
            parents[s].push_back(std::uniform_int_distribution<int32_t>(0, static_cast<int32_t>(trees[s].size()) - 2)(rng));
        }
    }
    // Every sequence prefilled (its prompt but the last token) into a context of its own kind; then one step
    // over the given sequences, returning each node's logits per sequence.
    auto step = [&](const std::vector<int>& order, bool scattered) {
        lk::testing::scatter_kv_blocks = scattered;
        ContextPtr ctx = make_context(model.get(), kSeqs, 64, 0, kv_type);
        lk::testing::scatter_kv_blocks = false;
        for (int s = 1; s < kSeqs; ++s) {
            int32_t id = -1;
            EXPECT_EQ(lk_seq_add(ctx.get(), &id), LK_OK) << lk_last_error();
        }
        for (int s = 0; s < kSeqs; ++s) {
            if (prompts[s].size() > 1) {
                EXPECT_EQ(lk_seq_prefill(ctx.get(), s, prompts[s].data(), static_cast<int32_t>(prompts[s].size()) - 1), LK_OK) << lk_last_error();
            }
        }
        std::vector<int32_t> tokens, batch_parents, seq_ids;
        std::vector<int> owner;
        for (int s : order) {
            const int32_t first = static_cast<int32_t>(tokens.size());
            for (size_t i = 0; i < trees[s].size(); ++i) {
                tokens.push_back(trees[s][i]);
                batch_parents.push_back(parents[s][i] < 0 ? -1 : first + parents[s][i]);
                seq_ids.push_back(s);
                owner.push_back(s);
            }
        }
        std::vector<std::vector<float>> logits(kSeqs);
        lk::testing::observe_seq_logits = [&](int32_t node, const float* row) {
            logits[owner[node]].insert(logits[owner[node]].end(), row, row + kVocab);
        };
        std::vector<int32_t> out(tokens.size()), counts(order.size());
        const lk_seq_batch batch{tokens.data(), batch_parents.data(), seq_ids.data(), static_cast<int32_t>(tokens.size()), 0};
        EXPECT_EQ(lk_context_decode_greedy_seqs(ctx.get(), &batch, out.data(), counts.data()), LK_OK) << lk_last_error();
        lk::testing::observe_seq_logits = nullptr;
        return logits;
    };
    std::vector<std::vector<float>> alone(kSeqs);
    for (int s = 0; s < kSeqs; ++s) {
        alone[s] = step({s}, false)[s];
        ASSERT_EQ(alone[s].size(), trees[s].size() * kVocab) << "every node's logits were observed";
    }
    for (int size = 2; size <= kSeqs; ++size) {
        std::vector<int> order(kSeqs);
        for (int s = 0; s < kSeqs; ++s) order[s] = s;
        std::shuffle(order.begin(), order.end(), rng);
        order.resize(size);
        const std::vector<std::vector<float>> batched = step(order, size % 2 == 1);
        for (int s : order) {
            ASSERT_EQ(batched[s].size(), alone[s].size());
            EXPECT_EQ(std::memcmp(batched[s].data(), alone[s].data(), alone[s].size() * sizeof(float)), 0)
                << "sequence " << s << " in a batch of " << size << " sequences, kv_type " << kv_type;
        }
    }
}

TEST(Sequences, ASequencesLogitsAloneEqualItsLogitsInBatchesOfTwoToSixteen) {
    for (int32_t kv_type : {LK_DTYPE_F32, LK_DTYPE_F16, LK_DTYPE_BF16}) check_logits_alone_and_batched(kv_type);
}

// Sampling: each sequence has its own seed and settings, its penalties count its own tokens only, and a
// batched sampled step emits exactly what plain sampling of that sequence alone emits.
TEST(Sequences, BatchedSampledStepsEmitWhatPlainSamplingAloneEmits) {
    for (int32_t dtype : {LK_DTYPE_F32, LK_DTYPE_BF16}) {
        ModelPtr model = make_model(dtype, 15);
        run_batched(model.get(), 21, true);
        lk::testing::scatter_kv_blocks = true;
        run_batched(model.get(), 22, true);
        lk::testing::scatter_kv_blocks = false;
    }
}

// Invalid settings of one sequence are refused naming its params entry, and nothing is committed.
TEST(Sequences, BatchedSamplingRefusesBadSettingsByIndex) {
    ModelPtr model = make_model(LK_DTYPE_F32, 16);
    ContextPtr ctx = make_context(model.get(), 2, 100);
    int32_t one = -1;
    ASSERT_EQ(lk_seq_add(ctx.get(), &one), LK_OK);
    const std::vector<int32_t> tokens{5, 6}, parents{-1, -1}, seqs{0, 1};
    std::vector<lk_sampling_params> params{sampling_for(0, 1), sampling_for(1, 1)};
    params[1].top_p = 1.5f;
    std::vector<int32_t> out(2), counts(2);
    const lk_seq_batch batch{tokens.data(), parents.data(), seqs.data(), 2, 0};
    EXPECT_EQ(lk_context_decode_sample_seqs(ctx.get(), &batch, params.data(), out.data(), counts.data()), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("params[1] (sequence 1)")) << lk_last_error();
    EXPECT_TRUE(error_mentions("top_p")) << lk_last_error();
    for (int32_t seq : {0, 1}) {
        lk_seq_info info{};
        ASSERT_EQ(lk_seq_get_info(ctx.get(), seq, &info), LK_OK);
        EXPECT_EQ(info.n_past, 0);
    }
}

// Blocks follow the tokens: a sequence holds ceil(n_past / 16) of them after prefill, truncation gives the
// rest back, a pool that runs out refuses a prefill and changes nothing, and removing a sequence frees its
// blocks for another.
TEST(Sequences, PoolBlocksFollowTheTokensAndExhaustionChangesNothing) {
    ModelPtr model = make_model(LK_DTYPE_F32, 6);
    ContextPtr ctx = make_context(model.get(), 3, 100, 64);  // 4 blocks for everyone
    std::vector<int32_t> tokens(60, 3);
    int32_t one = -1;
    ASSERT_EQ(lk_seq_add(ctx.get(), &one), LK_OK);
    ASSERT_EQ(lk_seq_prefill(ctx.get(), 0, tokens.data(), 40), LK_OK) << lk_last_error();
    lk_seq_info info{};
    ASSERT_EQ(lk_seq_get_info(ctx.get(), 0, &info), LK_OK);
    EXPECT_EQ(info.n_past, 40);
    EXPECT_EQ(info.n_blocks, 3);
    EXPECT_EQ(lk_seq_prefill(ctx.get(), one, tokens.data(), 20), LK_ERR_CONTEXT_FULL) << "2 blocks needed, 1 free";
    EXPECT_TRUE(error_mentions("KV pool")) << lk_last_error();
    ASSERT_EQ(lk_seq_get_info(ctx.get(), one, &info), LK_OK);
    EXPECT_EQ(info.n_past, 0) << "a refused prefill commits nothing";
    ASSERT_EQ(lk_seq_truncate(ctx.get(), 0, 10), LK_OK);
    ASSERT_EQ(lk_seq_get_info(ctx.get(), 0, &info), LK_OK);
    EXPECT_EQ(info.n_blocks, 1) << "truncation gives blocks back";
    EXPECT_EQ(lk_seq_prefill(ctx.get(), one, tokens.data(), 20), LK_OK) << lk_last_error();
    ASSERT_EQ(lk_seq_remove(ctx.get(), 0), LK_OK);
    EXPECT_EQ(lk_seq_get_info(ctx.get(), 0, &info), LK_ERR_INVALID_STATE);
    int32_t again = -1;
    ASSERT_EQ(lk_seq_add(ctx.get(), &again), LK_OK);
    EXPECT_EQ(again, 0) << "the lowest free id";
    EXPECT_EQ(lk_seq_prefill(ctx.get(), again, tokens.data(), 30), LK_OK) << "the removed sequence's blocks are free again";
}

// The default pool has room for every sequence at n_ctx, also when n_ctx is not a whole number of blocks.
TEST(Sequences, TheDefaultPoolHoldsEverySequenceAtFullLength) {
    ModelPtr model = make_model(LK_DTYPE_F32, 9);
    ContextPtr ctx = make_context(model.get(), 3, 40);  // 3 blocks each, 7.5 blocks' worth of n_ctx x n_seq_max
    const std::vector<int32_t> tokens(40, 2);
    for (int32_t seq = 0; seq < 3; ++seq) {
        if (seq > 0) {
            int32_t id = -1;
            ASSERT_EQ(lk_seq_add(ctx.get(), &id), LK_OK);
        }
        ASSERT_EQ(lk_seq_prefill(ctx.get(), seq, tokens.data(), 40), LK_OK) << "sequence " << seq << ": " << lk_last_error();
    }
}

TEST(Sequences, MisuseIsRefusedByNameAndCommitsNothing) {
    ModelPtr model = make_model(LK_DTYPE_F32, 7);
    ContextPtr ctx = make_context(model.get(), 2, 100);
    int32_t one = -1, extra = -1;
    ASSERT_EQ(lk_seq_add(ctx.get(), &one), LK_OK);
    EXPECT_EQ(lk_seq_add(ctx.get(), &extra), LK_ERR_CONTEXT_FULL);
    EXPECT_TRUE(error_mentions("n_seq_max"));
    const std::vector<int32_t> prompt{1, 2, 3, 4};
    ASSERT_EQ(lk_seq_prefill(ctx.get(), 0, prompt.data(), 4), LK_OK);
    ASSERT_EQ(lk_seq_prefill(ctx.get(), one, prompt.data(), 4), LK_OK);
    std::vector<int32_t> out(8), counts(4);
    struct Case {
        std::vector<int32_t> tokens, parents, seqs;
        int32_t reserved;
        const char* message;
    };
    const Case cases[] = {
        {{5, 6, 7}, {-1, -1, 1}, {0, 1, 0}, 0, "not contiguous"},
        {{5, 6}, {-1, 0}, {0, 7}, 0, "out of range"},
        {{5, 6, 7}, {-1, -1, 0}, {0, 1, 1}, 0, "not an earlier node of sequence 1"},
        {{5, 6}, {0, 0}, {1, 1}, 0, "must be its root"},
        {{5}, {-1}, {0}, 3, "reserved"},
        {{5, 99}, {-1, 0}, {0, 0}, 0, "token"},
    };
    for (const Case& c : cases) {
        const lk_seq_batch batch{c.tokens.data(), c.parents.data(), c.seqs.data(), static_cast<int32_t>(c.tokens.size()), c.reserved};
        const lk_status status = lk_context_decode_greedy_seqs(ctx.get(), &batch, out.data(), counts.data());
        EXPECT_TRUE(status == LK_ERR_INVALID_ARGUMENT) << c.message << ": " << status;
        EXPECT_TRUE(error_mentions(c.message)) << lk_last_error();
        for (int32_t seq : {0, 1}) {
            lk_seq_info info{};
            ASSERT_EQ(lk_seq_get_info(ctx.get(), seq, &info), LK_OK);
            EXPECT_EQ(info.n_past, 4) << c.message << ": nothing committed";
        }
    }
    ASSERT_EQ(lk_seq_remove(ctx.get(), 0), LK_OK);
    int32_t token = 5, count = 0;
    lk_batch single{&token, nullptr, 1, LK_LOGITS_NONE};
    EXPECT_EQ(lk_context_decode_greedy(ctx.get(), &single, &token, 1, &count), LK_ERR_INVALID_STATE);
    EXPECT_TRUE(error_mentions("sequence 0"));
    const int32_t root_parent = -1, seq0 = 0;
    const lk_seq_batch removed{&token, &root_parent, &seq0, 1, 0};
    EXPECT_EQ(lk_context_decode_greedy_seqs(ctx.get(), &removed, out.data(), counts.data()), LK_ERR_INVALID_STATE);
    EXPECT_TRUE(error_mentions("not live"));
}

// The CUDA backend holds one sequence: a request for more is refused by name (skipped without a device).
TEST(Sequences, CudaRefusesSeveralSequencesAnd16BitCaches) {
    if (!lk_backend_available(LK_BACKEND_CUDA)) GTEST_SKIP() << "no CUDA device";
    ModelPtr model = make_model(LK_DTYPE_F32, 8);
    lk_context_params cp = lk_test::context_params(LK_BACKEND_CUDA, 64, 16, 1);
    cp.n_seq_max = 2;
    lk_context* raw = nullptr;
    EXPECT_EQ(lk_context_init(model.get(), &cp, &raw), LK_ERR_UNSUPPORTED);
    EXPECT_TRUE(error_mentions("n_seq_max"));
    EXPECT_EQ(raw, nullptr);
    cp.n_seq_max = 1;
    cp.kv_type = LK_DTYPE_BF16;
    EXPECT_EQ(lk_context_init(model.get(), &cp, &raw), LK_ERR_UNSUPPORTED);
    EXPECT_TRUE(error_mentions("kv_type"));
    EXPECT_EQ(raw, nullptr);
}

}  // namespace
