// The register-tiled matrix kernel shared by the AVX2 and AVX-512 kernels. Each including file is
// compiled with its instruction set enabled and supplies a description of it: vector type, zero, load,
// fused multiply-add, horizontal sum, register budget, and the weight conversions LoadF32, LoadF16 and
// LoadBF16 that FmaStep below uses.
//
// Batch invariance: every output element accumulates its columns in the same order (one vector
// accumulator, columns ascending, then a fixed horizontal sum and a scalar tail) whatever the tile
// shape, so results depend neither on how many input rows a call holds nor on its row range.
#pragma once

#include <cstdint>

#include "kernels.h"
#include "lookahead.h"

namespace lk::cpu::tiles {

// Rows are tiled from separate streams: a tile of S rows takes one row from each of S equal, contiguous
// parts of the caller's row range, so every part is read strictly in address order as one long stream.
// Tiles of adjacent rows instead read S interleaved row-length streams, too short for the hardware
// prefetcher (measured on Zen 4, BF16 768 columns: 8 adjacent rows stream at ~60% of the read
// bandwidth, row by row at ~97%; 2 streams x 8 inputs cost 1.4-1.6x one input, 8 adjacent rows x 2
// inputs 2.8x).
//
// How far ahead a tile against two or more inputs prefetches each of its rows, into L2 (those tiles run
// too slowly for the hardware prefetcher to stay ahead; L1 prefetches measured slower, 1-12 KiB ahead
// about equal, 3 KiB best).
constexpr int64_t kPrefetchBytes = 3072;

namespace {  // internal linkage: each instruction-set file compiles its own copy
constexpr int64_t element_bytes(int32_t dtype) { return dtype == LK_DTYPE_F32 ? 4 : 2; }
}  // namespace

// A step of a tile: Step::kColumns columns of one weight row against one input row. FmaStep converts
// the weights to F32 in registers (Convert: the instruction set's LoadF32/LoadF16/LoadBF16) and
// multiply-adds F32 inputs; a kernel with a dot-product instruction supplies its own step.
template <typename Isa, typename Convert>
struct FmaStep {
    using Acc = typename Isa::Vec;
    using Input = typename Isa::Vec;
    using Weights = typename Isa::Vec;
    static constexpr int kColumns = Isa::kWidth;
    static Input input(const MatmulArgs& a, int32_t x_row, int64_t c) { return Isa::load(a.x + x_row * a.x_stride + c); }
    static Weights weights(const void* w, int64_t i) { return Convert::vec(w, i); }
    static Acc madd(Weights w, Input x, Acc acc) { return Isa::fmadd(w, x, acc); }
    static float one(const void* w, int64_t i) { return Convert::one(w, i); }
};

// Rows row, row + stride, ..., row + (RW - 1) stride of W against inputs x_row .. x_row + RX - 1,
// Step::kColumns columns per iteration, scalar tail (over the F32 inputs).
template <typename Isa, typename Step, int RW, int RX>
void tile(const MatmulArgs& a, int64_t row, int64_t stride, int32_t x_row) {
    typename Step::Acc acc[RW][RX];
    for (int r = 0; r < RW; ++r)
        for (int j = 0; j < RX; ++j) acc[r][j] = Isa::zero();
    int64_t base[RW];
    for (int r = 0; r < RW; ++r) base[r] = (row + r * stride) * a.cols;
    const int64_t vec_cols = a.cols / Step::kColumns * Step::kColumns;
    const char* bytes = static_cast<const char*>(a.weights);
    const int64_t size = element_bytes(a.dtype);
    for (int64_t c = 0; c < vec_cols; c += Step::kColumns) {
        if constexpr (RX >= 2)
            for (int r = 0; r < RW; ++r) __builtin_prefetch(bytes + (base[r] + c) * size + kPrefetchBytes, 0, 2);
        typename Step::Input xv[RX];
        for (int j = 0; j < RX; ++j) xv[j] = Step::input(a, x_row + j, c);
        for (int r = 0; r < RW; ++r) {
            const typename Step::Weights w = Step::weights(a.weights, base[r] + c);
            for (int j = 0; j < RX; ++j) acc[r][j] = Step::madd(w, xv[j], acc[r][j]);
        }
    }
    for (int r = 0; r < RW; ++r) {
        for (int j = 0; j < RX; ++j) {
            const float* x = a.x + (x_row + j) * a.x_stride;
            float sum = Isa::sum(acc[r][j]);
            for (int64_t c = vec_cols; c < a.cols; ++c) sum += Step::one(a.weights, base[r] + c) * x[c];
            float& out = a.y[(x_row + j) * a.y_stride + row + r * stride];
            out = a.accumulate ? out + sum : sum;
        }
    }
}

// RW streams' rows at `row` against `inputs` inputs starting at x_row; callers keep
// RW * inputs <= Isa::kMaxAccumulators (larger cases are not instantiated).
template <typename Isa, typename Step, int RW>
void tile_inputs(const MatmulArgs& a, int64_t row, int64_t stride, int32_t x_row, int32_t inputs) {
    switch (inputs) {
        case 1: tile<Isa, Step, RW, 1>(a, row, stride, x_row); break;
        case 2: tile<Isa, Step, RW, 2>(a, row, stride, x_row); break;
        case 3: tile<Isa, Step, RW, 3>(a, row, stride, x_row); break;
        case 4: tile<Isa, Step, RW, 4>(a, row, stride, x_row); break;
        case 5: if constexpr (RW * 5 <= Isa::kMaxAccumulators) tile<Isa, Step, RW, 5>(a, row, stride, x_row); else __builtin_unreachable(); break;
        case 6: if constexpr (RW * 6 <= Isa::kMaxAccumulators) tile<Isa, Step, RW, 6>(a, row, stride, x_row); else __builtin_unreachable(); break;
        case 7: if constexpr (RW * 7 <= Isa::kMaxAccumulators) tile<Isa, Step, RW, 7>(a, row, stride, x_row); else __builtin_unreachable(); break;
        case 8: if constexpr (RW * 8 <= Isa::kMaxAccumulators) tile<Isa, Step, RW, 8>(a, row, stride, x_row); else __builtin_unreachable(); break;
        default: __builtin_unreachable();
    }
}

// Rows [begin, end) split into RW streams, walked kBlockPositions rows per stream at a time; every
// group of at most `group` inputs is applied to a block's rows while they are in L1, so a long batch
// (prefill) is read once per block rather than once per row. Rows left over by the split go one at a time.
constexpr int64_t kBlockPositions = 8;

template <typename Isa, typename Step, int RW>
void streams(const MatmulArgs& a, int64_t begin, int64_t end, int32_t group) {
    const int64_t length = (end - begin) / RW;
    for (int64_t i0 = 0; i0 < length; i0 += kBlockPositions) {
        const int64_t i1 = i0 + kBlockPositions < length ? i0 + kBlockPositions : length;
        for (int32_t j = 0; j < a.n_x; j += group)
            for (int64_t i = i0; i < i1; ++i)
                tile_inputs<Isa, Step, RW>(a, begin + i, length, j, a.n_x - j < group ? a.n_x - j : group);
    }
    for (int64_t row = begin + RW * length; row < end; ++row)
        for (int32_t j = 0; j < a.n_x; j += group)
            tile_inputs<Isa, Step, 1>(a, row, 1, j, a.n_x - j < group ? a.n_x - j : group);
}

// The stream count and input group per batch size come from the instruction set's register budget:
// one input streams row by row (memory-bound, one long stream suffices); a few inputs take four
// streams (enough independent accumulators); many take two streams of up to Isa::kWideGroup inputs.
template <typename Isa, typename Step>
void matmul_with(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    // The groups below stay within tile_inputs' cases (1..8 inputs, RW * inputs <= kMaxAccumulators).
    static_assert(Isa::kWideGroup <= 8 && 2 * Isa::kWideGroup <= Isa::kMaxAccumulators && Isa::kMaxAccumulators / 4 <= 8);
    if (a.n_x == 1) streams<Isa, Step, 1>(a, row_begin, row_end, 1);
    else if (a.n_x * 4 <= Isa::kMaxAccumulators) streams<Isa, Step, 4>(a, row_begin, row_end, a.n_x);
    else streams<Isa, Step, 2>(a, row_begin, row_end, Isa::kWideGroup);
}

template <typename Isa>
void matmul(const MatmulArgs& a, int64_t row_begin, int64_t row_end) {
    switch (a.dtype) {
        case LK_DTYPE_F32: matmul_with<Isa, FmaStep<Isa, typename Isa::LoadF32>>(a, row_begin, row_end); break;
        case LK_DTYPE_F16: matmul_with<Isa, FmaStep<Isa, typename Isa::LoadF16>>(a, row_begin, row_end); break;
        default: matmul_with<Isa, FmaStep<Isa, typename Isa::LoadBF16>>(a, row_begin, row_end); break;
    }
}

}  // namespace lk::cpu::tiles
