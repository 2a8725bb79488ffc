/* load.c: the converted model file (layout in toolkit/format/layout.py; PPCLLM_FORMAT_VERSION ties the
 * two): the header, the tensor table, the tensors and the embedded blobs (the tokenizer's, the
 * tokenizer kind's, the chat template's; the chat blob's parser is chat's own, in generate.c).
 *
 * The file comes through a read callback, field by field, in the file's declared byte order;
 * every size is checked against the file before it is trusted. Parsing works on bytes already
 * in memory (the header, each table entry, each blob), so a loader over mapped bytes can use
 * the same parsers, and the stored layout depends only on byte order, never on the target. */
#include "internal.h"
#include "load.h"

#include <string.h>

typedef struct {
    const ppcllm_io *io;
    ppcllm_u64 pos;
    ppcllm_error *err;
} ppcllm_stream;

static ppcllm_status ppcllm_read(ppcllm_stream *s, void *dst, size_t n)
{
    size_t got = s->io->read(s->io->ud, dst, n);
    s->pos += got;
    if (got != n) {
        return ppcllm_fail(s->err, PPCLLM_ERR_IO, "model file ended early (truncated?): ",
                           "re-create it with `ppc-llm convert`");
    }
    return PPCLLM_OK;
}

static ppcllm_status ppcllm_skip_to(ppcllm_stream *s, ppcllm_u64 offset)
{
    unsigned char scratch[256];
    while (s->pos < offset) {
        ppcllm_u64 left = offset - s->pos;
        size_t n = left < sizeof scratch ? (size_t)left : sizeof scratch;
        ppcllm_status st = ppcllm_read(s, scratch, n);
        if (st != PPCLLM_OK) {
            return st;
        }
    }
    return PPCLLM_OK;
}
static void ppcllm_free_weight(const ppcllm_allocator *a, ppcllm_weight *w, int n_layers)
{
    int l;
    if (w->layer != NULL) {
        for (l = 0; l < n_layers; l++) {
            ppcllm_free_weight(a, &w->layer[l], 0);
        }
        ppcllm_free(a, w->layer);
        w->layer = NULL;
    }
    ppcllm_free(a, w->f);
    ppcllm_free(a, w->codes);
    ppcllm_free(a, w->scales);
    ppcllm_free(a, w->mins);
}


void ppcllm_free_weights(ppcllm_model *m)
{
    const ppcllm_allocator *a = &m->a;
    int L = m->cfg.dims.n_layers;
    ppcllm_free_weight(a, &m->w.tok_embeddings, L);
    ppcllm_free(a, m->w.rms_att);
    ppcllm_free_weight(a, &m->w.wq, L);
    ppcllm_free_weight(a, &m->w.wk, L);
    ppcllm_free_weight(a, &m->w.wv, L);
    ppcllm_free_weight(a, &m->w.wo, L);
    ppcllm_free(a, m->w.rms_ffn);
    ppcllm_free_weight(a, &m->w.w1, L);
    ppcllm_free_weight(a, &m->w.w2, L);
    ppcllm_free_weight(a, &m->w.w3, L);
    ppcllm_free(a, m->w.rms_final);
    if (!m->cfg.shared_classifier) {
        ppcllm_free_weight(a, &m->w.wcls, L);
    }
}

