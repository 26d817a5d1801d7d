// The CPU backend: a readable Llama forward pass (in the spirit of llama2.c) over a batch of tree
// nodes, with the matrix products spread over a persistent thread pool.
//
// This file is compiled once per instruction-set variant (cpu_backend_generic.cpp, cpu_backend_avx2.cpp):
// the includer defines LK_CPU_VARIANT (a namespace name), and the compiler flags of that translation unit
// decide how the element-wise loops are vectorized. The matrix kernel is the context's choice
// (cpu::choose_matmul_kernel), passed in.
//
// The K/V cache is kept per head so that attention reads long contiguous runs: keys in blocks of 16
// slots, [layer][kv head][slot block][dim][16] (a query's scores against a block are a multiply-add over
// 16 slots, vectorized without horizontal sums), values as [layer][kv head][slot][dim]. Its elements are
// F32, F16 or BF16 (the context's kv_type); 16-bit caches halve attention's reads, which at long
// contexts and many sequences rival the weights'.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <vector>

#include "../common/backend.h"
#include "../common/forward_pass.h"
#include "../common/half.h"
#include "../common/error.h"
#include "../common/kv_pool.h"
#include "../common/quant_types.h"
#include "../common/sampled_walk.h"
#include "kernels.h"
#include "vector_ops.h"
#include "thread_pool.h"

namespace lk::LK_CPU_VARIANT {
namespace {

// Below this many multiply-adds (about 30 microseconds on one core) a job is cheaper inline than
// split over the pool, whose hand-off and join cost a few microseconds.
constexpr int64_t kParallelWork = 1 << 19;
// ... nor below this many weight bytes (with few inputs a product is a weight stream: 256 KiB is about
// 10 microseconds on one core). Above either, the pool splits the job.
constexpr int64_t kParallelBytes = 1 << 18;
// Attention does several passes (scores, softmax, weighted values) per multiply-add counted, at well
// below the matrix kernels' rate, so it is worth splitting from a smaller size.
constexpr int64_t kParallelAttentionWork = 1 << 15;
// Query rows of one attention block: their score rows stay in L1/L2 while K/V stream past.
constexpr int kAttentionRows = 16;
// Committed slots scored per pass over a block's rows: the keys' chunk (256 x head_dim floats) stays in
// L1/L2 across the rows.
constexpr int kScoreChunk = 256;

class CpuBackend final : public Backend {
public:
    CpuBackend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads, cpu::ChosenKernel kernel, int32_t n_seq_max,
               int64_t n_kv_tokens, int32_t kv_type)
        : model_(model), p_(model.params), pool_(n_threads), matmul_(kernel.run), kv_type_(kv_type),
          kv_element_bytes_(kv_type == LK_DTYPE_F32 ? sizeof(float) : sizeof(uint16_t)), tables_(n_seq_max), chains_(n_seq_max),
          sampled_walks_(n_seq_max) {
        choices_.cpu_kernel = kernel.level;
        const int64_t hidden = p_.hidden_size, q_dim = model.q_dim(), kv_dim = model.kv_dim();
        static_assert(kKvBlockSlots == cpu::kKeyBlock, "a KV pool block is one key block");
        const int32_t n_blocks = static_cast<int32_t>((n_kv_tokens + kKvBlockSlots - 1) / kKvBlockSlots);
        kv_blocks_ = KvBlockPool(n_blocks);
        head_slots_ = int64_t{n_blocks} * kKvBlockSlots;
        const int64_t cache_elements = int64_t{p_.n_layers} * p_.n_kv_heads * head_slots_ * p_.head_dim;
        key_cache_ = AlignedBuffer(cache_elements * kv_element_bytes_);
        value_cache_ = AlignedBuffer(cache_elements * kv_element_bytes_);
        k_ = floats(n_batch * kv_dim);
        v_ = floats(n_batch * kv_dim);
        x_ = floats(n_batch * hidden);
        xb_ = floats(n_batch * hidden);
        q_ = floats(n_batch * q_dim);
        attn_ = floats(n_batch * q_dim);
        gate_ = floats(n_batch * int64_t{p_.intermediate_size});
        up_ = floats(n_batch * int64_t{p_.intermediate_size});
        logits_ = floats(n_batch * int64_t{p_.vocab_size});
        const int64_t widest_input = std::max({hidden, q_dim, int64_t{p_.intermediate_size}});
        if (has_matrices_where(model, is_bf16)) {
            rounded_ = floats(n_batch * widest_input);
            packed_ = AlignedBuffer(n_batch * widest_input * sizeof(uint16_t));
        }
        if (has_matrices_where(model, takes_q8_0_inputs))
            q8_inputs_ = AlignedBuffer(n_batch * (widest_input / kQ8Block) * sizeof(BlockQ8_0));
        if (has_matrices_where(model, takes_q8_k_inputs))
            q8k_inputs_ = AlignedBuffer(n_batch * (widest_input / kQkK) * sizeof(BlockQ8_K));
        score_stride_ = (int64_t{n_ctx} + 15) / 16 * 16;  // rows start 64-byte aligned
        scores_ = floats(int64_t{pool_.size()} * kAttentionRows * score_stride_);
        argmax_.resize(n_batch);
        positions_.resize(n_batch);
        node_segment_.resize(n_batch);

        const int half = p_.head_dim / 2;
        rope_cos_ = floats(int64_t{n_ctx} * half);
        rope_sin_ = floats(int64_t{n_ctx} * half);
        for (int64_t pos = 0; pos < n_ctx; ++pos) {
            for (int i = 0; i < half; ++i) {
                // float angle like the HF reference: position * inv_freq in fp32, then cos/sin.
                const float angle = static_cast<float>(pos) * model.rope_inv_freq[i];
                rope_cos_.as<float>()[pos * half + i] = std::cos(angle);
                rope_sin_.as<float>()[pos * half + i] = std::sin(angle);
            }
        }
    }

