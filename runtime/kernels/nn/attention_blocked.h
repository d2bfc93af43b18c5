/* Blocked f32 attention (moai.attention, moai.attention_grad) around the
 * packed GEMM: the same algorithms as attention.c's row-at-a-time kernels
 * (FlashAttention, Dao et al. 2022, alg. 1 and 2; the loop order of
 * FlashAttention-2's backward), but a tile of AB_QB query rows meets a tile
 * of AB_KB keys at a time, so every product (q k^T, p v, do v^T, p^T do,
 * ds^T q, ds k) is one GEMM block on the ISA's micro-kernel instead of
 * dot products of one row.
 *
 * Tiles that the mask hides entirely are skipped: a mask entry at or below
 * -1e30 (the exporters' float-min or -inf) contributes exp(s - m) = 0
 * exactly to a row that sees some key, so leaving out a tile where every
 * entry is hidden changes nothing, provided every row of the query tile sees
 * some key somewhere (a fully masked row attends uniformly, as the unfused
 * softmax does, and is computed over every tile). Causal and sliding-window
 * masks skip about half of the tiles at the benchmark's sizes. With the
 * masks computed from indices (causal, window, key padding; attention.h)
 * and no additive mask, which tiles a row sees follows from its index and
 * the padding row alone; nothing [S, S] is read.
 *
 * Included by attention_avx512.c and attention_avx2.c, each compiled with
 * its ISA's flags, with AB_GEMM (the GEMM block function) and AB_SUFFIX set.
 * Scratch: three AB_QB x AB_KB tiles and a few rows on the stack (48 KiB);
 * nothing is allocated (the GEMM packs into its per-thread buffer). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "kernels/elementwise/fastmath.h"
#include "kernels/kernels.h"
#include "kernels/nn/attention.h"
#include "kernels/nn/gemm.h"

#define AB_QB 64
#define AB_KB 64
#define AB_MASKED (-1e30f) /* at or below: a hidden key */

#define AB_CAT2(a, b) a##b
#define AB_CAT(a, b) AB_CAT2(a, b)
#define AB_FN(name) AB_CAT(name, AB_SUFFIX)

static inline int64_t ab_min(int64_t a, int64_t b) { return a < b ? a : b; }

/* One GEMM block; the portable loops when the thread's packing buffer could
 * not be allocated (out of memory). */
static void ab_gemm(const moai_sgemm_block_t *g) {
  if (AB_GEMM(g)) return;
  for (int64_t i = 0; i < g->m; ++i)
    for (int64_t j = 0; j < g->n; ++j) {
      float acc = 0.0f;
      for (int64_t k = 0; k < g->k; ++k)
        acc += g->a[i * g->as_i + k * g->as_k] * g->b[k * g->bs_k + j * g->bs_j];
      float *c = g->c + i * g->ldc + j;
      *c = g->alpha * acc + (g->accumulate ? *c : 0.0f);
    }
}

/* Whether row i (keys [lo, hi] in causal/window range) sees some key of
 * [j0, j1) by the masks computed from indices alone: the range meets the
 * tile and, with key padding, some key there is not padding. */
static bool ab_tile_seen_indexed(const attn_problem_t *p, int64_t b, int64_t lo, int64_t hi,
                                 int64_t j0, int64_t j1) {
  int64_t a = j0 > lo ? j0 : lo, z = j1 - 1 < hi ? j1 - 1 : hi;
  if (a > z) return false;
  if (!p->kpad) return true;
  for (int64_t j = a; j <= z; ++j)
    if (!attn_key_padded(p, b, j)) return true;
  return false;
}

/* Which key tiles rows [i0, i0 + qn) of (b, h) see (vis[t] for tile t) and
 * whether every row sees some key: then hidden tiles may be skipped. A key
 * is hidden when its mask value (additive mask plus masked_value where the
 * indices hide it) is at or below AB_MASKED. Without an additive mask the
 * classification is analytic: row i sees the keys [lo, hi] that causal and
 * window leave, less padding, so a tile costs O(1) (a scan of the padding
 * row up to its first kept key). Without any mask every tile is seen. */
