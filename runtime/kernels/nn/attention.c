/* Fused scaled-dot-product attention (moai.attention, made by moai-fuse) and
 * its gradient, f32 and f64.
 *
 * The mask of score (b, h, i, j) is the additive mask operand (if any) plus
 * masked_value where causal, window or key_padding hide key j from query i,
 * computed from the indices (attn_hidden in attention.h): causal+sliding-
 * window+padding attention never reads an [S, S] tensor.
 *
 * Forward: FlashAttention's online softmax (Dao et al., NeurIPS 2022, alg. 1)
 * one query row at a time: the keys are visited in blocks of ATTN_KB; each
 * block's scores s = scale * q.k + mask raise the running maximum m, the
 * running sum l and accumulator acc are rescaled by exp(m_old - m), and the
 * block's exp(s - m) and exp(s - m) * v are added. No [S, S] score matrix
 * exists; scratch is one block of scores and one accumulator row on the
 * stack. Grouped-query attention reads kv head h / (H / KVH) in place.
 * Threads split the (b, h, query block) triples.
 *
 * Backward (alg. 2 of the same paper, one query row at a time): with
 * P = exp(s - lse) recomputed per key, dP = dout.v, Di = dout.out,
 * dS = P (dP - Di): dq += scale dS k, dk += scale dS q, dv += P dout.
 * Threads split (b, kv head) pairs: each owns dk and dv of its kv head and
 * dq of the H / KVH query heads that read it, so nothing is shared.
 * A row whose lse is below -1e30 had every key masked with float-min (the
 * exporters' -3.4e38): rounding has folded log(l) into lse there, so that
 * row's maximum and sum are recomputed exactly in a first pass.
 *
 * A row whose every score is -inf gives NaN, as the unfused softmax does. */
#include <math.h>
#include <stdio.h>

#include "kernels/nn/attention.h"
#include "kernels/nn/nn_internal.h"

#define ATTN_KB 64     /* keys per block */
#define ATTN_QB 16     /* query rows per work item */
#define ATTN_MAX_D 512 /* head dimension the stack scratch holds */

/* The inner loops over the head dimension are written for the compiler to
 * vectorise: OpenMP simd reductions (the sums are reassociated across vector
 * lanes, within the kernel tests' bounds) and, through GCC's target_clones,
 * AVX-512 and AVX2 versions of each kernel chosen at load time from the CPU
 * (the rest of the runtime is built for baseline x86-64). */
#define ATTN_PRAGMA(x) _Pragma(#x)
#define ATTN_SIMD(...) ATTN_PRAGMA(omp simd __VA_ARGS__)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define ATTN_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define ATTN_CLONES
#endif

/* The mask value of key j for the row in scope (b, lo, hi, mrow): the
 * additive mask plus masked_value where the indices hide the key, summed
 * first as the materialised mask would be. */
#define ATTN_MASK_AT(T, j)                                                              \
  ((mrow ? mrow[p->mt == 1 ? 0 : (j)] : (T)0) +                                        \
   (p->indexed && attn_hidden(p, b, lo, hi, (j)) ? (T)p->masked_value : (T)0))

