/* generate.c: generation and chat, one loop for both.
 *
 * ppcllm_feed describes a stretch of the conversation: tokens to feed from the current position,
 * then sampling until a stop token (tokenizer.h) or the position limit. Plain generation is one
 * stretch; each chat turn is one more, continuing from the previous turn's position. A chat
 * template is data (ppcllm_chat_template, from the model file): the strings around each role's
 * message and the tokens that end a reply. */
#include "internal.h"

#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Chat templates                                                                             */

/* The "chat" blob (toolkit/format/blobs.py): flags, n_stops, n_strings, the stop ids, the
 * strings' lengths (u32 words in the file's byte order), then the strings' bytes, no NUL among
 * them. Every count and length is checked against the blob before it is used; the strings are
 * copied into one pool, each NUL-terminated. The stop ids are checked against the vocabulary
 * once the tokenizer is read (ppcllm_chat_prepare, below). load.c reads the blob and calls this. */
ppcllm_status ppcllm_parse_chat(ppcllm_chat_template *c, const unsigned char *blob, size_t n, int big,
                                ppcllm_error *err)
{
    ppcllm_u32 n_stops, head, i;
    size_t total = 0, at;
    char *out;
    if (n < 12) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file chat data is malformed: ", "it is truncated");
    }
    c->flags = ppcllm_get_u32(blob, big);
    n_stops = ppcllm_get_u32(blob + 4, big);
    if ((c->flags & ~PPCLLM_CHAT_FLAGS) != 0 || n_stops == 0 || n_stops > PPCLLM_MAX_CHAT_STOPS ||
        ppcllm_get_u32(blob + 8, big) != PPCLLM_CHAT_STRINGS) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file chat data is malformed: ",
                           "flags, stop count or string count out of range");
    }
    head = 4u * (3u + n_stops + PPCLLM_CHAT_STRINGS);
    if (n < head) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file chat data is malformed: ", "it is truncated");
    }
    for (i = 0; i < n_stops; i++) {
        ppcllm_u32 id = ppcllm_get_u32(blob + 12 + 4 * i, big);
        c->stops[i] = id > (ppcllm_u32)PPCLLM_MAX_DIM ? (int)PPCLLM_MAX_DIM : (int)id; /* checked later */
    }
    c->n_stops = (int)n_stops;
    for (i = 0; i < PPCLLM_CHAT_STRINGS; i++) {
        ppcllm_u32 len = ppcllm_get_u32(blob + 12 + 4 * (n_stops + i), big);
        if (len > n - head - total) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file chat data is malformed: ", "a string overruns it");
        }
        total += len;
    }
    if (head + total != n || memchr(blob + head, 0, total) != NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file chat data is malformed: ",
                           "its size does not match its strings, or a string has a NUL byte");
    }
    out = c->pool; /* room for total + PPCLLM_CHAT_STRINGS bytes */
    for (i = 0, at = head; i < PPCLLM_CHAT_STRINGS; i++) {
        size_t len = (size_t)ppcllm_get_u32(blob + 12 + 4 * (n_stops + i), big);
        memcpy(out, blob + at, len);
        out[len] = '\0';
        c->text[i] = out;
        out += len + 1;
        at += len;
    }
    return PPCLLM_OK;
}

ppcllm_status ppcllm_chat_prepare(ppcllm_model *m, ppcllm_error *err)
{
    int i;
    for (i = 0; m->chat.present && i < m->chat.n_stops; i++) {
        if (m->chat.stops[i] >= m->tok.vocab_size) {
            return ppcllm_fail(err, PPCLLM_ERR_FORMAT, "model file chat data is malformed: ",
                               "a stop token lies outside the vocabulary");
        }
    }
    return PPCLLM_OK;
}

