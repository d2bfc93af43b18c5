/* BatchNormalization and LayerNormalization (ONNX opset 21). f32, f64.
 *
 * batch_normalization: x [N, C, s...] with per-channel scale, b, mean, var.
 *  - inference: y = scale * (x - mean) / sqrt(var + eps) + b.
 *  - training_mode: mean and var are the batch statistics over N and the
 *    spatial axes (biased variance, numpy's x.var()), used to normalise; the
 *    optional outputs are running_mean = momentum * mean_in + (1 - momentum)
 *    * batch_mean and running_var likewise with the batch variance, as ONNX's
 *    reference (_batchnorm_training_mode) computes them.
 *  Work is split by (n, c) planes for inference and by channel in training
 *  mode, where each thread owns whole channels (statistics need no merge).
 *
 * layer_normalization: rows = the leading axes [0, axis), each normalised
 * over [axis, rank): y = (x - mean) / sqrt(var + eps) * scale + b, scale and
 * b numpy-broadcast against x (ONNX's reference multiplies the reshaped
 * normalised x by them). Optional outputs mean and inv_std_dev, one value
 * per row (shape: the leading dims, then 1s), in their own dtype.
 *
 * Statistics are summed in double in both versions (a channel can hold
 * millions of elements); the optimised kernels differ in doing the per-element
 * arithmetic in the tensor's type with hoisted per-row factors. */
#include <math.h>

#include "kernels/nn/nn_internal.h"

typedef enum norm_variant_e { NORM_REFERENCE = 0, NORM_OPTIMISED = 1 } norm_variant_t;


static void norm_store(void *p, int32_t dtype, int64_t i, double v) {
  if (dtype == MOAI_ABI_F64)
    ((double *)p)[i] = v;
  else
    ((float *)p)[i] = (float)v;
}

/* An operand that is present (n_in/n_out long enough and placed). */
static const moai_tensor_t *norm_opt_in(const moai_op_desc_t *op, uint32_t i) {
  return i < op->n_in && moai_op_in(op, i)->region != MOAI_REGION_NONE ? moai_op_in(op, i)
                                                                         : NULL;
}
static const moai_tensor_t *norm_opt_out(const moai_op_desc_t *op, uint32_t i) {
  return i < op->n_out && moai_op_out(op, i)->region != MOAI_REGION_NONE ? moai_op_out(op, i)
                                                                           : NULL;
}

/* ---- batch_normalization ---- */

typedef struct bn_problem_t {
  int64_t n, c, s; /* x viewed as [n, c, s] */
  const void *x, *scale, *b, *mean, *var;
  void *y, *run_mean, *run_var;
  double eps, momentum;
} bn_problem_t;

/* Reference: every element from the formula, in double. */
#define BN_REF(name, T, STATS)                                                   \
  static void name(const bn_problem_t *p, int training, int ith, int nth) {      \
    const T *X = p->x, *S = p->scale, *B = p->b, *M = p->mean, *V = p->var;      \
    T *Y = p->y;                                                                 \
    long long begin, end;                                                        \
    moai_split_range(p->c, ith, nth, &begin, &end);                              \
    for (long long c = begin; c < end; ++c) {                                    \
      double mean = M[c], var = V[c];                                            \
      if (training) {                                                            \
        STATS(p->x, p->n, p->c, p->s, c, &mean, &var);                           \
        if (p->run_mean)                                                         \
          ((T *)p->run_mean)[c] =                                                \
              (T)(p->momentum * (double)M[c] + (1.0 - p->momentum) * mean);      \
        if (p->run_var)                                                          \
          ((T *)p->run_var)[c] =                                                 \
              (T)(p->momentum * (double)V[c] + (1.0 - p->momentum) * var);       \
      }                                                                          \
      for (int64_t n = 0; n < p->n; ++n)                                         \
        for (int64_t i = 0; i < p->s; ++i) {                                     \
          int64_t e = (n * p->c + c) * p->s + i;                                 \
          Y[e] = (T)((double)S[c] * ((double)X[e] - mean) / sqrt(var + p->eps) + \
                     (double)B[c]);                                              \
        }                                                                        \
    }                                                                            \
  }

BN_REF(bn_ref_f32, float, moai_nn_channel_stats_f32)
BN_REF(bn_ref_f64, double, moai_nn_channel_stats_f64)

