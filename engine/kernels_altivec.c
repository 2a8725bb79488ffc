/* kernels_altivec.c: AltiVec / VMX kernels (PowerPC G4 7400/7450, G5, Cell PPE, Xenon).
 * Compiled with the target's SIMD flags (-maltivec); only this file uses vector instructions.
 *
 * The matmul keeps llama2.c's summation order: each lane of a vector accumulates one output row
 * over j = 0, 1, 2, ... So four rows are loaded, transposed 4x4 in registers (vec_mergeh/l) and
 * multiplied by x[j] splatted. vec_madd(a, b, -0.0) rounds the product alone (a fused add of -0
 * is exact), and vec_add rounds the sum: the same two roundings as the scalar loop, so the result
 * is bit-identical to ppcllm_matmul_scalar (which ppcllm-kerneltest checks). */
#include "kernels.h"

#if PPCLLM_SIMD_ALTIVEC
#include <altivec.h>

typedef union {
    vector float v;
    float f[4];
} ppcllm_vf;

static int ppcllm_aligned16(const void *p)
{
    return ((ppcllm_uptr)p & 15u) == 0;
}

/* Lane k of v in every lane. vec_perm with a constant mask becomes one vspltw; GCC 12 expands
 * vec_splat of a register through memory on 32-bit PowerPC (a store and a reload per lane). */
#define PPCLLM_SPLAT0(v) vec_perm((v), (v), ppcllm_splat_mask[0])
#define PPCLLM_SPLAT1(v) vec_perm((v), (v), ppcllm_splat_mask[1])
#define PPCLLM_SPLAT2(v) vec_perm((v), (v), ppcllm_splat_mask[2])
#define PPCLLM_SPLAT3(v) vec_perm((v), (v), ppcllm_splat_mask[3])
static const vector unsigned char ppcllm_splat_mask[4] = {
    {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3},
    {4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7},
    {8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11, 8, 9, 10, 11},
    {12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15, 12, 13, 14, 15},
};

static vector float ppcllm_negzero(void)
{
    /* 0xFFFFFFFF << 31 = 0x80000000 = -0.0f in every lane */
    vector unsigned int ones = (vector unsigned int)vec_splat_s32(-1);
    return (vector float)vec_sl(ones, ones);
}

/* IEEE denormals (Java mode, VSCR[NJ] = 0), as the scalar FPU computes them. Linux starts
 * threads with NJ = 1 (flush to zero), which would make tiny products differ from scalar. */
static void ppcllm_vscr_ieee(void)
{
    vec_mtvscr((vector unsigned int)vec_splat_u32(0));
}

/* Start streaming `bytes` from p into the cache (data stream touch, stream 0): a hint for the
 * next rows while the current ones are computed. It changes no result; cores without data
 * streams (Cell PPE, Xenon) and QEMU treat it as a no-op. */
static void ppcllm_prefetch(const void *p, size_t bytes)
{
    size_t blocks = (bytes + 511) / 512; /* blocks of 32 vectors (block size field 0) */
    int control = (int)((blocks > 255 ? 255 : blocks) << 16) | 512;
    vec_dst((const unsigned char *)p, control, 0);
}

/* acc (lane k = row k of four) += the four rows' columns j..j+3 times x[j..j+3], in order j */
#define PPCLLM_ROWS4_STEP(acc, a0, a1, a2, a3)                                                 \
    do {                                                                                       \
        vector float t0_ = vec_mergeh((a0), (a2)), t1_ = vec_mergeh((a1), (a3));               \
        vector float t2_ = vec_mergel((a0), (a2)), t3_ = vec_mergel((a1), (a3));               \
        (acc) = vec_add((acc), vec_madd(vec_mergeh(t0_, t1_), x0, nz));                        \
        (acc) = vec_add((acc), vec_madd(vec_mergel(t0_, t1_), x1, nz));                        \
        (acc) = vec_add((acc), vec_madd(vec_mergeh(t2_, t3_), x2, nz));                        \
        (acc) = vec_add((acc), vec_madd(vec_mergel(t2_, t3_), x3, nz));                        \
    } while (0)