static int ppcllm_chat_is_stop(const ppcllm_chat_template *c, int token)
{
    int i;
    for (i = 0; i < c->n_stops; i++) {
        if (c->stops[i] == token) {
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Options                                                                                    */

void ppcllm_options_init(ppcllm_options *opt)
{
    opt->size = sizeof *opt;
    opt->temperature = 1.0f;
    opt->topp = 0.9f;
    opt->seed = 1;
    opt->steps = 256;
    opt->n_predict = -1;
    opt->top_k = 0;
    opt->min_p = 0.0f;
    opt->repeat_penalty = 1.0f;
    opt->repeat_last_n = 64;
    opt->abort = NULL;
    opt->abort_ud = NULL;
}

static ppcllm_status ppcllm_check_options(const ppcllm_options *opt, ppcllm_error *err)
{
    /* compared as floats: a double main.c accepted stays inside the float-rounded range */
    float t;
    if (opt->size != sizeof *opt) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "options not set up by ppcllm_options_init", NULL);
    }
    t = opt->temperature;
    if (t != 0.0f && !(t >= (float)PPCLLM_MIN_TEMPERATURE && t <= (float)PPCLLM_MAX_TEMPERATURE)) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "temperature must be 0 (greedy) or in [" PPCLLM_STRING(
                           PPCLLM_MIN_TEMPERATURE) ", " PPCLLM_STRING(PPCLLM_MAX_TEMPERATURE) "]", NULL);
    }
    if (!(opt->topp >= (float)PPCLLM_MIN_TOPP && opt->topp <= (float)PPCLLM_MAX_TOPP)) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "top-p must be in [0, 1]", NULL);
    }
    if (opt->seed == 0) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "seed must not be 0", NULL);
    }
    if (opt->top_k < 0) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "top-k must be >= 0", NULL);
    }
    if (!(opt->min_p >= (float)PPCLLM_MIN_MIN_P && opt->min_p <= (float)PPCLLM_MAX_MIN_P)) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "min-p must be in [0, 1]", NULL);
    }
    if (!(opt->repeat_penalty >= (float)PPCLLM_MIN_REPEAT_PENALTY &&
          opt->repeat_penalty <= (float)PPCLLM_MAX_REPEAT_PENALTY)) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "repeat penalty must be in [" PPCLLM_STRING(
                           PPCLLM_MIN_REPEAT_PENALTY) ", " PPCLLM_STRING(PPCLLM_MAX_REPEAT_PENALTY) "]", NULL);
    }
    if (opt->repeat_last_n < -1) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "repeat-last-n must be >= -1", NULL);
    }
    return PPCLLM_OK;
}

/* positions a run may reach: opt->steps, or the whole context */
static int ppcllm_step_limit(const ppcllm_model *m, const ppcllm_options *opt)
{
    return opt->steps <= 0 || opt->steps > m->cfg.dims.seq_len ? m->cfg.dims.seq_len : opt->steps;
}

/* The position limit for sampling `count` tokens (0: no count) when the first sample comes
 * from position `first`: at most the whole context. */
static int ppcllm_count_limit(const ppcllm_model *m, int first, int count)
{
    int seq_len = m->cfg.dims.seq_len;
    return count <= 0 || count > seq_len - first ? seq_len : first + count;
}

/* The tokens of the positions the repeat penalty looks at, up to and including pos. */
static const int *ppcllm_recent(const ppcllm_model *m, const ppcllm_options *opt, int pos, int *n)
{
    int window = opt->repeat_last_n < 0 ? pos + 1 : opt->repeat_last_n;
    *n = window < pos + 1 ? window : pos + 1;
    return m->s.tokens + (pos + 1 - *n);
}

/* ------------------------------------------------------------------------------------------ */
/* The generation loop                                                                        */

typedef struct {
    const int *tokens;  /* fed in order from the current position (n >= 1) */
    int n;
    int limit;          /* no position at or past it is run */
    int echo;           /* 1: each fed token after the first is printed and checked for a stop
                         * as a sampled one is (llama2.c's prompt); 0: fed silently */
    const ppcllm_chat_template *chat; /* a chat turn: its template's stop tokens end the reply;
                                       * NULL: the tokenizer's */
} ppcllm_feed;

/* Feed f's tokens from *pos, then sample and print until a stop token or f->limit; *pending
 * receives the last sampled token (not forwarded yet), or -1; *printed counts the tokens passed
 * to on_token (sampled ones; with echo, the fed ones too). */
