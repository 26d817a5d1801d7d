// Sharing KV blocks between sequences (lk_seq_fork, lk_seq_reuse_prefix): a sequence on shared or reused
// blocks decodes exactly what a sequence that computed its prefix itself decodes, a write never reaches
// another sequence's blocks (copy-on-write after a truncation into a shared block), published blocks stay
// reusable after their sequence ends until the pool needs them, and misuse is refused.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "sequence_helpers.h"

namespace {

using namespace lk_test::sequences;

// n greedy tokens of a sequence whose next root is root, through one-node batched steps.
std::vector<int32_t> decode_seq(lk_context* ctx, int32_t seq, int32_t root, int n) {
    std::vector<int32_t> out;
    const int32_t parent = -1;
    for (int i = 0; i < n; ++i) {
        int32_t token = 0, count = 0;
        const lk_seq_batch one{&root, &parent, &seq, 1, 0};
        EXPECT_EQ(lk_context_decode_greedy_seqs(ctx, &one, &token, &count), LK_OK) << lk_last_error();
        out.push_back(token);
        root = token;
    }
    return out;
}

std::vector<int32_t> random_tokens(std::mt19937& rng, int n) {
    std::vector<int32_t> tokens(n);
    for (int32_t& t : tokens) t = std::uniform_int_distribution<int32_t>(0, 36)(rng);
    return tokens;
}

lk_kv_pool_info pool(lk_context* ctx) {
    lk_kv_pool_info info{};
    EXPECT_EQ(lk_context_get_kv_pool(ctx, &info), LK_OK) << lk_last_error();
    return info;
}

// A second request whose prompt starts with the first's reuses its full blocks (while the first runs, and
// after it ended), prefills only the rest, and decodes what a context computing everything decodes.
TEST(PrefixSharing, AReusedPrefixDecodesWhatItsFullPrefillDecodes) {
    for (int32_t dtype : {LK_DTYPE_F32, LK_DTYPE_BF16}) {
        ModelPtr model = make_model(dtype, 31);
        std::mt19937 rng(7);
        const std::vector<int32_t> shared = random_tokens(rng, 45);
        ContextPtr ctx = make_context(model.get(), 3, 120);
        ASSERT_EQ(pool(ctx.get()).block_tokens, 16);
        ASSERT_EQ(lk_seq_prefill(ctx.get(), 0, shared.data(), 44), LK_OK) << lk_last_error();
        const std::vector<int32_t> first_output = decode_seq(ctx.get(), 0, shared.back(), 10);

        for (bool first_ended : {false, true}) {
            if (first_ended) {
                ASSERT_EQ(lk_seq_remove(ctx.get(), 0), LK_OK);
            }
            std::vector<int32_t> prompt = shared;
            const std::vector<int32_t> tail = random_tokens(rng, 9);
            prompt.insert(prompt.end(), tail.begin(), tail.end());
            const lk_kv_pool_info before = pool(ctx.get());
            int32_t seq = -1, reused = -1;
            ASSERT_EQ(lk_seq_add(ctx.get(), &seq), LK_OK);
            ASSERT_EQ(lk_seq_reuse_prefix(ctx.get(), seq, prompt.data(), static_cast<int32_t>(prompt.size()) - 1, &reused), LK_OK)
                << lk_last_error();
            EXPECT_EQ(reused, 32) << "the two full blocks of the shared 45 tokens";
            const lk_kv_pool_info after = pool(ctx.get());
            EXPECT_EQ(after.n_free, before.n_free) << "reuse takes no free block";
            if (first_ended) {
                EXPECT_EQ(after.n_cached, before.n_cached - 2) << "the two cached blocks are held again";
            }
            lk_seq_info info{};
            ASSERT_EQ(lk_seq_get_info(ctx.get(), seq, &info), LK_OK);
            EXPECT_EQ(info.n_past, 32);
            EXPECT_EQ(info.n_blocks, 2);
            ASSERT_EQ(lk_seq_prefill(ctx.get(), seq, prompt.data() + reused, static_cast<int32_t>(prompt.size()) - 1 - reused), LK_OK);
            EXPECT_EQ(decode_seq(ctx.get(), seq, prompt.back(), 12), plain_decode(model.get(), prompt, 12, false, 0))
                << "dtype " << dtype << (first_ended ? ", after the first ended" : ", beside the first");
            if (!first_ended) {
                const std::vector<int32_t> first_alone = plain_decode(model.get(), shared, 16, false, 0);
                EXPECT_EQ(decode_seq(ctx.get(), 0, first_output.back(), 6),
                          std::vector<int32_t>(first_alone.begin() + 10, first_alone.end()))
                    << "the first sequence goes on unchanged";
            }
            ASSERT_EQ(lk_seq_remove(ctx.get(), seq), LK_OK);
        }
    }
}

// A fork shares the source's full blocks and copies its partial one; both go on independently, also after
// the source truncates into a shared block and writes there (its block is copied first).
TEST(PrefixSharing, AForkAndItsSourceDecodeIndependently) {
    ModelPtr model = make_model(LK_DTYPE_F32, 32);
    std::mt19937 rng(8);
    const std::vector<int32_t> prompt = random_tokens(rng, 38);
    const std::vector<int32_t> expected = plain_decode(model.get(), prompt, 14, false, 0);
    for (int32_t n_fork : {37, 32, 20}) {
        ContextPtr ctx = make_context(model.get(), 2, 120);
        ASSERT_EQ(lk_seq_prefill(ctx.get(), 0, prompt.data(), 37), LK_OK);
        const int32_t free_before = pool(ctx.get()).n_free;
        int32_t fork = -1;
        ASSERT_EQ(lk_seq_fork(ctx.get(), 0, n_fork, &fork), LK_OK) << lk_last_error();
        EXPECT_EQ(fork, 1);
        EXPECT_EQ(free_before - pool(ctx.get()).n_free, n_fork % 16 == 0 ? 0 : 1) << "only a partial block is copied";
        lk_seq_info info{};
        ASSERT_EQ(lk_seq_get_info(ctx.get(), fork, &info), LK_OK);
        EXPECT_EQ(info.n_past, n_fork);
        // The fork completes the prompt itself; the source truncates into a shared block and rewrites it
        // with other tokens first, then the fork decodes.
        if (n_fork < 37) {
            ASSERT_EQ(lk_seq_prefill(ctx.get(), fork, prompt.data() + n_fork, 37 - n_fork), LK_OK);
        }
        ASSERT_EQ(lk_seq_truncate(ctx.get(), 0, 5), LK_OK);
        const std::vector<int32_t> other = random_tokens(rng, 30);
        ASSERT_EQ(lk_seq_prefill(ctx.get(), 0, other.data(), 30), LK_OK);
        EXPECT_EQ(decode_seq(ctx.get(), fork, prompt.back(), 14), expected) << "fork at " << n_fork;
        std::vector<int32_t> source_prompt(prompt.begin(), prompt.begin() + 5);
        source_prompt.insert(source_prompt.end(), other.begin(), other.end());
        const std::vector<int32_t> source_next = decode_seq(ctx.get(), 0, 9, 6);
        source_prompt.push_back(9);
        EXPECT_EQ(source_next, plain_decode(model.get(), source_prompt, 6, false, 0)) << "the source after its rewrite";
    }
}

// Published blocks outlive their sequence as cached blocks; a pool that needs the space takes them back
// (then a prefix no longer matches), and every block is accounted for throughout.
TEST(PrefixSharing, CachedBlocksAreTakenBackWhenThePoolNeedsThem) {
    ModelPtr model = make_model(LK_DTYPE_F32, 33);
    std::mt19937 rng(9);
    const std::vector<int32_t> prompt = random_tokens(rng, 64);
    ContextPtr ctx = make_context(model.get(), 2, 100, 96);  // 6 blocks
    ASSERT_EQ(lk_seq_prefill(ctx.get(), 0, prompt.data(), 64), LK_OK);
    ASSERT_EQ(lk_seq_remove(ctx.get(), 0), LK_OK);
    lk_kv_pool_info info = pool(ctx.get());
    EXPECT_EQ(info.n_blocks, 6);
    EXPECT_EQ(info.n_cached, 4);
    EXPECT_EQ(info.n_free, 2);
    int32_t seq = -1, reused = -1;
    ASSERT_EQ(lk_seq_add(ctx.get(), &seq), LK_OK);
    const std::vector<int32_t> other = random_tokens(rng, 48);
    ASSERT_EQ(lk_seq_prefill(ctx.get(), seq, other.data(), 48), LK_OK) << "3 blocks: 2 free, then the oldest cached one";
    info = pool(ctx.get());
    EXPECT_EQ(info.n_free, 0);
    EXPECT_EQ(info.n_cached, 3);
    ASSERT_EQ(lk_seq_remove(ctx.get(), seq), LK_OK);
    ASSERT_EQ(lk_seq_add(ctx.get(), &seq), LK_OK);
    ASSERT_EQ(lk_seq_reuse_prefix(ctx.get(), seq, prompt.data(), 64, &reused), LK_OK);
    // The last block of a sequence is released first and so evicted first: the first three still match.
    EXPECT_EQ(reused, 48);
    ASSERT_EQ(lk_seq_remove(ctx.get(), seq), LK_OK);
    info = pool(ctx.get());
    EXPECT_EQ(info.n_free + info.n_cached, info.n_blocks) << "nothing held once every sequence is gone";
}

TEST(PrefixSharing, MisuseIsRefusedByName) {
    ModelPtr model = make_model(LK_DTYPE_F32, 34);
    ContextPtr ctx = make_context(model.get(), 2, 100);
    const std::vector<int32_t> tokens(40, 4);
    ASSERT_EQ(lk_seq_prefill(ctx.get(), 0, tokens.data(), 20), LK_OK);
    int32_t out = -1;
    EXPECT_EQ(lk_seq_fork(ctx.get(), 0, 21, &out), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("it has 20 committed")) << lk_last_error();
    EXPECT_EQ(lk_seq_fork(ctx.get(), 1, 0, &out), LK_ERR_INVALID_STATE);
    EXPECT_EQ(lk_seq_reuse_prefix(ctx.get(), 0, tokens.data(), 40, &out), LK_ERR_INVALID_STATE);
    EXPECT_TRUE(error_mentions("empty sequence")) << lk_last_error();
    EXPECT_EQ(out, 0);
    ASSERT_EQ(lk_seq_fork(ctx.get(), 0, 20, &out), LK_OK);
    int32_t third = -1;
    EXPECT_EQ(lk_seq_fork(ctx.get(), 0, 20, &third), LK_ERR_CONTEXT_FULL);
    EXPECT_TRUE(error_mentions("n_seq_max")) << lk_last_error();
}

TEST(PrefixSharing, AnEmptyPrefixMayBeNull) {
    ModelPtr model = make_model(LK_DTYPE_F32, 35);
    ContextPtr ctx = make_context(model.get(), 1, 100);
    int32_t out = -1;
    EXPECT_EQ(lk_seq_reuse_prefix(ctx.get(), 0, nullptr, 0, &out), LK_OK) << lk_last_error();
    EXPECT_EQ(out, 0);
    EXPECT_EQ(lk_seq_reuse_prefix(ctx.get(), 0, nullptr, 16, &out), LK_ERR_INVALID_ARGUMENT);
    EXPECT_TRUE(error_mentions("tokens is NULL")) << lk_last_error();
}

}  // namespace
