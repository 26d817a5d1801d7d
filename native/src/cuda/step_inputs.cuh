// The integers of one decoding step on the device: the batch (tokens, parents, positions, depths, ancestor
// lists) and n_past going in with one copy, the kernels' scratch, and the verified path coming back.
#pragma once

#include <cstdint>
#include <vector>

#include "../common/tree.h"
#include "attention.cuh"
#include "cuda_check.h"

namespace lk::cuda {

class StepInputs {
public:
    explicit StepInputs(int32_t n_batch);

    // Copies the tree's integers and n_past to the device in one transfer (trees also send their ancestor
    // lists) and returns the attention kernels' view of them.
    TreeView upload(const Tree& tree, int32_t n_past);
    // Copies n root-path node indices to the device (path(), for KV compaction).
    void upload_path(const int32_t* nodes, int32_t n);
    // Reads back a verification's result: writes the accepted path to path, the bonus token to bonus and
    // returns the path's length.
    int32_t download_path(int32_t n, int32_t* path, int32_t* bonus);

    int32_t* tokens() const { return at(layout_.tokens); }
    int32_t* parents() const { return at(layout_.parents); }
    int32_t* positions() const { return at(layout_.positions); }
    int32_t* n_past() const { return at(layout_.n_past); }  // what graphed kernels read
    int32_t* argmax() const { return at(layout_.argmax); }  // per node: the argmax or sampled token
    int32_t* path() const { return at(layout_.path); }      // a root path to compact
    int32_t* walk() const { return at(layout_.walk); }      // greedy_path's scratch, 2 x n_batch
    int32_t* result() const { return at(layout_.result); }  // length, path, bonus

    // Offsets (in int32s) of the regions of one device allocation and its host mirror; the uploaded regions
    // come first so that one copy sends them all.
    struct Layout {
        explicit Layout(int64_t n_batch);
        int64_t tokens, parents, positions, depths, ancestor_offsets, n_past;  // uploaded: [0, uploaded)
        int64_t uploaded;
        int64_t argmax, path, walk, result, ancestors, total;
    };

private:
    int32_t* at(int64_t offset) const { return device_.get() + offset; }

    Layout layout_;
    DeviceBuffer<int32_t> device_;
    std::vector<int32_t> host_;
};

}  // namespace lk::cuda