static ppcllm_status ppcllm_loop(ppcllm_model *m, const ppcllm_feed *f, int *pos, const ppcllm_options *opt,
                                 ppcllm_u64 *rng, ppcllm_token_fn on_token, void *ud, int *pending,
                                 int *printed, ppcllm_error *err)
{
    const ppcllm_tokenizer *t = &m->tok;
    int i = 0, token = f->tokens[0];
    *pending = -1;
    *printed = 0;
    while (*pos < f->limit) {
        float *logits;
        const char *piece;
        size_t len;
        int next, n_recent;
        const int *recent;
        if (opt->abort != NULL && opt->abort(opt->abort_ud) != 0) {
            return ppcllm_fail(err, PPCLLM_ERR_STOPPED, "generation stopped by the abort hook", NULL);
        }
        logits = ppcllm_forward(m, token, *pos);
        recent = ppcllm_recent(m, opt, *pos, &n_recent);
        (*pos)++;
        if (i + 1 < f->n) {
            next = f->tokens[++i];
            if (!f->echo) {
                token = next;
                continue;
            }
        } else {
            next = ppcllm_sample(&m->sampler, logits, opt, rng, recent, n_recent);
            *pending = next;
        }
        if (f->chat != NULL ? ppcllm_chat_is_stop(f->chat, next) : ppcllm_tokenizer_is_stop(t, next)) {
            break;
        }
        piece = t->ops->decode(t, token, next, &len);
        (*printed)++;
        if (on_token != NULL && on_token(ud, next, piece, len) != 0) {
            return ppcllm_fail(err, PPCLLM_ERR_STOPPED, "generation stopped by the token callback", NULL);
        }
        token = next;
    }
    return PPCLLM_OK;
}

/* The tokens of text into a new array (*tokens, freed by the caller) from index `extra` on, room
 * for the kind's max_tokens after it. what ("text", "prompt"): the messages' subject; bad_byte:
 * the message when a byte has no token. */
static ppcllm_status ppcllm_encode_new(ppcllm_model *m, const char *text, const char *what, const char *bad_byte,
                                       size_t extra, int **tokens, int *n_tokens, ppcllm_error *err)
{
    const ppcllm_tokenizer *t = &m->tok;
    size_t len = strlen(text), space, need;
    int ok = 1;
    void *work;
    need = t->ops->max_tokens(len, &ok);
    need = ok && need <= (size_t)-1 / sizeof(int) - extra ? need + extra : 0;
    space = t->ops->encode_space(t, len, &ok);
    *tokens = (int *)ppcllm_calloc(&m->a, need, sizeof(int));
    work = ok && space > 0 ? ppcllm_alloc(&m->a, space) : NULL;
    *n_tokens = 0;
    if (*tokens == NULL || !ok || (space > 0 && work == NULL) || need == 0) {
        ppcllm_free(&m->a, *tokens);
        ppcllm_free(&m->a, work);
        *tokens = NULL;
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory encoding the ", what);
    }
    ok = t->ops->encode(t, text, work, *tokens + extra, n_tokens);
    ppcllm_free(&m->a, work);
    if (!ok) {
        ppcllm_free(&m->a, *tokens);
        *tokens = NULL;
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, bad_byte, NULL);
    }
    return PPCLLM_OK;
}

ppcllm_status ppcllm_encode_text(ppcllm_model *m, const char *text, int *tokens, int cap, int *n_tokens,
                                 ppcllm_error *err)
{
    int *all, n;
    ppcllm_status st = ppcllm_encode_new(m, text, "text", "the text has a byte this model's vocabulary cannot encode", 0, &all, &n, err);
    if (st != PPCLLM_OK) {
        return st;
    }
    *n_tokens = n;
    memcpy(tokens, all, (size_t)(n < cap ? n : cap) * sizeof(int));
    ppcllm_free(&m->a, all);
    return n <= cap ? PPCLLM_OK : ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "text has more tokens than fit", NULL);
}

/* Plain generation from the prompt's tokens[0 .. n) (room for one more). Without echo the
 * prompt is printed first, as typed; an empty prompt starts from BOS (not printed). `steps`
 * positions in all, the prompt's included, or n_predict sampled tokens when it is >= 0. */
