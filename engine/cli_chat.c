/* cli_chat.c: the command-line program's chat (-m chat): one turn from -i, -f or stdin, or a
 * conversation on the terminal, where Ctrl-C stops a reply (the abort hook), Ctrl-C at the
 * prompt ends it (exit 130) and Ctrl-D ends it (exit 0); and the text read from streams (stdin,
 * prompt files), where a NUL byte is refused as in -i. */
#if !defined(_XOPEN_SOURCE) && (defined(__unix__) || defined(__APPLE__))
#define _XOPEN_SOURCE 600 /* sigaction */
#endif
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/select.h>
#include <unistd.h> /* isatty, pipe, read */
#define PPCLLM_POSIX 1
#else
#define PPCLLM_POSIX 0
#endif

static int stdin_is_terminal(void)
{
#if PPCLLM_POSIX
    return isatty(fileno(stdin));
#else
    return 0;
#endif
}

/* Ctrl-C in a conversation: the handler sets the flag and writes a byte to the wake-up pipe;
 * the abort hook stops the reply at the next position, and the prompt waits in select() on stdin
 * and that pipe, so a Ctrl-C that comes just before the wait is not lost (the self-pipe scheme:
 * unlike a blocked mask and pselect(), it holds whichever thread the signal is delivered to). */
static volatile sig_atomic_t interrupted;
#if PPCLLM_POSIX
static volatile sig_atomic_t wake_pipe[2] = {-1, -1}; /* read end, write end; -1: none */
#endif

static void on_interrupt(int sig)
{
#if PPCLLM_POSIX
    int saved = errno;
    (void)sig;
    interrupted = 1;
    if (wake_pipe[1] >= 0) {
        ssize_t w = write(wake_pipe[1], "!", 1); /* non-blocking: a full pipe already wakes */
        (void)w;
    }
    errno = saved;
#else
    (void)sig;
    interrupted = 1;
#endif
}

static int abort_requested(void *ud)
{
    (void)ud;
    return interrupted != 0;
}

#if PPCLLM_POSIX
static int set_flags(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl != -1 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) != -1 && fcntl(fd, F_SETFD, FD_CLOEXEC) != -1;
}

static void open_wake_pipe(void)
{
    int fds[2];
    if (pipe(fds) != 0) {
        return; /* no pipe: select() still returns on EINTR, only the narrow race is left */
    }
    if (!set_flags(fds[0]) || !set_flags(fds[1])) {
        close(fds[0]);
        close(fds[1]);
        return;
    }
    wake_pipe[0] = fds[0];
    wake_pipe[1] = fds[1];
}

static void drain_wake_pipe(void)
{
    char sink[64];
    if (wake_pipe[0] >= 0) {
        while (read(wake_pipe[0], sink, sizeof sink) > 0) {
        }
    }
}
#endif

/* The Ctrl-C seen (during a reply or at the prompt) is dealt with: the flag and the pipe clear. */
static void clear_interrupt(void)
{
    interrupted = 0;
#if PPCLLM_POSIX
    drain_wake_pipe();
#endif
}

static void catch_interrupts(void)
{
#if PPCLLM_POSIX
    struct sigaction sa;
    open_wake_pipe();
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, NULL);
#else
    signal(SIGINT, on_interrupt);
#endif
}

static void release_interrupts(void)
{
#if PPCLLM_POSIX
    int r = wake_pipe[0], w = wake_pipe[1];
    wake_pipe[1] = wake_pipe[0] = -1; /* before closing: the handler may still run */
    if (r >= 0) {
        close(r);
        close(w);
    }
#endif
}


static int buf_push(text_buf *b, int c)
{
    if (b->len + 1 >= b->cap) {
        size_t cap = b->cap == 0 ? 256 : b->cap * 2;
        char *grown = (char *)realloc(b->text, cap);
        if (grown == NULL) {
            return 0;
        }
        b->text = grown;
        b->cap = cap;
    }
    b->text[b->len++] = (char)c;
    b->text[b->len] = '\0';
    return 1;
}


int read_text(FILE *f, text_buf *b, int line, long limit)
{
    int c;
    b->len = 0;
    if (!buf_push(b, 0)) { /* room for the terminator, even when empty */
        return READ_NOMEM;
    }
    b->len = 0;
    for (;;) {
        errno = 0;
        c = getc(f);
        if (c == EOF) {
            if (interrupted) {
                clearerr(f);
                return READ_INTERRUPTED;
            }
            return b->len == 0 && (line || feof(f)) ? READ_EOF : READ_OK;
        }
        if (line && c == '\n') {
            return READ_OK;
        }
        if ((long)b->len >= limit) {
            return READ_TOO_LONG;
        }
        if (!buf_push(b, c)) {
            return READ_NOMEM;
        }
    }
}

#if PPCLLM_POSIX
/* The terminal's bytes read past the last line (a pasted block holds several lines). */
static struct {
    char data[4096];
    size_t start, end;
} pending;

