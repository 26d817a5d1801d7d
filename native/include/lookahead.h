/*
 * lookahead.h - the C ABI of the Lookahead native library (the only public header).
 *
 * Conventions
 * - Every fallible call returns an lk_status: LK_OK (0) or a negative error code. On error,
 *   lk_last_error() returns a message for the calling thread.
 * - Objects are returned through out-parameters and released with the matching *_free call.
 * - The library never prints, never exits and never lets a C++ exception cross this boundary.
 * - Only fixed-width integer types cross the boundary: the enums below name the values of int32_t
 *   fields and arguments. Struct sizes and field offsets are pinned with static_assert (native) and by
 *   a managed layout test.
 * - Parameter structs start from lk_model_default_params() / lk_context_default_params(); in
 *   lk_context_params, 0 in any field means the library's choice, so a zeroed struct is valid too.
 * - A failed call leaves behind what it found: objects are unchanged, out-parameters are set to
 *   NULL or 0 where the call says so and are otherwise untouched. Calls that move a context's state
 *   (eval, commit, truncate, the fused steps) say below exactly which state they restore.
 *
 * Decoding model
 * A context holds a KV cache of committed tokens (n_past of them). lk_context_eval runs one forward
 * pass over a batch of nodes that hang below the committed context: node 0 is the root, every other
 * node names a parent with a smaller index. Node i sits at position n_past + depth(i) and attends to
 * every committed entry plus its own ancestors (itself included), nothing else. A chain batch
 * (parents == NULL) is ordinary causal prefill; a tree batch is a lookahead draft. Evaluated nodes
 * stay pending until lk_context_commit keeps a root path of them (their K/V move to consecutive
 * slots after the committed context) and drops the rest.
 */
#ifndef LOOKAHEAD_H
#define LOOKAHEAD_H

#include <stdint.h>

#if defined(_WIN32)
#  if defined(LK_BUILDING_LIBRARY)
#    define LK_API __declspec(dllexport)
#  else
#    define LK_API __declspec(dllimport)
#  endif
#else
#  define LK_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped whenever a signature, struct layout or constant below changes meaning. */
#define LK_ABI_VERSION 9  /* 2: lk_context_set_profiling, lk_context_get_profile, lk_measure_read_bandwidth;
                             3: profiling modes (LK_PROFILE_*) and the "device" stage;
                             4: LK_ERR_NON_FINITE, non-finite weights refused, argmax -1 on non-finite rows;
                             5: lk_sampling_params, lk_context_decode_sample;
                             6: enums, lk_model_default_params, lk_context_default_params, kernel choices and
                                the CUDA device in lk_context_params (no environment variables are read),
                                lk_context_info reports the choices made;
                             7: sequences (n_seq_max, n_kv_tokens, lk_seq_*), lk_seq_batch and
                                lk_context_decode_greedy_seqs;
                             8: lk_context_decode_sample_seqs, lk_seq_fork, prefix caching
                                (lk_seq_reuse_prefix, lk_kv_pool_info, lk_context_get_kv_pool);
                             9: kv_type in lk_context_params and lk_context_info; the quantized dtypes
                                LK_DTYPE_Q8_0, Q4_0, Q4_K, Q5_K, Q6_K, Q5_0 */

typedef int32_t lk_status; /* an lk_status_code */
enum lk_status_code {
    LK_OK = 0,
    LK_ERR_INVALID_ARGUMENT = -1, /* a parameter is out of range or inconsistent */
    LK_ERR_OUT_OF_MEMORY = -2,
    LK_ERR_UNSUPPORTED = -3,      /* valid request this build or model cannot serve */
    LK_ERR_CONTEXT_FULL = -4,     /* the batch does not fit in the remaining KV cache */
    LK_ERR_NO_DEVICE = -5,        /* the requested backend or device is not usable here */
    LK_ERR_INVALID_STATE = -6,    /* call order violated (e.g. commit without eval) */
    LK_ERR_INTERNAL = -7,
    LK_ERR_NON_FINITE = -8,       /* a forward pass produced NaN or infinite logits where a token was due */
};

