/* kerneltest.c: every SIMD kernel against its scalar reference, bit for bit.
 * Prints one line per case and a summary; exits non-zero on a mismatch. */
#include "kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const ppcllm_kernel_set *kernels; /* the set under test: what the engine would run */

/* a deterministic generator (xorshift32) for weights in [-1, 1) with varied magnitudes */
static ppcllm_u32 rng_state = 2463534242u;

static float next_value(void)
{
    ppcllm_u32 x = rng_state;
    float v;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    v = (float)(x >> 8) / 16777216.0f * 2.0f - 1.0f;
    return (x & 7u) == 0 ? v * 1e-3f : v;
}

static float *aligned_floats(size_t count, void **raw)
{
    unsigned char *p = (unsigned char *)malloc(count * sizeof(float) + 16);
    *raw = p;
    if (p == NULL) {
        return NULL;
    }
    return (float *)(p + (16 - (size_t)((ppcllm_uptr)p % 16)) % 16);
}

static int check_matmul(int n, int d, int offset)
{
    void *rw, *rx, *ra, *rb;
    float *w = aligned_floats((size_t)n * (size_t)d + 4, &rw);
    float *x = aligned_floats((size_t)n + 4, &rx);
    float *a = aligned_floats((size_t)d, &ra);
    float *b = aligned_floats((size_t)d, &rb);
    int i, ok;
    if (w == NULL || x == NULL || a == NULL || b == NULL) {
        fprintf(stderr, "kerneltest: out of memory\n");
        return 0;
    }
    w += offset; /* offset != 0: unaligned rows, the kernel must fall back, not misread */
    for (i = 0; i < n * d; i++) {
        w[i] = next_value();
    }
    for (i = 0; i < n; i++) {
        x[i] = next_value() * 4.0f;
    }
    ppcllm_matmul_scalar(a, x, w, n, d);
    kernels->matmul(b, x, w, n, d);
    ok = memcmp(a, b, (size_t)d * sizeof(float)) == 0;
    printf("matmul %s n=%d d=%d offset=%d: %s\n", kernels->name, n, d, offset,
           ok ? "bit-identical" : "MISMATCH");
    free(rw);
    free(rx);
    free(ra);
    free(rb);
    return ok;
}

static void fill_qvec(ppcllm_qvec *a, int n, void **raws)
{
    float *x = aligned_floats((size_t)a->groups * PPCLLM_GROUP, &raws[0]);
    int i;
    a->q = (signed char *)aligned_floats((size_t)a->groups * PPCLLM_GROUP / 4, &raws[1]);
    a->s = aligned_floats((size_t)a->groups, &raws[2]);
    a->corr8 = (ppcllm_i32 *)aligned_floats((size_t)a->groups * 4, &raws[3]);
    a->corr4 = (ppcllm_i32 *)aligned_floats((size_t)a->groups * 4, &raws[4]);
    for (i = 0; i < n; i++) {
        x[i] = next_value() * 3.0f;
    }
    ppcllm_quantize_vec(a, x, n);
}

/* a quantized matrix of random codes and scales, scalar vs SIMD kernel */
static int check_matvec(int cols, int rows, int q4)
{
    ppcllm_qvec a;
    void *raws[8];
    int groups = ((cols + PPCLLM_GROUP - 1) / PPCLLM_GROUP + 3) / 4 * 4;
    size_t group_bytes = q4 ? PPCLLM_GROUP / 2 : PPCLLM_GROUP;
    size_t nbytes = (size_t)rows * (size_t)groups * group_bytes, i;
    unsigned char *codes = (unsigned char *)aligned_floats(nbytes / 4 + 1, &raws[5]);
    size_t n_scales = (size_t)rows * (size_t)PPCLLM_SCALE_STRIDE(groups);
    ppcllm_u16 *scales = (ppcllm_u16 *)aligned_floats(n_scales / 2 + 1, &raws[6]);
    float *out = aligned_floats((size_t)rows * 2, &raws[7]);
    int ok, k;
    a.groups = groups;
    fill_qvec(&a, cols, raws);
    for (i = 0; i < nbytes; i++) {
        codes[i] = (unsigned char)(next_value() * 128.0f + 128.0f);
    }
    for (i = 0; i < n_scales; i++) {
        /* fp16 bit patterns: normal and subnormal magnitudes of both signs, no inf or NaN */
        scales[i] = (ppcllm_u16)((rng_state = rng_state * 1103515245u + 12345u) >> 16) & 0xBBFFu;
    }
    if (q4) {
        ppcllm_matvec_q4_0_scalar(out, &a, codes, scales, groups, rows);
        kernels->q4_0(out + rows, &a, codes, scales, groups, rows);
    } else {
        ppcllm_matvec_q8_0_scalar(out, &a, codes, scales, groups, rows);
        kernels->q8_0(out + rows, &a, codes, scales, groups, rows);
    }
    ok = memcmp(out, out + rows, (size_t)rows * sizeof(float)) == 0;
    printf("matvec %s %s cols=%d rows=%d: %s\n", q4 ? "q4_0" : "q8_0", kernels->name, cols, rows,
           ok ? "bit-identical" : "MISMATCH");
    for (k = 0; k < 8; k++) {
        free(raws[k]);
    }
    return ok;
}

