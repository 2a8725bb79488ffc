/* fuzz_model.c: libFuzzer target for the converted-file loader (header, tensor table, tensors,
 * embedded tokenizer). The input is a whole model file; when it opens, a short greedy run
 * exercises what the loader accepted (tokenizer, weights, run state). */
#include "harness.h"

#include <stdint.h>

#define FUZZ_BUDGET ((size_t)64 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    harness_alloc h;
    ppcllm_error err;
    ppcllm_model *m = NULL;
    harness_alloc_init(&h, FUZZ_BUDGET, 0);
    if (harness_open(&m, data, size, &h, &err) == PPCLLM_OK) {
        harness_generate(m, "Once upon a time", 3, 1.0f, &err);
        ppcllm_close(m);
    }
    if (h.live_blocks != 0 || h.live_bytes != 0) {
        abort(); /* every path frees everything it allocated */
    }
    return 0;
}
