// lookahead_native_bench: a model of a real shape with random weights, built in memory (no files), and
// timed through the C API on either backend: greedy step time against the weight-streaming floor, the
// forward-cost curve t(k)/t(1) for draft trees of k nodes, per-stage times (lk_context_set_profiling)
// at 1 and 8 nodes, and the memory bandwidth the floor comes from (device copy on CUDA, a multi-threaded
// read on the CPU).
//
//   lookahead_native_bench --shape llama2-7b --dtype bf16 --backend cuda --context 1024 [--json FILE]
//     [--steps N] [--cpu-kernel scalar|avx2|avx512|avx512-bf16] [--cuda-graphs on|off]
//     [--cuda-attention per-node|shared-prefix] [--cuda-matmul tensor-cores|simt] [--sequences LIST]
//     [--kv-type f32|f16|bf16]
// --sequences 1,2,4,8 (CPU) also times batched greedy steps: N sequences in one context, one node each per
// step (lk_context_decode_greedy_seqs), and prints the aggregate tokens/s against one sequence's.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(LK_HAVE_CUDA)
#include <cuda_profiler_api.h>
#include <cuda_runtime.h>
#endif

#include "common/half.h"
#include "lookahead.h"
#include "shapes.h"


namespace {

using Clock = std::chrono::steady_clock;

// Brackets the steps that Nsight Compute profiles when it runs with --profile-from-start off: one greedy
// step and one 64-node tree step (no-ops without a profiler, and without CUDA).
void profiled_region(bool begin) {
#if defined(LK_HAVE_CUDA)
    (void)(begin ? cudaProfilerStart() : cudaProfilerStop());
#else
    (void)begin;
#endif
}

[[noreturn]] void die(const std::string& message) {
    std::fprintf(stderr, "error: %s\n", message.c_str());
    std::exit(1);
}

void check(lk_status status, const char* what) {
    if (status != LK_OK) die(std::string(what) + ": " + lk_last_error());
}

// Fills n 16-bit (bf16) or 32-bit values uniformly in [-scale, scale) with all cores.
void fill(std::vector<uint8_t>& buffer, int64_t n, int32_t dtype, float scale, uint64_t seed) {
    const int64_t element = dtype == LK_DTYPE_F32 ? 4 : 2;
    buffer.resize(static_cast<size_t>(n * element));
    const int threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            uint64_t state = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(t) * 0xBF58476D1CE4E5B9ull + 1;
            for (int64_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                const float v = scale * (static_cast<float>(state >> 40) / 8388608.0f - 1.0f);
                if (element == 4) std::memcpy(buffer.data() + i * 4, &v, 4);
                else {
                    const uint16_t h = lk::float_to_bf16(v);
                    std::memcpy(buffer.data() + i * 2, &h, 2);
                }
            }
        });
    }
    for (auto& w : workers) w.join();
}

