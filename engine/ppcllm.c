/* ppcllm.c: the public API's lifetime and settings: open, close, context, threads, facts.
 * Generation and chat are in generate.c; see internal.h for the map of the modules. */
#include "internal.h"

void ppcllm_close(ppcllm_model *m)
{
    const ppcllm_allocator *a;
    if (m == NULL) {
        return;
    }
    a = &m->a;
    ppcllm_pool_destroy(m->workers.pool, a);
    ppcllm_free_weights(m);
    ppcllm_free_state(m);
    ppcllm_tokenizer_free(&m->tok, a);
    ppcllm_free(a, m->chat.pool);
    ppcllm_free(a, m);
}

void ppcllm_get_info(const ppcllm_model *m, ppcllm_info *info)
{
    *info = m->cfg.dims;
}

const char *ppcllm_kernel_name(const ppcllm_model *m)
{
    return m->kernels->name;
}

ppcllm_status ppcllm_set_context(ppcllm_model *m, int ctx, ppcllm_error *err)
{
    int old = m->cfg.dims.seq_len;
    ppcllm_status st;
    if (ctx < 1) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "context must be at least 1 position", NULL);
    }
    m->cfg.dims.seq_len = ctx < m->cfg.file_seq_len ? ctx : m->cfg.file_seq_len;
    if (m->cfg.dims.seq_len == old) {
        return PPCLLM_OK;
    }
    ppcllm_free_cache(m);
    st = ppcllm_alloc_cache(m, err);
    if (st != PPCLLM_OK) {
        m->cfg.dims.seq_len = 0; /* unusable until a smaller context is set */
    }
    return st;
}

int ppcllm_get_context(const ppcllm_model *m)
{
    return m->cfg.dims.seq_len;
}

int ppcllm_get_model_context(const ppcllm_model *m)
{
    return m->cfg.file_seq_len;
}

ppcllm_status ppcllm_set_threads(ppcllm_model *m, int threads, ppcllm_error *err)
{
    ppcllm_pool *pool = NULL;
    ppcllm_status st;
    if (threads < 1 || threads > PPCLLM_MAX_THREADS || (!PPCLLM_THREADS && threads > 1)) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT,
                           PPCLLM_THREADS ? "thread count out of range (1 .. " PPCLLM_STRING(PPCLLM_MAX_THREADS) ")"
                                          : "this build has no thread support: use 1 thread", NULL);
    }
    st = ppcllm_pool_create(&pool, threads, &m->a);
    if (st != PPCLLM_OK) {
        return ppcllm_fail(err, st, "cannot start the worker threads", NULL);
    }
    ppcllm_pool_destroy(m->workers.pool, &m->a);
    m->workers.pool = pool;
    m->workers.count = threads;
    return PPCLLM_OK;
}

int ppcllm_get_threads(const ppcllm_model *m)
{
    return m->workers.count;
}

ppcllm_status ppcllm_open(ppcllm_model **out, const ppcllm_io *io, const ppcllm_allocator *alloc,
                          ppcllm_error *err)
{
    ppcllm_allocator a;
    ppcllm_model *m;
    ppcllm_status st;
    *out = NULL;
    if (io == NULL || io->read == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "ppcllm_open: no reader given", NULL);
    }
    a.alloc = alloc != NULL && alloc->alloc != NULL ? alloc->alloc : ppcllm_default_alloc;
    a.ud = alloc != NULL ? alloc->ud : NULL;
    m = (ppcllm_model *)ppcllm_calloc(&a, 1, sizeof *m);
    if (m == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory opening the model", NULL);
    }
    m->a = a;
    m->kernels = ppcllm_kernels();
    st = ppcllm_load(m, io, err);
    if (st != PPCLLM_OK) {
        ppcllm_close(m);
        return st;
    }
    ppcllm_ok(err);
    *out = m;
    return PPCLLM_OK;
}