/* GGUF blocks (q8_0, q4_0 or q4_1) with 16-bit activations, scalar vs SIMD kernel */
static int check_blk(int cols, int rows, int dtype)
{
    static const char *const names[] = {"", "", "q8_0", "q4_0", "", "q4_1"};
    ppcllm_fvec a;
    void *raws[12];
    int groups = ((cols + PPCLLM_GROUP - 1) / PPCLLM_GROUP + 3) / 4 * 4, i, ok, k;
    size_t group_bytes = dtype == (int)PPCLLM_DTYPE_Q8_0 ? PPCLLM_GROUP : PPCLLM_GROUP / 2;
    size_t nbytes = (size_t)rows * (size_t)groups * group_bytes, j;
    size_t n_scales = (size_t)rows * (size_t)PPCLLM_SCALE_STRIDE(groups);
    unsigned char *codes = (unsigned char *)aligned_floats(nbytes / 4 + 1, &raws[0]);
    ppcllm_u16 *scales = (ppcllm_u16 *)aligned_floats(n_scales / 2 + 1, &raws[1]);
    ppcllm_u16 *mins = (ppcllm_u16 *)aligned_floats(n_scales / 2 + 1, &raws[2]);
    float *x = aligned_floats((size_t)cols + 1, &raws[3]);
    float *out = aligned_floats((size_t)rows * 2, &raws[4]);
    a.groups = groups;
    a.hi = (signed char *)aligned_floats((size_t)groups * PPCLLM_GROUP / 4, &raws[5]);
    a.lo = (unsigned char *)aligned_floats((size_t)groups * PPCLLM_GROUP / 4, &raws[6]);
    a.s = aligned_floats((size_t)groups, &raws[7]);
    a.qsum = (ppcllm_i32 *)aligned_floats((size_t)groups * 4, &raws[8]);
    a.corr8 = (ppcllm_i32 *)aligned_floats((size_t)groups * 4, &raws[9]);
    a.corr4 = (ppcllm_i32 *)aligned_floats((size_t)groups * 4, &raws[10]);
    a.qsum16 = (ppcllm_i32 *)aligned_floats((size_t)groups * 2, &raws[11]);
    for (i = 0; i < cols; i++) {
        x[i] = next_value() * 3.0f;
    }
    for (j = 0; j < nbytes; j++) {
        codes[j] = (unsigned char)(next_value() * 128.0f + 128.0f);
    }
    for (j = 0; j < n_scales; j++) {
        scales[j] = (ppcllm_u16)((rng_state = rng_state * 1103515245u + 12345u) >> 16) & 0xBBFFu;
        mins[j] = (ppcllm_u16)((rng_state = rng_state * 1103515245u + 12345u) >> 16) & 0xBBFFu;
    }
    ppcllm_prepare_fvec(&a, x, cols);
    ppcllm_matvec_blk_scalar(out, &a, codes, scales, mins, groups, rows, dtype);
    kernels->blk(out + rows, &a, codes, scales, mins, groups, rows, dtype);
    ok = memcmp(out, out + rows, (size_t)rows * sizeof(float)) == 0;
    printf("matvec %s 16-bit-activation %s cols=%d rows=%d: %s\n", names[dtype], kernels->name, cols, rows,
           ok ? "bit-identical" : "MISMATCH");
    for (k = 0; k < 12; k++) {
        free(raws[k]);
    }
    return ok;
}

