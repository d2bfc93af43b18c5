/* The loops around a micro-kernel (gemm.h), instantiated once per ISA file.
 * Before including it, define
 *   GEMM_MR, GEMM_NR      the micro-kernel's register tile (rows x columns)
 *   GEMM_KC, GEMM_MC, GEMM_NC   cache blocks (GEMM_MC a multiple of GEMM_MR,
 *                        GEMM_NC of GEMM_NR)
 *   GEMM_BLOCK_FN        the name of the block function to define
 * and a function
 *   static void gemm_ukernel(int64_t kc, const float *ap, const float *bp,
 *                            float *c, int64_t ldc, float alpha, int mr,
 *                            int nr, int accumulate);
 * computing the mr x nr corner of alpha * Ap * Bp (+ C when accumulate)
 * from an MR-high sliver of packed A and an NR-wide sliver of packed B.
 *
 * Loop order (BLIS): jc over NC columns; pc over KC of the depth, packing
 * B[pc, jc] (KC x NC, in NR-wide slivers: L3/L2); ic over MC rows, packing
 * A[ic, pc] (MC x KC, in MR-high slivers: L2); then jr over slivers of B
 * (one KC x NR sliver stays in L1) and ir over slivers of A. Edges are
 * padded with zeros in the packed panels, so the micro-kernel always runs a
 * full MR x NR tile and only its stores are clipped. */
#ifndef GEMM_BLOCK_FN
#error "define GEMM_MR, GEMM_NR, GEMM_KC, GEMM_MC, GEMM_NC and GEMM_BLOCK_FN first"
#endif

#include <immintrin.h>
#include <string.h>

#ifndef __AVX2__
#error "gemm_driver.h needs AVX2 (compile its includer with -mavx2 or -mavx512f)"
#endif

static inline int64_t gemm_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* Transposes the 8 x 8 floats at src (row stride ld) into dst (row stride
 * ldd): dst[u * ldd + r] = src[r * ld + u]. The packing of row-major A and
 * of B^T is such a transpose, scalar it costs as much as the FMAs of a
 * sliver at small K. */
static inline void gemm_transpose8(const float *src, int64_t ld, float *dst, int64_t ldd) {
  __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld);
  __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
  __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
  __m256 r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
  __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}

/* Packs A(0..mc, 0..kc) into MR-high slivers: ap[s][k][r] = A(s*MR + r, k). */
static void gemm_pack_a(int64_t mc, int64_t kc, const float *a, int64_t as_i, int64_t as_k,
                        float *restrict ap) {
  for (int64_t i0 = 0; i0 < mc; i0 += GEMM_MR, ap += GEMM_MR * kc) {
    int64_t mr = gemm_min(GEMM_MR, mc - i0);
    const float *src = a + i0 * as_i;
    if (mr == GEMM_MR && as_i == 1) {
      /* A^T: each k is MR contiguous floats */
      for (int64_t k = 0; k < kc; ++k) memcpy(ap + k * GEMM_MR, src + k * as_k, GEMM_MR * sizeof(float));
    } else if (mr == GEMM_MR && as_k == 1) {
      /* row-major A: 8 x 8 transposes (rows [0, 8) and [MR - 8, MR), which
       * overlap and write the same values when MR < 16), or per row 8 k at
       * a time so each row is read in cache-line runs */
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8) {
        if (GEMM_MR >= 8 && GEMM_MR <= 16) {
          gemm_transpose8(src + k, as_i, ap + k * GEMM_MR, GEMM_MR);
          gemm_transpose8(src + (GEMM_MR - 8) * as_i + k, as_i, ap + k * GEMM_MR + GEMM_MR - 8,
                          GEMM_MR);
          continue;
        }
        for (int r = 0; r < GEMM_MR; ++r) {
          const float *row = src + r * as_i + k;
          for (int u = 0; u < 8; ++u) ap[(k + u) * GEMM_MR + r] = row[u];
        }
      }
      for (; k < kc; ++k)
        for (int r = 0; r < GEMM_MR; ++r) ap[k * GEMM_MR + r] = src[r * as_i + k];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        float *dst = ap + k * GEMM_MR;
        for (int64_t r = 0; r < mr; ++r) dst[r] = src[r * as_i + k * as_k];
        for (int64_t r = mr; r < GEMM_MR; ++r) dst[r] = 0.0f;
      }
    }
  }
}

