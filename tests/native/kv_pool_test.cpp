// The KV block pool and block tables (common/kv_pool.h): accounting under random use, exhaustion, and a
// scattered pool giving a context the same logits bit for bit as a contiguous one.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <tuple>
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

// Thousands of random operations with prefix caching: tables fill blocks with tokens from a small alphabet
// (so that prefixes repeat), publish their full blocks, reuse published prefixes and end. Against a
// brute-force index (every publication ever made, live while its block keeps its generation): a lookup
// finds exactly the live entry, a publication of known contents returns the earlier block, and every block
// is free, cached (published, unheld) or held as often as the tables hold it.
TEST(KvPool, PrefixCacheAccountingHoldsUnderRandomUse) {
    std::mt19937 rng(5);
    lk::KvBlockPool pool(24);
    constexpr int kTables = 5;
    std::vector<lk::BlockTable> tables(kTables);
    std::vector<std::vector<int32_t>> contents(kTables);   // per table: the tokens of its filled slots
    std::vector<std::vector<lk::BlockRef>> chains(kTables);  // per table: its published blocks as the index names them
    using OracleKey = std::tuple<int32_t, uint32_t, std::vector<int32_t>>;
    std::map<OracleKey, lk::BlockRef> oracle;
    auto live = [&](const OracleKey& key) -> lk::BlockRef {
        const auto it = oracle.find(key);
        if (it == oracle.end() || pool.ref(it->second.block).generation != it->second.generation) return {};
        return it->second;
    };
    auto key_of = [](lk::BlockRef parent, const int32_t* tokens) {
        return OracleKey{parent.block, parent.generation, std::vector<int32_t>(tokens, tokens + lk::kKvBlockSlots)};
    };
    int reused_blocks = 0, evictions_seen = 0;
    for (int op = 0; op < 4000; ++op) {
        const int t = std::uniform_int_distribution<int>(0, kTables - 1)(rng);
        const int32_t cached_before = pool.cached_blocks(), free_before = pool.free_blocks();
        switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
            case 0: {  // fill slots: new blocks come from the free list, else from the cache
                const int n = std::uniform_int_distribution<int>(1, 40)(rng);
                if (!tables[t].reserve(static_cast<int64_t>(contents[t].size()) + n, pool)) break;
                for (int i = 0; i < n; ++i) contents[t].push_back(std::uniform_int_distribution<int32_t>(0, 1)(rng));
                if (free_before == 0 && pool.cached_blocks() < cached_before) ++evictions_seen;
                break;
            }
            case 1: {  // publish every full block not yet published
                for (size_t i = chains[t].size(); i < contents[t].size() / lk::kKvBlockSlots; ++i) {
                    const lk::BlockRef parent = i > 0 ? chains[t][i - 1] : lk::BlockRef{};
                    const int32_t* tokens = contents[t].data() + i * lk::kKvBlockSlots;
                    const OracleKey key = key_of(parent, tokens);
                    const lk::BlockRef expected = live(key);
                    const lk::BlockRef got = pool.publish(parent, tokens, tables[t].data()[i]);
                    if (expected.block >= 0) {
                        ASSERT_EQ(got.block, expected.block) << "op " << op;
                        ASSERT_EQ(got.generation, expected.generation);
                    } else {
                        ASSERT_EQ(got.block, tables[t].data()[i]);
                        oracle[key] = got;
                    }
                    chains[t].push_back(got);
                }
                break;
            }
            case 2: {  // an empty table reuses the longest published prefix of another table's contents
                if (tables[t].blocks() > 0) break;
                const int from = std::uniform_int_distribution<int>(0, kTables - 1)(rng);
                const std::vector<int32_t> wanted = contents[from];
                for (size_t i = 0; i < wanted.size() / lk::kKvBlockSlots; ++i) {
                    const lk::BlockRef parent = i > 0 ? chains[t][i - 1] : lk::BlockRef{};
                    const lk::BlockRef expected = live(key_of(parent, wanted.data() + i * lk::kKvBlockSlots));
                    const lk::BlockRef got = pool.acquire_published(parent, wanted.data() + i * lk::kKvBlockSlots);
                    ASSERT_EQ(got.block, expected.block) << "op " << op << ": a lookup finds exactly the live entry";
                    if (got.block < 0) break;
                    tables[t].append(got.block);
                    chains[t].push_back(got);
                    contents[t].insert(contents[t].end(), wanted.begin() + i * lk::kKvBlockSlots, wanted.begin() + (i + 1) * lk::kKvBlockSlots);
                    ++reused_blocks;
                }
                break;
            }
            default:
                tables[t].release_all(pool);
                contents[t].clear();
                chains[t].clear();
                break;
        }
        std::map<int32_t, int32_t> held;
        for (const lk::BlockTable& table : tables) {
            for (int32_t b = 0; b < table.blocks(); ++b) ++held[table.data()[b]];
        }
        int32_t in_use = 0, idle_published = 0;
        for (int32_t block = 0; block < pool.size(); ++block) {
            ASSERT_EQ(pool.refs(block), held.count(block) ? held[block] : 0) << "block " << block << " after op " << op;
            in_use += pool.refs(block) > 0;
            idle_published += pool.refs(block) == 0 && pool.published(block);
        }
        ASSERT_EQ(pool.cached_blocks(), idle_published) << "after op " << op;
        ASSERT_EQ(pool.free_blocks() + pool.cached_blocks() + in_use, pool.size()) << "after op " << op;
    }
    EXPECT_GT(reused_blocks, 100) << "the operations exercise reuse";
    EXPECT_GT(evictions_seen, 10) << "and eviction";
    for (lk::BlockTable& table : tables) table.release_all(pool);
    EXPECT_EQ(pool.free_blocks() + pool.cached_blocks(), pool.size());
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