static ppcllm_status ppcllm_parse_header(ppcllm_model *m, const unsigned char *h, int *big,
                                         ppcllm_u64 io_size, ppcllm_u32 *n_entries,
                                         ppcllm_u64 *file_size, ppcllm_error *err)
{
    ppcllm_u32 v[7], head;
    int i, ok = 1;
    if (memcmp(h, "PPCLLM\0\0", 8) != 0) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "not a ppc-llm model file (bad magic): ",
                           "create one with `ppc-llm convert`");
    }
    if (ppcllm_get_u32(h + 8, 1) == PPCLLM_BOM) {
        *big = 1;
    } else if (ppcllm_get_u32(h + 8, 0) == PPCLLM_BOM) {
        *big = 0;
    } else {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file has an invalid byte-order mark: ",
                           "re-create it with `ppc-llm convert`");
    }
    if (*big != ppcllm_host_is_big()) {
        return ppcllm_fail(err, PPCLLM_ERR_BYTEORDER,
                           *big ? "model file is big-endian but this machine is little-endian: "
                                : "model file is little-endian but this machine is big-endian: ",
                           *big ? "convert it with `ppc-llm convert --endian little`"
                                : "convert it with `ppc-llm convert --endian big`");
    }
    if (ppcllm_get_u32(h + 12, *big) != PPCLLM_FORMAT_VERSION) {
        return ppcllm_fail(err, PPCLLM_ERR_VERSION,
                           "model file has another format version than this program reads: ",
                           "re-create it with this version's `ppc-llm convert`");
    }
    if (ppcllm_get_u32(h + 16, *big) != PPCLLM_HEADER_SIZE) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file header size is wrong: ",
                           "re-create it with `ppc-llm convert`");
    }
    {
        ppcllm_u32 align = ppcllm_get_u32(h + 20, *big);
        if (align < PPCLLM_ALIGN || align % PPCLLM_ALIGN != 0 || align > 4096u) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file tensor alignment is unusable: ",
                               "re-create it with `ppc-llm convert`");
        }
    }
    *file_size = ppcllm_get_u64(h + 24, *big);
    if (io_size != 0 && io_size != *file_size) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT,
                           "model file size differs from the size in its header (truncated?): ",
                           "re-create it with `ppc-llm convert`");
    }
    *n_entries = ppcllm_get_u32(h + 32, *big);
    if (*n_entries == 0 || *n_entries > PPCLLM_MAX_TENSORS) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file tensor count is out of range", NULL);
    }
    for (i = 0; i < 7; i++) {
        v[i] = ppcllm_get_u32(h + 36 + 4 * i, *big);
        if (v[i] == 0 || v[i] > (ppcllm_u32)PPCLLM_MAX_DIM) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file config value out of range", NULL);
        }
    }
    m->cfg.dims.dim = (int)v[0];
    m->cfg.dims.hidden_dim = (int)v[1];
    m->cfg.dims.n_layers = (int)v[2];
    m->cfg.dims.n_heads = (int)v[3];
    m->cfg.dims.n_kv_heads = (int)v[4];
    m->cfg.dims.vocab_size = (int)v[5];
    m->cfg.dims.seq_len = (int)v[6];
    m->cfg.shared_classifier = ppcllm_get_u32(h + 64, *big) != 0;
    m->cfg.rope_theta = ppcllm_get_f32(h + 68, *big);
    m->cfg.norm_eps = ppcllm_get_f32(h + 72, *big);
    m->cfg.quant = ppcllm_get_u32(h + 76, *big);
    m->cfg.tok_kind = ppcllm_get_u32(h + 80, *big);
    m->cfg.flags = ppcllm_get_u32(h + 84, *big);
    head = ppcllm_get_u32(h + 88, *big);
    if (m->cfg.tok_kind > PPCLLM_TOKENIZER_SPM ||
        (m->cfg.flags & ~(PPCLLM_FLAG_FLOAT_ACTIVATIONS | PPCLLM_FLAG_CHATML | PPCLLM_FLAG_QKV_BIAS |
                             PPCLLM_FLAG_ROPE_FREQS | PPCLLM_FLAG_QK_NORM)) != 0) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file has an unknown tokenizer kind or flags: ",
                           "re-create it with this version's `ppc-llm convert`");
    }
    if (m->cfg.quant != PPCLLM_DTYPE_F32 && m->cfg.quant != PPCLLM_DTYPE_Q8_0 && m->cfg.quant != PPCLLM_DTYPE_Q4_0 &&
        m->cfg.quant != PPCLLM_DTYPE_Q4_1) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file has an unknown weight quantization: ",
                           "re-create it with `ppc-llm convert`");
    }
    if (m->cfg.quant == PPCLLM_DTYPE_Q4_1 && (m->cfg.flags & PPCLLM_FLAG_FLOAT_ACTIVATIONS) == 0) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file has q4_1 quantization without float activations "
                           "(GGUF models only): ", "re-create it with `ppc-llm convert`");
    }
    if ((head == 0 && m->cfg.dims.dim % m->cfg.dims.n_heads != 0) || head > (ppcllm_u32)PPCLLM_MAX_DIM ||
        (ppcllm_u64)v[3] * (head != 0 ? head : v[0] / v[3]) > (ppcllm_u64)PPCLLM_MAX_DIM) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file config is inconsistent", NULL);
    }
    m->cfg.dims.head_size = head != 0 ? (int)head : m->cfg.dims.dim / m->cfg.dims.n_heads;
    if (m->cfg.dims.head_size % 2 != 0 || m->cfg.dims.n_heads % m->cfg.dims.n_kv_heads != 0 ||
        m->cfg.dims.vocab_size < 3) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file config is inconsistent", NULL);
    }
    if (!(m->cfg.rope_theta > 0.0f) || !(m->cfg.norm_eps >= 0.0f) || m->cfg.rope_theta > 1e30f) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file rope theta or norm epsilon invalid", NULL);
    }
    /* the KV cache and every weight must be addressable on this machine */
    ppcllm_mul(ppcllm_mul(ppcllm_mul((size_t)v[2], (size_t)v[6], &ok), (size_t)v[0], &ok),
               2 * sizeof(float), &ok);
    if (!ok) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "model is too large for this machine's address space", NULL);
    }
    return PPCLLM_OK;
}

