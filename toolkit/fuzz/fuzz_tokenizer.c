/* fuzz_tokenizer.c: libFuzzer target for the embedded tokenizer's parser and the BPE encoder over
 * whatever vocabulary it accepts. A valid model ($PPCLLM_FUZZ_BASE, in this machine's byte order,
 * tokenizer as its last tensor, as `ppc-llm convert` writes it) gets the fuzz input as its
 * tokenizer blob: the tensor table and the file size are patched to match, so the loader reaches
 * the tokenizer parser with every input. */
#include "harness.h"

#include <stdint.h>

#define FUZZ_BUDGET ((size_t)64 << 20)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *base;
static size_t base_size, tok_offset, tok_entry;

static void put_native(unsigned char *dst, const void *src, size_t n)
{
    memcpy(dst, src, n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("PPCLLM_FUZZ_BASE");
    uint32_t n_entries;
    uint64_t offset;
    (void)argc;
    (void)argv;
    base = harness_base("fuzz_tokenizer", "a converted model", &base_size);
    memcpy(&n_entries, base + 32, 4);
    tok_entry = PPCLLM_HEADER_SIZE + (size_t)(n_entries - 1) * PPCLLM_ENTRY_SIZE;
    if (n_entries == 0 || tok_entry + PPCLLM_ENTRY_SIZE > base_size || strcmp((char *)base + tok_entry, "tokenizer") != 0) {
        fprintf(stderr, "fuzz_tokenizer: %s does not end with its tokenizer tensor\n", path);
        exit(2);
    }
    memcpy(&offset, base + tok_entry + 56, 8);
    tok_offset = (size_t)offset;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    harness_alloc h;
    ppcllm_error err;
    ppcllm_model *m = NULL;
    uint64_t file_size = (uint64_t)tok_offset + size;
    uint32_t len = (uint32_t)size;
    unsigned char *file;
    if (size > 0xFFFFFFFFu) {
        return 0;
    }
    file = (unsigned char *)malloc(tok_offset + size);
    if (file == NULL) {
        return 0;
    }
    memcpy(file, base, tok_offset);
    memcpy(file + tok_offset, data, size);
    put_native(file + 24, &file_size, 8);
    put_native(file + tok_entry + 40, &len, 4);
    harness_alloc_init(&h, FUZZ_BUDGET, 0);
    if (harness_open(&m, file, tok_offset + size, &h, &err) == PPCLLM_OK) {
        harness_generate(m, "Once upon a time, caf\xc3\xa9 \xff<0x41>", 2, 0.0f, &err);
        ppcllm_close(m);
    }
    free(file);
    if (h.live_blocks != 0 || h.live_bytes != 0) {
        abort();
    }
    return 0;
}
