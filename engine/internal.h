/* internal.h: the engine's own declarations, shared by its modules and by nothing else (main.c
 * and every other program use ppcllm.h only).
 *
 * The model's state is split the way llama2.c's run.c splits it: the config (from the file's
 * header), the weights, the run state (activations and KV cache), the tokenizer (tokenizer.h),
 * the sampler, the worker pool and the chat template, each a struct of its own inside
 * struct ppcllm_model. Each module owns one part:
 *
 *   util.c            allocation through the one hook, status and error messages, byte order
 *   load.c            the converted file: header, tensor table, tensors, embedded blobs
 *   load_wants.c      which tensors the model wants from the table (load.h)
 *   forward.c         the run state and the transformer's forward pass
 *   tokenizer.c       the vocabulary blob and the choice of tokenizer (tokenizer.h)
 *   tok_llama2c.c     llama2.c's SentencePiece-style tokenizer
 *   tok_bpe.c         GPT-2 byte-level BPE (GGUF vocabularies)
 *   tok_bpe_pre.c     its pre-tokenizers (GPT-2's, llama3's, qwen2's, llama.cpp's default)
 *   sampler.c         llama2.c's sampler
 *   generate.c        the generation loop, plain and chat (chat templates as data)
 *   ppcllm.c          the public API's open, close and settings
 *   kernels_select.c  which kernels run (scalar or SIMD, at build or run time) */
#ifndef PPCLLM_INTERNAL_H
#define PPCLLM_INTERNAL_H

#include "ppcllm.h"
#include "kernels.h"
#include "pool.h"
#include "tokenizer.h"

#define PPCLLM_STRING_(x) #x
#define PPCLLM_STRING(x) PPCLLM_STRING_(x) /* a macro's value as a string literal */

/* ------------------------------------------------------------------------------------------ */
/* util.c: errors, allocation, byte order                                                     */

/* Append the NUL-terminated src to dst[*used], never past dst[cap - 1]. */
void ppcllm_append(char *dst, size_t cap, size_t *used, const char *src);
/* Fill err (when not NULL) with status and msg + detail (detail may be NULL); returns status. */
ppcllm_status ppcllm_fail(ppcllm_error *err, ppcllm_status status, const char *msg, const char *detail);
void ppcllm_ok(ppcllm_error *err);
/* The C library's realloc/free as an allocation hook. */
void *ppcllm_default_alloc(void *ud, void *ptr, size_t nsize);
/* a * b, or 0 with *ok cleared when the product does not fit in size_t */
size_t ppcllm_mul(size_t a, size_t b, int *ok);
/* PPCLLM_ALIGN-aligned blocks through the allocation hook (NULL when it fails) */
void *ppcllm_alloc(const ppcllm_allocator *a, size_t n);
void *ppcllm_calloc(const ppcllm_allocator *a, size_t count, size_t size);
void ppcllm_free(const ppcllm_allocator *a, void *p);
int ppcllm_host_is_big(void);
ppcllm_u32 ppcllm_get_u32(const unsigned char *p, int big);
ppcllm_u64 ppcllm_get_u64(const unsigned char *p, int big);
float ppcllm_get_f32(const unsigned char *p, int big);
/* groups of 32 per row of `cols` values, padded to a multiple of 4 (as toolkit/quant.py) */
int ppcllm_padded_groups(int cols);

/* ------------------------------------------------------------------------------------------ */
/* The model                                                                                  */

/* What the file's header says. dims.seq_len is the context allocated, file_seq_len the model's. */
typedef struct {
    ppcllm_info dims;
    int file_seq_len;
    int shared_classifier;
    float rope_theta;
    float norm_eps;
    ppcllm_u32 quant;      /* dtype of most matrices */
    ppcllm_u32 tok_kind;   /* PPCLLM_TOKENIZER_*: picks the tokenizer's operations (tokenizer.c) */
    ppcllm_u32 flags;      /* PPCLLM_FLAG_* */
} ppcllm_config;

/* A stack of matrices (one per layer, or just one), f32 or block-quantized; or a stack stored per
 * layer (`layer` set: each layer a matrix of its own type, GGUF mixes such as Q4_K_M). */
typedef struct ppcllm_weight {
    ppcllm_u32 type;        /* PPCLLM_DTYPE_F32, _Q8_0, _Q4_0, _Q4_1, or a kept GGUF block type */
    int rows, cols;         /* of one matrix */
    int groups;             /* quantized: groups per row, padded to a multiple of 4 */
    size_t group_bytes;     /* quantized: bytes of codes per group (32 or 16) */
    float *f;               /* f32: (stack, rows, cols) */
    unsigned char *codes;   /* quantized: (stack, rows, groups, group_bytes); kept blocks: the layout */
    ppcllm_u16 *scales;     /* quantized: fp16 (stack, rows, PPCLLM_SCALE_STRIDE(groups)) */
    ppcllm_u16 *mins;       /* q4_1: fp16, laid out as scales */
    struct ppcllm_weight *layer;  /* per-layer stack: n_layers matrices (NULL: one stack) */
    char names[3][PPCLLM_NAME_BYTES + 8]; /* a per-layer matrix's table names: NAME.l, .scales, .mins */
} ppcllm_weight;

