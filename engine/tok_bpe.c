/* tok_bpe.c: GPT-2 byte-level BPE (GGUF vocabularies): the "bpe" blob (byte tokens, control
 * tokens, ranked merges, character classes, the pre-tokenizer; layout in
 * toolkit/format/blobs.py), rank-ordered merges of each pre-token (tok_bpe_pre.c cuts them). */
#include "internal.h"

#include <string.h>

/* The "bpe" blob's size, checked before it is read. */
static ppcllm_status ppcllm_bpe_blob_ok(size_t n, ppcllm_error *err)
{
    if (n % 4 != 0 || n < 4 * (8 + 256) || n / 4 > (size_t)1 << 26) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file BPE data has an invalid size", NULL);
    }
    return PPCLLM_OK;
}

/* The "bpe" blob: u32 words in the file's byte order, checked before any is trusted. */
static ppcllm_status ppcllm_bpe_take(ppcllm_tokenizer *t, ppcllm_u32 *words, size_t n, int big, ppcllm_error *err)
{
    ppcllm_bpe *b = &t->bpe;
    ppcllm_u32 i, count = (ppcllm_u32)(n / 4), vocab = (ppcllm_u32)t->vocab_size;
    size_t need;
    b->words = words;
    for (i = 0; i < count; i++) {
        b->words[i] = ppcllm_get_u32((const unsigned char *)(b->words + i), big);
    }
    b->n_special = b->words[1];
    b->n_merges = b->words[2];
    b->n_ranges = b->words[3];
    need = 8 + 256 + (size_t)b->n_special + 4 * (size_t)b->n_merges + 3 * (size_t)b->n_ranges;
    if (b->words[0] != 0 || b->n_special > vocab || b->n_merges > vocab || b->n_ranges > 1u << 20 || need != count ||
        b->words[4] >= vocab || b->words[5] >= vocab || b->words[6] > 1 || b->words[7] > PPCLLM_PRE_DEFAULT) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file BPE data is inconsistent", NULL);
    }
    t->bos = (int)b->words[4];
    b->eos = (int)b->words[5];
    t->add_bos = (int)b->words[6];
    b->pre = (int)b->words[7];
    b->byte_tokens = b->words + 8;
    b->special = b->byte_tokens + 256;
    b->merges = b->special + b->n_special;
    b->ranges = b->merges + 4 * (size_t)b->n_merges;
    for (i = 0; i < 256 + b->n_special; i++) {
        if (b->byte_tokens[i] >= vocab && !(i < 256 && b->byte_tokens[i] == PPCLLM_NO_TOKEN)) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file BPE data names an unknown token", NULL);
        }
    }
    for (i = 0; i < b->n_merges; i++) {
        const ppcllm_u32 *q = b->merges + 4 * (size_t)i;
        int ordered = i == 0 || q[-4] < q[0] || (q[-4] == q[0] && q[-3] < q[1]);
        if (q[0] >= vocab || q[1] >= vocab || q[3] >= vocab || !ordered) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file BPE merges are malformed", NULL);
        }
    }
    for (i = 0; i < b->n_ranges; i++) {
        const ppcllm_u32 *r = b->ranges + 3 * (size_t)i;
        if (r[0] > r[1] || (i > 0 && r[-2] >= r[0]) || r[2] > 4) { /* classes 0 .. 4, tok_bpe_pre.c */
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file character classes are malformed", NULL);
        }
    }
    return PPCLLM_OK;
}


/* The id of the control token spelled `text`, or -1 */
static int ppcllm_special_id(const ppcllm_tokenizer *t, const char *text)
{
    ppcllm_u32 i;
    for (i = 0; i < t->bpe.n_special; i++) {
        if (strcmp(t->vocab[t->bpe.special[i]], text) == 0) {
            return (int)t->bpe.special[i];
        }
    }
    return -1;
}

/* rank and result of merging (a, b), or -1 */
static long ppcllm_merge_rank(const ppcllm_tokenizer *t, int a, int b, int *merged)
{
    size_t lo = 0, hi = t->bpe.n_merges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const ppcllm_u32 *q = t->bpe.merges + 4 * mid;
        if ((ppcllm_u32)a < q[0] || ((ppcllm_u32)a == q[0] && (ppcllm_u32)b < q[1])) {
            hi = mid;
        } else if ((ppcllm_u32)a > q[0] || (ppcllm_u32)b > q[1]) {
            lo = mid + 1;
        } else {
            *merged = (int)q[3];
            return (long)q[2];
        }
    }
    return -1;
}

/* PPCLLM_PRE_LLAMA3: the (last) non-control token whose piece is s[0 .. len), or -1 */
static int ppcllm_whole_token(const ppcllm_tokenizer *t, const unsigned char *s, size_t len)
{
    return ppcllm_index_find(t->bpe.whole, t->bpe.n_whole, s, len);
}

/* BPE of one pre-token (raw bytes): byte tokens, then the lowest-ranked adjacent pair merged
 * (the leftmost of equals) until none merges; under PPCLLM_PRE_LLAMA3 a pre-token that is a whole
 * token is that token. Appends to tokens[*n]. */
static void ppcllm_bpe_word(const ppcllm_tokenizer *t, const unsigned char *s, size_t len, int *tokens, int *n)
{
    int *w = tokens + *n, count = 0, i, whole = t->bpe.whole != NULL ? ppcllm_whole_token(t, s, len) : -1;
    size_t k;
    if (whole >= 0) {
        tokens[(*n)++] = whole;
        return;
    }
    for (k = 0; k < len; k++) {
        ppcllm_u32 id = t->bpe.byte_tokens[s[k]];
        if (id != PPCLLM_NO_TOKEN) { /* a byte the vocabulary lacks is dropped */
            w[count++] = (int)id;
        }
    }
    for (;;) {
        long best = -1;
        int at = -1, best_id = 0;
        for (i = 0; i + 1 < count; i++) {
            int merged;
            long rank = ppcllm_merge_rank(t, w[i], w[i + 1], &merged);
            if (rank >= 0 && (best < 0 || rank < best)) {
                best = rank;
                at = i;
                best_id = merged;
            }
        }
        if (at < 0) {
            break;
        }
        w[at] = best_id;
        for (i = at + 1; i + 1 < count; i++) {
            w[i] = w[i + 1];
        }
        count--;
    }
    *n += count;
}