#define ATTN_FWD(name, T, EXP, LOG)                                                              \
  ATTN_CLONES static void name(const attn_problem_t *p, int ith, int nth) {            \
    const T *Q = p->q, *K = p->k, *V = p->v, *M = p->mask;                             \
    T *O = p->o, *L = p->l;                                                            \
    const int64_t S = p->s, D = p->d, rep = p->h / p->kvh;                             \
    const int64_t nqb = moai_nn_cdiv(S, ATTN_QB);                                      \
    const T scale = (T)p->scale;                                                       \
    long long begin, end;                                                              \
    moai_split_range(p->b * p->h * nqb, ith, nth, &begin, &end);                       \
    T sc[ATTN_KB], acc[ATTN_MAX_D];                                                    \
    for (long long item = begin; item < end; ++item) {                                 \
      int64_t qb = item % nqb, bh = item / nqb, h = bh % p->h, b = bh / p->h;          \
      int64_t kv = (b * p->kvh + h / rep) * S * D;                                     \
      int64_t i1 = (qb + 1) * ATTN_QB < S ? (qb + 1) * ATTN_QB : S;                    \
      for (int64_t i = qb * ATTN_QB; i < i1; ++i) {                                    \
        const T *qi = Q + (bh * S + i) * D;                                            \
        const T *mrow = M ? M + attn_mask_row(p, b, h, i) : NULL;                      \
        int64_t lo, hi;                                                                \
        attn_key_range(p, i, &lo, &hi);                                                \
        T m = -INFINITY, l = 0;                                                        \
        for (int64_t d = 0; d < D; ++d) acc[d] = 0;                                    \
        for (int64_t j0 = 0; j0 < S; j0 += ATTN_KB) {                                  \
          int64_t nj = S - j0 < ATTN_KB ? S - j0 : ATTN_KB;                            \
          T bm = -INFINITY;                                                            \
          for (int64_t j = 0; j < nj; ++j) {                                           \
            const T *kj = K + kv + (j0 + j) * D;                                       \
            T dot = 0;                                                                 \
            ATTN_SIMD(reduction(+ : dot))                                              \
            for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];                      \
            T s = dot * scale;                                                         \
            if (mrow || p->indexed) s += ATTN_MASK_AT(T, j0 + j);                      \
            sc[j] = s;                                                                 \
            if (s > bm) bm = s;                                                        \
          }                                                                            \
          if (bm == -INFINITY && m == -INFINITY)                                       \
            continue; /* nothing seen yet: an all -inf row ends as 0 / 0 */            \
          T nm = bm > m ? bm : m;                                                      \
          T corr = EXP(m - nm);                                                        \
          l *= corr;                                                                   \
          ATTN_SIMD()                                                                  \
          for (int64_t d = 0; d < D; ++d) acc[d] *= corr;                              \
          for (int64_t j = 0; j < nj; ++j) {                                           \
            T e = EXP(sc[j] - nm);                                                     \
            l += e;                                                                    \
            const T *vj = V + kv + (j0 + j) * D;                                       \
            ATTN_SIMD()                                                                \
            for (int64_t d = 0; d < D; ++d) acc[d] += e * vj[d];                       \
          }                                                                            \
          m = nm;                                                                      \
        }                                                                              \
        T *oi = O + (bh * S + i) * D;                                                  \
        for (int64_t d = 0; d < D; ++d) oi[d] = acc[d] / l;                            \
        if (L) L[bh * S + i] = m + LOG(l);                                             \
      }                                                                                \
    }                                                                                  \
  }

ATTN_FWD(attn_fwd_f32, float, expf, logf)
ATTN_FWD(attn_fwd_f64, double, exp, log)

