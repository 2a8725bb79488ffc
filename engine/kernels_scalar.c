/* kernels_scalar.c: scalar reference kernels, compiled with -ffp-contract=off so that every
 * product and sum is rounded separately, as on every other target (fmaf is fused on purpose:
 * it is what the AltiVec kernels' vec_madd computes). */
#include "kernels.h"

#include <math.h>
#include <string.h>

float ppcllm_half_to_float(ppcllm_u16 h)
{
    /* the magnitude's bits moved into a float's field, then scaled by 2^112: exact for normal
     * and subnormal halves alike (both land in float's normal range) */
    ppcllm_u32 bits = (ppcllm_u32)(h & 0x7FFFu) << 13;
    float f;
    memcpy(&f, &bits, sizeof f);
    f *= 0x1p112f;
    memcpy(&bits, &f, sizeof f);
    bits |= (ppcllm_u32)(h & 0x8000u) << 16;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void ppcllm_matmul_scalar(float *xout, const float *x, const float *w, int n, int d)
{
    int i, j;
    for (i = 0; i < d; i++) {
        const float *row = w + (size_t)i * (size_t)n;
        float val = 0.0f;
        for (j = 0; j < n; j++) {
            val += row[j] * x[j];
        }
        xout[i] = val;
    }
}

/* The scale of the group at base (its part below n): its largest |x| / limit; in *inv the
 * scale's inverse (0 for an all-zero group). */
static float ppcllm_group_scale(const float *x, int base, int n, float limit, float *inv)
{
    float amax = 0.0f, scale;
    int k;
    for (k = 0; k < PPCLLM_GROUP && base + k < n; k++) {
        float v = fabsf(x[base + k]);
        if (v > amax) {
            amax = v;
        }
    }
    scale = amax / limit;
    *inv = scale != 0.0f ? 1.0f / scale : 0.0f;
    return scale;
}

/* x[i] * inv rounded (0 at i >= n, past the vector's end). |x * inv| <= limit for finite x; NaN
 * or infinite activations (a damaged model) give 0, never a float-to-int conversion out of
 * range. */
static long ppcllm_group_code(const float *x, int i, int n, float inv, float limit)
{
    float r = i < n ? roundf(x[i] * inv) : 0.0f;
    return r >= -limit && r <= limit ? (long)r : 0;
}

/* group g of x (its part below n) as int8 codes and their scale */
static void ppcllm_quantize_group(ppcllm_qvec *a, const float *x, int g, int n)
{
    float id;
    int k, base = g * PPCLLM_GROUP;
    a->s[g] = ppcllm_group_scale(x, base, n, 127.0f, &id);
    for (k = base; k < base + PPCLLM_GROUP; k++) {
        a->q[k] = (signed char)ppcllm_group_code(x, k, n, id, 127.0f);
    }
}

void ppcllm_quantize_vec(ppcllm_qvec *a, const float *x, int n)
{
    int g, l;
    for (g = 0; g < a->groups; g++) {
        ppcllm_quantize_group(a, x, g, n);
        for (l = 0; l < 4; l++) { /* the offset corrections of each lane of four */
            const signed char *q = a->q + g * PPCLLM_GROUP + 4 * l;
            ppcllm_i32 sum = q[0] + q[1] + q[2] + q[3] + q[16] + q[17] + q[18] + q[19];
            a->corr8[g * 4 + l] = -128 * sum;
            a->corr4[g * 4 + l] = -8 * sum;
        }
    }
}

/* code k of group g of a row, as a signed value */
static int ppcllm_q8_value(const unsigned char *group, int k)
{
    return (int)group[k] - 128;
}

static int ppcllm_q4_value(const unsigned char *group, int k)
{
    return (k < 16 ? (group[k] & 15) : (group[k - 16] >> 4)) - 8;
}

/* code k of a group as stored (unsigned): q8 one byte per value, q4 nibbles in GGUF's order */
static unsigned ppcllm_code(const unsigned char *group, int k, int q8)
{
    if (q8) {
        return group[k];
    }
    return k < 16 ? (unsigned)(group[k] & 15) : (unsigned)(group[k - 16] >> 4);
}

void ppcllm_dequantize_row(float *out, const unsigned char *codes, const ppcllm_u16 *scales,
                           const ppcllm_u16 *mins, int cols, int dtype)
{
    int i, q8 = dtype == (int)PPCLLM_DTYPE_Q8_0;
    int offset = q8 ? 128 : dtype == (int)PPCLLM_DTYPE_Q4_0 ? 8 : 0;
    size_t group_bytes = q8 ? PPCLLM_GROUP : PPCLLM_GROUP / 2;
    for (i = 0; i < cols; i++) {
        int g = i / PPCLLM_GROUP, k = i % PPCLLM_GROUP;
        int value = (int)ppcllm_code(codes + (size_t)g * group_bytes, k, q8) - offset;
        out[i] = ppcllm_half_to_float(scales[g]) * (float)value;
        if (mins != NULL) {
            out[i] += ppcllm_half_to_float(mins[g]);
        }
    }
}

void ppcllm_prepare_fvec(ppcllm_fvec *a, const float *x, int n)
{
    int g, k, l;
    for (g = 0; g < a->groups; g++) {
        int base = g * PPCLLM_GROUP;
        float id;
        a->s[g] = ppcllm_group_scale(x, base, n, 32767.0f, &id);
        for (k = 0; k < PPCLLM_GROUP; k++) {
            long q = ppcllm_group_code(x, base + k, n, id, 32767.0f);
            unsigned biased = (unsigned)(q + 32768); /* 1 .. 65535 */
            a->lo[base + k] = (unsigned char)(biased & 255u);
            a->hi[base + k] = (signed char)((int)(biased >> 8) - 128);
        }
        for (l = 0; l < 4; l++) {
            ppcllm_i32 sum = 0;
            for (k = 0; k < 8; k++) {
                int e = (k < 4 ? 4 * l + k : 16 + 4 * l + k - 4) + base;
                sum += 256 * a->hi[e] + a->lo[e];
            }
            a->qsum[g * 4 + l] = sum;
            a->corr8[g * 4 + l] = -128 * sum;
            a->corr4[g * 4 + l] = -8 * sum;
        }
        for (l = 0; l < 2; l++) {
            ppcllm_i32 sum = 0;
            for (k = base + 16 * l; k < base + 16 * l + 16; k++) {
                sum += 256 * a->hi[k] + a->lo[k];
            }
            a->qsum16[g * 2 + l] = sum;
        }
    }
}

void ppcllm_matvec_blk_scalar(float *out, const ppcllm_fvec *x, const unsigned char *codes,
                              const ppcllm_u16 *scales, const ppcllm_u16 *mins, int groups, int rows,
                              int dtype)
{
    int q8 = dtype == (int)PPCLLM_DTYPE_Q8_0, q41 = dtype == (int)PPCLLM_DTYPE_Q4_1;
    const ppcllm_i32 *corr = q8 ? x->corr8 : x->corr4;
    size_t group_bytes = q8 ? PPCLLM_GROUP : PPCLLM_GROUP / 2, stride = (size_t)PPCLLM_SCALE_STRIDE(groups);
    int r, g, l, k;
    for (r = 0; r < rows; r++) {
        const unsigned char *w = codes + (size_t)r * (size_t)groups * group_bytes;
        const ppcllm_u16 *ws = scales + (size_t)r * stride;
        const ppcllm_u16 *wm = q41 ? mins + (size_t)r * stride : NULL;
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (g = 0; g < groups; g++) {
            const unsigned char *group = w + (size_t)g * group_bytes;
            const signed char *hi = x->hi + g * PPCLLM_GROUP;
            const unsigned char *lo = x->lo + g * PPCLLM_GROUP;
            float ds = ppcllm_half_to_float(ws[g]) * x->s[g];
            float ms = q41 ? ppcllm_half_to_float(wm[g]) * x->s[g] : 0.0f;
            for (l = 0; l < 4; l++) {
                ppcllm_i32 isum = q41 ? 0 : corr[g * 4 + l];
                for (k = 0; k < 8; k++) {
                    int e = k < 4 ? 4 * l + k : 16 + 4 * l + k - 4;
                    isum += (ppcllm_i32)ppcllm_code(group, e, q8) * (256 * hi[e] + lo[e]);
                }
                acc[l] = fmaf((float)isum, ds, acc[l]);
                if (q41) {
                    acc[l] = fmaf((float)x->qsum[g * 4 + l], ms, acc[l]);
                }
            }
        }
        out[r] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

static void ppcllm_matvec_blocks(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                                 const ppcllm_u16 *scales, int groups, int rows, int group_bytes,
                                 int (*value)(const unsigned char *, int))
{
    int r, g, l, h, b;
    for (r = 0; r < rows; r++) {
        const unsigned char *w = codes + (size_t)r * (size_t)groups * (size_t)group_bytes;
        const ppcllm_u16 *ws = scales + (size_t)r * (size_t)PPCLLM_SCALE_STRIDE(groups);
        float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        for (g = 0; g < groups; g++) {
            const signed char *q = x->q + g * PPCLLM_GROUP;
            const unsigned char *group = w + (size_t)g * (size_t)group_bytes;
            float s = ppcllm_half_to_float(ws[g]) * x->s[g];
            for (l = 0; l < 4; l++) {
                ppcllm_i32 isum = 0;
                for (h = 0; h < 2; h++) {
                    for (b = 0; b < 4; b++) {
                        int k = 16 * h + 4 * l + b;
                        isum += value(group, k) * q[k];
                    }
                }
                acc[l] = fmaf((float)isum, s, acc[l]);
            }
        }
        out[r] = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
}

void ppcllm_matvec_q8_0_scalar(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                               const ppcllm_u16 *scales, int groups, int rows)
{
    ppcllm_matvec_blocks(out, x, codes, scales, groups, rows, PPCLLM_GROUP, ppcllm_q8_value);
}

void ppcllm_matvec_q4_0_scalar(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                               const ppcllm_u16 *scales, int groups, int rows)
{
    ppcllm_matvec_blocks(out, x, codes, scales, groups, rows, PPCLLM_GROUP / 2, ppcllm_q4_value);
}

/* ------------------------------------------------------------------------------------------ */
/* GGUF blocks kept bit for bit (toolkit/quant.py: layout and numeric definition)             */

static const ppcllm_kq_format ppcllm_kq_formats[] = {
    {PPCLLM_DTYPE_Q5_0, 32, 32, 16, 0, 3, {16, 4, 2, 0, 0}},
    {PPCLLM_DTYPE_Q5_1, 32, 32, 0, 1, 4, {16, 4, 2, 2, 0}},
    {PPCLLM_DTYPE_Q2_K, 256, 16, 0, 1, 4, {64, 16, 2, 2, 0}},
    {PPCLLM_DTYPE_Q3_K, 256, 16, 4, 0, 4, {64, 32, 12, 2, 0}},
    {PPCLLM_DTYPE_Q4_K, 256, 32, 0, 1, 4, {128, 12, 2, 2, 0}},
    {PPCLLM_DTYPE_Q5_K, 256, 32, 0, 1, 5, {128, 32, 12, 2, 2}},
    {PPCLLM_DTYPE_Q6_K, 256, 16, 32, 0, 4, {128, 64, 16, 2, 0}},
    {PPCLLM_DTYPE_IQ4_NL, 32, 32, 128, 0, 2, {16, 2, 0, 0, 0}},
    {PPCLLM_DTYPE_IQ4_XS, 256, 32, 128, 0, 4, {128, 4, 2, 2, 0}},
};

/* IQ4_NL's code book, + 128 (the unsigned u; off 128) */
static const unsigned char ppcllm_iq4nl_u[16] = {1, 24, 45, 63, 79, 93, 106, 118,
                                                 129, 141, 153, 166, 181, 197, 217, 241};

const ppcllm_kq_format *ppcllm_kq_format_of(ppcllm_u32 dtype)
{
    size_t i;
    for (i = 0; i < sizeof ppcllm_kq_formats / sizeof ppcllm_kq_formats[0]; i++) {
        if (ppcllm_kq_formats[i].dtype == dtype) {
            return &ppcllm_kq_formats[i];
        }
    }
    return NULL;
}

static ppcllm_u64 ppcllm_pad16(ppcllm_u64 n)
{
    return (n + 15u) / 16u * 16u;
}

/* bytes of one row group of `rows` rows of nb blocks */
static ppcllm_u64 ppcllm_kq_group_bytes(const ppcllm_kq_format *f, ppcllm_u64 rows, ppcllm_u64 nb)
{
    ppcllm_u64 n = 0;
    int k;
    for (k = 0; k < f->nfields; k++) {
        n += ppcllm_pad16(rows * nb * (ppcllm_u64)f->field_bytes[k]);
    }
    return n;
}

ppcllm_u64 ppcllm_kq_nbytes(const ppcllm_kq_format *f, ppcllm_u64 rows, ppcllm_u64 cols)
{
    ppcllm_u64 nb = cols / (ppcllm_u64)f->block, last = rows % PPCLLM_KQ_ROW_GROUP;
    if (cols == 0 || cols % (ppcllm_u64)f->block != 0) {
        return 0;
    }
    return rows / PPCLLM_KQ_ROW_GROUP * ppcllm_kq_group_bytes(f, PPCLLM_KQ_ROW_GROUP, nb) +
           (last != 0 ? ppcllm_kq_group_bytes(f, last, nb) : 0);
}

void ppcllm_kq_row_at(ppcllm_kq_row *row, const ppcllm_kq_format *f, const unsigned char *data, int rows,
                      int cols, int r)
{
    size_t nb = (size_t)(cols / f->block), g = (size_t)(r / PPCLLM_KQ_ROW_GROUP);
    size_t i = (size_t)(r % PPCLLM_KQ_ROW_GROUP), left = (size_t)rows - g * PPCLLM_KQ_ROW_GROUP;
    size_t in_group = left < PPCLLM_KQ_ROW_GROUP ? left : PPCLLM_KQ_ROW_GROUP;
    const unsigned char *p = data + g * (size_t)ppcllm_kq_group_bytes(f, PPCLLM_KQ_ROW_GROUP, nb);
    int k;
    for (k = 0; k < PPCLLM_KQ_FIELDS; k++) {
        size_t fb = (size_t)f->field_bytes[k];
        row->f[k] = p + i * nb * fb;
        p += (size_t)ppcllm_pad16((ppcllm_u64)(in_group * nb * fb));
    }
}

/* an fp16 / u16 field, stored in the host's byte order (load.c checked the file's) */
static ppcllm_u16 ppcllm_u16_at(const unsigned char *p)
{
    ppcllm_u16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static float ppcllm_half_at(const unsigned char *p)
{
    return ppcllm_half_to_float(ppcllm_u16_at(p));
}

/* Q5_0 / Q5_1 / IQ4_NL: 32 values, nibbles in GGUF's order, Q5's fifth bit j = bit j % 8 of qh[j / 8] */
static void ppcllm_kq_decode_32(ppcllm_kq_block *o, const ppcllm_kq_format *f, const unsigned char *const *p)
{
    int j;
    for (j = 0; j < 32; j++) {
        unsigned nib = j < 16 ? (unsigned)(p[0][j] & 15) : (unsigned)(p[0][j - 16] >> 4);
        if (f->dtype == PPCLLM_DTYPE_IQ4_NL) {
            o->u[j] = ppcllm_iq4nl_u[nib];
        } else {
            o->u[j] = (unsigned char)(nib | (((unsigned)p[1][j / 8] >> (j % 8)) & 1u) << 4);
        }
    }
    o->a[0] = ppcllm_half_at(p[f->dtype == PPCLLM_DTYPE_IQ4_NL ? 1 : 2]);
    o->b[0] = f->dtype == PPCLLM_DTYPE_Q5_1 ? ppcllm_half_at(p[3]) : 0.0f;
}

/* Q2_K / Q3_K: 2-bit codes, value e = 128n + 32j + l from bits 2j.. of qs[32n + l]; Q3_K's third
 * bit is bit 4n + j of hmask[l] */
static void ppcllm_kq_decode_2bit(ppcllm_kq_block *o, const ppcllm_kq_format *f, const unsigned char *const *p)
{
    int e, sb, q3 = f->dtype == PPCLLM_DTYPE_Q3_K;
    float d = ppcllm_half_at(p[q3 ? 3 : 2]);
    for (e = 0; e < 256; e++) {
        int n = e / 128, j = e % 128 / 32, l = e % 32;
        unsigned u = ((unsigned)p[0][32 * n + l] >> (2 * j)) & 3u;
        if (q3) {
            u |= (((unsigned)p[1][l] >> (4 * n + j)) & 1u) << 2;
        }
        o->u[e] = (unsigned char)u;
    }
    for (sb = 0; sb < 16; sb++) {
        if (q3) {
            const unsigned char *s = p[2];
            int low = sb < 8 ? (s[sb] & 15) : (s[sb - 8] >> 4);
            int high = (s[8 + sb % 4] >> (2 * (sb / 4))) & 3;
            o->a[sb] = d * (float)((low | high << 4) - 32);
            o->b[sb] = 0.0f;
        } else {
            o->a[sb] = d * (float)(p[1][sb] & 15);
            o->b[sb] = -(ppcllm_half_at(p[3]) * (float)(p[1][sb] >> 4));
        }
    }
}

/* Q4_K / Q5_K's factors: 8 scales and mins of 6 bits in 12 bytes */
static void ppcllm_kq_factors_4bit(ppcllm_kq_block *o, const ppcllm_kq_format *f, const unsigned char *const *p)
{
    int j, q5 = f->dtype == PPCLLM_DTYPE_Q5_K;
    const unsigned char *s = p[q5 ? 2 : 1];
    float d = ppcllm_half_at(p[q5 ? 3 : 2]), dmin = ppcllm_half_at(p[q5 ? 4 : 3]);
    for (j = 0; j < 8; j++) {
        int sc = j < 4 ? (s[j] & 63) : ((s[j + 4] & 15) | (s[j - 4] >> 6) << 4);
        int mn = j < 4 ? (s[j + 4] & 63) : ((s[j + 4] >> 4) | (s[j] >> 6) << 4);
        o->a[j] = d * (float)sc;
        o->b[j] = -(dmin * (float)mn);
    }
}

/* Q6_K's factors: d times 16 signed scales */
static void ppcllm_kq_factors_q6(ppcllm_kq_block *o, const unsigned char *const *p)
{
    float d = ppcllm_half_at(p[3]);
    int sb;
    for (sb = 0; sb < 16; sb++) {
        o->a[sb] = d * (float)(signed char)p[2][sb];
        o->b[sb] = 0.0f;
    }
}

/* Q4_K / Q5_K: value e = 64j + 32h + l is nibble h of qs[32j + l]; Q5_K's fifth bit is bit e / 32
 * of qh[l] */
static void ppcllm_kq_decode_4bit(ppcllm_kq_block *o, const ppcllm_kq_format *f, const unsigned char *const *p)
{
    int e, q5 = f->dtype == PPCLLM_DTYPE_Q5_K;
    for (e = 0; e < 256; e++) {
        unsigned u = ((unsigned)p[0][32 * (e / 64) + e % 32] >> (4 * (e / 32 % 2))) & 15u;
        if (q5) {
            u |= (((unsigned)p[1][e % 32] >> (e / 32)) & 1u) << 4;
        }
        o->u[e] = (unsigned char)u;
    }
    ppcllm_kq_factors_4bit(o, f, p);
}

/* Q6_K: value e = 128n + 32k + l: nibble k / 2 of ql[64n + 32(k % 2) + l], high bits 2k.. of
 * qh[32n + l]; IQ4_XS: code book nibbles, 8 scales of 6 bits (scales_l nibbles, scales_h pairs) */
static void ppcllm_kq_decode_6bit(ppcllm_kq_block *o, const ppcllm_kq_format *f, const unsigned char *const *p)
{
    int e, sb;
    if (f->dtype == PPCLLM_DTYPE_Q6_K) {
        for (e = 0; e < 256; e++) {
            int n = e / 128, k = e % 128 / 32, l = e % 32;
            unsigned lo = ((unsigned)p[0][64 * n + 32 * (k % 2) + l] >> (4 * (k / 2))) & 15u;
            unsigned hi = ((unsigned)p[1][32 * n + l] >> (2 * k)) & 3u;
            o->u[e] = (unsigned char)(lo | hi << 4);
        }
        ppcllm_kq_factors_q6(o, p);
        return;
    }
    {
        float d = ppcllm_half_at(p[2]);
        unsigned high = ppcllm_u16_at(p[3]);
        for (e = 0; e < 256; e++) {
            int ib = e / 32, j = e % 32;
            unsigned c = p[0][16 * ib + j % 16];
            o->u[e] = ppcllm_iq4nl_u[j < 16 ? (c & 15u) : (c >> 4)];
        }
        for (sb = 0; sb < 8; sb++) {
            int ls = ((p[1][sb / 2] >> (4 * (sb % 2))) & 15) | (int)((high >> (2 * sb)) & 3u) << 4;
            o->a[sb] = d * (float)(ls - 32);
            o->b[sb] = 0.0f;
        }
    }
}

/* each field's bytes of block blk */
static void ppcllm_kq_fields(const unsigned char **p, const ppcllm_kq_format *f, const ppcllm_kq_row *row, int blk)
{
    int k;
    for (k = 0; k < PPCLLM_KQ_FIELDS; k++) {
        p[k] = row->f[k] + (size_t)blk * (size_t)f->field_bytes[k];
    }
}

int ppcllm_kq_decode_factors(ppcllm_kq_block *out, const ppcllm_kq_format *f, const ppcllm_kq_row *row, int blk)
{
    const unsigned char *p[PPCLLM_KQ_FIELDS];
    ppcllm_kq_fields(p, f, row, blk);
    if (f->dtype == PPCLLM_DTYPE_Q4_K || f->dtype == PPCLLM_DTYPE_Q5_K) {
        ppcllm_kq_factors_4bit(out, f, p);
    } else if (f->dtype == PPCLLM_DTYPE_Q6_K) {
        ppcllm_kq_factors_q6(out, p);
    } else {
        return 0;
    }
    return 1;
}

void ppcllm_kq_decode(ppcllm_kq_block *out, const ppcllm_kq_format *f, const ppcllm_kq_row *row, int blk)
{
    const unsigned char *p[PPCLLM_KQ_FIELDS];
    ppcllm_kq_fields(p, f, row, blk);
    if (f->block == 32) {
        ppcllm_kq_decode_32(out, f, p);
    } else if (f->dtype == PPCLLM_DTYPE_Q2_K || f->dtype == PPCLLM_DTYPE_Q3_K) {
        ppcllm_kq_decode_2bit(out, f, p);
    } else if (f->dtype == PPCLLM_DTYPE_Q4_K || f->dtype == PPCLLM_DTYPE_Q5_K) {
        ppcllm_kq_decode_4bit(out, f, p);
    } else {
        ppcllm_kq_decode_6bit(out, f, p);
    }
}

void ppcllm_kq_dequantize_row(float *out, const unsigned char *data, int rows, int cols, int r, ppcllm_u32 dtype)
{
    const ppcllm_kq_format *f = ppcllm_kq_format_of(dtype);
    ppcllm_kq_block blk;
    ppcllm_kq_row row;
    int b, e;
    ppcllm_kq_row_at(&row, f, data, rows, cols, r);
    for (b = 0; b < cols / f->block; b++) {
        ppcllm_kq_decode(&blk, f, &row, b);
        for (e = 0; e < f->block; e++) {
            float v = blk.a[e / f->sub] * (float)((int)blk.u[e] - f->off);
            out[b * f->block + e] = f->has_min ? v + blk.b[e / f->sub] : v;
        }
    }
}

void ppcllm_matvec_kq_scalar(float *out, const ppcllm_fvec *x, const unsigned char *data, int rows, int cols,
                             int r0, int r1, int dtype)
{
    const ppcllm_kq_format *f = ppcllm_kq_format_of((ppcllm_u32)dtype);
    ppcllm_kq_block blk;
    ppcllm_kq_row row;
    int r, b, sb, k;
    for (r = r0; r < r1; r++) {
        float acc = 0.0f;
        ppcllm_kq_row_at(&row, f, data, rows, cols, r);
        for (b = 0; b < cols / f->block; b++) {
            ppcllm_kq_decode(&blk, f, &row, b);
            for (sb = 0; sb < f->block / f->sub; sb++) {
                int e0 = b * f->block + sb * f->sub;
                const unsigned char *u = blk.u + sb * f->sub;
                ppcllm_i32 isum = 0;
                for (k = 0; k < f->sub; k++) {
                    isum += (ppcllm_i32)u[k] * (256 * x->hi[e0 + k] + x->lo[e0 + k]);
                }
                acc = ppcllm_kq_step(acc, isum, ppcllm_kq_qsum(x, e0, f->sub), f, blk.a[sb], blk.b[sb],
                                     x->s[e0 / PPCLLM_GROUP]);
            }
        }
        out[r - r0] = acc;
    }
}