/* Wait until stdin has bytes (1) or Ctrl-C came (0), before or during the wait. */
static int wait_for_input(void)
{
    for (;;) {
        fd_set fds;
        int top = wake_pipe[0] > STDIN_FILENO ? wake_pipe[0] : STDIN_FILENO;
        if (interrupted) {
            return 0;
        }
        FD_ZERO(&fds);
        FD_SET(STDIN_FILENO, &fds);
        if (wake_pipe[0] >= 0) {
            FD_SET(wake_pipe[0], &fds);
        }
        if (select(top + 1, &fds, NULL, NULL, NULL) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return 1; /* let read() report it */
        }
        if (interrupted) {
            return 0;
        }
        if (wake_pipe[0] >= 0 && FD_ISSET(wake_pipe[0], &fds)) {
            drain_wake_pipe(); /* a byte left from a Ctrl-C already dealt with */
        }
        if (FD_ISSET(STDIN_FILENO, &fds)) {
            return 1;
        }
    }
}

/* One line of the conversation from the terminal (file descriptor 0, never stdio's buffer, so
 * that the wait sees every byte): as read_text(stdin, b, 1, limit), READ_INTERRUPTED on Ctrl-C. */
static int read_message(text_buf *b, long limit)
{
    b->len = 0;
    if (!buf_push(b, 0)) {
        return READ_NOMEM;
    }
    b->len = 0;
    for (;;) {
        ssize_t n;
        while (pending.start < pending.end) {
            char c = pending.data[pending.start++];
            if (c == '\n') {
                return READ_OK;
            }
            if ((long)b->len >= limit) {
                return READ_TOO_LONG;
            }
            if (!buf_push(b, (unsigned char)c)) {
                return READ_NOMEM;
            }
        }
        if (!wait_for_input()) {
            return READ_INTERRUPTED;
        }
        n = read(STDIN_FILENO, pending.data, sizeof pending.data);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) { /* the end (Ctrl-D), or the terminal is gone */
            return b->len == 0 ? READ_EOF : READ_OK;
        }
        pending.start = 0;
        pending.end = (size_t)n;
    }
}
#else
static int read_message(text_buf *b, long limit)
{
    return read_text(stdin, b, 1, limit);
}
#endif

/* The text has a NUL byte (the C string would end early): one line, and 1 */
static int has_nul(const text_buf *b, const char *what)
{
    if (memchr(b->text, '\0', b->len) == NULL) {
        return 0;
    }
    fprintf(stderr, "error: %s contains a NUL byte: remove it (prompts are C strings)\n", what);
    return 1;
}

/* -f FILE: the prompt is the file's bytes (one final newline dropped, as llama.cpp does). */
int read_prompt_file(const char *path, text_buf *b)
{
    int r;
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot open prompt file %s: %s\n", path, strerror(errno));
        return EXIT_FAILURE;
    }
    r = read_text(f, b, 0, MAX_PROMPT_FILE);
    if (r == READ_OK && ferror(f)) {
        fprintf(stderr, "error: cannot read prompt file %s: %s\n", path, strerror(errno));
        fclose(f);
        return EXIT_FAILURE;
    }
    fclose(f);
    if (r == READ_TOO_LONG || r == READ_NOMEM) {
        fprintf(stderr, "error: prompt file %s: %s\n", path,
                r == READ_NOMEM ? "out of memory reading it" : "longer than 16 MiB");
        return r == READ_NOMEM ? EXIT_FAILURE : EXIT_USAGE;
    }
    if (b->len > 0 && b->text[b->len - 1] == '\n') {
        b->text[--b->len] = '\0';
    }
    return has_nul(b, "the prompt file") ? EXIT_USAGE : EXIT_SUCCESS;
}

/* After a reply: its length and speed, and how much of the context the conversation holds. */
static void print_reply_stats(ppcllm_model *m, const ppcllm_chat *chat, const run_stats *stats)
{
    long ms = stats->start != 0 ? time_in_ms() - stats->start : 0;
    fprintf(stderr, "[%d token%s, %.2f tok/s; context %d of %d positions]\n", chat->reply_tokens,
            chat->reply_tokens == 1 ? "" : "s",
            chat->reply_tokens > 1 && ms > 0 ? (chat->reply_tokens - 1) / (double)ms * 1000.0 : 0.0, chat->pos,
            ppcllm_get_context(m));
}

static void print_context_full(ppcllm_model *m, const ppcllm_chat *chat)
{
    fprintf(stderr, "error: the conversation has filled the context (%d of %d positions): start a new one, or "
            "allow more with -c (this model has %d)\n", chat->pos, ppcllm_get_context(m), ppcllm_get_model_context(m));
}

/* One turn. EXIT_SUCCESS: the reply ended (or Ctrl-C stopped it); EXIT_CONTEXT; EXIT_FAILURE. */
/* -x 2: the ids the turn feeds, one line on stderr ("prompt ids: ..."), before its reply */
static void print_prompt_ids(ppcllm_model *m, const ppcllm_chat *chat, const cli_args *args, const char *user)
{
    ppcllm_error err;
    int n = 0, i, one, *ids = NULL;
    ppcllm_chat_prompt(m, chat, args->system, user, &one, 1, &n, &err); /* the count */
    ids = n > 0 ? (int *)malloc((size_t)n * sizeof(int)) : NULL;
    if (ids != NULL && ppcllm_chat_prompt(m, chat, args->system, user, ids, n, &n, &err) == PPCLLM_OK) {
        fprintf(stderr, "prompt ids:");
        for (i = 0; i < n; i++) {
            fprintf(stderr, " %d", ids[i]);
        }
        fprintf(stderr, "\n");
    }
    free(ids);
}