#define ATTN_BWD(name, T, EXP)                                                              \
  ATTN_CLONES static void name(const attn_problem_t *p, int ith, int nth) {            \
    const T *Q = p->q, *K = p->k, *V = p->v, *M = p->mask;                             \
    const T *O = p->out, *LSE = p->lse, *DO = p->dout;                                 \
    T *DQ = p->dq, *DK = p->dk, *DV = p->dv;                                           \
    const int64_t S = p->s, D = p->d, rep = p->h / p->kvh;                             \
    const T scale = (T)p->scale;                                                       \
    long long begin, end;                                                              \
    moai_split_range(p->b * p->kvh, ith, nth, &begin, &end);                           \
    for (long long unit = begin; unit < end; ++unit) {                                 \
      int64_t b = unit / p->kvh, g = unit % p->kvh, kv = unit * S * D;                 \
      for (int64_t e = 0; e < S * D; ++e) DK[kv + e] = DV[kv + e] = 0;                 \
      for (int64_t h = g * rep; h < (g + 1) * rep; ++h) {                              \
        int64_t bh = b * p->h + h;                                                     \
        for (int64_t e = 0; e < S * D; ++e) DQ[bh * S * D + e] = 0;                    \
        for (int64_t i = 0; i < S; ++i) {                                              \
          const T *qi = Q + (bh * S + i) * D, *oi = O + (bh * S + i) * D;              \
          const T *doi = DO + (bh * S + i) * D;                                        \
          T *dqi = DQ + (bh * S + i) * D;                                              \
          const T *mrow = M ? M + attn_mask_row(p, b, h, i) : NULL;                    \
          int64_t lo, hi;                                                              \
          attn_key_range(p, i, &lo, &hi);                                              \
          T di = 0;                                                                    \
          ATTN_SIMD(reduction(+ : di))                                                 \
          for (int64_t d = 0; d < D; ++d) di += doi[d] * oi[d];                        \
          T lse = LSE[bh * S + i], m = lse, inv_l = 1;                                 \
          if (lse < (T)-1e30) { /* see the header: recompute max and sum */            \
            m = -INFINITY;                                                             \
            T l = 0;                                                                   \
            for (int64_t j = 0; j < S; ++j) {                                          \
              const T *kj = K + kv + j * D;                                            \
              T dot = 0;                                                               \
              for (int64_t d = 0; d < D; ++d) dot += qi[d] * kj[d];                    \
              T s = dot * scale + ATTN_MASK_AT(T, j);                                  \
              if (s > m) {                                                             \
                l = l * EXP(m - s) + 1;                                                \
                m = s;                                                                 \
              } else {                                                                 \
                l += EXP(s - m);                                                       \
              }                                                                        \
            }                                                                          \
            inv_l = 1 / l;                                                             \
          }                                                                            \
          for (int64_t j = 0; j < S; ++j) {                                            \
            const T *kj = K + kv + j * D, *vj = V + kv + j * D;                        \
            T dot = 0, dp = 0;                                                         \
            ATTN_SIMD(reduction(+ : dot, dp))                                          \
            for (int64_t d = 0; d < D; ++d) {                                          \
              dot += qi[d] * kj[d];                                                    \
              dp += doi[d] * vj[d];                                                    \
            }                                                                          \
            T s = dot * scale + ATTN_MASK_AT(T, j);                                    \
            T pr = EXP(s - m) * inv_l;                                                 \
            T ds = pr * (dp - di) * scale;                                             \
            T *dkj = DK + kv + j * D, *dvj = DV + kv + j * D;                          \
            ATTN_SIMD()                                                                \
            for (int64_t d = 0; d < D; ++d) {                                          \
              dqi[d] += ds * kj[d];                                                    \
              dkj[d] += ds * qi[d];                                                    \
              dvj[d] += pr * doi[d];                                                   \
            }                                                                          \
          }                                                                            \
        }                                                                              \
      }                                                                                \
    }                                                                                  \
  }

ATTN_BWD(attn_bwd_f32, float, expf)
ATTN_BWD(attn_bwd_f64, double, exp)

/* Bytes of an integer or bool element; 0 for other types. */
static int64_t attn_int_bytes(int32_t dtype) {
  switch (dtype) {
  case MOAI_ABI_BOOL: case MOAI_ABI_U8: case MOAI_ABI_I8: return 1;
  case MOAI_ABI_U16: case MOAI_ABI_I16: return 2;
  case MOAI_ABI_U32: case MOAI_ABI_I32: return 4;
  case MOAI_ABI_U64: case MOAI_ABI_I64: return 8;
  default: return 0;
  }
}

/* Reads and checks the shapes shared by both kernels; false after a
 * failure report (thread 0). */
