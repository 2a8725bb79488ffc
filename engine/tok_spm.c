/* tok_spm.c: GGUF SentencePiece vocabularies (tokenizer.ggml.model "llama": TinyLlama, Gemma),
 * encoded and decoded as llama.cpp's SPM tokenizer does (llama-vocab.cpp):
 *
 * - control, user-defined and unknown tokens are cut out of the text first, the longest piece
 *   first, each at its leftmost places in what is left (llama.cpp's tokenizer_st_partition);
 * - each remaining fragment gets a space in front when the vocabulary adds a space prefix and the
 *   fragment starts the text or follows such a token, and its spaces become U+2581;
 * - its UTF-8 characters are merged pairwise, the pair whose concatenation is the token of the
 *   highest score first (the leftmost of equals), until no adjacent pair is a token;
 * - a symbol that is a token is that token, else each of its bytes is its byte token (<0xXX>, or
 *   the byte itself as a piece); a byte with neither cannot be encoded.
 * The merge loop is tok_llama2c.c's heap with versioned symbols (that file says why it picks the
 * same pair as a rescan), over spans of the fragment instead of tokens.
 * The "spm" blob (toolkit/format/blobs.py): reserved (0), bos, eos, add_bos, add_space_prefix,
 * vocab_size, byte_tokens[256], types[vocab_size], u32 words in the file's byte order. */
#include "internal.h"

#include <string.h>

#define PPCLLM_SPM_HEADER 6u
#define PPCLLM_SPM_RAW (-1)     /* owner[]: a byte of the text between special tokens */
#define PPCLLM_SPM_COVERED (-2) /* owner[]: a byte inside a special token, not its first */

static ppcllm_status ppcllm_spm_blob_ok(size_t n, ppcllm_error *err)
{
    if (n % 4 != 0 || n < 4 * (PPCLLM_SPM_HEADER + 256) || n / 4 > (size_t)1 << 26) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file SentencePiece data has an invalid size", NULL);
    }
    return PPCLLM_OK;
}

static ppcllm_status ppcllm_spm_take(ppcllm_tokenizer *t, ppcllm_u32 *words, size_t n, int big, ppcllm_error *err)
{
    ppcllm_spm *p = &t->spm;
    ppcllm_u32 i, count = (ppcllm_u32)(n / 4), vocab = (ppcllm_u32)t->vocab_size;
    p->words = words;
    for (i = 0; i < count; i++) {
        p->words[i] = ppcllm_get_u32((const unsigned char *)(p->words + i), big);
    }
    if (p->words[0] != 0 || p->words[1] >= vocab || p->words[2] >= vocab || p->words[3] > 1 || p->words[4] > 1 ||
        p->words[5] != vocab || count != PPCLLM_SPM_HEADER + 256 + vocab) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file SentencePiece data is inconsistent", NULL);
    }
    t->bos = (int)p->words[1];
    p->eos = (int)p->words[2];
    t->add_bos = (int)p->words[3];
    p->add_space_prefix = (int)p->words[4];
    p->byte_tokens = p->words + PPCLLM_SPM_HEADER;
    p->types = p->byte_tokens + 256;
    for (i = 0; i < 256 + vocab; i++) {
        ppcllm_u32 v = p->byte_tokens[i];
        if (i < 256 ? v >= vocab && v != PPCLLM_NO_TOKEN : v > PPCLLM_TOKEN_BYTE) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file SentencePiece data names an unknown token or type",
                               NULL);
        }
    }
    return PPCLLM_OK;
}

static int ppcllm_spm_is_special(const ppcllm_tokenizer *t, int token)
{
    ppcllm_u32 type = t->spm.types[token];
    return type == PPCLLM_TOKEN_CONTROL || type == PPCLLM_TOKEN_USER_DEFINED || type == PPCLLM_TOKEN_UNKNOWN;
}

/* longest piece first, then id (llama.cpp sorts by length only) */
static int ppcllm_spm_before(const ppcllm_tokenizer *t, int a, int b)
{
    size_t la = strlen(t->vocab[a]), lb = strlen(t->vocab[b]);
    return la > lb || (la == lb && a < b);
}

/* the special tokens, longest first (a stable merge sort: tmp as long as the list) */
static void ppcllm_spm_sort_special(const ppcllm_tokenizer *t, int *v, int *tmp, int n)
{
    int width, i;
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            int mid = i + width < n ? i + width : n, hi = i + 2 * width < n ? i + 2 * width : n;
            int l = i, r = mid, k = i;
            while (l < mid && r < hi) {
                tmp[k++] = ppcllm_spm_before(t, v[r], v[l]) ? v[r++] : v[l++];
            }
            while (l < mid) {
                tmp[k++] = v[l++];
            }
            while (r < hi) {
                tmp[k++] = v[r++];
            }
        }
        memcpy(v, tmp, (size_t)n * sizeof *v);
    }
}

