/* Gradients of BatchNormalization (training mode) and LayerNormalization
 * (norm.c), f32 and f64. Statistics are recomputed from x exactly as the
 * forward kernels compute them (two passes, in double), and every sum is
 * taken in double, in both versions; the optimised kernels differ in fusing
 * the passes and doing the per-element arithmetic in the tensor's type with
 * hoisted factors.
 *
 * With xhat = (x - mean) * inv, inv = 1 / sqrt(var + eps) (biased variance)
 * over a group of M elements, and gs = dy * scale (PyTorch's
 * batch_norm_backward and layer_norm_backward):
 *   dx     = inv * (gs - sum(gs) / M - xhat * sum(gs * xhat) / M)
 *   dscale = sum over the other axes of dy * xhat,  dbias = ... of dy.
 *
 * batch_normalization_grad: operands x [N, C, s...], scale [C], dy; outputs
 *   dx, dscale [C], dbias [C]; groups are channels (over N and s...). Each
 *   thread owns whole channels, so every output is thread-local.
 * layer_normalization_grad: operands x, scale, dy; outputs dx, dscale and
 *   dbias (scale's shape); groups are rows: the leading axes [0, axis), each
 *   normalised over [axis, rank); scale broadcasts over the normalised axes
 *   only (dims of 1 elsewhere). Threads own rows of dx and, separately,
 *   elements of dscale/dbias: those sum over every row, so each thread
 *   recomputes the statistics of all rows (two passes over x) rather than
 *   sharing them through scratch or a barrier; the optimised version keeps
 *   the statistics of a block of rows on the stack and sums the block's
 *   contribution to a run of its elements in double. */
#include <math.h>
#include <stddef.h>

#include "kernels/grad/grad_nn.h"

/* ---- batch_normalization_grad ---- */

typedef struct bng_problem_t {
  int64_t n, c, s; /* x viewed as [n, c, s] */
  const void *x, *scale, *dy;
  void *dx, *dscale, *dbias;
  double eps;
} bng_problem_t;

#define BNG_REF(name, T, STATS)                                                  \
  static void name(const bng_problem_t *p, int ith, int nth) {                   \
    const T *X = p->x, *S = p->scale, *DY = p->dy;                               \
    T *DX = p->dx, *DS = p->dscale, *DB = p->dbias;                              \
    double cnt = (double)(p->n * p->s);                                          \
    long long begin, end;                                                        \
    moai_split_range(p->c, ith, nth, &begin, &end);                              \
    for (long long c = begin; c < end; ++c) {                                    \
      double mean, var, sum_g = 0.0, sum_gxhat = 0.0;                            \
      STATS(p->x, p->n, p->c, p->s, c, &mean, &var);                             \
      double inv = 1.0 / sqrt(var + p->eps);                                     \
      for (int64_t n = 0; n < p->n; ++n)                                         \
        for (int64_t i = 0; i < p->s; ++i) {                                     \
          int64_t e = (n * p->c + c) * p->s + i;                                 \
          sum_g += (double)DY[e];                                                \
          sum_gxhat += (double)DY[e] * ((double)X[e] - mean) * inv;              \
        }                                                                        \
      for (int64_t n = 0; n < p->n; ++n)                                         \
        for (int64_t i = 0; i < p->s; ++i) {                                     \
          int64_t e = (n * p->c + c) * p->s + i;                                 \
          double xhat = ((double)X[e] - mean) * inv;                             \
          DX[e] = (T)((double)S[c] * inv *                                       \
                      ((double)DY[e] - sum_g / cnt - xhat * sum_gxhat / cnt));   \
        }                                                                        \
      DS[c] = (T)sum_gxhat;                                                      \
      DB[c] = (T)sum_g;                                                          \
    }                                                                            \
  }

BNG_REF(bng_ref_f32, float, moai_nn_channel_stats_f32)
BNG_REF(bng_ref_f64, double, moai_nn_channel_stats_f64)

/* dx = dy * k1 + (x - mean) * k2 + k3 with k1 = scale * inv,
 * k2 = -k1 * inv * dscale / M, k3 = -k1 * dbias / M. */