static bool attn_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                       const char *kname, const moai_tensor_t *mask_t,
                       const moai_tensor_t *kpad_t, attn_problem_t *p) {
  const moai_tensor_t *q = moai_op_in(op, 0), *k = moai_op_in(op, 1), *v = moai_op_in(op, 2);
  moai_attrs_attention_t a;
  char msg[160];
  msg[0] = 0;
  if (!moai_kernel_attrs_load(op, &a, sizeof(a), sizeof(float)))
    snprintf(msg, sizeof(msg), "%s: missing attributes", kname);
  else if (q->rank != 4 || k->rank != 4 || v->rank != 4)
    snprintf(msg, sizeof(msg), "%s: q, k and v must have rank 4", kname);
  else if (k->dims[1] <= 0 || q->dims[1] % k->dims[1] != 0 || q->dims[0] != k->dims[0] ||
           q->dims[2] != k->dims[2] || q->dims[3] != k->dims[3] ||
           v->dims[0] != k->dims[0] || v->dims[1] != k->dims[1] || v->dims[2] != k->dims[2] ||
           v->dims[3] != k->dims[3])
    snprintf(msg, sizeof(msg), "%s: q [B,H,S,D] and k, v [B,KVH,S,D] disagree", kname);
  else if (q->dims[3] > ATTN_MAX_D)
    snprintf(msg, sizeof(msg), "%s: head dimension %lld above %d", kname,
             (long long)q->dims[3], ATTN_MAX_D);
  else if (k->dtype != q->dtype || v->dtype != q->dtype ||
           (mask_t && mask_t->dtype != q->dtype))
    snprintf(msg, sizeof(msg), "%s: operands of different dtypes", kname);
  else if (mask_t && (mask_t->rank != 4 ||
                      (mask_t->dims[0] != 1 && mask_t->dims[0] != q->dims[0]) ||
                      (mask_t->dims[1] != 1 && mask_t->dims[1] != q->dims[1]) ||
                      (mask_t->dims[2] != 1 && mask_t->dims[2] != q->dims[2]) ||
                      (mask_t->dims[3] != 1 && mask_t->dims[3] != q->dims[2])))
    snprintf(msg, sizeof(msg), "%s: mask does not broadcast to [B,H,S,S]", kname);
  else if (kpad_t && (kpad_t->rank != 2 || kpad_t->dims[0] != q->dims[0] ||
                      kpad_t->dims[1] != q->dims[2] || attn_int_bytes(kpad_t->dtype) == 0))
    snprintf(msg, sizeof(msg), "%s: key_padding must be an integer or bool [B,S] = [%lld,%lld]",
             kname, (long long)q->dims[0], (long long)q->dims[2]);
  else if (a.window < 0)
    snprintf(msg, sizeof(msg), "%s: negative window %lld", kname, (long long)a.window);
  if (msg[0]) {
    if (ith == 0) moai_kernel_fail(ex, op, msg);
    return false;
  }
  *p = (attn_problem_t){.b = q->dims[0], .h = q->dims[1], .kvh = k->dims[1], .s = q->dims[2],
                        .d = q->dims[3], .scale = a.scale,
                        .q = moai_tensor_ptr(ex, q), .k = moai_tensor_ptr(ex, k),
                        .v = moai_tensor_ptr(ex, v), .window = a.window,
                        .causal = a.causal != 0, .masked_value = a.masked_value};
  if (kpad_t) p->kpad = moai_tensor_ptr(ex, kpad_t), p->kpad_es = attn_int_bytes(kpad_t->dtype);
  p->indexed = p->causal || p->window > 0 || p->kpad;
  if (mask_t) {
    p->mask = moai_tensor_ptr(ex, mask_t);
    p->mb = mask_t->dims[0], p->mh = mask_t->dims[1], p->ms = mask_t->dims[2],
    p->mt = mask_t->dims[3];
  }
  return true;
}

static const moai_tensor_t *attn_opt_in(const moai_op_desc_t *op, uint32_t i) {
  return op->n_in > i && moai_op_in(op, i)->region != MOAI_REGION_NONE ? moai_op_in(op, i) : NULL;
}

typedef void (*attn_f32_fn_t)(const attn_problem_t *p, int ith, int nth);

