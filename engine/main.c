/* main.c: the command-line program over the engine, llama2.c's `run` for ppc-llm model files.
 *
 *   ppcllm MODEL [-t temperature] [-p topp] [-s seed] [-n steps] [-N tokens] [-i prompt]
 *                [-f prompt file] [-K top-k] [-M min-p] [-r repeat penalty] [-R repeat last n]
 *                [-T threads] [-m generate|chat|encode] [-y system prompt] [-c context] [-x 0|1|2]
 *   ppcllm --version
 *
 * Stdout carries only the generated text (then one newline); statistics and errors go to
 * stderr. Exit status: 0 success (a chat ended with Ctrl-D), 1 the model could not be loaded or
 * run, 2 bad usage, 3 the context is full (chat, or a prompt longer than the context with -N),
 * 130 Ctrl-C at the chat prompt. */
#if !defined(_XOPEN_SOURCE) && (defined(__unix__) || defined(__APPLE__))
#define _XOPEN_SOURCE 600 /* gettimeofday */
#endif
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/time.h>
#endif


long time_in_ms(void)
{
#if defined(__unix__) || defined(__APPLE__)
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long)tv.tv_sec * 1000L + (long)(tv.tv_usec / 1000);
#else
    return (long)time(NULL) * 1000L;
#endif
}

static int read_failed, read_errno; /* a read failed (a directory, an I/O error), and its errno */

static size_t file_read(void *ud, void *dst, size_t n)
{
    size_t got = fread(dst, 1, n, (FILE *)ud);
    if (got != n && ferror((FILE *)ud) && !read_failed) {
        read_failed = 1;
        read_errno = errno;
    }
    return got;
}

static ppcllm_u64 file_size(FILE *f)
{
    long size;
    if (fseek(f, 0, SEEK_END) != 0) {
        return 0;
    }
    size = ftell(f);
    if (fseek(f, 0, SEEK_SET) != 0) {
        return 0;
    }
    return size > 0 ? (ppcllm_u64)size : 0;
}


int print_piece(void *ud, int token, const char *text, size_t len)
{
    run_stats *stats = (run_stats *)ud;
    if (stats->show_ids) {
        fprintf(stderr, "%d ", token);
    }
    if (len > 0) {
        fwrite(text, 1, len, stdout);
    }
    fflush(stdout);
    if (stats->start == 0) {
        stats->start = time_in_ms();
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "Usage:   ppcllm <model file> [options]\n"
            "         ppcllm --version\n"
            "Example: ppcllm stories260K.be.bin -n 256 -i \"Once upon a time\"\n"
            "Options:\n"
            "  -t <float>  temperature: 0 (greedy) or in [%g, %g], default 1.0\n"
            "  -p <float>  p value in top-p (nucleus) sampling in [%g, %g], default 0.9\n"
            "  -K <int>    top-k: keep the k most likely tokens, 0 (default) = off\n"
            "  -M <float>  min-p in [%g, %g]: drop tokens below min-p x the top one's probability, 0 = off\n"
            "  -r <float>  repeat penalty in [%g, %g], default 1 (off)\n"
            "  -R <int>    positions the repeat penalty looks back over (prompt included), default 64,\n"
            "              0 = off, -1 = the whole context\n"
            "  -s <int>    random seed in [0, %ld], default (or 0) time(NULL)\n"
            "  -n <int>    steps: positions including the prompt, in [0, %ld], default 256, 0 = the whole\n"
            "              context; in chat: tokens per reply (0: until the context is full)\n"
            "  -N <int>    tokens to generate (per reply in chat), in [0, %ld], 0 = until the context is\n"
            "              full; instead of -n\n"
            "  -i <string> input prompt (chat: the one message)\n"
            "  -f <file>   input prompt from a file (at most 16 MiB; one final newline dropped)\n"
            "  -T <int>    threads in [1, %d], default %d (the target's)\n"
            "  -m <string> mode: generate (default), chat (models with a chat template; stdin a terminal:\n"
            "              a conversation, else one turn from -i, -f or stdin), encode (print token ids)\n"
            "  -y <string> chat: the system prompt (default: the model's template's)\n"
            "  -c <int>    context: KV-cache positions to allocate, in [%ld, %ld], default\n"
            "              min(model's, %d)\n"
            "  -x <int>    1: print the token ids on stderr; 2: also each chat turn's prompt ids\n"
            "  (-k is reserved for the KV-cache type)\n"
            "The model file is written by `ppc-llm convert` and embeds its tokenizer.\n"
            "In a chat conversation Ctrl-C stops the reply, Ctrl-C at the prompt ends (exit 130),\n"
            "Ctrl-D ends (exit 0); exit 3: the context is full.\n",
            PPCLLM_MIN_TEMPERATURE, PPCLLM_MAX_TEMPERATURE, PPCLLM_MIN_TOPP, PPCLLM_MAX_TOPP, PPCLLM_MIN_MIN_P,
            PPCLLM_MAX_MIN_P, PPCLLM_MIN_REPEAT_PENALTY, PPCLLM_MAX_REPEAT_PENALTY, PPCLLM_MAX_SEED,
            PPCLLM_MAX_STEPS, PPCLLM_MAX_N_PREDICT, PPCLLM_THREADS ? PPCLLM_MAX_THREADS : 1, PPCLLM_DEFAULT_THREADS,
            PPCLLM_MIN_CTX, PPCLLM_MAX_CTX, PPCLLM_DEFAULT_CTX);
}