static ppcllm_status ppcllm_parse_entry(ppcllm_entry *e, const unsigned char *p, int big,
                                        ppcllm_u64 min_offset, ppcllm_u64 file_size,
                                        ppcllm_error *err)
{
    ppcllm_u64 count = 1, elsize;
    ppcllm_u32 i;
    memcpy(e->name, p, PPCLLM_NAME_BYTES);
    e->name[PPCLLM_NAME_BYTES] = '\0';
    e->dtype = ppcllm_get_u32(p + 32, big);
    e->ndim = ppcllm_get_u32(p + 36, big);
    e->offset = ppcllm_get_u64(p + 56, big);
    if (e->ndim < 1 || e->ndim > 3 || (e->dtype > PPCLLM_DTYPE_Q4_1 && ppcllm_kq_format_of(e->dtype) == NULL)) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file tensor entry is malformed: ", e->name);
    }
    for (i = 0; i < 3; i++) {
        e->dims[i] = i < e->ndim ? ppcllm_get_u32(p + 40 + 4 * i, big) : 1;
        if (e->dims[i] > (ppcllm_u64)1 << 31) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file tensor is too large: ", e->name);
        }
        if (e->dims[i] != 0 && count > ((ppcllm_u64)1 << 40) / e->dims[i]) { /* product stays < 2^41 */
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file tensor is too large: ", e->name);
        }
        count *= e->dims[i];
    }
    if (ppcllm_kq_format_of(e->dtype) != NULL) {
        /* kept GGUF blocks: one matrix (rows, cols), cols whole blocks, in row groups */
        e->nbytes = e->ndim == 2 ? ppcllm_kq_nbytes(ppcllm_kq_format_of(e->dtype), e->dims[0], e->dims[1]) : 0;
        if (e->nbytes == 0) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file block tensor has an impossible shape: ",
                               e->name);
        }
    } else if (e->dtype == PPCLLM_DTYPE_Q8_0 || e->dtype == PPCLLM_DTYPE_Q4_0 || e->dtype == PPCLLM_DTYPE_Q4_1) {
        /* codes: rows (all but the last dimension) x padded groups x bytes per group */
        ppcllm_u64 cols = e->dims[e->ndim - 1];
        ppcllm_u64 groups = ((cols + PPCLLM_GROUP - 1) / PPCLLM_GROUP + 3) / 4 * 4;
        elsize = e->dtype == PPCLLM_DTYPE_Q8_0 ? PPCLLM_GROUP : PPCLLM_GROUP / 2;
        e->nbytes = count / (cols == 0 ? 1 : cols) * groups * elsize;
    } else {
        elsize = e->dtype == PPCLLM_DTYPE_F32 ? 4 : e->dtype == PPCLLM_DTYPE_F16 ? 2 : 1;
        e->nbytes = count * elsize;
    }
    if (e->offset < min_offset || e->offset % PPCLLM_ALIGN != 0 || e->offset > file_size ||
        e->nbytes > file_size - e->offset) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT,
                           "model file tensor lies outside the file, overlaps or is misaligned: ",
                           e->name);
    }
    return PPCLLM_OK;
}