/* The blocked kernels' tile bookkeeping covers sequences up to this. */
#define ATTN_BLOCKED_MAX_S 4096

static void attention_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                          attn_f32_fn_t blocked) {
  attn_problem_t p;
  if (op->n_in < 3 || op->n_out < 1) {
    if (ith == 0)
      moai_kernel_fail(ex, op, "attention: expects q, k, v, mask?, key_padding? -> out, lse?");
    return;
  }
  if (!attn_setup(ex, op, ith, "attention", attn_opt_in(op, 3), attn_opt_in(op, 4), &p)) return;
  p.o = moai_tensor_ptr(ex, moai_op_out(op, 0));
  p.l = op->n_out > 1 ? moai_tensor_ptr(ex, moai_op_out(op, 1)) : NULL;
  int32_t dtype = moai_op_in(op, 0)->dtype;
  if (dtype == MOAI_ABI_F32 && blocked && p.s <= ATTN_BLOCKED_MAX_S) blocked(&p, ith, nth);
  else if (dtype == MOAI_ABI_F32) attn_fwd_f32(&p, ith, nth);
  else if (dtype == MOAI_ABI_F64) attn_fwd_f64(&p, ith, nth);
  else moai_nn_fail_dtype(ex, op, ith, "attention", dtype);
}

static void attention_grad_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                               attn_f32_fn_t blocked) {
  attn_problem_t p;
  if (op->n_in < 6 || op->n_out < 3) {
    if (ith == 0)
      moai_kernel_fail(ex, op,
                       "attention_grad: expects q, k, v, out, lse, grad, mask?, key_padding? "
                       "-> dq, dk, dv");
    return;
  }
  if (!attn_setup(ex, op, ith, "attention_grad", attn_opt_in(op, 6), attn_opt_in(op, 7), &p))
    return;
  p.out = moai_tensor_ptr(ex, moai_op_in(op, 3));
  p.lse = moai_tensor_ptr(ex, moai_op_in(op, 4));
  p.dout = moai_tensor_ptr(ex, moai_op_in(op, 5));
  p.dq = moai_tensor_ptr(ex, moai_op_out(op, 0));
  p.dk = moai_tensor_ptr(ex, moai_op_out(op, 1));
  p.dv = moai_tensor_ptr(ex, moai_op_out(op, 2));
  int32_t dtype = moai_op_in(op, 0)->dtype;
  if (dtype == MOAI_ABI_F32 && blocked && p.s <= ATTN_BLOCKED_MAX_S) blocked(&p, ith, nth);
  else if (dtype == MOAI_ABI_F32) attn_bwd_f32(&p, ith, nth);
  else if (dtype == MOAI_ABI_F64) attn_bwd_f64(&p, ith, nth);
  else moai_nn_fail_dtype(ex, op, ith, "attention_grad", dtype);
}

/* Row-at-a-time kernels (every ISA's f64, the generic table's f32) and the
 * blocked f32 kernels on the AVX2 and AVX-512 GEMMs. */
static void attention_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  attention_run(ex, op, ith, nth, NULL);
}
static void attention_grad_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                  int nth) {
  attention_grad_run(ex, op, ith, nth, NULL);
}
static void attention_kernel_avx2(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                  int nth) {
  attention_run(ex, op, ith, nth, moai_attn_fwd_blocked_avx2);
}
static void attention_grad_kernel_avx2(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                       int nth) {
  attention_grad_run(ex, op, ith, nth, moai_attn_bwd_blocked_avx2);
}
static void attention_kernel_avx512(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                    int nth) {
  attention_run(ex, op, ith, nth, moai_attn_fwd_blocked_avx512);
}
static void attention_grad_kernel_avx512(const moai_exec_t *ex, const moai_op_desc_t *op,
                                         int ith, int nth) {
  attention_grad_run(ex, op, ith, nth, moai_attn_bwd_blocked_avx512);
}

