// The C boundary: argument checks, handle conversion, and exceptions turned into lk_status codes.
#include <cstddef>
#include <new>
#include <string>

#include "../cpu/kernels.h"
#include "../cpu/memory_bandwidth.h"
#include "../cpu/thread_pool.h"
#include "context.h"
#include "error.h"
#include "lookahead.h"
#include "model.h"
#if defined(LK_HAVE_CUDA)
#include "../cuda/cuda_backend.h"
#endif

struct lk_model : lk::Model {
    using lk::Model::Model;
};

struct lk_context : lk::Context {
    using lk::Context::Context;
};

// The ABI structs' layout (64-bit targets), mirrored field by field by the managed InteropLayoutTests.
#define LK_PIN(type, field, offset) static_assert(offsetof(type, field) == (offset), #type "." #field " moved")

static_assert(sizeof(lk_model_params) == 48, "lk_model_params layout is part of the ABI");
LK_PIN(lk_model_params, vocab_size, 0);
LK_PIN(lk_model_params, hidden_size, 4);
LK_PIN(lk_model_params, intermediate_size, 8);
LK_PIN(lk_model_params, n_layers, 12);
LK_PIN(lk_model_params, n_heads, 16);
LK_PIN(lk_model_params, n_kv_heads, 20);
LK_PIN(lk_model_params, head_dim, 24);
LK_PIN(lk_model_params, max_context, 28);
LK_PIN(lk_model_params, rms_norm_eps, 32);
LK_PIN(lk_model_params, rope_theta, 36);
LK_PIN(lk_model_params, flags, 40);
LK_PIN(lk_model_params, reserved, 44);
static_assert(sizeof(lk_context_params) == 48, "lk_context_params layout is part of the ABI");
LK_PIN(lk_context_params, backend, 0);
LK_PIN(lk_context_params, n_ctx, 4);
LK_PIN(lk_context_params, n_batch, 8);
LK_PIN(lk_context_params, n_threads, 12);
LK_PIN(lk_context_params, cuda_device, 16);
LK_PIN(lk_context_params, cpu_kernel, 20);
LK_PIN(lk_context_params, cuda_matmul, 24);
LK_PIN(lk_context_params, cuda_attention, 28);
LK_PIN(lk_context_params, cuda_graphs, 32);
LK_PIN(lk_context_params, n_seq_max, 36);
LK_PIN(lk_context_params, n_kv_tokens, 40);
LK_PIN(lk_context_params, kv_type, 44);
static_assert(sizeof(lk_seq_batch) == 32, "lk_seq_batch layout is part of the ABI");
LK_PIN(lk_seq_batch, tokens, 0);
LK_PIN(lk_seq_batch, parents, 8);
LK_PIN(lk_seq_batch, seq_ids, 16);
LK_PIN(lk_seq_batch, n_tokens, 24);
LK_PIN(lk_seq_batch, reserved, 28);
static_assert(sizeof(lk_seq_info) == 8, "lk_seq_info layout is part of the ABI");
LK_PIN(lk_seq_info, n_past, 0);
LK_PIN(lk_seq_info, n_blocks, 4);
static_assert(sizeof(lk_kv_pool_info) == 16, "lk_kv_pool_info layout is part of the ABI");
LK_PIN(lk_kv_pool_info, n_blocks, 0);
LK_PIN(lk_kv_pool_info, n_free, 4);
LK_PIN(lk_kv_pool_info, n_cached, 8);
LK_PIN(lk_kv_pool_info, block_tokens, 12);
static_assert(sizeof(lk_context_info) == 48, "lk_context_info layout is part of the ABI");
LK_PIN(lk_context_info, backend, 0);
LK_PIN(lk_context_info, n_ctx, 4);
LK_PIN(lk_context_info, n_batch, 8);
LK_PIN(lk_context_info, n_threads, 12);
LK_PIN(lk_context_info, n_past, 16);
LK_PIN(lk_context_info, n_pending, 20);
LK_PIN(lk_context_info, cuda_device, 24);
LK_PIN(lk_context_info, cpu_kernel, 28);
LK_PIN(lk_context_info, cuda_matmul, 32);
LK_PIN(lk_context_info, cuda_attention, 36);
LK_PIN(lk_context_info, cuda_graphs, 40);
LK_PIN(lk_context_info, kv_type, 44);
static_assert(sizeof(lk_batch) == 24, "lk_batch layout is part of the ABI");
LK_PIN(lk_batch, tokens, 0);
LK_PIN(lk_batch, parents, 8);
LK_PIN(lk_batch, n_tokens, 16);
LK_PIN(lk_batch, logits, 20);
static_assert(sizeof(lk_stage_time) == 24, "lk_stage_time layout is part of the ABI");
LK_PIN(lk_stage_time, name, 0);
LK_PIN(lk_stage_time, calls, 8);
LK_PIN(lk_stage_time, milliseconds, 16);
static_assert(sizeof(lk_sampling_params) == 48, "lk_sampling_params layout is part of the ABI");
LK_PIN(lk_sampling_params, temperature, 0);
LK_PIN(lk_sampling_params, top_k, 4);
LK_PIN(lk_sampling_params, top_p, 8);
LK_PIN(lk_sampling_params, min_p, 12);
LK_PIN(lk_sampling_params, repetition_penalty, 16);
LK_PIN(lk_sampling_params, presence_penalty, 20);
LK_PIN(lk_sampling_params, frequency_penalty, 24);
LK_PIN(lk_sampling_params, n_prompt, 28);
LK_PIN(lk_sampling_params, seed, 32);
LK_PIN(lk_sampling_params, token_index, 40);
#undef LK_PIN