/* each normal token's printed text: its piece with U+2581 (E2 96 81) as a space */
static void ppcllm_spm_unescape(const char *piece, char *out)
{
    while (*piece != '\0') {
        if ((unsigned char)piece[0] == 0xE2 && (unsigned char)piece[1] == 0x96 && (unsigned char)piece[2] == 0x81) {
            *out++ = ' ';
            piece += 3;
        } else {
            *out++ = *piece++;
        }
    }
    *out = '\0';
}

static ppcllm_status ppcllm_spm_printed(ppcllm_tokenizer *t, const ppcllm_allocator *a, ppcllm_error *err)
{
    size_t total = 0, used = 0;
    int i, n = t->vocab_size;
    for (i = 0; i < n; i++) {
        total += strlen(t->vocab[i]) + 1;
    }
    t->spm.printed = (char *)ppcllm_alloc(a, total);
    t->spm.printed_of = (char **)ppcllm_calloc(a, (size_t)n, sizeof(char *));
    if (t->spm.printed == NULL || t->spm.printed_of == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory loading the tokenizer", NULL);
    }
    for (i = 0; i < n; i++) {
        t->spm.printed_of[i] = t->spm.printed + used;
        ppcllm_spm_unescape(t->vocab[i], t->spm.printed_of[i]);
        used += strlen(t->spm.printed_of[i]) + 1;
    }
    return PPCLLM_OK;
}

/* The index of every piece, the special tokens longest first, the printed texts, the stops. */
static ppcllm_status ppcllm_spm_prepare(ppcllm_tokenizer *t, const ppcllm_allocator *a, ppcllm_error *err)
{
    ppcllm_spm *p = &t->spm;
    int i, n = t->vocab_size, *tmp;
    t->echo_prompt = 0;
    ppcllm_byte_pieces(t);
    p->index = (ppcllm_tokidx *)ppcllm_calloc(a, (size_t)n, sizeof(ppcllm_tokidx));
    p->special = (int *)ppcllm_calloc(a, (size_t)n, sizeof(int));
    tmp = (int *)ppcllm_calloc(a, (size_t)n, sizeof(int));
    if (p->index == NULL || p->special == NULL || tmp == NULL) {
        ppcllm_free(a, tmp);
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory indexing the vocabulary", NULL);
    }
    p->n_special = 0;
    for (i = 0; i < n; i++) {
        p->index[i].str = t->vocab[i];
        p->index[i].id = i;
        if (ppcllm_spm_is_special(t, i) && t->vocab[i][0] != '\0') {
            p->special[p->n_special++] = i;
        }
    }
    ppcllm_index_sort(p->index, (size_t)n);
    ppcllm_spm_sort_special(t, p->special, tmp, p->n_special);
    ppcllm_free(a, tmp);
    ppcllm_tokenizer_add_stop(t, p->eos);
    ppcllm_tokenizer_add_named_stops(t);
    return ppcllm_spm_printed(t, a, err);
}

/* A fragment's symbols (spans of its escaped text), linked and versioned, and the merge heap. */
typedef struct {
    const unsigned char *text; /* the escaped fragment */
    int *start, *len, *tok;    /* (n,) tok: the merged token, -1 while a symbol is one character */
    int *prev, *next;          /* (n,) links, -1 at the ends */
    ppcllm_u32 *ver;           /* (n,) versions */
    ppcllm_heap heap;          /* (3 n,) */
} ppcllm_spans;

/* The workspace for a text of len bytes: owner (len + 1 ints), the escaped fragment (3 len + 4
 * bytes, a space prefix included), and per byte of it six ints and three heap entries. */
static size_t ppcllm_spm_encode_space(const ppcllm_tokenizer *t, size_t len, int *ok)
{
    size_t sym, owner, esc, links, heap;
    (void)t;
    if (len > (size_t)INT_MAX / 4 - 4) {
        *ok = 0;
        return 0;
    }
    sym = 3 * len + 4;
    owner = ppcllm_mul(len + 1, sizeof(int), ok);
    esc = (sym + sizeof(int)) / sizeof(int) * sizeof(int); /* keeps what follows aligned */
    links = ppcllm_mul(ppcllm_mul(sym, 6, ok), sizeof(int), ok);
    heap = ppcllm_mul(ppcllm_mul(sym, 3, ok), sizeof(ppcllm_pair), ok);
    if (!*ok || heap > (size_t)-1 - links - owner - esc) {
        *ok = 0;
        return 0;
    }
    return heap + links + owner + esc;
}