static bool ab_classify(const attn_problem_t *p, int64_t b, int64_t h, int64_t i0, int64_t qn,
                        bool *vis, int64_t ntiles) {
  const float *M = p->mask;
  const bool idx = p->indexed && (float)p->masked_value <= AB_MASKED;
  if (!M && !idx) {
    for (int64_t t = 0; t < ntiles; ++t) vis[t] = true;
    return false;
  }
  for (int64_t t = 0; t < ntiles; ++t) vis[t] = false;
  const float mv = (float)p->masked_value;
  bool every_row = true;
  for (int64_t r = 0; r < qn; ++r) {
    const float *mrow = M ? M + attn_mask_row(p, b, h, i0 + r) : NULL;
    int64_t lo, hi;
    attn_key_range(p, i0 + r, &lo, &hi);
    bool any = false;
    for (int64_t t = 0; t < ntiles; ++t) {
      int64_t j0 = t * AB_KB, j1 = ab_min(j0 + AB_KB, p->s);
      bool seen = false;
      if (!M) {
        seen = ab_tile_seen_indexed(p, b, lo, hi, j0, j1);
      } else {
        for (int64_t j = j0; j < j1 && !seen; ++j) {
          float v = mrow[p->mt == 1 ? 0 : j];
          if (p->indexed && attn_hidden(p, b, lo, hi, j)) v += mv;
          seen = v > AB_MASKED;
        }
      }
      vis[t] |= seen;
      any |= seen;
    }
    every_row &= any;
  }
  return every_row;
}

/* s[r][j] += mask value (b, h, i0 + r, j0 + j): the additive mask (broadcast
 * dims read once) plus masked_value where the indices hide the key, summed
 * first as the materialised mask would be. */
static void ab_add_mask(const attn_problem_t *p, int64_t b, int64_t h, int64_t i0, int64_t qn,
                        int64_t j0, int64_t kn, float *s) {
  const float *M = p->mask;
  if (!M && !p->indexed) return;
  const float mv = (float)p->masked_value;
  float padv[AB_KB]; /* masked_value at padding keys, else 0 */
  bool any_pad = false;
  for (int64_t j = 0; j < kn; ++j) {
    bool pad = attn_key_padded(p, b, j0 + j);
    padv[j] = pad ? mv : 0.0f;
    any_pad |= pad;
  }
  for (int64_t r = 0; r < qn; ++r) {
    float *sr = s + r * AB_KB;
    int64_t lo = 0, hi = p->s - 1;
    if (p->indexed) attn_key_range(p, i0 + r, &lo, &hi);
    if (!M) {
      if (!any_pad && lo <= j0 && hi >= j0 + kn - 1) continue; /* the tile is in range */
#pragma omp simd
      for (int64_t j = 0; j < kn; ++j) sr[j] += (j0 + j < lo || j0 + j > hi) ? mv : padv[j];
      continue;
    }
    const float *mrow = M + attn_mask_row(p, b, h, i0 + r);
    if (p->mt == 1) {
      float m0 = mrow[0];
#pragma omp simd
      for (int64_t j = 0; j < kn; ++j)
        sr[j] += m0 + ((j0 + j < lo || j0 + j > hi) ? mv : padv[j]);
    } else {
      mrow += j0;
#pragma omp simd
      for (int64_t j = 0; j < kn; ++j)
        sr[j] += mrow[j] + ((j0 + j < lo || j0 + j > hi) ? mv : padv[j]);
    }
  }
}

