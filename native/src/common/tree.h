// A validated batch of nodes: tokens, parents, depths, and which pending slots each node may see.
#pragma once

#include <cstdint>
#include <vector>

#include "lookahead.h"

namespace lk {

class Tree {
public:
    // Validates and copies the batch. Throws LK_ERR_INVALID_ARGUMENT naming the first bad field.
    void assign(const lk_batch& batch, int32_t vocab_size, int32_t max_nodes);
    void clear();

    int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
    bool empty() const { return tokens_.empty(); }
    bool is_chain() const { return chain_; }
    int32_t token(int32_t node) const { return tokens_[node]; }
    int32_t parent(int32_t node) const { return parents_[node]; }
    int32_t depth(int32_t node) const { return depths_[node]; }
    int32_t max_depth() const { return max_depth_; }
    const int32_t* tokens() const { return tokens_.data(); }

    // Batch indices node i attends to among the pending nodes: its ancestors and itself, ascending.
    const int32_t* visible(int32_t node) const;
    int32_t visible_count(int32_t node) const { return depths_[node] + 1; }

    // The root path the model agrees with, given the argmax at every node: from each node go to a child
    // whose token equals the node's argmax, preferring the child that leads deepest (then the lowest
    // index). Writes the path (root first) to path and returns its length (>= 1).
    int32_t greedy_path(const int32_t* argmax, int32_t* path) const;

    // Throws unless nodes[0..n) is a path starting at the root.
    void check_root_path(const int32_t* nodes, int32_t n) const;

private:
    std::vector<int32_t> tokens_, parents_, depths_;
    std::vector<int32_t> ancestor_offsets_, ancestors_;  // trees only; chains use iota_
    std::vector<int32_t> iota_;
    mutable std::vector<int32_t> best_length_, best_child_;  // scratch for greedy_path
    bool chain_ = true;
    int32_t max_depth_ = 0;
};

}  // namespace lk