/* Rows r0 .. r0 + 4 * blocks - 1 (blocks = 1 or 2): two independent accumulator chains when
 * blocks = 2, to cover the vector unit's latency. */
static void ppcllm_rows(float *out, const float *x, const float *r0, int n, int blocks, vector float nz)
{
    const float *r4 = r0 + (size_t)(blocks - 1) * 4 * (size_t)n; /* = r0 when blocks = 1 */
    vector float acc0 = (vector float)vec_splat_u32(0), acc1 = acc0;
    ppcllm_vf res;
    int j, k;
    for (j = 0; j + 4 <= n; j += 4) {
        vector float xv = vec_ld(0, x + j);
        vector float x0 = PPCLLM_SPLAT0(xv), x1 = PPCLLM_SPLAT1(xv), x2 = PPCLLM_SPLAT2(xv), x3 = PPCLLM_SPLAT3(xv);
        PPCLLM_ROWS4_STEP(acc0, vec_ld(0, r0 + j), vec_ld(0, r0 + n + j), vec_ld(0, r0 + 2 * n + j),
                          vec_ld(0, r0 + 3 * n + j));
        if (blocks == 2) {
            PPCLLM_ROWS4_STEP(acc1, vec_ld(0, r4 + j), vec_ld(0, r4 + n + j), vec_ld(0, r4 + 2 * n + j),
                              vec_ld(0, r4 + 3 * n + j));
        }
    }
    res.v = acc0;
    for (k = 0; k < 4; k++) {
        out[k] = res.f[k];
    }
    if (blocks == 2) {
        res.v = acc1;
        for (k = 0; k < 4; k++) {
            out[4 + k] = res.f[k];
        }
    }
}

void ppcllm_matmul_altivec(float *xout, const float *x, const float *w, int n, int d)
{
    vector float nz;
    size_t block = 8 * (size_t)n * sizeof(float);
    int i;
    /* vec_ld ignores the low four address bits: rows must start 16-byte aligned. */
    if ((n & 3) != 0 || !ppcllm_aligned16(x) || !ppcllm_aligned16(w)) {
        ppcllm_matmul_scalar(xout, x, w, n, d);
        return;
    }
    ppcllm_vscr_ieee();
    nz = ppcllm_negzero();
    for (i = 0; i + 4 <= d; i += 8) {
        int blocks = i + 8 <= d ? 2 : 1;
        if (i + 16 <= d) {
            ppcllm_prefetch(w + (size_t)(i + 8) * (size_t)n, block);
        }
        ppcllm_rows(xout + i, x, w + (size_t)i * (size_t)n, n, blocks, nz);
        if (blocks == 1) {
            i -= 4; /* four rows done, not eight */
        }
    }
    vec_dss(0);
    if (i < d) {
        ppcllm_matmul_scalar(xout + i, x, w + (size_t)i * (size_t)n, n, d - i);
    }
}
/* out[r] = (acc[0] + acc[1]) + (acc[2] + acc[3]), as the scalar reference sums its lanes */
static float ppcllm_lanes_sum(vector float acc)
{
    ppcllm_vf out;
    vector float t = vec_add(acc, vec_sld(acc, acc, 4)); /* a0+a1, a1+a2, a2+a3, a3+a0 */
    out.v = vec_add(t, vec_sld(t, t, 8));                 /* lane 0: (a0+a1) + (a2+a3) */
    return out.f[0];
}

/* One group k (of four) for two rows: isum (lane l) = corr[l] + the row's codes times the
 * activation's codes over lane l, exact in int32; then acc = fmaf(float(isum), scale, acc) per
 * lane, scale being lane k of the rows' w_scale * x_scale. lo0/hi0 and lo1/hi1 are the codes of
 * values 0..15 and 16..31, corr the activation's correction for the codes' offset (128 or 8).
 * The activation's loads are shared by the two rows. */
