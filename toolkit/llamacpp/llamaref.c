/* llamaref: llama.cpp as the reference (issue 15), one small C program against libllama from the
 * source vendored in llama-cpp-python's sdist. CPU only, 1 thread, an f32 KV cache, no flash
 * attention, so its numbers are llama.cpp's plain ones.
 *
 *   llamaref tokenize MODEL ADD_SPECIAL PARSE_SPECIAL < texts   texts separated by NUL bytes;
 *                                                              one line of ids per text
 *   llamaref generate MODEL N < ids                            greedy from the prompt's ids (one
 *                                                              line); per step "id margin eog gap",
 *                                                              margin = top-1 minus top-2 logit;
 *                                                              "ids | forced ids": the steps feed
 *                                                              the forced ids instead, and gap is
 *                                                              top-1 minus the forced id's logit
 *   llamaref quantize IN OUT TYPE                              llama.cpp's own quantizer
 *                                                              (TYPE: Q8_0, Q4_K_M, ...)
 * Exit status: 0, 1 (the model or a file failed), 2 (usage). */
#include "llama.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void quiet(enum ggml_log_level level, const char *text, void *ud)
{
    (void)ud;
    if (level == GGML_LOG_LEVEL_ERROR) {
        fputs(text, stderr);
    }
}

static struct llama_model *open_model(const char *path)
{
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model;
    model = llama_model_load_from_file(path, mp);
    if (model == NULL) {
        fprintf(stderr, "llamaref: cannot load %s\n", path);
    }
    return model;
}

/* All of stdin, NUL-terminated; *n its length. */
static char *slurp(size_t *n)
{
    size_t cap = 1 << 16;
    char *buf = malloc(cap + 1);
    size_t got;
    *n = 0;
    while (buf != NULL && (got = fread(buf + *n, 1, cap - *n, stdin)) > 0) {
        *n += got;
        if (*n == cap) {
            char *grown = realloc(buf, 2 * cap + 1);
            if (grown == NULL) {
                free(buf);
                return NULL;
            }
            buf = grown;
            cap *= 2;
        }
    }
    if (buf != NULL) {
        buf[*n] = '\0';
    }
    return buf;
}

static int tokenize(const struct llama_vocab *vocab, const char *text, int len, int add, int parse)
{
    int cap = len + 16, n, i;
    llama_token *ids = malloc((size_t)cap * sizeof *ids);
    if (ids == NULL) {
        return 1;
    }
    n = llama_tokenize(vocab, text, len, ids, cap, add != 0, parse != 0);
    if (n < 0) {
        free(ids);
        fprintf(stderr, "llamaref: tokenize failed (%d)\n", n);
        return 1;
    }
    for (i = 0; i < n; i++) {
        printf(i ? " %d" : "%d", ids[i]);
    }
    putchar('\n');
    free(ids);
    return 0;
}

static int cmd_tokenize(const char *path, int add, int parse)
{
    struct llama_model *model = open_model(path);
    size_t n, start = 0, i;
    char *all;
    int rc = 0;
    if (model == NULL) {
        return 1;
    }
    all = slurp(&n);
    for (i = 0; all != NULL && i <= n && rc == 0; i++) {
        if (i == n || all[i] == '\0') {
            if (i > start || i < n) {
                rc = tokenize(llama_model_get_vocab(model), all + start, (int)(i - start), add, parse);
            }
            start = i + 1;
        }
    }
    free(all);
    llama_model_free(model);
    return all == NULL ? 1 : rc;
}

static float margin_of(const float *logits, int n, int *best)
{
    int i, b = 0;
    float second = -1e30f;
    for (i = 1; i < n; i++) {
        if (logits[i] > logits[b]) {
            b = i;
        }
    }
    for (i = 0; i < n; i++) {
        if (i != b && logits[i] > second) {
            second = logits[i];
        }
    }
    *best = b;
    return logits[b] - second;
}

/* Space-separated ids from p into ids (up to a '|' or the end); the count. */
static int read_ids(const char *p, const char **rest, llama_token *ids)
{
    int n = 0;
    char *end;
    for (;;) {
        long v = strtol(p, &end, 10);
        if (end == p) {
            break;
        }
        ids[n++] = (llama_token)v;
        p = end;
    }
    while (*p == ' ' || *p == '\n') {
        p++;
    }
    *rest = *p == '|' ? p + 1 : NULL;
    return n;
}