namespace lk {

namespace {
thread_local std::string last_error = "no error";

template <typename F>
lk_status guarded(F&& body) {
    try {
        body();
        return LK_OK;
    } catch (const Error& e) {
        set_last_error(e.what());
        return e.status();
    } catch (const std::bad_alloc&) {
        set_last_error("out of memory");
        return LK_ERR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
        set_last_error(std::string("internal error: ") + e.what());
        return LK_ERR_INTERNAL;
    } catch (...) {
        set_last_error("internal error: unknown exception");
        return LK_ERR_INTERNAL;
    }
}

void require_handle(const void* handle, const char* name) {
    require(handle != nullptr, std::string(name) + " is NULL");
}
}  // namespace

void set_last_error(const std::string& message) { last_error = message; }

}  // namespace lk

using lk::guarded;
using lk::require;
using lk::require_handle;

extern "C" {

int32_t lk_abi_version(void) { return LK_ABI_VERSION; }

const char* lk_last_error(void) { return lk::last_error.c_str(); }

const char* lk_system_info(void) {
    static const std::string info = [] {
        std::string text = std::string("lookahead native ABI ") + std::to_string(LK_ABI_VERSION) + "; cpu: " +
                           lk::cpu::matmul_kernel_name(lk::cpu::choose_matmul_kernel(LK_CPU_KERNEL_AUTO).level) + " kernels, " + std::to_string(lk::hardware_threads()) +
                           " threads; cuda: ";
#if defined(LK_HAVE_CUDA)
        std::string reason;
        const int32_t devices = lk::cuda_device_count(&reason);
        text += devices > 0 ? "built, " + std::to_string(devices) + " device(s)" : "built, no device (" + reason + ")";
#else
        text += "not built";
#endif
        return text;
    }();
    return info.c_str();
}

int32_t lk_backend_available(int32_t backend) {
    if (backend == LK_BACKEND_CPU || backend == LK_BACKEND_AUTO) return 1;
#if defined(LK_HAVE_CUDA)
    if (backend == LK_BACKEND_CUDA) return lk::cuda_device_count(nullptr) > 0 ? 1 : 0;
#endif
    return 0;
}

lk_status lk_measure_read_bandwidth(int32_t n_threads, double* out_gbps) {
    return guarded([&] {
        require_handle(out_gbps, "out_gbps");
        lk::require(n_threads >= 1 && n_threads <= 1024, "n_threads must be between 1 and 1024");
        *out_gbps = lk::cpu::measure_read_bandwidth(n_threads);
    });
}

lk_model_params lk_model_default_params(void) {
    lk_model_params p{};
    p.rms_norm_eps = 1e-5f;
    p.rope_theta = 10000.0f;
    return p;
}

lk_context_params lk_context_default_params(void) { return lk_context_params{}; }

lk_status lk_model_init(const lk_model_params* params, lk_model** out_model) {
    return guarded([&] {
        require_handle(params, "params");
        require_handle(out_model, "out_model");
        *out_model = nullptr;
        *out_model = new lk_model(*params);
    });
}

lk_status lk_model_set_tensor(lk_model* model, int32_t kind, int32_t layer, int32_t dtype, int64_t rows, int64_t cols,
                              const void* data) {
    return guarded([&] {
        require_handle(model, "model");
        model->set_tensor(kind, layer, dtype, rows, cols, data);
    });
}

lk_status lk_model_set_rope_frequencies(lk_model* model, const float* inv_freq, int32_t count) {
    return guarded([&] {
        require_handle(model, "model");
        model->set_rope_frequencies(inv_freq, count);
    });
}

void lk_model_free(lk_model* model) { delete model; }

lk_status lk_context_init(lk_model* model, const lk_context_params* params, lk_context** out_context) {
    return guarded([&] {
        require_handle(model, "model");
        require_handle(params, "params");
        require_handle(out_context, "out_context");
        *out_context = nullptr;
        *out_context = new lk_context(*model, *params);
    });
}

void lk_context_free(lk_context* context) { delete context; }

lk_status lk_context_get_info(const lk_context* context, lk_context_info* out_info) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(out_info, "out_info");
        *out_info = context->info();
    });
}

