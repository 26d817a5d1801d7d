// CUDA runtime errors become lk::Error exceptions (turned into an lk_status at the C boundary).
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "../common/error.h"

namespace lk::cuda {

inline void check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) {
        fail(status == cudaErrorMemoryAllocation ? LK_ERR_OUT_OF_MEMORY : LK_ERR_INTERNAL,
             std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status));
    }
}

// Checks the launch of the kernel just issued.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

// Device memory owned by the backend; freed on destruction.
template <typename T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(size_t count) : count_(count) {
        if (count) check(cudaMalloc(&data_, count * sizeof(T)), "cudaMalloc");
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& other) noexcept : data_(other.data_), count_(other.count_) {
        other.data_ = nullptr;
        other.count_ = 0;
    }
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
        if (this != &other) {
            if (data_) cudaFree(data_);
            data_ = other.data_;
            count_ = other.count_;
            other.data_ = nullptr;
            other.count_ = 0;
        }
        return *this;
    }
    ~DeviceBuffer() {
        if (data_) cudaFree(data_);
    }
    T* get() const { return data_; }
    size_t size() const { return count_; }

private:
    T* data_ = nullptr;
    size_t count_ = 0;
};

}  // namespace lk::cuda
