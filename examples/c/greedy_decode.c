/*
 * greedy_decode.c - the C ABI end to end, in C: a tiny model with deterministic weights, a context,
 * prefill, plain greedy steps, then the same generation again with lookahead steps over a draft tree
 * (built here from the tokens the plain run produced, the best case), and a check that both emit the
 * same tokens. Built and run as the ctest "c_api_example"; exits non-zero on any failure.
 *
 *   cc -std=c11 greedy_decode.c -I native/include -L artifacts/native/lib -llookahead -lm
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lookahead.h"

enum { kHidden = 32, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kFfn = 64, kLayers = 2, kVocab = 61 };
enum { kPromptLength = 5, kGenerate = 24, kDraftDepth = 4 };

static int check(lk_status status, const char* what) {
    if (status == LK_OK) return 1;
    fprintf(stderr, "%s failed (%d): %s\n", what, (int)status, lk_last_error());
    return 0;
}

/* Fills a tensor of rows x cols floats with a fixed pseudo-random pattern (norm weights: 1). */
static int set_tensor(lk_model* model, int32_t kind, int32_t layer, int64_t rows, int64_t cols, uint32_t* state) {
    float* data = malloc((size_t)(rows * cols) * sizeof(float));
    if (!data) return 0;
    for (int64_t i = 0; i < rows * cols; ++i) {
        *state = *state * 1664525u + 1013904223u;
        data[i] = cols == 1 ? 1.0f : ((float)(*state >> 8) / 16777216.0f - 0.5f) * 0.6f;
    }
    const int ok = check(lk_model_set_tensor(model, kind, layer, LK_DTYPE_F32, rows, cols, data), "lk_model_set_tensor");
    free(data);
    return ok;
}

static lk_model* build_model(void) {
    lk_model_params p = lk_model_default_params();
    p.vocab_size = kVocab;
    p.hidden_size = kHidden;
    p.intermediate_size = kFfn;
    p.n_layers = kLayers;
    p.n_heads = kHeads;
    p.n_kv_heads = kKvHeads;
    p.head_dim = kHeadDim;
    p.max_context = 128;
    lk_model* model = NULL;
    if (!check(lk_model_init(&p, &model), "lk_model_init")) return NULL;
    const int q_dim = kHeads * kHeadDim, kv_dim = kKvHeads * kHeadDim;
    uint32_t state = 7;
    int ok = set_tensor(model, LK_TENSOR_TOKEN_EMBEDDING, 0, kVocab, kHidden, &state) &&
             set_tensor(model, LK_TENSOR_OUTPUT_NORM, 0, kHidden, 1, &state) &&
             set_tensor(model, LK_TENSOR_OUTPUT, 0, kVocab, kHidden, &state);
    for (int l = 0; ok && l < kLayers; ++l) {
        ok = set_tensor(model, LK_TENSOR_ATTN_NORM, l, kHidden, 1, &state) &&
             set_tensor(model, LK_TENSOR_ATTN_Q, l, q_dim, kHidden, &state) &&
             set_tensor(model, LK_TENSOR_ATTN_K, l, kv_dim, kHidden, &state) &&
             set_tensor(model, LK_TENSOR_ATTN_V, l, kv_dim, kHidden, &state) &&
             set_tensor(model, LK_TENSOR_ATTN_OUTPUT, l, kHidden, q_dim, &state) &&
             set_tensor(model, LK_TENSOR_FFN_NORM, l, kHidden, 1, &state) &&
             set_tensor(model, LK_TENSOR_FFN_GATE, l, kFfn, kHidden, &state) &&
             set_tensor(model, LK_TENSOR_FFN_UP, l, kFfn, kHidden, &state) &&
             set_tensor(model, LK_TENSOR_FFN_DOWN, l, kHidden, kFfn, &state);
    }
    if (!ok) {
        lk_model_free(model);
        return NULL;
    }
    return model;
}

