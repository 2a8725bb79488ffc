/* kernels_select.c: which kernels run. The scalar references always exist; with
 * PPCLLM_SIMD_ALTIVEC the AltiVec set too, used always, or (PPCLLM_SIMD_RUNTIME: one binary for
 * CPUs with and without AltiVec) only where the CPU says it has AltiVec. Compiled without the
 * SIMD flags: only kernels_altivec.c holds vector instructions. */
#include "kernels.h"

#include <stddef.h>
#if PPCLLM_SIMD_ALTIVEC && PPCLLM_SIMD_RUNTIME && defined(__linux__)
#include <sys/auxv.h> /* getauxval (glibc 2.16+) */
#elif PPCLLM_SIMD_ALTIVEC && PPCLLM_SIMD_RUNTIME && defined(__APPLE__)
#include <sys/types.h>
#include <sys/sysctl.h>
#endif

#if PPCLLM_SIMD_ALTIVEC && PPCLLM_SIMD_RUNTIME

/* Whether this CPU executes AltiVec: the kernel says so in the auxiliary vector on Linux
 * (AT_HWCAP, PPC_FEATURE_HAS_ALTIVEC), sysctl on Mac OS X; elsewhere assume it does not. */
static int ppcllm_cpu_has_altivec(void)
{
#if defined(__linux__) && defined(AT_HWCAP)
    return (getauxval(AT_HWCAP) & 0x10000000UL) != 0;
#elif defined(__APPLE__)
    int has = 0;
    size_t len = sizeof has;
    return sysctlbyname("hw.optional.altivec", &has, &len, NULL, 0) == 0 && has != 0;
#else
    return 0;
#endif
}
#endif

#if !PPCLLM_SIMD_ALTIVEC || PPCLLM_SIMD_RUNTIME
static const ppcllm_kernel_set ppcllm_scalar_kernels = {
    ppcllm_matmul_scalar, ppcllm_matvec_q8_0_scalar, ppcllm_matvec_q4_0_scalar, ppcllm_matvec_blk_scalar,
    ppcllm_matvec_kq_scalar, "scalar",
};
#endif

#if PPCLLM_SIMD_ALTIVEC
static const ppcllm_kernel_set ppcllm_altivec_kernels = {
    ppcllm_matmul_altivec, ppcllm_matvec_q8_0_altivec, ppcllm_matvec_q4_0_altivec, ppcllm_matvec_blk_altivec,
    ppcllm_matvec_kq_altivec, "altivec",
};
#endif

const ppcllm_kernel_set *ppcllm_kernels(void)
{
#if PPCLLM_SIMD_ALTIVEC && PPCLLM_SIMD_RUNTIME
    return ppcllm_cpu_has_altivec() ? &ppcllm_altivec_kernels : &ppcllm_scalar_kernels;
#elif PPCLLM_SIMD_ALTIVEC
    return &ppcllm_altivec_kernels;
#else
    return &ppcllm_scalar_kernels;
#endif
}
