/* kernels.h: the compute kernels. Each SIMD kernel has a scalar reference that it matches bit
 * for bit (ppcllm-kerneltest checks every pair). */
#ifndef PPCLLM_KERNELS_H
#define PPCLLM_KERNELS_H

#include "ppcllm_config.h"

#include <math.h>

#define PPCLLM_GROUP 32 /* values per quantization group */

/* An activation vector quantized per group of 32 (int8 codes, a float scale per group), with
 * the per-lane correction terms the AltiVec kernels add: lane l of group g covers the values
 * 4l..4l+3 and 16+4l..16+4l+3, corr8 = -128 * (sum of those codes), corr4 = -8 * (the same). */
typedef struct ppcllm_qvec {
    signed char *q;    /* (groups * 32,) */
    float *s;          /* (groups,) */
    ppcllm_i32 *corr8; /* (groups * 4,) */
    ppcllm_i32 *corr4; /* (groups * 4,) */
    int groups;        /* a multiple of 4 */
} ppcllm_qvec;

void ppcllm_quantize_vec(ppcllm_qvec *a, const float *x, int n);

/* An activation vector for the GGUF block kernels, quantized per group of 32 to 16 bits (error
 * at most 2^-16 of the group's largest magnitude: as good as float for these products, and
 * integer-exact in the kernels): q_e = round(x_e / s) with s = max|x| / 32767, stored as a
 * signed high byte and an unsigned low byte (q = 256 * hi + lo), so AltiVec's vec_msum takes
 * both. Lane l of group g covers the values 4l..4l+3 and 16+4l..16+4l+3 (as vec_msum sums);
 * qsum is the sum of q over a lane, corr8 / corr4 that times -128 / -8 (the codes' offsets). */
typedef struct ppcllm_fvec {
    signed char *hi;      /* (groups * 32,) */
    unsigned char *lo;    /* (groups * 32,) */
    float *s;             /* (groups,) */
    ppcllm_i32 *qsum;     /* (groups * 4,) */
    ppcllm_i32 *corr8;    /* (groups * 4,) */
    ppcllm_i32 *corr4;    /* (groups * 4,) */
    ppcllm_i32 *qsum16;   /* (groups * 2,): the sum of q over values 0..15, then 16..31, of a group */
    int groups;           /* a multiple of 4 */
} ppcllm_fvec;

void ppcllm_prepare_fvec(ppcllm_fvec *a, const float *x, int n);
/* an fp16 value (a weight group's scale), widened exactly */
float ppcllm_half_to_float(ppcllm_u16 h);
/* fp16 scales stored per row for `groups` code groups: a multiple of eight (16 bytes) */
#define PPCLLM_SCALE_STRIDE(groups) (((groups) + 7) / 8 * 8)
/* out (cols) = scale * value (+ min for q4_1) for one quantized row of dtype q8_0, q4_0 or q4_1 */
void ppcllm_dequantize_row(float *out, const unsigned char *codes, const ppcllm_u16 *scales,
                           const ppcllm_u16 *mins, int cols, int dtype);

/* xout (d) = W (d, n) @ x (n), each output summed in order j = 0 .. n-1, as llama2.c does. */
void ppcllm_matmul_scalar(float *xout, const float *x, const float *w, int n, int d);
/* out (rows) = W @ x for block-quantized W: codes (rows, groups, 32 or 16 bytes) and fp16
 * scales (rows, PPCLLM_SCALE_STRIDE(groups)); the lane-wise definition is in toolkit/quant.py. */
void ppcllm_matvec_q8_0_scalar(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                               const ppcllm_u16 *scales, int groups, int rows);
void ppcllm_matvec_q4_0_scalar(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                               const ppcllm_u16 *scales, int groups, int rows);
/* out (rows) = W @ x for block-quantized W (dtype q8_0, q4_0 or q4_1) and a 16-bit activation
 * vector; mins: q4_1's fp16 mins, laid out as scales (NULL otherwise). Defined lane by lane:
 * isum_l = the exact integer sum of c_e * q_e over lane l (c_e the stored, unsigned code), minus
 * 128 * qsum_l (q8_0) or 8 * qsum_l (q4_0); acc_l = fmaf((float)isum_l, d_g * s_g, acc_l), and
 * for q4_1 then acc_l = fmaf((float)qsum_l, m_g * s_g, acc_l); the result is
 * (acc_0 + acc_1) + (acc_2 + acc_3). */
void ppcllm_matvec_blk_scalar(float *out, const ppcllm_fvec *x, const unsigned char *codes,
                              const ppcllm_u16 *scales, const ppcllm_u16 *mins, int groups, int rows,
                              int dtype);

/* GGUF blocks kept bit for bit (dtypes PPCLLM_DTYPE_Q5_0 .. _IQ4_XS): one matrix (rows, cols) in
 * row groups of PPCLLM_KQ_ROW_GROUP rows, each block field one array over (row, block) per row
 * group, padded to 16 bytes (layout in toolkit/quant.py, mirrored by ppcllm_kq_row_at). */
#define PPCLLM_KQ_ROW_GROUP 4
#define PPCLLM_KQ_FIELDS 5
typedef struct ppcllm_kq_format {
    ppcllm_u32 dtype;
    int block;                          /* values per block (32 or 256) */
    int sub;                            /* values per sub-block (16 or 32) */
    int off;                            /* u's offset */
    int has_min;                        /* B_sb is not zero */
    int nfields;
    int field_bytes[PPCLLM_KQ_FIELDS]; /* per block, in the file's order */
} ppcllm_kq_format;

