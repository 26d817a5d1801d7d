// The CPU matrix kernels this machine runs, for the kernel tests (kernels_test.cpp, q8_0_test.cpp).
#pragma once

#include <vector>

#include "cpu/kernels.h"

namespace lk_test {

inline std::vector<lk::cpu::MatmulKernel> cpu_kernels() {
    std::vector<lk::cpu::MatmulKernel> all{lk::cpu::matmul_scalar};
#if defined(LK_HAVE_AVX2_KERNELS)
    const int32_t best = lk::cpu::choose_matmul_kernel(LK_CPU_KERNEL_AUTO).level;
    if (best >= LK_CPU_KERNEL_AVX2) all.push_back(lk::cpu::matmul_avx2);
    if (best >= LK_CPU_KERNEL_AVX512) all.push_back(lk::cpu::matmul_avx512);
    if (best >= LK_CPU_KERNEL_AVX512_BF16) all.push_back(lk::cpu::matmul_avx512_bf16);
#endif
    return all;
}

}  // namespace lk_test