/* each special token's text (plus the byte tokens of a fragment, which are at most three per
 * byte of it with its space prefix) */
static size_t ppcllm_spm_max_tokens(size_t len, int *ok)
{
    if (len > ((size_t)INT_MAX - 8) / 6) {
        *ok = 0;
        return 0;
    }
    return 6 * len + 4; /* BOS, and per fragment three per byte and three for its prefix */
}

/* Push the pair (l, next(l)) when its text is a token. */
static void ppcllm_spm_push(const ppcllm_tokenizer *t, ppcllm_spans *g, int l)
{
    int r = g->next[l];
    int id = ppcllm_index_find(t->spm.index, (size_t)t->vocab_size, g->text + g->start[l],
                               (size_t)(g->len[l] + g->len[r]));
    if (id >= 0) {
        ppcllm_pair p;
        p.score = t->vocab_scores[id];
        p.left = l;
        p.id = id;
        p.left_ver = g->ver[l];
        p.right_ver = g->ver[r];
        ppcllm_heap_push(&g->heap, &p);
    }
}

/* the byte length of the UTF-8 sequence led by b, as llama.cpp's unicode_len_utf8 counts it */
static int ppcllm_utf8_len(unsigned char b)
{
    static const int lens[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    return lens[b >> 4];
}

/* The symbols of text[0 .. n), merged; returns their count (symbol 0 heads the list). */
static void ppcllm_spm_merge(const ppcllm_tokenizer *t, ppcllm_spans *g, int n)
{
    int count = 0, at = 0, i;
    while (at < n) {
        int len = ppcllm_utf8_len(g->text[at]);
        g->start[count] = at;
        g->len[count] = len < n - at ? len : n - at;
        g->tok[count] = -1;
        g->prev[count] = count - 1;
        g->ver[count] = 0;
        at += g->len[count];
        g->next[count] = at < n ? count + 1 : -1;
        count++;
    }
    g->heap.n = 0;
    for (i = 0; i + 1 < count; i++) {
        ppcllm_spm_push(t, g, i);
    }
    while (g->heap.n > 0) {
        ppcllm_pair p = ppcllm_heap_pop(&g->heap);
        int l = p.left, r = g->next[l];
        if (g->ver[l] != p.left_ver || r < 0 || g->ver[r] != p.right_ver) {
            continue; /* stale */
        }
        g->len[l] += g->len[r];
        g->tok[l] = p.id;
        g->ver[l]++;
        g->ver[r]++;
        g->next[l] = g->next[r];
        if (g->next[r] >= 0) {
            g->prev[g->next[r]] = l;
        }
        if (g->prev[l] >= 0) {
            ppcllm_spm_push(t, g, g->prev[l]);
        }
        if (g->next[l] >= 0) {
            ppcllm_spm_push(t, g, l);
        }
    }
}

/* Encode one fragment (its escaped text in g->text[0 .. n), n > 0); 0 when a byte has no token. */
static int ppcllm_spm_fragment(const ppcllm_tokenizer *t, ppcllm_spans *g, int n, int *tokens, int *n_tokens)
{
    int i;
    ppcllm_spm_merge(t, g, n);
    for (i = 0; i >= 0; i = g->next[i]) {
        int id = g->tok[i] >= 0 ? g->tok[i]
                                : ppcllm_index_find(t->spm.index, (size_t)t->vocab_size, g->text + g->start[i],
                                                    (size_t)g->len[i]);
        int k;
        if (id >= 0) {
            tokens[(*n_tokens)++] = id;
            continue;
        }
        for (k = 0; k < g->len[i]; k++) {
            ppcllm_u32 b = t->spm.byte_tokens[g->text[g->start[i] + k]];
            if (b == PPCLLM_NO_TOKEN) {
                return 0;
            }
            tokens[(*n_tokens)++] = (int)b;
        }
    }
    return 1;
}

/* owner[i]: the special token starting at byte i, PPCLLM_SPM_COVERED inside one, else RAW. */
static void ppcllm_spm_partition(const ppcllm_tokenizer *t, const unsigned char *s, size_t n, int *owner)
{
    int k;
    size_t i;
    for (i = 0; i < n; i++) {
        owner[i] = PPCLLM_SPM_RAW;
    }
    for (k = 0; k < t->spm.n_special; k++) {
        const char *piece = t->vocab[t->spm.special[k]];
        size_t l = strlen(piece), j;
        for (i = 0; i + l <= n;) {
            for (j = 0; j < l && owner[i + j] == PPCLLM_SPM_RAW && s[i + j] == (unsigned char)piece[j]; j++) {
            }
            if (j < l) {
                i++;
                continue;
            }
            owner[i] = t->spm.special[k];
            for (j = 1; j < l; j++) {
                owner[i + j] = PPCLLM_SPM_COVERED;
            }
            i += l;
        }
    }
}

/* the escaped fragment s[0 .. n) into out (its space prefix first when asked); its length */
static int ppcllm_spm_escape(const unsigned char *s, size_t n, int prefix, unsigned char *out)
{
    int used = 0;
    size_t i;
    for (i = prefix ? 0 : 1; i <= n; i++) {
        unsigned char c = i == 0 ? ' ' : s[i - 1];
        if (c == ' ') {
            out[used++] = 0xE2;
            out[used++] = 0x96;
            out[used++] = 0x81;
        } else {
            out[used++] = c;
        }
    }
    return used;
}

static int ppcllm_spm_encode(const ppcllm_tokenizer *t, const char *text, void *work, int *tokens, int *n_tokens)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t n = strlen(text), i = 0, sym = 3 * n + 4;
    int *owner = (int *)work, after_special = 1;
    unsigned char *esc = (unsigned char *)(owner + n + 1);
    ppcllm_spans g;
    g.text = esc;
    g.start = (int *)(void *)(esc + (sym + sizeof(int)) / sizeof(int) * sizeof(int));
    g.len = g.start + sym;
    g.tok = g.len + sym;
    g.prev = g.tok + sym;
    g.next = g.prev + sym;
    g.ver = (ppcllm_u32 *)(void *)(g.next + sym);
    g.heap.items = (ppcllm_pair *)(void *)(g.ver + sym);
    *n_tokens = 0;
    if (t->add_bos) {
        tokens[(*n_tokens)++] = t->bos;
    }
    ppcllm_spm_partition(t, s, n, owner);
    while (i < n) {
        size_t j = i;
        if (owner[i] >= 0) {
            tokens[(*n_tokens)++] = owner[i];
            i += strlen(t->vocab[owner[i]]);
            after_special = 1;
            continue;
        }
        while (j < n && owner[j] == PPCLLM_SPM_RAW) {
            j++;
        }
        if (!ppcllm_spm_fragment(t, &g, ppcllm_spm_escape(s + i, j - i, t->spm.add_space_prefix && after_special, esc),
                                 tokens, n_tokens)) {
            return 0;
        }
        after_special = 0;
        i = j;
    }
    return 1;
}

