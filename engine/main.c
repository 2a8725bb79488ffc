/* main.c: the command-line program over the engine, llama2.c's `run` for ppc-llm model files.
 *
 *   ppcllm MODEL [-t temperature] [-p topp] [-s seed] [-n steps] [-i prompt] [-T threads]
 *                [-m generate|chat|encode] [-y system prompt] [-c context] [-x 0|1]
 *
 * Stdout carries only the generated text (then one newline); statistics and errors go to
 * stderr. Exit status: 0 success, 1 the model could not be loaded or run, 2 bad usage. */
#if !defined(_XOPEN_SOURCE) && (defined(__unix__) || defined(__APPLE__))
#define _XOPEN_SOURCE 600 /* gettimeofday */
#endif
#include "ppcllm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/time.h>
#include <unistd.h> /* isatty */
#endif

#define EXIT_USAGE 2

static long time_in_ms(void)
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

typedef struct {
    long start;
    int show_ids;   /* -x 1: the sampled and printed token ids go to stderr */
} run_stats;

static int print_piece(void *ud, int token, const char *text, size_t len)
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
            "Example: ppcllm stories260K.be.bin -n 256 -i \"Once upon a time\"\n"
            "Options:\n"
            "  -t <float>  temperature: 0 (greedy) or in [%g, %g], default 1.0\n"
            "  -p <float>  p value in top-p (nucleus) sampling in [%g, %g], default 0.9\n"
            "  -s <int>    random seed in [0, %ld], default (or 0) time(NULL)\n"
            "  -n <int>    number of steps to run for, in [0, %ld], default 256. 0 = max_seq_len\n"
            "  -i <string> input prompt\n"
            "  -T <int>    threads in [1, %d], default %d (the target's)\n"
            "  -m <string> mode: generate (default), chat (ChatML models; stdin a terminal:\n"
            "              a conversation, else one turn from -i or stdin), encode (print token ids)\n"
            "  -y <string> chat: the system prompt (default: the model's template's)\n"
            "  -c <int>    context: KV-cache positions to allocate, in [%ld, %ld], default\n"
            "              min(model's, %d)\n"
            "  -x <int>    1: print the token ids on stderr\n"
            "The model file is written by `ppc-llm convert` and embeds its tokenizer.\n",
            PPCLLM_MIN_TEMPERATURE, PPCLLM_MAX_TEMPERATURE, PPCLLM_MIN_TOPP, PPCLLM_MAX_TOPP, PPCLLM_MAX_SEED,
            PPCLLM_MAX_STEPS, PPCLLM_THREADS ? PPCLLM_MAX_THREADS : 1, PPCLLM_DEFAULT_THREADS, PPCLLM_MIN_CTX,
            PPCLLM_MAX_CTX, PPCLLM_DEFAULT_CTX);
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

enum { MODE_GENERATE, MODE_CHAT, MODE_ENCODE };

typedef struct {
    const char *model;
    const char *prompt;
    const char *system;
    ppcllm_options opt;
    long seed;
    int threads;
    int mode;
    int ctx;
    int show_ids;
    int have_prompt;
} cli_args;

