// Warp-level reduction shared by the kernels: a fixed butterfly of shuffles, so every lane ends with the
// same sum, combined in the same order whatever the batch.
#pragma once

namespace lk::cuda {

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

}  // namespace lk::cuda
