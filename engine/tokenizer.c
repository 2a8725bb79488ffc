/* tokenizer.c: what every tokenizer kind shares (the "tokenizer" blob of scored pieces, the stop
 * list) and the one table that maps the header's kind to its operations (tokenizer.h). */
#include "internal.h"

#include <string.h>

/* indexed by the header's tokenizer kind */
static const ppcllm_tokenizer_ops *const ppcllm_tokenizer_kinds[] = {
    &ppcllm_tok_llama2c, /* PPCLLM_TOKENIZER_LLAMA2C */
    &ppcllm_tok_bpe,     /* PPCLLM_TOKENIZER_BPE */
};
typedef char ppcllm_check_kinds[sizeof ppcllm_tokenizer_kinds / sizeof ppcllm_tokenizer_kinds[0] ==
                                PPCLLM_TOKENIZER_BPE + 1 ? 1 : -1];

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