static int ppcllm_match(const ppcllm_entry *e, const ppcllm_want *w)
{
    int i;
    if (strcmp(e->name, w->name) != 0 || e->dtype != w->dtype || (int)e->ndim != w->ndim) {
        return 0;
    }
    for (i = 0; i < w->ndim; i++) {
        if (e->dims[i] != (ppcllm_u64)w->dims[i]) {
            return 0;
        }
    }
    return 1;
}


static ppcllm_status ppcllm_read_chat(ppcllm_model *m, ppcllm_stream *s, size_t n, int big)
{
    unsigned char *blob;
    ppcllm_status st;
    if (n < 1 || n > 1u << 20) {
        return ppcllm_fail(s->err, PPCLLM_ERR_FORMAT, "model file chat data has an invalid size", NULL);
    }
    blob = (unsigned char *)ppcllm_alloc(&m->a, n);
    m->chat.pool = (char *)ppcllm_alloc(&m->a, n + PPCLLM_CHAT_STRINGS);
    if (blob == NULL || m->chat.pool == NULL) {
        ppcllm_free(&m->a, blob);
        return ppcllm_fail(s->err, PPCLLM_ERR_NOMEM, "out of memory loading the chat template", NULL);
    }
    st = ppcllm_read(s, blob, n);
    if (st == PPCLLM_OK) {
        st = ppcllm_parse_chat(&m->chat, blob, n, big, s->err);
    }
    ppcllm_free(&m->a, blob);
    m->chat.present = st == PPCLLM_OK;
    return st;
}

/* The tokenizer kind's own blob (e.g. "bpe"): its size checked, then read whole and handed over. */
static ppcllm_status ppcllm_read_kind_blob(ppcllm_model *m, ppcllm_stream *s, size_t n, int big)
{
    ppcllm_tokenizer *t = &m->tok;
    ppcllm_u32 *words;
    ppcllm_status st = t->ops->blob_ok(n, s->err);
    if (st != PPCLLM_OK) {
        return st;
    }
    words = (ppcllm_u32 *)ppcllm_alloc(&m->a, n);
    if (words == NULL) {
        return ppcllm_fail(s->err, PPCLLM_ERR_NOMEM, "out of memory loading the ", t->ops->name);
    }
    st = ppcllm_read(s, words, n);
    if (st != PPCLLM_OK) {
        ppcllm_free(&m->a, words);
        return st;
    }
    return t->ops->take_blob(t, words, n, big, s->err);
}

/* The "tokenizer" blob (every kind): read whole, parsed, freed. */
static ppcllm_status ppcllm_read_vocab_blob(ppcllm_model *m, ppcllm_stream *s, size_t n, int big)
{
    ppcllm_status st;
    unsigned char *blob = (unsigned char *)ppcllm_alloc(&m->a, n);
    if (blob == NULL) {
        return ppcllm_fail(s->err, PPCLLM_ERR_NOMEM, "out of memory loading the tokenizer", NULL);
    }
    st = ppcllm_read(s, blob, n);
    if (st == PPCLLM_OK) {
        st = ppcllm_tokenizer_parse(&m->tok, &m->a, blob, n, big, s->err);
    }
    ppcllm_free(&m->a, blob);
    return st;
}

/* Which blobs of the table were read. */
typedef struct {
    int vocab, kind, chat;
} ppcllm_seen;

