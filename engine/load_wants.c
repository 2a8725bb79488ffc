/* load_wants.c: which tensors a model wants from its file's table (load.c reads them): the
 * embedding table, the layers' norms and matrices (one stack, or per layer with a type each, as
 * GGUF mixes come), the optional Q/K/V biases, RoPE factors and Q/K norms, the classifier when it is not
 * shared; each matrix with its scales (and mins) when block-quantized. */
#include "internal.h"
#include "load.h"

#include <string.h>

static void ppcllm_want1(ppcllm_want *w, const char *name, void **dest, ppcllm_u32 dtype, int ndim,
                         size_t d0, size_t d1, size_t d2)
{
    w->name = name;
    w->dest = dest;
    w->dtype = dtype;
    w->ndim = ndim;
    w->dims[0] = d0;
    w->dims[1] = d1;
    w->dims[2] = d2;
}

/* The dtype of the matrix `name` in the table: its entry's when that is f32 or the header's
 * quantization, or with float activations (GGUF models, whose blocks mix) any block type; else
 * the header's, and the entry is refused as wrongly typed when it is read. The run state holds
 * int8 inputs only for a header quantization, so no other int8 matrix may slip through. */
static ppcllm_u32 ppcllm_matrix_dtype(const ppcllm_model *m, const ppcllm_entry *entries, ppcllm_u32 n_entries,
                                      const char *name)
{
    ppcllm_u32 i;
    for (i = 0; i < n_entries; i++) {
        ppcllm_u32 t = entries[i].dtype;
        if (strcmp(entries[i].name, name) == 0 &&
            (t == PPCLLM_DTYPE_F32 || t == m->cfg.quant ||
             ((m->cfg.flags & PPCLLM_FLAG_FLOAT_ACTIVATIONS) != 0 &&
              (t == PPCLLM_DTYPE_Q8_0 || t == PPCLLM_DTYPE_Q4_0 || t == PPCLLM_DTYPE_Q4_1 ||
               ppcllm_kq_format_of(t) != NULL)))) {
            return t;
        }
    }
    return m->cfg.quant; /* anything else: the table check then names the tensor */
}

/* A matrix stack: f32 values, or quantized codes plus NAME.scales (and NAME.mins for q4_1);
 * returns entries added. names: NAME, NAME.scales, NAME.mins. */
static int ppcllm_want_weight(ppcllm_model *m, ppcllm_want *w, ppcllm_weight *dest, const char *const *names,
                              ppcllm_u32 dtype, size_t stack, int rows, int cols)
{
    int ndim = stack > 0 ? 3 : 2;
    size_t d0 = stack > 0 ? stack : (size_t)rows, d1 = stack > 0 ? (size_t)rows : (size_t)cols;
    size_t d2 = stack > 0 ? (size_t)cols : 1;
    (void)m;
    dest->type = dtype;
    dest->rows = rows;
    dest->cols = cols;
    dest->groups = ppcllm_padded_groups(cols);
    dest->group_bytes = dtype == PPCLLM_DTYPE_Q8_0 ? PPCLLM_GROUP : PPCLLM_GROUP / 2;
    if (dtype == PPCLLM_DTYPE_F32) {
        ppcllm_want1(w, names[0], (void **)&dest->f, PPCLLM_DTYPE_F32, ndim, d0, d1, d2);
        return 1;
    }
    if (ppcllm_kq_format_of(dtype) != NULL) { /* one 2-D matrix (stacks of them are stored per layer) */
        ppcllm_want1(w, names[0], (void **)&dest->codes, dtype, 2, (size_t)rows, (size_t)cols, 1);
        return 1;
    }
    ppcllm_want1(w, names[0], (void **)&dest->codes, dtype, ndim, d0, d1, d2);
    if (stack > 0) {
        d2 = (size_t)PPCLLM_SCALE_STRIDE(dest->groups);
    } else {
        d1 = (size_t)PPCLLM_SCALE_STRIDE(dest->groups);
    }
    ppcllm_want1(w + 1, names[1], (void **)&dest->scales, PPCLLM_DTYPE_F16, ndim, d0, d1, d2);
    if (dtype != PPCLLM_DTYPE_Q4_1) {
        return 2;
    }
    ppcllm_want1(w + 2, names[2], (void **)&dest->mins, PPCLLM_DTYPE_F16, ndim, d0, d1, d2);
    return 3;
}

