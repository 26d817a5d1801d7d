// The KV block pool and block tables (common/kv_pool.h): accounting under random use, exhaustion, and a
// scattered pool giving a context the same logits bit for bit as a contiguous one.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "common/kv_pool.h"
#include "test_model.h"

namespace {

// Thousands of random reserve / release / share operations on several tables: the pool's free count and
// every block's reference count always equal what the tables hold (recounted from scratch), and when all
// is released every block is free again: nothing leaks.
TEST(KvPool, BlockAccountingHoldsUnderRandomUse) {
    std::mt19937 rng(3);
    lk::KvBlockPool pool(64);
    std::vector<lk::BlockTable> tables(6);
    std::vector<std::vector<int32_t>> shared(6);  // blocks a table holds through retain (a shared prefix)
    for (int op = 0; op < 5000; ++op) {
        const int t = std::uniform_int_distribution<int>(0, 5)(rng);
        switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
            case 0: {
                const int64_t slots = std::uniform_int_distribution<int64_t>(0, 300)(rng);
                const int32_t before = tables[t].blocks(), free_before = pool.free_blocks();
                const bool ok = tables[t].reserve(slots, pool);
                const int64_t needed = (slots + lk::kKvBlockSlots - 1) / lk::kKvBlockSlots;
                if (ok) {
                    EXPECT_GE(tables[t].blocks(), needed);
                } else {
                    EXPECT_EQ(tables[t].blocks(), before) << "a failed reserve leaves the table as it was";
                    EXPECT_EQ(pool.free_blocks(), free_before) << "and the pool";
                    EXPECT_GT(needed - before, free_before);
                }
                break;
            }
            case 1: tables[t].release_all(pool); break;
            case 2: {
                const int from = std::uniform_int_distribution<int>(0, 5)(rng);
                if (tables[from].blocks() == 0) break;
                const int32_t block = tables[from].data()[0];
                pool.retain(block);
                shared[t].push_back(block);
                break;
            }
            default:
                for (int32_t block : shared[t]) pool.release(block);
                shared[t].clear();
                break;
        }
        std::map<int32_t, int32_t> held;
        for (int i = 0; i < 6; ++i) {
            for (int32_t b = 0; b < tables[i].blocks(); ++b) ++held[tables[i].data()[b]];
            for (int32_t block : shared[i]) ++held[block];
        }
        int32_t in_use = 0;
        for (int32_t block = 0; block < pool.size(); ++block) {
            ASSERT_EQ(pool.refs(block), held.count(block) ? held[block] : 0) << "block " << block << " after op " << op;
            in_use += pool.refs(block) > 0;
        }
        ASSERT_EQ(pool.free_blocks(), pool.size() - in_use) << "after op " << op;
    }
    for (int i = 0; i < 6; ++i) {
        tables[i].release_all(pool);
        for (int32_t block : shared[i]) pool.release(block);
    }
    EXPECT_EQ(pool.free_blocks(), pool.size());
    EXPECT_THROW(pool.release(0), std::logic_error) << "releasing a free block is a bug, not a silent no-op";
}

TEST(KvPool, PhysicalSlotsFollowTheTable) {
    lk::KvBlockPool pool(4);
    lk::BlockTable table;
    ASSERT_TRUE(table.reserve(40, pool));
    EXPECT_EQ(table.blocks(), 3);
    EXPECT_EQ(pool.free_blocks(), 1);
    for (int64_t slot : {0, 15, 16, 39})
        EXPECT_EQ(table.physical_slot(slot), int64_t{table.data()[slot / 16]} * 16 + slot % 16);
    EXPECT_FALSE(table.reserve(80, pool)) << "5 blocks from a pool of 4";
    EXPECT_EQ(table.blocks(), 3);
}

using ModelPtr = std::unique_ptr<lk_model, lk_test::ModelDeleter>;
using ContextPtr = std::unique_ptr<lk_context, lk_test::ContextDeleter>;