/* 1: parsed; 0: no model given (print the usage); -1: a bad option (its one-line error printed) */
static int parse_args(int argc, char **argv, cli_args *args)
{
    int i;
    long n;
    if (argc < 2) {
        return 0;
    }
    args->model = argv[1];
    args->prompt = "";
    args->system = NULL;
    args->mode = MODE_GENERATE;
    args->ctx = 0;
    args->show_ids = 0;
    args->have_prompt = 0;
    ppcllm_options_init(&args->opt); /* temperature 1, top-p 0.9, 256 steps */
    args->seed = 0;
    args->threads = PPCLLM_DEFAULT_THREADS;
    for (i = 2; i < argc; i += 2) {
        const char *flag = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (flag[0] != '-' || flag[1] == '\0' || flag[2] != '\0' || strchr("tpsniTymcx", flag[1]) == NULL) {
            fprintf(stderr, "error: unknown option %s (options: -t -p -s -n -i -T -m -y -c -x; no arguments: usage)\n",
                    flag);
            return -1;
        }
        if (val == NULL) {
            fprintf(stderr, "error: option %s needs a value\n", flag);
            return -1;
        }
        switch (flag[1]) {
        case 't':
            if (!parse_float(val, PPCLLM_MIN_TEMPERATURE, PPCLLM_MAX_TEMPERATURE, 1, &args->opt.temperature)) {
                fprintf(stderr, "error: -t %s: temperature must be 0 (greedy) or in [%g, %g]\n", val,
                        PPCLLM_MIN_TEMPERATURE, PPCLLM_MAX_TEMPERATURE);
                return -1;
            }
            break;
        case 'p':
            if (!parse_float(val, PPCLLM_MIN_TOPP, PPCLLM_MAX_TOPP, 0, &args->opt.topp)) {
                fprintf(stderr, "error: -p %s: top-p must be a number in [%g, %g]\n", val, PPCLLM_MIN_TOPP,
                        PPCLLM_MAX_TOPP);
                return -1;
            }
            break;
        case 's':
            if (!parse_long(val, &args->seed) || args->seed < 0 || args->seed > PPCLLM_MAX_SEED) {
                fprintf(stderr, "error: -s %s: seed must be an integer in [0, %ld] (0: from the clock)\n", val,
                        PPCLLM_MAX_SEED);
                return -1;
            }
            break;
        case 'n':
            if (!parse_long(val, &n) || n < 0 || n > PPCLLM_MAX_STEPS) {
                fprintf(stderr, "error: -n %s: steps must be an integer in [0, %ld] (0: the whole context)\n", val,
                        PPCLLM_MAX_STEPS);
                return -1;
            }
            args->opt.steps = (int)n;
            break;
        case 'i':
            args->prompt = val;
            args->have_prompt = 1;
            break;
        case 'y':
            args->system = val;
            break;
        case 'm':
            if (strcmp(val, "generate") == 0) {
                args->mode = MODE_GENERATE;
            } else if (strcmp(val, "chat") == 0) {
                args->mode = MODE_CHAT;
            } else if (strcmp(val, "encode") == 0) {
                args->mode = MODE_ENCODE;
            } else {
                fprintf(stderr, "error: -m %s: mode must be generate, chat or encode\n", val);
                return -1;
            }
            break;
        case 'c':
            if (!parse_long(val, &n) || n < PPCLLM_MIN_CTX || n > PPCLLM_MAX_CTX) {
                fprintf(stderr, "error: -c %s: context must be an integer in [%ld, %ld]\n", val, PPCLLM_MIN_CTX,
                        PPCLLM_MAX_CTX);
                return -1;
            }
            args->ctx = (int)n;
            break;
        case 'x':
            if (!parse_long(val, &n) || n < 0 || n > 1) {
                fprintf(stderr, "error: -x %s: must be 0 or 1\n", val);
                return -1;
            }
            args->show_ids = (int)n;
            break;
        case 'T':
            if (parse_long(val, &n) && n > 1 && !PPCLLM_THREADS) {
                fprintf(stderr, "error: -T %s: this build has no thread support: use 1 thread\n", val);
                return -1;
            }
            if (!parse_long(val, &n) || n < 1 || n > PPCLLM_MAX_THREADS) {
                fprintf(stderr, "error: -T %s: threads must be an integer in [1, %d]\n", val,
                        PPCLLM_THREADS ? PPCLLM_MAX_THREADS : 1);
                return -1;
            }
            args->threads = (int)n;
            break;
        default:
            return -1;
        }
    }
    if (args->system != NULL && args->mode != MODE_CHAT) {
        fprintf(stderr, "error: -y (system prompt) needs -m chat\n");
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

static void print_memory(void)
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
    if (ids == NULL) {
        fprintf(stderr, "error: out of memory\n");
        return EXIT_FAILURE;
    }
    if (ppcllm_encode_text(m, text, ids, (int)cap, &n, &err) != PPCLLM_OK) {
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

static int stdin_is_terminal(void)
{
#if defined(__unix__) || defined(__APPLE__)
    return isatty(fileno(stdin));
#else
    return 0;
#endif
}

/* All of stdin (at most 1 MiB) as one NUL-terminated message, or NULL */
static char *read_stdin(void)
{
    size_t cap = 1u << 20, used = 0, got;
    char *buf = (char *)malloc(cap + 1);
    if (buf == NULL) {
        return NULL;
    }
    while (used < cap && (got = fread(buf + used, 1, cap - used, stdin)) > 0) {
        used += got;
    }
    while (used > 0 && (buf[used - 1] == '\n' || buf[used - 1] == '\r')) {
        used--;
    }
    buf[used] = '\0';
    return buf;
}

static int chat_turn(ppcllm_model *m, ppcllm_chat *chat, const cli_args *args, const char *user, run_stats *stats)
{
    ppcllm_error err;
    if (ppcllm_chat_turn(m, chat, args->system, user, &args->opt, print_piece, stats, &err) != PPCLLM_OK) {
        fprintf(stderr, "error: %s\n", err.message);
        return 0;
    }
    printf("\n");
    fflush(stdout);
    if (stats->show_ids) {
        fprintf(stderr, "\n");
    }
    return 1;
}

/* -m chat: one turn from -i or stdin, or a conversation when stdin is a terminal */
static int run_chat(ppcllm_model *m, const cli_args *args, run_stats *stats)
{
    ppcllm_chat chat;
    char line[4096];
    if (!ppcllm_has_chat(m)) {
        fprintf(stderr, "error: %s has no ChatML chat template: run it without -m chat\n", args->model);
        return EXIT_USAGE;
    }
    ppcllm_chat_start(&chat, args->opt.seed);
    if (args->have_prompt || !stdin_is_terminal()) {
        char *text = args->have_prompt ? NULL : read_stdin();
        int ok;
        if (!args->have_prompt && text == NULL) {
            fprintf(stderr, "error: out of memory reading stdin\n");
            return EXIT_FAILURE;
        }
        ok = chat_turn(m, &chat, args, args->have_prompt ? args->prompt : text, stats);
        free(text);
        if (ok) {
            print_memory();
        }
        return ok ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    for (;;) {
        size_t len;
        fprintf(stderr, "> ");
        fflush(stderr);
        if (fgets(line, sizeof line, stdin) == NULL) {
            return EXIT_SUCCESS;
        }
        len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            line[--len] = '\0';
        }
        if (len > 0 && !chat_turn(m, &chat, args, line, stats)) {
            return EXIT_FAILURE;
        }
    }
}

int main(int argc, char **argv)
{
    cli_args args;
    ppcllm_error err;
    ppcllm_model *m;
    run_stats stats;
    int positions = 0;
    switch (parse_args(argc, argv, &args)) {
    case 1:
        break;
    case 0:
        usage();
        return EXIT_USAGE;
    default:
        return EXIT_USAGE;
    }
    m = open_model(args.model);
    if (m == NULL) {
        return EXIT_FAILURE;
    }
    stats.start = 0;
    stats.show_ids = args.show_ids;
    if (args.threads != ppcllm_get_threads(m) && ppcllm_set_threads(m, args.threads, &err) != PPCLLM_OK) {
        fprintf(stderr, "error: -T %d: %s\n", args.threads, err.message);
        ppcllm_close(m);
        return EXIT_USAGE;
    }
    if (args.ctx > 0 && ppcllm_set_context(m, args.ctx, &err) != PPCLLM_OK) {
        fprintf(stderr, "error: -c %d: %s\n", args.ctx, err.message);
        ppcllm_close(m);
        return EXIT_FAILURE;
    }
    if (args.mode != MODE_GENERATE) {
        int status = args.mode == MODE_ENCODE ? run_encode(m, args.prompt) : run_chat(m, &args, &stats);
        ppcllm_close(m);
        return status;
    }
    if (ppcllm_generate(m, args.prompt, &args.opt, print_piece, &stats, &positions, &err) != PPCLLM_OK) {
        fprintf(stderr, "error: %s\n", err.message);
        ppcllm_close(m);
        return EXIT_FAILURE;
    }
    printf("\n");
    fflush(stdout);
    if (args.show_ids) {
        fprintf(stderr, "\n");
    }
    if (positions > 1 && stats.start != 0) {
        long end = time_in_ms();
        double ms = (double)(end - stats.start);
        fprintf(stderr, "achieved tok/s: %f (%s kernel, %d thread%s, target %s)\n",
                ms > 0 ? (positions - 1) / ms * 1000.0 : 0.0, ppcllm_kernel_name(m), ppcllm_get_threads(m),
                ppcllm_get_threads(m) == 1 ? "" : "s", PPCLLM_TARGET_NAME);
    }
    print_memory();
    ppcllm_close(m);
    return EXIT_SUCCESS;
}