#define PPCLLM_WEIGHT_NAMES(n) {n, n ".scales", n ".mins"}
static const char *const ppcllm_names_tok[3] = PPCLLM_WEIGHT_NAMES("tok_embeddings");
static const char *const ppcllm_names_wq[3] = PPCLLM_WEIGHT_NAMES("wq");
static const char *const ppcllm_names_wk[3] = PPCLLM_WEIGHT_NAMES("wk");
static const char *const ppcllm_names_wv[3] = PPCLLM_WEIGHT_NAMES("wv");
static const char *const ppcllm_names_wo[3] = PPCLLM_WEIGHT_NAMES("wo");
static const char *const ppcllm_names_w1[3] = PPCLLM_WEIGHT_NAMES("w1");
static const char *const ppcllm_names_w2[3] = PPCLLM_WEIGHT_NAMES("w2");
static const char *const ppcllm_names_w3[3] = PPCLLM_WEIGHT_NAMES("w3");
static const char *const ppcllm_names_wcls[3] = PPCLLM_WEIGHT_NAMES("wcls");

/* Whether the table holds the stack `name` per layer: no entry NAME, an entry NAME.0. */
static int ppcllm_per_layer(const ppcllm_entry *e, ppcllm_u32 ne, const char *name)
{
    char first[PPCLLM_NAME_BYTES + 8];
    size_t n = strlen(name);
    ppcllm_u32 i;
    memcpy(first, name, n);
    memcpy(first + n, ".0", 3);
    for (i = 0; i < ne; i++) {
        if (strcmp(e[i].name, name) == 0) {
            return 0;
        }
    }
    for (i = 0; i < ne; i++) {
        if (strcmp(e[i].name, first) == 0) {
            return 1;
        }
    }
    return 0;
}

/* dst = "NAME.l" + ("", ".scales", ".mins")[which] */
static void ppcllm_layer_name(char *dst, size_t cap, const char *name, int l, int which)
{
    static const char *const suffix[3] = {"", ".scales", ".mins"};
    char digits[16], num[16];
    size_t used = 0;
    int nd = 0, d;
    do { /* the layer number's digits, last first */
        digits[nd++] = (char)('0' + l % 10);
        l /= 10;
    } while (l > 0);
    for (d = 0; d < nd; d++) {
        num[d] = digits[nd - 1 - d];
    }
    num[nd] = '\0';
    dst[0] = '\0';
    ppcllm_append(dst, cap, &used, name);
    ppcllm_append(dst, cap, &used, ".");
    ppcllm_append(dst, cap, &used, num);
    ppcllm_append(dst, cap, &used, suffix[which]);
}

/* A stack as the table holds it: one stacked entry, or per layer NAME.l (each of its own type). */
static ppcllm_status ppcllm_want_stack(ppcllm_model *m, ppcllm_want *w, int *n, ppcllm_weight *dest,
                                       const char *const *names, const ppcllm_entry *e, ppcllm_u32 ne,
                                       int rows, int cols, ppcllm_error *err)
{
    int L = m->cfg.dims.n_layers, l, k;
    if (!ppcllm_per_layer(e, ne, names[0])) {
        *n += ppcllm_want_weight(m, w + *n, dest, names, ppcllm_matrix_dtype(m, e, ne, names[0]), (size_t)L,
                                 rows, cols);
        return PPCLLM_OK;
    }
    dest->layer = (ppcllm_weight *)ppcllm_calloc(&m->a, (size_t)L, sizeof(ppcllm_weight));
    if (dest->layer == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory loading tensor ", names[0]);
    }
    dest->rows = rows;
    dest->cols = cols;
    for (l = 0; l < L; l++) {
        ppcllm_weight *lw = &dest->layer[l];
        const char *lnames[3];
        for (k = 0; k < 3; k++) {
            ppcllm_layer_name(lw->names[k], sizeof lw->names[k], names[0], l, k);
            lnames[k] = lw->names[k];
        }
        *n += ppcllm_want_weight(m, w + *n, lw, lnames, ppcllm_matrix_dtype(m, e, ne, lnames[0]), 0, rows, cols);
    }
    return PPCLLM_OK;
}

/* wants at most: 3 per matrix and its scales / mins, per layer for the 7 layer stacks; 16 for
 * the rest (embeddings and classifier 3 each, 3 norms, 3 biases, RoPE factors, 2 Q/K norms) */
