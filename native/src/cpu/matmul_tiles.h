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
// Rows shorter than this (bytes) are read one at a time, in address order: several interleaved short
// rows are too many short streams for the hardware prefetcher (measured on Zen 4: a BF16 768-column
// matrix streams at ~60% of the read bandwidth with 8-row tiles, ~97% row by row).
constexpr int64_t kLongRowBytes = 4096;
// How far ahead of its loads a one-row tile prefetches its row.
constexpr int64_t kPrefetchBytes = 1024;

constexpr int64_t element_bytes(int32_t dtype) { return dtype == LK_DTYPE_F32 ? 4 : 2; }

// RW rows of W against RX rows of x, Isa::kWidth columns per iteration, scalar tail.
template <typename Isa, typename Load, int RW, int RX>
void tile(const MatmulArgs& a, int64_t row, int32_t x_row) {
    typename Isa::Vec acc[RW][RX];
    for (int r = 0; r < RW; ++r)
        for (int j = 0; j < RX; ++j) acc[r][j] = Isa::zero();
    const float* x[RX];
    for (int j = 0; j < RX; ++j) x[j] = a.x + (x_row + j) * a.x_stride;
    const int64_t vec_cols = a.cols / Isa::kWidth * Isa::kWidth;
    const char* prefetch_base = static_cast<const char*>(a.weights) + row * a.cols * element_bytes(a.dtype) + kPrefetchBytes;
    for (int64_t c = 0; c < vec_cols; c += Isa::kWidth) {
        // One row against many inputs runs too slowly for the hardware prefetcher to stay ahead of it.
        if constexpr (RW == 1 && RX >= 4) __builtin_prefetch(prefetch_base + c * element_bytes(a.dtype));
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
            float& out = a.y[(x_row + j) * a.y_stride + row + r];
            out = a.accumulate ? out + sum : sum;
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

// One row at a time against up to Isa::kSequentialInputs inputs: weights are read strictly in order.
template <typename Isa, typename Load>
void sequential_rows(const MatmulArgs& a, int64_t row, int64_t row_end, int32_t x_row, int32_t inputs) {
    for (; row < row_end; ++row) {
        switch (inputs) {
            case 1: tile<Isa, Load, 1, 1>(a, row, x_row); break;
            case 2: tile<Isa, Load, 1, 2>(a, row, x_row); break;
            case 3: tile<Isa, Load, 1, 3>(a, row, x_row); break;
            case 4: tile<Isa, Load, 1, 4>(a, row, x_row); break;
            case 5: tile<Isa, Load, 1, 5>(a, row, x_row); break;
            case 6: tile<Isa, Load, 1, 6>(a, row, x_row); break;
            case 7: tile<Isa, Load, 1, 7>(a, row, x_row); break;
            default: tile<Isa, Load, 1, 8>(a, row, x_row); break;
        }
    }
}

template <typename Isa, typename Load>
void matmul_with(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    const bool sequential = a.n_x == 1 || a.cols * element_bytes(a.dtype) < kLongRowBytes;
    const int32_t per_tile = sequential ? Isa::kSequentialInputs : kInputsPerTile;
    for (int64_t chunk = row_begin; chunk < row_end; chunk += kRowChunk) {
        const int64_t chunk_end = chunk + kRowChunk < row_end ? chunk + kRowChunk : row_end;
        for (int32_t j = 0; j < a.n_x; j += per_tile) {
            const int32_t inputs = a.n_x - j < per_tile ? a.n_x - j : per_tile;
            if (sequential) sequential_rows<Isa, Load>(a, chunk, chunk_end, j, inputs);
            else rows_for_inputs<Isa, Load>(a, chunk, chunk_end, j, inputs);
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