/* Pre-tokenize and BPE-encode a text segment without control tokens. */
static void ppcllm_encode_segment(const ppcllm_tokenizer *t, const unsigned char *s, size_t n, int *tokens, int *count)
{
    size_t start = 0;
    while (start < n) {
        size_t piece = ppcllm_pretoken(t, s + start, n - start);
        ppcllm_bpe_word(t, s + start, piece, tokens, count);
        start += piece;
    }
}

/* The control token spelled at s (the longest), or -1 */
static int ppcllm_special_at(const ppcllm_tokenizer *t, const unsigned char *s, size_t n, size_t *len)
{
    int best = -1;
    ppcllm_u32 i;
    *len = 0;
    for (i = 0; i < t->bpe.n_special; i++) {
        const char *piece = t->vocab[t->bpe.special[i]];
        size_t l = strlen(piece);
        if (l > *len && l <= n && memcmp(s, piece, l) == 0) {
            best = (int)t->bpe.special[i];
            *len = l;
        }
    }
    return best;
}

/* text -> tokens (at most strlen(text) + 1 of them): control tokens matched whole first, the
 * rest pre-tokenized and BPE-encoded; BOS first when the vocabulary asks for it. */
static int ppcllm_bpe_encode(const ppcllm_tokenizer *t, const char *text, void *work, int *tokens, int *n_tokens)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), start = 0, i = 0;
    (void)work;
    *n_tokens = 0;
    if (t->add_bos) {
        tokens[(*n_tokens)++] = t->bos;
    }
    while (i < n) {
        size_t len;
        int special = ppcllm_special_at(t, s + i, n - i, &len);
        if (special < 0) {
            i++;
            continue;
        }
        ppcllm_encode_segment(t, s + start, i - start, tokens, n_tokens);
        tokens[(*n_tokens)++] = special;
        i += len;
        start = i;
    }
    ppcllm_encode_segment(t, s + start, n - start, tokens, n_tokens);
    return 1;
}

static int ppcllm_is_special(const ppcllm_tokenizer *t, int token)
{
    ppcllm_u32 i;
    for (i = 0; i < t->bpe.n_special; i++) {
        if ((int)t->bpe.special[i] == token) {
            return 1;
        }
    }
    return 0;
}

/* the printed text of a BPE token: its bytes; nothing for control tokens */
static const char *ppcllm_bpe_decode(const ppcllm_tokenizer *t, int prev, int token, size_t *len)
{
    const char *piece = ppcllm_is_special(t, token) ? "" : t->vocab[token];
    (void)prev;
    *len = strlen(piece);
    return piece;
}

/* PPCLLM_PRE_LLAMA3: the non-control tokens sorted by piece, for ppcllm_whole_token */
static ppcllm_status ppcllm_bpe_index(ppcllm_tokenizer *t, const ppcllm_allocator *a, ppcllm_error *err)
{
    int i;
    t->bpe.whole = (ppcllm_tokidx *)ppcllm_calloc(a, (size_t)t->vocab_size, sizeof(ppcllm_tokidx));
    if (t->bpe.whole == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory indexing the vocabulary", NULL);
    }
    t->bpe.n_whole = 0;
    for (i = 0; i < t->vocab_size; i++) {
        if (!ppcllm_is_special(t, i)) {
            t->bpe.whole[t->bpe.n_whole].str = t->vocab[i];
            t->bpe.whole[t->bpe.n_whole++].id = i;
        }
    }
    ppcllm_index_sort(t->bpe.whole, t->bpe.n_whole);
    return PPCLLM_OK;
}

/* The end-of-sequence token and the named control tokens (tokenizer.c) end a reply. */
static ppcllm_status ppcllm_bpe_prepare(ppcllm_tokenizer *t, const ppcllm_allocator *a, ppcllm_error *err)
{
    t->echo_prompt = 0;
    ppcllm_tokenizer_add_stop(t, t->bpe.eos);
    ppcllm_tokenizer_add_named_stops(t);
    return t->bpe.pre == PPCLLM_PRE_LLAMA3 ? ppcllm_bpe_index(t, a, err) : PPCLLM_OK;
}

static size_t ppcllm_bpe_encode_space(const ppcllm_tokenizer *t, size_t len, int *ok)
{
    (void)t;
    (void)len;
    (void)ok;
    return 0; /* no workspace */
}

static size_t ppcllm_bpe_max_tokens(size_t len, int *ok)
{
    (void)ok;
    return len + 1; /* BOS, at most one per byte */
}

static void ppcllm_bpe_free(ppcllm_tokenizer *t, const ppcllm_allocator *a)
{
    ppcllm_free(a, t->bpe.words);
    ppcllm_free(a, t->bpe.whole);
    t->bpe.whole = NULL;
}

const ppcllm_tokenizer_ops ppcllm_tok_bpe = {
    "BPE tokenizer", "bpe", ppcllm_bpe_blob_ok, ppcllm_bpe_take, ppcllm_bpe_prepare, ppcllm_bpe_encode_space,
    ppcllm_bpe_max_tokens, ppcllm_bpe_encode, ppcllm_bpe_decode, ppcllm_special_id, ppcllm_bpe_free,
};