/* Tensor element types, as stored by the caller. */
enum lk_dtype {
    LK_DTYPE_F32 = 0,
    LK_DTYPE_F16 = 1,
    LK_DTYPE_BF16 = 2,
    /* llama.cpp's block formats, bit for bit as GGUF files store them (matrices only, CPU backend); a row
       is whole blocks, so cols is a multiple of the block size. Matrix inputs are quantized per row as
       llama.cpp quantizes them (Q8_0 for Q8_0, Q4_0 and Q5_0 weights, Q8_K for the k-quants) and multiplied in
       integers per block. Not KV cache types. */
    LK_DTYPE_Q8_0 = 3, /* 32 values: an IEEE-half scale d and 32 signed bytes q; value = d * q */
    LK_DTYPE_Q4_0 = 4, /* 32 values: a half scale d and 16 bytes of nibbles q; value = d * (q - 8) */
    LK_DTYPE_Q4_K = 5, /* 256 values: half d and dmin, eight 6-bit scales and mins, 4-bit q per value */
    LK_DTYPE_Q5_K = 6, /* 256 values: as Q4_K with 5-bit q */
    LK_DTYPE_Q6_K = 7, /* 256 values: a half d, sixteen 8-bit scales, 6-bit q per value */
    LK_DTYPE_Q5_0 = 8, /* 32 values: a half scale d, 16 bytes of nibbles and 32 fifth bits q; value = d * (q - 16) */
};

/* Backends, chosen at context creation. AUTO picks CUDA when a device exists, else CPU. */
enum lk_backend_type {
    LK_BACKEND_AUTO = 0,
    LK_BACKEND_CPU = 1,
    LK_BACKEND_CUDA = 2,
};

/* Which logits lk_context_eval keeps. */
enum lk_logits_mode {
    LK_LOGITS_NONE = 0,
    LK_LOGITS_LAST = 1, /* only the last node of the batch */
    LK_LOGITS_ALL = 2,
};

/* Model flags (bits of lk_model_params.flags). */
enum lk_model_flag {
    LK_MODEL_TIED_OUTPUT = 1, /* the output head reuses the token embedding */
    LK_MODEL_QKV_BIAS = 2,    /* q/k/v projections carry biases (Qwen2) */
};

/* CPU matrix kernels, as a cap: the context uses the best kernel this CPU runs at or below the level
   asked for (lk_context_info says which). Every kernel rounds the same way within a context, so each is
   batch invariant; kernels differ from one another in the last bits (for comparisons). */
enum lk_cpu_kernel {
    LK_CPU_KERNEL_AUTO = 0,        /* the best this CPU runs */
    LK_CPU_KERNEL_SCALAR = 1,
    LK_CPU_KERNEL_AVX2 = 2,        /* AVX2 + FMA + F16C */
    LK_CPU_KERNEL_AVX512 = 3,      /* AVX-512 F/BW/VL, BF16 weights widened to F32 */
    LK_CPU_KERNEL_AVX512_BF16 = 4, /* AVX-512 with the BF16 dot product (BF16 weights and inputs) */
};

/* CUDA matrix kernels. */
enum lk_cuda_matmul {
    LK_CUDA_MATMUL_AUTO = 0,         /* currently TENSOR_CORES */
    LK_CUDA_MATMUL_TENSOR_CORES = 1, /* mma.sync for BF16 weights; F32 and F16 weights on CUDA cores */
    LK_CUDA_MATMUL_SIMT = 2,         /* CUDA cores for every dtype (for comparisons) */
};

/* CUDA tree attention kernels. */
enum lk_cuda_attention {
    LK_CUDA_ATTENTION_AUTO = 0,          /* currently PER_NODE */
    LK_CUDA_ATTENTION_PER_NODE = 1,      /* one block per (node, head, chunk of the context) */
    LK_CUDA_ATTENTION_SHARED_PREFIX = 2, /* one block per (head, chunk, group of nodes) sharing K/V loads */
};

/* CUDA graphs: each decoding-step shape is captured once and replayed as one launch. */
enum lk_cuda_graphs {
    LK_CUDA_GRAPHS_AUTO = 0, /* on */
    LK_CUDA_GRAPHS_ON = 1,
    LK_CUDA_GRAPHS_OFF = 2,  /* direct launches (for comparisons and kernel profilers) */
};

