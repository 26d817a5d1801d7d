// Sampled verification on the host: the walk from the root that samples each node with the next draw and
// follows the children holding the sampled token, to the deepest path. The CPU backend runs it; the CUDA
// backend samples on the device.
#pragma once

#include <cstdint>
#include <vector>

#include "sampling.h"
#include "tree.h"

namespace lk {

class Backend;

class SampledWalk {
public:
    // Over the backend's last forward (all logits kept), the tree's nodes at batch indices first, first + 1, ...:
    // writes the accepted root path to path and the sample at its last node to bonus (-1 when that node's
    // logits are not finite); returns the path length. A walker keeps one sequence's counts between steps.
    int32_t walk(Backend& backend, const Tree& tree, int32_t first, const SampledStep& step, int32_t vocab_size,
                 int32_t* path, int32_t* bonus);

private:
    NodeSampler sampler_;
    TokenCounts counts_;      // the committed sequence's, between steps
    CountedHistory history_;  // what counts_ holds
    std::vector<int32_t> step_tokens_;
    std::vector<int32_t> first_child_, next_sibling_;
    std::vector<int32_t> sampled_, level_, next_level_;  // per node; the nodes matching at the current depth
};

}  // namespace lk