/* Read e when it is a blob this model takes (the tokenizer's, the tokenizer kind's, the chat
 * template's), each once, its status into *st; 0 when e is none of them. */
static int ppcllm_read_blob_entry(ppcllm_model *m, ppcllm_stream *s, const ppcllm_entry *e, int big,
                                  ppcllm_seen *seen, ppcllm_status *st)
{
    const char *kind_blob = m->tok.ops->blob;
    size_t n = (size_t)e->nbytes;
    if (e->dtype != PPCLLM_DTYPE_BYTES) {
        return 0;
    }
    if (strcmp(e->name, "tokenizer") == 0 && !seen->vocab) {
        seen->vocab = 1;
        *st = ppcllm_read_vocab_blob(m, s, n, big);
    } else if (kind_blob != NULL && strcmp(e->name, kind_blob) == 0 && !seen->kind) {
        seen->kind = 1;
        *st = ppcllm_read_kind_blob(m, s, n, big);
    } else if (strcmp(e->name, "chat") == 0 && !seen->chat && (m->cfg.flags & PPCLLM_FLAG_CHATML) != 0) {
        seen->chat = 1;
        *st = ppcllm_read_chat(m, s, n, big);
    } else {
        return 0;
    }
    return 1;
}

/* Every blob the header asks for was there. */
static ppcllm_status ppcllm_check_seen(const ppcllm_model *m, const ppcllm_seen *seen, ppcllm_error *err)
{
    if (!seen->vocab) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file has no embedded tokenizer: ",
                           "re-create it with `ppc-llm convert --tokenizer`");
    }
    if (m->tok.ops->blob != NULL && !seen->kind) {
        char msg[PPCLLM_ERRMSG_SIZE];
        size_t used = 0;
        msg[0] = '\0';
        ppcllm_append(msg, sizeof msg, &used, "model file lacks its ");
        ppcllm_append(msg, sizeof msg, &used, m->tok.ops->name);
        ppcllm_append(msg, sizeof msg, &used, " data: ");
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, msg, "re-create it with `ppc-llm convert`");
    }
    if ((m->cfg.flags & PPCLLM_FLAG_CHATML) != 0 && !seen->chat) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file lacks its chat template data: ",
                           "re-create it with `ppc-llm convert`");
    }
    return PPCLLM_OK;
}

static ppcllm_status ppcllm_read_entries(ppcllm_model *m, ppcllm_stream *s, ppcllm_entry *entries,
                                         ppcllm_u32 n_entries, const ppcllm_want *want, int n_want,
                                         int big)
{
    ppcllm_seen seen = {0, 0, 0};
    ppcllm_u32 i;
    int k;
    for (i = 0; i < n_entries; i++) {
        const ppcllm_entry *e = &entries[i];
        ppcllm_status st = ppcllm_skip_to(s, e->offset);
        if (st != PPCLLM_OK) {
            return st;
        }
        for (k = 0; k < n_want; k++) {
            if (ppcllm_match(e, &want[k]) && *want[k].dest == NULL) {
                break;
            }
        }
        if (k < n_want) {
            *want[k].dest = ppcllm_alloc(&m->a, (size_t)e->nbytes);
            if (*want[k].dest == NULL) {
                return ppcllm_fail(s->err, PPCLLM_ERR_NOMEM, "out of memory loading tensor ", e->name);
            }
            st = ppcllm_read(s, *want[k].dest, (size_t)e->nbytes);
        } else if (!ppcllm_read_blob_entry(m, s, e, big, &seen, &st)) {
            return ppcllm_fail(s->err, PPCLLM_ERR_FORMAT,
                               "model file has an unexpected, repeated or wrongly shaped tensor: ", e->name);
        }
        if (st != PPCLLM_OK) {
            return st;
        }
    }
    for (k = 0; k < n_want; k++) {
        if (*want[k].dest == NULL) {
            return ppcllm_fail(s->err, PPCLLM_ERR_FORMAT, "model file lacks tensor ", want[k].name);
        }
    }
    return ppcllm_check_seen(m, &seen, s->err);
}

