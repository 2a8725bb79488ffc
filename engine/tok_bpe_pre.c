/* tok_bpe_pre.c: the pre-tokenizers of byte-level BPE: how a text is cut into pieces before
 * each piece is merged (tok_bpe.c). The "bpe" blob names one (word 7), as llama.cpp names and
 * defines them (llama-vocab.cpp, unicode.cpp; toolkit/models/bpe.py):
 *
 *   PPCLLM_PRE_GPT2     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   PPCLLM_PRE_SMOLLM   each \p{N} alone first, then GPT2 on the rest
 *   PPCLLM_PRE_LLAMA3   (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
 *                       ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   PPCLLM_PRE_QWEN2    LLAMA3's with \p{N} one at a time
 *   PPCLLM_PRE_DEFAULT  [\p{P}$+<=>^~|]+ first, then GPT2, then \p{N}+, then [0-9]{3}
 *
 * Each function returns the length of the first piece of s[0 .. n); a cascade of splits cuts
 * within the first piece of the split before it (every split continues left to right from where
 * its last piece ended, so this is the cascade's first piece). Code points come from the engine's
 * UTF-8 rules (a malformed byte alone is U+FFFD, class "other"), classes from the blob's ranges. */
#include "internal.h"

#define PPCLLM_CLASS_OTHER 0
#define PPCLLM_CLASS_LETTER 1
#define PPCLLM_CLASS_NUMBER 2
#define PPCLLM_CLASS_SPACE 3
#define PPCLLM_CLASS_PUNCT 4 /* \p{P} and $+<=>^~|: "other" except in DEFAULT's first split */

/* One code point of UTF-8 at s[0 .. n): its value and length; a malformed byte is taken alone
 * (as code point 0xFFFD, class "other"). */
static ppcllm_u32 ppcllm_utf8(const unsigned char *s, size_t n, size_t *len)
{
    unsigned char c = s[0];
    size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    ppcllm_u32 cp = need == 1 ? c : need == 2 ? (ppcllm_u32)(c & 0x1F) : need == 3 ? (ppcllm_u32)(c & 0x0F) : (ppcllm_u32)(c & 0x07);
    size_t i;
    if (need == 0 || need > n) {
        *len = 1;
        return 0xFFFDu;
    }
    for (i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *len = 1;
            return 0xFFFDu;
        }
        cp = (cp << 6) | (ppcllm_u32)(s[i] & 0x3F);
    }
    *len = need;
    return cp;
}

/* The class of cp in the blob's ranges (punctuation included). */
static int ppcllm_class_of(const ppcllm_tokenizer *t, ppcllm_u32 cp)
{
    size_t lo = 0, hi = t->bpe.n_ranges;
    if (cp == 0xFFFDu) {
        return PPCLLM_CLASS_OTHER;
    }
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const ppcllm_u32 *r = t->bpe.ranges + 3 * mid;
        if (cp < r[0]) {
            hi = mid;
        } else if (cp > r[1]) {
            lo = mid + 1;
        } else {
            return (int)r[2];
        }
    }
    return PPCLLM_CLASS_OTHER;
}

/* letter, number, white space or other (punctuation is other) */
static int ppcllm_class(const ppcllm_tokenizer *t, ppcllm_u32 cp)
{
    int cls = ppcllm_class_of(t, cp);
    return cls == PPCLLM_CLASS_PUNCT ? PPCLLM_CLASS_OTHER : cls;
}

/* The class of the code point at s[at] (at < n), and its length. */
static int ppcllm_class_at(const ppcllm_tokenizer *t, const unsigned char *s, size_t n, size_t at, size_t *len)
{
    return ppcllm_class(t, ppcllm_utf8(s + at, n - at, len));
}

/* The end of the run of class cls from pos; *last: the start of its last code point. */
static size_t ppcllm_run_end(const ppcllm_tokenizer *t, const unsigned char *s, size_t n, size_t pos, int cls,
                             size_t *last)
{
    size_t l;
    *last = pos;
    while (pos < n && ppcllm_class_at(t, s, n, pos, &l) == cls) {
        *last = pos;
        pos += l;
    }
    return pos;
}

