// The memory read bandwidth every CPU speed is held against (lk_measure_read_bandwidth).
#pragma once

#include <cstdint>

namespace lk::cpu {

// GB/s (10^9 bytes per second) of n_threads threads streaming a buffer far larger than the caches,
// allocated like the weights (AlignedBuffer: huge pages where Linux gives them), so the floor a greedy
// step is compared with has the same page size as the weights it streams; best of several passes.
double measure_read_bandwidth(int32_t n_threads);

}  // namespace lk::cpu
