/* forward.c: the run state (activations, KV cache) and the transformer's forward pass, llama2.c's
 * operation for operation: the scalar reference is compared bit for bit, so the order of every
 * floating-point operation here is part of the engine's behaviour. Matrix products go to the
 * kernels the model chose (kernels_select.c), rows split over the worker pool. One token at a
 * time; a batch of tokens would add a ppcllm_forward_batch beside ppcllm_forward. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Run state                                                                                  */

/* The KV cache, attention scores and the token of each position for cfg.dims.seq_len positions. */
ppcllm_status ppcllm_alloc_cache(ppcllm_model *m, ppcllm_error *err)
{
    const ppcllm_allocator *a = &m->a;
    const ppcllm_info *p = &m->cfg.dims;
    int ok = 1;
    size_t kv_dim = (size_t)p->n_kv_heads * (size_t)p->head_size;
    size_t cache = ppcllm_mul(ppcllm_mul((size_t)p->n_layers, (size_t)p->seq_len, &ok), kv_dim, &ok);
    size_t att = ppcllm_mul((size_t)p->n_heads, (size_t)p->seq_len, &ok);
    if (!ok) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "the KV cache is too large for this machine: ",
                           "use a smaller context (-c)");
    }
    m->s.att = (float *)ppcllm_calloc(a, att, sizeof(float));
    m->s.key_cache = (float *)ppcllm_calloc(a, cache, sizeof(float));
    m->s.value_cache = (float *)ppcllm_calloc(a, cache, sizeof(float));
    m->s.tokens = (int *)ppcllm_calloc(a, (size_t)p->seq_len, sizeof(int));
    if (m->s.att == NULL || m->s.key_cache == NULL || m->s.value_cache == NULL || m->s.tokens == NULL) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory allocating the KV cache: ",
                           "use a smaller context (-c)");
    }
    return PPCLLM_OK;
}