/*
 * Limits: every dimension of lk_model_params is at most 1,048,576 (2^20) except n_layers, at most
 * 4,096; n_batch at most n_ctx; n_threads at most 256.
 *
 * Tensor kinds (lk_model_set_tensor). Shapes are [rows, cols] in row-major order as in Hugging Face checkpoints
 * (a projection maps cols inputs to rows outputs); vectors are passed with cols = 1.
 * q_dim = n_heads * head_dim, kv_dim = n_kv_heads * head_dim.
 */
enum lk_tensor_kind {
    LK_TENSOR_TOKEN_EMBEDDING = 0, /* [vocab, hidden] */
    LK_TENSOR_OUTPUT_NORM = 1,     /* [hidden] */
    LK_TENSOR_OUTPUT = 2,          /* [vocab, hidden], absent when LK_MODEL_TIED_OUTPUT */
    LK_TENSOR_ATTN_NORM = 3,       /* per layer: [hidden] */
    LK_TENSOR_ATTN_Q = 4,          /* [q_dim, hidden], rows in HF rotate-half RoPE order */
    LK_TENSOR_ATTN_K = 5,          /* [kv_dim, hidden], rows in HF rotate-half RoPE order */
    LK_TENSOR_ATTN_V = 6,          /* [kv_dim, hidden] */
    LK_TENSOR_ATTN_OUTPUT = 7,     /* [hidden, q_dim] */
    LK_TENSOR_ATTN_Q_BIAS = 8,     /* [q_dim], only with LK_MODEL_QKV_BIAS */
    LK_TENSOR_ATTN_K_BIAS = 9,     /* [kv_dim], only with LK_MODEL_QKV_BIAS */
    LK_TENSOR_ATTN_V_BIAS = 10,    /* [kv_dim], only with LK_MODEL_QKV_BIAS */
    LK_TENSOR_FFN_NORM = 11,       /* [hidden] */
    LK_TENSOR_FFN_GATE = 12,       /* [intermediate, hidden] */
    LK_TENSOR_FFN_UP = 13,         /* [intermediate, hidden] */
    LK_TENSOR_FFN_DOWN = 14,       /* [hidden, intermediate] */
    LK_TENSOR_KIND_COUNT = 15,
};

typedef struct lk_model lk_model;     /* weights and hyper-parameters, immutable once a context uses it */
typedef struct lk_context lk_context; /* KV cache, scratch and backend state for one sequence */

typedef struct lk_model_params {
    int32_t vocab_size;
    int32_t hidden_size;
    int32_t intermediate_size;
    int32_t n_layers;
    int32_t n_heads;
    int32_t n_kv_heads; /* divides n_heads */
    int32_t head_dim;   /* even */
    int32_t max_context;
    float rms_norm_eps;
    float rope_theta; /* used unless lk_model_set_rope_frequencies supplies a table */
    uint32_t flags;   /* lk_model_flag bits */
    int32_t reserved; /* must be 0 */
} lk_model_params;

typedef struct lk_context_params {
    int32_t backend;        /* lk_backend_type */
    int32_t n_ctx;          /* KV cache capacity in tokens; 0 = the model's max_context */
    int32_t n_batch;        /* most nodes one eval may hold; 0 = min(512, n_ctx) */
    int32_t n_threads;      /* CPU worker threads including the caller; 0 = all online cores */
    int32_t cuda_device;    /* CUDA device ordinal (CUDA backend, and AUTO when it picks CUDA) */
    int32_t cpu_kernel;     /* lk_cpu_kernel */
    int32_t cuda_matmul;    /* lk_cuda_matmul */
    int32_t cuda_attention; /* lk_cuda_attention */
    int32_t cuda_graphs;    /* lk_cuda_graphs */
    int32_t n_seq_max;      /* sequences the context can hold at once; 0 = 1 (more: CPU backend only) */
    int32_t n_kv_tokens;    /* KV pool capacity in tokens, shared by the sequences (blocks of 16);
                               0 = room for every sequence at n_ctx (n_ctx rounded up to whole blocks,
                               times n_seq_max) */
    int32_t kv_type;        /* lk_dtype of the KV cache's elements: F32 (0, the default), or F16 / BF16
                               (CPU backend only), which halve the cache and attention's reads; keys
                               and values are rounded to it when written, so decoding stays lossless
                               against plain decoding with the same kv_type, not against F32 */
} lk_context_params;