/* A 16-bit activation vector of cols values (its arrays in raws[0..6]). */
static void alloc_fvec(ppcllm_fvec *a, int cols, void **raws)
{
    int groups = ((cols + PPCLLM_GROUP - 1) / PPCLLM_GROUP + 3) / 4 * 4;
    a->groups = groups;
    a->hi = (signed char *)aligned_floats((size_t)groups * PPCLLM_GROUP / 4, &raws[0]);
    a->lo = (unsigned char *)aligned_floats((size_t)groups * PPCLLM_GROUP / 4, &raws[1]);
    a->s = aligned_floats((size_t)groups, &raws[2]);
    a->qsum = (ppcllm_i32 *)aligned_floats((size_t)groups * 4, &raws[3]);
    a->corr8 = (ppcllm_i32 *)aligned_floats((size_t)groups * 4, &raws[4]);
    a->corr4 = (ppcllm_i32 *)aligned_floats((size_t)groups * 4, &raws[5]);
    a->qsum16 = (ppcllm_i32 *)aligned_floats((size_t)groups * 2, &raws[6]);
}

/* The 2-byte fields of every block given finite fp16 values (IQ4_XS's u16 scales_h stays random). */
static void finite_halves(unsigned char *data, const ppcllm_kq_format *f, int rows, int cols)
{
    int r, b, k;
    for (r = 0; r < rows; r++) {
        ppcllm_kq_row row;
        ppcllm_kq_row_at(&row, f, data, rows, cols, r);
        for (k = 0; k < f->nfields; k++) {
            if (f->field_bytes[k] != 2 || (f->dtype == PPCLLM_DTYPE_IQ4_XS && k == 3)) {
                continue;
            }
            for (b = 0; b < cols / f->block; b++) {
                ppcllm_u16 h = (ppcllm_u16)(((rng_state = rng_state * 1103515245u + 12345u) >> 16) & 0xBBFFu);
                memcpy((unsigned char *)row.f[k] + (size_t)b * 2, &h, 2);
            }
        }
    }
}

/* Kept GGUF blocks of dtype (random codes and scales) with 16-bit activations, scalar vs SIMD kernel. */
static int check_kq(int cols, int rows, ppcllm_u32 dtype)
{
    const ppcllm_kq_format *f = ppcllm_kq_format_of(dtype);
    size_t nbytes = (size_t)ppcllm_kq_nbytes(f, (ppcllm_u64)rows, (ppcllm_u64)cols), j;
    ppcllm_fvec a;
    void *raws[10];
    unsigned char *data = (unsigned char *)aligned_floats(nbytes / 4 + 1, &raws[7]);
    float *x = aligned_floats((size_t)cols, &raws[8]);
    float *out = aligned_floats((size_t)rows * 2, &raws[9]);
    int i, ok, k;
    alloc_fvec(&a, cols, raws);
    for (j = 0; j < nbytes; j++) {
        data[j] = (unsigned char)(next_value() * 128.0f + 128.0f);
    }
    finite_halves(data, f, rows, cols);
    for (i = 0; i < cols; i++) {
        x[i] = next_value() * 3.0f;
    }
    ppcllm_prepare_fvec(&a, x, cols);
    ppcllm_matvec_kq_scalar(out, &a, data, rows, cols, 0, rows, (int)dtype);
    kernels->kq(out + rows, &a, data, rows, cols, 0, rows, (int)dtype);
    ok = memcmp(out, out + rows, (size_t)rows * sizeof(float)) == 0;
    printf("matvec kept-block dtype %u %s cols=%d rows=%d: %s\n", (unsigned)dtype, kernels->name, cols, rows,
           ok ? "bit-identical" : "MISMATCH");
    for (k = 0; k < 10; k++) {
        free(raws[k]);
    }
    return ok;
}

/* `ppcllm-kerneltest kq FILE`: FILE holds dtype, rows, cols (u32, host order), the matrix's
 * bytes in the converted file's layout, then cols float32 activations; writes to stdout every
 * row dequantized (rows x cols float32), then the scalar kernel's product (rows float32), for the
 * toolkit's tests against gguf and the reference; exits 1 when the SIMD kernel differs. */
