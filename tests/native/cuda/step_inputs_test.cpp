// The layout of a step's integers on the device (step_inputs.cuh): host arithmetic only, so it runs on
// every CUDA build, device or not.
#include <gtest/gtest.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "cuda/step_inputs.cuh"

namespace {

// Every region has the size its users need, none overlaps another, the uploaded ones are the prefix one
// copy sends, and the total covers them all.
TEST(CudaStepInputs, RegionsAreDisjointSizedForTheirUsersAndTheUploadedOnesComeFirst) {
    for (int64_t n_batch : {1, 2, 7, 64, 512}) {
        const lk::cuda::StepInputs::Layout layout(n_batch);
        const std::vector<std::pair<int64_t, int64_t>> regions = {
            {layout.tokens, n_batch},    {layout.parents, n_batch}, {layout.positions, n_batch},
            {layout.depths, n_batch},    {layout.ancestor_offsets, n_batch},
            {layout.n_past, 1},          {layout.argmax, n_batch},  {layout.path, n_batch},
            {layout.walk, 2 * n_batch},  {layout.result, n_batch + 2}, {layout.ancestors, n_batch * n_batch},
        };
        std::vector<std::pair<int64_t, int64_t>> sorted = regions;
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(sorted.front().first, 0);
        for (size_t i = 1; i < sorted.size(); ++i)
            EXPECT_GE(sorted[i].first, sorted[i - 1].first + sorted[i - 1].second) << "n_batch " << n_batch << ": regions overlap";
        EXPECT_GE(layout.total, sorted.back().first + sorted.back().second);
        for (int64_t uploaded : {layout.tokens, layout.parents, layout.positions, layout.depths, layout.ancestor_offsets, layout.n_past})
            EXPECT_LT(uploaded, layout.uploaded) << "an uploaded region lies past the one copy";
        EXPECT_EQ(layout.uploaded, layout.n_past + 1);
        for (int64_t device_only : {layout.argmax, layout.path, layout.walk, layout.result, layout.ancestors})
            EXPECT_GE(device_only, layout.uploaded);
    }
}

}  // namespace
