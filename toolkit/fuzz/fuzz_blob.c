/* fuzz_blob.c: libFuzzer target for one embedded blob of a GGUF-derived model, FUZZ_BLOB ("bpe":
 * the GPT-2 BPE tables, or "chat": the chat turn format: strings, flags, stop ids), built once per blob.
 * A valid small BPE model with a chat template ($PPCLLM_FUZZ_BASE, in this machine's byte order,
 * as `ppc-llm convert` writes a GGUF file) gets the fuzz input as that blob: the blob's size in the
 * table, the offsets of the tensors after it and the file size are patched to match, so the loader
 * reaches the blob's parser with every input. When the model opens, a prompt with control tokens,
 * digits, apostrophes, white-space runs and invalid UTF-8 is encoded (BPE with whatever tables
 * were accepted), and for "chat" a turn is encoded with the template's strings. */
#include "harness.h"

#include <stdint.h>

#ifndef FUZZ_BLOB
#error "compile with -DFUZZ_BLOB=\"bpe\" or \"chat\""
#endif

#define FUZZ_BUDGET ((size_t)64 << 20)
#define FUZZ_ALIGN 64u

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char *base;
static size_t base_size, blob_offset, blob_entry, tail_offset;
static uint32_t n_entries, blob_index;

static size_t entry_at(uint32_t i)
{
    return PPCLLM_HEADER_SIZE + (size_t)i * PPCLLM_ENTRY_SIZE;
}

static uint64_t entry_offset(const unsigned char *file, uint32_t i)
{
    uint64_t v;
    memcpy(&v, file + entry_at(i) + 56, 8);
    return v;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("PPCLLM_FUZZ_BASE");
    uint32_t i;
    (void)argc;
    (void)argv;
    base = harness_base("fuzz_blob", "a converted BPE model", &base_size);
    memcpy(&n_entries, base + 32, 4);
    if (n_entries == 0 || entry_at(n_entries) > base_size) {
        fprintf(stderr, "fuzz_blob: %s: malformed tensor table\n", path);
        exit(2);
    }
    for (i = 0; i < n_entries && strcmp((char *)base + entry_at(i), FUZZ_BLOB) != 0; i++) {
    }
    if (i == n_entries) {
        fprintf(stderr, "fuzz_blob: %s has no %s blob\n", path, FUZZ_BLOB);
        exit(2);
    }
    blob_index = i;
    blob_entry = entry_at(i);
    blob_offset = (size_t)entry_offset(base, i);
    tail_offset = i + 1 < n_entries ? (size_t)entry_offset(base, i + 1) : base_size;
    return 0;
}

static void exercise(ppcllm_model *m)
{
    ppcllm_error err;
    /* one step: the prompt is encoded and its first piece printed, no forward pass (a prompt that
     * fills -n still runs its positions, which would only slow the search of the parsers) */
    harness_generate(m, "Once upon a time, the 123 caf\xc3\xa9 <|im_start|>it's  \t\n x\xff\xc3(\xe2\x82", 1, 0.0f, &err);
    if (ppcllm_has_chat(m) && ppcllm_set_context(m, 2, &err) == PPCLLM_OK) {
        /* a 2-position context: the turn is encoded, then refused as not fitting: no forward pass */
        harness_chat(m, "hi <|im_end|> 42", 2, 0.0f, &err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    harness_alloc h;
    ppcllm_error err;
    ppcllm_model *m = NULL;
    size_t tail = base_size - tail_offset, start = blob_offset + size, total;
    uint64_t file_size, shift;
    uint32_t len = (uint32_t)size, i;
    unsigned char *file;
    if (size > 0xFFFFFFFFu) {
        return 0;
    }
    start = tail > 0 ? (start + FUZZ_ALIGN - 1) / FUZZ_ALIGN * FUZZ_ALIGN : start;
    total = start + tail;
    file = (unsigned char *)calloc(total, 1);
    if (file == NULL) {
        return 0;
    }
    memcpy(file, base, blob_offset);
    memcpy(file + blob_offset, data, size);
    memcpy(file + start, base + tail_offset, tail);
    file_size = (uint64_t)total;
    memcpy(file + 24, &file_size, 8);
    memcpy(file + blob_entry + 40, &len, 4);
    shift = (uint64_t)start - (uint64_t)tail_offset; /* mod 2^64: the tail moves by start - tail_offset */
    for (i = blob_index + 1; i < n_entries; i++) {
        uint64_t off = entry_offset(base, i) + shift;
        memcpy(file + entry_at(i) + 56, &off, 8);
    }
    harness_alloc_init(&h, FUZZ_BUDGET, 0);
    if (harness_open(&m, file, total, &h, &err) == PPCLLM_OK) {
        exercise(m);
        ppcllm_close(m);
    }
    free(file);
    if (h.live_blocks != 0 || h.live_bytes != 0) {
        abort();
    }
    return 0;
}