#define BNG_OPT(name, T, STATS)                                                  \
  static void name(const bng_problem_t *p, int ith, int nth) {                   \
    const T *S = p->scale;                                                       \
    double cnt = (double)(p->n * p->s);                                          \
    long long begin, end;                                                        \
    moai_split_range(p->c, ith, nth, &begin, &end);                              \
    for (long long c = begin; c < end; ++c) {                                    \
      double mean, var, sum_g = 0.0, sum_gd = 0.0;                               \
      STATS(p->x, p->n, p->c, p->s, c, &mean, &var);                             \
      double inv = 1.0 / sqrt(var + p->eps);                                     \
      T m = (T)mean;                                                             \
      for (int64_t n = 0; n < p->n; ++n) {                                       \
        const T *restrict xp = (const T *)p->x + (n * p->c + c) * p->s;          \
        const T *restrict gp = (const T *)p->dy + (n * p->c + c) * p->s;         \
        for (int64_t i = 0; i < p->s; ++i) {                                     \
          sum_g += (double)gp[i];                                                \
          sum_gd += (double)gp[i] * ((double)xp[i] - mean);                      \
        }                                                                        \
      }                                                                          \
      double dscale = sum_gd * inv, k1d = (double)S[c] * inv;                    \
      T k1 = (T)k1d, k2 = (T)(-k1d * inv * dscale / cnt), k3 = (T)(-k1d * sum_g / cnt); \
      for (int64_t n = 0; n < p->n; ++n) {                                       \
        const T *restrict xp = (const T *)p->x + (n * p->c + c) * p->s;          \
        const T *restrict gp = (const T *)p->dy + (n * p->c + c) * p->s;         \
        T *restrict dxp = (T *)p->dx + (n * p->c + c) * p->s;                    \
        for (int64_t i = 0; i < p->s; ++i) dxp[i] = gp[i] * k1 + (xp[i] - m) * k2 + k3; \
      }                                                                          \
      ((T *)p->dscale)[c] = (T)dscale;                                           \
      ((T *)p->dbias)[c] = (T)sum_g;                                             \
    }                                                                            \
  }

BNG_OPT(bng_opt_f32, float, moai_nn_channel_stats_f32)
BNG_OPT(bng_opt_f64, double, moai_nn_channel_stats_f64)

static bool grad_same_dims(const moai_tensor_t *a, const moai_tensor_t *b) {
  if (a->rank != b->rank) return false;
  for (int32_t d = 0; d < a->rank; ++d)
    if (a->dims[d] != b->dims[d]) return false;
  return true;
}

/* The dtype that x, scale, dy and the three results share, f32 or f64;
 * false, reported once, when they differ or it is another. */
static bool norm_grad_dtype(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                            const char *kernel, int32_t *out_dtype) {
  int32_t dtype = moai_op_in(op, 0)->dtype;
  bool same = true;
  for (uint32_t i = 0; i < 3; ++i)
    same = same && moai_op_in(op, i)->dtype == dtype && moai_op_out(op, i)->dtype == dtype;
  if (!same) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: operand dtypes differ", kernel);
    moai_grad_fail(ex, op, ith, msg);
    return false;
  }
  if (dtype != MOAI_ABI_F32 && dtype != MOAI_ABI_F64) {
    moai_nn_fail_dtype(ex, op, ith, kernel, dtype);
    return false;
  }
  *out_dtype = dtype;
  return true;
}

static void bng_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                    int optimised) {
  const moai_tensor_t *tx = moai_op_in(op, 0), *ts = moai_op_in(op, 1), *tdy = moai_op_in(op, 2);
  int32_t dtype;
  if (!norm_grad_dtype(ex, op, ith, "batch_normalization_grad", &dtype)) return;
  moai_attrs_batch_norm_t at;
  if (!moai_kernel_attrs_load(op, &at, sizeof at, sizeof at)) {
    moai_grad_fail(ex, op, ith, "batch_normalization_grad: missing attributes");
    return;
  }
  bng_problem_t p = {0};
  p.n = tx->dims[0];
  p.c = tx->rank > 1 ? tx->dims[1] : 1;
  p.s = 1;
  for (int32_t d = 2; d < tx->rank; ++d) p.s *= tx->dims[d];
  if (!grad_same_dims(tdy, tx) || moai_tensor_numel(ts) != p.c ||
      moai_tensor_numel(moai_op_out(op, 1)) != p.c || moai_tensor_numel(moai_op_out(op, 2)) != p.c) {
    moai_grad_fail(ex, op, ith, "batch_normalization_grad: operand shapes disagree");
    return;
  }
  p.x = moai_tensor_ptr(ex, tx);
  p.scale = moai_tensor_ptr(ex, ts);
  p.dy = moai_tensor_ptr(ex, tdy);
  p.dx = moai_tensor_ptr(ex, moai_op_out(op, 0));
  p.dscale = moai_tensor_ptr(ex, moai_op_out(op, 1));
  p.dbias = moai_tensor_ptr(ex, moai_op_out(op, 2));
  p.eps = at.epsilon;
  int f64 = dtype == MOAI_ABI_F64;
  if (optimised)
    (f64 ? bng_opt_f64 : bng_opt_f32)(&p, ith, nth);
  else
    (f64 ? bng_ref_f64 : bng_ref_f32)(&p, ith, nth);
}