static ppcllm_status ppcllm_run(ppcllm_model *m, int *tokens, int n, const ppcllm_options *opt,
                                ppcllm_token_fn on_token, void *ud, int *positions, ppcllm_error *err)
{
    const ppcllm_tokenizer *t = &m->tok;
    ppcllm_u64 rng = opt->seed;
    int steps = ppcllm_step_limit(m, opt);
    int shown = n == 0 ? 0 : t->add_bos ? n - 1 : n, pending, i;
    ppcllm_feed f;
    ppcllm_status st;
    if (n == 0) {
        tokens[n++] = t->bos;
    }
    if (opt->n_predict >= 0) { /* a count of new tokens: the whole prompt must fit */
        if (n > m->cfg.dims.seq_len) {
            return ppcllm_fail(err, PPCLLM_ERR_CONTEXT, "the prompt has more tokens than the context has positions: ",
                               "shorten it or allow more positions (-c)");
        }
        steps = n;
    }
    for (i = n - shown; !t->echo_prompt && i < n && i < steps; i++) { /* the prompt, as typed */
        size_t len;
        const char *piece = t->ops->decode(t, -1, tokens[i], &len);
        if (on_token != NULL && on_token(ud, tokens[i], piece, len) != 0) {
            return ppcllm_fail(err, PPCLLM_ERR_STOPPED, "generation stopped by the token callback", NULL);
        }
    }
    f.tokens = tokens;
    f.n = n;
    /* `steps` tokens printed in all: a first token that is not BOS is printed, not produced by a
     * position, so one position fewer runs */
    f.limit = opt->n_predict >= 0 ? ppcllm_count_limit(m, n - 1, opt->n_predict) : steps - (shown == n ? 1 : 0);
    f.echo = t->echo_prompt;
    f.chat = NULL;
    *positions = 0;
    st = ppcllm_loop(m, &f, positions, opt, &rng, on_token, ud, &pending, &i, err);
    return st;
}

ppcllm_status ppcllm_generate(ppcllm_model *m, const char *prompt, const ppcllm_options *opt,
                              ppcllm_token_fn on_token, void *ud, int *positions, ppcllm_error *err)
{
    int *tokens = NULL;
    int n_tokens = 0, ran = 0;
    ppcllm_status st;
    if (prompt == NULL) {
        prompt = "";
    }
    st = ppcllm_check_options(opt, err);
    if (st == PPCLLM_OK) {
        st = ppcllm_encode_new(m, prompt, "prompt",
                               "the prompt has a byte this model's vocabulary cannot encode", 0, &tokens, &n_tokens, err);
    }
    if (st == PPCLLM_OK) {
        st = ppcllm_run(m, tokens, n_tokens, opt, on_token, ud, &ran, err);
    }
    ppcllm_free(&m->a, tokens);
    if (positions != NULL) {
        *positions = ran;
    }
    if (st == PPCLLM_OK) {
        ppcllm_ok(err);
    }
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Chat                                                                                       */

void ppcllm_chat_start(ppcllm_chat *c, ppcllm_u64 seed)
{
    c->pos = 0;
    c->pending = -1;
    c->rng = seed;
    c->reply_tokens = 0;
}

int ppcllm_has_chat(const ppcllm_model *m)
{
    return m->chat.present;
}

/* The text of one turn in the model's template (internal.h): the conversation's start and the
 * system prompt on the first turn (none: the template's own start, its default system prompt
 * included), else the end of the previous reply; the user's message; the reply's opening. */
static char *ppcllm_turn_text(ppcllm_model *m, const ppcllm_chat *c, const char *system, const char *user)
{
    const char *const *s = m->chat.text;
    size_t n_text = strlen(user) + 1, used = 0;
    char *text;
    int i;
    for (i = 0; i < (int)PPCLLM_CHAT_STRINGS; i++) {
        n_text += strlen(s[i]);
    }
    n_text += system != NULL && c->pos == 0 ? strlen(system) : 0;
    text = (char *)ppcllm_alloc(&m->a, n_text);
    if (text == NULL) {
        return NULL;
    }
    text[0] = '\0';
    if (c->pos > 0) {
        ppcllm_append(text, n_text, &used, s[PPCLLM_CHAT_USER_PREFIX]); /* ends the previous reply */
    } else if (system != NULL) {
        ppcllm_append(text, n_text, &used, s[PPCLLM_CHAT_SYSTEM_PREFIX]);
        ppcllm_append(text, n_text, &used, system);
        ppcllm_append(text, n_text, &used, s[PPCLLM_CHAT_SYSTEM_SUFFIX]);
    } else {
        ppcllm_append(text, n_text, &used, s[PPCLLM_CHAT_FIRST]);
    }
    ppcllm_append(text, n_text, &used, user);
    ppcllm_append(text, n_text, &used, s[PPCLLM_CHAT_USER_SUFFIX]);
    return text;
}

/* The tokens of the turn's text, after the reply's last token when it was cut off (*carried). A
 * later turn gets no second BOS. */
static ppcllm_status ppcllm_turn_tokens(ppcllm_model *m, const ppcllm_chat *c, const char *system,
                                        const char *user, int **tokens, int *n, int *carried, ppcllm_error *err)
{
    char *text = ppcllm_turn_text(m, c, system, user);
    ppcllm_status st;
    *carried = c->pending >= 0 && !ppcllm_chat_is_stop(&m->chat, c->pending);
    st = text == NULL ? ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory encoding the ", "chat turn")
                      : ppcllm_encode_new(m, text, "chat turn", "the chat turn has a byte this model's "
                                         "vocabulary cannot encode", (size_t)*carried, tokens, n, err);
    ppcllm_free(&m->a, text);
    if (st == PPCLLM_OK && c->pos > 0 && m->tok.add_bos && *n > 0 && (*tokens)[*carried] == m->tok.bos) {
        memmove(*tokens + *carried, *tokens + *carried + 1, (size_t)(*n - 1) * sizeof(int));
        (*n)--;
    }
    if (st == PPCLLM_OK && *carried) {
        (*tokens)[0] = c->pending;
    }
    return st;
}

ppcllm_status ppcllm_chat_prompt(ppcllm_model *m, const ppcllm_chat *c, const char *system, const char *user,
                                 int *tokens, int cap, int *n_tokens, ppcllm_error *err)
{
    int *all = NULL, n = 0, carried = 0;
    ppcllm_status st = ppcllm_has_chat(m) ? ppcllm_turn_tokens(m, c, system, user, &all, &n, &carried, err)
                                          : ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "this model has no chat template", NULL);
    if (st != PPCLLM_OK) {
        return st;
    }
    *n_tokens = n + carried;
    memcpy(tokens, all, (size_t)(*n_tokens < cap ? *n_tokens : cap) * sizeof(int));
    ppcllm_free(&m->a, all);
    return *n_tokens <= cap ? PPCLLM_OK : ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "chat turn has more tokens than fit", NULL);
}

