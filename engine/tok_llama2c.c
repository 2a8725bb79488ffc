/* tok_llama2c.c: llama2.c's tokenizer (SentencePiece-style BPE over scored pieces): encode with
 * the merge loop of run.c (in O(n log n), same result), decode with its raw-byte pieces. */
#include "internal.h"

#include <string.h>

#define PPCLLM_BOS 1

/* Stable merge sort of the vocabulary by strcmp (ties keep id order). */
static void ppcllm_sort_vocab(ppcllm_tokidx *v, ppcllm_tokidx *tmp, int n)
{
    int width, i;
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            int lo = i, mid = i + width < n ? i + width : n, hi = i + 2 * width < n ? i + 2 * width : n;
            int l = lo, r = mid, k = lo;
            while (l < mid && r < hi) {
                tmp[k++] = strcmp(v[r].str, v[l].str) < 0 ? v[r++] : v[l++];
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

/* The sorted vocabulary, the raw-byte pieces; BOS first, BOS ends a text. */
static ppcllm_status ppcllm_sp_prepare(ppcllm_tokenizer *t, const ppcllm_allocator *a, ppcllm_error *err)
{
    int i, n = t->vocab_size;
    ppcllm_tokidx *tmp;
    ppcllm_byte_pieces(t);
    t->bos = PPCLLM_BOS;
    t->add_bos = 1;
    t->echo_prompt = 1;
    ppcllm_tokenizer_add_stop(t, PPCLLM_BOS);
    t->sp.sorted_vocab = (ppcllm_tokidx *)ppcllm_calloc(a, (size_t)n, sizeof(ppcllm_tokidx));
    tmp = (ppcllm_tokidx *)ppcllm_calloc(a, (size_t)n, sizeof(ppcllm_tokidx));
    if (t->sp.sorted_vocab == NULL || tmp == NULL) {
        ppcllm_free(a, tmp);
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory sorting the vocabulary", NULL);
    }
    for (i = 0; i < n; i++) {
        t->sp.sorted_vocab[i].str = t->vocab[i];
        t->sp.sorted_vocab[i].id = i;
    }
    ppcllm_sort_vocab(t->sp.sorted_vocab, tmp, n);
    ppcllm_free(a, tmp);
    return PPCLLM_OK;
}

static int ppcllm_lookup(const ppcllm_tokenizer *t, const char *str)
{
    /* the same probe sequence as glibc's bsearch over the stably sorted vocabulary */
    size_t lo = 0, hi = (size_t)t->vocab_size;
    while (lo < hi) {
        size_t idx = (lo + hi) / 2;
        int c = strcmp(str, t->sp.sorted_vocab[idx].str);
        if (c < 0) {
            hi = idx;
        } else if (c > 0) {
            lo = idx + 1;
        } else {
            return t->sp.sorted_vocab[idx].id;
        }
    }
    return -1;
}

/* llama2.c's merge loop, in O(n log n). run.c rescans every adjacent pair after each merge and
 * merges the pair whose concatenation is in the vocabulary with the highest score (strictly
 * above -1e10: `score > best_score`, so the leftmost of equal scores wins), until none is left:
 * O(n^2) lookups for n symbols. Here the symbols form a doubly linked list and the candidate
 * pairs sit in a binary heap ordered by (score descending, left symbol ascending). The same
 * pair is merged at every step, because:
 * - a pair's merged id and score depend only on the two symbols' strings, and merging (l, r)
 *   changes only symbol l and removes r: every other pair keeps its id and score, and the only
 *   new pairs are (prev(l), l) and (l, next(l)), which are pushed;
 * - so the heap always holds an entry for every current candidate pair. Entries of pairs that
 *   no longer exist are stale: every symbol has a version, bumped when its token changes or it
 *   is removed, and an entry records both symbols' versions (a symbol's right neighbour only
 *   changes when it merges, which bumps its version, so matching versions mean the pair is
 *   still adjacent with the same two tokens). Stale entries are skipped when they surface;
 * - symbols keep the index they had in the initial sequence and the list keeps their order,
 *   so "lowest left index" is "leftmost" as run.c counts it; with NaN scores never pushed
 *   (they fail `>` in run.c too), the key is a total order and the top valid entry is exactly
 *   run.c's choice (two valid entries never share a left symbol).
 * The loop ends when no valid entry is left, as run.c's ends when no pair is found. */

typedef struct {
    int *tokens;        /* (n,) the symbols' tokens */
    int *prev, *next;   /* (n,) links, -1 at the ends */
    ppcllm_u32 *ver;    /* (n,) versions */
    ppcllm_heap heap;   /* (3 n,) n - 1 initial pairs and at most two per merge */
    char *buf;          /* 2 * max_token_length + 3 bytes */
} ppcllm_merger;

/* Bytes of the workspace ppcllm_encode needs for a text of text_len bytes (the heap, the links
 * and versions, the piece buffer); *ok cleared when that does not fit in size_t or the symbols
 * in an int. */
static size_t ppcllm_sp_encode_space(const ppcllm_tokenizer *t, size_t text_len, int *ok)
{
    size_t n, heap, links, piece;
    if (text_len > (size_t)INT_MAX / 3 - 3) {
        *ok = 0;
        return 0;
    }
    n = text_len + 3; /* BOS, dummy prefix, one per byte, one spare */
    heap = ppcllm_mul(ppcllm_mul(n, 3, ok), sizeof(ppcllm_pair), ok);
    links = ppcllm_mul(n, 2 * sizeof(int) + sizeof(ppcllm_u32), ok);
    piece = ppcllm_mul((size_t)t->max_token_length, 2, ok) + 3; /* max_token_length <= 65536 */
    if (!*ok || heap > (size_t)-1 - links || heap + links > (size_t)-1 - piece) {
        *ok = 0;
        return 0;
    }
    return heap + links + piece;
}

/* Push the pair (l, next(l)) when its concatenation is a vocabulary piece run.c would merge. */
static void ppcllm_push_pair(const ppcllm_tokenizer *t, ppcllm_merger *g, int l)
{
    int r = g->next[l], id;
    size_t la = strlen(t->vocab[g->tokens[l]]), lb = strlen(t->vocab[g->tokens[r]]);
    memcpy(g->buf, t->vocab[g->tokens[l]], la);
    memcpy(g->buf + la, t->vocab[g->tokens[r]], lb + 1);
    id = ppcllm_lookup(t, g->buf);
    if (id != -1 && t->vocab_scores[id] > -1e10f) { /* run.c's best_score starts at -1e10 */
        ppcllm_pair p;
        p.score = t->vocab_scores[id];
        p.left = l;
        p.id = id;
        p.left_ver = g->ver[l];
        p.right_ver = g->ver[r];
        ppcllm_heap_push(&g->heap, &p);
    }
}

static void ppcllm_merge_pairs(const ppcllm_tokenizer *t, ppcllm_merger *g, int *n_tokens)
{
    int n = *n_tokens, i, count;
    if (n == 0) {
        return;
    }
    for (i = 0; i < n; i++) {
        g->prev[i] = i - 1;
        g->next[i] = i + 1 < n ? i + 1 : -1;
        g->ver[i] = 0;
    }
    g->heap.n = 0;
    for (i = 0; i + 1 < n; i++) {
        ppcllm_push_pair(t, g, i);
    }
    while (g->heap.n > 0) {
        ppcllm_pair p = ppcllm_heap_pop(&g->heap);
        int l = p.left, r = g->next[l];
        if (g->ver[l] != p.left_ver || r < 0 || g->ver[r] != p.right_ver) {
            continue; /* stale */
        }
        g->tokens[l] = p.id;
        g->ver[l]++;
        g->ver[r]++;
        g->next[l] = g->next[r];
        if (g->next[r] >= 0) {
            g->prev[g->next[r]] = l;
        }
        if (g->prev[l] >= 0) {
            ppcllm_push_pair(t, g, g->prev[l]);
        }
        if (g->next[l] >= 0) {
            ppcllm_push_pair(t, g, l);
        }
    }
    count = 0; /* symbol 0 is never a right symbol, so it heads the list */
    for (i = 0; i >= 0; i = g->next[i]) {
        g->tokens[count++] = g->tokens[i];
    }
    *n_tokens = count;
}

/* tokens must hold strlen(text) + 3 entries; work ppcllm_sp_encode_space(t, strlen(text)) bytes.
 * Returns 0 when a byte has no piece and no byte-fallback token in this vocabulary, else 1. */
static int ppcllm_sp_encode(const ppcllm_tokenizer *t, const char *text, void *work, int *tokens, int *n_tokens)
{
    const char *c;
    size_t len = 0, cap = strlen(text) + 3;
    ppcllm_merger g;
    char *buf;
    g.tokens = tokens;
    g.heap.items = (ppcllm_pair *)work;
    g.prev = (int *)(void *)(g.heap.items + 3 * cap);
    g.next = g.prev + cap;
    g.ver = (ppcllm_u32 *)(void *)(g.next + cap);
    g.buf = buf = (char *)(void *)(g.ver + cap);
    *n_tokens = 0;
    tokens[(*n_tokens)++] = PPCLLM_BOS;
    if (text[0] != '\0') {
        int dummy_prefix = ppcllm_lookup(t, " ");
        if (dummy_prefix != -1) {
            tokens[(*n_tokens)++] = dummy_prefix;
        }
    }
    /* one UTF-8 codepoint at a time: a lead byte and up to three continuation bytes */
    for (c = text; *c != '\0'; c++) {
        int id;
        if ((*c & 0xC0) != 0x80) {
            len = 0;
        }
        buf[len++] = *c;
        buf[len] = '\0';
        if ((*(c + 1) & 0xC0) == 0x80 && len < 4) {
            continue;
        }
        id = ppcllm_lookup(t, buf);
        if (id != -1) {
            tokens[(*n_tokens)++] = id;
        } else {
            size_t i;
            for (i = 0; i < len; i++) {
                int fallback = (unsigned char)buf[i] + 3; /* byte fallback <0xXX> */
                if (fallback >= t->vocab_size) {
                    return 0;
                }
                tokens[(*n_tokens)++] = fallback;
            }
        }
        len = 0;
    }
    ppcllm_merge_pairs(t, &g, n_tokens);
    return 1;
}

static const char *ppcllm_sp_piece(const ppcllm_tokenizer *t, int prev_token, int token)
{
    const char *piece = t->vocab[token];
    int hi, lo;
    if (prev_token == PPCLLM_BOS && piece[0] == ' ') {
        piece++;
    }
    /* raw byte tokens look like <0x0A> */
    if (piece[0] == '<' && piece[1] == '0' && piece[2] == 'x' && (hi = ppcllm_hexval(piece[3])) >= 0) {
        lo = ppcllm_hexval(piece[4]);
        return (const char *)t->sp.byte_pieces + 2 * (lo >= 0 ? hi * 16 + lo : hi);
    }
    return piece;
}

/* llama2.c's safe_printf: a single byte that is neither printable nor whitespace prints nothing */
static size_t ppcllm_printable_len(const char *piece)
{
    unsigned char b = (unsigned char)piece[0];
    if (b == 0) {
        return 0;
    }
    if (piece[1] == '\0') {
        int printable = b >= 0x20 && b <= 0x7E;
        int space = b == ' ' || (b >= '\t' && b <= '\r');
        return printable || space ? 1 : 0;
    }
    return strlen(piece);
}

static const char *ppcllm_sp_decode(const ppcllm_tokenizer *t, int prev, int token, size_t *len)
{
    const char *piece = ppcllm_sp_piece(t, prev, token);
    *len = ppcllm_printable_len(piece);
    return piece;
}

static int ppcllm_sp_special_id(const ppcllm_tokenizer *t, const char *text)
{
    (void)t;
    (void)text;
    return -1; /* no control tokens */
}

static size_t ppcllm_sp_max_tokens(size_t len, int *ok)
{
    (void)ok;
    return len + 3; /* BOS, the dummy prefix, one per byte, one spare */
}

static void ppcllm_sp_free(ppcllm_tokenizer *t, const ppcllm_allocator *a)
{
    ppcllm_free(a, t->sp.sorted_vocab);
}

const ppcllm_tokenizer_ops ppcllm_tok_llama2c = {
    "llama2.c tokenizer", NULL, NULL, NULL, ppcllm_sp_prepare, ppcllm_sp_encode_space, ppcllm_sp_max_tokens,
    ppcllm_sp_encode, ppcllm_sp_decode,
    ppcllm_sp_special_id, ppcllm_sp_free,
};