/* ---- rms_norm and rms_norm_grad ----
 * y = scale * (x / sqrt(mean(x^2) + eps)) in the order of the unfused chain
 * (pow, reduce_mean, add, sqrt, div, mul) with the mean summed in double.
 * Gradient, with r = 1 / sqrt(mean(x^2) + eps) and gs = dy * scale over a
 * row of N: dx = r gs - x r^3 sum(gs x) / N, dscale = sum over rows of
 * dy x r. Threads own rows of dx and, separately, columns of dscale (which
 * sum over every row, so each thread recomputes every row's r rather than
 * sharing them through scratch or a barrier). */

#define RMS_KERNELS(SUF, T)                                                            \
  static T rms_den_##SUF(const T *x, int64_t n, double eps) {                          \
    double ss = 0.0;                                                                   \
    for (int64_t c = 0; c < n; ++c) ss += (double)x[c] * (double)x[c];                 \
    T ms = (T)(ss / (double)n);                                                        \
    return (T)sqrt((T)(ms + (T)eps));                                                  \
  }                                                                                    \
  static void rms_fwd_##SUF(const T *X, const T *W, T *Y, int64_t rows, int64_t n,     \
                            double eps, int ith, int nth) {                            \
    long long begin, end;                                                              \
    moai_split_range(rows, ith, nth, &begin, &end);                                    \
    for (long long r = begin; r < end; ++r) {                                          \
      const T *x = X + r * n;                                                          \
      T den = rms_den_##SUF(x, n, eps), *y = Y + r * n;                                \
      for (int64_t c = 0; c < n; ++c) y[c] = W[c] * (x[c] / den);                      \
    }                                                                                  \
  }                                                                                    \
  static void rms_bwd_##SUF(const T *X, const T *W, const T *G, T *DX, T *DW,          \
                            int64_t rows, int64_t n, double eps, int ith, int nth) {   \
    long long begin, end;                                                              \
    moai_split_range(rows, ith, nth, &begin, &end);                                    \
    for (long long r = begin; r < end; ++r) {                                          \
      const T *x = X + r * n, *g = G + r * n;                                          \
      double inv = 1.0 / (double)rms_den_##SUF(x, n, eps), dot = 0.0;                  \
      for (int64_t c = 0; c < n; ++c) dot += (double)g[c] * (double)W[c] * (double)x[c]; \
      double k = inv * inv * inv * dot / (double)n;                                    \
      for (int64_t c = 0; c < n; ++c)                                                  \
        DX[r * n + c] = (T)(inv * (double)g[c] * (double)W[c] - (double)x[c] * k);     \
    }                                                                                  \
    moai_split_range(n, ith, nth, &begin, &end);                                       \
    if (begin >= end) return;                                                          \
    double acc[256];                                                                   \
    for (long long c0 = begin; c0 < end; c0 += 256) {                                  \
      long long c1 = c0 + 256 < end ? c0 + 256 : end;                                  \
      for (long long c = c0; c < c1; ++c) acc[c - c0] = 0.0;                           \
      for (int64_t r = 0; r < rows; ++r) {                                             \
        const T *x = X + r * n, *g = G + r * n;                                        \
        double inv = 1.0 / (double)rms_den_##SUF(x, n, eps);                           \
        for (long long c = c0; c < c1; ++c)                                            \
          acc[c - c0] += (double)g[c] * ((double)x[c] * inv);                          \
      }                                                                                \
      for (long long c = c0; c < c1; ++c) DW[c] = (T)acc[c - c0];                      \
    }                                                                                  \
  }

RMS_KERNELS(f32, float)
RMS_KERNELS(f64, double)