#define PPCLLM_PAIR_STEP(k, SPLAT, lo0, hi0, lo1, hi1)                                         \
    do {                                                                                       \
        vector signed char xa_ = vec_ld(32 * (k), xq), xb_ = vec_ld(32 * (k) + 16, xq);        \
        vector signed int c_ = vec_ld(16 * (k), corr);                                         \
        vector signed int i0_ = vec_msum(xb_, (hi0), vec_msum(xa_, (lo0), c_));                \
        vector signed int i1_ = vec_msum(xb_, (hi1), vec_msum(xa_, (lo1), c_));                \
        acc0 = vec_madd(vec_vcfsx(i0_, 0), SPLAT(s0), acc0);                                     \
        acc1 = vec_madd(vec_vcfsx(i1_, 0), SPLAT(s1), acc1);                                     \
    } while (0)

typedef enum { PPCLLM_Q8, PPCLLM_Q4 } ppcllm_qkind;

static const vector float ppcllm_two112 = {0x1p112f, 0x1p112f, 0x1p112f, 0x1p112f};

/* Four fp16 values (in the low halves of 32-bit lanes) widened exactly, as ppcllm_half_to_float */
static vector float ppcllm_widen4(vector unsigned int h, vector float nz)
{
    vector unsigned int sign = vec_sl(vec_sr(h, vec_splat_u32(15)), vec_splat_u32(-1)); /* << 31 */
    vector unsigned int mag = vec_sr(vec_sl(h, vec_splat_u32(-15)), vec_splat_u32(4));   /* << 17 >> 4 */
    vector float f = vec_madd((vector float)mag, ppcllm_two112, nz);
    return (vector float)vec_or((vector unsigned int)f, sign);
}

/* The four code groups at w0 / w1 (two rows) from activation group g, scales s0 / s1 */
#define PPCLLM_QUAD(g, w0, w1)                                                                 \
    do {                                                                                       \
        const signed char *xq = x->q + (g) * PPCLLM_GROUP;                                     \
        const ppcllm_i32 *corr = (kind == PPCLLM_Q8 ? x->corr8 : x->corr4) + (g) * 4;         \
        if (kind == PPCLLM_Q8) {                                                               \
            PPCLLM_PAIR_STEP(0, PPCLLM_SPLAT0, vec_ld(0, w0), vec_ld(16, w0), vec_ld(0, w1), vec_ld(16, w1)); \
            PPCLLM_PAIR_STEP(1, PPCLLM_SPLAT1, vec_ld(32, w0), vec_ld(48, w0), vec_ld(32, w1), vec_ld(48, w1)); \
            PPCLLM_PAIR_STEP(2, PPCLLM_SPLAT2, vec_ld(64, w0), vec_ld(80, w0), vec_ld(64, w1), vec_ld(80, w1)); \
            PPCLLM_PAIR_STEP(3, PPCLLM_SPLAT3, vec_ld(96, w0), vec_ld(112, w0), vec_ld(96, w1), vec_ld(112, w1)); \
        } else { /* byte j of a group: value j in the low nibble, value j + 16 in the high */ \
            vector unsigned char a0 = vec_ld(0, w0), a1 = vec_ld(16, w0), a2 = vec_ld(32, w0), a3 = vec_ld(48, w0); \
            vector unsigned char b0 = vec_ld(0, w1), b1 = vec_ld(16, w1), b2 = vec_ld(32, w1), b3 = vec_ld(48, w1); \
            PPCLLM_PAIR_STEP(0, PPCLLM_SPLAT0, vec_and(a0, low4), vec_sr(a0, four), vec_and(b0, low4), vec_sr(b0, four)); \
            PPCLLM_PAIR_STEP(1, PPCLLM_SPLAT1, vec_and(a1, low4), vec_sr(a1, four), vec_and(b1, low4), vec_sr(b1, four)); \
            PPCLLM_PAIR_STEP(2, PPCLLM_SPLAT2, vec_and(a2, low4), vec_sr(a2, four), vec_and(b2, low4), vec_sr(b2, four)); \
            PPCLLM_PAIR_STEP(3, PPCLLM_SPLAT3, vec_and(a3, low4), vec_sr(a3, four), vec_and(b3, low4), vec_sr(b3, four)); \
        }                                                                                      \
    } while (0)

