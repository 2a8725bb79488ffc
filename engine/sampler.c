/* sampler.c: the sampling chain (ppcllm.h documents its order): the repeat penalty and top-k on
 * the logits, then llama2.c's sampler (greedy, multinomial, top-p) with min-p, and llama2.c's
 * xorshift64* generator. At their defaults the penalty, top-k and min-p do nothing, so the
 * random-number use and every choice are llama2.c's. */
#include "internal.h"

#include <math.h>
#include <string.h>

void ppcllm_sampler_init(ppcllm_sampler *s, const ppcllm_allocator *a, int vocab_size)
{
    s->vocab_size = vocab_size;
    s->probindex = (ppcllm_probidx *)ppcllm_calloc(a, 2 * (size_t)vocab_size, sizeof(ppcllm_probidx));
    s->seen = (unsigned char *)ppcllm_calloc(a, (size_t)vocab_size, 1);
}

void ppcllm_sampler_free(ppcllm_sampler *s, const ppcllm_allocator *a)
{
    ppcllm_free(a, s->probindex);
    ppcllm_free(a, s->seen);
}

static ppcllm_u32 ppcllm_random_u32(ppcllm_u64 *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return (ppcllm_u32)((*state * (ppcllm_u64)0x2545F4914F6CDD1DULL) >> 32);
}

static float ppcllm_random_f32(ppcllm_u64 *state)
{
    return (ppcllm_random_u32(state) >> 8) / 16777216.0f;
}

static int ppcllm_argmax(const float *p, int n)
{
    int i, best = 0;
    for (i = 1; i < n; i++) {
        if (p[i] > p[best]) {
            best = i;
        }
    }
    return best;
}

static int ppcllm_sample_mult(const float *p, int n, float coin)
{
    float cdf = 0.0f;
    int i;
    for (i = 0; i < n; i++) {
        cdf += p[i];
        if (coin < cdf) {
            return i;
        }
    }
    return n - 1;
}

/* Stable merge sort by descending probability (ties keep index order, as glibc's qsort did
 * for llama2.c). tmp holds n entries. */
static void ppcllm_sort_probs(ppcllm_probidx *v, ppcllm_probidx *tmp, int n)
{
    int width, i;
    for (width = 1; width < n; width *= 2) {
        for (i = 0; i < n; i += 2 * width) {
            int mid = i + width < n ? i + width : n, hi = i + 2 * width < n ? i + 2 * width : n;
            int l = i, r = mid, k = i;
            while (l < mid && r < hi) {
                tmp[k++] = v[r].prob > v[l].prob ? v[r++] : v[l++];
            }
            while (l < mid) {
                tmp[k++] = v[l++];
            }
            while (r < hi) {
                tmp[k++] = v[r++];
            }
        }
        memcpy(v, tmp, (size_t)n * sizeof *v);
    }
}

/* llama2.c's sample_topp, with min-p: a token is a candidate when its probability is at least
 * both llama2.c's cutoff and `min_prob` (min-p's; 0 = none). Candidates below it come after
 * all the others in the sorted order, so dropping them before the top-p cut gives the same
 * tokens as dropping them after it. */
static int ppcllm_sample_topp(const float *p, int n, float topp, float min_prob, ppcllm_probidx *probindex,
                              float coin)
{
    const float llama2c_cutoff = (1.0f - topp) / (n - 1);
    const float cutoff = min_prob > llama2c_cutoff ? min_prob : llama2c_cutoff;
    float cumulative = 0.0f, r, cdf = 0.0f;
    int n0 = 0, i, last_idx;
    for (i = 0; i < n; i++) {
        if (p[i] >= cutoff) {
            probindex[n0].index = i;
            probindex[n0].prob = p[i];
            n0++;
        }
    }
    if (n0 == 0) {
        return ppcllm_argmax(p, n); /* only with NaN probabilities (damaged weights) */
    }
    ppcllm_sort_probs(probindex, probindex + n, n0);
    last_idx = n0 - 1;
    for (i = 0; i < n0; i++) {
        cumulative += probindex[i].prob;
        if (cumulative > topp) {
            last_idx = i;
            break;
        }
    }
    r = coin * cumulative;
    for (i = 0; i <= last_idx; i++) {
        cdf += probindex[i].prob;
        if (r < cdf) {
            return probindex[i].index;
        }
    }
    return probindex[last_idx].index;
}

/* min-p without top-p: llama2.c's multinomial draw (in id order) over the tokens whose
 * probability is at least min_prob, the coin scaled by their sum. */
static int ppcllm_sample_floor(const float *p, int n, float min_prob, float coin)
{
    float total = 0.0f, r, cdf = 0.0f;
    int i, last = 0;
    for (i = 0; i < n; i++) {
        if (p[i] >= min_prob) {
            total += p[i];
            last = i;
        }
    }
    r = coin * total;
    for (i = 0; i < n; i++) {
        if (p[i] >= min_prob) {
            cdf += p[i];
            if (r < cdf) {
                return i;
            }
        }
    }
    return last;
}

/* Stage 1: each distinct token among recent[0..n_recent) once, llama.cpp's rule. */
static void ppcllm_penalize(ppcllm_sampler *s, float *logits, float penalty, const int *recent, int n_recent)
{
    int i;
    if (penalty == 1.0f) {
        return;
    }
    for (i = 0; i < n_recent; i++) {
        int t = recent[i];
        if (t >= 0 && t < s->vocab_size && !s->seen[t]) {
            s->seen[t] = 1;
            logits[t] = logits[t] > 0.0f ? logits[t] / penalty : logits[t] * penalty;
        }
    }
    for (i = 0; i < n_recent; i++) {
        if (recent[i] >= 0 && recent[i] < s->vocab_size) {
            s->seen[recent[i]] = 0;
        }
    }
}

/* Stage 2: all but the k largest logits (ties: the lower id first) become -infinity, so the
 * softmax gives them probability 0. */
static void ppcllm_top_k(ppcllm_sampler *s, float *logits, int k)
{
    int n = s->vocab_size, i;
    if (k <= 0 || k >= n) {
        return;
    }
    for (i = 0; i < n; i++) {
        s->probindex[i].index = i;
        s->probindex[i].prob = logits[i];
    }
    ppcllm_sort_probs(s->probindex, s->probindex + n, n);
    for (i = k; i < n; i++) {
        logits[s->probindex[i].index] = -INFINITY;
    }
}

int ppcllm_sample(ppcllm_sampler *s, float *logits, const ppcllm_options *opt, ppcllm_u64 *rng,
                  const int *recent, int n_recent)
{
    int n = s->vocab_size, q;
    float coin, min_prob = 0.0f;
    ppcllm_penalize(s, logits, opt->repeat_penalty, recent, n_recent);
    ppcllm_top_k(s, logits, opt->top_k);
    if (opt->temperature == 0.0f) {
        return ppcllm_argmax(logits, n);
    }
    for (q = 0; q < n; q++) {
        logits[q] /= opt->temperature;
    }
    ppcllm_softmax(logits, n);
    coin = ppcllm_random_f32(rng);
    if (opt->min_p > 0.0f) {
        min_prob = opt->min_p * logits[ppcllm_argmax(logits, n)];
    }
    if (opt->topp <= 0.0f || opt->topp >= 1.0f) {
        return min_prob > 0.0f ? ppcllm_sample_floor(logits, n, min_prob, coin) : ppcllm_sample_mult(logits, n, coin);
    }
    return ppcllm_sample_topp(logits, n, opt->topp, min_prob, s->probindex, coin);
}
