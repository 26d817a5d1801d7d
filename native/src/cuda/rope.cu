#include "cuda_check.h"
#include "rope.cuh"

namespace lk::cuda {
namespace {

// One block per node; threads over (head, pair) for queries, then for keys and values.
__global__ void rope_kernel(float* __restrict__ q, const float* __restrict__ k, const float* __restrict__ v,
                            const int32_t* __restrict__ positions, const float* __restrict__ inv_freq, int n_heads,
                            int n_kv_heads, int head_dim, int32_t host_n_past, const int32_t* __restrict__ device_n_past,
                            float* __restrict__ key_cache, float* __restrict__ value_cache) {
    const int node = blockIdx.x, half = head_dim / 2;
    const int64_t n_past = device_n_past ? *device_n_past : host_n_past;
    const float position = static_cast<float>(positions[node]);
    const int64_t q_dim = static_cast<int64_t>(n_heads) * head_dim, kv_dim = static_cast<int64_t>(n_kv_heads) * head_dim;
    float* qn = q + node * q_dim;
    for (int item = threadIdx.x; item < n_heads * half; item += blockDim.x) {
        const int h = item / half, i = item % half;
        float s, c;
        sincosf(position * inv_freq[i], &s, &c);
        float* head = qn + h * head_dim;
        const float a = head[i], b = head[i + half];
        head[i] = a * c - b * s;
        head[i + half] = b * c + a * s;
    }
    const float* kn = k + node * kv_dim;
    float* kc = key_cache + (n_past + node) * kv_dim;
    for (int item = threadIdx.x; item < n_kv_heads * half; item += blockDim.x) {
        const int h = item / half, i = item % half;
        float s, c;
        sincosf(position * inv_freq[i], &s, &c);
        const float a = kn[h * head_dim + i], b = kn[h * head_dim + i + half];
        kc[h * head_dim + i] = a * c - b * s;
        kc[h * head_dim + i + half] = b * c + a * s;
    }
    const float* vn = v + node * kv_dim;
    float* vc = value_cache + (n_past + node) * kv_dim;
    for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) vc[i] = vn[i];
}

}  // namespace

void rope_and_store(float* q, const float* k, const float* v, const int32_t* positions, const float* inv_freq, int n,
                    int n_heads, int n_kv_heads, int head_dim, int32_t n_past, const int32_t* device_n_past, float* key_cache,
                    float* value_cache) {
    rope_kernel<<<n, 128>>>(q, k, v, positions, inv_freq, n_heads, n_kv_heads, head_dim, n_past, device_n_past, key_cache,
                            value_cache);
    check_launch("rope_and_store");
}

}  // namespace lk::cuda