// Returns the bytes a decoding step streams: every weight but the token embedding (one row is gathered),
// unless the head is the embedding (tied shapes).
int64_t set_all_tensors(lk_model* model, const lk_model_params& p, int32_t dtype) {
    std::vector<uint8_t> buffer;
    int64_t bytes = 0;
    uint64_t seed = 1;
    auto set = [&](int32_t kind, int32_t layer, int64_t rows, int64_t cols, float scale) {
        const int32_t d = cols == 1 ? LK_DTYPE_F32 : dtype;  // vectors are tiny
        fill(buffer, rows * cols, d, scale, seed++);
        check(lk_model_set_tensor(model, kind, layer, d, rows, cols, buffer.data()), "lk_model_set_tensor");
        if (kind != LK_TENSOR_TOKEN_EMBEDDING || (p.flags & LK_MODEL_TIED_OUTPUT)) bytes += static_cast<int64_t>(buffer.size());
    };
    const int64_t h = p.hidden_size, q = int64_t{p.n_heads} * p.head_dim, kv = int64_t{p.n_kv_heads} * p.head_dim;
    const int64_t f = p.intermediate_size;
    set(LK_TENSOR_TOKEN_EMBEDDING, 0, p.vocab_size, h, 1.0f);
    set(LK_TENSOR_OUTPUT_NORM, 0, h, 1, 1.0f);
    if (!(p.flags & LK_MODEL_TIED_OUTPUT)) set(LK_TENSOR_OUTPUT, 0, p.vocab_size, h, 0.05f);
    for (int l = 0; l < p.n_layers; ++l) {
        std::fprintf(stderr, "\rbuilding weights: layer %d/%d", l + 1, p.n_layers);
        set(LK_TENSOR_ATTN_NORM, l, h, 1, 1.0f);
        set(LK_TENSOR_ATTN_Q, l, q, h, 0.02f);
        set(LK_TENSOR_ATTN_K, l, kv, h, 0.02f);
        set(LK_TENSOR_ATTN_V, l, kv, h, 0.02f);
        set(LK_TENSOR_ATTN_OUTPUT, l, h, q, 0.02f);
        set(LK_TENSOR_FFN_NORM, l, h, 1, 1.0f);
        set(LK_TENSOR_FFN_GATE, l, f, h, 0.02f);
        set(LK_TENSOR_FFN_UP, l, f, h, 0.02f);
        set(LK_TENSOR_FFN_DOWN, l, h, f, 0.02f);
    }
    std::fprintf(stderr, "\n");
    return bytes;
}

double median(std::vector<double> values) {
    std::sort(values.begin(), values.end());
    return values[values.size() / 2];
}

#if defined(LK_HAVE_CUDA)
// Device-to-device copy of 1 GiB, counting bytes read plus bytes written.
double device_copy_gbps() {
    const size_t bytes = size_t{1} << 30;
    void *a = nullptr, *b = nullptr;
    if (cudaMalloc(&a, bytes) != cudaSuccess || cudaMalloc(&b, bytes) != cudaSuccess) return 0;
    cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
    cudaDeviceSynchronize();
    std::vector<double> times;
    for (int r = 0; r < 10; ++r) {
        const auto start = Clock::now();
        cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice);
        cudaDeviceSynchronize();
        times.push_back(std::chrono::duration<double>(Clock::now() - start).count());
    }
    cudaFree(a);
    cudaFree(b);
    return 2.0 * bytes / median(times) / 1e9;
}
#endif

