#include "tree.h"

#include <string>

#include "error.h"

namespace lk {

void Tree::clear() {
    tokens_.clear();
    parents_.clear();
    depths_.clear();
    max_depth_ = 0;
    chain_ = true;
}

void Tree::assign(const lk_batch& batch, int32_t vocab_size, int32_t max_nodes) {
    const int32_t n = batch.n_tokens;
    require(n >= 1, "batch must hold at least one token, got n_tokens = " + std::to_string(n));
    require(n <= max_nodes, "batch of " + std::to_string(n) + " nodes exceeds the context's n_batch of " +
                                std::to_string(max_nodes));
    require(batch.tokens != nullptr, "batch tokens is NULL");
    require(batch.logits >= LK_LOGITS_NONE && batch.logits <= LK_LOGITS_ALL,
            "batch logits mode " + std::to_string(batch.logits) + " is unknown");
    for (int32_t i = 0; i < n; ++i) {
        int32_t t = batch.tokens[i];
        require(t >= 0 && t < vocab_size, "token id " + std::to_string(t) + " at node " + std::to_string(i) +
                                              " is out of range 0.." + std::to_string(vocab_size - 1));
    }
    chain_ = true;
    if (batch.parents) {
        require(batch.parents[0] == -1, "parents[0] must be -1 (node 0 is the root), got " +
                                            std::to_string(batch.parents[0]));
        for (int32_t i = 1; i < n; ++i) {
            int32_t p = batch.parents[i];
            require(p >= 0 && p < i, "parents[" + std::to_string(i) + "] = " + std::to_string(p) +
                                         " must name an earlier node (0.." + std::to_string(i - 1) + ")");
            if (p != i - 1) chain_ = false;
        }
    }

    tokens_.assign(batch.tokens, batch.tokens + n);
    parents_.resize(n);
    depths_.resize(n);
    parents_[0] = -1;
    depths_[0] = 0;
    max_depth_ = 0;
    for (int32_t i = 1; i < n; ++i) {
        parents_[i] = batch.parents ? batch.parents[i] : i - 1;
        depths_[i] = depths_[parents_[i]] + 1;
        if (depths_[i] > max_depth_) max_depth_ = depths_[i];
    }

    if (static_cast<int32_t>(iota_.size()) < n) {
        iota_.resize(n);
        for (int32_t i = 0; i < n; ++i) iota_[i] = i;
    }
    if (chain_) return;
    ancestor_offsets_.resize(n);
    ancestors_.clear();
    for (int32_t i = 0; i < n; ++i) {
        ancestor_offsets_[i] = static_cast<int32_t>(ancestors_.size());
        ancestors_.resize(ancestors_.size() + depths_[i] + 1);
        // Fill from the node upwards, writing backwards so the list ends up ascending.
        int32_t* out = ancestors_.data() + ancestor_offsets_[i] + depths_[i];
        for (int32_t a = i; a >= 0; a = parents_[a]) *out-- = a;
    }
}

const int32_t* Tree::visible(int32_t node) const {
    return chain_ ? iota_.data() : ancestors_.data() + ancestor_offsets_[node];
}

int32_t Tree::greedy_path(const int32_t* argmax, int32_t* path) const {
    const int32_t n = size();
    best_length_.assign(n, 1);
    best_child_.assign(n, -1);
    // Children have larger indices than parents, so one backward sweep settles every subtree.
    for (int32_t c = n - 1; c >= 1; --c) {
        int32_t p = parents_[c];
        if (tokens_[c] != argmax[p]) continue;
        int32_t length = best_length_[c] + 1;
        // >= with a downward sweep: among equally deep children the lowest index wins.
        if (length >= best_length_[p]) {
            best_length_[p] = length;
            best_child_[p] = c;
        }
    }
    int32_t count = 0;
    for (int32_t node = 0; node >= 0; node = best_child_[node]) path[count++] = node;
    return count;
}

void Tree::check_root_path(const int32_t* nodes, int32_t n) const {
    require(n >= 1 && n <= size(), "commit of " + std::to_string(n) + " nodes, but " + std::to_string(size()) +
                                       " are pending");
    if (!nodes) {
        for (int32_t i = 1; i < n; ++i) {
            require(parents_[i] == i - 1, "commit without a node list needs a chain, but node " +
                                              std::to_string(i) + " is not a child of node " + std::to_string(i - 1));
        }
        return;
    }
    require(nodes[0] == 0, "a committed path must start at the root (node 0), got node " + std::to_string(nodes[0]));
    for (int32_t j = 1; j < n; ++j) {
        int32_t node = nodes[j];
        require(node > 0 && node < size() && parents_[node] == nodes[j - 1],
                "committed node " + std::to_string(node) + " is not a child of node " + std::to_string(nodes[j - 1]));
    }
}

}  // namespace lk
