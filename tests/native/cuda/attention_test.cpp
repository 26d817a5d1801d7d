// Tree attention (attention.cuh: the per-node and the shared-prefix kernels) against a softmax in double over each
// node's visible positions. Skipped where no CUDA device exists; outputs are poisoned (NaN) before each run so
// that unwritten elements fail.
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "common/tree.h"
#include "cuda/attention.cuh"
#include "cuda_test_support.h"
#include "test_model.h"

namespace {

using namespace lk_cuda_test;

// Tree attention alone, against a double softmax over each node's visible positions (the committed
// prefix and the node's ancestors with itself), for both kernels; scratch (re-poisoned before every
// launch) and output poisoned; n_past read from device memory and a smaller batch give the same bits.
struct AttentionCase {
    int heads, kv_heads, head_dim;
    int32_t n_ctx, n_past;
    bool chain;
    int n;
};

void poison(Device<float>& buffer) { ASSERT_EQ(cudaMemset(buffer.data, 0xFF, buffer.count * sizeof(float)), cudaSuccess); }

void check_tree_attention(const AttentionCase& c, std::mt19937& rng) {
    const int n = c.n, slots = c.n_past + n;
    const int64_t q_dim = int64_t{c.heads} * c.head_dim, kv_dim = int64_t{c.kv_heads} * c.head_dim;
    std::vector<int32_t> tokens(n, 1), parents(n, -1);
    for (int i = 1; i < n; ++i) parents[i] = c.chain ? i - 1 : std::uniform_int_distribution<int>(0, i - 1)(rng);
    lk::Tree tree;
    tree.assign(lk_batch{tokens.data(), c.chain ? nullptr : parents.data(), n, LK_LOGITS_ALL}, 4, n);

    std::vector<int32_t> depths(n), offsets(n), ancestors;
    for (int i = 0; i < n; ++i) {
        depths[i] = tree.depth(i);
        offsets[i] = static_cast<int32_t>(ancestors.size());
        ancestors.insert(ancestors.end(), tree.visible(i), tree.visible(i) + tree.visible_count(i));
    }
    // Peaked scores (queries up to +-4), so that one wrongly included or missed position shows.
    std::vector<float> q = random_floats(rng, n * q_dim, -4.0f, 4.0f), keys = random_floats(rng, slots * kv_dim),
                       values = random_floats(rng, slots * kv_dim);
    std::vector<double> want(n * q_dim), bound(n * q_dim);
    const int group = c.heads / c.kv_heads;
    for (int node = 0; node < n; ++node) {
        std::vector<int64_t> visible;
        for (int64_t p = 0; p < c.n_past; ++p) visible.push_back(p);
        for (int j = 0; j < tree.visible_count(node); ++j) visible.push_back(c.n_past + tree.visible(node)[j]);
        for (int h = 0; h < c.heads; ++h) {
            const float* qh = q.data() + (int64_t{node} * c.heads + h) * c.head_dim;
            const int64_t kv_offset = int64_t{h / group} * c.head_dim;
            std::vector<double> score(visible.size());
            double top = -1e300, total = 0;
            for (size_t s = 0; s < visible.size(); ++s) {
                double dot = 0;
                for (int t = 0; t < c.head_dim; ++t) dot += double(qh[t]) * keys[visible[s] * kv_dim + kv_offset + t];
                score[s] = dot / std::sqrt(double(c.head_dim));
                top = std::max(top, score[s]);
            }
            for (double& e : score) total += (e = std::exp(e - top));
            for (int t = 0; t < c.head_dim; ++t) {
                double sum = 0;
                for (size_t s = 0; s < visible.size(); ++s) sum += score[s] * values[visible[s] * kv_dim + kv_offset + t];
                const int64_t at = (int64_t{node} * c.heads + h) * c.head_dim + t;
                want[at] = sum / total;
                // fp32 sums: the output's over the visible positions and each score's over head_dim
                // terms of size up to 4 (worst cases, linear in the term counts).
                bound[at] = 1e-5 + 2.0 * static_cast<double>(visible.size()) * 0x1p-24 + 4.0 * c.head_dim * 0x1p-24;
            }
        }
    }
    for (lk::cuda::AttentionKernel kernel : {lk::cuda::AttentionKernel::PerNode, lk::cuda::AttentionKernel::SharedPrefix}) {
        const std::string what = std::string(kernel == lk::cuda::AttentionKernel::PerNode ? "per-node" : "shared-prefix") +
                                 " attention heads " + std::to_string(c.heads) + "/" + std::to_string(c.kv_heads) + " head_dim " +
                                 std::to_string(c.head_dim) + " n_past " + std::to_string(c.n_past) + (c.chain ? " chain" : " tree");
        const lk::cuda::AttentionPlan plan = lk::cuda::plan_attention(c.n_ctx, c.head_dim, kernel);
        lk::cuda::attention_prepare(plan, c.head_dim);
        Device<float> dq(q), dkeys(keys), dvalues(values), dout(std::vector<float>(n * q_dim, kPoison)),
            dscratch(std::vector<float>(lk::cuda::attention_scratch_floats(plan, n, c.heads, c.head_dim), kPoison));
        Device<int32_t> ddepths(depths), doffsets(offsets), dancestors(ancestors);
        const lk::cuda::TreeView view{ddepths.data, doffsets.data, c.chain ? nullptr : dancestors.data, n, tree.max_depth()};
        lk::cuda::tree_attention(dq.data, dkeys.data, dvalues.data, c.n_past, nullptr, view, c.heads, c.kv_heads, c.head_dim,
                                 plan, dscratch.data, dout.data);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const std::vector<float> host_result = dout.read();
        // The same launch reading n_past from device memory (as CUDA graphs do) gives the same bits.
        Device<int32_t> dpast(std::vector<int32_t>{c.n_past});
        Device<float> dout_device(std::vector<float>(n * q_dim, kPoison));
        poison(dscratch);
        lk::cuda::tree_attention(dq.data, dkeys.data, dvalues.data, c.n_past, dpast.data, view, c.heads, c.kv_heads, c.head_dim,
                                 plan, dscratch.data, dout_device.data);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const std::vector<float> device_result = dout_device.read();
        ASSERT_EQ(std::memcmp(host_result.data(), device_result.data(), host_result.size() * sizeof(float)), 0)
            << what << ": n_past from device memory changed the result";
        // The first three nodes alone (a tree of their own) get the bits they get in the whole batch.
        const int few = 3;
        int few_depth = 0;
        for (int node = 0; node < few; ++node) few_depth = std::max(few_depth, depths[node]);
        const lk::cuda::TreeView few_view{ddepths.data, doffsets.data, c.chain ? nullptr : dancestors.data, few, few_depth};
        Device<float> dout_few(std::vector<float>(n * q_dim, kPoison));
        poison(dscratch);
        lk::cuda::tree_attention(dq.data, dkeys.data, dvalues.data, c.n_past, nullptr, few_view, c.heads, c.kv_heads, c.head_dim,
                                 plan, dscratch.data, dout_few.data);
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        ASSERT_EQ(std::memcmp(dout_few.read().data(), host_result.data(), few * q_dim * sizeof(float)), 0)
            << what << ": a node's result depends on the rest of the batch";
        expect_close(host_result, want, what, &bound);
        if (::testing::Test::HasFatalFailure()) return;
    }
}

// Contexts spanning one to 27 position chunks, GQA 1/2/4/8, head dims 8 to 256, chains and random trees
// of 9 and 70 nodes (more than a shared-prefix block takes at head_dim 128).
TEST(CudaAttention, TreeAttentionMatchesASoftmaxOverEachNodesVisiblePositions) {
    REQUIRE_CUDA();
    std::mt19937 rng(33);
    for (const AttentionCase& c : {AttentionCase{4, 4, 8, 512, 0, false, 9}, AttentionCase{8, 2, 64, 5000, 1, false, 9},
                                   AttentionCase{8, 8, 64, 5000, 700, true, 9}, AttentionCase{8, 1, 128, 5000, 4000, false, 9},
                                   AttentionCase{2, 2, 256, 1024, 300, false, 9}, AttentionCase{4, 2, 128, 2048, 600, false, 70},
                                   AttentionCase{4, 4, 128, 2048, 130, true, 70}}) {
        check_tree_attention(c, rng);
        if (HasFatalFailure()) return;
    }
}

// The same on two small cases (a tree and a chain across chunk and tile boundaries), for compute-sanitizer.
TEST(CudaAttention, TreeAttentionOfSmallBatchesForTheSanitizers) {
    REQUIRE_CUDA();
    std::mt19937 rng(34);
    for (const AttentionCase& c : {AttentionCase{4, 2, 16, 512, 70, false, 9}, AttentionCase{2, 2, 8, 300, 130, true, 12}}) {
        check_tree_attention(c, rng);
        if (HasFatalFailure()) return;
    }
}

}  // namespace