/* The tensors the table lists: which the model wants, then each read into place. */
static ppcllm_status ppcllm_read_table(ppcllm_model *m, ppcllm_stream *s, ppcllm_entry *entries,
                                       ppcllm_u32 n_entries, int big, ppcllm_error *err)
{
    ppcllm_status st = PPCLLM_OK;
    int ok = 1, n_want;
    size_t cap = ppcllm_want_capacity(m, &ok);
    ppcllm_want *want = ok ? (ppcllm_want *)ppcllm_calloc(&m->a, cap, sizeof(ppcllm_want)) : NULL;
    if (want == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory reading the tensor table", NULL);
    }
    n_want = ppcllm_wanted(m, want, entries, n_entries, err, &st);
    if (st == PPCLLM_OK) {
        st = ppcllm_read_entries(m, s, entries, n_entries, want, n_want, big);
    }
    ppcllm_free(&m->a, want);
    return st;
}

ppcllm_status ppcllm_load(ppcllm_model *m, const ppcllm_io *io, ppcllm_error *err)
{
    unsigned char header[PPCLLM_HEADER_SIZE];
    unsigned char raw[PPCLLM_ENTRY_SIZE];
    ppcllm_entry *entries;
    ppcllm_stream s;
    ppcllm_u64 file_size = 0, next;
    ppcllm_u32 n_entries = 0, i;
    int big = 0;
    ppcllm_status st;
    s.io = io;
    s.pos = 0;
    s.err = err;
    st = ppcllm_read(&s, header, sizeof header);
    if (st == PPCLLM_OK) {
        st = ppcllm_parse_header(m, header, &big, io->size, &n_entries, &file_size, err);
    }
    if (st != PPCLLM_OK) {
        return st;
    }
    ppcllm_tokenizer_init(&m->tok, m->cfg.tok_kind, m->cfg.dims.vocab_size);
    entries = (ppcllm_entry *)ppcllm_calloc(&m->a, n_entries, sizeof(ppcllm_entry)); /* n_entries checked */
    if (entries == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory reading the tensor table", NULL);
    }
    next = (ppcllm_u64)PPCLLM_HEADER_SIZE + (ppcllm_u64)n_entries * PPCLLM_ENTRY_SIZE;
    for (i = 0; i < n_entries && st == PPCLLM_OK; i++) {
        st = ppcllm_read(&s, raw, sizeof raw);
        if (st == PPCLLM_OK) {
            st = ppcllm_parse_entry(&entries[i], raw, big, next, file_size, err);
        }
        if (st == PPCLLM_OK && (ppcllm_u64)(size_t)entries[i].nbytes != entries[i].nbytes) {
            st = ppcllm_fail(err, PPCLLM_ERR_NOMEM, "tensor is too large for this machine: ", entries[i].name);
        }
        if (st == PPCLLM_OK) {
            next = entries[i].offset + entries[i].nbytes;
        }
    }
    if (st == PPCLLM_OK) {
        st = ppcllm_read_table(m, &s, entries, n_entries, big, err);
    }
    ppcllm_free(&m->a, entries);
    if (st != PPCLLM_OK) {
        return st;
    }
    if (m->cfg.shared_classifier) {
        m->w.wcls = m->w.tok_embeddings;
    }
    st = ppcllm_set_threads(m, PPCLLM_DEFAULT_THREADS, err);
    if (st != PPCLLM_OK) {
        return st;
    }
    st = m->tok.ops->prepare(&m->tok, &m->a, err);
    if (st == PPCLLM_OK) {
        st = ppcllm_chat_prepare(m, err);
    }
    if (st != PPCLLM_OK) {
        return st;
    }
    m->cfg.file_seq_len = m->cfg.dims.seq_len;
    if (m->cfg.dims.seq_len > PPCLLM_DEFAULT_CTX) {
        m->cfg.dims.seq_len = PPCLLM_DEFAULT_CTX;
    }
    return ppcllm_alloc_state(m, err);
}