    int32_t kind() const override { return LK_BACKEND_CPU; }
    int32_t threads() const override { return pool_.size(); }

    void forward(const Tree& tree, int32_t n_past, int32_t logits_mode) override {
        forward_seqs({SeqSegment{0, 0, n_past, &tree}}, logits_mode);
    }

    void forward_seqs(const std::vector<SeqSegment>& segments, int32_t logits_mode) override {
        // Blocks for every sequence's new slots first: a pool that runs out fails the pass before any
        // write (blocks reserved for the sequences before stay theirs, unused until they grow there).
        for (const SeqSegment& segment : segments) {
            if (!own_partial_block(segment.seq, segment.n_past) ||
                !tables_[segment.seq].reserve(int64_t{segment.n_past} + segment.tree->size(), kv_blocks_))
                fail_pool_full(segment.seq);
        }
        int n = 0;
        for (int32_t k = 0; k < static_cast<int32_t>(segments.size()); ++k) {
            const SeqSegment& segment = segments[k];
            for (int i = 0; i < segment.tree->size(); ++i, ++n) {
                positions_[n] = segment.n_past + segment.tree->depth(i);
                node_segment_[n] = k;
            }
        }
        Pass pass{*this, segments, n};
        run_forward_pass(pass, profile_, p_.n_layers, n, logits_mode);
    }

    const float* logits(int32_t node) override { return logits_.as<float>() + int64_t{node} * p_.vocab_size; }

    int32_t verify_greedy(const Tree& tree, int32_t* path, int32_t* bonus) override {
        return verify_greedy_seq(SeqSegment{0, 0, 0, &tree}, path, bonus);
    }

    int32_t verify_greedy_seq(const SeqSegment& segment, int32_t* path, int32_t* bonus) override {
        StageProfile::Scope stage(profile_, Stage::kVerify);
        const Tree& tree = *segment.tree;
        for (int i = 0; i < tree.size(); ++i) argmax_[i] = cpu::argmax(logits(segment.first + i), p_.vocab_size);
        const int32_t length = tree.greedy_path(argmax_.data(), path);
        *bonus = argmax_[path[length - 1]];
        return length;
    }

    int32_t verify_sample(const Tree& tree, const SampledStep& step, int32_t* path, int32_t* bonus) override {
        return verify_sample_seq(SeqSegment{0, 0, 0, &tree}, step, path, bonus);
    }

    int32_t verify_sample_seq(const SeqSegment& segment, const SampledStep& step, int32_t* path, int32_t* bonus) override {
        StageProfile::Scope stage(profile_, Stage::kVerify);
        // A walker per sequence keeps that sequence's penalty counts from step to step; made on first use.
        std::unique_ptr<SampledWalk>& walker = sampled_walks_[segment.seq];
        if (!walker) walker = std::make_unique<SampledWalk>();
        return walker->walk(*this, *segment.tree, segment.first, step, p_.vocab_size, path, bonus);
    }

    void compact(int32_t n_past, const int32_t* path, int32_t n) override { compact_seq(0, n_past, path, n); }

    void compact_seq(int32_t seq, int32_t n_past, const int32_t* path, int32_t n) override {
        StageProfile::Scope stage(profile_, Stage::kCompact);
        with_kv_type([&]<typename T>() { compact_slots<T>(tables_[seq], n_past, path, n); });
    }

