/* pool.c: the worker pool (POSIX threads where the target has more than one hardware thread). */
#include "ppcllm_config.h"
#if PPCLLM_THREADS && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200112L
#endif
#include "pool.h"

#if PPCLLM_THREADS
#include <pthread.h>

typedef struct {
    struct ppcllm_pool *pool;
    int index;
} ppcllm_worker_arg;

struct ppcllm_pool {
    pthread_t threads[PPCLLM_MAX_THREADS];
    ppcllm_worker_arg args[PPCLLM_MAX_THREADS];
    int workers;             /* threads besides the caller */
    int started;             /* workers actually created */
    pthread_mutex_t mutex;
    pthread_cond_t wake;     /* a new task or quit */
    pthread_cond_t finished; /* the last worker finished the task */
    unsigned long generation;
    int pending;
    int quit;
    ppcllm_task_fn fn;
    void *ctx;
};

static void *ppcllm_worker(void *arg)
{
    ppcllm_pool *pool = ((ppcllm_worker_arg *)arg)->pool;
    int part = ((ppcllm_worker_arg *)arg)->index + 1;
    unsigned long seen = 0;
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        ppcllm_task_fn fn;
        void *ctx;
        while (pool->generation == seen && !pool->quit) {
            pthread_cond_wait(&pool->wake, &pool->mutex);
        }
        if (pool->quit) {
            break;
        }
        seen = pool->generation;
        fn = pool->fn;
        ctx = pool->ctx;
        pthread_mutex_unlock(&pool->mutex);
        fn(ctx, part, pool->workers + 1);
        pthread_mutex_lock(&pool->mutex);
        if (--pool->pending == 0) {
            pthread_cond_signal(&pool->finished);
        }
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

ppcllm_status ppcllm_pool_create(ppcllm_pool **out, int threads, const ppcllm_allocator *a)
{
    ppcllm_pool *pool;
    int i;
    *out = NULL;
    if (threads < 1 || threads > PPCLLM_MAX_THREADS) {
        return PPCLLM_ERR_ARGUMENT;
    }
    if (threads == 1) {
        return PPCLLM_OK;
    }
    pool = (ppcllm_pool *)a->alloc(a->ud, NULL, sizeof *pool);
    if (pool == NULL) {
        return PPCLLM_ERR_NOMEM;
    }
    pool->workers = threads - 1;
    pool->started = 0;
    pool->generation = 0;
    pool->pending = 0;
    pool->quit = 0;
    pool->fn = NULL;
    pool->ctx = NULL;
    pthread_mutex_init(&pool->mutex, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->finished, NULL);
    for (i = 0; i < pool->workers; i++) {
        pool->args[i].pool = pool;
        pool->args[i].index = i;
        if (pthread_create(&pool->threads[i], NULL, ppcllm_worker, &pool->args[i]) != 0) {
            ppcllm_pool_destroy(pool, a);
            return PPCLLM_ERR_NOMEM;
        }
        pool->started++;
    }
    *out = pool;
    return PPCLLM_OK;
}

void ppcllm_pool_run(ppcllm_pool *pool, ppcllm_task_fn fn, void *ctx)
{
    if (pool == NULL) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    pool->fn = fn;
    pool->ctx = ctx;
    pool->pending = pool->workers;
    pool->generation++;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    fn(ctx, 0, pool->workers + 1);
    pthread_mutex_lock(&pool->mutex);
    while (pool->pending > 0) {
        pthread_cond_wait(&pool->finished, &pool->mutex);
    }
    pthread_mutex_unlock(&pool->mutex);
}

void ppcllm_pool_destroy(ppcllm_pool *pool, const ppcllm_allocator *a)
{
    int i;
    if (pool == NULL) {
        return;
    }
    pthread_mutex_lock(&pool->mutex);
    pool->quit = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
    for (i = 0; i < pool->started; i++) {
        pthread_join(pool->threads[i], NULL);
    }
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->finished);
    pthread_mutex_destroy(&pool->mutex);
    a->alloc(a->ud, pool, 0);
}

#else /* no thread support: everything runs on the caller */

ppcllm_status ppcllm_pool_create(ppcllm_pool **out, int threads, const ppcllm_allocator *a)
{
    (void)a;
    *out = NULL;
    return threads == 1 ? PPCLLM_OK : PPCLLM_ERR_ARGUMENT;
}

void ppcllm_pool_run(ppcllm_pool *pool, ppcllm_task_fn fn, void *ctx)
{
    (void)pool;
    fn(ctx, 0, 1);
}

void ppcllm_pool_destroy(ppcllm_pool *pool, const ppcllm_allocator *a)
{
    (void)pool;
    (void)a;
}
#endif /* PPCLLM_THREADS */