/* A number in [lo, hi] (or exactly 0 when zero_ok), checked as the double the toolkit checks
 * and then stored as a float (the ranges fit one). No errno test: an overflow is out of range
 * anyway, and an underflow is the tiny number Python reads too. */
static int parse_float(const char *s, double lo, double hi, int zero_ok, float *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || !((zero_ok && v == 0.0) || (v >= lo && v <= hi))) {
        return 0;
    }
    *out = (float)v;
    return 1;
}

static int parse_long(const char *s, long *out)
{
    char *end;
    errno = 0;
    *out = strtol(s, &end, 10);
    return end != s && *end == '\0' && errno == 0;
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    long v;
    if (!parse_long(s, &v) || v < lo || v > hi) {
        return 0;
    }
    *out = (int)v;
    return 1;
}


#define OPTION_LETTERS "tpsnNifTymcxKMrRk"

/* One option's value into args; 0 when it is out of range (its one-line error printed). */
static int parse_option(char flag, const char *val, cli_args *args)
{
    ppcllm_options *o = &args->opt;
    int n;
    switch (flag) {
    case 't':
        if (!parse_float(val, PPCLLM_MIN_TEMPERATURE, PPCLLM_MAX_TEMPERATURE, 1, &o->temperature)) {
            fprintf(stderr, "error: -t %s: temperature must be 0 (greedy) or in [%g, %g]\n", val,
                    PPCLLM_MIN_TEMPERATURE, PPCLLM_MAX_TEMPERATURE);
            return 0;
        }
        if (o->temperature > 2.0f) {
            fprintf(stderr, "note: -t %s is the temperature (as in llama2.c); the thread count is -T\n", val);
        }
        return 1;
    case 'p':
        if (!parse_float(val, PPCLLM_MIN_TOPP, PPCLLM_MAX_TOPP, 0, &o->topp)) {
            char *end;
            (void)strtod(val, &end);
            fprintf(stderr, "error: -p %s: top-p must be a number in [%g, %g]%s\n", val, PPCLLM_MIN_TOPP,
                    PPCLLM_MAX_TOPP, end == val || *end != '\0' ? " (the prompt is -i)" : "");
            return 0;
        }
        return 1;
    case 'K':
        if (!parse_int(val, 0, PPCLLM_MAX_TOP_K, &o->top_k)) {
            fprintf(stderr, "error: -K %s: top-k must be an integer in [0, %ld] (0: off)\n", val, PPCLLM_MAX_TOP_K);
            return 0;
        }
        return 1;
    case 'M':
        if (!parse_float(val, PPCLLM_MIN_MIN_P, PPCLLM_MAX_MIN_P, 0, &o->min_p)) {
            fprintf(stderr, "error: -M %s: min-p must be a number in [%g, %g] (0: off)\n", val, PPCLLM_MIN_MIN_P,
                    PPCLLM_MAX_MIN_P);
            return 0;
        }
        return 1;
    case 'r':
        if (!parse_float(val, PPCLLM_MIN_REPEAT_PENALTY, PPCLLM_MAX_REPEAT_PENALTY, 0, &o->repeat_penalty)) {
            fprintf(stderr, "error: -r %s: repeat penalty must be a number in [%g, %g] (1: off)\n", val,
                    PPCLLM_MIN_REPEAT_PENALTY, PPCLLM_MAX_REPEAT_PENALTY);
            return 0;
        }
        return 1;
    case 'R':
        if (!parse_int(val, PPCLLM_MIN_REPEAT_LAST_N, PPCLLM_MAX_REPEAT_LAST_N, &o->repeat_last_n)) {
            fprintf(stderr, "error: -R %s: repeat-last-n must be an integer in [%ld, %ld] (0: off, -1: the whole "
                    "context)\n", val, PPCLLM_MIN_REPEAT_LAST_N, PPCLLM_MAX_REPEAT_LAST_N);
            return 0;
        }
        return 1;
    case 's':
        if (!parse_long(val, &args->seed) || args->seed < 0 || args->seed > PPCLLM_MAX_SEED) {
            fprintf(stderr, "error: -s %s: seed must be an integer in [0, %ld] (0: from the clock)\n", val,
                    PPCLLM_MAX_SEED);
            return 0;
        }
        return 1;
    case 'n':
        if (!parse_int(val, 0, PPCLLM_MAX_STEPS, &o->steps)) {
            fprintf(stderr, "error: -n %s: steps must be an integer in [0, %ld] (0: the whole context)\n", val,
                    PPCLLM_MAX_STEPS);
            return 0;
        }
        args->have_steps = 1;
        return 1;
    case 'N':
        if (!parse_int(val, 0, PPCLLM_MAX_N_PREDICT, &o->n_predict)) {
            fprintf(stderr, "error: -N %s: tokens to generate must be an integer in [0, %ld] (0: until the "
                    "context is full)\n", val, PPCLLM_MAX_N_PREDICT);
            return 0;
        }
        args->have_n_predict = 1;
        return 1;
    case 'i':
        args->prompt = val;
        args->have_prompt = 1;
        return 1;
    case 'f':
        args->prompt_file = val;
        return 1;
    case 'y':
        args->system = val;
        return 1;
    case 'm':
        if (strcmp(val, "generate") == 0) {
            args->mode = MODE_GENERATE;
        } else if (strcmp(val, "chat") == 0) {
            args->mode = MODE_CHAT;
        } else if (strcmp(val, "encode") == 0) {
            args->mode = MODE_ENCODE;
        } else {
            fprintf(stderr, "error: -m %s: mode must be generate, chat or encode\n", val);
            return 0;
        }
        return 1;
    case 'c':
        if (!parse_int(val, PPCLLM_MIN_CTX, PPCLLM_MAX_CTX, &args->ctx)) {
            fprintf(stderr, "error: -c %s: context must be an integer in [%ld, %ld]\n", val, PPCLLM_MIN_CTX,
                    PPCLLM_MAX_CTX);
            return 0;
        }
        return 1;
    case 'x':
        if (!parse_int(val, 0, 2, &args->show_ids)) {
            fprintf(stderr, "error: -x %s: must be 0, 1 or 2\n", val);
            return 0;
        }
        return 1;
    case 'T':
        if (parse_int(val, 2, PPCLLM_MAX_THREADS, &n) && !PPCLLM_THREADS) {
            fprintf(stderr, "error: -T %s: this build has no thread support: use 1 thread\n", val);
            return 0;
        }
        if (!parse_int(val, 1, PPCLLM_MAX_THREADS, &args->threads) || (!PPCLLM_THREADS && args->threads > 1)) {
            fprintf(stderr, "error: -T %s: threads must be an integer in [1, %d]\n", val,
                    PPCLLM_THREADS ? PPCLLM_MAX_THREADS : 1);
            return 0;
        }
        return 1;
    default: /* 'k' */
        fprintf(stderr, "error: -k is reserved for the KV-cache type (not in this version); top-k is -K\n");
        return 0;
    }
}

