// Picks the CPU backend variant for the context's matrix kernel: the element-wise code is compiled once
// per instruction set, and a variant runs only on a CPU that has its instructions.
#include "../common/backend.h"
#include "kernels.h"

namespace lk {

namespace generic {
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads,
                                          cpu::ChosenKernel kernel, int32_t n_seq_max, int64_t n_kv_tokens, int32_t kv_type);
}
#if defined(LK_HAVE_AVX2_KERNELS)
namespace avx2 {
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads,
                                          cpu::ChosenKernel kernel, int32_t n_seq_max, int64_t n_kv_tokens, int32_t kv_type);
}
namespace avx512 {
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads,
                                          cpu::ChosenKernel kernel, int32_t n_seq_max, int64_t n_kv_tokens, int32_t kv_type);
}
#endif

std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads,
                                          int32_t cpu_kernel, int32_t n_seq_max, int64_t n_kv_tokens, int32_t kv_type) {
    const cpu::ChosenKernel kernel = cpu::choose_matmul_kernel(cpu_kernel);
#if defined(LK_HAVE_AVX2_KERNELS)
    if (kernel.level >= LK_CPU_KERNEL_AVX512) return avx512::make_cpu_backend(model, n_ctx, n_batch, n_threads, kernel, n_seq_max, n_kv_tokens, kv_type);
    if (kernel.level == LK_CPU_KERNEL_AVX2) return avx2::make_cpu_backend(model, n_ctx, n_batch, n_threads, kernel, n_seq_max, n_kv_tokens, kv_type);
#endif
    return generic::make_cpu_backend(model, n_ctx, n_batch, n_threads, kernel, n_seq_max, n_kv_tokens, kv_type);
}

}  // namespace lk