/* What a context was created with, every choice resolved (never AUTO). The CPU kernel is reported on
   the CPU backend only (LK_CPU_KERNEL_AUTO on CUDA), the CUDA fields on the CUDA backend only (0 and
   AUTO on the CPU). */
typedef struct lk_context_info {
    int32_t backend;
    int32_t n_ctx;
    int32_t n_batch;
    int32_t n_threads;
    int32_t n_past;    /* committed tokens */
    int32_t n_pending; /* nodes of the last eval not yet committed or dropped */
    int32_t cuda_device;
    int32_t cpu_kernel;
    int32_t cuda_matmul;
    int32_t cuda_attention;
    int32_t cuda_graphs;
    int32_t kv_type;
} lk_context_info;

typedef struct lk_batch {
    const int32_t* tokens;  /* n_tokens token ids; borrowed for the duration of the call */
    const int32_t* parents; /* n_tokens parent indices: parents[0] = -1, 0 <= parents[i] < i;
                               NULL means a chain (parents[i] = i - 1) */
    int32_t n_tokens;
    int32_t logits; /* LK_LOGITS_* */
} lk_batch;

/*
 * Several sequences' draft trees in one forward pass (lk_context_decode_greedy_seqs). A sequence's nodes
 * are contiguous in the batch and its first node is its root (parent -1); every other node names a
 * parent of the same sequence with a smaller (batch) index. A sequence appears at most once.
 */
typedef struct lk_seq_batch {
    const int32_t* tokens;  /* n_tokens token ids */
    const int32_t* parents; /* n_tokens batch indices, -1 for each sequence's root */
    const int32_t* seq_ids; /* n_tokens: the sequence of each node */
    int32_t n_tokens;
    int32_t reserved;       /* must be 0 */
} lk_seq_batch;

/* A sequence's state. */
typedef struct lk_seq_info {
    int32_t n_past;   /* committed tokens */
    int32_t n_blocks; /* KV pool blocks it holds (shared ones included) */
} lk_seq_info;

/* The KV pool (all zeros on a backend without one: CUDA). Blocks in use = n_blocks - n_free - n_cached. */
typedef struct lk_kv_pool_info {
    int32_t n_blocks;     /* pool size */
    int32_t n_free;       /* blocks holding nothing */
    int32_t n_cached;     /* published prefix blocks no sequence holds: reusable by lk_seq_reuse_prefix, and
                             taken back, least recently used first, when no free block is left */
    int32_t block_tokens; /* slots per block */
} lk_kv_pool_info;

/*
 * Sampling settings of lk_context_decode_sample. Generated token i (0-based over the whole generation)
 * uses the draw SplitMix64(seed) output i + 1 >> 11 (53 bits), whatever the step structure, so plain
 * sampling (one node per step) and lookahead draw the same number for the same position. At a node the
 * logits are processed in Hugging Face's order: repetition penalty over every earlier token (prompt,
 * output, the node's ancestors), presence and frequency penalties (OpenAI's) over the earlier output
 * tokens, then temperature, top-k, top-p, min-p; the token is the inverse CDF of the draw over the kept
 * tokens' integer masses floor(exp((logit - max) / T) * 2^43), ordered by penalized logit descending, id
 * ascending on ties. The arithmetic is exact or IEEE-rounded, so the CPU and CUDA backends pick the same
 * token from the same logits (docs/sampling.md). temperature 0 is greedy (argmax of the penalized logits,
 * ties to the lowest id).
 */
typedef struct lk_sampling_params {
    float temperature;        /* >= 0; 0 = greedy */
    int32_t top_k;            /* >= 0; 0 = off */
    float top_p;              /* (0, 1]; 1 = off */
    float min_p;              /* [0, 1]; 0 = off */
    float repetition_penalty; /* > 0; 1 = off */
    float presence_penalty;   /* finite; 0 = off */
    float frequency_penalty;  /* finite; 0 = off */
    int32_t n_prompt;         /* the first n_prompt tokens of the sequence (committed tokens, then the root) are
                                 the prompt; the rest are output */
    uint64_t seed;
    int64_t token_index;      /* index of the first token this step generates (the bonus of a one-node tree) */
} lk_sampling_params;

