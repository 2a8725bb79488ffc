/* sampler.c: llama2.c's sampler (greedy, multinomial, top-p) and its xorshift64* generator. */
#include "internal.h"

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

static int ppcllm_sample_topp(const float *p, int n, float topp, ppcllm_probidx *probindex, float coin)
{
    const float cutoff = (1.0f - topp) / (n - 1);
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

int ppcllm_sample(ppcllm_sampler *s, float *logits, const ppcllm_options *opt, ppcllm_u64 *rng,
                  const int *recent, int n_recent)
{
    int n = s->vocab_size, q;
    float coin;
    (void)recent; /* TODO(sampler chain) */
    (void)n_recent;
    if (opt->temperature == 0.0f) {
        return ppcllm_argmax(logits, n);
    }
    for (q = 0; q < n; q++) {
        logits[q] /= opt->temperature;
    }
    ppcllm_softmax(logits, n);
    coin = ppcllm_random_f32(rng);
    if (opt->topp <= 0.0f || opt->topp >= 1.0f) {
        return ppcllm_sample_mult(logits, n, coin);
    }
    return ppcllm_sample_topp(logits, n, opt->topp, s->probindex, coin);
}