/* ---- layer_normalization_grad ---- */

typedef struct lng_problem_t {
  int64_t rows, cols, ns; /* ns: scale's element count */
  const moai_tensor_t *tx, *tscale;
  const void *x, *scale, *dy;
  void *dx, *dscale, *dbias;
  int scale_cols;         /* scale's offset of column j is j (ns == cols) */
  double eps;
} lng_problem_t;

/* scale's element for column j: scale has dims of 1 over the row axes, so
 * the offset depends on the column alone. */
static inline int64_t lng_scale_offset(const lng_problem_t *p, int64_t j) {
  return p->scale_cols ? j : p->ns == 1 ? 0 : moai_nn_bcast_offset(p->tscale, p->tx, j);
}

/* Reference: dx row by row; each dscale/dbias element sums, over every row,
 * the columns that map to it. */
#define LNG_REF(name, T, STATS)                                                  \
  static void name(const lng_problem_t *p, int ith, int nth) {                   \
    const T *X = p->x, *S = p->scale, *DY = p->dy;                               \
    T *DX = p->dx;                                                               \
    double cols = (double)p->cols;                                               \
    long long begin, end;                                                        \
    moai_split_range(p->rows, ith, nth, &begin, &end);                           \
    for (long long r = begin; r < end; ++r) {                                    \
      double mean, inv, s1 = 0.0, s2 = 0.0;                                      \
      STATS((const T *)p->x + r * p->cols, p->cols, p->eps, &mean, &inv);        \
      for (int64_t j = 0; j < p->cols; ++j) {                                    \
        int64_t e = r * p->cols + j;                                             \
        double gs = (double)DY[e] * (double)S[lng_scale_offset(p, j)];           \
        s1 += gs;                                                                \
        s2 += gs * ((double)X[e] - mean) * inv;                                  \
      }                                                                          \
      for (int64_t j = 0; j < p->cols; ++j) {                                    \
        int64_t e = r * p->cols + j;                                             \
        double gs = (double)DY[e] * (double)S[lng_scale_offset(p, j)];           \
        double xhat = ((double)X[e] - mean) * inv;                               \
        DX[e] = (T)(inv * (gs - s1 / cols - xhat * s2 / cols));                  \
      }                                                                          \
    }                                                                            \
    moai_split_range(p->ns, ith, nth, &begin, &end);                             \
    for (long long k = begin; k < end; ++k) {                                    \
      double ds = 0.0, db = 0.0;                                                 \
      for (int64_t r = 0; r < p->rows; ++r) {                                    \
        double mean, inv;                                                        \
        STATS((const T *)p->x + r * p->cols, p->cols, p->eps, &mean, &inv);      \
        for (int64_t j = 0; j < p->cols; ++j) {                                  \
          if (lng_scale_offset(p, j) != k) continue;                             \
          int64_t e = r * p->cols + j;                                           \
          ds += (double)DY[e] * ((double)X[e] - mean) * inv;                     \
          db += (double)DY[e];                                                   \
        }                                                                        \
      }                                                                          \
      ((T *)p->dscale)[k] = (T)ds;                                               \
      ((T *)p->dbias)[k] = (T)db;                                                \
    }                                                                            \
  }

LNG_REF(lng_ref_f32, float, moai_nn_row_stats_f32)
LNG_REF(lng_ref_f64, double, moai_nn_row_stats_f64)

/* Rows whose statistics the optimised dscale/dbias pass keeps on the stack,
 * and the run of elements it sums at once (double accumulators). */
#define LNG_ROW_BLOCK 512
#define LNG_COL_RUN 256

