// The matrix kernels at llama2-7b's products (BF16 weights): the CUDA-core kernel and the tensor-core
// kernel, 1, 8 and 64 inputs (a greedy step, a small draft tree, a large one). Bytes: the weights once plus
// the inputs and outputs; flops: 2 x rows x cols x inputs.
#include <string>

#include "cuda/matmul.cuh"
#include "cuda/matmul_mma.cuh"
#include "kernel_bench.h"
#include "lookahead.h"

namespace lk_bench {

void bench_matmul(double copy_gbps) {
    struct Product {
        const char* name;
        int64_t rows, cols;
    };
    const Product products[] = {{"q/o 4096x4096", 4096, 4096}, {"gate/up 11008x4096", 11008, 4096},
                                {"down 4096x11008", 4096, 11008}, {"head 32000x4096", 32000, 4096}};
    std::printf("matmul (BF16 weights)\n");
    for (const Product& p : products) {
        DeviceArray w = DeviceArray::bf16(static_cast<size_t>(p.rows * p.cols), 0.02f, 7);
        for (int n_x : {1, 8, 64}) {
            DeviceArray x = DeviceArray::floats(static_cast<size_t>(n_x * p.cols), 1.0f, 11);
            DeviceArray y(static_cast<size_t>(n_x * p.rows) * sizeof(float));
            const lk::cuda::MatmulPart part{w.as<void>(), p.rows, y.as<float>(), p.rows, nullptr};
            const double bytes = double(p.rows) * p.cols * 2 + 4.0 * n_x * (p.cols + p.rows);
            const double flops = 2.0 * p.rows * p.cols * n_x;
            const std::string shape = std::string(p.name) + " x" + std::to_string(n_x);
            report("simt " + shape, median_ms([&] { lk::cuda::matmul_simt(part, LK_DTYPE_BF16, p.cols, x.as<float>(), p.cols, n_x, false); }),
                   bytes, flops, copy_gbps);
            const lk::cuda::MmaScratchSize size = lk::cuda::matmul_bf16_mma_scratch(&part, 1, p.cols, n_x);
            DeviceArray partial(static_cast<size_t>(std::max<int64_t>(size.floats, 1)) * sizeof(float));
            DeviceArray counters(static_cast<size_t>(std::max<int64_t>(size.counters, 1)) * sizeof(int));
            const lk::cuda::MmaScratch scratch{partial.as<float>(), counters.as<int>()};
            report("mma  " + shape,
                   median_ms([&] { lk::cuda::matmul_bf16_mma(&part, 1, p.cols, x.as<float>(), p.cols, n_x, false, scratch); }), bytes,
                   flops, copy_gbps);
        }
    }
}

}  // namespace lk_bench