/* ---- library ---- */

LK_API int32_t lk_abi_version(void);

/* Message of the last failed call on this thread; never NULL; valid until the thread's next failed call. */
LK_API const char* lk_last_error(void);

/* Static, human-readable description of the build and the CPU features in use. */
LK_API const char* lk_system_info(void);

/* 1 if contexts can be created on the backend here, else 0. */
LK_API int32_t lk_backend_available(int32_t backend);

/* This machine's memory read bandwidth in GB/s (10^9 bytes/s): n_threads threads (>= 1) stream a 1 GiB
   buffer allocated like the weights (huge pages where Linux gives them); best of five passes, about a
   second. The floor a CPU greedy step is held against: its weight bytes divided by this rate. */
LK_API lk_status lk_measure_read_bandwidth(int32_t n_threads, double* out_gbps);

/* ---- model ---- */

/* Llama's defaults where a checkpoint may leave them out (rms_norm_eps 1e-5, rope_theta 10,000, no
   flags) and every dimension 0: lk_model_init refuses the set until the caller has filled them in. */
LK_API lk_model_params lk_model_default_params(void);

/* Creates an empty model; every required tensor must then be set before a context is created. On
   failure *out_model is NULL. */
LK_API lk_status lk_model_init(const lk_model_params* params, lk_model** out_model);

/* Copies one tensor into the model (the caller keeps ownership of data, which needs no alignment).
   rows/cols must equal the shape the kind requires; layer is ignored (pass 0) for the non-layer kinds.
   A tensor holding a NaN or an infinity is refused (LK_ERR_INVALID_ARGUMENT, the message names the
   first such element); on any failure the model keeps what that slot held before. */
LK_API lk_status lk_model_set_tensor(lk_model* model, int32_t kind, int32_t layer, int32_t dtype,
                                     int64_t rows, int64_t cols, const void* data);

/* Optional: head_dim/2 RoPE inverse frequencies (for scaled RoPE variants); copied. On failure the model
   keeps the frequencies it had. */
LK_API lk_status lk_model_set_rope_frequencies(lk_model* model, const float* inv_freq, int32_t count);

/* Frees the model. Contexts created from it must be freed first. NULL is ignored. */
LK_API void lk_model_free(lk_model* model);

/* ---- context ---- */

/* Every field 0: the AUTO backend, the model's max_context, n_batch min(512, n_ctx), all online cores,
   CUDA device 0, the best kernels, CUDA graphs on. */
LK_API lk_context_params lk_context_default_params(void);

/* Creates a context; fails with LK_ERR_INVALID_STATE naming the first missing tensor, LK_ERR_NO_DEVICE
   when the CUDA backend or the device asked for is not usable, LK_ERR_INVALID_ARGUMENT naming a field
   out of range. On failure *out_context is NULL and the model is unchanged. */
LK_API lk_status lk_context_init(lk_model* model, const lk_context_params* params, lk_context** out_context);

LK_API void lk_context_free(lk_context* context);

/* On failure *out_info is untouched. */
LK_API lk_status lk_context_get_info(const lk_context* context, lk_context_info* out_info);

/* One forward pass over the batch (see the decoding model above). Replaces any pending nodes. On failure
   the committed context is unchanged and no nodes are pending. Logits are returned as computed: this
   call does not check them for NaN or infinity (lk_context_decode_greedy does). */
LK_API lk_status lk_context_eval(lk_context* context, const lk_batch* batch);

/* Logits (vocab_size floats) of a node of the last eval, if that eval kept them. The pointer is
   owned by the context and valid until the next eval, truncate or free. On failure *out_logits is NULL
   and the context is unchanged. */
LK_API lk_status lk_context_get_logits(lk_context* context, int32_t node, const float** out_logits);

/* Keeps the pending nodes listed (a path from the root: nodes[0] = 0 and each next node a child of
   the previous; NULL means 0..n_nodes-1 of a chain) as committed context and drops the others. On
   failure nothing changes: the nodes stay pending. */
LK_API lk_status lk_context_commit(lk_context* context, const int32_t* nodes, int32_t n_nodes);

/* Drops committed tokens beyond n_past (0 empties the cache) and any pending nodes. On failure (n_past
   above the committed count) nothing changes. */