ppcllm_status ppcllm_alloc_state(ppcllm_model *m, ppcllm_error *err)
{
    const ppcllm_allocator *a = &m->a;
    const ppcllm_info *p = &m->cfg.dims;
    int ok = 1, q_dim = p->n_heads * p->head_size, wide = p->dim > q_dim ? p->dim : q_dim;
    int widest = wide > p->hidden_dim ? wide : p->hidden_dim; /* of any matrix product's input */
    m->s.x = (float *)ppcllm_calloc(a, (size_t)p->dim, sizeof(float));
    m->s.xb = (float *)ppcllm_calloc(a, (size_t)wide, sizeof(float)); /* a norm's output, attention's */
    m->s.xb2 = (float *)ppcllm_calloc(a, (size_t)p->dim, sizeof(float));
    m->s.hb = (float *)ppcllm_calloc(a, (size_t)p->hidden_dim, sizeof(float));
    m->s.hb2 = (float *)ppcllm_calloc(a, (size_t)p->hidden_dim, sizeof(float));
    m->s.q = (float *)ppcllm_calloc(a, (size_t)q_dim, sizeof(float));
    m->s.logits = (float *)ppcllm_calloc(a, (size_t)p->vocab_size, sizeof(float));
    ppcllm_sampler_init(&m->sampler, a, p->vocab_size);
    if ((m->cfg.flags & PPCLLM_FLAG_FLOAT_ACTIVATIONS) != 0) {
        int groups = ppcllm_padded_groups(widest);
        m->s.fx.hi = (signed char *)ppcllm_calloc(a, (size_t)groups, PPCLLM_GROUP);
        m->s.fx.lo = (unsigned char *)ppcllm_calloc(a, (size_t)groups, PPCLLM_GROUP);
        m->s.fx.s = (float *)ppcllm_calloc(a, (size_t)groups, sizeof(float));
        m->s.fx.qsum = (ppcllm_i32 *)ppcllm_calloc(a, (size_t)groups * 4, sizeof(ppcllm_i32));
        m->s.fx.corr8 = (ppcllm_i32 *)ppcllm_calloc(a, (size_t)groups * 4, sizeof(ppcllm_i32));
        m->s.fx.corr4 = (ppcllm_i32 *)ppcllm_calloc(a, (size_t)groups * 4, sizeof(ppcllm_i32));
        m->s.fx.qsum16 = (ppcllm_i32 *)ppcllm_calloc(a, (size_t)groups * 2, sizeof(ppcllm_i32));
        if (m->s.fx.hi == NULL || m->s.fx.lo == NULL || m->s.fx.s == NULL || m->s.fx.qsum == NULL ||
            m->s.fx.corr8 == NULL || m->s.fx.corr4 == NULL || m->s.fx.qsum16 == NULL) {
            return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory allocating the run state", NULL);
        }
    } else if (m->cfg.quant != PPCLLM_DTYPE_F32) {
        int groups = ppcllm_padded_groups(widest);
        m->s.qx.q = (signed char *)ppcllm_calloc(a, (size_t)groups, PPCLLM_GROUP);
        m->s.qx.s = (float *)ppcllm_calloc(a, (size_t)groups, sizeof(float));
        m->s.qx.corr8 = (ppcllm_i32 *)ppcllm_calloc(a, (size_t)groups * 4, sizeof(ppcllm_i32));
        m->s.qx.corr4 = (ppcllm_i32 *)ppcllm_calloc(a, (size_t)groups * 4, sizeof(ppcllm_i32));
        if (m->s.qx.q == NULL || m->s.qx.s == NULL || m->s.qx.corr8 == NULL || m->s.qx.corr4 == NULL) {
            return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory allocating the run state", NULL);
        }
    }
    if (m->s.x == NULL || m->s.xb == NULL || m->s.xb2 == NULL || m->s.hb == NULL || m->s.hb2 == NULL ||
        m->s.q == NULL || m->s.logits == NULL || m->sampler.probindex == NULL ||
        m->sampler.seen == NULL || !ok) {
        return ppcllm_fail(err, PPCLLM_ERR_NOMEM, "out of memory allocating the run state", NULL);
    }
    return ppcllm_alloc_cache(m, err);
}

void ppcllm_free_cache(ppcllm_model *m)
{
    ppcllm_free(&m->a, m->s.key_cache);
    ppcllm_free(&m->a, m->s.value_cache);
    ppcllm_free(&m->a, m->s.att);
    ppcllm_free(&m->a, m->s.tokens);
    m->s.key_cache = m->s.value_cache = m->s.att = NULL;
    m->s.tokens = NULL;
}

void ppcllm_free_state(ppcllm_model *m)
{
    const ppcllm_allocator *a = &m->a;
    ppcllm_free(a, m->s.qx.q);
    ppcllm_free(a, m->s.qx.s);
    ppcllm_free(a, m->s.qx.corr8);
    ppcllm_free(a, m->s.qx.corr4);
    ppcllm_free(a, m->s.fx.hi);
    ppcllm_free(a, m->s.fx.lo);
    ppcllm_free(a, m->s.fx.s);
    ppcllm_free(a, m->s.fx.qsum);
    ppcllm_free(a, m->s.fx.corr8);
    ppcllm_free(a, m->s.fx.corr4);
    ppcllm_free(a, m->s.fx.qsum16);
    ppcllm_free(a, m->s.x);
    ppcllm_free(a, m->s.xb);
    ppcllm_free(a, m->s.xb2);
    ppcllm_free(a, m->s.hb);
    ppcllm_free(a, m->s.hb2);
    ppcllm_free(a, m->s.q);
    ppcllm_free(a, m->s.logits);
    ppcllm_free_cache(m);
    ppcllm_sampler_free(&m->sampler, a);
}

/* ------------------------------------------------------------------------------------------ */
/* The forward pass                                                                           */