/* One turn: the conversation so far continues with the user's message, the reply is printed
 * through on_token (without the template) and ends at a stop token, after its token count, or at
 * the end of the context (PPCLLM_ERR_CONTEXT). */
ppcllm_status ppcllm_chat_turn(ppcllm_model *m, ppcllm_chat *c, const char *system, const char *user,
                               const ppcllm_options *opt, ppcllm_token_fn on_token, void *ud, ppcllm_error *err)
{
    int *tokens = NULL, n = 0, carried = 0, start_pos = c->pos, start_pending = c->pending;
    int reply = opt->n_predict >= 0 ? opt->n_predict : opt->steps, seq_len = m->cfg.dims.seq_len;
    ppcllm_feed f;
    ppcllm_status st;
    c->reply_tokens = 0;
    if (!m->chat.present) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "this model has no chat template: ",
                           "run it without chat mode");
    }
    if (system != NULL && c->pos == 0 && (m->chat.flags & PPCLLM_CHAT_SYSTEM_ROLE) == 0) {
        return ppcllm_fail(err, PPCLLM_ERR_ARGUMENT, "this model's chat template takes no system prompt: ",
                           "leave it out");
    }
    st = ppcllm_check_options(opt, err);
    if (st != PPCLLM_OK) {
        return st;
    }
    st = ppcllm_turn_tokens(m, c, system, user, &tokens, &n, &carried, err);
    if (st == PPCLLM_OK) {
        f.tokens = tokens;
        f.n = n + carried;
        f.echo = 0;
        f.chat = &m->chat;
        if (f.n > seq_len - c->pos) { /* not even the turn fits: no reply token could follow */
            st = ppcllm_fail(err, PPCLLM_ERR_CONTEXT, "the conversation has filled the context", NULL);
        } else {
            int first = c->pos + f.n - 1, by_context = reply <= 0 || reply > seq_len - first;
            f.limit = ppcllm_count_limit(m, first, reply);
            st = ppcllm_loop(m, &f, &c->pos, opt, &c->rng, on_token, ud, &c->pending, &c->reply_tokens, err);
            if (st == PPCLLM_OK && by_context && c->pos >= seq_len &&
                !ppcllm_chat_is_stop(&m->chat, c->pending)) {
                st = ppcllm_fail(err, PPCLLM_ERR_CONTEXT, "the conversation has filled the context", NULL);
            }
        }
        if (st == PPCLLM_ERR_STOPPED && c->reply_tokens == 0) { /* stopped before the reply: undone */
            c->pos = start_pos;
            c->pending = start_pending;
        }
    }
    ppcllm_free(&m->a, tokens);
    if (st == PPCLLM_OK) {
        ppcllm_ok(err);
    }
    return st;
}
