/* Gradients of Softmax, LogSoftmax and SoftmaxCrossEntropyLoss
 * (abi/moai_ops.h, "gradient kernels"), as PyTorch 1.13's autograd
 * computes them (aten/src/ATen/native/SoftMax.cpp, LossNLL.cpp):
 *
 *   softmax_grad:      dx = y * (g - sum_C(g * y))       (y = softmax(x))
 *   log_softmax_grad:  dx = g - exp(y) * sum_C(g)        (y = log_softmax(x))
 *   softmax_cross_entropy_loss_grad, per sample s with label t != ignore:
 *     dx[s, c] = k_s * (softmax(x[s])_c - [c == t]),  k_s = w_t * gs
 *   with w_t the class weight (1 without weights) and gs = grad[s] for
 *   reduction none, grad for sum, grad / W for mean, W = sum of w_t over
 *   the samples not ignored. Ignored samples get zeros. When every sample
 *   is ignored the mean loss is NaN (0 / 0) but PyTorch's gradient is all
 *   zeros (no sample contributes); so is moai's. Non-ignored samples whose
 *   weights sum to zero give NaN, as PyTorch does (0 * (g / 0)).
 *
 * Tensors are viewed as [outer, C, inner] (moai_nn_axis_view), as the
 * forward kernels (nn/softmax.c) do. The reference kernels compute in
 * double; the optimised ones keep the sums along C in double and the rest
 * in the tensor's type (expf for f32, like the forward kernels), and run
 * SM_CHUNK columns at once when inner > 1 so that the inner loops are
 * contiguous. Each output element is written after the inputs at its
 * position are read, so the output may alias grad (no restrict). */
#include <math.h>

#include "kernels/grad/grad_internal.h"

enum { SMG_CHUNK = 64 };

typedef enum smg_variant_e { SMG_REFERENCE = 0, SMG_OPTIMISED = 1 } smg_variant_t;

/* ---- softmax_grad / log_softmax_grad ---- */

#define SMG_REF(NAME, T)                                                             \
  static void NAME(const T *y, const T *g, T *dx, moai_nn_axis_view_t s, int log_in, \
                   int ith, int nth) {                                               \
    long long begin, end;                                                            \
    moai_split_range(s.outer * s.inner, ith, nth, &begin, &end);                     \
    for (long long line = begin; line < end; ++line) {                               \
      int64_t base = (line / s.inner) * s.c * s.inner + line % s.inner;              \
      double sum = 0.0;                                                              \
      for (int64_t c = 0; c < s.c; ++c) {                                            \
        int64_t i = base + c * s.inner;                                              \
        sum += log_in ? (double)g[i] : (double)g[i] * (double)y[i];                  \
      }                                                                              \
      for (int64_t c = 0; c < s.c; ++c) {                                            \
        int64_t i = base + c * s.inner;                                              \
        double gi = g[i], yi = y[i];                                                 \
        dx[i] = (T)(log_in ? gi - exp(yi) * sum : yi * (gi - sum));                  \
      }                                                                              \
    }                                                                                \
  }
SMG_REF(smg_ref_f32, float)
SMG_REF(smg_ref_f64, double)