static int cmd_generate(const char *path, int steps)
{
    struct llama_model *model = open_model(path);
    struct llama_context_params cp = llama_context_default_params();
    struct llama_context *ctx;
    const struct llama_vocab *vocab;
    llama_token *ids, *forced;
    size_t len;
    char *text;
    const char *rest = NULL;
    int n = 0, n_forced = 0, i, rc = 0;
    if (model == NULL) {
        return 1;
    }
    text = slurp(&len);
    ids = malloc((len / 2 + 2) * sizeof *ids);
    forced = malloc((len / 2 + 2) * sizeof *forced);
    if (text == NULL || ids == NULL || forced == NULL) {
        free(text);
        free(ids);
        free(forced);
        llama_model_free(model);
        return 1;
    }
    n = read_ids(text, &rest, ids);
    if (rest != NULL) {
        n_forced = read_ids(rest, &rest, forced);
        steps = n_forced < steps ? n_forced : steps;
    }
    vocab = llama_model_get_vocab(model);
    cp.n_ctx = (unsigned)(n + steps + 8);
    cp.n_batch = cp.n_ubatch = (unsigned)(n > 0 ? n : 1);
    cp.n_threads = cp.n_threads_batch = 1;
    cp.type_k = cp.type_v = GGML_TYPE_F32;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    ctx = n > 0 ? llama_init_from_model(model, cp) : NULL;
    if (ctx == NULL || llama_decode(ctx, llama_batch_get_one(ids, n)) != 0) {
        fprintf(stderr, "llamaref: cannot run the prompt (%d tokens)\n", n);
        rc = 1;
    }
    for (i = 0; rc == 0 && i < steps; i++) {
        int best;
        const float *logits = llama_get_logits_ith(ctx, -1);
        float margin = margin_of(logits, llama_vocab_n_tokens(vocab), &best);
        llama_token next = n_forced > 0 ? forced[i] : best;
        printf("%d %.6g %d %.6g\n", best, margin, llama_vocab_is_eog(vocab, best) ? 1 : 0,
               logits[best] - logits[next]);
        fflush(stdout);
        if (i + 1 < steps && llama_decode(ctx, llama_batch_get_one(&next, 1)) != 0) {
            rc = 1;
        }
    }
    if (ctx != NULL) {
        llama_free(ctx);
    }
    free(ids);
    free(forced);
    free(text);
    llama_model_free(model);
    return rc;
}

static const struct {
    const char *name;
    enum llama_ftype ftype;
} FTYPES[] = {
    {"F32", LLAMA_FTYPE_ALL_F32},          {"F16", LLAMA_FTYPE_MOSTLY_F16},
    {"BF16", LLAMA_FTYPE_MOSTLY_BF16},     {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
    {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0},     {"Q4_1", LLAMA_FTYPE_MOSTLY_Q4_1},
    {"Q5_0", LLAMA_FTYPE_MOSTLY_Q5_0},     {"Q5_1", LLAMA_FTYPE_MOSTLY_Q5_1},
    {"Q2_K", LLAMA_FTYPE_MOSTLY_Q2_K},     {"Q3_K_S", LLAMA_FTYPE_MOSTLY_Q3_K_S},
    {"Q3_K_M", LLAMA_FTYPE_MOSTLY_Q3_K_M}, {"Q3_K_L", LLAMA_FTYPE_MOSTLY_Q3_K_L},
    {"Q4_K_S", LLAMA_FTYPE_MOSTLY_Q4_K_S}, {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M},
    {"Q5_K_S", LLAMA_FTYPE_MOSTLY_Q5_K_S}, {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M},
    {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},     {"IQ4_NL", LLAMA_FTYPE_MOSTLY_IQ4_NL},
    {"IQ4_XS", LLAMA_FTYPE_MOSTLY_IQ4_XS},
};

static int cmd_quantize(const char *in, const char *out, const char *type)
{
    struct llama_model_quantize_params qp = llama_model_quantize_default_params();
    size_t i;
    for (i = 0; i < sizeof FTYPES / sizeof FTYPES[0]; i++) {
        if (strcmp(FTYPES[i].name, type) == 0) {
            qp.ftype = FTYPES[i].ftype;
            qp.nthread = 1;
            qp.allow_requantize = 1; /* a quantized source: from its dequantized weights */
            if (llama_model_quantize(in, out, &qp) != 0) {
                fprintf(stderr, "llamaref: quantizing %s to %s failed\n", in, type);
                return 1;
            }
            return 0;
        }
    }
    fprintf(stderr, "llamaref: unknown quantization type %s\n", type);
    return 2;
}

int main(int argc, char **argv)
{
    int rc = 2;
    llama_log_set(quiet, NULL);
    llama_backend_init();
    if (argc == 5 && strcmp(argv[1], "tokenize") == 0) {
        rc = cmd_tokenize(argv[2], atoi(argv[3]), atoi(argv[4]));
    } else if (argc == 4 && strcmp(argv[1], "generate") == 0) {
        rc = cmd_generate(argv[2], atoi(argv[3]));
    } else if (argc == 5 && strcmp(argv[1], "quantize") == 0) {
        rc = cmd_quantize(argv[2], argv[3], argv[4]);
    } else {
        fprintf(stderr, "usage: llamaref tokenize MODEL ADD_SPECIAL PARSE_SPECIAL | generate MODEL N | "
                        "quantize IN OUT TYPE\n");
    }
    llama_backend_free();
    return rc;
}