static void ppcllm_rmsnorm(float *o, const float *x, const float *weight, int size, float eps)
{
    float ss = 0.0f;
    int j;
    for (j = 0; j < size; j++) {
        ss += x[j] * x[j];
    }
    ss /= size;
    ss += eps;
    ss = 1.0f / sqrtf(ss);
    for (j = 0; j < size; j++) {
        o[j] = weight[j] * (ss * x[j]);
    }
}

void ppcllm_softmax(float *x, int size)
{
    float max_val = x[0], sum = 0.0f;
    int i;
    for (i = 1; i < size; i++) {
        if (x[i] > max_val) {
            max_val = x[i];
        }
    }
    for (i = 0; i < size; i++) {
        x[i] = expf(x[i] - max_val);
        sum += x[i];
    }
    for (i = 0; i < size; i++) {
        x[i] /= sum;
    }
}

/* RoPE on q and k at pos; ff (or NULL): each pair's angle divided by ff[pair within its head] */
static void ppcllm_rotate(float *q, float *k, int dim, int kv_dim, int head_size, int pos, float theta,
                          const float *ff)
{
    int i, v;
    for (i = 0; i < dim; i += 2) {
        int head_dim = i % head_size;
        float freq = 1.0f / powf(theta, head_dim / (float)head_size);
        float val = pos * freq;
        if (ff != NULL) {
            val /= ff[head_dim / 2];
        }
        float fcr = cosf(val);
        float fci = sinf(val);
        int rotn = i < kv_dim ? 2 : 1; /* q always, k only within kv_dim */
        for (v = 0; v < rotn; v++) {
            float *vec = v == 0 ? q : k;
            float v0 = vec[i];
            float v1 = vec[i + 1];
            vec[i] = v0 * fcr - v1 * fci;
            vec[i + 1] = v0 * fci + v1 * fcr;
        }
    }
}

static void ppcllm_attention(ppcllm_model *m, size_t loff, int pos, int kv_dim, int head_size)
{
    const ppcllm_info *p = &m->cfg.dims;
    int kv_mul = p->n_heads / p->n_kv_heads;
    int h, t, i;
    for (h = 0; h < p->n_heads; h++) {
        const float *q = m->s.q + (size_t)h * head_size;
        float *att = m->s.att + (size_t)h * p->seq_len;
        float *xb = m->s.xb + (size_t)h * head_size;
        for (t = 0; t <= pos; t++) {
            const float *k = m->s.key_cache + loff + (size_t)t * kv_dim + (size_t)(h / kv_mul) * head_size;
            float score = 0.0f;
            for (i = 0; i < head_size; i++) {
                score += q[i] * k[i];
            }
            score /= sqrtf(head_size);
            att[t] = score;
        }
        ppcllm_softmax(att, pos + 1);
        memset(xb, 0, (size_t)head_size * sizeof(float));
        for (t = 0; t <= pos; t++) {
            const float *v = m->s.value_cache + loff + (size_t)t * kv_dim + (size_t)(h / kv_mul) * head_size;
            float a = att[t];
            for (i = 0; i < head_size; i++) {
                xb[i] += a * v[i];
            }
        }
    }
}

/* The input of the next matrix products (quantized once for all of them). */
static void ppcllm_set_input(ppcllm_model *m, const float *x, int n)
{
    m->s.input = x;
    if ((m->cfg.flags & PPCLLM_FLAG_FLOAT_ACTIVATIONS) != 0) {
        m->s.fx.groups = ppcllm_padded_groups(n);
        ppcllm_prepare_fvec(&m->s.fx, x, n);
    } else if (m->cfg.quant != PPCLLM_DTYPE_F32) {
        m->s.qx.groups = ppcllm_padded_groups(n);
        ppcllm_quantize_vec(&m->s.qx, x, n);
    }
}

typedef struct {
    const ppcllm_model *m;
    const ppcllm_weight *w;
    size_t first_row;      /* of the whole stack: layer * rows */
    float *out;
} ppcllm_matvec_job;