static int chat_turn(ppcllm_model *m, ppcllm_chat *chat, const cli_args *args, const char *user, run_stats *stats)
{
    ppcllm_error err;
    ppcllm_status st;
    int stopped;
    stats->start = 0;
    if (stats->show_ids > 1) {
        print_prompt_ids(m, chat, args, user);
    }
    st = ppcllm_chat_turn(m, chat, args->system, user, &args->opt, print_piece, stats, &err);
    if (chat->reply_tokens > 0) {
        printf("\n");
        fflush(stdout);
    }
    if (stats->show_ids) {
        fprintf(stderr, "\n");
    }
    if (st == PPCLLM_ERR_CONTEXT) {
        print_context_full(m, chat);
        return EXIT_CONTEXT;
    }
    stopped = interrupted != 0;
    clear_interrupt(); /* a Ctrl-C during the reply is for the reply, even one that just ended */
    if (st == PPCLLM_ERR_STOPPED && stopped) {
        fprintf(stderr, "[reply stopped]\n");
        print_reply_stats(m, chat, stats);
        return EXIT_SUCCESS;
    }
    if (st != PPCLLM_OK) {
        fprintf(stderr, "error: %s\n", err.message);
        return EXIT_FAILURE;
    }
    if (chat->reply_tokens == 0) {
        printf("\n");
        fflush(stdout);
    }
    print_reply_stats(m, chat, stats);
    return EXIT_SUCCESS;
}

/* A conversation on the terminal: "> " on stderr, a message per line. Ctrl-D ends it (0),
 * Ctrl-C at the prompt ends it (130), Ctrl-C during a reply stops that reply. */
static int run_conversation(ppcllm_model *m, ppcllm_chat *chat, cli_args *args, run_stats *stats)
{
    text_buf line = {NULL, 0, 0};
    int status = EXIT_SUCCESS;
    catch_interrupts();
    args->opt.abort = abort_requested;
    for (;;) {
        int r;
        fprintf(stderr, "> ");
        fflush(stderr);
        r = read_message(&line, MAX_PROMPT_FILE);
        if (r == READ_EOF) {
            fprintf(stderr, "\n");
            break;
        }
        if (r == READ_INTERRUPTED) {
            fprintf(stderr, "\n");
            status = EXIT_INTERRUPTED;
            break;
        }
        if (r != READ_OK) {
            fprintf(stderr, "error: %s\n", r == READ_NOMEM ? "out of memory reading the message"
                                                           : "the message is longer than 16 MiB");
            status = EXIT_FAILURE;
            break;
        }
        while (line.len > 0 && line.text[line.len - 1] == '\r') {
            line.text[--line.len] = '\0';
        }
        if (line.len == 0 || has_nul(&line, "the message")) {
            continue;
        }
        status = chat_turn(m, chat, args, line.text, stats);
        if (status != EXIT_SUCCESS) {
            break;
        }
    }
    release_interrupts();
    free(line.text);
    return status;
}

/* -m chat: one turn from -i, -f or stdin, or a conversation when stdin is a terminal */
int run_chat(ppcllm_model *m, cli_args *args, const char *prompt, run_stats *stats)
{
    ppcllm_chat chat;
    int status;
    if (!ppcllm_has_chat(m)) {
        fprintf(stderr, "error: %s has no chat template: run it without -m chat\n", args->model);
        return EXIT_USAGE;
    }
    ppcllm_chat_start(&chat, args->opt.seed);
    if (prompt != NULL) {
        status = chat_turn(m, &chat, args, prompt, stats);
    } else if (!stdin_is_terminal()) {
        text_buf in = {NULL, 0, 0};
        int r = read_text(stdin, &in, 0, MAX_PROMPT_FILE);
        if (r == READ_NOMEM || r == READ_TOO_LONG) {
            fprintf(stderr, "error: %s\n", r == READ_NOMEM ? "out of memory reading stdin" : "stdin holds more than 16 MiB");
            free(in.text);
            return r == READ_NOMEM ? EXIT_FAILURE : EXIT_USAGE;
        }
        while (in.len > 0 && (in.text[in.len - 1] == '\n' || in.text[in.len - 1] == '\r')) {
            in.text[--in.len] = '\0';
        }
        status = has_nul(&in, "the message on stdin") ? EXIT_USAGE : chat_turn(m, &chat, args, in.text, stats);
        free(in.text);
    } else {
        status = run_conversation(m, &chat, args, stats);
    }
    if (status == EXIT_SUCCESS || status == EXIT_INTERRUPTED) {
        print_memory();
    }
    return status;
}
