// Tree validation, visibility and greedy verification against brute force.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "common/error.h"
#include "common/tree.h"

namespace {

lk_batch batch_of(const std::vector<int32_t>& tokens, const std::vector<int32_t>* parents) {
    return lk_batch{tokens.data(), parents ? parents->data() : nullptr, static_cast<int32_t>(tokens.size()), LK_LOGITS_ALL};
}

std::vector<int32_t> random_parents(std::mt19937& rng, int n) {
    std::vector<int32_t> parents(n, -1);
    for (int i = 1; i < n; ++i) parents[i] = std::uniform_int_distribution<int>(0, i - 1)(rng);
    return parents;
}

TEST(Tree, RejectsInvalidBatches) {
    lk::Tree tree;
    std::vector<int32_t> tokens{1, 2, 3};
    std::vector<int32_t> bad_root{0, 0, 1}, forward_parent{-1, 2, 0}, negative_parent{-1, 0, -1};
    EXPECT_THROW(tree.assign(batch_of(tokens, &bad_root), 10, 8), lk::Error);
    EXPECT_THROW(tree.assign(batch_of(tokens, &forward_parent), 10, 8), lk::Error);
    EXPECT_THROW(tree.assign(batch_of(tokens, &negative_parent), 10, 8), lk::Error);
    EXPECT_THROW(tree.assign(batch_of(tokens, nullptr), 3, 8), lk::Error);  // token 3 >= vocab 3
    EXPECT_THROW(tree.assign(batch_of(tokens, nullptr), 10, 2), lk::Error);  // more nodes than n_batch
    std::vector<int32_t> none;
    EXPECT_THROW(tree.assign(batch_of(none, nullptr), 10, 8), lk::Error);
    lk_batch bad_mode = batch_of(tokens, nullptr);
    bad_mode.logits = 7;
    EXPECT_THROW(tree.assign(bad_mode, 10, 8), lk::Error);
}

TEST(Tree, VisibleNodesAreExactlyTheAncestors) {
    std::mt19937 rng(99);
    for (int trial = 0; trial < 200; ++trial) {
        const int n = std::uniform_int_distribution<int>(1, 40)(rng);
        std::vector<int32_t> tokens(n, 1);
        std::vector<int32_t> parents = trial % 5 == 0 ? std::vector<int32_t>() : random_parents(rng, n);
        if (parents.empty()) {
            parents.resize(n);
            for (int i = 0; i < n; ++i) parents[i] = i - 1;  // an explicit chain
        }
        lk::Tree tree;
        tree.assign(batch_of(tokens, &parents), 4, 64);
        for (int i = 0; i < n; ++i) {
            std::vector<int32_t> expect;
            for (int a = i; a >= 0; a = parents[a]) expect.push_back(a);
            std::sort(expect.begin(), expect.end());
            std::vector<int32_t> got(tree.visible(i), tree.visible(i) + tree.visible_count(i));
            ASSERT_EQ(got, expect) << "node " << i;
            ASSERT_EQ(tree.depth(i), static_cast<int32_t>(expect.size()) - 1);
        }
    }
}

// Brute force: every node whose root path the model agrees with; keep the deepest, then the path
// with the lexicographically smallest node indices.
std::vector<int32_t> brute_force_path(const std::vector<int32_t>& tokens, const std::vector<int32_t>& parents,
                                      const std::vector<int32_t>& argmax) {
    std::vector<int32_t> best{0};
    for (size_t node = 0; node < tokens.size(); ++node) {
        std::vector<int32_t> path;
        for (int32_t a = static_cast<int32_t>(node); a >= 0; a = parents[a]) path.push_back(a);
        std::reverse(path.begin(), path.end());
        bool accepted = true;
        for (size_t j = 1; j < path.size(); ++j) accepted = accepted && tokens[path[j]] == argmax[path[j - 1]];
        if (!accepted) continue;
        if (path.size() > best.size() || (path.size() == best.size() && path < best)) best = path;
    }
    return best;
}

TEST(Tree, GreedyPathMatchesBruteForceOnRandomTrees) {
    std::mt19937 rng(2024);
    for (int trial = 0; trial < 3000; ++trial) {
        const int n = std::uniform_int_distribution<int>(1, 24)(rng);
        const int vocab = std::uniform_int_distribution<int>(1, 4)(rng);  // small vocab: many matches and duplicates
        std::vector<int32_t> tokens(n), argmax(n);
        for (int i = 0; i < n; ++i) {
            tokens[i] = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
            argmax[i] = std::uniform_int_distribution<int>(0, vocab - 1)(rng);
        }
        std::vector<int32_t> parents = random_parents(rng, n);
        lk::Tree tree;
        tree.assign(batch_of(tokens, &parents), vocab, 64);
        std::vector<int32_t> path(n);
        const int32_t length = tree.greedy_path(argmax.data(), path.data());
        path.resize(length);
        ASSERT_EQ(path, brute_force_path(tokens, parents, argmax)) << "trial " << trial;
        EXPECT_NO_THROW(tree.check_root_path(path.data(), length));
    }
}

TEST(Tree, CheckRootPathRejectsNonPaths) {
    std::vector<int32_t> tokens{1, 1, 1, 1}, parents{-1, 0, 0, 1};
    lk::Tree tree;
    tree.assign(batch_of(tokens, &parents), 4, 8);
    std::vector<int32_t> good{0, 1, 3}, not_root{1, 3}, sibling{0, 1, 2};
    EXPECT_NO_THROW(tree.check_root_path(good.data(), 3));
    EXPECT_THROW(tree.check_root_path(not_root.data(), 2), lk::Error);
    EXPECT_THROW(tree.check_root_path(sibling.data(), 3), lk::Error);
    EXPECT_THROW(tree.check_root_path(nullptr, 3), lk::Error);  // not a chain
    EXPECT_THROW(tree.check_root_path(good.data(), 5), lk::Error);
}

}  // namespace