/* the format of dtype, NULL when it is not a kept GGUF block type */
const ppcllm_kq_format *ppcllm_kq_format_of(ppcllm_u32 dtype);
/* bytes of a (rows, cols) matrix; 0 when cols is not a whole number of blocks */
ppcllm_u64 ppcllm_kq_nbytes(const ppcllm_kq_format *f, ppcllm_u64 rows, ppcllm_u64 cols);

/* Each field's bytes of one row's block 0 (block b's: + b * field_bytes). */
typedef struct ppcllm_kq_row {
    const unsigned char *f[PPCLLM_KQ_FIELDS];
} ppcllm_kq_row;
void ppcllm_kq_row_at(ppcllm_kq_row *row, const ppcllm_kq_format *f, const unsigned char *data, int rows,
                      int cols, int r);

/* One block decoded: value e is a[sb] * (u[e] - off) (+ b[sb]), sb = e / sub; u first (the
 * AltiVec kernel loads it 16 bytes at a time from a 16-aligned union). */
typedef struct ppcllm_kq_block {
    unsigned char u[256];
    float a[16];
    float b[16];
} ppcllm_kq_block;
void ppcllm_kq_decode(ppcllm_kq_block *out, const ppcllm_kq_format *f, const ppcllm_kq_row *row, int blk);
/* only a and b, for the types whose codes a SIMD kernel unpacks itself (Q4_K, Q5_K, Q6_K); 0 for others */
int ppcllm_kq_decode_factors(ppcllm_kq_block *out, const ppcllm_kq_format *f, const ppcllm_kq_row *row, int blk);
/* out (cols) = row r of the matrix, dequantized: a * (float)(u - off) (+ b), gguf's values */
void ppcllm_kq_dequantize_row(float *out, const unsigned char *data, int rows, int cols, int r, ppcllm_u32 dtype);

/* The float step of the kept-block product, shared by the scalar and SIMD kernels (which differ
 * only in how they compute the exact integers): per sub-block, isum = sum(u * q), qsum = sum(q),
 * acc = fmaf((float)(isum - off * qsum), a * s, acc), then for types with a minimum
 * acc = fmaf((float)qsum, b * s, acc); s the activation group's scale. */
static inline float ppcllm_kq_step(float acc, ppcllm_i32 isum, ppcllm_i32 qsum, const ppcllm_kq_format *f,
                                   float a, float b, float s)
{
    acc = fmaf((float)(isum - f->off * qsum), a * s, acc);
    return f->has_min ? fmaf((float)qsum, b * s, acc) : acc;
}
/* qsum of the sub-block of n (16 or 32) values starting at e0 */
static inline ppcllm_i32 ppcllm_kq_qsum(const ppcllm_fvec *x, int e0, int n)
{
    const ppcllm_i32 *q = x->qsum16 + e0 / 16;
    return n == 32 ? q[0] + q[1] : q[0];
}
/* out (r1 - r0) = rows r0 .. r1-1 of the (rows, cols) kept-block matrix at data @ x: one float
 * accumulator per row, sub-block after sub-block (ppcllm_kq_step) */
void ppcllm_matvec_kq_scalar(float *out, const ppcllm_fvec *x, const unsigned char *data, int rows, int cols,
                             int r0, int r1, int dtype);

#if PPCLLM_SIMD_ALTIVEC
void ppcllm_matvec_kq_altivec(float *out, const ppcllm_fvec *x, const unsigned char *data, int rows, int cols,
                              int r0, int r1, int dtype);
#endif

#if PPCLLM_SIMD_ALTIVEC
/* Same results, AltiVec/VMX: f32 four rows at a time in lanes, int8 with vec_msum. */
void ppcllm_matmul_altivec(float *xout, const float *x, const float *w, int n, int d);
void ppcllm_matvec_q8_0_altivec(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                                const ppcllm_u16 *scales, int groups, int rows);
void ppcllm_matvec_q4_0_altivec(float *out, const ppcllm_qvec *x, const unsigned char *codes,
                                const ppcllm_u16 *scales, int groups, int rows);
void ppcllm_matvec_blk_altivec(float *out, const ppcllm_fvec *x, const unsigned char *codes,
                               const ppcllm_u16 *scales, const ppcllm_u16 *mins, int groups, int rows,
                               int dtype);
#endif

/* A set of kernels: the scalar references, or a SIMD set with the same results. */
typedef struct ppcllm_kernel_set {
    void (*matmul)(float *xout, const float *x, const float *w, int n, int d);
    void (*q8_0)(float *out, const ppcllm_qvec *x, const unsigned char *codes, const ppcllm_u16 *scales,
                 int groups, int rows);
    void (*q4_0)(float *out, const ppcllm_qvec *x, const unsigned char *codes, const ppcllm_u16 *scales,
                 int groups, int rows);
    void (*blk)(float *out, const ppcllm_fvec *x, const unsigned char *codes, const ppcllm_u16 *scales,
                const ppcllm_u16 *mins, int groups, int rows, int dtype);
    void (*kq)(float *out, const ppcllm_fvec *x, const unsigned char *data, int rows, int cols, int r0, int r1,
               int dtype);
    const char *name;
} ppcllm_kernel_set;

/* The set this machine runs (kernels_select.c): chosen at build time, or with PPCLLM_SIMD_RUNTIME
 * from the CPU's features each call. A constant table: nothing global changes. */
const ppcllm_kernel_set *ppcllm_kernels(void);

#endif /* PPCLLM_KERNELS_H */
