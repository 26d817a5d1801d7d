// libFuzzer target: arbitrary sequences of C API calls on one context (batches, greedy and sampled draft
// trees, commits, truncation, logits, profiling, and the sequence calls over a KV pool small enough to run
// out) with valid and invalid arguments mixed. Every call must return a status;
// ASan and UBSan turn any out-of-bounds access or undefined behaviour into a crash.
#include <cstdint>
#include <vector>

#include "fuzz_input.h"
#include "lookahead.h"
#include "test_model.h"

namespace {

constexpr int32_t kContext = 32;
constexpr int32_t kBatch = 8;
constexpr int32_t kSequences = 3;
constexpr int32_t kPoolTokens = 64;  // 4 blocks: fewer than 3 full sequences need

lk_context* shared_context() {
    static lk_context* context = [] {
        const lk_model_params p = lk_test::small_params(16, 2, 1, 2, 29);
        lk_model* model = nullptr;
        if (lk_model_init(&p, &model) != LK_OK || lk_test::fill_random(model, p, LK_DTYPE_BF16, 7) != LK_OK) __builtin_trap();
        lk_context_params cp = lk_test::context_params(LK_BACKEND_CPU, kContext, kBatch, 1);
        cp.n_seq_max = kSequences;
        cp.n_kv_tokens = kPoolTokens;
        lk_context* created = nullptr;
        if (lk_context_init(model, &cp, &created) != LK_OK) __builtin_trap();
        return created;  // lives for the process, as the model does
    }();
    return context;
}

// A batch of up to kBatch + 2 nodes: tokens around the vocabulary's edges, parents a chain, a random tree
// or arbitrary values, the logits mode sometimes unknown, the token array sometimes missing.
struct Batch {
    std::vector<int32_t> tokens, parents;
    lk_batch batch{};