// Batched greedy: for each N, a context of N sequences over the same random prefix of `context` tokens,
// then `steps` steps of one node per sequence in one call; prints ms per step and aggregate tokens/s.
void batched_greedy(lk_model* model, const lk_model_params& p, const lk_context_params& base, int context, int steps,
                    const std::vector<int>& counts) {
    std::mt19937 rng(11);
    std::vector<int32_t> prefix(context);
    for (int32_t& t : prefix) t = std::uniform_int_distribution<int>(0, p.vocab_size - 1)(rng);
    double one_sequence_rate = 0;
    std::printf("batched greedy (one node per sequence per step, %d committed tokens each):\n", context);
    for (int n_seq : counts) {
        lk_context_params cp = base;  // the kernel cap and KV cache type asked for
        cp.n_ctx = context + steps + 8;
        cp.n_batch = std::max(128, n_seq);
        cp.n_seq_max = n_seq;
        lk_context* ctx = nullptr;
        check(lk_context_init(model, &cp, &ctx), "lk_context_init (sequences)");
        for (int s = 0; s < n_seq; ++s) {
            int32_t id = 0;
            if (s > 0) check(lk_seq_add(ctx, &id), "lk_seq_add");
            for (int start = 0; start < context; start += 128)
                check(lk_seq_prefill(ctx, s, prefix.data() + start, std::min(128, context - start)), "lk_seq_prefill");
        }
        std::vector<int32_t> tokens(n_seq, 1), parents(n_seq, -1), seq_ids(n_seq), out(n_seq), out_counts(n_seq);
        for (int s = 0; s < n_seq; ++s) seq_ids[s] = s;
        std::vector<double> step_ms;
        for (int step = 0; step < steps + 3; ++step) {
            const lk_seq_batch batch{tokens.data(), parents.data(), seq_ids.data(), n_seq, 0};
            const auto start = Clock::now();
            check(lk_context_decode_greedy_seqs(ctx, &batch, out.data(), out_counts.data()), "batched greedy step");
            if (step >= 3) step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
            tokens = out;
        }
        const double ms = median(step_ms), rate = 1000.0 * n_seq / ms;
        if (n_seq == counts.front()) one_sequence_rate = rate / n_seq;
        std::printf("  %3d sequences: %8.3f ms per step, %9.1f tokens/s aggregate (%.2fx one sequence's)\n", n_seq, ms, rate,
                    rate / one_sequence_rate);
        lk_context_free(ctx);
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string shape_name = "tinyllama-1.1b", dtype_name = "bf16", backend_name = "cuda", json_path;
    int context = 1024, steps = 64;
    std::vector<int> sequence_counts;
    lk_context_params cp = lk_context_default_params();
    auto choice = [](const std::string& option, const std::string& value,
                     std::initializer_list<std::pair<const char*, int32_t>> names) {
        for (const auto& [name, code] : names)
            if (value == name) return code;
        die(option + " " + value + " is not one of its values (see the comment at the top of bench/native/main.cpp)");
    };
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) die(arg + " needs a value");
            return argv[++i];
        };
        if (arg == "--shape") shape_name = value();
        else if (arg == "--dtype") dtype_name = value();
        else if (arg == "--backend") backend_name = value();
        else if (arg == "--context") context = std::stoi(value());
        else if (arg == "--steps") steps = std::stoi(value());
        else if (arg == "--json") json_path = value();
        else if (arg == "--sequences") {
            const std::string list = value();
            for (size_t at = 0; at <= list.size();) {
                const size_t comma = std::min(list.find(',', at), list.size());
                const int n = std::atoi(list.substr(at, comma - at).c_str());
                if (n < 1 || n > 256) die("--sequences takes counts in 1..256, got " + list);
                sequence_counts.push_back(n);
                at = comma + 1;
            }
        }
        else if (arg == "--cpu-kernel")
            cp.cpu_kernel = choice(arg, value(), {{"scalar", LK_CPU_KERNEL_SCALAR}, {"avx2", LK_CPU_KERNEL_AVX2},
                                                  {"avx512", LK_CPU_KERNEL_AVX512}, {"avx512-bf16", LK_CPU_KERNEL_AVX512_BF16}});
        else if (arg == "--kv-type")
            cp.kv_type = choice(arg, value(), {{"f32", LK_DTYPE_F32}, {"f16", LK_DTYPE_F16}, {"bf16", LK_DTYPE_BF16}});
        else if (arg == "--cuda-graphs")
            cp.cuda_graphs = choice(arg, value(), {{"on", LK_CUDA_GRAPHS_ON}, {"off", LK_CUDA_GRAPHS_OFF}});
        else if (arg == "--cuda-attention")
            cp.cuda_attention = choice(arg, value(), {{"per-node", LK_CUDA_ATTENTION_PER_NODE},
                                                      {"shared-prefix", LK_CUDA_ATTENTION_SHARED_PREFIX}});
        else if (arg == "--cuda-matmul")
            cp.cuda_matmul = choice(arg, value(), {{"tensor-cores", LK_CUDA_MATMUL_TENSOR_CORES}, {"simt", LK_CUDA_MATMUL_SIMT}});
        else die("unknown argument " + arg + " (see the comment at the top of bench/native/main.cpp)");
    }
    const lk_bench::NamedShape* shape = lk_bench::find_shape(shape_name);
    if (!shape) die("unknown shape " + shape_name + " (" + lk_bench::shape_names() + ")");
    const int32_t dtype = dtype_name == "f32" ? LK_DTYPE_F32 : dtype_name == "f16" ? LK_DTYPE_F16 : LK_DTYPE_BF16;
    if (dtype == LK_DTYPE_F16) die("--dtype f16 is not generated by this benchmark; use bf16 or f32");
    const int32_t backend = backend_name == "cpu" ? LK_BACKEND_CPU : LK_BACKEND_CUDA;

    lk_model_params p = shape->params;
    // Room for the prefix, the greedy steps and the largest tree (64 nodes).
    const int capacity = context + steps + 3 + 64;
    p.max_context = std::max(p.max_context, capacity);
    lk_model* model = nullptr;
    check(lk_model_init(&p, &model), "lk_model_init");
    const int64_t weight_bytes = set_all_tensors(model, p, dtype);
    cp.backend = backend;
    cp.n_ctx = capacity;
    cp.n_batch = 128;
    lk_context* ctx = nullptr;
    check(lk_context_init(model, &cp, &ctx), "lk_context_init");
    std::printf("%s\n", lk_system_info());
    lk_context_info info{};
    check(lk_context_get_info(ctx, &info), "lk_context_get_info");
    // The values of lk_cpu_kernel, lk_cuda_matmul, lk_cuda_attention and lk_cuda_graphs, by name.
    static const char* const cpu_kernels[] = {"auto", "scalar", "avx2", "avx512", "avx512-bf16"};
    static const char* const matmuls[] = {"auto", "tensor-cores", "simt"};
    static const char* const attentions[] = {"auto", "per-node", "shared-prefix"};
    static const char* const graphs[] = {"auto", "on", "off"};
    if (info.backend == LK_BACKEND_CPU)
        std::printf("kernels: cpu %s, %d threads, %s KV cache\n", cpu_kernels[info.cpu_kernel], info.n_threads,
                    info.kv_type == LK_DTYPE_F32 ? "f32" : info.kv_type == LK_DTYPE_F16 ? "f16" : "bf16");
    else
        std::printf("kernels: cuda device %d, matmul %s, attention %s, graphs %s\n", info.cuda_device, matmuls[info.cuda_matmul],
                    attentions[info.cuda_attention], graphs[info.cuda_graphs]);

    std::mt19937 rng(7);
    std::vector<int32_t> prefix(context);
    for (int32_t& t : prefix) t = std::uniform_int_distribution<int>(0, p.vocab_size - 1)(rng);
    for (int start = 0; start < context; start += 128) {
        const int n = std::min(128, context - start);
        lk_batch chain{prefix.data() + start, nullptr, n, LK_LOGITS_NONE};
        check(lk_context_eval(ctx, &chain), "prefill");
        check(lk_context_commit(ctx, nullptr, n), "commit");
    }

    // Greedy steps continue from the prefix (each commits one token); rewound afterwards.
    int32_t token = 1, produced = 0;
    std::vector<double> step_ms;
    for (int s = 0; s < steps + 3; ++s) {
        lk_batch one{&token, nullptr, 1, LK_LOGITS_NONE};
        if (s == 3) profiled_region(true);
        const auto start = Clock::now();
        check(lk_context_decode_greedy(ctx, &one, &token, 1, &produced), "greedy step");
        if (s >= 3) step_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
        if (s == 3) profiled_region(false);
    }
    check(lk_context_truncate(ctx, context), "truncate");
    const double greedy_ms = median(step_ms);

    // The same greedy steps with the device's time measured (LK_PROFILE_DEVICE, CUDA only): the step's wall
    // time minus its device time is the host's overhead per step.
    double device_ms = 0, timed_wall_ms = 0;
    check(lk_context_set_profiling(ctx, LK_PROFILE_DEVICE), "lk_context_set_profiling");
    const auto timed_start = Clock::now();
    for (int s = 0; s < steps; ++s) {
        lk_batch one{&token, nullptr, 1, LK_LOGITS_NONE};
        check(lk_context_decode_greedy(ctx, &one, &token, 1, &produced), "greedy step");
    }
    timed_wall_ms = std::chrono::duration<double, std::milli>(Clock::now() - timed_start).count() / steps;
    {
        int32_t count = 0;
        check(lk_context_get_profile(ctx, nullptr, 0, &count), "lk_context_get_profile");
        std::vector<lk_stage_time> stages(count);
        check(lk_context_get_profile(ctx, stages.data(), count, &count), "lk_context_get_profile");
        for (const lk_stage_time& stage : stages)
            if (std::strcmp(stage.name, "device") == 0 && stage.calls > 0) device_ms = stage.milliseconds / steps;
    }
    check(lk_context_set_profiling(ctx, LK_PROFILE_OFF), "lk_context_set_profiling");
    check(lk_context_truncate(ctx, context), "truncate");

    // One draft tree of k random nodes (parents among the previous four nodes) at the prefix, rewound after.
    auto tree_step = [&](const std::vector<int32_t>& tokens, const std::vector<int32_t>& parents) {
        std::vector<int32_t> out(tokens.size());
        lk_batch tree{tokens.data(), parents.data(), static_cast<int32_t>(tokens.size()), LK_LOGITS_NONE};
        const auto start = Clock::now();
        check(lk_context_decode_greedy(ctx, &tree, out.data(), tree.n_tokens, &produced), "tree step");
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
        check(lk_context_truncate(ctx, context), "truncate");
        return ms;
    };
    auto random_tree = [&](int k) {
        std::pair<std::vector<int32_t>, std::vector<int32_t>> tree{std::vector<int32_t>(k), std::vector<int32_t>(k)};
        for (int i = 0; i < k; ++i) {
            tree.first[i] = std::uniform_int_distribution<int>(0, p.vocab_size - 1)(rng);
            tree.second[i] = i == 0 ? -1 : std::uniform_int_distribution<int>(std::max(0, i - 4), i - 1)(rng);
        }
        return tree;
    };

    std::vector<std::pair<int, double>> curve;
    for (int k : {1, 2, 4, 8, 16, 32, 64}) {
        const auto [tokens, parents] = random_tree(k);
        std::vector<double> times;
        for (int r = 0; r < 15; ++r) {
            const bool profiled = k == 64 && r == 3;
            if (profiled) profiled_region(true);
            const double ms = tree_step(tokens, parents);
            if (profiled) profiled_region(false);
            if (r >= 3) times.push_back(ms);
        }
        curve.emplace_back(k, median(times));
    }

    // Per-stage times per step at k = 1 and 8, from separate profiled steps (on CUDA profiling waits for
    // the device at every stage boundary, so these steps are not the timed ones above).
    constexpr int kProfiledSteps = 10;
    std::vector<std::pair<int, std::vector<lk_stage_time>>> stage_times;
    for (int k : {1, 8}) {
        const auto [tokens, parents] = random_tree(k);
        tree_step(tokens, parents);
        check(lk_context_set_profiling(ctx, LK_PROFILE_STAGES), "lk_context_set_profiling");
        for (int r = 0; r < kProfiledSteps; ++r) tree_step(tokens, parents);
        int32_t count = 0;
        check(lk_context_get_profile(ctx, nullptr, 0, &count), "lk_context_get_profile");
        std::vector<lk_stage_time> stages(count);
        check(lk_context_get_profile(ctx, stages.data(), count, &count), "lk_context_get_profile");
        check(lk_context_set_profiling(ctx, LK_PROFILE_OFF), "lk_context_set_profiling");
        stages.erase(std::remove_if(stages.begin(), stages.end(), [](const lk_stage_time& s) { return s.calls == 0; }), stages.end());
        for (lk_stage_time& stage : stages) stage.milliseconds /= kProfiledSteps;
        stage_times.emplace_back(k, std::move(stages));
    }

    // The floor: streaming the weights once at the memory's measured speed (device copy on CUDA,
    // a read with the context's threads on the CPU).
    double copy_gbps = 0, read_gbps = 0;
