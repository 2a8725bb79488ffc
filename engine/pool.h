/* pool.h: a small worker pool that splits a task into parts, one per thread.
 * Workers sleep on a condition variable between tasks
 * (no spinning). Without PPCLLM_THREADS the pool is a stub that runs everything on the caller. */
#ifndef PPCLLM_POOL_H
#define PPCLLM_POOL_H

#include "ppcllm.h"

typedef struct ppcllm_pool ppcllm_pool;
/* Run part `part` of `parts` of a task. */
typedef void (*ppcllm_task_fn)(void *ctx, int part, int parts);

/* A pool of `threads` threads in all (the caller included). threads == 1 gives *out = NULL,
 * which ppcllm_pool_run accepts. Returns PPCLLM_OK, PPCLLM_ERR_NOMEM, or PPCLLM_ERR_ARGUMENT
 * when threads is out of range or the build has no thread support. */
ppcllm_status ppcllm_pool_create(ppcllm_pool **out, int threads, const ppcllm_allocator *a);
/* Run fn(ctx, part, parts) for every part, in parallel; returns when all are done. */
void ppcllm_pool_run(ppcllm_pool *pool, ppcllm_task_fn fn, void *ctx);
void ppcllm_pool_destroy(ppcllm_pool *pool, const ppcllm_allocator *a);

#endif /* PPCLLM_POOL_H */
