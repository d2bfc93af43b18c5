/* The AVX-512 micro-kernel of the packed f32 GEMM (gemm.h): a 14 x 32 tile
 * held in 28 zmm accumulators; per k, two loads of packed B (32 floats),
 * 14 broadcasts of packed A and 28 FMAs, so loads stay under the two FMA
 * ports' rate. Only this file is compiled with -mavx512f (CMakeLists.txt);
 * it runs only when the kernel table was filled for MOAI_ISA_AVX512. */
#include <immintrin.h>

#include "kernels/nn/gemm.h"

#ifndef GEMM_MR
#define GEMM_MR 14
#endif
#define GEMM_NR 32
#ifndef GEMM_KC
#define GEMM_KC 320
#endif
#ifndef GEMM_MC
#define GEMM_MC (GEMM_MR * 24)
#endif
#ifndef GEMM_NC
#define GEMM_NC 1024
#endif
#define GEMM_BLOCK_FN moai_sgemm_block_avx512

static inline __mmask16 gemm_mask(int n) {
  return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

static void gemm_ukernel(int64_t kc, const float *restrict ap, const float *restrict bp,
                         float *restrict c, int64_t ldc, float alpha, int mr, int nr,
                         int accumulate) {
  __m512 acc0[GEMM_MR], acc1[GEMM_MR];
  /* The C tile is read (accumulate) and written after the k loop: start
   * bringing its rows in now, so that large matrices, whose C is not in
   * cache, do not stall on them at the end. */
#pragma GCC unroll 16
  for (int r = 0; r < GEMM_MR; ++r) {
    if (r < mr) {
      _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
    }
    acc0[r] = acc1[r] = _mm512_setzero_ps();
  }
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    _mm_prefetch((const char *)(ap + 8 * GEMM_MR), _MM_HINT_T0);
    __m512 b0 = _mm512_load_ps(bp), b1 = _mm512_load_ps(bp + 16);
#pragma GCC unroll 16
    for (int r = 0; r < GEMM_MR; ++r) {
      __m512 a = _mm512_set1_ps(ap[r]);
      acc0[r] = _mm512_fmadd_ps(a, b0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(a, b1, acc1[r]);
    }
    ap += GEMM_MR;
    bp += GEMM_NR;
  }
  __m512 va = _mm512_set1_ps(alpha);
  __mmask16 m0 = gemm_mask(nr), m1 = gemm_mask(nr - 16);
#pragma GCC unroll 16
  for (int r = 0; r < GEMM_MR; ++r) {
    if (r >= mr) break;
    float *row = c + r * ldc;
    __m512 y0 = _mm512_mul_ps(va, acc0[r]), y1 = _mm512_mul_ps(va, acc1[r]);
    if (accumulate) {
      y0 = _mm512_add_ps(y0, _mm512_maskz_loadu_ps(m0, row));
      y1 = _mm512_add_ps(y1, _mm512_maskz_loadu_ps(m1, row + 16));
    }
    _mm512_mask_storeu_ps(row, m0, y0);
    _mm512_mask_storeu_ps(row + 16, m1, y1);
  }
}

#include "kernels/nn/gemm_driver.h"