#if defined(LK_HAVE_CUDA)
    if (backend == LK_BACKEND_CUDA) copy_gbps = device_copy_gbps();
#endif
    if (info.backend == LK_BACKEND_CPU) check(lk_measure_read_bandwidth(info.n_threads, &read_gbps), "lk_measure_read_bandwidth");
    const double floor_gbps = copy_gbps > 0 ? copy_gbps : read_gbps;
    const double floor_ms = floor_gbps > 0 ? weight_bytes / (floor_gbps * 1e9) * 1e3 : 0;
    std::printf("shape %s, %s weights (%.2f GB streamed per step), backend %s, context %d\n", shape->name, dtype_name.c_str(),
                weight_bytes / 1e9, backend_name.c_str(), context);
    if (copy_gbps > 0) std::printf("device copy bandwidth: %.0f GB/s (read + write); weight-streaming floor %.3f ms/token\n", copy_gbps, floor_ms);
    if (read_gbps > 0)
        std::printf("memory read bandwidth (%d threads): %.1f GB/s; weight-streaming floor %.3f ms/token\n", info.n_threads, read_gbps, floor_ms);
    std::printf("greedy step: %.3f ms (%.1f tokens/s)%s\n", greedy_ms, 1000.0 / greedy_ms,
                floor_ms > 0 ? (" = " + std::to_string(static_cast<int>(100 * floor_ms / greedy_ms)) + "% of the floor's speed").c_str() : "");
    if (device_ms > 0)
        std::printf("greedy step with device timing: %.3f ms wall, %.3f ms on the device, host overhead %.1f us per step\n",
                    timed_wall_ms, device_ms, (timed_wall_ms - device_ms) * 1e3);
    std::printf("forward cost:");
    for (auto& [k, ms] : curve) std::printf(" t(%d)=%.3fms(%.2fx)", k, ms, ms / curve[0].second);
    std::printf("\n");
    for (const auto& [k, stages] : stage_times) {
        std::printf("stages at k=%d, ms per step:", k);
        for (const lk_stage_time& stage : stages) std::printf(" %s %.3f", stage.name, stage.milliseconds);
        std::printf("\n");
    }

    if (!json_path.empty()) {
        std::ofstream json(json_path);
        json << "{\"shape\":\"" << shape->name << "\",\"dtype\":\"" << dtype_name << "\",\"backend\":\"" << backend_name
             << "\",\"context\":" << context << ",\"weight_bytes\":" << weight_bytes << ",\"copy_gbps\":" << copy_gbps
             << ",\"floor_ms\":" << floor_ms << ",\"greedy_ms\":" << greedy_ms << ",\"timed_greedy_ms\":" << timed_wall_ms
             << ",\"device_ms\":" << device_ms << ",\"forward_cost\":[";
        for (size_t i = 0; i < curve.size(); ++i)
            json << (i ? "," : "") << "{\"k\":" << curve[i].first << ",\"ms\":" << curve[i].second << "}";
        json << "],\"stages\":[";
        for (size_t i = 0; i < stage_times.size(); ++i) {
            json << (i ? "," : "") << "{\"k\":" << stage_times[i].first << ",\"ms_per_step\":{";
            for (size_t j = 0; j < stage_times[i].second.size(); ++j)
                json << (j ? "," : "") << "\"" << stage_times[i].second[j].name << "\":" << stage_times[i].second[j].milliseconds;
            json << "}}";
        }
        json << "]}\n";
    }
    lk_context_free(ctx);
    if (!sequence_counts.empty()) {
        if (backend != LK_BACKEND_CPU) die("--sequences runs on the CPU backend (the CUDA backend holds one sequence)");
        batched_greedy(model, p, cp, context, steps, sequence_counts);
    }
    lk_model_free(model);
    return 0;
}