/* 1: parsed; 0: no model given (print the usage); -1: a bad option (its one-line error printed) */
static int parse_args(int argc, char **argv, cli_args *args)
{
    int i;
    if (argc < 2) {
        return 0;
    }
    memset(args, 0, sizeof *args);
    args->model = argv[1];
    args->prompt = "";
    args->mode = MODE_GENERATE;
    ppcllm_options_init(&args->opt); /* temperature 1, top-p 0.9, 256 steps */
    args->threads = PPCLLM_DEFAULT_THREADS;
    for (i = 2; i < argc; i += 2) {
        const char *flag = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (flag[0] != '-' || flag[1] == '\0' || flag[2] != '\0' || strchr(OPTION_LETTERS, flag[1]) == NULL) {
            fprintf(stderr, "error: unknown option %s (options: -t -p -K -M -r -R -s -n -N -i -f -T -m -y -c -x; "
                    "no arguments: usage)\n", flag);
            return -1;
        }
        if (val == NULL && flag[1] != 'k') {
            fprintf(stderr, "error: option %s needs a value\n", flag);
            return -1;
        }
        if (!parse_option(flag[1], val, args)) {
            return -1;
        }
    }
    if (args->system != NULL && args->mode != MODE_CHAT) {
        fprintf(stderr, "error: -y (system prompt) needs -m chat\n");
        return -1;
    }
    if (args->have_steps && args->have_n_predict) {
        fprintf(stderr, "error: -n and -N both set the length: give one (-n: positions including the prompt, "
                "-N: tokens to generate)\n");
        return -1;
    }
    if (args->have_prompt && args->prompt_file != NULL) {
        fprintf(stderr, "error: -i and -f both give the prompt: give one\n");
        return -1;
    }
    args->opt.seed = args->seed > 0 ? (ppcllm_u64)args->seed : (ppcllm_u64)(unsigned int)time(NULL);
    if (args->opt.seed == 0) {
        args->opt.seed = 1;
    }
    return 1;
}

