/* load.h: what load.c and load_wants.c share: a tensor table entry as parsed, and a tensor the
 * model wants (its name, where its data goes, its type and shape). */
#ifndef PPCLLM_LOAD_H
#define PPCLLM_LOAD_H

#include "internal.h"

typedef struct {
    const char *name;
    void **dest;
    ppcllm_u32 dtype;
    int ndim;
    size_t dims[3];
} ppcllm_want;

typedef struct {
    char name[PPCLLM_NAME_BYTES + 1];
    ppcllm_u32 dtype;
    ppcllm_u32 ndim;
    ppcllm_u64 dims[3];
    ppcllm_u64 offset;
    ppcllm_u64 nbytes;
} ppcllm_entry;

/* How many wants a model may have (*ok cleared on overflow). */
size_t ppcllm_want_capacity(const ppcllm_model *m, int *ok);
/* The wants of model m given the table e[0 .. ne) into w (room for ppcllm_want_capacity); returns
 * how many; *st set on failure (out of memory for a per-layer stack). */
int ppcllm_wanted(ppcllm_model *m, ppcllm_want *w, const ppcllm_entry *e, ppcllm_u32 ne, ppcllm_error *err,
                  ppcllm_status *st);

#endif /* PPCLLM_LOAD_H */
