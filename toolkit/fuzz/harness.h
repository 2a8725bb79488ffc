/* harness.h: what the fuzz and allocation-failure harnesses share (ppc-llm's reliability tests).
 *
 * A model is opened from memory through the engine's read callback, with an allocator that
 * (a) refuses to hold more than a budget at once, as a small machine would (a fuzzed header may
 * ask for a KV cache of terabytes: the engine must report it, not die), (b) can fail the Nth
 * allocation, and (c) counts allocations and the bytes still live, so a harness can check that
 * every failure path frees everything. */
#ifndef PPCLLM_HARNESS_H
#define PPCLLM_HARNESS_H

#include "ppcllm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t budget;      /* most bytes live at once; larger requests fail */
    size_t live_bytes;  /* bytes allocated and not yet freed */
    long live_blocks;   /* blocks allocated and not yet freed */
    long count;         /* allocations (and growing reallocations) so far */
    long fail_at;       /* fail the allocation with this number (1-based); 0: never */
} harness_alloc;

/* Each block carries its size in a 16-byte prefix, so frees can be counted. */
#define HARNESS_PREFIX 16u

static void *harness_alloc_fn(void *ud, void *ptr, size_t nsize)
{
    harness_alloc *h = (harness_alloc *)ud;
    unsigned char *raw = ptr != NULL ? (unsigned char *)ptr - HARNESS_PREFIX : NULL;
    size_t old = 0;
    unsigned char *fresh;
    if (raw != NULL) {
        memcpy(&old, raw, sizeof old);
    }
    if (nsize == 0) {
        if (raw != NULL) {
            h->live_bytes -= old;
            h->live_blocks--;
            free(raw);
        }
        return NULL;
    }
    h->count++;
    if (h->fail_at != 0 && h->count == h->fail_at) {
        return NULL;
    }
    if (nsize > h->budget - h->live_bytes + old || nsize > (size_t)-1 - HARNESS_PREFIX) {
        return NULL;
    }
    fresh = (unsigned char *)realloc(raw, nsize + HARNESS_PREFIX);
    if (fresh == NULL) {
        return NULL;
    }
    memcpy(fresh, &nsize, sizeof nsize);
    h->live_bytes += nsize - old;
    if (raw == NULL) {
        h->live_blocks++;
    }
    return fresh + HARNESS_PREFIX;
}

static void harness_alloc_init(harness_alloc *h, size_t budget, long fail_at)
{
    memset(h, 0, sizeof *h);
    h->budget = budget;
    h->fail_at = fail_at;
}

typedef struct {
    const unsigned char *data;
    size_t size, pos;
} harness_reader;

static size_t harness_read(void *ud, void *dst, size_t n)
{
    harness_reader *r = (harness_reader *)ud;
    size_t left = r->size - r->pos;
    size_t take = n < left ? n : left;
    memcpy(dst, r->data + r->pos, take);
    r->pos += take;
    return take;
}

static int harness_count_piece(void *ud, int token, const char *text, size_t len)
{
    size_t *printed = (size_t *)ud;
    (void)token;
    if (len > 0 && text[len - 1] == '\0') {
        abort(); /* a piece's length must not cover its terminator */
    }
    *printed += len;
    return 0;
}

/* Open the model in data[0, size) with allocator h; the status, *out on success. */
static ppcllm_status harness_open(ppcllm_model **out, const unsigned char *data, size_t size,
                                  harness_alloc *h, ppcllm_error *err)
{
    harness_reader r;
    ppcllm_io io;
    ppcllm_allocator a;
    ppcllm_status st;
    r.data = data;
    r.size = size;
    r.pos = 0;
    io.read = harness_read;
    io.ud = &r;
    io.size = size;
    a.alloc = harness_alloc_fn;
    a.ud = h;
    st = ppcllm_open(out, &io, &a, err);
    if (st != PPCLLM_OK && (*out != NULL || err->message[0] == '\0')) {
        abort(); /* a failed open returns no model and always says why */
    }
    return st;
}

/* The options of every harness run: temperature (0: greedy; else top-p 0.9), seed 42, steps,
 * and every other stage of the sampling chain on (top-k 3, min-p 0.05, a repeat penalty over
 * the whole context), so the sanitizers see all of it, NaN logits of damaged weights included. */
static ppcllm_options harness_options(float temperature, int steps)
{
    ppcllm_options opt;
    ppcllm_options_init(&opt);
    opt.temperature = temperature;
    opt.topp = 0.9f;
    opt.seed = 42;
    opt.steps = steps;
    opt.top_k = 3;
    opt.min_p = 0.05f;
    opt.repeat_penalty = 1.1f;
    opt.repeat_last_n = -1;
    return opt;
}

/* st, after checking that a failure says why */
static ppcllm_status harness_said(ppcllm_status st, const ppcllm_error *err)
{
    if (st != PPCLLM_OK && err->message[0] == '\0') {
        abort();
    }
    return st;
}

/* A short generation: steps positions from prompt. */
static ppcllm_status harness_generate(ppcllm_model *m, const char *prompt, int steps, float temperature,
                                      ppcllm_error *err)
{
    ppcllm_options opt = harness_options(temperature, steps);
    size_t printed = 0;
    int positions = 0;
    return harness_said(ppcllm_generate(m, prompt, &opt, harness_count_piece, &printed, &positions, err), err);
}

/* One chat turn of user text (the template's system prompt) in a new conversation. */
static ppcllm_status harness_chat(ppcllm_model *m, const char *user, int steps, float temperature, ppcllm_error *err)
{
    ppcllm_options opt = harness_options(temperature, steps);
    ppcllm_chat chat;
    size_t printed = 0;
    ppcllm_chat_start(&chat, 42);
    return harness_said(ppcllm_chat_turn(m, &chat, NULL, user, &opt, harness_count_piece, &printed, err), err);
}

/* The whole file at path, or NULL (and a message) when it cannot be read. */
static unsigned char *harness_slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "harness: cannot read %s\n", path);
        if (f != NULL) {
            fclose(f);
        }
        return NULL;
    }
    buf = (unsigned char *)malloc((size_t)n + 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "harness: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* The converted model named by $PPCLLM_FUZZ_BASE (a libFuzzer harness's base file), at least a
 * header long; otherwise a message saying what harness wants, and exit 2. */
static unsigned char *harness_base(const char *harness, const char *what, size_t *size)
{
    const char *path = getenv("PPCLLM_FUZZ_BASE");
    unsigned char *base = path != NULL ? harness_slurp(path, size) : NULL;
    if (base == NULL || *size < PPCLLM_HEADER_SIZE) {
        fprintf(stderr, "%s: set PPCLLM_FUZZ_BASE to %s in this machine's byte order\n", harness, what);
        exit(2);
    }
    return base;
}

#endif /* PPCLLM_HARNESS_H */