/* The engine's allocations, counted: every byte it holds (weights, KV cache, buffers) passes
 * through here, so the peak is the program's memory apart from its image and stack. */
typedef struct {
    size_t current, peak;
} heap_stats;

static heap_stats heap;

#define HEAP_HEADER 16 /* keeps malloc's alignment */

static void *counting_alloc(void *ud, void *ptr, size_t nsize)
{
    heap_stats *h = (heap_stats *)ud;
    unsigned char *raw = ptr != NULL ? (unsigned char *)ptr - HEAP_HEADER : NULL, *p;
    size_t old = 0;
    if (raw != NULL) {
        memcpy(&old, raw, sizeof old);
    }
    if (nsize == 0) {
        free(raw);
        h->current -= old;
        return NULL;
    }
    if (nsize > (size_t)-1 - HEAP_HEADER) {
        return NULL;
    }
    p = (unsigned char *)realloc(raw, nsize + HEAP_HEADER);
    if (p == NULL) {
        return NULL;
    }
    memcpy(p, &nsize, sizeof nsize);
    h->current = h->current - old + nsize;
    if (h->current > h->peak) {
        h->peak = h->current;
    }
    return p + HEAP_HEADER;
}

void print_memory(void)
{
    fprintf(stderr, "peak engine memory: %lu bytes (weights, KV cache and buffers)\n", (unsigned long)heap.peak);
}

static ppcllm_model *open_model(const char *path)
{
    ppcllm_allocator counting;
    ppcllm_error err;
    ppcllm_model *m = NULL;
    ppcllm_io io;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open model file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    io.read = file_read;
    io.ud = f;
    io.size = file_size(f);
    counting.alloc = counting_alloc;
    counting.ud = &heap;
    if (ppcllm_open(&m, &io, &counting, &err) != PPCLLM_OK) {
        if (read_failed) {
            fprintf(stderr, "error: cannot read model file %s: %s\n", path,
                    read_errno != 0 ? strerror(read_errno) : "read error");
        } else {
            fprintf(stderr, "error: %s: %s\n", path, err.message);
        }
    }
    fclose(f);
    return m;
}