/* Packs B(0..kc, 0..nc) into NR-wide slivers: bp[s][k][j] = B(k, s*NR + j). */
static void gemm_pack_b(int64_t kc, int64_t nc, const float *b, int64_t bs_k, int64_t bs_j,
                        float *restrict bp) {
  for (int64_t j0 = 0; j0 < nc; j0 += GEMM_NR, bp += GEMM_NR * kc) {
    int64_t nr = gemm_min(GEMM_NR, nc - j0);
    const float *src = b + j0 * bs_j;
    if (bs_j == 1) {
      /* row-major B: each k is nr contiguous floats */
      for (int64_t k = 0; k < kc; ++k) {
        float *dst = bp + k * GEMM_NR;
        const float *row = src + k * bs_k;
        if (nr == GEMM_NR) {
          memcpy(dst, row, GEMM_NR * sizeof(float));
        } else {
          for (int64_t j = 0; j < nr; ++j) dst[j] = row[j];
          for (int64_t j = nr; j < GEMM_NR; ++j) dst[j] = 0.0f;
        }
      }
    } else if (bs_k == 1 && nr == GEMM_NR) {
      /* B^T: each column is contiguous in k; 8 x 8 transposes */
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8)
        for (int j = 0; j < GEMM_NR; j += 8)
          gemm_transpose8(src + j * bs_j + k, bs_j, bp + k * GEMM_NR + j, GEMM_NR);
      for (; k < kc; ++k)
        for (int j = 0; j < GEMM_NR; ++j) bp[k * GEMM_NR + j] = src[j * bs_j + k];
    } else {
      for (int64_t k = 0; k < kc; ++k) {
        float *dst = bp + k * GEMM_NR;
        for (int64_t j = 0; j < nr; ++j) dst[j] = src[k * bs_k + j * bs_j];
        for (int64_t j = nr; j < GEMM_NR; ++j) dst[j] = 0.0f;
      }
    }
  }
}

int GEMM_BLOCK_FN(const moai_sgemm_block_t *g) {
  enum { A_FLOATS = GEMM_MC * GEMM_KC, B_FLOATS = GEMM_KC * GEMM_NC };
  float *buf = moai_gemm_thread_buffer(A_FLOATS + B_FLOATS);
  if (!buf) return 0;
  float *ap = buf, *bp = buf + A_FLOATS;
  for (int64_t jc = 0; jc < g->n; jc += GEMM_NC) {
    int64_t nc = gemm_min(GEMM_NC, g->n - jc);
    for (int64_t pc = 0; pc < g->k; pc += GEMM_KC) {
      int64_t kc = gemm_min(GEMM_KC, g->k - pc);
      int accumulate = g->accumulate || pc > 0;
      gemm_pack_b(kc, nc, g->b + pc * g->bs_k + jc * g->bs_j, g->bs_k, g->bs_j, bp);
      for (int64_t ic = 0; ic < g->m; ic += GEMM_MC) {
        int64_t mc = gemm_min(GEMM_MC, g->m - ic);
        gemm_pack_a(mc, kc, g->a + ic * g->as_i + pc * g->as_k, g->as_i, g->as_k, ap);
        for (int64_t jr = 0; jr < nc; jr += GEMM_NR) {
          int nr = (int)gemm_min(GEMM_NR, nc - jr);
          const float *bs = bp + jr * kc;
          for (int64_t ir = 0; ir < mc; ir += GEMM_MR) {
            int mr = (int)gemm_min(GEMM_MR, mc - ir);
            gemm_ukernel(kc, ap + ir * kc, bs, g->c + (ic + ir) * g->ldc + jc + jr, g->ldc,
                         g->alpha, mr, nr, accumulate);
          }
        }
      }
    }
  }
  return 1;
}