/* Rows r, r+1 (one = 0) or row r alone (one = 1: the second row repeats the first). */
static void ppcllm_qrows2(float *out, const ppcllm_qvec *x, const unsigned char *w0, const unsigned char *w1,
                          const ppcllm_u16 *ws0, const ppcllm_u16 *ws1, int groups, ppcllm_qkind kind, int one)
{
    vector float nz = ppcllm_negzero();
    vector float acc0 = (vector float)vec_splat_u32(0), acc1 = acc0;
    vector unsigned char low4 = vec_splat_u8(15), four = vec_splat_u8(4);
    vector unsigned short zero = vec_splat_u16(0);
    size_t step = kind == PPCLLM_Q8 ? 4 * PPCLLM_GROUP : 2 * PPCLLM_GROUP;
    int g;
    for (g = 0; g < groups; g += 8, w0 += 2 * step, w1 += 2 * step) {
        /* eight fp16 scales per row; each product w_scale * x_scale rounded once, as in scalar */
        vector unsigned short h0 = vec_ld(0, ws0 + g), h1 = vec_ld(0, ws1 + g);
        vector float s0 = vec_madd(ppcllm_widen4((vector unsigned int)vec_mergeh(zero, h0), nz),
                                   vec_ld(0, x->s + g), nz);
        vector float s1 = vec_madd(ppcllm_widen4((vector unsigned int)vec_mergeh(zero, h1), nz),
                                   vec_ld(0, x->s + g), nz);
        PPCLLM_QUAD(g, w0, w1);
        if (g + 4 < groups) {
            const unsigned char *v0 = w0 + step, *v1 = w1 + step;
            s0 = vec_madd(ppcllm_widen4((vector unsigned int)vec_mergel(zero, h0), nz), vec_ld(0, x->s + g + 4), nz);
            s1 = vec_madd(ppcllm_widen4((vector unsigned int)vec_mergel(zero, h1), nz), vec_ld(0, x->s + g + 4), nz);
            PPCLLM_QUAD(g + 4, v0, v1);
        }
    }
    out[0] = ppcllm_lanes_sum(acc0);
    if (!one) {
        out[1] = ppcllm_lanes_sum(acc1);
    }
}

static void ppcllm_matvec_q(float *out, const ppcllm_qvec *x, const unsigned char *codes, const ppcllm_u16 *scales,
                            int groups, int rows, ppcllm_qkind kind)
{
    size_t row_bytes = (size_t)groups * (kind == PPCLLM_Q8 ? PPCLLM_GROUP : PPCLLM_GROUP / 2);
    size_t stride = (size_t)PPCLLM_SCALE_STRIDE(groups);
    int r;
    ppcllm_vscr_ieee();
    for (r = 0; r < rows; r += 2) {
        const unsigned char *w0 = codes + (size_t)r * row_bytes;
        const ppcllm_u16 *ws0 = scales + (size_t)r * stride;
        int one = r + 1 == rows;
        if (r + 3 < rows) {
            ppcllm_prefetch(w0 + 2 * row_bytes, 2 * row_bytes);
        }
        ppcllm_qrows2(out + r, x, w0, one ? w0 : w0 + row_bytes, ws0, one ? ws0 : ws0 + stride, groups, kind, one);
    }
    vec_dss(0);
}

void ppcllm_matvec_q8_0_altivec(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                                const ppcllm_u16 *scales, int groups, int rows)
{
    ppcllm_matvec_q(out, x, codes, scales, groups, rows, PPCLLM_Q8);
}

void ppcllm_matvec_q4_0_altivec(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                                const ppcllm_u16 *scales, int groups, int rows)
{
    ppcllm_matvec_q(out, x, codes, scales, groups, rows, PPCLLM_Q4);
}

