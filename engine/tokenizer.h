/* tokenizer.h: the one interface every tokenizer kind implements.
 *
 * A model's file names its tokenizer kind in the header; ppcllm_tokenizer_init picks the kind's
 * operations from one table (tokenizer.c), and the rest of the engine calls them through
 * t->ops, never asking which kind it has. Every kind reads the "tokenizer" blob (the pieces and
 * their scores); a kind may read one blob of its own (ops->blob, e.g. "bpe"). Kinds:
 *
 *   tok_llama2c.c   PPCLLM_TOKENIZER_LLAMA2C  llama2.c's SentencePiece-style BPE (scores)
 *   tok_bpe.c       PPCLLM_TOKENIZER_BPE      GPT-2 byte-level BPE (GGUF vocabularies), its
 *                                             pre-tokenizers in tok_bpe_pre.c
 *   tok_spm.c       PPCLLM_TOKENIZER_SPM      GGUF SentencePiece (scores, byte fallback), as
 *                                             llama.cpp's SPM tokenizer
 *
 * Another kind adds a file, a row in the table and a header value. */
#ifndef PPCLLM_TOKENIZER_H
#define PPCLLM_TOKENIZER_H

#include "ppcllm.h"

#define PPCLLM_MAX_STOPS 8

typedef struct ppcllm_tokenizer ppcllm_tokenizer;

typedef struct {
    const char *str;
    int id;
} ppcllm_tokidx;

/* llama2.c's tokenizer: the vocabulary sorted for lookups, the raw-byte pieces (also SentencePiece's) */
typedef struct {
    ppcllm_tokidx *sorted_vocab; /* (vocab_size,) by strcmp, stable */
    unsigned char byte_pieces[512];
} ppcllm_sp;

/* GGUF SentencePiece; layout of the "spm" blob in toolkit/format/blobs.py */
typedef struct {
    ppcllm_u32 *words;             /* the blob, in host order */
    const ppcllm_u32 *byte_tokens; /* (256,) the token of each byte, PPCLLM_NO_TOKEN: none */
    const ppcllm_u32 *types;       /* (vocab_size,) GGUF's token types (PPCLLM_TOKEN_*) */
    int eos;
    int add_space_prefix;          /* a space before each text fragment that starts the text or
                                    * follows a control token */
    ppcllm_tokidx *index;          /* every token by piece (strcmp, then id) */
    int *special;                  /* control, user-defined and unknown tokens, longest first */
    int n_special;
    char *printed;                 /* each normal token's text with U+2581 as a space, in pool */
    char **printed_of;             /* (vocab_size,) into printed */
} ppcllm_spm;

/* GPT-2 byte-level BPE; layout of the blob in toolkit/format/blobs.py */
typedef struct {
    ppcllm_u32 *words;       /* the blob, in host order */
    const ppcllm_u32 *byte_tokens, *special, *merges, *ranges;
    ppcllm_u32 n_special, n_merges, n_ranges;
    int eos;
    int pre;                 /* PPCLLM_PRE_GPT2 ... */
    ppcllm_tokidx *whole;    /* PPCLLM_PRE_LLAMA3: non-control tokens by piece (strcmp, then id) */
    ppcllm_u32 n_whole;
} ppcllm_bpe;

typedef struct {
    const char *name;
    /* the entry name of the kind's own blob, or NULL */
    const char *blob;
    /* whether n bytes are a possible size of that blob (checked before it is read) */
    ppcllm_status (*blob_ok)(size_t n, ppcllm_error *err);
    /* take the kind's blob: n bytes of u32 words in the file's byte order, now owned by t
     * (freed by ops->free, also on failure) */
    ppcllm_status (*take_blob)(ppcllm_tokenizer *t, ppcllm_u32 *words, size_t n, int big, ppcllm_error *err);
    /* after every blob is read: lookup tables, bos, stop tokens */
    ppcllm_status (*prepare)(ppcllm_tokenizer *t, const ppcllm_allocator *a, ppcllm_error *err);
    /* bytes of workspace encode needs for a text of len bytes (0: none); *ok cleared when that
     * does not fit */
    size_t (*encode_space)(const ppcllm_tokenizer *t, size_t len, int *ok);
    /* the most tokens encode makes of a text of len bytes; *ok cleared when that does not fit */
    size_t (*max_tokens)(size_t len, int *ok);
    /* text -> tokens (room for max_tokens), work encode_space bytes; returns 0 when a byte has no
     * token, else 1 */
    int (*encode)(const ppcllm_tokenizer *t, const char *text, void *work, int *tokens, int *n_tokens);
    /* the text printed for token after prev, and its length */
    const char *(*decode)(const ppcllm_tokenizer *t, int prev, int token, size_t *len);
    /* the id of the control token spelled text, or -1 */
    int (*special_id)(const ppcllm_tokenizer *t, const char *text);
    void (*free)(ppcllm_tokenizer *t, const ppcllm_allocator *a);
} ppcllm_tokenizer_ops;

