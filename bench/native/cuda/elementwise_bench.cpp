// The row and element-wise kernels at llama2-7b's widths (hidden 4,096, intermediate 11,008, 32 heads of
// 128) for 1 and 64 rows: RMS norm, SwiGLU, RoPE with the cache write, the embedding gather. Bytes: what
// each must read and write; they are launch-bound at one row, so the time is the number that matters there.
#include <cmath>
#include <string>
#include <vector>

#include "cuda/elementwise.cuh"
#include "cuda/rope.cuh"
#include "kernel_bench.h"
#include "lookahead.h"

namespace lk_bench {

void bench_elementwise(double copy_gbps) {
    const int hidden = 4096, ffn = 11008, heads = 32, head_dim = 128, vocab = 32000, n_ctx = 2048;
    std::printf("row and element-wise kernels\n");
    DeviceArray norm_weight = DeviceArray::floats(hidden, 1.0f, 1);
    DeviceArray embedding = DeviceArray::bf16(static_cast<size_t>(vocab) * hidden, 1.0f, 2);
    std::vector<float> inv_freq(head_dim / 2);
    for (int i = 0; i < head_dim / 2; ++i) inv_freq[i] = 1.0f / static_cast<float>(std::pow(10000.0, 2.0 * i / head_dim));
    DeviceArray d_inv_freq(inv_freq.size() * sizeof(float));
    cuda_check(cudaMemcpy(d_inv_freq.as<void>(), inv_freq.data(), d_inv_freq.bytes(), cudaMemcpyHostToDevice), "cudaMemcpy");
    DeviceArray key_cache(static_cast<size_t>(n_ctx) * hidden * sizeof(float)), value_cache(static_cast<size_t>(n_ctx) * hidden * sizeof(float));
    for (int n : {1, 64}) {
        const std::string rows = " x" + std::to_string(n);
        DeviceArray x = DeviceArray::floats(static_cast<size_t>(n) * hidden, 1.0f, 3);
        DeviceArray y(static_cast<size_t>(n) * hidden * sizeof(float));
        report("rms_norm 4096" + rows, median_ms([&] { lk::cuda::rms_norm(x.as<float>(), norm_weight.as<float>(), y.as<float>(), 0, n, hidden, 1e-5f); }),
               8.0 * n * hidden + 4.0 * hidden, 4.0 * n * hidden, copy_gbps);
        DeviceArray gate = DeviceArray::floats(static_cast<size_t>(n) * ffn, 1.0f, 4), up = DeviceArray::floats(static_cast<size_t>(n) * ffn, 1.0f, 5);
        report("swiglu 11008" + rows, median_ms([&] { lk::cuda::swiglu(gate.as<float>(), up.as<float>(), int64_t{n} * ffn); }),
               12.0 * n * ffn, 5.0 * n * ffn, copy_gbps);
        DeviceArray q = DeviceArray::floats(static_cast<size_t>(n) * hidden, 1.0f, 6), k = DeviceArray::floats(static_cast<size_t>(n) * hidden, 1.0f, 7),
                    v = DeviceArray::floats(static_cast<size_t>(n) * hidden, 1.0f, 8);
        std::vector<int32_t> positions(n);
        for (int i = 0; i < n; ++i) positions[i] = 1000 + i;
        DeviceArray d_positions = DeviceArray::ints(positions);
        report("rope_and_store 32x128" + rows,
               median_ms([&] {
                   lk::cuda::rope_and_store(q.as<float>(), k.as<float>(), v.as<float>(), d_positions.as<int32_t>(), d_inv_freq.as<float>(), n,
                                            heads, heads, head_dim, 1000, nullptr, key_cache.as<float>(), value_cache.as<float>());
               }),
               4.0 * n * hidden * 5, 6.0 * n * hidden, copy_gbps);
        std::vector<int32_t> tokens(n);
        for (int i = 0; i < n; ++i) tokens[i] = (i * 7919) % vocab;
        DeviceArray d_tokens = DeviceArray::ints(tokens);
        report("embed bf16 4096" + rows,
               median_ms([&] { lk::cuda::embed(embedding.as<void>(), LK_DTYPE_BF16, d_tokens.as<int32_t>(), n, hidden, y.as<float>()); }),
               6.0 * n * hidden, 0, copy_gbps);
    }
}

}  // namespace lk_bench
