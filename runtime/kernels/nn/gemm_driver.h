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

#include <string.h>

static inline int64_t gemm_min(int64_t a, int64_t b) { return a < b ? a : b; }

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
      /* row-major A: gather one column of MR rows per k, 8 k at a time so
       * each row is read in cache-line runs */
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8)
        for (int r = 0; r < GEMM_MR; ++r) {
          const float *row = src + r * as_i + k;
          for (int u = 0; u < 8; ++u) ap[(k + u) * GEMM_MR + r] = row[u];
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
      /* B^T: each column is contiguous in k; 8 k at a time as for A */
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8)
        for (int j = 0; j < GEMM_NR; ++j) {
          const float *col = src + j * bs_j + k;
          for (int u = 0; u < 8; ++u) bp[(k + u) * GEMM_NR + j] = col[u];
        }
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
