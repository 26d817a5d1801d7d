// The CUDA kernel benchmarks (llm.c's habit: each kernel family with its test in tests/native/cuda/ and
// its benchmark here). Every family times its kernels with CUDA events at real model shapes and prints the
// time next to the achieved bandwidth (bytes the kernel must move at least) and arithmetic rate, held against
// the device-to-device copy rate measured in the same run.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace lk_bench {

[[noreturn]] inline void cuda_fail(cudaError_t status, const char* what) {
    std::fprintf(stderr, "error: %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
}

inline void cuda_check(cudaError_t status, const char* what) {
    if (status != cudaSuccess) cuda_fail(status, what);
}

// A device allocation filled with a fixed pseudo-random pattern (values in [-scale, scale): floats, or BF16
// bits when bf16), or zeros.
class DeviceArray {
public:
    explicit DeviceArray(size_t bytes) : bytes_(bytes) {
        cuda_check(cudaMalloc(&data_, std::max<size_t>(bytes, 1)), "cudaMalloc");
        cuda_check(cudaMemset(data_, 0, bytes), "cudaMemset");
    }
    ~DeviceArray() { cudaFree(data_); }
    DeviceArray(DeviceArray&& other) noexcept : data_(std::exchange(other.data_, nullptr)), bytes_(other.bytes_) {}
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;
    DeviceArray& operator=(DeviceArray&&) = delete;

    static DeviceArray floats(size_t n, float scale, uint32_t seed);
    static DeviceArray bf16(size_t n, float scale, uint32_t seed);
    static DeviceArray ints(const std::vector<int32_t>& values);

    template <typename T>
    T* as() const { return static_cast<T*>(data_); }
    size_t bytes() const { return bytes_; }

private:
    void* data_ = nullptr;
    size_t bytes_ = 0;
};

// Device-to-device copy rate of 1 GiB, bytes read plus written (GB/s, 10^9): the ceiling kernels are held to.
double device_copy_gbps();

// Median milliseconds of one call of run over `repeats` timed calls (CUDA events around each), after
// three untimed ones.
template <typename F>
double median_ms(F&& run, int repeats = 25) {
    cudaEvent_t start, stop;
    cuda_check(cudaEventCreate(&start), "cudaEventCreate");
    cuda_check(cudaEventCreate(&stop), "cudaEventCreate");
    for (int i = 0; i < 3; ++i) run();
    std::vector<float> times;
    for (int i = 0; i < repeats; ++i) {
        cuda_check(cudaEventRecord(start), "cudaEventRecord");
        run();
        cuda_check(cudaEventRecord(stop), "cudaEventRecord");
        cuda_check(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float ms = 0;
        cuda_check(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        times.push_back(ms);
    }
    cuda_check(cudaGetLastError(), "kernel launch");
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(times.begin(), times.end());
    return times[times.size() / 2];
}

// One line: what ran, its median time, bytes / time against the copy rate, and flops / time.
void report(const std::string& what, double ms, double bytes, double flops, double copy_gbps);

// The families (one file each).
void bench_matmul(double copy_gbps);
void bench_attention(double copy_gbps);
void bench_elementwise(double copy_gbps);

}  // namespace lk_bench