/* Optimised: (n, c) planes in inference, whole channels in training; one
 * multiply-add per element with the factor hoisted. */
#define BN_OPT(name, T, STATS)                                                   \
  static void name##_plane(const bn_problem_t *p, int64_t n, int64_t c, double mean, \
                           double var) {                                         \
    T a = (T)((double)((const T *)p->scale)[c] / sqrt(var + p->eps));            \
    T m = (T)mean, b = ((const T *)p->b)[c];                                     \
    const T *xp = (const T *)p->x + (n * p->c + c) * p->s; /* y may alias x */   \
    T *yp = (T *)p->y + (n * p->c + c) * p->s;                                   \
    for (int64_t i = 0; i < p->s; ++i) yp[i] = (xp[i] - m) * a + b;              \
  }                                                                              \
  static void name(const bn_problem_t *p, int training, int ith, int nth) {      \
    const T *M = p->mean, *V = p->var;                                           \
    long long begin, end;                                                        \
    if (!training) {                                                             \
      moai_split_range(p->n * p->c, ith, nth, &begin, &end);                     \
      for (long long u = begin; u < end; ++u)                                    \
        name##_plane(p, u / p->c, u % p->c, (double)M[u % p->c], (double)V[u % p->c]); \
      return;                                                                    \
    }                                                                            \
    moai_split_range(p->c, ith, nth, &begin, &end);                              \
    for (long long c = begin; c < end; ++c) {                                    \
      double mean, var;                                                          \
      STATS(p->x, p->n, p->c, p->s, c, &mean, &var);                             \
      if (p->run_mean)                                                           \
        ((T *)p->run_mean)[c] = (T)(p->momentum * (double)M[c] + (1.0 - p->momentum) * mean); \
      if (p->run_var)                                                            \
        ((T *)p->run_var)[c] = (T)(p->momentum * (double)V[c] + (1.0 - p->momentum) * var); \
      for (int64_t n = 0; n < p->n; ++n) name##_plane(p, n, c, mean, var);       \
    }                                                                            \
  }

BN_OPT(bn_opt_f32, float, moai_nn_channel_stats_f32)
BN_OPT(bn_opt_f64, double, moai_nn_channel_stats_f64)

typedef void (*bn_fn_t)(const bn_problem_t *p, int training, int ith, int nth);

static void bn_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                   norm_variant_t v) {
  const moai_tensor_t *tx = moai_op_in(op, 0);
  /* scale, b, mean and var must share x's dtype (ONNX allows them to
   * differ; the compiler inserts casts). */
  int32_t dtype = tx->dtype;
  for (uint32_t i = 1; i < 5; ++i)
    if (moai_op_in(op, i)->dtype != tx->dtype) dtype = moai_op_in(op, i)->dtype;
  if (dtype != tx->dtype || (dtype != MOAI_ABI_F32 && dtype != MOAI_ABI_F64)) {
    moai_nn_fail_dtype(ex, op, ith, "batch_normalization", dtype);
    return;
  }
  const moai_attrs_batch_norm_t *at = moai_op_attrs(op);
  bn_problem_t p = {0};
  p.n = tx->dims[0];
  p.c = tx->rank > 1 ? tx->dims[1] : 1;
  p.s = 1;
  for (int32_t d = 2; d < tx->rank; ++d) p.s *= tx->dims[d];
  p.x = moai_tensor_ptr(ex, tx);
  p.scale = moai_tensor_ptr(ex, moai_op_in(op, 1));
  p.b = moai_tensor_ptr(ex, moai_op_in(op, 2));
  p.mean = moai_tensor_ptr(ex, moai_op_in(op, 3));
  p.var = moai_tensor_ptr(ex, moai_op_in(op, 4));
  p.y = moai_tensor_ptr(ex, moai_op_out(op, 0));
  const moai_tensor_t *trm = norm_opt_out(op, 1), *trv = norm_opt_out(op, 2);
  p.run_mean = trm ? moai_tensor_ptr(ex, trm) : NULL;
  p.run_var = trv ? moai_tensor_ptr(ex, trv) : NULL;
  p.eps = at->epsilon;
  p.momentum = at->momentum;
  int f64 = dtype == MOAI_ABI_F64;
  bn_fn_t fn = v == NORM_REFERENCE ? (f64 ? bn_ref_f64 : bn_ref_f32)
                                   : (f64 ? bn_opt_f64 : bn_opt_f32);
  fn(&p, at->training_mode != 0, ith, nth);
}