#define LNG_OPT(name, T, STATS)                                                  \
  static void name(const lng_problem_t *p, int ith, int nth) {                   \
    const T *S = p->scale;                                                       \
    double cols = (double)p->cols;                                               \
    long long begin, end;                                                        \
    moai_split_range(p->rows, ith, nth, &begin, &end);                           \
    for (long long r = begin; r < end; ++r) {                                    \
      const T *restrict xr = (const T *)p->x + r * p->cols;                      \
      const T *restrict gr = (const T *)p->dy + r * p->cols;                     \
      T *restrict dxr = (T *)p->dx + r * p->cols;                                \
      double mean, inv, s1 = 0.0, s2 = 0.0;                                      \
      STATS((const T *)p->x + r * p->cols, p->cols, p->eps, &mean, &inv);        \
      if (p->scale_cols) {                                                       \
        for (int64_t j = 0; j < p->cols; ++j) {                                  \
          double gs = (double)gr[j] * (double)S[j];                              \
          s1 += gs;                                                              \
          s2 += gs * ((double)xr[j] - mean);                                     \
        }                                                                        \
      } else {                                                                   \
        for (int64_t j = 0; j < p->cols; ++j) {                                  \
          double gs = (double)gr[j] * (double)S[lng_scale_offset(p, j)];         \
          s1 += gs;                                                              \
          s2 += gs * ((double)xr[j] - mean);                                     \
        }                                                                        \
      }                                                                          \
      /* dx = gs * k + (x - mean) * a + b */                                     \
      T k = (T)inv, a = (T)(-inv * inv * inv * s2 / cols), b = (T)(-inv * s1 / cols); \
      T m = (T)mean;                                                             \
      if (p->scale_cols) {                                                       \
        for (int64_t j = 0; j < p->cols; ++j)                                    \
          dxr[j] = gr[j] * S[j] * k + (xr[j] - m) * a + b;                       \
      } else {                                                                   \
        for (int64_t j = 0; j < p->cols; ++j)                                    \
          dxr[j] = gr[j] * S[lng_scale_offset(p, j)] * k + (xr[j] - m) * a + b;  \
      }                                                                          \
    }                                                                            \
    if (!p->scale_cols) {                                                        \
      /* a scale broadcast inside the normalised axes: the reference's sum */    \
      moai_split_range(p->ns, ith, nth, &begin, &end);                           \
      for (long long kk = begin; kk < end; ++kk) {                               \
        double ds = 0.0, db = 0.0;                                               \
        for (int64_t r = 0; r < p->rows; ++r) {                                  \
          double mean, inv;                                                      \
          STATS((const T *)p->x + r * p->cols, p->cols, p->eps, &mean, &inv);    \
          const T *xr = (const T *)p->x + r * p->cols;                           \
          const T *gr = (const T *)p->dy + r * p->cols;                          \
          for (int64_t j = 0; j < p->cols; ++j)                                  \
            if (lng_scale_offset(p, j) == kk) {                                  \
              ds += (double)gr[j] * ((double)xr[j] - mean) * inv;                \
              db += (double)gr[j];                                               \
            }                                                                    \
        }                                                                        \
        ((T *)p->dscale)[kk] = (T)ds;                                            \
        ((T *)p->dbias)[kk] = (T)db;                                             \
      }                                                                          \
      return;                                                                    \
    }                                                                            \
    moai_split_range(p->ns, ith, nth, &begin, &end);                             \
    T *DS = p->dscale, *DB = p->dbias;                                           \
    for (long long j = begin; j < end; ++j) DS[j] = DB[j] = 0;                   \
    double bmean[LNG_ROW_BLOCK], binv[LNG_ROW_BLOCK];                            \
    double acc_s[LNG_COL_RUN], acc_b[LNG_COL_RUN];                               \
    for (int64_t r0 = 0; r0 < p->rows && begin < end; r0 += LNG_ROW_BLOCK) {     \
      int64_t nr = p->rows - r0 < LNG_ROW_BLOCK ? p->rows - r0 : LNG_ROW_BLOCK;  \
      for (int64_t i = 0; i < nr; ++i)                                           \
        STATS((const T *)p->x + (r0 + i) * p->cols, p->cols, p->eps, &bmean[i], &binv[i]); \
      for (long long j0 = begin; j0 < end; j0 += LNG_COL_RUN) {                  \
        int64_t nj = end - j0 < LNG_COL_RUN ? end - j0 : LNG_COL_RUN;            \
        for (int64_t j = 0; j < nj; ++j) acc_s[j] = acc_b[j] = 0.0;              \
        for (int64_t i = 0; i < nr; ++i) {                                       \
          const T *restrict xr = (const T *)p->x + (r0 + i) * p->cols + j0;      \
          const T *restrict gr = (const T *)p->dy + (r0 + i) * p->cols + j0;     \
          double mi = bmean[i], vi = binv[i];                                    \
          for (int64_t j = 0; j < nj; ++j) {                                     \
            acc_s[j] += (double)gr[j] * (((double)xr[j] - mi) * vi);             \
            acc_b[j] += (double)gr[j];                                           \
          }                                                                      \
        }                                                                        \
        for (int64_t j = 0; j < nj; ++j) {                                       \
          DS[j0 + j] = (T)((double)DS[j0 + j] + acc_s[j]);                       \
          DB[j0 + j] = (T)((double)DB[j0 + j] + acc_b[j]);                       \
        }                                                                        \
      }                                                                          \
    }                                                                            \
  }

