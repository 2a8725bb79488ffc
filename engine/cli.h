/* cli.h: what the command-line program's two files share (main.c: options, the model, plain
 * generation; cli_chat.c: chat, the terminal and text read from streams). Not part of the engine:
 * the program uses only the public API (ppcllm.h). */
#ifndef PPCLLM_CLI_H
#define PPCLLM_CLI_H

#include "ppcllm.h"

#include <stdio.h>

#define EXIT_USAGE 2
#define EXIT_CONTEXT 3
#define EXIT_INTERRUPTED 130
#define MAX_PROMPT_FILE (16L << 20) /* a prompt file of at most 16 MiB */

typedef struct {
    long start;
    int show_ids;   /* -x 1: the sampled and printed token ids go to stderr; 2: also each chat
                     * turn's prompt ids */
} run_stats;

enum { MODE_GENERATE, MODE_CHAT, MODE_ENCODE };

typedef struct {
    const char *model;
    const char *prompt;
    const char *prompt_file;
    const char *system;
    ppcllm_options opt;
    long seed;
    int threads;
    int mode;
    int ctx;
    int show_ids;
    int have_prompt;
    int have_steps, have_n_predict;
} cli_args;

/* A growing text buffer for what a stream holds (stdin, a prompt file). */
typedef struct {
    char *text;
    size_t len, cap;
} text_buf;

enum { READ_OK, READ_EOF, READ_INTERRUPTED, READ_NOMEM, READ_TOO_LONG };

long time_in_ms(void);
/* the token callback: the piece to stdout (its id to stderr with -x 1); starts the clock */
int print_piece(void *ud, int token, const char *text, size_t len);
void print_memory(void);
/* Bytes of f into b (which starts empty) up to a newline (not kept) when line, else to the end,
 * at most `limit` bytes. READ_EOF: nothing before the end of the stream. */
int read_text(FILE *f, text_buf *b, int line, long limit);
/* -f: the prompt file into b; an exit status (EXIT_SUCCESS, or its one-line error printed) */
int read_prompt_file(const char *path, text_buf *b);
/* -m chat: one turn from prompt (or stdin), or a conversation when stdin is a terminal */
int run_chat(ppcllm_model *m, cli_args *args, const char *prompt, run_stats *stats);

#endif /* PPCLLM_CLI_H */