// The steps a context runs here: a prefill across several blocks, tree evals (every node's logits kept),
// commits of their root paths, fused greedy steps and a truncation; returns every logit seen and token
// emitted, in order.
std::vector<float> run_steps(lk_model* model, const lk_model_params& p, uint32_t seed) {
    lk_context_params cp = lk_test::context_params(LK_BACKEND_CPU, 200, 80, 1);
    lk_context* raw = nullptr;
    EXPECT_EQ(lk_context_init(model, &cp, &raw), LK_OK) << lk_last_error();
    ContextPtr ctx(raw);
    std::mt19937 rng(seed);
    auto token = [&] { return std::uniform_int_distribution<int32_t>(0, p.vocab_size - 1)(rng); };
    std::vector<float> seen;
    std::vector<int32_t> prefix(70);
    for (int32_t& t : prefix) t = token();
    lk_batch chain{prefix.data(), nullptr, 70, LK_LOGITS_ALL};
    EXPECT_EQ(lk_context_eval(ctx.get(), &chain), LK_OK) << lk_last_error();
    for (int node : {0, 15, 16, 69}) {
        const float* logits = nullptr;
        EXPECT_EQ(lk_context_get_logits(ctx.get(), node, &logits), LK_OK);
        seen.insert(seen.end(), logits, logits + p.vocab_size);
    }
    EXPECT_EQ(lk_context_commit(ctx.get(), nullptr, 70), LK_OK);
    for (int step = 0; step < 12; ++step) {
        const int n = 1 + step % 9;
        std::vector<int32_t> tokens(n), parents(n, -1);
        for (int i = 0; i < n; ++i) tokens[i] = token();
        for (int i = 1; i < n; ++i) parents[i] = std::uniform_int_distribution<int>(0, i - 1)(rng);
        lk_batch tree{tokens.data(), parents.data(), n, LK_LOGITS_ALL};
        EXPECT_EQ(lk_context_eval(ctx.get(), &tree), LK_OK) << lk_last_error();
        for (int node = 0; node < n; ++node) {
            const float* logits = nullptr;
            EXPECT_EQ(lk_context_get_logits(ctx.get(), node, &logits), LK_OK);
            seen.insert(seen.end(), logits, logits + p.vocab_size);
        }
        std::vector<int32_t> path{0};
        for (int i = 1; i < n; ++i) {
            if (parents[i] == path.back()) path.push_back(i);
        }
        EXPECT_EQ(lk_context_commit(ctx.get(), path.data(), static_cast<int32_t>(path.size())), LK_OK) << lk_last_error();
        int32_t out[16], count = 0;
        lk_batch step_tree{tokens.data(), parents.data(), n, LK_LOGITS_NONE};
        EXPECT_EQ(lk_context_decode_greedy(ctx.get(), &step_tree, out, 16, &count), LK_OK) << lk_last_error();
        for (int i = 0; i < count; ++i) seen.push_back(static_cast<float>(out[i]));
        if (step == 6) {
            EXPECT_EQ(lk_context_truncate(ctx.get(), 75), LK_OK);
        }
    }
    return seen;
}

// The pool scattered (a sequence's consecutive logical blocks never adjacent in memory) gives every logit
// and token bit for bit as the contiguous pool does: every paged access path is right.
TEST(KvPool, AScatteredPoolGivesTheContiguousPoolsLogits) {
    for (int32_t dtype : {LK_DTYPE_F32, LK_DTYPE_BF16}) {
        const lk_model_params p = lk_test::small_params(32, 4, 2, 2, 41);
        lk_model* raw = nullptr;
        ASSERT_EQ(lk_model_init(&p, &raw), LK_OK);
        ModelPtr model(raw);
        ASSERT_EQ(lk_test::fill_random(model.get(), p, dtype, 9), LK_OK);
        const std::vector<float> contiguous = run_steps(model.get(), p, 21);
        lk::testing::scatter_kv_blocks = true;
        const std::vector<float> scattered = run_steps(model.get(), p, 21);
        lk::testing::scatter_kv_blocks = false;
        ASSERT_EQ(contiguous.size(), scattered.size());
        for (size_t i = 0; i < contiguous.size(); ++i) ASSERT_EQ(contiguous[i], scattered[i]) << "dtype " << dtype << " value " << i;
    }
}

}  // namespace
