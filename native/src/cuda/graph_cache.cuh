// CUDA graphs of the forward pass, one per decoding-step shape (nodes, chain or tree): captured on first
// use, then replayed as one launch. Everything that changes from step to step (tokens, positions, the tree,
// n_past) is in device memory the kernels read, and the attention launches cover the whole context (chunks
// past n_past return at once), so one graph serves every step of its shape.
#pragma once

#include <functional>
#include <vector>

#include "cuda_check.h"

namespace lk::cuda {

struct GraphKey {
    int n;
    bool chain;
    bool operator==(const GraphKey& o) const { return n == o.n && chain == o.chain; }
};

class GraphCache {
public:
    // Only steps of at most this many nodes are graphed, so a context holds at most 2 x 64 graphs; prefill
    // chunks of one-off lengths would each cost a capture for one replay.
    static constexpr int kMaxNodes = 64;

    GraphCache() = default;
    GraphCache(const GraphCache&) = delete;
    GraphCache& operator=(const GraphCache&) = delete;
    ~GraphCache() { clear(); }

    // The instantiated graph of key, or null before its capture.
    cudaGraphExec_t find(const GraphKey& key) const;
    // Captures what encode issues on the per-thread default stream as key's graph and instantiates it.
    cudaGraphExec_t capture(const GraphKey& key, const std::function<void()>& encode);
    void clear();

private:
    struct Entry {
        GraphKey key;
        cudaGraphExec_t exec;
    };
    std::vector<Entry> entries_;  // a few dozen keys in practice: a linear search is enough
};

}  // namespace lk::cuda