size_t ppcllm_want_capacity(const ppcllm_model *m, int *ok)
{
    return ppcllm_mul((size_t)m->cfg.dims.n_layers, 21, ok) + 16;
}

int ppcllm_wanted(ppcllm_model *m, ppcllm_want *w, const ppcllm_entry *e, ppcllm_u32 ne,
                         ppcllm_error *err, ppcllm_status *st)
{
    size_t L = (size_t)m->cfg.dims.n_layers;
    int D = m->cfg.dims.dim, H = m->cfg.dims.hidden_dim, V = m->cfg.dims.vocab_size;
    int hs = m->cfg.dims.head_size; /* n_heads * head_size <= PPCLLM_MAX_DIM: load.c checks */
    int Q = m->cfg.dims.n_heads * hs, K = m->cfg.dims.n_kv_heads * hs;
    int n = 0;
#define PPCLLM_DT(names) ppcllm_matrix_dtype(m, e, ne, names[0])
#define PPCLLM_STACK(dest, names, rows, cols) \
    if (*st == PPCLLM_OK) { \
        *st = ppcllm_want_stack(m, w, &n, dest, names, e, ne, rows, cols, err); \
    }
    *st = PPCLLM_OK;
    n += ppcllm_want_weight(m, w + n, &m->w.tok_embeddings, ppcllm_names_tok, PPCLLM_DT(ppcllm_names_tok), 0, V, D);
    ppcllm_want1(w + n++, "rms_att", (void **)&m->w.rms_att, PPCLLM_DTYPE_F32, 2, L, (size_t)D, 1);
    PPCLLM_STACK(&m->w.wq, ppcllm_names_wq, Q, D)
    PPCLLM_STACK(&m->w.wk, ppcllm_names_wk, K, D)
    PPCLLM_STACK(&m->w.wv, ppcllm_names_wv, K, D)
    PPCLLM_STACK(&m->w.wo, ppcllm_names_wo, D, Q)
    ppcllm_want1(w + n++, "rms_ffn", (void **)&m->w.rms_ffn, PPCLLM_DTYPE_F32, 2, L, (size_t)D, 1);
    PPCLLM_STACK(&m->w.w1, ppcllm_names_w1, H, D)
    PPCLLM_STACK(&m->w.w2, ppcllm_names_w2, D, H)
    PPCLLM_STACK(&m->w.w3, ppcllm_names_w3, H, D)
    ppcllm_want1(w + n++, "rms_final", (void **)&m->w.rms_final, PPCLLM_DTYPE_F32, 1, (size_t)D, 1, 1);
    if (!m->cfg.shared_classifier) {
        n += ppcllm_want_weight(m, w + n, &m->w.wcls, ppcllm_names_wcls, PPCLLM_DT(ppcllm_names_wcls), 0, V, D);
    }
    if ((m->cfg.flags & PPCLLM_FLAG_QKV_BIAS) != 0) {
        ppcllm_want1(w + n++, "bq", (void **)&m->w.bq, PPCLLM_DTYPE_F32, 2, L, (size_t)Q, 1);
        ppcllm_want1(w + n++, "bk", (void **)&m->w.bk, PPCLLM_DTYPE_F32, 2, L, (size_t)K, 1);
        ppcllm_want1(w + n++, "bv", (void **)&m->w.bv, PPCLLM_DTYPE_F32, 2, L, (size_t)K, 1);
    }
    if ((m->cfg.flags & PPCLLM_FLAG_ROPE_FREQS) != 0) {
        ppcllm_want1(w + n++, "rope_freqs", (void **)&m->w.rope_freqs, PPCLLM_DTYPE_F32, 1, (size_t)(hs / 2), 1, 1);
    }
    if ((m->cfg.flags & PPCLLM_FLAG_QK_NORM) != 0) {
        ppcllm_want1(w + n++, "q_norm", (void **)&m->w.q_norm, PPCLLM_DTYPE_F32, 2, L, (size_t)hs, 1);
        ppcllm_want1(w + n++, "k_norm", (void **)&m->w.k_norm, PPCLLM_DTYPE_F32, 2, L, (size_t)hs, 1);
    }
#undef PPCLLM_STACK
#undef PPCLLM_DT
    return n;
}
