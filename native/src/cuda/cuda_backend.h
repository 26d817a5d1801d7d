// Entry points of the CUDA backend (present only in builds with LK_CUDA).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "../common/backend.h"

namespace lk {

// Number of usable CUDA devices; 0 with the reason (no driver, no device) when there are none.
int32_t cuda_device_count(std::string* reason);

// requested: the device and the kernel choices of lk_context_params (the device index already checked).
std::unique_ptr<Backend> make_cuda_backend(const Model& model, int32_t n_ctx, int32_t n_batch, const KernelChoices& requested);

}  // namespace lk