static void bn_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  bn_run(ex, op, ith, nth, NORM_REFERENCE);
}
static void bn_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  bn_run(ex, op, ith, nth, NORM_OPTIMISED);
}

/* ---- layer_normalization ---- */

typedef struct ln_problem_t {
  int64_t rows, cols;
  const moai_tensor_t *tx, *tscale, *tb;
  const void *x, *scale, *b;
  void *y, *mean, *inv_std;
  int32_t mean_dtype, inv_std_dtype;
  int scale_rowwise, b_rowwise; /* operand indexed by the column alone */
  double eps;
} ln_problem_t;

/* Whether t's offset of x's element (row, col) is just col: t's dims equal
 * x's trailing dims from `axis` on (leading 1s allowed). */
static int ln_rowwise(const moai_tensor_t *t, const moai_tensor_t *x, int64_t axis) {
  for (int32_t td = t->rank - 1, d = x->rank - 1; td >= 0; --td, --d) {
    if (d >= axis) {
      if (t->dims[td] != x->dims[d]) return 0;
    } else if (t->dims[td] != 1) {
      return 0;
    }
  }
  return t->rank >= x->rank - axis || moai_tensor_numel(t) == 1 ? 1 : 0;
}

#define LN_REF(name, T, STATS)                                                   \
  static void name(const ln_problem_t *p, int ith, int nth) {                    \
    const T *X = p->x, *S = p->scale, *B = p->b;                                 \
    T *Y = p->y;                                                                 \
    long long begin, end;                                                        \
    moai_split_range(p->rows, ith, nth, &begin, &end);                           \
    for (long long r = begin; r < end; ++r) {                                    \
      double mean, inv;                                                          \
      STATS(X + r * p->cols, p->cols, p->eps, &mean, &inv);                      \
      for (int64_t j = 0; j < p->cols; ++j) {                                    \
        int64_t e = r * p->cols + j;                                             \
        double y = ((double)X[e] - mean) * inv *                                 \
                   (double)S[moai_nn_bcast_offset(p->tscale, p->tx, e)];         \
        if (B) y += (double)B[moai_nn_bcast_offset(p->tb, p->tx, e)];            \
        Y[e] = (T)y;                                                             \
      }                                                                          \
      if (p->mean) norm_store(p->mean, p->mean_dtype, r, mean);                  \
      if (p->inv_std) norm_store(p->inv_std, p->inv_std_dtype, r, inv);          \
    }                                                                            \
  }

LN_REF(ln_ref_f32, float, moai_nn_row_stats_f32)
LN_REF(ln_ref_f64, double, moai_nn_row_stats_f64)

#define LN_OPT(name, T, STATS)                                                   \
  static void name(const ln_problem_t *p, int ith, int nth) {                    \
    const T *S = p->scale, *B = p->b;                                            \
    long long begin, end;                                                        \
    moai_split_range(p->rows, ith, nth, &begin, &end);                           \
    for (long long r = begin; r < end; ++r) {                                    \
      const T *xr = (const T *)p->x + r * p->cols; /* y may alias x */           \
      T *yr = (T *)p->y + r * p->cols;                                           \
      double mean, inv;                                                          \
      STATS(xr, p->cols, p->eps, &mean, &inv);                                   \
      T m = (T)mean, k = (T)inv;                                                 \
      if (p->scale_rowwise && (!B || p->b_rowwise)) {                            \
        const T *sr = S, *br = B;                                                \
        if (moai_tensor_numel(p->tscale) == 1) {                                 \
          for (int64_t j = 0; j < p->cols; ++j) yr[j] = (xr[j] - m) * (k * sr[0]); \
        } else {                                                                 \
          for (int64_t j = 0; j < p->cols; ++j) yr[j] = (xr[j] - m) * k * sr[j]; \
        }                                                                        \
        if (br) {                                                                \
          if (moai_tensor_numel(p->tb) == 1) {                                   \
            for (int64_t j = 0; j < p->cols; ++j) yr[j] += br[0];                \
          } else {                                                               \
            for (int64_t j = 0; j < p->cols; ++j) yr[j] += br[j];                \
          }                                                                      \
        }                                                                        \
      } else {                                                                   \
        for (int64_t j = 0; j < p->cols; ++j) {                                  \
          int64_t e = r * p->cols + j;                                           \
          T y = (xr[j] - m) * k * S[moai_nn_bcast_offset(p->tscale, p->tx, e)];  \
          yr[j] = B ? y + B[moai_nn_bcast_offset(p->tb, p->tx, e)] : y;          \
        }                                                                        \
      }                                                                          \
      if (p->mean) norm_store(p->mean, p->mean_dtype, r, mean);                  \
      if (p->inv_std) norm_store(p->inv_std, p->inv_std_dtype, r, inv);          \
    }                                                                            \
  }