void AB_FN(moai_attn_fwd_blocked_)(const attn_problem_t *p, int ith, int nth) {
  const float *Q = p->q, *K = p->k, *V = p->v;
  float *O = p->o, *L = p->l;
  const int64_t S = p->s, D = p->d, rep = p->h / p->kvh;
  const int64_t nqb = (S + AB_QB - 1) / AB_QB, nkb = (S + AB_KB - 1) / AB_KB;
  long long begin, end;
  moai_split_range(p->b * p->h * nqb, ith, nth, &begin, &end);
  float sc[AB_QB * AB_KB], m[AB_QB], l[AB_QB];
  bool vis[4096 / AB_KB + 1];
  if (nkb > (int64_t)(sizeof(vis) / sizeof(vis[0]))) return; /* caller checks S */
  for (long long item = begin; item < end; ++item) {
    int64_t qb = item % nqb, bh = item / nqb, h = bh % p->h, b = bh / p->h;
    int64_t kv = (b * p->kvh + h / rep) * S * D;
    int64_t i0 = qb * AB_QB, qn = ab_min(AB_QB, S - i0);
    float *Ob = O + (bh * S + i0) * D;
    const float *Qb = Q + (bh * S + i0) * D;
    bool skip = ab_classify(p, b, h, i0, qn, vis, nkb);
    memset(Ob, 0, (size_t)(qn * D) * sizeof(float));
    for (int64_t r = 0; r < qn; ++r) m[r] = -INFINITY, l[r] = 0.0f;
    for (int64_t t = 0; t < nkb; ++t) {
      if (skip && !vis[t]) continue;
      int64_t j0 = t * AB_KB, kn = ab_min(AB_KB, S - j0);
      moai_sgemm_block_t g = {.m = qn, .n = kn, .k = D, .a = Qb, .as_i = D, .as_k = 1,
                              .b = K + kv + j0 * D, .bs_k = 1, .bs_j = D, .c = sc,
                              .ldc = AB_KB, .alpha = (float)p->scale, .accumulate = 0};
      ab_gemm(&g);
      ab_add_mask(p, b, h, i0, qn, j0, kn, sc);
      for (int64_t r = 0; r < qn; ++r) {
        float *sr = sc + r * AB_KB, bm = -INFINITY;
#pragma omp simd reduction(max : bm)
        for (int64_t j = 0; j < kn; ++j) bm = sr[j] > bm ? sr[j] : bm;
        if (bm == -INFINITY && m[r] == -INFINITY) { /* nothing seen yet */
          for (int64_t j = 0; j < kn; ++j) sr[j] = 0.0f;
          continue;
        }
        float nm = bm > m[r] ? bm : m[r], corr = moai_expf_fast(m[r] - nm), sum = 0.0f;
        if (corr != 1.0f) {
          float *orow = Ob + r * D;
#pragma omp simd
          for (int64_t d = 0; d < D; ++d) orow[d] *= corr;
        }
#pragma omp simd reduction(+ : sum)
        for (int64_t j = 0; j < kn; ++j) {
          float e = moai_expf_fast(sr[j] - nm);
          sr[j] = e;
          sum += e;
        }
        l[r] = l[r] * corr + sum;
        m[r] = nm;
      }
      moai_sgemm_block_t pv = {.m = qn, .n = D, .k = kn, .a = sc, .as_i = AB_KB, .as_k = 1,
                               .b = V + kv + j0 * D, .bs_k = D, .bs_j = 1, .c = Ob, .ldc = D,
                               .alpha = 1.0f, .accumulate = 1};
      ab_gemm(&pv);
    }
    for (int64_t r = 0; r < qn; ++r) {
      float *orow = Ob + r * D, lr = l[r];
#pragma omp simd
      for (int64_t d = 0; d < D; ++d) orow[d] = orow[d] / lr;
      if (L) L[bh * S + i0 + r] = m[r] + logf(lr);
    }
  }
}

/* Row maximum and 1 / sum for the backward's P = exp(s - m) / l: from the
 * saved lse (m = lse, 1 / l = 1), except for a row whose lse is below -1e30,
 * where every key was masked with float-min and rounding folded log(l) into
 * lse: its maximum and sum are recomputed from all keys. */
static void ab_row_stats(const attn_problem_t *p, int64_t b, int64_t h, int64_t bh, int64_t i,
                         int64_t kv, float *out_m, float *out_inv_l) {
  const float *LSE = p->lse, *Q = p->q, *K = p->k, *M = p->mask;
  const int64_t S = p->s, D = p->d;
  float lse = LSE[bh * S + i];
  if (!(lse < -1e30f)) {
    *out_m = lse, *out_inv_l = 1.0f;
    return;
  }
  const float *qi = Q + (bh * S + i) * D, *mrow = M ? M + attn_mask_row(p, b, h, i) : NULL;
  float m = -INFINITY, l = 0.0f, scale = (float)p->scale, mv = (float)p->masked_value;
  int64_t lo, hi;
  attn_key_range(p, i, &lo, &hi);
  for (int64_t j = 0; j < S; ++j) {
    const float *kj = K + kv + j * D;
    float dot = 0.0f;
    for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];
    float mask = (mrow ? mrow[p->mt == 1 ? 0 : j] : 0.0f) +
                 (p->indexed && attn_hidden(p, b, lo, hi, j) ? mv : 0.0f);
    float s = dot * scale + mask;
    if (s > m) {
      l = l * expf(m - s) + 1.0f;
      m = s;
    } else {
      l += expf(s - m);
    }
  }
  *out_m = m, *out_inv_l = 1.0f / l;
}