    void release_seq(int32_t seq, int32_t n_slots) override {
        tables_[seq].release_from(n_slots, kv_blocks_);
        if (chains_[seq].size() > static_cast<size_t>(n_slots / kKvBlockSlots)) chains_[seq].resize(n_slots / kKvBlockSlots);
    }

    int32_t seq_blocks(int32_t seq) const override { return tables_[seq].blocks(); }

    void publish_seq(int32_t seq, const int32_t* tokens, int32_t n_past) override {
        std::vector<BlockRef>& chain = chains_[seq];
        for (int32_t i = static_cast<int32_t>(chain.size()); i < n_past / kKvBlockSlots; ++i)
            chain.push_back(kv_blocks_.publish(i > 0 ? chain[i - 1] : BlockRef{}, tokens + int64_t{i} * kKvBlockSlots,
                                               tables_[seq].data()[i]));
    }

    int32_t reuse_prefix(int32_t seq, const int32_t* tokens, int32_t n) override {
        std::vector<BlockRef>& chain = chains_[seq];
        for (int32_t i = 0; i < n / kKvBlockSlots; ++i) {
            const BlockRef block = kv_blocks_.acquire_published(i > 0 ? chain[i - 1] : BlockRef{}, tokens + int64_t{i} * kKvBlockSlots);
            if (block.block < 0) break;
            tables_[seq].append(block.block);
            chain.push_back(block);
        }
        return static_cast<int32_t>(chain.size()) * kKvBlockSlots;
    }

    void fork_seq(int32_t src, int32_t dst, int32_t n_slots) override {
        const int32_t full = n_slots / kKvBlockSlots;
        for (int32_t i = 0; i < full; ++i) {
            kv_blocks_.retain(tables_[src].data()[i]);
            tables_[dst].append(tables_[src].data()[i]);
        }
        chains_[dst].assign(chains_[src].begin(), chains_[src].begin() + std::min<size_t>(chains_[src].size(), full));
        if (n_slots % kKvBlockSlots == 0) return;
        // The partial block is the one both sequences write into next: dst gets its own copy.
        const int32_t copy = kv_blocks_.allocate();
        if (copy < 0) {
            release_seq(dst, 0);
            fail_pool_full(dst);
        }
        copy_block(tables_[src].data()[full], copy);
        tables_[dst].append(copy);
    }

    lk_kv_pool_info pool_info() const override {
        return lk_kv_pool_info{kv_blocks_.size(), kv_blocks_.free_blocks(), kv_blocks_.cached_blocks(), kKvBlockSlots};
    }

private:
    // The stages of one forward pass over the segments' n nodes (run_forward_pass); node g belongs to
    // segment node_segment_[g] and sits at position positions_[g].
    struct Pass {
        CpuBackend& b;
        const std::vector<SeqSegment>& segments;
        int n;

        const SeqSegment& segment_of(int g) const { return segments[b.node_segment_[g]]; }

        float* x() const { return b.x_.as<float>(); }
        float* xb() const { return b.xb_.as<float>(); }
        void norm(const Tensor& weight, int first) const {
            const int64_t hidden = b.p_.hidden_size;
            for (int i = first; i < n; ++i) cpu::rms_norm(x() + i * hidden, weight.f32(), xb() + i * hidden, hidden, b.p_.rms_norm_eps);
        }

        void embed() const {
            for (int g = 0; g < n; ++g) {
                const SeqSegment& segment = segment_of(g);
                b.embed(segment.tree->token(g - segment.first), x() + int64_t{g} * b.p_.hidden_size);
            }
        }
        void attention_inputs(int l) const {
            const LayerWeights& w = b.model_.layers[l];
            const int64_t hidden = b.p_.hidden_size;
            norm(w.attn_norm, 0);
            b.attention_inputs(w, b.inputs(xb(), hidden, n, hidden, {&w.q, &w.k, &w.v}), n, b.k_.as<float>(),
                               b.v_.as<float>());
            for (const SeqSegment& segment : segments) b.store_kv(l, segment);
        }
        void attention(int l) const { b.attention(l, segments); }
        void attention_output(int l) const {
            const LayerWeights& w = b.model_.layers[l];
            const int64_t q_dim = b.model_.q_dim();
            b.project(w.o, b.inputs(b.attn_.as<float>(), q_dim, n, q_dim, {&w.o}), n, x(), b.p_.hidden_size,
                      /*accumulate=*/true);
        }
        void feed_forward(int l) const {
            const LayerWeights& w = b.model_.layers[l];
            const int64_t hidden = b.p_.hidden_size;
            norm(w.ffn_norm, 0);
            b.feed_forward_gate(w, b.inputs(xb(), hidden, n, hidden, {&w.gate, &w.up}), n);
        }
        void feed_forward_down(int l) const {
            const LayerWeights& w = b.model_.layers[l];
            const int64_t ffn = b.p_.intermediate_size;
            b.project(w.down, b.inputs(b.gate_.as<float>(), ffn, n, ffn, {&w.down}), n, x(), b.p_.hidden_size,
                      /*accumulate=*/true);
        }
        void output(int first) const {
            const int64_t hidden = b.p_.hidden_size;
            norm(b.model_.output_norm, first);
            const Tensor& head = b.model_.output_weights();
            b.project(head, b.inputs(xb() + first * hidden, hidden, n - first, hidden, {&head}), n - first,
                      b.logits_.as<float>() + int64_t{first} * b.p_.vocab_size, b.p_.vocab_size);
        }
    };