/* ---- GGUF blocks with 16-bit activations: the lane-wise definition of ppcllm_matvec_blk_scalar
 * (kernels.h). Per group: the codes times the activation's high bytes (vmsummbm, signed x
 * unsigned) and low bytes (vmsumubm), combined exactly as 256 * high + low in int32. */

/* the fp16 values 4 * (g / 4 % 2) .. + 3 of the eight in the 16-byte scale vector holding g */
static vector float ppcllm_quad_halves(const ppcllm_u16 *row, int g, vector float nz)
{
    vector unsigned short zero = vec_splat_u16(0);
    vector unsigned short h = vec_ld(0, row + (g & ~7));
    vector unsigned short four = (g & 4) != 0 ? vec_mergel(zero, h) : vec_mergeh(zero, h);
    return ppcllm_widen4((vector unsigned int)four, nz);
}

static float ppcllm_blk_row(const ppcllm_fvec *x, const unsigned char *w, const ppcllm_u16 *ws,
                            const ppcllm_u16 *wm, int groups, int q8, const ppcllm_i32 *corr, vector float nz)
{
    vector float acc = (vector float)vec_splat_u32(0);
    vector unsigned char low4 = vec_splat_u8(15), four = vec_splat_u8(4);
    vector unsigned int eight = vec_splat_u32(8), zero_u = vec_splat_u32(0);
    size_t group_bytes = q8 ? PPCLLM_GROUP : PPCLLM_GROUP / 2;
    int g, k;
    for (g = 0; g < groups; g += 4) {
        vector float s = vec_ld(0, x->s + g);
        vector float ds = vec_madd(ppcllm_quad_halves(ws, g, nz), s, nz);
        vector float ms = wm != NULL ? vec_madd(ppcllm_quad_halves(wm, g, nz), s, nz) : nz;
        for (k = 0; k < 4; k++) {
            int at = (g + k) * PPCLLM_GROUP;
            const unsigned char *group = w + (size_t)(g + k) * group_bytes;
            vector unsigned char clo, chi;
            vector signed int high, isum;
            vector unsigned int low;
            if (q8) {
                clo = vec_ld(0, group);
                chi = vec_ld(16, group);
            } else {
                vector unsigned char a = vec_ld(0, group);
                clo = vec_and(a, low4);
                chi = vec_sr(a, four);
            }
            high = vec_msum(vec_ld(16, x->hi + at), chi, vec_msum(vec_ld(0, x->hi + at), clo, (vector signed int)zero_u));
            /* the low sums start from the codes' offset correction (modulo 2^32, exact as int32) */
            low = vec_msum(vec_ld(16, x->lo + at), chi, vec_msum(vec_ld(0, x->lo + at), clo,
                           wm != NULL ? zero_u : (vector unsigned int)vec_ld(0, corr + 4 * (g + k))));
            isum = vec_add((vector signed int)vec_sl((vector unsigned int)high, eight), (vector signed int)low);
            acc = vec_madd(vec_vcfsx(isum, 0), vec_perm(ds, ds, ppcllm_splat_mask[k]), acc);
            if (wm != NULL) {
                acc = vec_madd(vec_vcfsx(vec_ld(0, x->qsum + 4 * (g + k)), 0), vec_perm(ms, ms, ppcllm_splat_mask[k]), acc);
            }
        }
    }
    return ppcllm_lanes_sum(acc);
}

