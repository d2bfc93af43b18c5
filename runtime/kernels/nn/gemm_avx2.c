/* The AVX2 micro-kernel of the packed f32 GEMM (gemm.h): a 6 x 16 tile in
 * 12 ymm accumulators (of 16 registers); per k, two loads of packed B, six
 * broadcasts of packed A and 12 FMAs. Only this file is compiled with
 * -mavx2 -mfma (CMakeLists.txt); it runs only when the kernel table was
 * filled for MOAI_ISA_AVX2 or higher. */
#include <immintrin.h>

#include "kernels/nn/gemm.h"

#define GEMM_MR 6
#define GEMM_NR 16
#ifndef GEMM_KC
#define GEMM_KC 256
#endif
#define GEMM_MC (GEMM_MR * 32)
#define GEMM_NC 2048
#define GEMM_BLOCK_FN moai_sgemm_block_avx2

static void gemm_ukernel(int64_t kc, const float *restrict ap, const float *restrict bp,
                         float *restrict c, int64_t ldc, float alpha, int mr, int nr,
                         int accumulate) {
  __m256 acc0[GEMM_MR], acc1[GEMM_MR];
#pragma GCC unroll 8
  for (int r = 0; r < GEMM_MR; ++r) acc0[r] = acc1[r] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    __m256 b0 = _mm256_load_ps(bp), b1 = _mm256_load_ps(bp + 8);
#pragma GCC unroll 8
    for (int r = 0; r < GEMM_MR; ++r) {
      __m256 a = _mm256_broadcast_ss(ap + r);
      acc0[r] = _mm256_fmadd_ps(a, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(a, b1, acc1[r]);
    }
    ap += GEMM_MR;
    bp += GEMM_NR;
  }
  __m256 va = _mm256_set1_ps(alpha);
  if (mr == GEMM_MR && nr == GEMM_NR) {
#pragma GCC unroll 8
    for (int r = 0; r < GEMM_MR; ++r) {
      float *row = c + r * ldc;
      __m256 y0 = _mm256_mul_ps(va, acc0[r]), y1 = _mm256_mul_ps(va, acc1[r]);
      if (accumulate) {
        y0 = _mm256_add_ps(y0, _mm256_loadu_ps(row));
        y1 = _mm256_add_ps(y1, _mm256_loadu_ps(row + 8));
      }
      _mm256_storeu_ps(row, y0);
      _mm256_storeu_ps(row + 8, y1);
    }
    return;
  }
  /* edge tile: through a buffer, clipped to mr x nr */
  float tile[GEMM_MR][GEMM_NR];
  for (int r = 0; r < GEMM_MR; ++r) {
    _mm256_storeu_ps(tile[r], _mm256_mul_ps(va, acc0[r]));
    _mm256_storeu_ps(tile[r] + 8, _mm256_mul_ps(va, acc1[r]));
  }
  for (int r = 0; r < mr; ++r) {
    float *row = c + r * ldc;
    for (int j = 0; j < nr; ++j) row[j] = accumulate ? row[j] + tile[r][j] : tile[r][j];
  }
}

#include "kernels/nn/gemm_driver.h"