LNG_OPT(lng_opt_f32, float, moai_nn_row_stats_f32)
LNG_OPT(lng_opt_f64, double, moai_nn_row_stats_f64)

static void lng_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                    int optimised) {
  const moai_tensor_t *tx = moai_op_in(op, 0), *ts = moai_op_in(op, 1), *tdy = moai_op_in(op, 2);
  int32_t dtype;
  if (!norm_grad_dtype(ex, op, ith, "layer_normalization_grad", &dtype)) return;
  moai_attrs_layer_norm_t at;
  if (!moai_kernel_attrs_load(op, &at, sizeof at, sizeof at) || at.axis < 0 ||
      at.axis > tx->rank) {
    moai_grad_fail(ex, op, ith, "layer_normalization_grad: missing or bad attributes");
    return;
  }
  /* scale: right-aligned against x, 1 over the row axes, each normalised
   * axis matched or 1; dscale and dbias have its element count. */
  bool ok = ts->rank <= tx->rank && grad_same_dims(tdy, tx) &&
            moai_tensor_numel(moai_op_out(op, 1)) == moai_tensor_numel(ts) &&
            moai_tensor_numel(moai_op_out(op, 2)) == moai_tensor_numel(ts);
  for (int32_t td = ts->rank - 1, d = tx->rank - 1; ok && td >= 0; --td, --d)
    ok = ts->dims[td] == 1 || (d >= at.axis && ts->dims[td] == tx->dims[d]);
  if (!ok) {
    moai_grad_fail(ex, op, ith, "layer_normalization_grad: scale does not broadcast over the "
                                "normalised axes of x");
    return;
  }
  lng_problem_t p = {0};
  p.rows = p.cols = 1;
  for (int32_t d = 0; d < tx->rank; ++d) {
    if (d < at.axis)
      p.rows *= tx->dims[d];
    else
      p.cols *= tx->dims[d];
  }
  p.ns = moai_tensor_numel(ts);
  p.scale_cols = p.ns == p.cols;
  p.tx = tx;
  p.tscale = ts;
  p.x = moai_tensor_ptr(ex, tx);
  p.scale = moai_tensor_ptr(ex, ts);
  p.dy = moai_tensor_ptr(ex, tdy);
  p.dx = moai_tensor_ptr(ex, moai_op_out(op, 0));
  p.dscale = moai_tensor_ptr(ex, moai_op_out(op, 1));
  p.dbias = moai_tensor_ptr(ex, moai_op_out(op, 2));
  p.eps = at.epsilon;
  int f64 = dtype == MOAI_ABI_F64;
  if (optimised)
    (f64 ? lng_opt_f64 : lng_opt_f32)(&p, ith, nth);
  else
    (f64 ? lng_ref_f64 : lng_ref_f32)(&p, ith, nth);
}

static void bng_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  bng_run(ex, op, ith, nth, 0);
}
static void bng_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  bng_run(ex, op, ith, nth, 1);
}
static void lng_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  lng_run(ex, op, ith, nth, 0);
}
static void lng_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  lng_run(ex, op, ith, nth, 1);
}

void moai_grad_register_norm(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_BATCH_NORM_GRAD] = bng_ref;
    table[MOAI_KERNEL_LAYER_NORM_GRAD] = lng_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_BATCH_NORM_GRAD] = bng_opt;
    table[MOAI_KERNEL_LAYER_NORM_GRAD] = lng_opt;
  }
}
