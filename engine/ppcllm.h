/* ppcllm.h: the public API of the ppc-llm inference engine.
 *
 * The engine is a small library in the style of llama2.c's run.c: open a model through a read
 * callback, generate text with a per-token callback, close. It never exits, never prints, and
 * allocates only through the allocator it is given. Every function reports a status code; the
 * ppcllm_error record carries a one-line message for it. */
#ifndef PPCLLM_H
#define PPCLLM_H

#include "ppcllm_config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ppcllm_status {
    PPCLLM_OK = 0,
    PPCLLM_ERR_NOMEM = 1,     /* an allocation failed */
    PPCLLM_ERR_IO = 2,        /* the read callback failed or the file ended early */
    PPCLLM_ERR_FORMAT = 3,    /* the model file is malformed */
    PPCLLM_ERR_VERSION = 4,   /* the model file has another format version */
    PPCLLM_ERR_BYTEORDER = 5, /* the model file has the other byte order */
    PPCLLM_ERR_ARGUMENT = 6,  /* an option is out of range */
    PPCLLM_ERR_STOPPED = 7,   /* the token callback or the abort hook asked to stop */
    PPCLLM_ERR_CONTEXT = 8    /* the conversation has filled the context */
} ppcllm_status;

/* Allocation hook, like realloc: ptr NULL allocates, nsize 0 frees (and returns NULL). */
typedef void *(*ppcllm_alloc_fn)(void *ud, void *ptr, size_t nsize);
/* Read hook: copy up to n bytes into dst, return how many (fewer only at the end or on error). */
typedef size_t (*ppcllm_read_fn)(void *ud, void *dst, size_t n);
/* Token hook: called once per generated position with the token id and the text to print
 * (possibly empty). Return 0 to go on, anything else to stop. */
typedef int (*ppcllm_token_fn)(void *ud, int token, const char *text, size_t len);

typedef struct ppcllm_allocator {
    ppcllm_alloc_fn alloc;
    void *ud;
} ppcllm_allocator;

typedef struct ppcllm_io {
    ppcllm_read_fn read;
    void *ud;
    ppcllm_u64 size; /* total bytes the reader will deliver, or 0 when unknown */
} ppcllm_io;

typedef struct ppcllm_error {
    ppcllm_status status;
    char message[PPCLLM_ERRMSG_SIZE];
} ppcllm_error;

/* Abort hook: checked before every position; return non-zero to stop (PPCLLM_ERR_STOPPED). */
typedef int (*ppcllm_abort_fn)(void *ud);

/* Run options. Set them up with ppcllm_options_init (which fills size and the defaults), then
 * change the fields wanted: later versions add fields at the end, and size tells them apart.
 *
 * Sampling is one chain, each stage a no-op at its default (so the defaults are llama2.c's):
 *   1. repeat penalty   logits of the tokens among the last repeat_last_n positions (the prompt's
 *                       and the template's included): divided by the penalty when positive,
 *                       multiplied when not (llama.cpp's rule), each distinct token once
 *   2. top-k            only the top_k largest logits stay (ties: the lower id first)
 *   3. temperature      logits / temperature, then softmax (0: greedy, the argmax of step 2's
 *                       logits, and steps 4-6 do not happen)
 *   4. top-p            llama2.c's nucleus: the most likely tokens until their sum passes topp
 *   5. min-p            of those, tokens below min_p x the most likely token's probability are
 *                       dropped (both look at step 3's probabilities: nothing is renormalized
 *                       between them, so their order does not change the tokens kept)
 *   6. one random number (llama2.c's xorshift64*, one per sampled token) picks among the tokens
 *                       left: with top-p in sorted order, else in id order, scaled by their sum
 * Temperature comes before top-p and min-p, as in llama2.c (llama.cpp applies it last). */
typedef struct ppcllm_options {
    size_t size;          /* sizeof(ppcllm_options), set by ppcllm_options_init */
    float temperature;    /* 0 = greedy; must be >= 0 */
    float topp;           /* nucleus sampling in [0, 1]; 0 or 1 samples the full distribution */
    ppcllm_u64 seed;      /* xorshift64* state; must not be 0 */
    int steps;            /* generation: positions including the prompt; chat: tokens per reply
                           * (when n_predict < 0); <= 0 or past the context = the whole context */
    int n_predict;        /* tokens to generate (per reply, in chat); 0 = until the context is full;
                           * < 0 (the default): steps bounds the run instead */
    int top_k;            /* 0 = off */
    float min_p;          /* in [0, 1]; 0 = off */
    float repeat_penalty; /* 1 = off */
    int repeat_last_n;    /* positions the penalty looks back over; 0 = off, -1 = the whole context */
    ppcllm_abort_fn abort; /* NULL = never */
    void *abort_ud;
} ppcllm_options;

