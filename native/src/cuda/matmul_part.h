// One matrix of a matrix product on the device; several parts with the same inputs (q, k and v; gate and
// up) go out in one launch.
#pragma once

#include <cstdint>

namespace lk::cuda {

constexpr int kMaxMatmulParts = 3;

struct MatmulPart {
    const void* weights = nullptr;  // [rows, cols]
    int64_t rows = 0;
    float* y = nullptr;             // n_x rows of `rows` outputs, y_stride apart
    int64_t y_stride = 0;
    const float* bias = nullptr;    // rows floats, or null
};

}  // namespace lk::cuda