static int dump_kq(const char *path)
{
    ppcllm_u32 head[3];
    const ppcllm_kq_format *f;
    ppcllm_fvec a;
    void *raws[10];
    unsigned char *data;
    float *x, *out;
    size_t nbytes;
    int rows, cols, r, ok, k;
    FILE *in = fopen(path, "rb");
    if (in == NULL || fread(head, sizeof head, 1, in) != 1 || (f = ppcllm_kq_format_of(head[0])) == NULL ||
        head[1] == 0 || head[1] > 1u << 16 || head[2] == 0 || head[2] > 1u << 16) {
        fprintf(stderr, "kerneltest: %s: not a kept-block dump\n", path);
        return 2;
    }
    rows = (int)head[1];
    cols = (int)head[2];
    nbytes = (size_t)ppcllm_kq_nbytes(f, (ppcllm_u64)rows, (ppcllm_u64)cols);
    data = (unsigned char *)aligned_floats(nbytes / 4 + 1, &raws[7]);
    x = aligned_floats((size_t)cols * (size_t)(rows + 1), &raws[8]);
    out = aligned_floats((size_t)rows * 2, &raws[9]);
    alloc_fvec(&a, cols, raws);
    if (nbytes == 0 || fread(data, 1, nbytes, in) != nbytes || fread(x, sizeof(float), (size_t)cols, in) != (size_t)cols) {
        fprintf(stderr, "kerneltest: %s: truncated\n", path);
        return 2;
    }
    fclose(in);
    ppcllm_prepare_fvec(&a, x, cols);
    for (r = 0; r < rows; r++) {
        ppcllm_kq_dequantize_row(x + (size_t)cols * (size_t)(r + 1), data, rows, cols, r, head[0]);
    }
    fwrite(x + cols, sizeof(float), (size_t)rows * (size_t)cols, stdout);
    ppcllm_matvec_kq_scalar(out, &a, data, rows, cols, 0, rows, (int)head[0]);
    kernels->kq(out + rows, &a, data, rows, cols, 0, rows, (int)head[0]);
    fwrite(out, sizeof(float), (size_t)rows, stdout);
    ok = memcmp(out, out + rows, (size_t)rows * sizeof(float)) == 0;
    for (k = 0; k < 10; k++) {
        free(raws[k]);
    }
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const int kq_shapes[][2] = { {256, 1}, {256, 5}, {512, 8}, {768, 3}, {1536, 9}};
    static const int kq32_shapes[][2] = { {32, 1}, {64, 5}, {576, 7}, {96, 4}};
    static const int qshapes[][2] = {
        {64, 64}, {172, 64}, {64, 172}, {288, 768}, {768, 96}, {32, 3}, {5, 2}, {576, 40}, {1536, 9},
    };
    static const int shapes[][3] = {
        {64, 64, 0}, {64, 32, 0}, {64, 172, 0}, {172, 64, 0}, {64, 512, 0}, {288, 768, 0},
        {768, 288, 0}, {4, 1, 0}, {8, 3, 0}, {12, 5, 0}, {16, 7, 0}, {6, 5, 0}, {10, 9, 0},
        {64, 64, 1}, {64, 9, 2}, {1, 1, 0}, {3, 4, 0},
    };
    int i, passed = 0, failed = 0;
    kernels = ppcllm_kernels();
    if (argc == 3 && strcmp(argv[1], "kq") == 0) {
        return dump_kq(argv[2]);
    }
    for (i = 0; i < (int)(sizeof shapes / sizeof shapes[0]); i++) {
        if (check_matmul(shapes[i][0], shapes[i][1], shapes[i][2])) {
            passed++;
        } else {
            failed++;
        }
    }
    for (i = 0; i < (int)(sizeof qshapes / sizeof qshapes[0]); i++) {
        int q4;
        for (q4 = 0; q4 < 2; q4++) {
            if (check_matvec(qshapes[i][0], qshapes[i][1], q4)) {
                passed++;
            } else {
                failed++;
            }
        }
    }
    for (i = 0; i < (int)(sizeof qshapes / sizeof qshapes[0]); i++) {
        static const int dtypes[3] = {PPCLLM_DTYPE_Q8_0, PPCLLM_DTYPE_Q4_0, PPCLLM_DTYPE_Q4_1};
        int t;
        for (t = 0; t < 3; t++) {
            if (check_blk(qshapes[i][0], qshapes[i][1], dtypes[t])) {
                passed++;
            } else {
                failed++;
            }
        }
    }
    for (i = (int)PPCLLM_DTYPE_Q5_0; i <= (int)PPCLLM_DTYPE_IQ4_XS; i++) {
        const ppcllm_kq_format *f = ppcllm_kq_format_of((ppcllm_u32)i);
        int t, n = f->block == 32 ? (int)(sizeof kq32_shapes / sizeof kq32_shapes[0])
                                  : (int)(sizeof kq_shapes / sizeof kq_shapes[0]);
        for (t = 0; t < n; t++) {
            const int *shape = f->block == 32 ? kq32_shapes[t] : kq_shapes[t];
            if (check_kq(shape[0], shape[1], (ppcllm_u32)i)) {
                passed++;
            } else {
                failed++;
            }
        }
    }
    if (failed == 0) {
        printf("kerneltest: all %d cases bit-identical\n", passed);
    } else {
        printf("kerneltest: %d of %d cases differ\n", failed, passed + failed);
    }
    return failed == 0 ? 0 : 1;
}
