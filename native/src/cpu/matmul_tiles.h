// The register-tiled matrix kernel shared by the AVX2 and AVX-512 kernels. Each including file supplies
// an instruction-set description (vector type, loads with conversion, fused multiply-add, horizontal sum,
// tile heights) and is compiled with that instruction set enabled.
//
// Batch invariance: every output element accumulates its columns in the same order (one vector
// accumulator, columns ascending, then a fixed horizontal sum and a scalar tail) whatever the tile
// shape, so results do not depend on how many input rows a call holds.
#pragma once

#include <cstdint>

#include "kernels.h"
#include "lookahead.h"

namespace lk::cpu::tiles {

// Rows of W processed per pass over a block of x rows: the chunk stays in L1/L2 while every x block
// streams past it, so W is read from memory once per call.
constexpr int64_t kRowChunk = 8;
constexpr int kInputsPerTile = 4;

// RW rows of W against RX rows of x, Isa::kWidth columns per iteration, scalar tail.
template <typename Isa, typename Load, int RW, int RX>
void tile(const MatmulArgs& a, int64_t row, int32_t x_row) {
    typename Isa::Vec acc[RW][RX];
    for (int r = 0; r < RW; ++r)
        for (int j = 0; j < RX; ++j) acc[r][j] = Isa::zero();
    const float* x[RX];
    for (int j = 0; j < RX; ++j) x[j] = a.x + (x_row + j) * a.x_stride;
    const int64_t vec_cols = a.cols / Isa::kWidth * Isa::kWidth;
    for (int64_t c = 0; c < vec_cols; c += Isa::kWidth) {
        typename Isa::Vec xv[RX];
        for (int j = 0; j < RX; ++j) xv[j] = Isa::load(x[j] + c);
        for (int r = 0; r < RW; ++r) {
            const typename Isa::Vec w = Load::vec(a.weights, (row + r) * a.cols + c);
            for (int j = 0; j < RX; ++j) acc[r][j] = Isa::fmadd(w, xv[j], acc[r][j]);
        }
    }
    for (int r = 0; r < RW; ++r) {
        for (int j = 0; j < RX; ++j) {
            float sum = Isa::sum(acc[r][j]);
            for (int64_t c = vec_cols; c < a.cols; ++c) sum += Load::one(a.weights, (row + r) * a.cols + c) * x[j][c];
            a.y[(x_row + j) * a.y_stride + row + r] = sum;
        }
    }
}

// Rows [row, row_end) against `RX` inputs: tiles Height rows tall, then single rows.
template <typename Isa, typename Load, int Height, int RX>
void rows(const MatmulArgs& a, int64_t row, int64_t row_end, int32_t x_row) {
    for (; row + Height <= row_end; row += Height) tile<Isa, Load, Height, RX>(a, row, x_row);
    for (; row < row_end; ++row) tile<Isa, Load, 1, RX>(a, row, x_row);
}

// Fewer inputs get taller tiles, so there are always enough independent accumulators to hide latency.
template <typename Isa, typename Load>
void rows_for_inputs(const MatmulArgs& a, int64_t row, int64_t row_end, int32_t x_row, int32_t inputs) {
    switch (inputs) {
        case 1: rows<Isa, Load, Isa::kHeightFor1, 1>(a, row, row_end, x_row); break;
        case 2: rows<Isa, Load, Isa::kHeightFor2, 2>(a, row, row_end, x_row); break;
        case 3: rows<Isa, Load, Isa::kHeightFor3, 3>(a, row, row_end, x_row); break;
        default: rows<Isa, Load, Isa::kHeightFor4, 4>(a, row, row_end, x_row); break;
    }
}

template <typename Isa, typename Load>
void matmul_with(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    for (int64_t chunk = row_begin; chunk < row_end; chunk += kRowChunk) {
        const int64_t chunk_end = chunk + kRowChunk < row_end ? chunk + kRowChunk : row_end;
        for (int32_t j = 0; j < a.n_x; j += kInputsPerTile) {
            const int32_t inputs = a.n_x - j < kInputsPerTile ? a.n_x - j : kInputsPerTile;
            rows_for_inputs<Isa, Load>(a, chunk, chunk_end, j, inputs);
        }
    }
}

template <typename Isa>
void matmul(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    switch (a.dtype) {
        case LK_DTYPE_F32: matmul_with<Isa, typename Isa::LoadF32>(a, row_begin, row_end); break;
        case LK_DTYPE_F16: matmul_with<Isa, typename Isa::LoadF16>(a, row_begin, row_end); break;
        default: matmul_with<Isa, typename Isa::LoadBF16>(a, row_begin, row_end); break;
    }
}

}  // namespace lk::cpu::tiles