/* Prefills all prompt tokens but the last, which is the root of the first step. */
static int prefill(lk_context* ctx, const int32_t* prompt) {
    const lk_batch chain = {prompt, NULL, kPromptLength - 1, LK_LOGITS_NONE};
    return check(lk_context_eval(ctx, &chain), "lk_context_eval") &&
           check(lk_context_commit(ctx, NULL, kPromptLength - 1), "lk_context_commit");
}

/* Plain greedy decoding: one one-node tree per token. */
static int plain_greedy(lk_context* ctx, const int32_t* prompt, int32_t* out) {
    if (!prefill(ctx, prompt)) return 0;
    int32_t root = prompt[kPromptLength - 1];
    for (int n = 0; n < kGenerate; ++n) {
        const lk_batch tree = {&root, NULL, 1, LK_LOGITS_NONE};
        int32_t count = 0;
        if (!check(lk_context_decode_greedy(ctx, &tree, &out[n], 1, &count), "lk_context_decode_greedy")) return 0;
        root = out[n];
    }
    return 1;
}

/* Lookahead: each step's tree is the root, a chain of the next kDraftDepth expected tokens and one wrong
   sibling at depth 1, so a step accepts the chain and emits up to kDraftDepth + 1 tokens. */
static int lookahead_greedy(lk_context* ctx, const int32_t* prompt, const int32_t* expected, int32_t* out, int* steps) {
    if (!prefill(ctx, prompt)) return 0;
    int32_t root = prompt[kPromptLength - 1];
    int produced = 0;
    *steps = 0;
    while (produced < kGenerate) {
        int32_t tokens[kDraftDepth + 2], parents[kDraftDepth + 2];
        int n = 1;
        tokens[0] = root;
        parents[0] = -1;
        for (int d = 0; d < kDraftDepth && produced + d < kGenerate - 1; ++d, ++n) {
            tokens[n] = expected[produced + d];
            parents[n] = n - 1;
        }
        tokens[n] = (expected[produced] + 1) % kVocab; /* a sibling the model rejects */
        parents[n] = 0;
        ++n;
        int32_t emitted[kDraftDepth + 2];
        int32_t count = 0;
        const lk_batch tree = {tokens, parents, n, LK_LOGITS_NONE};
        if (!check(lk_context_decode_greedy(ctx, &tree, emitted, kDraftDepth + 2, &count), "lk_context_decode_greedy"))
            return 0;
        for (int i = 0; i < count && produced < kGenerate; ++i) out[produced++] = emitted[i];
        root = out[produced - 1];
        ++*steps;
    }
    return 1;
}

int main(void) {
    printf("%s\n", lk_system_info());
    if (lk_abi_version() != LK_ABI_VERSION) {
        fprintf(stderr, "library ABI %d, header ABI %d\n", (int)lk_abi_version(), LK_ABI_VERSION);
        return 1;
    }
    lk_model* model = build_model();
    if (!model) return 1;
    lk_context_params cp = lk_context_default_params();
    cp.backend = LK_BACKEND_CPU;
    cp.n_ctx = 128;
    cp.n_threads = 1;
    lk_context* ctx = NULL;
    if (!check(lk_context_init(model, &cp, &ctx), "lk_context_init")) return 1;

    const int32_t prompt[kPromptLength] = {1, 17, 42, 5, 33};
    int32_t plain[kGenerate], drafted[kGenerate];
    int steps = 0, ok = plain_greedy(ctx, prompt, plain) && check(lk_context_truncate(ctx, 0), "lk_context_truncate") &&
                        lookahead_greedy(ctx, prompt, plain, drafted, &steps);
    if (ok && memcmp(plain, drafted, sizeof plain) != 0) {
        fprintf(stderr, "lookahead emitted different tokens from plain greedy decoding\n");
        ok = 0;
    }
    if (ok) printf("%d tokens: plain greedy in %d steps, lookahead in %d steps, identical\n", kGenerate, kGenerate, steps);
    lk_context_free(ctx);
    lk_model_free(model);
    return ok ? 0 : 1;
}
