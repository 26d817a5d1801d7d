#include "cuda_check.h"
#include "sampling.cuh"

namespace lk::cuda {
namespace {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;

struct SamplerShared {
    unsigned long long weight[256];
    unsigned int count[256];
    unsigned long long partial[kWarps];
    unsigned long long value;
};

enum class Reduce { kSum, kMin, kMax };

template <Reduce op>
__device__ __forceinline__ unsigned long long identity() {
    return op == Reduce::kMin ? ~0ull : 0ull;
}

template <Reduce op>
__device__ __forceinline__ unsigned long long combine(unsigned long long a, unsigned long long b) {
    if (op == Reduce::kSum) return a + b;
    if (op == Reduce::kMin) return a < b ? a : b;
    return a > b ? a : b;
}

// The block's sum / min / max of one value per thread, returned to every thread (integers: any order is exact).
template <Reduce op>
__device__ unsigned long long block_reduce(unsigned long long v, SamplerShared& sh) {
    for (int offset = 16; offset > 0; offset >>= 1) v = combine<op>(v, __shfl_xor_sync(0xffffffffu, v, offset));
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    if (lane == 0) sh.partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < kWarps ? sh.partial[lane] : identity<op>();
        for (int offset = 16; offset > 0; offset >>= 1) v = combine<op>(v, __shfl_xor_sync(0xffffffffu, v, offset));
        if (lane == 0) sh.value = v;
    }
    __syncthreads();
    const unsigned long long result = sh.value;
    __syncthreads();  // before anyone reuses partial or value
    return result;
}

// sampling_select.h's questions over one row, answered block-wide: every thread calls every method.
struct DeviceRowOps {
    const float* row;
    int vocab;
    int32_t top;  // the argmax, found by the kernel's pass that also checks the row is finite
    double inverse_temperature;
    SamplerShared& sh;

    __device__ uint64_t key(int i) const { return sampling::order_key(row[i], i); }
    __device__ double offset(int i) const { return sampling::scaled_offset(row[i], row[top], inverse_temperature); }
    __device__ uint64_t mass(int i) const { return sampling::mass_of(offset(i)); }