#define SMG_OPT(NAME, T, EXP)                                                        \
  static void NAME##_rows(const T *y, const T *g, T *dx, int64_t c_len, int log_in,  \
                          long long begin, long long end) {                          \
    for (long long r = begin; r < end; ++r) {                                        \
      const T *yr = y + r * c_len, *gr = g + r * c_len;                              \
      T *dr = dx + r * c_len;                                                        \
      double sum = 0.0;                                                              \
      if (log_in)                                                                    \
        for (int64_t c = 0; c < c_len; ++c) sum += (double)gr[c];                    \
      else                                                                           \
        for (int64_t c = 0; c < c_len; ++c) sum += (double)gr[c] * (double)yr[c];    \
      T k = (T)sum;                                                                  \
      if (log_in)                                                                    \
        for (int64_t c = 0; c < c_len; ++c) dr[c] = gr[c] - EXP(yr[c]) * k;          \
      else                                                                           \
        for (int64_t c = 0; c < c_len; ++c) dr[c] = yr[c] * (gr[c] - k);             \
    }                                                                                \
  }                                                                                  \
  static void NAME##_cols(const T *y, const T *g, T *dx, moai_nn_axis_view_t s,      \
                          int log_in, long long begin, long long end) {              \
    int64_t nchunk = moai_nn_cdiv(s.inner, SMG_CHUNK);                               \
    for (long long u = begin; u < end; ++u) {                                        \
      int64_t o = u / nchunk, i0 = (u % nchunk) * SMG_CHUNK;                         \
      int64_t ni = s.inner - i0 < SMG_CHUNK ? s.inner - i0 : SMG_CHUNK;              \
      int64_t base = o * s.c * s.inner + i0;                                         \
      const T *yb = y + base, *gb = g + base;                                        \
      T *db = dx + base;                                                             \
      double sum[SMG_CHUNK];                                                         \
      T k[SMG_CHUNK];                                                                \
      for (int64_t i = 0; i < ni; ++i) sum[i] = 0.0;                                 \
      for (int64_t c = 0; c < s.c; ++c)                                              \
        for (int64_t i = 0; i < ni; ++i) {                                           \
          int64_t p = c * s.inner + i;                                               \
          sum[i] += log_in ? (double)gb[p] : (double)gb[p] * (double)yb[p];          \
        }                                                                            \
      for (int64_t i = 0; i < ni; ++i) k[i] = (T)sum[i];                             \
      for (int64_t c = 0; c < s.c; ++c)                                              \
        for (int64_t i = 0; i < ni; ++i) {                                           \
          int64_t p = c * s.inner + i;                                               \
          db[p] = log_in ? gb[p] - EXP(yb[p]) * k[i] : yb[p] * (gb[p] - k[i]);       \
        }                                                                            \
    }                                                                                \
  }                                                                                  \
  static void NAME(const T *y, const T *g, T *dx, moai_nn_axis_view_t s, int log_in, \
                   int ith, int nth) {                                               \
    long long begin, end;                                                            \
    if (s.c == 0) return;                                                            \
    if (s.inner == 1) {                                                              \
      moai_split_range(s.outer, ith, nth, &begin, &end);                             \
      NAME##_rows(y, g, dx, s.c, log_in, begin, end);                                \
    } else {                                                                         \
      moai_split_range(s.outer * moai_nn_cdiv(s.inner, SMG_CHUNK), ith, nth, &begin, \
                       &end);                                                        \
      NAME##_cols(y, g, dx, s, log_in, begin, end);                                  \
    }                                                                                \
  }
SMG_OPT(smg_opt_f32, float, expf)
SMG_OPT(smg_opt_f64, double, exp)

static void softmax_grad_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                             int nth, smg_variant_t v, int log_in) {
  const char *kname = log_in ? "log_softmax_grad" : "softmax_grad";
  moai_attrs_axis_t a;
  if (op->n_in != 2 || op->n_out != 1 || !moai_kernel_attrs_load(op, &a, sizeof a, sizeof a)) {
    if (ith == 0) moai_grad_fail(ex, op, "%s: malformed descriptor", kname);
    return;
  }
  const moai_tensor_t *ty = moai_op_in(op, 0), *tg = moai_op_in(op, 1), *tdx = moai_op_out(op, 0);
  if (ty->dtype != MOAI_ABI_F32 && ty->dtype != MOAI_ABI_F64) {
    moai_nn_fail_dtype(ex, op, ith, kname, ty->dtype);
    return;
  }
  if (tg->dtype != ty->dtype || tdx->dtype != ty->dtype || !moai_grad_same_dims(ty, tg) ||
      !moai_grad_same_dims(ty, tdx) || (ty->rank > 0 && (a.axis < 0 || a.axis >= ty->rank))) {
    if (ith == 0)
      moai_grad_fail(ex, op, "%s: y, grad and output differ in dtype or dims, or bad axis", kname);
    return;
  }
  moai_nn_axis_view_t s = moai_nn_axis_view(ty, a.axis);
  const void *y = moai_tensor_ptr(ex, ty), *g = moai_tensor_ptr(ex, tg);
  void *dx = moai_tensor_ptr(ex, tdx);
  if (ty->dtype == MOAI_ABI_F64)
    (v == SMG_REFERENCE ? smg_ref_f64 : smg_opt_f64)(y, g, dx, s, log_in, ith, nth);
  else
    (v == SMG_REFERENCE ? smg_ref_f32 : smg_opt_f32)(y, g, dx, s, log_in, ith, nth);
}

static void softmax_grad_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  softmax_grad_run(ex, op, ith, nth, SMG_REFERENCE, 0);
}
static void softmax_grad_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  softmax_grad_run(ex, op, ith, nth, SMG_OPTIMISED, 0);
}
static void log_softmax_grad_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                 int nth) {
  softmax_grad_run(ex, op, ith, nth, SMG_REFERENCE, 1);
}
static void log_softmax_grad_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                 int nth) {
  softmax_grad_run(ex, op, ith, nth, SMG_OPTIMISED, 1);
}

/* ---- softmax_cross_entropy_loss_grad ---- */