/* GPT-2's regex (above) */
static size_t ppcllm_pretoken_gpt2(const ppcllm_tokenizer *t, const unsigned char *s, size_t n)
{
    size_t len, pos = 0, next_len, last;
    ppcllm_u32 c = ppcllm_utf8(s, n, &len), next = 0;
    int cls, next_cls = -1;
    if (len < n) {
        next = ppcllm_utf8(s + len, n - len, &next_len);
        next_cls = ppcllm_class(t, next);
    }
    if (c == '\'' && len < n) {
        if (next == 's' || next == 't' || next == 'm' || next == 'd') {
            return 2;
        }
        if (n >= 3 && ((next == 'r' && s[2] == 'e') || (next == 'v' && s[2] == 'e') || (next == 'l' && s[2] == 'l'))) {
            return 3;
        }
    }
    cls = ppcllm_class(t, c);
    if (c == ' ' && next_cls >= 0 && next_cls != PPCLLM_CLASS_SPACE) {
        pos = len; /* the optional leading space */
        cls = next_cls;
    }
    if (cls != PPCLLM_CLASS_SPACE) { /* a run of one class: letters, numbers or other */
        return ppcllm_run_end(t, s, n, pos, cls, &last);
    }
    pos = ppcllm_run_end(t, s, n, 0, PPCLLM_CLASS_SPACE, &last);
    if (pos == n || last == 0) {
        return pos == n ? pos : len; /* to the end; or one white space before non-space */
    }
    return last; /* \s+(?!\S): leave the last one to prefix what follows */
}

static ppcllm_u32 ppcllm_lower_ascii(ppcllm_u32 c)
{
    return c >= 'A' && c <= 'Z' ? c | 0x20u : c;
}

/* (?i:'s|'t|'re|'ve|'m|'ll|'d) at s: its length, or 0 */
static size_t ppcllm_contraction_any_case(const unsigned char *s, size_t n)
{
    ppcllm_u32 c1, c2;
    size_t l1, l2;
    if (n < 2 || s[0] != '\'') {
        return 0;
    }
    c1 = ppcllm_lower_ascii(ppcllm_utf8(s + 1, n - 1, &l1));
    if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        return 1 + l1;
    }
    if (1 + l1 < n) {
        c2 = ppcllm_lower_ascii(ppcllm_utf8(s + 1 + l1, n - 1 - l1, &l2));
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
            return 1 + l1 + l2;
        }
    }
    return 0;
}

/* The llama3 regex's white-space alternatives at s (a white space of len bytes first):
 * \s*[\r\n]+ (to the last CR or LF of the run), then \s+(?!\S), then \s+ */
static size_t ppcllm_whitespace(const ppcllm_tokenizer *t, const unsigned char *s, size_t n, size_t len)
{
    size_t pos = 0, last = 0, after_newline = 0, count = 0, l;
    while (pos < n) {
        ppcllm_u32 cp = ppcllm_utf8(s + pos, n - pos, &l);
        if (ppcllm_class(t, cp) != PPCLLM_CLASS_SPACE) {
            break;
        }
        last = pos;
        pos += l;
        count++;
        if (cp == '\n' || cp == '\r') {
            after_newline = pos;
        }
    }
    if (after_newline > 0) {
        return after_newline;
    }
    if (count > 1 && pos < n) {
        return last;
    }
    return count > 0 ? pos : len;
}

