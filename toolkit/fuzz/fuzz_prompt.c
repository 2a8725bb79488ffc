/* fuzz_prompt.c: libFuzzer target for the prompt encoder: arbitrary bytes (invalid UTF-8, lone
 * continuation bytes, long inputs; a NUL ends the prompt as in C) through ppcllm_generate on a
 * valid model ($PPCLLM_FUZZ_BASE, in this machine's byte order), one position. */
#include "harness.h"

#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static ppcllm_model *model;
static harness_alloc heap;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("PPCLLM_FUZZ_BASE");
    ppcllm_error err;
    unsigned char *file;
    size_t size = 0;
    (void)argc;
    (void)argv;
    if (path == NULL || (file = harness_slurp(path, &size)) == NULL) {
        fprintf(stderr, "fuzz_prompt: set PPCLLM_FUZZ_BASE to a converted model in this machine's byte order\n");
        exit(2);
    }
    harness_alloc_init(&heap, (size_t)1 << 30, 0);
    if (harness_open(&model, file, size, &heap, &err) != PPCLLM_OK) {
        fprintf(stderr, "fuzz_prompt: %s: %s\n", path, err.message);
        exit(2);
    }
    free(file);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ppcllm_error err;
    char *prompt = (char *)malloc(size + 1);
    size_t live = heap.live_bytes;
    if (prompt == NULL) {
        return 0;
    }
    memcpy(prompt, data, size);
    prompt[size] = '\0';
    switch (harness_generate(model, prompt, 1, 0.0f, &err)) {
    case PPCLLM_OK:
    case PPCLLM_ERR_ARGUMENT: /* a byte the vocabulary cannot encode */
        break;
    default:
        abort(); /* any other prompt is valid input */
    }
    free(prompt);
    if (heap.live_bytes != live) {
        abort();
    }
    return 0;
}