    static AlignedBuffer floats(int64_t count) { return AlignedBuffer(count * sizeof(float)); }

    // One KV head's blocked keys and its values in layer `layer` (layouts at the top of the file), as
    // elements of type T (std::byte for copies): both caches give every head the same number of elements.
    int64_t head_offset(int layer, int kv_head) const { return (int64_t{layer} * p_.n_kv_heads + kv_head) * head_slots_ * p_.head_dim; }
    template <typename T>
    T* head_keys(int layer, int kv_head) {
        return reinterpret_cast<T*>(key_cache_.as<std::byte>() + head_offset(layer, kv_head) * kv_element_bytes_);
    }
    template <typename T>
    T* head_values(int layer, int kv_head) {
        return reinterpret_cast<T*>(value_cache_.as<std::byte>() + head_offset(layer, kv_head) * kv_element_bytes_);
    }
    // Offset of key element t of a physical slot in a head's keys.
    int64_t key_index(int64_t slot, int t) const { return cpu::key_offset(p_.head_dim, slot, t); }
    [[noreturn]] void fail_pool_full(int32_t seq) const {
        fail(LK_ERR_CONTEXT_FULL, "the KV pool has no free block left for sequence " + std::to_string(seq) + " (" +
                                      std::to_string(kv_blocks_.size()) + " blocks of " + std::to_string(kKvBlockSlots) +
                                      " tokens, n_kv_tokens)");
    }

    // The block holding slot n_past, where the sequence writes next, when it also holds committed slots and
    // is shared or published (a truncation into a shared prefix): copied first, so that the write cannot
    // change another sequence's cache. False when the pool has no block for the copy.
    bool own_partial_block(int32_t seq, int32_t n_past) {
        BlockTable& table = tables_[seq];
        const int32_t i = n_past / kKvBlockSlots;
        if (n_past % kKvBlockSlots == 0 || i >= table.blocks()) return true;
        const int32_t block = table.data()[i];
        if (kv_blocks_.refs(block) == 1 && !kv_blocks_.published(block)) return true;
        const int32_t copy = kv_blocks_.allocate();
        if (copy < 0) return false;
        copy_block(block, copy);
        table.replace(i, copy, kv_blocks_);
        return true;
    }

    // Copies one pool block's keys and values, every layer and head.
    void copy_block(int32_t from, int32_t to) {
        const int64_t block_bytes = int64_t{kKvBlockSlots} * p_.head_dim * kv_element_bytes_;
        for (int l = 0; l < p_.n_layers; ++l) {
            for (int h = 0; h < p_.n_kv_heads; ++h) {
                std::memcpy(head_keys<std::byte>(l, h) + to * block_bytes, head_keys<std::byte>(l, h) + from * block_bytes, block_bytes);
                std::memcpy(head_values<std::byte>(l, h) + to * block_bytes, head_values<std::byte>(l, h) + from * block_bytes, block_bytes);
            }
        }
    }

    // Calls f.template operator()<T>() with T the cache's element type.
    template <typename F>
    void with_kv_type(F&& f) {
        switch (kv_type_) {
            case LK_DTYPE_F16: return f.template operator()<cpu::Half>();
            case LK_DTYPE_BF16: return f.template operator()<cpu::BFloat16>();
            default: return f.template operator()<float>();
        }
    }