    explicit Batch(lk_fuzz::Input& in) {
        const int32_t n = in.in(0, kBatch + 3);
        for (int32_t i = 0; i < n; ++i) tokens.push_back(in.in(-1, 31));
        const uint8_t shape = in.byte() % 4;
        for (int32_t i = 0; i < n && shape != 0; ++i) {
            if (shape == 3) parents.push_back(in.in(-2, 12));
            else parents.push_back(i == 0 ? -1 : in.in(0, i));
        }
        batch.tokens = in.byte() % 16 == 0 ? nullptr : tokens.data();
        batch.parents = shape == 0 ? nullptr : parents.data();
        batch.n_tokens = n;
        batch.logits = in.in(0, 4);
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    lk_context* context = shared_context();
    // Every input starts from sequence 0 alone and empty.
    for (int32_t seq = 0; seq < kSequences; ++seq) lk_seq_remove(context, seq);
    int32_t first = -1;
    if (lk_seq_add(context, &first) != LK_OK || first != 0) __builtin_trap();
    lk_fuzz::Input in(data, size);
    for (int step = 0; step < 48 && !in.done(); ++step) {
        switch (in.byte() % 11) {
            case 0: {
                Batch b(in);
                lk_context_eval(context, &b.batch);
                break;
            }
            case 1: {
                Batch b(in);
                const int32_t capacity = in.in(-1, 14);
                std::vector<int32_t> out(capacity > 0 ? capacity : 1);
                int32_t count = -1;
                lk_status status;
                if (in.byte() % 2 == 0) {
                    status = lk_context_decode_greedy(context, &b.batch, out.data(), capacity, &count);
                } else {
                    // Sampling settings around and outside their ranges.
                    const float temperatures[] = {0.0f, 0.5f, 1.0f, 3.0f, -1.0f, __builtin_nanf("")};
                    const float fractions[] = {1.0f, 0.5f, 0.05f, 0.0f, 1.5f};
                    lk_sampling_params p{};
                    p.temperature = temperatures[in.byte() % 6];
                    p.top_k = in.in(-1, 34);
                    p.top_p = fractions[in.byte() % 5];
                    p.min_p = fractions[(in.byte() + 3) % 5];
                    p.repetition_penalty = fractions[in.byte() % 5] + 0.5f;
                    p.presence_penalty = in.in(-2, 5) * 0.5f;
                    p.frequency_penalty = in.in(-2, 5) * 0.25f;
                    p.n_prompt = in.in(-1, kContext + 2);
                    p.seed = in.byte();
                    p.token_index = in.in(-1, 64);
                    status = lk_context_decode_sample(context, &b.batch, &p, out.data(), capacity, &count);
                }
                if (status == LK_OK) {
                    if (count < 1 || count > capacity) __builtin_trap();
                    for (int32_t j = 0; j < count; ++j)
                        if (out[j] < 0 || out[j] >= 29) __builtin_trap();
                }
                break;
            }
            case 2: {
                const int32_t n = in.in(-1, 12);
                std::vector<int32_t> nodes;
                for (int32_t j = 0; j < n; ++j) nodes.push_back(j == 0 && in.byte() % 4 != 0 ? 0 : in.in(-1, 12));
                lk_context_commit(context, in.byte() % 3 == 0 || nodes.empty() ? nullptr : nodes.data(), n);
                break;
            }
            case 3:
                lk_context_truncate(context, in.in(-2, kContext + 5));
                break;
            case 4: {
                const float* logits = nullptr;
                if (lk_context_get_logits(context, in.in(-1, kBatch + 2), &logits) == LK_OK) {
                    volatile float sum = logits[0] + logits[28];  // every one of vocab_size floats must be readable
                    (void)sum;
                }
                break;
            }
            case 6: {
                int32_t seq = -1;
                if (lk_seq_add(context, &seq) == LK_OK && (seq < 0 || seq >= kSequences)) __builtin_trap();
                break;
            }
            case 7:
                lk_seq_remove(context, in.in(-1, kSequences + 2));
                break;
            case 8:
                lk_seq_truncate(context, in.in(-1, kSequences + 2), in.in(-2, kContext + 5));
                break;
            case 9: {
                Batch b(in);
                lk_seq_prefill(context, in.in(-1, kSequences + 2), b.batch.tokens, b.batch.n_tokens);
                break;
            }
            case 10: {
                // Several sequences' trees: seq ids mostly in runs, parents mostly valid, sometimes not.
                const int32_t n = in.in(0, kBatch + 3);
                std::vector<int32_t> tokens, parents, seqs;
                int32_t run_seq = in.in(-1, kSequences + 1), run_first = 0;
                for (int32_t i = 0; i < n; ++i) {
                    if (i > 0 && in.byte() % 3 == 0) {
                        run_seq = in.in(-1, kSequences + 1);
                        run_first = i;
                    }
                    tokens.push_back(in.in(-1, 31));
                    seqs.push_back(run_seq);
                    parents.push_back(in.byte() % 8 == 0 ? in.in(-2, 12) : (i == run_first ? -1 : in.in(run_first, i - run_first)));
                }
                std::vector<int32_t> out(n > 0 ? n : 1, -5), counts(n > 0 ? n : 1, -5);
                const lk_seq_batch batch{tokens.data(), parents.data(), seqs.data(), n, in.byte() % 16 == 0 ? 1 : 0};
                if (lk_context_decode_greedy_seqs(context, &batch, out.data(), counts.data()) == LK_OK) {
                    int32_t trees = 0;
                    for (int32_t i = 0; i < n; ++i) trees += i == 0 || seqs[i] != seqs[i - 1];
                    for (int32_t k = 0; k < trees; ++k)
                        if (counts[k] < 1 || counts[k] > n) __builtin_trap();
                    for (int32_t i = 0; i < n; ++i)
                        if (out[i] != -5 && (out[i] < 0 || out[i] >= 29)) __builtin_trap();
                }
                break;
            }
            default: {
                for (int32_t seq = 0; seq < kSequences; ++seq) {
                    lk_seq_info seq_info{};
                    if (lk_seq_get_info(context, seq, &seq_info) == LK_OK &&
                        (seq_info.n_past < 0 || seq_info.n_past > kContext || seq_info.n_blocks > kPoolTokens / 16))
                        __builtin_trap();
                }
                lk_context_info info{};
                if (lk_context_get_info(context, &info) != LK_OK || info.n_past < 0 || info.n_past > kContext) __builtin_trap();
                lk_context_set_profiling(context, in.in(-1, 5));
                const int32_t capacity = in.in(-1, 12);
                std::vector<lk_stage_time> stages(capacity > 0 ? capacity : 1);
                int32_t count = 0;
                lk_context_get_profile(context, stages.data(), capacity, &count);
                break;
            }
        }
    }
    return 0;
}
