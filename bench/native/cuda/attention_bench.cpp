// Tree attention at llama2-7b's attention (32 heads of 128, no GQA), both kernels, over 1,024 and 4,096
// committed positions, for 1 node (a greedy step) and random trees of 16 and 64 nodes. Bytes: the committed K and V once
// plus the queries and outputs; flops: 4 x nodes x heads x positions x head_dim.
#include <random>
#include <string>
#include <vector>

#include "common/tree.h"
#include "cuda/attention.cuh"
#include "kernel_bench.h"
#include "lookahead.h"

namespace lk_bench {

void bench_attention(double copy_gbps) {
    const int heads = 32, kv_heads = 32, head_dim = 128, kv_dim = kv_heads * head_dim;
    std::printf("tree attention (%d heads of %d)\n", heads, head_dim);
    std::mt19937 rng(5);
    for (int n_past : {1024, 4096}) {
        const int n_ctx = n_past + 64;
        DeviceArray keys = DeviceArray::floats(static_cast<size_t>(n_ctx) * kv_dim, 1.0f, 3);
        DeviceArray values = DeviceArray::floats(static_cast<size_t>(n_ctx) * kv_dim, 1.0f, 4);
        for (int n : {1, 16, 64}) {
            std::vector<int32_t> tokens(n, 1), parents(n, -1);
            for (int i = 1; i < n; ++i) parents[i] = std::uniform_int_distribution<int>(0, i - 1)(rng);
            lk::Tree tree;
            tree.assign(lk_batch{tokens.data(), n == 1 ? nullptr : parents.data(), n, LK_LOGITS_ALL}, 2, n);
            std::vector<int32_t> depths(n), offsets(n), ancestors;
            for (int i = 0; i < n; ++i) {
                depths[i] = tree.depth(i);
                offsets[i] = static_cast<int32_t>(ancestors.size());
                for (int j = 0; j < tree.visible_count(i); ++j) ancestors.push_back(tree.visible(i)[j]);
            }
            DeviceArray d_depths = DeviceArray::ints(depths), d_offsets = DeviceArray::ints(offsets),
                        d_ancestors = DeviceArray::ints(ancestors.empty() ? std::vector<int32_t>{0} : ancestors);
            const lk::cuda::TreeView view{d_depths.as<int32_t>(), d_offsets.as<int32_t>(), n == 1 ? nullptr : d_ancestors.as<int32_t>(),
                                          n, tree.max_depth()};
            DeviceArray q = DeviceArray::floats(static_cast<size_t>(n) * heads * head_dim, 1.0f, 9);
            DeviceArray out(static_cast<size_t>(n) * heads * head_dim * sizeof(float));
            const double bytes = 2.0 * n_past * kv_dim * 4 + 2.0 * n * heads * head_dim * 4;
            const double flops = 4.0 * n * heads * double(n_past) * head_dim;
            for (lk::cuda::AttentionKernel kernel : {lk::cuda::AttentionKernel::PerNode, lk::cuda::AttentionKernel::SharedPrefix}) {
                const lk::cuda::AttentionPlan plan = lk::cuda::plan_attention(n_ctx, head_dim, kernel);
                lk::cuda::attention_prepare(plan, head_dim);
                DeviceArray scratch(lk::cuda::attention_scratch_floats(plan, n, heads, head_dim) * sizeof(float));
                const std::string what = std::string(kernel == lk::cuda::AttentionKernel::PerNode ? "per-node " : "shared-prefix ") +
                                         std::to_string(n) + " node(s), " + std::to_string(n_past) + " positions";
                report(what,
                       median_ms([&] {
                           lk::cuda::tree_attention(q.as<float>(), keys.as<float>(), values.as<float>(), n_past, nullptr, view, heads,
                                                    kv_heads, head_dim, plan, scratch.as<float>(), out.as<float>());
                       }),
                       bytes, flops, copy_gbps);
            }
        }
    }
}

}  // namespace lk_bench