    // Moves the accepted nodes' keys and values (pending slots n_past + path[j]) to slots n_past + j.
    template <typename T>
    void compact_slots(const BlockTable& table, int32_t n_past, const int32_t* path, int32_t n) {
        const int d = p_.head_dim;
        // path[j] >= j and increasing, so copying in order never overwrites a slot still to be read.
        for (int l = 0; l < p_.n_layers; ++l) {
            for (int h = 0; h < p_.n_kv_heads; ++h) {
                T* keys = head_keys<T>(l, h);
                T* values = head_values<T>(l, h);
                for (int j = 0; j < n; ++j) {
                    if (path[j] == j) continue;
                    const int64_t to = table.physical_slot(int64_t{n_past} + j), from = table.physical_slot(int64_t{n_past} + path[j]);
                    for (int t = 0; t < d; ++t) keys[key_index(to, t)] = keys[key_index(from, t)];
                    std::memcpy(values + to * d, values + from * d, d * sizeof(T));
                }
            }
        }
    }

    // The sequence's view of one head's cache through its block table.
    template <typename T>
    cpu::PagedHead<T> paged_head(int layer, int kv_head, int32_t seq) {
        return cpu::PagedHead<T>{head_keys<T>(layer, kv_head), head_values<T>(layer, kv_head), tables_[seq].data(), p_.head_dim};
    }

    // Scatters a segment's rotated keys and its values (k_, v_: one row per batch node) into its
    // sequence's slots n_past .. n_past + n - 1, rounded to the cache's element type.
    void store_kv(int layer, const SeqSegment& segment) {
        with_kv_type([&]<typename T>() { store_kv_as<T>(layer, segment); });
    }
    template <typename T>
    void store_kv_as(int layer, const SeqSegment& segment) {
        const int d = p_.head_dim;
        const int64_t kv_dim = model_.kv_dim();
        const BlockTable& table = tables_[segment.seq];
        for (int h = 0; h < p_.n_kv_heads; ++h) {
            T* keys = head_keys<T>(layer, h);
            T* values = head_values<T>(layer, h);
            for (int i = 0; i < segment.tree->size(); ++i) {
                const int64_t row = int64_t{segment.first} + i;
                const float* k = k_.as<float>() + row * kv_dim + h * d;
                const float* v = v_.as<float>() + row * kv_dim + h * d;
                const int64_t slot = table.physical_slot(int64_t{segment.n_past} + i);
                for (int t = 0; t < d; ++t) keys[key_index(slot, t)] = cpu::narrow<T>(k[t]);
                for (int t = 0; t < d; ++t) values[slot * d + t] = cpu::narrow<T>(v[t]);
            }
        }
    }

    static void add(float* y, const float* b, int64_t n) {
        for (int64_t i = 0; i < n; ++i) y[i] += b[i];
    }

    void embed(int32_t token, float* out) const {
        const Tensor& e = model_.token_embedding;
        const int64_t hidden = p_.hidden_size, offset = int64_t{token} * hidden;
        if (is_quantized(e.dtype)) {
            dequantize_row(e.dtype, e.data.as<unsigned char>() + int64_t{token} * row_bytes(e.dtype, hidden), hidden, out);
            return;
        }
        switch (e.dtype) {
            case LK_DTYPE_F32: std::memcpy(out, e.f32() + offset, hidden * sizeof(float)); break;
            case LK_DTYPE_F16:
                for (int64_t i = 0; i < hidden; ++i) out[i] = f16_to_float(e.data.as<uint16_t>()[offset + i]);
                break;
            default:
                for (int64_t i = 0; i < hidden; ++i) out[i] = bf16_to_float(e.data.as<uint16_t>()[offset + i]);
                break;
        }
    }

    void rotate(float* head, int64_t pos) const {
        const int half = p_.head_dim / 2;
        cpu::rope_rotate(head, rope_cos_.as<float>() + pos * half, rope_sin_.as<float>() + pos * half, half);
    }

    // One batch of matrix inputs: n rows of `cols` floats at x (row stride `stride`); when a BF16 weight
    // reads them, the same rows rounded to BF16, as floats and packed; when a quantized weight does, the
    // rows quantized to Q8_0 or Q8_K as its products take them (see cpu::MatmulArgs).
    struct Inputs {
        const float* x;
        int64_t stride;
        const float* rounded = nullptr;  // rows of cols
        const uint16_t* packed = nullptr;
        const BlockQ8_0* q8 = nullptr;   // rows of cols / 32 blocks
        const BlockQ8_K* q8k = nullptr;  // rows of cols / 256 blocks
    };

    static bool any_where(std::initializer_list<const Tensor*> weights, bool (*holds)(int32_t)) {
        return std::any_of(weights.begin(), weights.end(), [holds](const Tensor* w) { return holds(w->dtype); });
    }