void ppcllm_matvec_blk_altivec(float *out, const ppcllm_fvec *x, const unsigned char *codes,
                               const ppcllm_u16 *scales, const ppcllm_u16 *mins, int groups, int rows,
                               int dtype)
{
    int q8 = dtype == (int)PPCLLM_DTYPE_Q8_0, q41 = dtype == (int)PPCLLM_DTYPE_Q4_1;
    size_t row_bytes = (size_t)groups * (q8 ? PPCLLM_GROUP : PPCLLM_GROUP / 2);
    size_t stride = (size_t)PPCLLM_SCALE_STRIDE(groups);
    vector float nz;
    int r;
    /* vec_ld ignores the low four address bits: everything must be 16-byte aligned */
    if ((groups & 3) != 0 || !ppcllm_aligned16(codes) || !ppcllm_aligned16(scales) || !ppcllm_aligned16(x->hi) ||
        !ppcllm_aligned16(x->lo) || !ppcllm_aligned16(x->s) || !ppcllm_aligned16(x->qsum) ||
        !ppcllm_aligned16(x->corr8) || !ppcllm_aligned16(x->corr4) || (q41 && !ppcllm_aligned16(mins))) {
        ppcllm_matvec_blk_scalar(out, x, codes, scales, mins, groups, rows, dtype);
        return;
    }
    ppcllm_vscr_ieee();
    nz = ppcllm_negzero();
    for (r = 0; r < rows; r++) {
        const unsigned char *w = codes + (size_t)r * row_bytes;
        if (r + 1 < rows) {
            ppcllm_prefetch(w + row_bytes, row_bytes);
        }
        out[r] = ppcllm_blk_row(x, w, scales + (size_t)r * stride, q41 ? mins + (size_t)r * stride : NULL,
                                groups, q8, q8 ? x->corr8 : x->corr4, nz);
    }
    vec_dss(0);
}

/* Kept GGUF blocks: the block is decoded by the scalar code (ppcllm_kq_decode, into a 16-aligned
 * block; Q4_K, Q5_K and Q6_K codes unpacked with vector shifts, ppcllm_kq_unpack), the exact
 * integer sums isum = sum(u * q) come from vec_msum (q = 256 * hi + lo: a
 * signed x unsigned and an unsigned x unsigned multiply-sum, 16 values per vector), and the float
 * step is the shared ppcllm_kq_step: the same operations in the same order as the scalar kernel. */
typedef union {
    vector unsigned char v[16];
    ppcllm_kq_block b;
} ppcllm_kq_aligned;

typedef union {
    vector signed int v;
    ppcllm_i32 i[4];
} ppcllm_vi;

static ppcllm_i32 ppcllm_kq_isum(const unsigned char *u, const signed char *hi, const unsigned char *lo, int n)
{
    vector signed int zero = vec_splat_s32(0), sh = zero;
    vector unsigned int sl = (vector unsigned int)zero;
    ppcllm_vi t;
    int k;
    for (k = 0; k < n; k += 16) {
        vector unsigned char vu = vec_ld(0, u + k);
        sh = vec_msum(vec_ld(0, hi + k), vu, sh);
        sl = vec_msum(vec_ld(0, lo + k), vu, sl);
    }
    /* per lane: 256 * (at most 4 * 128 * 255) + 4 * 255 * 255 fits easily; vec_sums adds the lanes */
    t.v = vec_sums(vec_add(vec_sl(sh, vec_splat_u32(8)), (vector signed int)sl), zero);
    return t.i[3];
}

/* i in every byte, i = 0 .. 7 (shift counts chosen at run time: vec_splat_u8 takes literals only) */
static const vector unsigned char ppcllm_u8_splat[8] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2},
    {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3},
    {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4},
    {5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5},
    {6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6},
    {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7},
};

/* Q4_K / Q5_K / Q6_K codes unpacked with vector shifts and masks (the same bits as the scalar
 * ppcllm_kq_decode: Q4_K value 64j + 32h + l is nibble h of qs[32j + l], Q5_K's fifth bit bit
 * e / 32 of qh[l]; Q6_K value 128n + 32k + l is nibble k / 2 of ql[64n + 32(k % 2) + l] with bits
 * 2k.. of qh[32n + l] above it); 0 when the type is another or a field is not 16-byte aligned. */