void AB_FN(moai_attn_bwd_blocked_)(const attn_problem_t *p, int ith, int nth) {
  const float *Q = p->q, *K = p->k, *V = p->v, *O = p->out, *DO = p->dout;
  float *DQ = p->dq, *DK = p->dk, *DV = p->dv;
  const int64_t S = p->s, D = p->d, rep = p->h / p->kvh;
  const int64_t nqb = (S + AB_QB - 1) / AB_QB, nkb = (S + AB_KB - 1) / AB_KB;
  const float scale = (float)p->scale;
  long long begin, end;
  moai_split_range(p->b * p->kvh, ith, nth, &begin, &end);
  float pt[AB_QB * AB_KB], dp[AB_QB * AB_KB], m[AB_QB], inv_l[AB_QB], di[AB_QB];
  bool vis[4096 / AB_KB + 1];
  if (nkb > (int64_t)(sizeof(vis) / sizeof(vis[0]))) return; /* caller checks S */
  for (long long unit = begin; unit < end; ++unit) {
    int64_t b = unit / p->kvh, g = unit % p->kvh, kv = unit * S * D;
    memset(DK + kv, 0, (size_t)(S * D) * sizeof(float));
    memset(DV + kv, 0, (size_t)(S * D) * sizeof(float));
    for (int64_t h = g * rep; h < (g + 1) * rep; ++h) {
      int64_t bh = b * p->h + h;
      memset(DQ + bh * S * D, 0, (size_t)(S * D) * sizeof(float));
      for (int64_t qb = 0; qb < nqb; ++qb) {
        int64_t i0 = qb * AB_QB, qn = ab_min(AB_QB, S - i0);
        const float *Qb = Q + (bh * S + i0) * D, *DOb = DO + (bh * S + i0) * D;
        const float *Ob = O + (bh * S + i0) * D;
        float *DQb = DQ + (bh * S + i0) * D;
        bool skip = ab_classify(p, b, h, i0, qn, vis, nkb);
        for (int64_t r = 0; r < qn; ++r) {
          const float *dor = DOb + r * D, *orow = Ob + r * D;
          float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
          for (int64_t d = 0; d < D; ++d) acc += dor[d] * orow[d];
          di[r] = acc;
          ab_row_stats(p, b, h, bh, i0 + r, kv, &m[r], &inv_l[r]);
        }
        for (int64_t t = 0; t < nkb; ++t) {
          if (skip && !vis[t]) continue;
          int64_t j0 = t * AB_KB, kn = ab_min(AB_KB, S - j0);
          const float *Kb = K + kv + j0 * D, *Vb = V + kv + j0 * D;
          moai_sgemm_block_t gs = {.m = qn, .n = kn, .k = D, .a = Qb, .as_i = D, .as_k = 1,
                                   .b = Kb, .bs_k = 1, .bs_j = D, .c = pt, .ldc = AB_KB,
                                   .alpha = scale, .accumulate = 0};
          ab_gemm(&gs);
          ab_add_mask(p, b, h, i0, qn, j0, kn, pt);
          moai_sgemm_block_t gp = {.m = qn, .n = kn, .k = D, .a = DOb, .as_i = D, .as_k = 1,
                                   .b = Vb, .bs_k = 1, .bs_j = D, .c = dp, .ldc = AB_KB,
                                   .alpha = 1.0f, .accumulate = 0};
          ab_gemm(&gp);
          for (int64_t r = 0; r < qn; ++r) {
            float *pr = pt + r * AB_KB, *dr = dp + r * AB_KB, mr = m[r], il = inv_l[r], dir = di[r];
#pragma omp simd
            for (int64_t j = 0; j < kn; ++j) {
              float pv = moai_expf_fast(pr[j] - mr) * il;
              pr[j] = pv;
              dr[j] = pv * (dr[j] - dir) * scale;
            }
          }
          /* dv += p^T do, dk += ds^T q, dq += ds k */
          moai_sgemm_block_t gv = {.m = kn, .n = D, .k = qn, .a = pt, .as_i = 1, .as_k = AB_KB,
                                   .b = DOb, .bs_k = D, .bs_j = 1, .c = DV + kv + j0 * D,
                                   .ldc = D, .alpha = 1.0f, .accumulate = 1};
          ab_gemm(&gv);
          moai_sgemm_block_t gk = {.m = kn, .n = D, .k = qn, .a = dp, .as_i = 1, .as_k = AB_KB,
                                   .b = Qb, .bs_k = D, .bs_j = 1, .c = DK + kv + j0 * D,
                                   .ldc = D, .alpha = 1.0f, .accumulate = 1};
          ab_gemm(&gk);
          moai_sgemm_block_t gq = {.m = qn, .n = D, .k = kn, .a = dp, .as_i = AB_KB, .as_k = 1,
                                   .b = Kb, .bs_k = D, .bs_j = 1, .c = DQb, .ldc = D,
                                   .alpha = 1.0f, .accumulate = 1};
          ab_gemm(&gq);
        }
      }
    }
  }
}