/* rows [r0, r1) of one matrix product: the part of the job for one thread */
static void ppcllm_matvec_part(void *ctx, int part, int parts)
{
    const ppcllm_matvec_job *job = (const ppcllm_matvec_job *)ctx;
    const ppcllm_weight *w = job->w;
    int r0 = (int)((long)w->rows * part / parts), r1 = (int)((long)w->rows * (part + 1) / parts);
    size_t row = job->first_row + (size_t)r0;
    if (r1 <= r0) {
        return;
    }
    if (ppcllm_kq_format_of(w->type) != NULL) {
        job->m->kernels->kq(job->out + r0, &job->m->s.fx, w->codes, w->rows, w->cols, r0, r1, (int)w->type);
    } else if (w->type == PPCLLM_DTYPE_F32) {
        job->m->kernels->matmul(job->out + r0, job->m->s.input, w->f + row * (size_t)w->cols, w->cols, r1 - r0);
    } else if ((job->m->cfg.flags & PPCLLM_FLAG_FLOAT_ACTIVATIONS) != 0) {
        size_t srow = row * (size_t)PPCLLM_SCALE_STRIDE(w->groups);
        job->m->kernels->blk(job->out + r0, &job->m->s.fx, w->codes + row * (size_t)w->groups * w->group_bytes,
                          w->scales + srow, w->mins != NULL ? w->mins + srow : NULL, w->groups, r1 - r0,
                          (int)w->type);
    } else if (w->type == PPCLLM_DTYPE_Q8_0) {
        job->m->kernels->q8_0(job->out + r0, &job->m->s.qx, w->codes + row * (size_t)w->groups * w->group_bytes,
                           w->scales + row * (size_t)PPCLLM_SCALE_STRIDE(w->groups), w->groups, r1 - r0);
    } else {
        job->m->kernels->q4_0(job->out + r0, &job->m->s.qx, w->codes + row * (size_t)w->groups * w->group_bytes,
                           w->scales + row * (size_t)PPCLLM_SCALE_STRIDE(w->groups), w->groups, r1 - r0);
    }
}

/* out = W[layer] @ input, rows split over the worker threads */
static void ppcllm_apply(ppcllm_model *m, float *out, const ppcllm_weight *w, size_t layer)
{
    ppcllm_matvec_job job;
    if (w->layer != NULL) { /* stored per layer */
        w = &w->layer[layer];
        layer = 0;
    }
    job.m = m;
    job.w = w;
    job.first_row = layer * (size_t)w->rows;
    job.out = out;
    ppcllm_pool_run(m->workers.pool, ppcllm_matvec_part, &job);
}

/* x = row `token` of the embedding table (dequantized: scale * code, as the reference does) */
static void ppcllm_embed(ppcllm_model *m, int token)
{
    const ppcllm_weight *w = &m->w.tok_embeddings;
    size_t row = (size_t)token;
    if (ppcllm_kq_format_of(w->type) != NULL) {
        ppcllm_kq_dequantize_row(m->s.x, w->codes, w->rows, w->cols, token, w->type);
    } else if (w->type == PPCLLM_DTYPE_F32) {
        memcpy(m->s.x, w->f + row * (size_t)w->cols, (size_t)w->cols * sizeof(float));
    } else {
        size_t srow = row * (size_t)PPCLLM_SCALE_STRIDE(w->groups);
        ppcllm_dequantize_row(m->s.x, w->codes + row * (size_t)w->groups * w->group_bytes, w->scales + srow,
                              w->mins != NULL ? w->mins + srow : NULL, w->cols, (int)w->type);
    }
}

/* each head of x[0 .. n) RMS-normed in place with weight (qwen3's Q/K norms) */
static void ppcllm_head_norms(float *x, const float *weight, int n, int head_size, float eps)
{
    int h;
    for (h = 0; h < n; h += head_size) {
        ppcllm_rmsnorm(x + h, x + h, weight, head_size, eps);
    }
}