static bool rms_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                      const char *kname, uint32_t n_in, uint32_t n_out, double *eps,
                      int64_t *rows, int64_t *n) {
  char msg[128];
  msg[0] = 0;
  moai_attrs_rms_norm_t a;
  if (op->n_in < n_in || op->n_out < n_out) {
    snprintf(msg, sizeof(msg), "%s: wrong operand or result count", kname);
  } else if (!moai_kernel_attrs_load(op, &a, sizeof(a), sizeof(float))) {
    snprintf(msg, sizeof(msg), "%s: missing attributes", kname);
  } else {
    const moai_tensor_t *x = moai_op_in(op, 0), *w = moai_op_in(op, 1);
    if (x->rank < 1 || moai_tensor_numel(w) != x->dims[x->rank - 1] || w->dtype != x->dtype)
      snprintf(msg, sizeof(msg), "%s: scale must hold the last axis's %lld %s values", kname,
               x->rank ? (long long)x->dims[x->rank - 1] : 0LL, moai_nn_dtype_name(x->dtype));
    else {
      *eps = a.epsilon;
      *n = x->dims[x->rank - 1];
      *rows = *n ? moai_tensor_numel(x) / *n : 0;
    }
  }
  if (msg[0]) {
    if (ith == 0) moai_kernel_fail(ex, op, msg);
    return false;
  }
  return true;
}

static void rms_norm_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  double eps = 0.0;
  int64_t rows = 0, n = 0;
  if (!rms_setup(ex, op, ith, "rms_norm", 2, 1, &eps, &rows, &n)) return;
  const void *x = moai_tensor_ptr(ex, moai_op_in(op, 0)), *w = moai_tensor_ptr(ex, moai_op_in(op, 1));
  void *y = moai_tensor_ptr(ex, moai_op_out(op, 0));
  int32_t dtype = moai_op_in(op, 0)->dtype;
  if (dtype == MOAI_ABI_F32) rms_fwd_f32(x, w, y, rows, n, eps, ith, nth);
  else if (dtype == MOAI_ABI_F64) rms_fwd_f64(x, w, y, rows, n, eps, ith, nth);
  else moai_nn_fail_dtype(ex, op, ith, "rms_norm", dtype);
}

static void rms_norm_grad_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                 int nth) {
  double eps = 0.0;
  int64_t rows = 0, n = 0;
  if (!rms_setup(ex, op, ith, "rms_norm_grad", 3, 2, &eps, &rows, &n)) return;
  const void *x = moai_tensor_ptr(ex, moai_op_in(op, 0)), *w = moai_tensor_ptr(ex, moai_op_in(op, 1));
  const void *g = moai_tensor_ptr(ex, moai_op_in(op, 2));
  void *dx = moai_tensor_ptr(ex, moai_op_out(op, 0)), *dw = moai_tensor_ptr(ex, moai_op_out(op, 1));
  int32_t dtype = moai_op_in(op, 0)->dtype;
  if (dtype == MOAI_ABI_F32) rms_bwd_f32(x, w, g, dx, dw, rows, n, eps, ith, nth);
  else if (dtype == MOAI_ABI_F64) rms_bwd_f64(x, w, g, dx, dw, rows, n, eps, ith, nth);
  else moai_nn_fail_dtype(ex, op, ith, "rms_norm_grad", dtype);
}

/* The unit tests compare each ISA's kernels with the unfused reference
 * kernels (matmul, softmax, the elementwise chain). */
void moai_nn_register_fused(moai_isa_t isa, moai_kernel_fn_t *table) {
  table[MOAI_KERNEL_ATTENTION] = isa == MOAI_ISA_AVX512 ? attention_kernel_avx512
                                 : isa == MOAI_ISA_AVX2 ? attention_kernel_avx2
                                                        : attention_kernel;
  table[MOAI_KERNEL_ATTENTION_GRAD] = isa == MOAI_ISA_AVX512 ? attention_grad_kernel_avx512
                                      : isa == MOAI_ISA_AVX2 ? attention_grad_kernel_avx2
                                                             : attention_grad_kernel;
  table[MOAI_KERNEL_RMS_NORM] = rms_norm_kernel;
  table[MOAI_KERNEL_RMS_NORM_GRAD] = rms_norm_grad_kernel;
}