    // Whether any matrix input is multiplied by a matrix whose dtype holds: only then are that kind of
    // input buffers allocated.
    static bool has_matrices_where(const Model& model, bool (*holds)(int32_t)) {
        if (holds(model.output_weights().dtype)) return true;
        return std::any_of(model.layers.begin(), model.layers.end(), [holds](const LayerWeights& w) {
            return any_where({&w.q, &w.k, &w.v, &w.o, &w.gate, &w.up, &w.down}, holds);
        });
    }

    static bool is_bf16(int32_t dtype) { return dtype == LK_DTYPE_BF16; }

    // The rounding and quantizing are a few operations per input element, next to a whole weight row per
    // element in the product; prefill's batches do them over the pool.
    Inputs inputs(const float* x, int64_t stride, int n, int64_t cols, std::initializer_list<const Tensor*> weights) {
        Inputs result{x, stride};
        if (any_where(weights, is_bf16)) {
            float* rounded = rounded_.as<float>();
            uint16_t* packed = packed_.as<uint16_t>();
            parallel_rows(n, 1, n * cols / 8, 0, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) cpu::round_to_bf16(x + i * stride, cols, rounded + i * cols, packed + i * cols);
            });
            result.rounded = rounded;
            result.packed = packed;
        }
        if (any_where(weights, takes_q8_0_inputs)) {
            BlockQ8_0* q8 = q8_inputs_.as<BlockQ8_0>();
            parallel_rows(n, 1, n * cols / 8, 0, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) quantize_row_q8_0(x + i * stride, cols, q8 + i * (cols / kQ8Block));
            });
            result.q8 = q8;
        }
        if (any_where(weights, takes_q8_k_inputs)) {
            BlockQ8_K* q8k = q8k_inputs_.as<BlockQ8_K>();
            parallel_rows(n, 1, n * cols / 8, 0, [&](int64_t begin, int64_t end) {
                for (int64_t i = begin; i < end; ++i) quantize_row_q8_k(x + i * stride, cols, q8k + i * (cols / kQkK));
            });
            result.q8k = q8k;
        }
        return result;
    }

    // y[j] = W x[j] (or y[j] += W x[j]: the residual add, fused) for the n_x input rows.
    void project(const Tensor& w, const Inputs& x, int n_x, float* y, int64_t y_stride, bool accumulate = false) {
        parallel_rows(w.rows, 16, w.rows * w.cols * n_x, w.data.size(), [&](int64_t begin, int64_t end) {
            matmul_rows(w, x, n_x, y, y_stride, accumulate, begin, end);
        });
    }

    void matmul_rows(const Tensor& w, const Inputs& x, int n_x, float* y, int64_t y_stride, bool accumulate,
                     int64_t begin, int64_t end) const {
        const bool bf16 = w.dtype == LK_DTYPE_BF16;
        const cpu::MatmulArgs args{w.data.data(), w.dtype, w.cols, bf16 ? x.rounded : x.x, bf16 ? w.cols : x.stride,
                                   y, y_stride, n_x, accumulate, bf16 ? x.packed : nullptr,
                                   takes_q8_0_inputs(w.dtype) ? x.q8 : nullptr, takes_q8_k_inputs(w.dtype) ? x.q8k : nullptr};
        matmul_(args, begin, end);
    }

    // Runs fn over [0, rows) in shrinking pieces whose boundaries are multiples of grain, taken
    // dynamically (ThreadPool::parallel_pieces); inline when the job (multiply-adds and weight bytes
    // streamed) is too small to repay the pool's hand-off.
    template <typename F>
    void parallel_rows(int64_t rows, int64_t grain, int64_t work, int64_t weight_bytes, F&& fn) {
        if (pool_.size() == 1 || (work < kParallelWork && weight_bytes < kParallelBytes)) {
            fn(int64_t{0}, rows);
            return;
        }
        pool_.parallel_pieces(rows, grain, fn);
    }

    // Q, K and V in one job over their stacked rows, with bias and RoPE applied by the thread that
    // produced each head (ranges are cut at head boundaries), so the pool is entered once, not three times.
    void attention_inputs(const LayerWeights& w, const Inputs& xb, int n, float* keys, float* values) {
        const int64_t hidden = p_.hidden_size, q_dim = model_.q_dim(), kv_dim = model_.kv_dim(), d = p_.head_dim;
        const bool bias = model_.has_qkv_bias();
        float* queries = q_.as<float>();
        // One stacked segment: rows [offset, offset + rows) are `weights`, written to `out` (row stride `stride`).
        auto segment = [&](const Tensor& weights, const Tensor& bias_vector, float* out, int64_t stride, int64_t offset,
                           bool rotate_heads, int64_t begin, int64_t end) {
            const int64_t lo = std::max(begin, offset) - offset, hi = std::min(end, offset + weights.rows) - offset;
            if (lo >= hi) return;
            matmul_rows(weights, xb, n, out, stride, false, lo, hi);
            for (int i = 0; i < n; ++i) {
                float* row = out + i * stride;
                if (bias) add(row + lo, bias_vector.f32() + lo, hi - lo);
                if (rotate_heads)
                    for (int64_t h = lo / d; h < hi / d; ++h) rotate(row + h * d, positions_[i]);
            }
        };
        parallel_rows(q_dim + 2 * kv_dim, d, (q_dim + 2 * kv_dim) * hidden * n, w.q.data.size() + w.k.data.size() + w.v.data.size(),
                      [&](int64_t begin, int64_t end) {
            segment(w.q, w.q_bias, queries, q_dim, 0, true, begin, end);
            segment(w.k, w.k_bias, keys, kv_dim, q_dim, true, begin, end);
            segment(w.v, w.v_bias, values, kv_dim, q_dim + kv_dim, false, begin, end);
        });
    }

    // gate = silu(W_gate x) * (W_up x), one job: each thread applies SwiGLU to the rows it just computed.
    void feed_forward_gate(const LayerWeights& w, const Inputs& xb, int n) {
        const int64_t hidden = p_.hidden_size, ffn = p_.intermediate_size;
        float* gate = gate_.as<float>();
        float* up = up_.as<float>();
        parallel_rows(ffn, 16, 2 * ffn * hidden * n, w.gate.data.size() + w.up.data.size(), [&](int64_t begin, int64_t end) {
            matmul_rows(w.gate, xb, n, gate, ffn, false, begin, end);
            matmul_rows(w.up, xb, n, up, ffn, false, begin, end);
            for (int i = 0; i < n; ++i) cpu::swiglu(gate + i * ffn + begin, up + i * ffn + begin, static_cast<int>(end - begin));
        });
    }

    // attn[i, head] = softmax over (committed slots + i's ancestors) of q.k / sqrt(d), applied to v.
    // Work is split by KV head and blocks of query rows (node, head of the group), and the committed
    // keys and values are walked in the outer loop, so each K/V row is read once per block rather than
    // once per query. Each row's arithmetic is independent of the other rows (batch invariance).
    void attention(int layer, const std::vector<SeqSegment>& segments) {
        with_kv_type([&]<typename T>() { attention_over<T>(layer, segments); });
    }
    template <typename T>
    void attention_over(int layer, const std::vector<SeqSegment>& segments) {
        const int d = p_.head_dim;
        const int group = p_.n_heads / p_.n_kv_heads;
        const int64_t q_dim = model_.q_dim();
        const float scale = 1.0f / std::sqrt(static_cast<float>(d));
        row_blocks_.clear();
        int64_t work = 0;
        for (int32_t k = 0; k < static_cast<int32_t>(segments.size()); ++k) {
            const int32_t first = segments[k].first * group, last = (segments[k].first + segments[k].tree->size()) * group;
            for (int32_t r0 = first; r0 < last; r0 += kAttentionRows) row_blocks_.push_back({k, r0, std::min(last, r0 + kAttentionRows)});
            work += int64_t{segments[k].tree->size()} * p_.n_heads * (segments[k].n_past + segments[k].tree->max_depth() + 1) * d;
        }
        const int64_t blocks = static_cast<int64_t>(row_blocks_.size());
        const int64_t tasks = int64_t{p_.n_kv_heads} * blocks;

        auto run = [&](int thread, int64_t begin, int64_t end) {
            float* scores = scores_.as<float>() + int64_t{thread} * kAttentionRows * score_stride_;
            for (int64_t task = begin; task < end; ++task) {
                const RowBlock& block = row_blocks_[task % blocks];
                const SeqSegment& segment = segments[block.segment];
                const Tree& tree = *segment.tree;
                const int32_t n_past = segment.n_past;
                const bool chain = tree.is_chain();
                const cpu::PagedHead<T> head = paged_head<T>(layer, static_cast<int>(task / blocks), segment.seq);
                const int head_base = static_cast<int>(task / blocks) * group;
                const int r0 = block.r0, r1 = block.r1;
                const float* queries[kAttentionRows];
                float* outputs[kAttentionRows];
                for (int r = r0; r < r1; ++r) {
                    const int64_t offset = int64_t{r / group} * q_dim + int64_t{head_base + r % group} * d;
                    queries[r - r0] = q_.as<float>() + offset;
                    outputs[r - r0] = attn_.as<float>() + offset;
                }

                // q.k for every committed slot, in chunks whose keys stay in L1 across the block's rows.
                for (int s0 = 0; s0 < n_past; s0 += kScoreChunk) {
                    const int s1 = std::min<int>(n_past, s0 + kScoreChunk);
                    for (int r = r0; r < r1; ++r)
                        cpu::scores_against_columns(queries[r - r0], head, s0, s1, scores + (r - r0) * score_stride_);
                }
                for (int r = r0; r < r1; ++r) {
                    float* row = scores + (r - r0) * score_stride_;
                    const int node = r / group - segment.first;
                    const int32_t* visible = tree.visible(node);
                    const int count = tree.visible_count(node);
                    // The same sums, in the same order, for the node's pending ancestors (and itself). In a
                    // chain (prefill) they are the consecutive slots n_past .. n_past + count - 1, so the
                    // vector path scores them, and their values are read as if committed.
                    if (chain) cpu::scores_against_columns(queries[r - r0], head, n_past, n_past + count, row);
                    else
                        for (int j = 0; j < count; ++j) row[n_past + j] = cpu::key_score(queries[r - r0], head, int64_t{n_past} + visible[j]);
                    const int total = n_past + count;
                    for (int s = 0; s < total; ++s) row[s] *= scale;
                    const float max_score = cpu::max_value(row, total);
                    for (int s = 0; s < total; ++s) row[s] = cpu::exp_nonpositive(row[s] - max_score);
                    const float inv_total = 1.0f / cpu::sum(row, total);
                    for (int s = 0; s < total; ++s) row[s] *= inv_total;
                    cpu::weighted_values(row, chain ? total : n_past, visible, total, head, outputs[r - r0]);
                }
            }
        };

        if (pool_.size() == 1 || tasks < 2 || work < kParallelAttentionWork) {
            run(0, 0, tasks);
            return;
        }
        pool_.run([&](int thread, int threads) {
            run(thread, tasks * thread / threads, tasks * (thread + 1) / threads);
        });
    }

    const Model& model_;
    const lk_model_params& p_;
    ThreadPool pool_;
    cpu::MatmulKernel matmul_;
    int32_t kv_type_;           // lk_dtype of the cache's elements
    int64_t kv_element_bytes_;
    // The KV cache is a pool of blocks of kKvBlockSlots slots; the sequence's block table says which of
    // them hold its slots (contiguous for a lone sequence unless a test scatters them).
    KvBlockPool kv_blocks_{0};
    std::vector<BlockTable> tables_;  // per sequence
    std::vector<std::vector<BlockRef>> chains_;  // per sequence: its published blocks as the index names them
    std::vector<int32_t> positions_, node_segment_;  // per batch node, for the current pass
    int64_t head_slots_ = 0;     // pool slots per head: n_ctx rounded up to whole blocks
    AlignedBuffer key_cache_;    // [layer][kv head][pool block][dim][kKeyBlock], elements of kv_type_
    AlignedBuffer value_cache_;  // [layer][kv head][pool block][slot in block][dim]
    AlignedBuffer k_, v_;        // the batch's new keys and values, [node][kv_dim], before they are scattered
    AlignedBuffer x_, xb_, q_, attn_, gate_, up_, logits_, scores_;
    AlignedBuffer rounded_, packed_;  // matrix inputs rounded to BF16 for BF16 weights (Inputs)
    AlignedBuffer q8_inputs_;         // matrix inputs quantized to Q8_0 for Q8_0, Q4_0 and Q5_0 weights
    AlignedBuffer q8k_inputs_;        // matrix inputs quantized to Q8_K for the k-quant weights
    int64_t score_stride_ = 0;
    AlignedBuffer rope_cos_, rope_sin_;  // [position][head_dim / 2]
    std::vector<int32_t> argmax_;
    // Attention's blocks of query rows (node, head of the group) of one segment each: a block walks one
    // sequence's committed keys.
    struct RowBlock {
        int32_t segment, r0, r1;
    };
    std::vector<RowBlock> row_blocks_;
    std::vector<std::unique_ptr<SampledWalk>> sampled_walks_;  // per sequence
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(const Model& model, int32_t n_ctx, int32_t n_batch, int32_t n_threads,
                                          cpu::ChosenKernel kernel, int32_t n_seq_max, int64_t n_kv_tokens, int32_t kv_type) {
    return std::make_unique<CpuBackend>(model, n_ctx, n_batch, n_threads, kernel, n_seq_max, n_kv_tokens, kv_type);
}

}  // namespace lk::LK_CPU_VARIANT