/* llama.cpp's unicode_regex_split_custom_llama3 (digits 3) and _qwen2 (digits 1) */
static size_t ppcllm_pretoken_llama3(const ppcllm_tokenizer *t, const unsigned char *s, size_t n, int digits)
{
    size_t len, l, pos, last, contraction = ppcllm_contraction_any_case(s, n);
    ppcllm_u32 c;
    int cls, next_cls = -1, first, count = 0;
    if (contraction > 0) {
        return contraction;
    }
    c = ppcllm_utf8(s, n, &len);
    cls = ppcllm_class(t, c);
    if (len < n) {
        next_cls = ppcllm_class_at(t, s, n, len, &l);
    }
    if (c != '\r' && c != '\n' && cls != PPCLLM_CLASS_NUMBER &&
        (cls == PPCLLM_CLASS_LETTER || next_cls == PPCLLM_CLASS_LETTER)) { /* [^\r\n\p{L}\p{N}]?\p{L}+ */
        return ppcllm_run_end(t, s, n, len, PPCLLM_CLASS_LETTER, &last);
    }
    if (cls == PPCLLM_CLASS_NUMBER) { /* \p{N}{1,digits} */
        pos = 0;
        while (pos < n && count < digits && ppcllm_class_at(t, s, n, pos, &l) == PPCLLM_CLASS_NUMBER) {
            pos += l;
            count++;
        }
        return pos;
    }
    first = c == ' ' ? next_cls : cls;
    if (first != PPCLLM_CLASS_SPACE && first != PPCLLM_CLASS_LETTER && first != PPCLLM_CLASS_NUMBER) {
        pos = ppcllm_run_end(t, s, n, c == ' ' ? len : 0, PPCLLM_CLASS_OTHER, &last); /* ?[^\s\p{L}\p{N}]+ */
        while (pos < n && (s[pos] == '\r' || s[pos] == '\n')) {                      /* [\r\n]* */
            pos++;
        }
        return pos;
    }
    return ppcllm_whitespace(t, s, n, len);
}

/* The length of the run at s whose code points are all of class cls (by ppcllm_class_of when
 * raw, else ppcllm_class) or all not. */
static size_t ppcllm_run_of(const ppcllm_tokenizer *t, const unsigned char *s, size_t n, int cls, int raw)
{
    size_t pos = 0, l;
    int inside = -1;
    while (pos < n) {
        ppcllm_u32 cp = ppcllm_utf8(s + pos, n - pos, &l);
        int here = (raw ? ppcllm_class_of(t, cp) : ppcllm_class(t, cp)) == cls;
        if (inside >= 0 && here != inside) {
            break;
        }
        inside = here;
        pos += l;
    }
    return pos;
}

static int ppcllm_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* [0-9]{3}: 3 at a match, else the gap to the next match (or all of s) */
static size_t ppcllm_three_digits(const unsigned char *s, size_t n)
{
    size_t i;
    for (i = 0; i + 3 <= n; i++) {
        if (ppcllm_digit(s[i]) && ppcllm_digit(s[i + 1]) && ppcllm_digit(s[i + 2])) {
            return i == 0 ? 3 : i;
        }
    }
    return n;
}

size_t ppcllm_pretoken(const ppcllm_tokenizer *t, const unsigned char *s, size_t n)
{
    size_t len;
    switch (t->bpe.pre) {
    case PPCLLM_PRE_LLAMA3:
        return ppcllm_pretoken_llama3(t, s, n, 3);
    case PPCLLM_PRE_QWEN2:
        return ppcllm_pretoken_llama3(t, s, n, 1);
    case PPCLLM_PRE_SMOLLM:
        if (ppcllm_class_at(t, s, n, 0, &len) == PPCLLM_CLASS_NUMBER) {
            return len;
        }
        return ppcllm_pretoken_gpt2(t, s, ppcllm_run_of(t, s, n, PPCLLM_CLASS_NUMBER, 0));
    case PPCLLM_PRE_DEFAULT:
        n = ppcllm_run_of(t, s, n, PPCLLM_CLASS_PUNCT, 1);
        n = ppcllm_pretoken_gpt2(t, s, n);
        n = ppcllm_run_of(t, s, n, PPCLLM_CLASS_NUMBER, 0);
        return ppcllm_three_digits(s, n);
    default:
        return ppcllm_pretoken_gpt2(t, s, n);
    }
}
