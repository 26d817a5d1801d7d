#include "kernels.h"

#if defined(LK_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include <cmath>

#include "../common/half.h"
#include "lookahead.h"

namespace lk::cpu {
namespace {

template <typename Load>
void matmul_scalar_with(const MatmulArgs& a, int64_t row_begin, int64_t row_end, Load load) {
    for (int64_t r = row_begin; r < row_end; ++r) {
        for (int32_t j = 0; j < a.n_x; ++j) {
            const float* x = a.x + j * a.x_stride;
            float sum = 0.0f;
            for (int64_t c = 0; c < a.cols; ++c) sum += load(r * a.cols + c) * x[c];
            float& out = a.y[j * a.y_stride + r];
            out = a.accumulate ? out + sum : sum;
        }
    }
}

bool cpu_has_avx2_fma_f16c() {
#if defined(LK_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    // F16C through CPUID (leaf 1, ECX): clang's __builtin_cpu_supports does not know "f16c".
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) != 0;
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
    return false;
#endif
}

bool cpu_has_avx512() {
#if defined(LK_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return cpu_has_avx2_fma_f16c() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
#else
    return false;
#endif
}

// AVX512_BF16: CPUID leaf 7, sub-leaf 1, EAX bit 5 (read directly: not every compiler's
// __builtin_cpu_supports knows it).
bool cpu_has_avx512_bf16() {
#if defined(LK_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return cpu_has_avx512() && __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) && (eax & (1u << 5)) != 0;
#else
    return false;
#endif
}

}  // namespace

void matmul_scalar(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    if (is_quantized(a.dtype)) {
        matmul_quantized_scalar(a, row_begin, row_end);
        return;
    }
    switch (a.dtype) {
        case LK_DTYPE_F32: {
            const float* w = static_cast<const float*>(a.weights);
            matmul_scalar_with(a, row_begin, row_end, [w](int64_t i) { return w[i]; });
            break;
        }
        case LK_DTYPE_F16: {
            const uint16_t* w = static_cast<const uint16_t*>(a.weights);
            matmul_scalar_with(a, row_begin, row_end, [w](int64_t i) { return f16_to_float(w[i]); });
            break;
        }
        default: {
            const uint16_t* w = static_cast<const uint16_t*>(a.weights);
            matmul_scalar_with(a, row_begin, row_end, [w](int64_t i) { return bf16_to_float(w[i]); });
            break;
        }
    }
}

ChosenKernel choose_matmul_kernel(int32_t cap) {
    if (cap == LK_CPU_KERNEL_AUTO) cap = LK_CPU_KERNEL_AVX512_BF16;
#if defined(LK_HAVE_AVX2_KERNELS)
    // CPUID does not change while the process runs: read it once.
    static const bool avx512_bf16 = cpu_has_avx512_bf16(), avx512 = cpu_has_avx512(), avx2 = cpu_has_avx2_fma_f16c();
    if (cap >= LK_CPU_KERNEL_AVX512_BF16 && avx512_bf16) return {matmul_avx512_bf16, LK_CPU_KERNEL_AVX512_BF16};
    if (cap >= LK_CPU_KERNEL_AVX512 && avx512) return {matmul_avx512, LK_CPU_KERNEL_AVX512};
    if (cap >= LK_CPU_KERNEL_AVX2 && avx2) return {matmul_avx2, LK_CPU_KERNEL_AVX2};
#endif
    return {matmul_scalar, LK_CPU_KERNEL_SCALAR};
}

const char* matmul_kernel_name(int32_t level) {
    switch (level) {
        case LK_CPU_KERNEL_AVX512_BF16: return "avx512-bf16";
        case LK_CPU_KERNEL_AVX512: return "avx512";
        case LK_CPU_KERNEL_AVX2: return "avx2";
        default: return "scalar";
    }
}

int32_t argmax(const float* values, int n) {
    int32_t best = 0;
    float best_value = values[0];
    bool finite = true;
    for (int i = 0; i < n; ++i) {
        finite = finite && std::isfinite(values[i]);
        // Strict > keeps the lowest index on ties.
        if (values[i] > best_value) {
            best_value = values[i];
            best = i;
        }
    }
    return finite ? best : -1;
}

}  // namespace lk::cpu
