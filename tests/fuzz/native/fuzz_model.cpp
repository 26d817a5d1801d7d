// libFuzzer target: model creation from arbitrary parameters and tensors of arbitrary kind, layer, dtype
// (the quantized block formats included), shape and bytes (NaNs and infinities included), then a context and one step when the model is complete.
// Sizes are kept small so that every accepted model is cheap; the checks must refuse the rest by status.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_input.h"
#include "lookahead.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    lk_fuzz::Input in(data, size);
    lk_model_params p{};
    p.vocab_size = in.in(-1, 40);
    // Widths of whole quantization blocks (32, 256) now and then, so that quantized matrices are accepted.
    const int32_t block_widths[] = {32, 256};
    p.hidden_size = in.byte() % 4 == 0 ? block_widths[in.byte() % 2] : in.in(-1, 20);
    p.intermediate_size = in.byte() % 4 == 0 ? block_widths[in.byte() % 2] : in.in(-1, 24);
    p.n_layers = in.in(-1, 4);
    p.n_heads = in.in(-1, 6);
    p.n_kv_heads = in.in(-1, 4);
    p.head_dim = in.in(-1, 10);
    p.max_context = in.in(-1, 40);
    const float eps[] = {1e-5f, 0.0f, -1.0f, __builtin_nanf(""), __builtin_inff()};
    p.rms_norm_eps = eps[in.byte() % 5];
    const float theta[] = {10000.0f, 1.0f, 0.5f, __builtin_nanf("")};
    p.rope_theta = theta[in.byte() % 4];
    p.flags = in.byte() % 5;
    p.reserved = in.byte() % 8 == 0 ? 1 : 0;
    lk_model* model = nullptr;
    if (lk_model_init(&p, &model) != LK_OK) {
        if (model != nullptr) __builtin_trap();
        return 0;
    }
    // Tensors: mostly the shapes the kind needs, from the input's own bytes.
    for (int t = 0; t < 64 && !in.done(); ++t) {
        const int32_t kind = in.in(-1, LK_TENSOR_KIND_COUNT + 2), layer = in.in(-1, p.n_layers + 2), dtype = in.in(-1, 11);  // every lk_dtype, and 9 unknown
        int64_t rows = in.in(0, 41), cols = in.in(0, 25) + (in.byte() % 8 == 0 ? 256 : 0);
        if (in.byte() % 2 == 0) {
            const int64_t h = p.hidden_size, q = int64_t{p.n_heads} * p.head_dim, kv = int64_t{p.n_kv_heads} * p.head_dim;
            const int64_t f = p.intermediate_size, v = p.vocab_size;
            const int64_t shapes[LK_TENSOR_KIND_COUNT][2] = {{v, h}, {h, 1}, {v, h}, {h, 1}, {q, h}, {kv, h}, {kv, h}, {h, q},
                                                             {q, 1}, {kv, 1}, {kv, 1}, {h, 1}, {f, h}, {f, h}, {h, f}};
            if (kind >= 0 && kind < LK_TENSOR_KIND_COUNT) {
                rows = shapes[kind][0];
                cols = shapes[kind][1];
            }
        }
        std::vector<uint8_t> bytes(static_cast<size_t>(rows * cols * 4) + 1);
        for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = in.done() ? static_cast<uint8_t>(i * 37 + 11) : in.byte();
        // Plausible small values unless the input asks for raw bytes (which may hold NaN or infinity).
        if (in.byte() % 4 != 0) {
            for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
                const float value = static_cast<float>(static_cast<int8_t>(bytes[i])) / 256.0f;
                std::memcpy(bytes.data() + i, &value, 4);
            }
        }
        lk_model_set_tensor(model, kind, layer, dtype, rows, cols, bytes.data() + in.byte() % 2);  // aligned or not
    }
    lk_context_params cp = lk_context_default_params();
    cp.backend = LK_BACKEND_CPU;
    cp.n_ctx = in.in(0, 40);
    cp.n_batch = in.in(0, 8);
    cp.n_threads = 1;
    cp.cpu_kernel = in.in(0, 6);  // 5 is out of range: refused by name
    cp.cuda_graphs = in.in(0, 4);  // ignored by the CPU backend, 3 refused
    lk_context* context = nullptr;
    if (lk_context_init(model, &cp, &context) == LK_OK) {
        const int32_t tokens[] = {0, 1, 2, 3};
        const int32_t parents[] = {-1, 0, 0, 1};
        lk_batch tree{tokens, parents, 4, LK_LOGITS_NONE};
        int32_t out[4];
        int32_t count = 0;
        lk_context_decode_greedy(context, &tree, out, 4, &count);
        lk_context_free(context);
    }
    lk_model_free(model);
    return 0;
}