/* x += b (the Q/K/V biases) */
static void ppcllm_add(float *x, const float *b, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        x[i] += b[i];
    }
}

static void ppcllm_ffn(ppcllm_model *m, size_t l)
{
    const ppcllm_info *p = &m->cfg.dims;
    size_t D = (size_t)p->dim;
    int i;
    ppcllm_rmsnorm(m->s.xb, m->s.x, m->w.rms_ffn + l * D, p->dim, m->cfg.norm_eps);
    ppcllm_set_input(m, m->s.xb, p->dim);
    ppcllm_apply(m, m->s.hb, &m->w.w1, l);
    ppcllm_apply(m, m->s.hb2, &m->w.w3, l);
    for (i = 0; i < p->hidden_dim; i++) {
        float val = m->s.hb[i];
        val *= (1.0f / (1.0f + expf(-val))); /* SiLU */
        val *= m->s.hb2[i];
        m->s.hb[i] = val;
    }
    ppcllm_set_input(m, m->s.hb, p->hidden_dim);
    ppcllm_apply(m, m->s.xb, &m->w.w2, l);
    for (i = 0; i < p->dim; i++) {
        m->s.x[i] += m->s.xb[i];
    }
}

float *ppcllm_forward(ppcllm_model *m, int token, int pos)
{
    const ppcllm_info *p = &m->cfg.dims;
    size_t D = (size_t)p->dim;
    int head_size = p->head_size, q_dim = p->n_heads * head_size, kv_dim = p->n_kv_heads * head_size;
    size_t l;
    int i;
    m->s.tokens[pos] = token;
    ppcllm_embed(m, token);
    for (l = 0; l < (size_t)p->n_layers; l++) {
        size_t loff = l * (size_t)p->seq_len * (size_t)kv_dim;
        float *k = m->s.key_cache + loff + (size_t)pos * kv_dim;
        float *v = m->s.value_cache + loff + (size_t)pos * kv_dim;
        ppcllm_rmsnorm(m->s.xb, m->s.x, m->w.rms_att + l * D, p->dim, m->cfg.norm_eps);
        ppcllm_set_input(m, m->s.xb, p->dim);
        ppcllm_apply(m, m->s.q, &m->w.wq, l);
        ppcllm_apply(m, k, &m->w.wk, l);
        ppcllm_apply(m, v, &m->w.wv, l);
        if (m->w.bq != NULL) {
            ppcllm_add(m->s.q, m->w.bq + l * (size_t)q_dim, q_dim);
            ppcllm_add(k, m->w.bk + l * (size_t)kv_dim, kv_dim);
            ppcllm_add(v, m->w.bv + l * (size_t)kv_dim, kv_dim);
        }
        if (m->w.q_norm != NULL) {
            ppcllm_head_norms(m->s.q, m->w.q_norm + l * (size_t)head_size, q_dim, head_size, m->cfg.norm_eps);
            ppcllm_head_norms(k, m->w.k_norm + l * (size_t)head_size, kv_dim, head_size, m->cfg.norm_eps);
        }
        ppcllm_rotate(m->s.q, k, q_dim, kv_dim, head_size, pos, m->cfg.rope_theta, m->w.rope_freqs);
        ppcllm_attention(m, loff, pos, kv_dim, head_size);
        ppcllm_set_input(m, m->s.xb, q_dim);
        ppcllm_apply(m, m->s.xb2, &m->w.wo, l);
        for (i = 0; i < p->dim; i++) {
            m->s.x[i] += m->s.xb2[i];
        }
        ppcllm_ffn(m, l);
    }
    ppcllm_rmsnorm(m->s.x, m->s.x, m->w.rms_final, p->dim, m->cfg.norm_eps);
    ppcllm_set_input(m, m->s.x, p->dim);
    ppcllm_apply(m, m->s.logits, &m->w.wcls, 0);
    return m->s.logits;
}