lk_status lk_context_eval(lk_context* context, const lk_batch* batch) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(batch, "batch");
        context->eval(*batch);
    });
}

lk_status lk_context_get_logits(lk_context* context, int32_t node, const float** out_logits) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(out_logits, "out_logits");
        *out_logits = nullptr;
        *out_logits = context->logits(node);
    });
}

lk_status lk_context_commit(lk_context* context, const int32_t* nodes, int32_t n_nodes) {
    return guarded([&] {
        require_handle(context, "context");
        context->commit(nodes, n_nodes);
    });
}

lk_status lk_context_truncate(lk_context* context, int32_t n_past) {
    return guarded([&] {
        require_handle(context, "context");
        context->truncate(n_past);
    });
}

lk_status lk_context_decode_greedy(lk_context* context, const lk_batch* tree, int32_t* out_tokens, int32_t capacity,
                                   int32_t* out_count) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(tree, "tree");
        require_handle(out_count, "out_count");
        *out_count = 0;
        *out_count = context->decode_greedy(*tree, out_tokens, capacity);
    });
}

lk_status lk_context_decode_sample(lk_context* context, const lk_batch* tree, const lk_sampling_params* params,
                                   int32_t* out_tokens, int32_t capacity, int32_t* out_count) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(tree, "tree");
        require_handle(params, "params");
        require_handle(out_count, "out_count");
        *out_count = 0;
        *out_count = context->decode_sample(*tree, *params, out_tokens, capacity);
    });
}

lk_status lk_seq_add(lk_context* context, int32_t* out_seq) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(out_seq, "out_seq");
        *out_seq = context->seq_add();
    });
}

lk_status lk_seq_remove(lk_context* context, int32_t seq) {
    return guarded([&] {
        require_handle(context, "context");
        context->seq_remove(seq);
    });
}

lk_status lk_seq_truncate(lk_context* context, int32_t seq, int32_t n_past) {
    return guarded([&] {
        require_handle(context, "context");
        context->seq_truncate(seq, n_past);
    });
}

lk_status lk_seq_get_info(const lk_context* context, int32_t seq, lk_seq_info* out_info) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(out_info, "out_info");
        *out_info = context->seq_info(seq);
    });
}

lk_status lk_seq_fork(lk_context* context, int32_t src, int32_t n_past, int32_t* out_seq) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(out_seq, "out_seq");
        *out_seq = context->seq_fork(src, n_past);
    });
}

lk_status lk_seq_reuse_prefix(lk_context* context, int32_t seq, const int32_t* tokens, int32_t n_tokens, int32_t* out_n_reused) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(out_n_reused, "out_n_reused");
        *out_n_reused = 0;
        *out_n_reused = context->seq_reuse_prefix(seq, tokens, n_tokens);
    });
}

lk_status lk_context_get_kv_pool(const lk_context* context, lk_kv_pool_info* out_info) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(out_info, "out_info");
        *out_info = context->kv_pool_info();
    });
}

lk_status lk_seq_prefill(lk_context* context, int32_t seq, const int32_t* tokens, int32_t n_tokens) {
    return guarded([&] {
        require_handle(context, "context");
        context->seq_prefill(seq, tokens, n_tokens);
    });
}

lk_status lk_context_decode_greedy_seqs(lk_context* context, const lk_seq_batch* batch, int32_t* out_tokens, int32_t* out_counts) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(batch, "batch");
        context->decode_greedy_seqs(*batch, out_tokens, out_counts);
    });
}

lk_status lk_context_decode_sample_seqs(lk_context* context, const lk_seq_batch* batch, const lk_sampling_params* params,
                                        int32_t* out_tokens, int32_t* out_counts) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(batch, "batch");
        context->decode_sample_seqs(*batch, params, out_tokens, out_counts);
    });
}

lk_status lk_context_set_profiling(lk_context* context, int32_t mode) {
    return guarded([&] {
        require_handle(context, "context");
        lk::require(mode == LK_PROFILE_OFF || mode == LK_PROFILE_STAGES || mode == LK_PROFILE_DEVICE,
                    "profiling mode must be LK_PROFILE_OFF (0), LK_PROFILE_STAGES (1) or LK_PROFILE_DEVICE (2), got " +
                        std::to_string(mode));
        context->set_profiling(mode);
    });
}

lk_status lk_context_get_profile(const lk_context* context, lk_stage_time* out_stages, int32_t capacity, int32_t* out_count) {
    return guarded([&] {
        require_handle(context, "context");
        require_handle(out_count, "out_count");
        lk::require(capacity >= 0, "capacity must not be negative");
        if (capacity > 0) require_handle(out_stages, "out_stages");
        *out_count = context->profile(out_stages, capacity);
    });
}

}  // extern "C"