struct ppcllm_tokenizer {
    const ppcllm_tokenizer_ops *ops;
    int vocab_size;
    /* the "tokenizer" blob, every kind */
    char **vocab;          /* (vocab_size,) NUL-terminated pieces in pool */
    float *vocab_scores;   /* (vocab_size,) */
    char *pool;
    int max_token_length;
    /* set by the kind */
    int bos;               /* the first token of a text */
    int add_bos;           /* encode puts bos first */
    int echo_prompt;       /* 1: the prompt is fed as llama2.c feeds it, printed token by token
                            * and ended by a stop token; 0: printed as typed, then fed */
    int stops[PPCLLM_MAX_STOPS]; /* sampling one of these ends the reply */
    int n_stops;
    ppcllm_sp sp;          /* llama2.c's */
    ppcllm_bpe bpe;        /* byte-level BPE's */
    ppcllm_spm spm;        /* GGUF SentencePiece's */
};

extern const ppcllm_tokenizer_ops ppcllm_tok_llama2c;
extern const ppcllm_tokenizer_ops ppcllm_tok_bpe;
extern const ppcllm_tokenizer_ops ppcllm_tok_spm;

/* GGUF's token types (tokenizer.ggml.token_type) */
#define PPCLLM_TOKEN_NORMAL 1u
#define PPCLLM_TOKEN_UNKNOWN 2u
#define PPCLLM_TOKEN_CONTROL 3u
#define PPCLLM_TOKEN_USER_DEFINED 4u
#define PPCLLM_TOKEN_UNUSED 5u
#define PPCLLM_TOKEN_BYTE 6u
#define PPCLLM_NO_TOKEN 0xFFFFFFFFu

/* A merge candidate of the score-ordered merge loops (tok_llama2c.c, tok_spm.c): the pair of
 * symbol `left` and the one after it, the token they make, both symbols' versions when pushed. */
typedef struct {
    float score;                    /* vocab_scores[id] */
    int left;                       /* the left symbol's index in the initial sequence */
    int id;                         /* the merged token */
    ppcllm_u32 left_ver, right_ver;
} ppcllm_pair;

/* A binary heap of pairs: the highest score first, the leftmost of equals. */
typedef struct {
    ppcllm_pair *items;
    size_t n;
} ppcllm_heap;

void ppcllm_heap_push(ppcllm_heap *h, const ppcllm_pair *p);
ppcllm_pair ppcllm_heap_pop(ppcllm_heap *h);

/* Sort an index by piece (strcmp), then id. */
void ppcllm_index_sort(ppcllm_tokidx *v, size_t n);
/* The last id of the index whose piece is s[0 .. len), or -1. */
int ppcllm_index_find(const ppcllm_tokidx *v, size_t n, const unsigned char *s, size_t len);
/* Add the control tokens that end a reply by name (<|endoftext|>, <|im_end|>, ...) to the stops,
 * through the kind's special_id. */
void ppcllm_tokenizer_add_named_stops(ppcllm_tokenizer *t);
/* The value of a hex digit, or -1. */
int ppcllm_hexval(char c);
/* t->sp.byte_pieces: each byte as a one-byte C string (a byte token's printed text). */
void ppcllm_byte_pieces(ppcllm_tokenizer *t);

/* The length of the first pre-token of s[0 .. n) (n > 0) under t's pre-tokenizer (tok_bpe_pre.c). */
size_t ppcllm_pretoken(const ppcllm_tokenizer *t, const unsigned char *s, size_t n);

/* The operations of kind (the header's value, checked: at most PPCLLM_TOKENIZER_SPM). */
void ppcllm_tokenizer_init(ppcllm_tokenizer *t, ppcllm_u32 kind, int vocab_size);
/* The "tokenizer" blob: max_token_length (u32), then per token score (f32), len (u32), bytes. */
ppcllm_status ppcllm_tokenizer_parse(ppcllm_tokenizer *t, const ppcllm_allocator *a, const unsigned char *blob,
                                     size_t n, int big, ppcllm_error *err);
void ppcllm_tokenizer_free(ppcllm_tokenizer *t, const ppcllm_allocator *a);
int ppcllm_tokenizer_is_stop(const ppcllm_tokenizer *t, int token);
/* add token to the stop list (ignored when negative or the list is full) */
void ppcllm_tokenizer_add_stop(ppcllm_tokenizer *t, int token);

#endif /* PPCLLM_TOKENIZER_H */