    __device__ int32_t argmax() const { return top; }
    __device__ uint64_t sum_mass(uint64_t limit) {
        unsigned long long total = 0;
        for (int i = threadIdx.x; i < vocab; i += kThreads)
            if (key(i) <= limit) total += mass(i);
        return block_reduce<Reduce::kSum>(total, sh);
    }
    __device__ uint64_t last_key_at_least(double x) {
        unsigned long long last = 0;
        for (int i = threadIdx.x; i < vocab; i += kThreads)
            if (offset(i) >= x) last = max(last, static_cast<unsigned long long>(key(i)));
        return block_reduce<Reduce::kMax>(last, sh);
    }
    __device__ void histogram(uint64_t prefix, uint64_t mask, int shift, uint64_t limit, bool by_mass) {
        __syncthreads();  // the last histogram's readers are done
        for (int d = threadIdx.x; d < 256; d += kThreads) {
            sh.weight[d] = 0;
            sh.count[d] = 0;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < vocab; i += kThreads) {
            const uint64_t k = key(i);
            if (k > limit || (k & mask) != prefix) continue;
            const int d = static_cast<int>((k >> shift) & 255);
            const unsigned long long w = by_mass ? mass(i) : 1;
            if (w) atomicAdd(&sh.weight[d], w);
            atomicAdd(&sh.count[d], 1u);
        }
        __syncthreads();
    }
    __device__ sampling::SelectBucket bucket(uint64_t target) const {  // every thread scans the same shared counts
        uint64_t before = 0;
        for (int d = 0; d < 255; ++d) {
            if (before + sh.weight[d] >= target) return {d, before, sh.count[d]};
            before += sh.weight[d];
        }
        return {255, before, sh.count[255]};
    }
    __device__ uint64_t only_key(uint64_t prefix, uint64_t mask, uint64_t limit) {
        __syncthreads();
        if (threadIdx.x == 0) sh.value = 0;
        __syncthreads();
        for (int i = threadIdx.x; i < vocab; i += kThreads) {
            const uint64_t k = key(i);
            if (k <= limit && (k & mask) == prefix) sh.value = k;  // exactly one thread matches
        }
        __syncthreads();
        const uint64_t result = sh.value;
        __syncthreads();
        return result;
    }
};

__global__ void __launch_bounds__(kThreads) sample_rows_kernel(const float* __restrict__ logits, int vocab, const int32_t* __restrict__ tokens,
                                   const int32_t* __restrict__ parents, const int32_t* __restrict__ counts_all,
                                   const int32_t* __restrict__ counts_output, SamplerArgs args, float* __restrict__ penalized,
                                   int32_t* __restrict__ sampled) {
    __shared__ SamplerShared sh;
    const int node = blockIdx.x;
    const float* raw = logits + static_cast<int64_t>(node) * vocab;
    // The node's depth (every thread walks the same short chain to the root).
    int depth = 0;
    for (int a = node; parents[a] >= 0; a = parents[a]) ++depth;

    const float* row = raw;
    if (args.penalizes) {
        float* out = penalized + static_cast<int64_t>(node) * vocab;
        for (int i = threadIdx.x; i < vocab; i += kThreads)
            out[i] = sampling::penalized_logit(raw[i], counts_all[i], counts_output[i], args.repetition_penalty,
                                               args.presence_penalty, args.frequency_penalty);
        __syncthreads();
        // The chain from the node to the root adds to its tokens' counts: the first occurrence of each token in
        // the chain (nearest the node) rewrites that token's logit with the chain's count added.
        for (int t = threadIdx.x; t <= depth; t += kThreads) {
            int a = node;
            for (int s = 0; s < t; ++s) a = parents[a];
            const int32_t token = tokens[a];
            bool first = true;
            int extra_all = 0, extra_output = 0, b = node;
            for (int s = 0; s <= depth; ++s, b = parents[b]) {
                if (tokens[b] != token) continue;
                if (s < t) first = false;
                ++extra_all;
                if (s < depth || args.root_is_output) ++extra_output;
            }
            if (first)
                out[token] = sampling::penalized_logit(raw[token], counts_all[token] + extra_all,
                                                       counts_output[token] + extra_output, args.repetition_penalty,
                                                       args.presence_penalty, args.frequency_penalty);
        }
        __syncthreads();
        row = out;
    }

    // A row with NaN or infinity names no token; otherwise the smallest key holds the largest logit (the
    // argmax: lowest id on ties).
    bool finite = true;
    unsigned long long best = ~0ull;
    for (int i = threadIdx.x; i < vocab; i += kThreads) {
        finite = finite && isfinite(row[i]);
        best = min(best, static_cast<unsigned long long>(sampling::order_key(row[i], i)));
    }
    if (block_reduce<Reduce::kMax>(finite ? 0ull : 1ull, sh) != 0) {
        if (threadIdx.x == 0) sampled[node] = -1;
        return;  // the whole block: the reduction gave every thread the same answer
    }
    const int32_t top = sampling::key_token(block_reduce<Reduce::kMin>(best, sh));
    DeviceRowOps ops{row, vocab, top, sampling::inverse(args.rule.temperature), sh};
    const uint64_t draw = sampling::draw_bits(args.seed, static_cast<uint64_t>(args.token_index + depth));
    const int32_t token = sampling::sample_row(ops, args.rule, draw);
    if (threadIdx.x == 0) sampled[node] = token;
}

__global__ void count_tokens_kernel(int32_t* __restrict__ counts_all, int32_t* __restrict__ counts_output,
                                    const int32_t* __restrict__ tokens, int n, int first_output, int delta) {
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < n; j += gridDim.x * blockDim.x) {
        atomicAdd(&counts_all[tokens[j]], delta);
        if (j >= first_output) atomicAdd(&counts_output[tokens[j]], delta);
    }
}

}  // namespace

void sample_rows(const float* logits, int n, int vocab, const int32_t* tokens, const int32_t* parents,
                 const int32_t* counts_all, const int32_t* counts_output, const SamplerArgs& args, float* penalized,
                 int32_t* sampled) {
    sample_rows_kernel<<<n, kThreads>>>(logits, vocab, tokens, parents, counts_all, counts_output, args, penalized, sampled);
    check_launch("sample_rows");
}

void count_tokens(int32_t* counts_all, int32_t* counts_output, const int32_t* tokens, int n, int first_output, int delta) {
    if (n <= 0) return;
    count_tokens_kernel<<<(n + 255) / 256, 256>>>(counts_all, counts_output, tokens, n, first_output, delta);
    check_launch("count_tokens");
}

}  // namespace lk::cuda
