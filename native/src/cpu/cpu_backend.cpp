// Picks the CPU backend variant for this CPU.
#include "../common/backend.h"
#include "kernels.h"

namespace lk {

namespace generic {
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads);
}
#if defined(LK_HAVE_AVX2_KERNELS)
namespace avx2 {
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads);
}
namespace avx512 {
std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads);
}
#endif

std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads) {
#if defined(LK_HAVE_AVX2_KERNELS)
    const cpu::MatmulKernel best = cpu::best_matmul_kernel();
    if (best == cpu::matmul_avx512 || best == cpu::matmul_avx512_bf16) return avx512::make_cpu_backend(model, n_ctx, n_batch, n_threads);
    if (best == cpu::matmul_avx2) return avx2::make_cpu_backend(model, n_ctx, n_batch, n_threads);
#endif
    return generic::make_cpu_backend(model, n_ctx, n_batch, n_threads);
}

}  // namespace lk