static int ppcllm_kq_unpack(ppcllm_kq_aligned *o, const ppcllm_kq_format *f, const ppcllm_kq_row *row, int blk)
{
    const unsigned char *qs = row->f[0] + (size_t)blk * (size_t)f->field_bytes[0];
    const unsigned char *qh = row->f[1] + (size_t)blk * (size_t)f->field_bytes[1];
    vector unsigned char low4 = vec_splat_u8(15), low2 = vec_splat_u8(3), one = vec_splat_u8(1);
    vector unsigned char four = vec_splat_u8(4);
    int j, h, n, k;
    if (!ppcllm_aligned16(qs) || !ppcllm_aligned16(qh) || !ppcllm_kq_decode_factors(&o->b, f, row, blk)) {
        return 0;
    }
    if (f->dtype == PPCLLM_DTYPE_Q6_K) {
        for (n = 0; n < 2; n++) {
            for (k = 0; k < 4; k++) {
                vector unsigned char shift_l = ppcllm_u8_splat[4 * (k / 2)], shift_h = ppcllm_u8_splat[2 * k];
                for (h = 0; h < 2; h++) {
                    vector unsigned char l = vec_ld(64 * n + 32 * (k % 2) + 16 * h, qs);
                    vector unsigned char hb = vec_ld(32 * n + 16 * h, qh);
                    o->v[8 * n + 2 * k + h] = vec_or(vec_and(vec_sr(l, shift_l), low4),
                                                     vec_sl(vec_and(vec_sr(hb, shift_h), low2), four));
                }
            }
        }
        return 1;
    }
    for (j = 0; j < 4; j++) {
        for (h = 0; h < 2; h++) {
            vector unsigned char v0 = vec_ld(32 * j, qs), v1 = vec_ld(32 * j + 16, qs);
            vector unsigned char a = h == 0 ? vec_and(v0, low4) : vec_sr(v0, four);
            vector unsigned char b = h == 0 ? vec_and(v1, low4) : vec_sr(v1, four);
            if (f->dtype == PPCLLM_DTYPE_Q5_K) {
                vector unsigned char bit = ppcllm_u8_splat[2 * j + h];
                a = vec_or(a, vec_sl(vec_and(vec_sr(vec_ld(0, qh), bit), one), four));
                b = vec_or(b, vec_sl(vec_and(vec_sr(vec_ld(16, qh), bit), one), four));
            }
            o->v[4 * j + 2 * h] = a;
            o->v[4 * j + 2 * h + 1] = b;
        }
    }
    return 1;
}

void ppcllm_matvec_kq_altivec(float *out, const ppcllm_fvec *x, const unsigned char *data, int rows, int cols,
                              int r0, int r1, int dtype)
{
    const ppcllm_kq_format *f = ppcllm_kq_format_of((ppcllm_u32)dtype);
    ppcllm_kq_aligned blk;
    ppcllm_kq_row row;
    int r, b, sb;
    if (!ppcllm_aligned16(x->hi) || !ppcllm_aligned16(x->lo)) {
        ppcllm_matvec_kq_scalar(out, x, data, rows, cols, r0, r1, dtype);
        return;
    }
    for (r = r0; r < r1; r++) {
        float acc = 0.0f;
        ppcllm_kq_row_at(&row, f, data, rows, cols, r);
        for (b = 0; b < cols / f->block; b++) {
            if (!ppcllm_kq_unpack(&blk, f, &row, b)) {
                ppcllm_kq_decode(&blk.b, f, &row, b);
            }
            for (sb = 0; sb < f->block / f->sub; sb++) {
                int e0 = b * f->block + sb * f->sub;
                ppcllm_i32 isum = ppcllm_kq_isum(blk.b.u + sb * f->sub, x->hi + e0, x->lo + e0, f->sub);
                acc = ppcllm_kq_step(acc, isum, ppcllm_kq_qsum(x, e0, f->sub), f, blk.b.a[sb], blk.b.b[sb],
                                     x->s[e0 / PPCLLM_GROUP]);
            }
        }
        out[r - r0] = acc;
    }
}
#endif /* PPCLLM_SIMD_ALTIVEC */
