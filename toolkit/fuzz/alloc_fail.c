/* alloc_fail.c: allocation-failure injection. Counts the allocations of a full run (open, a
 * short generation, a chat turn when the model has a chat template, close) of the model given,
 * then runs again failing allocation N for every N = 1 .. that count: each run must end with PPCLLM_ERR_NOMEM and a message, and free every
 * block it allocated (the harness counts them; AddressSanitizer's leak check runs at exit).
 *
 *   alloc_fail MODEL [PROMPT]      exit 0: every failure point ended cleanly */
#include "harness.h"

static ppcllm_status run_once(const unsigned char *file, size_t size, const char *prompt, long fail_at,
                              harness_alloc *h, ppcllm_error *err)
{
    ppcllm_model *m = NULL;
    ppcllm_status st;
    harness_alloc_init(h, (size_t)1 << 30, fail_at);
    st = harness_open(&m, file, size, h, err);
    if (st == PPCLLM_OK) {
        st = harness_generate(m, prompt, 4, 1.0f, err);
        if (st == PPCLLM_OK && ppcllm_has_chat(m)) { /* a chat model: one chat turn too */
            st = harness_chat(m, prompt, 1, 1.0f, err); /* a reply of one token: the tiny context */
        }
        ppcllm_close(m);
    }
    return st;
}

int main(int argc, char **argv)
{
    harness_alloc h;
    ppcllm_error err;
    unsigned char *file;
    size_t size = 0;
    const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
    long total, n, bad = 0;
    if (argc < 2 || (file = harness_slurp(argv[1], &size)) == NULL) {
        fprintf(stderr, "usage: alloc_fail MODEL [PROMPT]\n");
        return 2;
    }
    if (run_once(file, size, prompt, 0, &h, &err) != PPCLLM_OK) {
        fprintf(stderr, "alloc_fail: the run without failures failed: %s\n", err.message);
        free(file);
        return 1;
    }
    total = h.count;
    for (n = 1; n <= total; n++) {
        ppcllm_status st = run_once(file, size, prompt, n, &h, &err);
        if (st != PPCLLM_ERR_NOMEM || h.live_blocks != 0 || h.live_bytes != 0) {
            fprintf(stderr, "alloc_fail: failing allocation %ld of %ld: status %d (%s), %ld blocks / %lu bytes left\n",
                    n, total, (int)st, err.message, h.live_blocks, (unsigned long)h.live_bytes);
            bad++;
        }
    }
    free(file);
    printf("alloc_fail: %ld allocations in a full run, %ld failure points tested, %ld failed\n", total, total, bad);
    return bad == 0 ? 0 : 1;
}