typedef struct sceg_t {
  int64_t n, c, d; /* scores viewed as [n, c, d]; samples s = n * d + dd */
  const void *scores, *labels, *weights, *grad;
  void *out;
  bool label_i64, f64;
  moai_attrs_sce_t at;
} sceg_t;

static int64_t sceg_label(const sceg_t *p, int64_t s) {
  return p->label_i64 ? ((const int64_t *)p->labels)[s]
                      : (int64_t)((const int32_t *)p->labels)[s];
}

static bool sceg_ignored(const sceg_t *p, int64_t label) {
  return p->at.has_ignore_index && label == p->at.ignore_index;
}

static double sceg_load(const void *base, bool f64, int64_t i) {
  return f64 ? ((const double *)base)[i] : (double)((const float *)base)[i];
}

static void sceg_bad_label(const moai_exec_t *ex, const moai_op_desc_t *op, int64_t label,
                           int64_t c) {
  moai_grad_fail(ex, op, "softmax_cross_entropy_loss_grad: label %lld out of range [0, %lld)",
                 (long long)label, (long long)c);
}

static bool sceg_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, sceg_t *p) {
  static const char kname[] = "softmax_cross_entropy_loss_grad";
  memset(p, 0, sizeof(*p));
  if (op->n_in != 4 || op->n_out != 1 ||
      !moai_kernel_attrs_load(op, &p->at, sizeof p->at, sizeof p->at) ||
      p->at.reduction < 0 || p->at.reduction > 2) {
    if (ith == 0) moai_grad_fail(ex, op, "%s: malformed descriptor", kname);
    return false;
  }
  const moai_tensor_t *ts = moai_op_in(op, 0), *tl = moai_op_in(op, 1), *tw = moai_op_in(op, 2),
                      *tg = moai_op_in(op, 3), *to = moai_op_out(op, 0);
  if (ts->dtype != MOAI_ABI_F32 && ts->dtype != MOAI_ABI_F64) {
    moai_nn_fail_dtype(ex, op, ith, kname, ts->dtype);
    return false;
  }
  if (tl->dtype != MOAI_ABI_I32 && tl->dtype != MOAI_ABI_I64) {
    moai_nn_fail_dtype(ex, op, ith, kname, tl->dtype);
    return false;
  }
  bool has_w = moai_grad_present(op, 2);
  bool ok = ts->rank >= 2 && tl->rank == ts->rank - 1 && moai_grad_same_dims(ts, to) &&
            to->dtype == ts->dtype && tg->dtype == ts->dtype &&
            (!has_w || (tw->dtype == ts->dtype && tw->rank == 1 && tw->dims[0] == ts->dims[1]));
  for (int32_t i = 0; ok && i < tl->rank; ++i) ok = tl->dims[i] == ts->dims[i == 0 ? 0 : i + 1];
  if (ok) ok = p->at.reduction == 0 ? moai_grad_same_dims(tg, tl) : moai_tensor_numel(tg) == 1;
  if (!ok) {
    if (ith == 0)
      moai_grad_fail(ex, op, "%s: operand dtypes or dims do not fit scores [N, C, d...]", kname);
    return false;
  }
  p->n = ts->dims[0];
  p->c = ts->dims[1];
  p->d = 1;
  for (int32_t i = 2; i < ts->rank; ++i) p->d *= ts->dims[i];
  p->scores = moai_tensor_ptr(ex, ts);
  p->labels = moai_tensor_ptr(ex, tl);
  p->weights = has_w ? moai_tensor_ptr(ex, tw) : NULL;
  p->grad = moai_tensor_ptr(ex, tg);
  p->out = moai_tensor_ptr(ex, to);
  p->label_i64 = tl->dtype == MOAI_ABI_I64;
  p->f64 = ts->dtype == MOAI_ABI_F64;
  return true;
}

/* The scale k_s / w_t of sample s's gradient without its class weight:
 * grad[s], grad, or grad / W. Mean needs W, the weight of every sample:
 * each thread sums it itself (a pass over the labels) rather than share it
 * through scratch and a barrier. False after reporting a bad label. */
static bool sceg_scale(const moai_exec_t *ex, const moai_op_desc_t *op, const sceg_t *p,
                       double *out_g) {
  if (p->at.reduction != 2) {
    *out_g = p->at.reduction == 1 ? sceg_load(p->grad, p->f64, 0) : 0.0;
    return true;
  }
  double wsum = 0.0;
  for (int64_t s = 0; s < p->n * p->d; ++s) {
    int64_t t = sceg_label(p, s);
    if (sceg_ignored(p, t)) continue;
    if (t < 0 || t >= p->c) {
      sceg_bad_label(ex, op, t, p->c);
      return false;
    }
    wsum += p->weights ? sceg_load(p->weights, p->f64, t) : 1.0;
  }
  *out_g = sceg_load(p->grad, p->f64, 0) / wsum;
  return true;
}