/* -m encode: the ids of the prompt on one line */
static int run_encode(ppcllm_model *m, const char *text)
{
    ppcllm_error err;
    size_t cap = strlen(text) + 3;
    int *ids = (int *)malloc(cap * sizeof(int)), n = 0, i;
    ppcllm_status st = ids == NULL ? PPCLLM_ERR_NOMEM : ppcllm_encode_text(m, text, ids, (int)cap, &n, &err);
    if (st != PPCLLM_OK && ids != NULL && (size_t)n > cap) { /* more tokens than bytes: room for all */
        free(ids);
        cap = (size_t)n;
        ids = (int *)malloc(cap * sizeof(int));
        st = ids == NULL ? PPCLLM_ERR_NOMEM : ppcllm_encode_text(m, text, ids, (int)cap, &n, &err);
    }
    if (ids == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return EXIT_FAILURE;
    }
    if (st != PPCLLM_OK) {
        fprintf(stderr, "error: %s\n", err.message);
        free(ids);
        return EXIT_FAILURE;
    }
    for (i = 0; i < n; i++) {
        printf(i == 0 ? "%d" : " %d", ids[i]);
    }
    printf("\n");
    free(ids);
    return EXIT_SUCCESS;
}

static int run_generate(ppcllm_model *m, const cli_args *args, const char *prompt, run_stats *stats)
{
    ppcllm_error err;
    int positions = 0;
    ppcllm_status st = ppcllm_generate(m, prompt, &args->opt, print_piece, stats, &positions, &err);
    if (st != PPCLLM_OK) {
        fprintf(stderr, "error: %s\n", err.message);
        return st == PPCLLM_ERR_CONTEXT ? EXIT_CONTEXT : EXIT_FAILURE;
    }
    printf("\n");
    fflush(stdout);
    if (args->show_ids) {
        fprintf(stderr, "\n");
    }
    if (positions > 1 && stats->start != 0) {
        long end = time_in_ms();
        double ms = (double)(end - stats->start);
        fprintf(stderr, "achieved tok/s: %f (%s kernel, %d thread%s, target %s)\n",
                ms > 0 ? (positions - 1) / ms * 1000.0 : 0.0, ppcllm_kernel_name(m), ppcllm_get_threads(m),
                ppcllm_get_threads(m) == 1 ? "" : "s", PPCLLM_TARGET_NAME);
    }
    print_memory();
    return EXIT_SUCCESS;
}

static int run_model(ppcllm_model *m, cli_args *args, const char *prompt)
{
    ppcllm_error err;
    run_stats stats;
    stats.start = 0;
    stats.show_ids = args->show_ids;
    if (args->threads != ppcllm_get_threads(m) && ppcllm_set_threads(m, args->threads, &err) != PPCLLM_OK) {
        fprintf(stderr, "error: -T %d: %s\n", args->threads, err.message);
        return EXIT_USAGE;
    }
    if (args->ctx > 0 && ppcllm_set_context(m, args->ctx, &err) != PPCLLM_OK) {
        fprintf(stderr, "error: -c %d: %s\n", args->ctx, err.message);
        return EXIT_FAILURE;
    }
    if (args->mode == MODE_ENCODE) {
        return run_encode(m, prompt != NULL ? prompt : "");
    }
    if (args->mode == MODE_CHAT) {
        return run_chat(m, args, prompt, &stats);
    }
    return run_generate(m, args, prompt != NULL ? prompt : "", &stats);
}

int main(int argc, char **argv)
{
    cli_args args;
    text_buf file = {NULL, 0, 0};
    const char *prompt;
    ppcllm_model *m;
    int status;
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("ppcllm %s (model format v%u, target %s)\n", PPCLLM_ENGINE_VERSION, (unsigned)PPCLLM_FORMAT_VERSION,
               PPCLLM_TARGET_NAME);
        return EXIT_SUCCESS;
    }
    switch (parse_args(argc, argv, &args)) {
    case 1:
        break;
    case 0:
        usage();
        return EXIT_USAGE;
    default:
        return EXIT_USAGE;
    }
    if (args.prompt_file != NULL) {
        status = read_prompt_file(args.prompt_file, &file);
        if (status != EXIT_SUCCESS) {
            free(file.text);
            return status;
        }
    }
    prompt = args.prompt_file != NULL ? file.text : args.have_prompt ? args.prompt : NULL;
    m = open_model(args.model);
    if (m == NULL) {
        free(file.text);
        return EXIT_FAILURE;
    }
    status = run_model(m, &args, prompt);
    ppcllm_close(m);
    free(file.text);
    return status;
}
