// AVX-512 (F, BW) matrix kernel: the AVX2 kernel's tiles with 16-float registers. Compiled with AVX-512
// enabled; it only runs after best_matmul_kernel() has checked the CPU supports it.
#include <immintrin.h>

#include "../common/half.h"
#include "kernels.h"
#include "lookahead.h"

namespace lk::cpu {
namespace {

// Rows of W processed per pass over a block of x rows: the chunk stays in L1/L2 while every
// x block streams past it, so W is read from memory once per call.
constexpr int64_t kRowChunk = 8;
constexpr int kInputsPerTile = 4;

struct LoadF32 {
    static __m512 vec(const void* w, int64_t i) { return _mm512_loadu_ps(static_cast<const float*>(w) + i); }
    static float one(const void* w, int64_t i) { return static_cast<const float*>(w)[i]; }
};
struct LoadF16 {
    static __m512 vec(const void* w, int64_t i) {
        return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i)));
    }
    static float one(const void* w, int64_t i) { return f16_to_float(static_cast<const uint16_t*>(w)[i]); }
};
struct LoadBF16 {
    static __m512 vec(const void* w, int64_t i) {
        __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(w) + i));
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
    }
    static float one(const void* w, int64_t i) { return bf16_to_float(static_cast<const uint16_t*>(w)[i]); }
};

inline float horizontal_sum(__m512 v) { return _mm512_reduce_add_ps(v); }

// RW rows of W against RX rows of x, 16 columns per iteration, scalar tail.
template <typename Load, int RW, int RX>
void tile(const MatmulArgs& a, int64_t row, int32_t x_row) {
    __m512 acc[RW][RX];
    for (int r = 0; r < RW; ++r)
        for (int j = 0; j < RX; ++j) acc[r][j] = _mm512_setzero_ps();
    const float* x[RX];
    for (int j = 0; j < RX; ++j) x[j] = a.x + (x_row + j) * a.x_stride;
    const int64_t vec_cols = a.cols & ~int64_t{15};
    for (int64_t c = 0; c < vec_cols; c += 16) {
        __m512 xv[RX];
        for (int j = 0; j < RX; ++j) xv[j] = _mm512_loadu_ps(x[j] + c);
        for (int r = 0; r < RW; ++r) {
            __m512 w = Load::vec(a.weights, (row + r) * a.cols + c);
            for (int j = 0; j < RX; ++j) acc[r][j] = _mm512_fmadd_ps(w, xv[j], acc[r][j]);
        }
    }
    for (int r = 0; r < RW; ++r) {
        for (int j = 0; j < RX; ++j) {
            float sum = horizontal_sum(acc[r][j]);
            for (int64_t c = vec_cols; c < a.cols; ++c) sum += Load::one(a.weights, (row + r) * a.cols + c) * x[j][c];
            a.y[(x_row + j) * a.y_stride + row + r] = sum;
        }
    }
}

// One pass over a row range for inputs x rows starting at x_row. Fewer inputs get taller tiles so there
// are always about eight independent accumulators to hide FMA latency. The tile shape never changes what
// one output element sums, or in which order, so results do not depend on the batch size.
// One pass over a row range for `inputs` x rows starting at x_row. With 32 vector registers the tiles can
// hold 8 to 16 accumulators; the tile shape never changes what one output element sums, or in which order,
// so results do not depend on the batch size.
template <typename Load>
void rows_for_inputs(const MatmulArgs& a, int64_t row, int64_t row_end, int32_t x_row, int32_t inputs) {
    switch (inputs) {
        case 1:
            for (; row + 8 <= row_end; row += 8) tile<Load, 8, 1>(a, row, x_row);
            for (; row < row_end; ++row) tile<Load, 1, 1>(a, row, x_row);
            break;
        case 2:
            for (; row + 8 <= row_end; row += 8) tile<Load, 8, 2>(a, row, x_row);
            for (; row < row_end; ++row) tile<Load, 1, 2>(a, row, x_row);
            break;
        case 3:
            for (; row + 4 <= row_end; row += 4) tile<Load, 4, 3>(a, row, x_row);
            for (; row < row_end; ++row) tile<Load, 1, 3>(a, row, x_row);
            break;
        default:
            for (; row + 4 <= row_end; row += 4) tile<Load, 4, 4>(a, row, x_row);
            for (; row < row_end; ++row) tile<Load, 1, 4>(a, row, x_row);
            break;
    }
}

template <typename Load>
void matmul(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    for (int64_t chunk = row_begin; chunk < row_end; chunk += kRowChunk) {
        const int64_t chunk_end = chunk + kRowChunk < row_end ? chunk + kRowChunk : row_end;
        for (int32_t j = 0; j < a.n_x; j += kInputsPerTile) {
            const int32_t inputs = a.n_x - j < kInputsPerTile ? a.n_x - j : kInputsPerTile;
            rows_for_inputs<Load>(a, chunk, chunk_end, j, inputs);
        }
    }
}

}  // namespace

void matmul_avx512(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    switch (a.dtype) {
        case LK_DTYPE_F32: matmul<LoadF32>(a, row_begin, row_end); break;
        case LK_DTYPE_F16: matmul<LoadF16>(a, row_begin, row_end); break;
        default: matmul<LoadBF16>(a, row_begin, row_end); break;
    }
}

}  // namespace lk::cpu