typedef struct ppcllm_info {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int head_size; /* a head's width: dim / n_heads unless the file says otherwise (qwen3) */
} ppcllm_info;

typedef struct ppcllm_model ppcllm_model;

/* size and the defaults: temperature 1, top-p 0.9, seed 1, 256 steps, n_predict -1, top-k 0,
 * min-p 0, repeat penalty 1 over the last 64 positions, no abort hook */
void ppcllm_options_init(ppcllm_options *opt);

/* Open a model. alloc may be NULL (the C library's realloc/free). On success *out owns
 * everything; on failure *out is NULL, nothing is leaked and err says why. */
ppcllm_status ppcllm_open(ppcllm_model **out, const ppcllm_io *io, const ppcllm_allocator *alloc,
                          ppcllm_error *err);
/* Generate from prompt (NUL-terminated bytes; "" is a normal, empty prompt), calling on_token
 * per printed piece. *positions (may be NULL) receives how many positions were run. */
ppcllm_status ppcllm_generate(ppcllm_model *m, const char *prompt, const ppcllm_options *opt,
                              ppcllm_token_fn on_token, void *ud, int *positions, ppcllm_error *err);
/* Chat (models with a chat template; its turn format is data in the model file): a conversation
 * keeps its position in the KV cache between turns. system: the system prompt of the first turn
 * (NULL: the template's default, or none; a template without a system role refuses one).
 * The reply goes to on_token without the template and ends at one of the template's stop tokens
 * (its end-of-turn and end-of-text tokens) or after n_predict
 * tokens (steps when n_predict < 0; 0: until the context is full). A turn that does not fit the
 * context, or a reply cut off by its end, is PPCLLM_ERR_CONTEXT (what was printed stays; the
 * conversation cannot go on). A turn stopped by the abort hook or the token callback keeps what
 * it printed in the conversation; stopped before its first reply token, it is undone. */
typedef struct ppcllm_chat {
    int pos;            /* positions used so far */
    int pending;        /* the last sampled token, not yet forwarded, or -1 */
    ppcllm_u64 rng;
    int reply_tokens;   /* tokens the last reply printed */
} ppcllm_chat;
int ppcllm_has_chat(const ppcllm_model *m);
void ppcllm_chat_start(ppcllm_chat *c, ppcllm_u64 seed);
ppcllm_status ppcllm_chat_turn(ppcllm_model *m, ppcllm_chat *c, const char *system, const char *user,
                               const ppcllm_options *opt, ppcllm_token_fn on_token, void *ud, ppcllm_error *err);
/* The token ids the next ppcllm_chat_turn with these arguments would feed: at most cap of them
 * into tokens, their count into *n_tokens (nothing is run). */
ppcllm_status ppcllm_chat_prompt(ppcllm_model *m, const ppcllm_chat *c, const char *system, const char *user,
                                 int *tokens, int cap, int *n_tokens, ppcllm_error *err);
/* The token ids of text (with BOS where the model's vocabulary adds one): at most cap of them
 * into tokens, their count into *n_tokens (also when it is more than cap, with an error). */
ppcllm_status ppcllm_encode_text(ppcllm_model *m, const char *text, int *tokens, int cap, int *n_tokens,
                                 ppcllm_error *err);
/* Positions of KV cache to keep (the model's own context at most; opening allocates
 * min(context, PPCLLM_DEFAULT_CTX)). Reallocates the cache: call it between conversations. */
ppcllm_status ppcllm_set_context(ppcllm_model *m, int ctx, ppcllm_error *err);
/* The positions the KV cache holds (the context in use). */
int ppcllm_get_context(const ppcllm_model *m);
/* The model's own context (its file's positions): the most ppcllm_set_context keeps. */
int ppcllm_get_model_context(const ppcllm_model *m);
/* Split every matrix product over `threads` threads (1 .. 64; more than 1 only in builds with
 * thread support). Opening a model starts the target's default number. */
ppcllm_status ppcllm_set_threads(ppcllm_model *m, int threads, ppcllm_error *err);
int ppcllm_get_threads(const ppcllm_model *m);
/* The model's dimensions; seq_len is the context in use (ppcllm_get_context), not the file's. */
void ppcllm_get_info(const ppcllm_model *m, ppcllm_info *info);
/* The matrix kernels this model runs with ("scalar" or "altivec"). */
const char *ppcllm_kernel_name(const ppcllm_model *m);
void ppcllm_close(ppcllm_model *m);
const char *ppcllm_status_name(ppcllm_status status);

#ifdef __cplusplus
}
#endif
#endif /* PPCLLM_H */