LK_API lk_status lk_context_truncate(lk_context* context, int32_t n_past);

/*
 * Fused greedy step over a draft tree: eval, argmax at every node (ties -> lowest id), walk from the
 * root to the child whose token equals its parent's argmax while one exists, commit the root and the
 * accepted nodes, and write the accepted draft tokens followed by the bonus token (the argmax at the
 * last accepted node) to out_tokens. capacity must be >= the tree's depth + 1. A one-node tree is
 * plain greedy decoding. Logits are not kept.
 * A node whose logits hold a NaN or an infinity has no argmax. When the walk reaches such a node below
 * the root, its token (its parent's argmax) is the bonus and the walk ends there; when the root's logits
 * are not finite, the call fails with LK_ERR_NON_FINITE. Nodes off the path are not judged, so the tokens
 * emitted and the step that fails are those of plain decoding. On any failure the committed context is
 * unchanged, no nodes are pending and *out_count is 0.
 */
LK_API lk_status lk_context_decode_greedy(lk_context* context, const lk_batch* tree, int32_t* out_tokens,
                                          int32_t capacity, int32_t* out_count);

/*
 * Fused sampling step over a draft tree, lossless for deterministic drafts: eval, then from the root
 * sample each node's token with the next draw; when it equals a child's token, accept that child and go
 * on (among siblings holding the same token, the one with the deepest such path, then the lowest index),
 * otherwise it is the bonus token and the walk ends. Commits the root and the accepted nodes and
 * writes the accepted draft tokens followed by the bonus to out_tokens (capacity >= the tree's depth + 1).
 * A one-node tree is plain sampling, so lookahead emits exactly the tokens plain sampling emits for the
 * same seed. Non-finite logits behave as in lk_context_decode_greedy. Invalid settings fail with
 * LK_ERR_INVALID_ARGUMENT naming the setting. On any failure nothing is committed or pending and
 * *out_count is 0.
 */
LK_API lk_status lk_context_decode_sample(lk_context* context, const lk_batch* tree, const lk_sampling_params* params,
                                          int32_t* out_tokens, int32_t capacity, int32_t* out_count);

/* ---- sequences ----
 *
 * A context holds up to n_seq_max sequences (ids 0 .. n_seq_max-1), each at most n_ctx tokens, their KV
 * cache in blocks of a pool of n_kv_tokens tokens, so memory follows the tokens in flight. Sequence 0
 * exists from creation and is the one the single-sequence calls above use (they fail with
 * LK_ERR_INVALID_STATE while it is removed). Any lk_seq_* call that runs the model drops the pending
 * nodes of lk_context_eval. A sequence's logits do not depend on the other sequences in a batch: the
 * tokens a batched step emits for a sequence are those a step on that sequence alone emits.
 */

/* Adds an empty sequence, the lowest free id; LK_ERR_CONTEXT_FULL when n_seq_max are live. */
LK_API lk_status lk_seq_add(lk_context* context, int32_t* out_seq);

/* Removes a sequence and gives its KV blocks back to the pool. */
LK_API lk_status lk_seq_remove(lk_context* context, int32_t seq);

/* Drops a sequence's committed tokens beyond n_past (its blocks past them go back to the pool). On failure
   nothing changes. */
LK_API lk_status lk_seq_truncate(lk_context* context, int32_t seq, int32_t n_past);

LK_API lk_status lk_seq_get_info(const lk_context* context, int32_t seq, lk_seq_info* out_info);

/* Adds a sequence (the lowest free id) whose first n_past committed tokens are those of sequence src: the
   KV blocks full of them are shared (a write never reaches a shared block: it is copied first), a partial
   last one is copied. On failure (LK_ERR_CONTEXT_FULL: no free sequence, or no block for the copy) no
   sequence is added. */
LK_API lk_status lk_seq_fork(lk_context* context, int32_t src, int32_t n_past, int32_t* out_seq);

/*
 * Prefix caching. Every full KV block of committed tokens is published under its token prefix (the block's
 * tokens and every token before them). This call gives an empty sequence the published blocks holding the
 * longest whole-block prefix of tokens[0, n_tokens), commits those tokens, and writes their count (a
 * multiple of lk_kv_pool_info.block_tokens, maybe 0) to *out_n_reused; the caller prefills the rest. The
 * reused K/V are those a prefill of the same tokens computes, bit for bit, so the tokens decoded after
 * are unchanged. A published block outlives its sequences until the pool needs the space. tokens may be
 * NULL when n_tokens is 0 (nothing is reused).
 */
