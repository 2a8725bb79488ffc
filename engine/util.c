/* util.c: errors, allocation through the one hook, byte order (no assumption about the host). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Errors and allocation                                                                      */

/* Append the NUL-terminated src to dst[*used], never past dst[cap - 1]. */
void ppcllm_append(char *dst, size_t cap, size_t *used, const char *src)
{
    while (*src != '\0' && *used + 1 < cap) {
        dst[(*used)++] = *src++;
    }
    dst[*used] = '\0';
}

ppcllm_status ppcllm_fail(ppcllm_error *err, ppcllm_status status, const char *msg,
                                 const char *detail)
{
    if (err != NULL) {
        size_t used = 0;
        err->status = status;
        ppcllm_append(err->message, sizeof err->message, &used, msg);
        if (detail != NULL) {
            ppcllm_append(err->message, sizeof err->message, &used, detail);
        }
    }
    return status;
}

void ppcllm_ok(ppcllm_error *err)
{
    if (err != NULL) {
        err->status = PPCLLM_OK;
        err->message[0] = '\0';
    }
}

void *ppcllm_default_alloc(void *ud, void *ptr, size_t nsize)
{
    (void)ud;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, nsize);
}

/* a * b, or 0 with *ok cleared when the product does not fit in size_t */
size_t ppcllm_mul(size_t a, size_t b, int *ok)
{
    if (a != 0 && b > (size_t)-1 / a) {
        *ok = 0;
        return 0;
    }
    return a * b;
}

/* Aligned allocation through the hook: over-allocate, keep the offset in the byte before. */
void *ppcllm_alloc(const ppcllm_allocator *a, size_t n)
{
    unsigned char *raw, *p;
    size_t shift;
    if (n > (size_t)-1 - PPCLLM_ALIGN) {
        return NULL;
    }
    raw = (unsigned char *)a->alloc(a->ud, NULL, n + PPCLLM_ALIGN);
    if (raw == NULL) {
        return NULL;
    }
    shift = PPCLLM_ALIGN - (size_t)((ppcllm_uptr)raw % PPCLLM_ALIGN);
    p = raw + shift;
    p[-1] = (unsigned char)shift;
    return p;
}

void *ppcllm_calloc(const ppcllm_allocator *a, size_t count, size_t size)
{
    int ok = 1;
    size_t n = ppcllm_mul(count, size, &ok);
    void *p = ok ? ppcllm_alloc(a, n) : NULL;
    if (p != NULL) {
        memset(p, 0, n);
    }
    return p;
}

void ppcllm_free(const ppcllm_allocator *a, void *p)
{
    if (p != NULL) {
        unsigned char *q = (unsigned char *)p;
        a->alloc(a->ud, q - q[-1], 0);
    }
}

int ppcllm_padded_groups(int cols)
{
    int groups = (cols + PPCLLM_GROUP - 1) / PPCLLM_GROUP;
    return (groups + 3) / 4 * 4;
}

const char *ppcllm_status_name(ppcllm_status status)
{
    switch (status) {
    case PPCLLM_OK: return "ok";
    case PPCLLM_ERR_NOMEM: return "out of memory";
    case PPCLLM_ERR_IO: return "read error";
    case PPCLLM_ERR_FORMAT: return "malformed model file";
    case PPCLLM_ERR_VERSION: return "unsupported model format version";
    case PPCLLM_ERR_BYTEORDER: return "model file has the wrong byte order";
    case PPCLLM_ERR_ARGUMENT: return "invalid argument";
    case PPCLLM_ERR_STOPPED: return "stopped by the callback or the abort hook";
    case PPCLLM_ERR_CONTEXT: return "the context is full";
    }
    return "unknown status";
}

/* ------------------------------------------------------------------------------------------ */
/* Byte order: explicit readers                                                               */

int ppcllm_host_is_big(void)
{
    union {
        ppcllm_u32 u;
        unsigned char c[4];
    } probe;
    probe.u = 0x01020304u;
    return probe.c[0] == 0x01;
}

ppcllm_u32 ppcllm_get_u32(const unsigned char *p, int big)
{
    if (big) {
        return ((ppcllm_u32)p[0] << 24) | ((ppcllm_u32)p[1] << 16) | ((ppcllm_u32)p[2] << 8) | p[3];
    }
    return ((ppcllm_u32)p[3] << 24) | ((ppcllm_u32)p[2] << 16) | ((ppcllm_u32)p[1] << 8) | p[0];
}

ppcllm_u64 ppcllm_get_u64(const unsigned char *p, int big)
{
    ppcllm_u64 hi = ppcllm_get_u32(big ? p : p + 4, big);
    ppcllm_u64 lo = ppcllm_get_u32(big ? p + 4 : p, big);
    return (hi << 32) | lo;
}

float ppcllm_get_f32(const unsigned char *p, int big)
{
    ppcllm_u32 bits = ppcllm_get_u32(p, big);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
