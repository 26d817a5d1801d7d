// lookahead_cuda_kernel_bench [--family matmul|attention|elementwise|all]: see kernel_bench.h.
#include "kernel_bench.h"

#include <cstring>

namespace lk_bench {

namespace {

uint32_t next(uint32_t& state) {
    state = state * 1664525u + 1013904223u;
    return state;
}

float uniform(uint32_t& state, float scale) { return (static_cast<float>(next(state) >> 8) / 16777216.0f * 2 - 1) * scale; }

}  // namespace

DeviceArray DeviceArray::floats(size_t n, float scale, uint32_t seed) {
    std::vector<float> host(n);
    for (float& v : host) v = uniform(seed, scale);
    DeviceArray array(n * sizeof(float));
    cuda_check(cudaMemcpy(array.data_, host.data(), array.bytes_, cudaMemcpyHostToDevice), "cudaMemcpy");
    return array;
}

DeviceArray DeviceArray::bf16(size_t n, float scale, uint32_t seed) {
    std::vector<uint16_t> host(n);
    for (uint16_t& v : host) {
        const float x = uniform(seed, scale);
        uint32_t bits;
        std::memcpy(&bits, &x, sizeof bits);
        v = static_cast<uint16_t>(bits >> 16);  // truncation is as good as rounding for random weights
    }
    DeviceArray array(n * sizeof(uint16_t));
    cuda_check(cudaMemcpy(array.data_, host.data(), array.bytes_, cudaMemcpyHostToDevice), "cudaMemcpy");
    return array;
}

DeviceArray DeviceArray::ints(const std::vector<int32_t>& values) {
    DeviceArray array(values.size() * sizeof(int32_t));
    cuda_check(cudaMemcpy(array.data_, values.data(), array.bytes_, cudaMemcpyHostToDevice), "cudaMemcpy");
    return array;
}

double device_copy_gbps() {
    const size_t bytes = size_t{1} << 30;
    DeviceArray a(bytes), b(bytes);
    const double ms = median_ms([&] { cuda_check(cudaMemcpyAsync(b.as<void>(), a.as<void>(), bytes, cudaMemcpyDeviceToDevice), "copy"); }, 10);
    return 2.0 * bytes / (ms * 1e-3) / 1e9;
}

void report(const std::string& what, double ms, double bytes, double flops, double copy_gbps) {
    const double gbps = bytes / (ms * 1e-3) / 1e9;
    std::printf("  %-58s %9.4f ms %8.1f GB/s (%5.1f%% of copy) %8.2f TFLOP/s\n", what.c_str(), ms, gbps, 100 * gbps / copy_gbps,
                flops / (ms * 1e-3) / 1e12);
}

}  // namespace lk_bench

int main(int argc, char** argv) {
    std::string family = "all";
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--family") == 0 && i + 1 < argc) {
            family = argv[++i];
        } else {
            std::fprintf(stderr, "usage: lookahead_cuda_kernel_bench [--family matmul|attention|elementwise|all]\n");
            return 2;
        }
    }
    if (family != "all" && family != "matmul" && family != "attention" && family != "elementwise") {
        std::fprintf(stderr, "error: unknown family '%s' (matmul, attention, elementwise, all)\n", family.c_str());
        return 2;
    }
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
        std::fprintf(stderr, "error: no CUDA device\n");
        return 1;
    }
    cudaDeviceProp prop{};
    lk_bench::cuda_check(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    const double copy = lk_bench::device_copy_gbps();
    std::printf("device %s; device-to-device copy %.0f GB/s (read + write), the ceiling below\n", prop.name, copy);
    std::printf("columns: median time of %d launches, bytes the kernel must move / time, flops / time\n", 25);
    if (family == "all" || family == "matmul") lk_bench::bench_matmul(copy);
    if (family == "all" || family == "attention") lk_bench::bench_attention(copy);
    if (family == "all" || family == "elementwise") lk_bench::bench_elementwise(copy);
    return 0;
}