LK_API lk_status lk_seq_reuse_prefix(lk_context* context, int32_t seq, const int32_t* tokens, int32_t n_tokens,
                                     int32_t* out_n_reused);

LK_API lk_status lk_context_get_kv_pool(const lk_context* context, lk_kv_pool_info* out_info);

/* Commits a chain of n_tokens tokens (at most n_batch) to a sequence: prefill. On failure (a full pool:
   LK_ERR_CONTEXT_FULL) nothing is committed. */
LK_API lk_status lk_seq_prefill(lk_context* context, int32_t seq, const int32_t* tokens, int32_t n_tokens);

/*
 * Fused greedy step over several sequences at once: one forward pass over every sequence's tree, then for
 * each sequence what lk_context_decode_greedy does for one: the accepted path and its bonus token are
 * committed to that sequence. The tokens of the sequence whose tree starts at batch index f are written to
 * out_tokens[f ..] (at most its tree's depth + 1 of them; out_tokens holds n_tokens), and their count to
 * out_counts[k] for the k-th tree in batch order. If any sequence's root logits are not finite the call
 * fails with LK_ERR_NON_FINITE naming it. On any failure nothing is committed to any sequence, and the
 * pending nodes of lk_context_eval are dropped.
 */
LK_API lk_status lk_context_decode_greedy_seqs(lk_context* context, const lk_seq_batch* batch, int32_t* out_tokens,
                                               int32_t* out_counts);

/*
 * lk_context_decode_sample for several sequences in one forward pass: params[k] are the settings of the k-th
 * tree in batch order (n_prompt and token_index count in that sequence), and each sequence's penalties see
 * its own tokens only. Outputs as lk_context_decode_greedy_seqs; a sequence emits exactly what
 * lk_context_decode_sample emits for it alone with the same settings. Invalid settings fail with
 * LK_ERR_INVALID_ARGUMENT naming params[k]; on any failure nothing is committed to any sequence.
 */
LK_API lk_status lk_context_decode_sample_seqs(lk_context* context, const lk_seq_batch* batch, const lk_sampling_params* params,
                                               int32_t* out_tokens, int32_t* out_counts);

/* ---- profiling ---- */

/* Accumulated time of one stage of the context's steps. */
typedef struct lk_stage_time {
    const char* name;    /* static string: "embed", "attention_inputs", "attention", "attention_output",
                            "feed_forward", "feed_forward_down", "output", "verify", "compact" (wall time,
                            LK_PROFILE_STAGES), then "device" (LK_PROFILE_DEVICE) */
    int64_t calls;
    double milliseconds; /* total over the calls */
} lk_stage_time;

enum lk_profile_mode {
    LK_PROFILE_OFF = 0,
    /* Wall time per stage. The CUDA backend waits for the device at every stage boundary (so each
       stage's time is its GPU work plus launch overhead), launches directly instead of through CUDA
       graphs, and steps run slower; use Nsight for kernel-exact times. */
    LK_PROFILE_STAGES = 1,
    /* Device time only: on the CUDA backend, the GPU time of each forward pass, verification and
       compaction (CUDA events around the call's device work, host-to-device copies before it and the
       result's copy back not included), summed in the "device" stage; steps otherwise run as usual,
       graphs included. The step's wall time minus this is its host overhead. Counts nothing on the
       CPU backend. */
    LK_PROFILE_DEVICE = 2,
};

/* Sets the profiling mode (lk_profile_mode; off by default), clearing the totals. On failure the mode
   and totals are unchanged. */
LK_API lk_status lk_context_set_profiling(lk_context* context, int32_t mode);

/* Copies up to capacity stage totals (in the order listed above) and sets *out_count to the number of
   stages; out_stages may be NULL when capacity is 0. */
LK_API lk_status lk_context_get_profile(const lk_context* context, lk_stage_time* out_stages, int32_t capacity,
                                       int32_t* out_count);

#ifdef __cplusplus
}
#endif

#endif /* LOOKAHEAD_H */
