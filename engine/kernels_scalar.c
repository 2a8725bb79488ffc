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
