#include "kernels.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

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
            a.y[j * a.y_stride + r] = sum;
        }
    }
}

bool cpu_has_avx2_fma_f16c() {
#if defined(LK_HAVE_AVX2_KERNELS) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

bool scalar_forced() {
    const char* value = std::getenv("LK_CPU_KERNEL");
    return value && std::strcmp(value, "scalar") == 0;
}

}  // namespace

void matmul_scalar(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
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

MatmulKernel best_matmul_kernel() {
#if defined(LK_HAVE_AVX2_KERNELS)
    static const bool use_avx2 = cpu_has_avx2_fma_f16c() && !scalar_forced();
    if (use_avx2) return matmul_avx2;
#endif
    return matmul_scalar;
}

const char* best_matmul_kernel_name() { return best_matmul_kernel() == matmul_scalar ? "scalar" : "avx2"; }

int32_t argmax(const float* values, int n) {
    int32_t best = 0;
    float best_value = values[0];
    for (int i = 1; i < n; ++i) {
        // Strict > keeps the lowest index on ties; a NaN start is replaced by the first number.
        if (values[i] > best_value || (std::isnan(best_value) && !std::isnan(values[i]))) {
            best_value = values[i];
            best = i;
        }
    }
    return best;
}

}  // namespace lk::cpu
