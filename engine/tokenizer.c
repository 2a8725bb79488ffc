/* tokenizer.c: what every tokenizer kind shares (the "tokenizer" blob of scored pieces, the stop
 * list) and the one table that maps the header's kind to its operations (tokenizer.h). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* indexed by the header's tokenizer kind */
static const ppcllm_tokenizer_ops *const ppcllm_tokenizer_kinds[] = {
    &ppcllm_tok_llama2c, /* PPCLLM_TOKENIZER_LLAMA2C */
    &ppcllm_tok_bpe,     /* PPCLLM_TOKENIZER_BPE */
    &ppcllm_tok_spm,     /* PPCLLM_TOKENIZER_SPM */
};
typedef char ppcllm_check_kinds[sizeof ppcllm_tokenizer_kinds / sizeof ppcllm_tokenizer_kinds[0] ==
                                PPCLLM_TOKENIZER_SPM + 1 ? 1 : -1];

/* control tokens that end a reply, besides the vocabulary's end-of-sequence token (llama.cpp's
 * end-of-generation names) */
static const char *const ppcllm_stop_names[] = {"<|endoftext|>", "<|im_end|>", "<|eot_id|>", "<end_of_turn>"};

void ppcllm_tokenizer_init(ppcllm_tokenizer *t, ppcllm_u32 kind, int vocab_size)
{
    t->ops = ppcllm_tokenizer_kinds[kind];
    t->vocab_size = vocab_size;
}

ppcllm_status ppcllm_tokenizer_parse(ppcllm_tokenizer *t, const ppcllm_allocator *a, const unsigned char *blob,
                                     size_t n, int big, ppcllm_error *err)
{
    size_t pos = 4, pool_used = 0;
    int i, vocab = t->vocab_size;
    ppcllm_u32 max_len;
    if (n < 4) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "embedded tokenizer is truncated", NULL);
    }
    max_len = ppcllm_get_u32(blob, big);
    if (max_len == 0 || max_len > 65536u) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "embedded tokenizer max token length is out of range", NULL);
    }
    t->max_token_length = (int)max_len;
    t->vocab = (char **)ppcllm_calloc(a, (size_t)vocab, sizeof(char *));
    t->vocab_scores = (float *)ppcllm_calloc(a, (size_t)vocab, sizeof(float));
    t->pool = (char *)ppcllm_alloc(a, n + (size_t)vocab); /* n > total piece bytes */
    if (t->vocab == NULL || t->vocab_scores == NULL || t->pool == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory loading the tokenizer", NULL);
    }
    for (i = 0; i < vocab; i++) {
        ppcllm_u32 len;
        if (n - pos < 8) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "embedded tokenizer is truncated", NULL);
        }
        t->vocab_scores[i] = ppcllm_get_f32(blob + pos, big);
        len = ppcllm_get_u32(blob + pos + 4, big);
        pos += 8;
        if (len > max_len || len > n - pos) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "embedded tokenizer has a token of invalid length", NULL);
        }
        t->vocab[i] = t->pool + pool_used;
        memcpy(t->vocab[i], blob + pos, len);
        t->vocab[i][len] = '\0';
        pool_used += len + 1;
        pos += len;
    }
    return PPCLLM_OK;
}

void ppcllm_tokenizer_free(ppcllm_tokenizer *t, const ppcllm_allocator *a)
{
    if (t->ops != NULL) {
        t->ops->free(t, a);
    }
    ppcllm_free(a, t->vocab);
    ppcllm_free(a, t->vocab_scores);
    ppcllm_free(a, t->pool);
}

void ppcllm_tokenizer_add_stop(ppcllm_tokenizer *t, int token)
{
    if (token >= 0 && t->n_stops < PPCLLM_MAX_STOPS) {
        t->stops[t->n_stops++] = token;
    }
}

int ppcllm_tokenizer_is_stop(const ppcllm_tokenizer *t, int token)
{
    int i;
    for (i = 0; i < t->n_stops; i++) {
        if (t->stops[i] == token) {
            return 1;
        }
    }
    return 0;
}

void ppcllm_tokenizer_add_named_stops(ppcllm_tokenizer *t)
{
    size_t i;
    for (i = 0; i < sizeof ppcllm_stop_names / sizeof ppcllm_stop_names[0]; i++) {
        ppcllm_tokenizer_add_stop(t, t->ops->special_id(t, ppcllm_stop_names[i]));
    }
}

/* a comes out of the heap before b */
static int ppcllm_pair_before(const ppcllm_pair *a, const ppcllm_pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

void ppcllm_heap_push(ppcllm_heap *h, const ppcllm_pair *p)
{
    size_t i = h->n++;
    while (i > 0 && ppcllm_pair_before(p, &h->items[(i - 1) / 2])) {
        h->items[i] = h->items[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->items[i] = *p;
}

ppcllm_pair ppcllm_heap_pop(ppcllm_heap *h)
{
    ppcllm_pair top = h->items[0], last = h->items[--h->n];
    size_t i = 0, n = h->n;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= n) {
            break;
        }
        if (child + 1 < n && ppcllm_pair_before(&h->items[child + 1], &h->items[child])) {
            child++;
        }
        if (!ppcllm_pair_before(&h->items[child], &last)) {
            break;
        }
        h->items[i] = h->items[child];
        i = child;
    }
    if (n > 0) {
        h->items[i] = last;
    }
    return top;
}

static int ppcllm_tokidx_cmp(const void *x, const void *y)
{
    const ppcllm_tokidx *a = (const ppcllm_tokidx *)x, *b = (const ppcllm_tokidx *)y;
    int c = strcmp(a->str, b->str);
    return c != 0 ? c : (a->id > b->id) - (a->id < b->id);
}

void ppcllm_index_sort(ppcllm_tokidx *v, size_t n)
{
    qsort(v, n, sizeof(ppcllm_tokidx), ppcllm_tokidx_cmp);
}

/* s[0 .. len) against the C string piece, as strcmp orders them */
static int ppcllm_piece_cmp(const char *piece, const unsigned char *s, size_t len)
{
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char p = (unsigned char)piece[i];
        if (p != s[i]) {
            return p == 0 || p < s[i] ? -1 : 1;
        }
    }
    return piece[len] == '\0' ? 0 : 1;
}

int ppcllm_index_find(const ppcllm_tokidx *v, size_t n, const unsigned char *s, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* the first entry after every piece <= s */
        size_t mid = (lo + hi) / 2;
        if (ppcllm_piece_cmp(v[mid].str, s, len) <= 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo > 0 && ppcllm_piece_cmp(v[lo - 1].str, s, len) == 0 ? v[lo - 1].id : -1;
}

int ppcllm_hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

void ppcllm_byte_pieces(ppcllm_tokenizer *t)
{
    int i;
    for (i = 0; i < 256; i++) {
        t->sp.byte_pieces[i * 2] = (unsigned char)i;
        t->sp.byte_pieces[i * 2 + 1] = '\0';
    }
}