/* What llama.cpp prints for a token: a normal one with spaces for U+2581, a byte token its byte,
 * a user-defined one its piece, the rest nothing. */
static const char *ppcllm_spm_decode(const ppcllm_tokenizer *t, int prev, int token, size_t *len)
{
    ppcllm_u32 type = t->spm.types[token];
    const char *piece = "";
    (void)prev;
    *len = 0;
    if (type == PPCLLM_TOKEN_NORMAL) {
        piece = t->spm.printed_of[token];
    } else if (type == PPCLLM_TOKEN_USER_DEFINED) {
        piece = t->vocab[token];
    } else if (type == PPCLLM_TOKEN_BYTE && strlen(t->vocab[token]) == 6) { /* <0xXX> */
        const char *v = t->vocab[token];
        int hi = ppcllm_hexval(v[3]), lo = ppcllm_hexval(v[4]);
        if (hi >= 0 && lo >= 0) {
            *len = 1;
            return (const char *)t->sp.byte_pieces + 2 * (hi * 16 + lo);
        }
    }
    *len = strlen(piece);
    return piece;
}

static int ppcllm_spm_special_id(const ppcllm_tokenizer *t, const char *text)
{
    int k;
    for (k = 0; k < t->spm.n_special; k++) {
        if (strcmp(t->vocab[t->spm.special[k]], text) == 0) {
            return t->spm.special[k];
        }
    }
    return -1;
}

static void ppcllm_spm_free(ppcllm_tokenizer *t, const ppcllm_allocator *a)
{
    ppcllm_free(a, t->spm.words);
    ppcllm_free(a, t->spm.index);
    ppcllm_free(a, t->spm.special);
    ppcllm_free(a, t->spm.printed);
    ppcllm_free(a, t->spm.printed_of);
    t->spm.words = NULL;
    t->spm.index = NULL;
    t->spm.special = NULL;
    t->spm.printed = NULL;
    t->spm.printed_of = NULL;
}

const ppcllm_tokenizer_ops ppcllm_tok_spm = {
    "SentencePiece tokenizer", "spm", ppcllm_spm_blob_ok, ppcllm_spm_take, ppcllm_spm_prepare,
    ppcllm_spm_encode_space, ppcllm_spm_max_tokens, ppcllm_spm_encode, ppcllm_spm_decode, ppcllm_spm_special_id,
    ppcllm_spm_free,
};