LN_OPT(ln_opt_f32, float, moai_nn_row_stats_f32)
LN_OPT(ln_opt_f64, double, moai_nn_row_stats_f64)

static void ln_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                   norm_variant_t v) {
  const moai_attrs_layer_norm_t *at = moai_op_attrs(op);
  ln_problem_t p = {0};
  p.tx = moai_op_in(op, 0);
  p.tscale = moai_op_in(op, 1);
  p.tb = norm_opt_in(op, 2);
  const moai_tensor_t *tm = norm_opt_out(op, 1), *ti = norm_opt_out(op, 2);
  int32_t dtype = p.tx->dtype;
  if (p.tscale->dtype != dtype || (p.tb && p.tb->dtype != dtype)) dtype = p.tscale->dtype;
  if (dtype == p.tx->dtype && tm && tm->dtype != MOAI_ABI_F32 && tm->dtype != MOAI_ABI_F64)
    dtype = tm->dtype;
  if (dtype == p.tx->dtype && ti && ti->dtype != MOAI_ABI_F32 && ti->dtype != MOAI_ABI_F64)
    dtype = ti->dtype;
  if (dtype != p.tx->dtype || (dtype != MOAI_ABI_F32 && dtype != MOAI_ABI_F64)) {
    moai_nn_fail_dtype(ex, op, ith, "layer_normalization",
                       dtype != p.tx->dtype ? dtype : p.tx->dtype);
    return;
  }
  p.rows = 1;
  p.cols = 1;
  for (int32_t d = 0; d < p.tx->rank; ++d) {
    if (d < at->axis)
      p.rows *= p.tx->dims[d];
    else
      p.cols *= p.tx->dims[d];
  }
  p.x = moai_tensor_ptr(ex, p.tx);
  p.scale = moai_tensor_ptr(ex, p.tscale);
  p.b = p.tb ? moai_tensor_ptr(ex, p.tb) : NULL;
  p.y = moai_tensor_ptr(ex, moai_op_out(op, 0));
  p.mean = tm ? moai_tensor_ptr(ex, tm) : NULL;
  p.inv_std = ti ? moai_tensor_ptr(ex, ti) : NULL;
  p.mean_dtype = tm ? tm->dtype : 0;
  p.inv_std_dtype = ti ? ti->dtype : 0;
  p.scale_rowwise = ln_rowwise(p.tscale, p.tx, at->axis);
  p.b_rowwise = p.tb ? ln_rowwise(p.tb, p.tx, at->axis) : 0;
  p.eps = at->epsilon;
  int f64 = dtype == MOAI_ABI_F64;
  if (v == NORM_REFERENCE)
    (f64 ? ln_ref_f64 : ln_ref_f32)(&p, ith, nth);
  else
    (f64 ? ln_opt_f64 : ln_opt_f32)(&p, ith, nth);
}

static void ln_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  ln_run(ex, op, ith, nth, NORM_REFERENCE);
}
static void ln_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  ln_run(ex, op, ith, nth, NORM_OPTIMISED);
}

void moai_nn_register_norm(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_BATCH_NORMALIZATION] = bn_ref;
    table[MOAI_KERNEL_LAYER_NORMALIZATION] = ln_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_BATCH_NORMALIZATION] = bn_opt;
    table[MOAI_KERNEL_LAYER_NORMALIZATION] = ln_opt;
  }
}