typedef struct {
    ppcllm_weight tok_embeddings; /* (vocab_size, dim) */
    float *rms_att;        /* (layer, dim) */
    ppcllm_weight wq;      /* (layer, n_heads * head_size, dim) */
    ppcllm_weight wk;      /* (layer, dim, n_kv_heads * head_size) */
    ppcllm_weight wv;      /* (layer, dim, n_kv_heads * head_size) */
    ppcllm_weight wo;      /* (layer, dim, n_heads * head_size) */
    float *rms_ffn;        /* (layer, dim) */
    ppcllm_weight w1;      /* (layer, hidden_dim, dim) */
    ppcllm_weight w2;      /* (layer, dim, hidden_dim) */
    ppcllm_weight w3;      /* (layer, hidden_dim, dim) */
    float *rms_final;      /* (dim,) */
    ppcllm_weight wcls;    /* (vocab_size, dim): tok_embeddings when shared */
    float *bq, *bk, *bv;   /* PPCLLM_FLAG_QKV_BIAS: (layer, dim), (layer, kv_dim) twice; else NULL */
    float *rope_freqs;     /* PPCLLM_FLAG_ROPE_FREQS: (head_size / 2,) angle divisors; else NULL */
    float *q_norm, *k_norm; /* PPCLLM_FLAG_QK_NORM: (layer, head_size) each; else NULL */
} ppcllm_weights;

/* The activations of one position and the KV cache of all. */
typedef struct {
    float *x, *xb, *xb2;   /* (dim,) */
    float *hb, *hb2;       /* (hidden_dim,) */
    float *q;              /* (dim,) */
    float *att;            /* (n_heads, seq_len) */
    float *logits;         /* (vocab_size,) */
    float *key_cache;      /* (layer, seq_len, kv_dim) */
    float *value_cache;    /* (layer, seq_len, kv_dim) */
    int *tokens;           /* (seq_len,): the token each position was run with (repeat penalty) */
    ppcllm_qvec qx;        /* the current matmul input, quantized (quantized models) */
    ppcllm_fvec fx;        /* the current matmul input, 16-bit (float activations) */
    const float *input;    /* the current matmul input */
} ppcllm_runstate;

typedef struct {
    float prob;
    int index;
} ppcllm_probidx;

typedef struct {
    int vocab_size;
    ppcllm_probidx *probindex; /* (2 * vocab_size,): candidates, then merge-sort scratch */
    unsigned char *seen;       /* (vocab_size,): tokens already penalized this step (all 0 between) */
} ppcllm_sampler;

typedef struct {
    ppcllm_pool *pool;     /* NULL: everything on the calling thread */
    int count;
} ppcllm_workers;

/* A chat template as data (the "chat" blob, toolkit/format/blobs.py): the strings fed around
 * each message and the tokens that end a reply (generate.c). No system prompt: FIRST + user +
 * USER_SUFFIX; a system prompt: SYSTEM_PREFIX + system + SYSTEM_SUFFIX + user + USER_SUFFIX;
 * every later turn: USER_PREFIX + user + USER_SUFFIX. */
enum {
    PPCLLM_CHAT_FIRST, PPCLLM_CHAT_SYSTEM_PREFIX, PPCLLM_CHAT_SYSTEM_SUFFIX, PPCLLM_CHAT_USER_PREFIX,
    PPCLLM_CHAT_USER_SUFFIX, PPCLLM_CHAT_DEFAULT_SYSTEM
};

typedef struct {
    int present;           /* 0: the model has no chat template */
    ppcllm_u32 flags;      /* the blob's flags (PPCLLM_CHAT_SYSTEM_ROLE: it takes a system prompt) */
    char *pool;            /* the strings, each NUL-terminated */
    const char *text[PPCLLM_CHAT_STRINGS];
    int stops[PPCLLM_MAX_CHAT_STOPS]; /* sampling one of these ends a reply */
    int n_stops;
} ppcllm_chat_template;

struct ppcllm_model {
    ppcllm_allocator a;
    const ppcllm_kernel_set *kernels;
    ppcllm_config cfg;
    ppcllm_weights w;
    ppcllm_runstate s;
    ppcllm_tokenizer tok;
    ppcllm_sampler sampler;
    ppcllm_workers workers;
    ppcllm_chat_template chat;
};

/* load.c: header, table, tensors and blobs; the run state allocated */
ppcllm_status ppcllm_load(ppcllm_model *m, const ppcllm_io *io, ppcllm_error *err);
void ppcllm_free_weights(ppcllm_model *m);

/* forward.c */
ppcllm_status ppcllm_alloc_state(ppcllm_model *m, ppcllm_error *err);
ppcllm_status ppcllm_alloc_cache(ppcllm_model *m, ppcllm_error *err);
void ppcllm_free_cache(ppcllm_model *m);
void ppcllm_free_state(ppcllm_model *m); /* the cache and the sampler's buffer included */
void ppcllm_softmax(float *x, int size);
/* the logits after `token` at position `pos` (the KV cache holds positions 0 .. pos - 1) */
float *ppcllm_forward(ppcllm_model *m, int token, int pos);

/* sampler.c */
void ppcllm_sampler_init(ppcllm_sampler *s, const ppcllm_allocator *a, int vocab_size);
void ppcllm_sampler_free(ppcllm_sampler *s, const ppcllm_allocator *a);
/* The next token from logits (changed in place) by opt's chain (ppcllm.h); recent: the tokens of
 * the last n_recent positions, for the repeat penalty. */
int ppcllm_sample(ppcllm_sampler *s, float *logits, const ppcllm_options *opt, ppcllm_u64 *rng,
                  const int *recent, int n_recent);

/* generate.c: after the tokenizer is prepared, the chat template's stop ids checked against the
 * vocabulary (PPCLLM_ERR_FORMAT) */
/* the "chat" blob's bytes -> c (generate.c; every count and length checked against n) */
ppcllm_status ppcllm_parse_chat(ppcllm_chat_template *c, const unsigned char *blob, size_t n, int big,
                                ppcllm_error *err);
ppcllm_status ppcllm_chat_prepare(ppcllm_model *m, ppcllm_error *err);

#endif /* PPCLLM_INTERNAL_H */