/* One sample's line: coef = k_s (see the top of the file); x and dx at
 * `base`, stride d. Reference: everything in double. */
#define SCEG_LINE_REF(NAME, T)                                                   \
  static void NAME(const sceg_t *p, int64_t base, int64_t t, double coef) {     \
    const T *x = (const T *)p->scores + base;                                   \
    T *dx = (T *)p->out + base;                                                 \
    double mx = -INFINITY, sum = 0.0;                                           \
    for (int64_t c = 0; c < p->c; ++c) mx = (double)x[c * p->d] > mx ? (double)x[c * p->d] : mx; \
    for (int64_t c = 0; c < p->c; ++c) sum += exp((double)x[c * p->d] - mx);    \
    double lse = mx + log(sum);                                                 \
    for (int64_t c = 0; c < p->c; ++c)                                          \
      dx[c * p->d] = (T)(coef * exp((double)x[c * p->d] - lse) - (c == t ? coef : 0.0)); \
  }
SCEG_LINE_REF(sceg_line_ref_f32, float)
SCEG_LINE_REF(sceg_line_ref_f64, double)

/* Optimised: the exponentials once (stored in dx, then scaled), in T. */
#define SCEG_LINE_OPT(NAME, T, EXP)                                              \
  static void NAME(const sceg_t *p, int64_t base, int64_t t, double coef) {     \
    const T *x = (const T *)p->scores + base;                                   \
    T *dx = (T *)p->out + base;                                                 \
    int64_t d = p->d;                                                           \
    T mx = x[0];                                                                \
    for (int64_t c = 1; c < p->c; ++c) mx = x[c * d] > mx ? x[c * d] : mx;      \
    double sum = 0.0;                                                           \
    for (int64_t c = 0; c < p->c; ++c) {                                        \
      T e = EXP(x[c * d] - mx);                                                 \
      sum += (double)e;                                                         \
      dx[c * d] = e;                                                            \
    }                                                                           \
    T k = (T)(coef / sum);                                                      \
    for (int64_t c = 0; c < p->c; ++c) dx[c * d] *= k;                          \
    dx[t * d] -= (T)coef;                                                       \
  }
SCEG_LINE_OPT(sceg_line_opt_f32, float, expf)
SCEG_LINE_OPT(sceg_line_opt_f64, double, exp)

typedef void (*sceg_line_fn_t)(const sceg_t *p, int64_t base, int64_t t, double coef);

static void sceg_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                     smg_variant_t v) {
  sceg_t p;
  double g;
  if (!sceg_setup(ex, op, ith, &p) || !sceg_scale(ex, op, &p, &g)) return;
  sceg_line_fn_t line = v == SMG_REFERENCE ? (p.f64 ? sceg_line_ref_f64 : sceg_line_ref_f32)
                                           : (p.f64 ? sceg_line_opt_f64 : sceg_line_opt_f32);
  size_t es = p.f64 ? sizeof(double) : sizeof(float);
  long long begin, end;
  moai_split_range(p.n * p.d, ith, nth, &begin, &end);
  for (long long s = begin; s < end; ++s) {
    int64_t base = (s / p.d) * p.c * p.d + s % p.d, t = sceg_label(&p, s);
    if (sceg_ignored(&p, t)) {
      for (int64_t c = 0; c < p.c; ++c)
        memset((unsigned char *)p.out + (size_t)(base + c * p.d) * es, 0, es);
      continue;
    }
    if (t < 0 || t >= p.c) {
      sceg_bad_label(ex, op, t, p.c);
      return;
    }
    double w = p.weights ? sceg_load(p.weights, p.f64, t) : 1.0;
    double gs = p.at.reduction == 0 ? sceg_load(p.grad, p.f64, s) : g;
    /* PyTorch's order: (grad / W) * w */
    line(&p, base, t, gs * w);
  }
}

static void sce_grad_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  sceg_run(ex, op, ith, nth, SMG_REFERENCE);
}
static void sce_grad_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  sceg_run(ex, op, ith, nth, SMG_OPTIMISED);
}

void moai_grad_register_softmax(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_SOFTMAX_GRAD] = softmax_grad_ref;
    table[MOAI_KERNEL_LOG_SOFTMAX_GRAD] = log_softmax_grad_ref;
    table[MOAI_KERNEL_SCE_GRAD] = sce_grad_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_SOFTMAX_GRAD] = softmax_grad_opt;
    table[MOAI_KERNEL_LOG_SOFTMAX_GRAD] = log_softmax_grad_opt;
    table[MOAI_KERNEL_SCE_GRAD] = sce_grad_opt;
  }
}
