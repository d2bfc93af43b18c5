/* Softmax, LogSoftmax and SoftmaxCrossEntropyLoss (ONNX opset 21).
 *
 * softmax / log_softmax normalise along one axis (opset-13 semantics): the
 * input is viewed as [outer, C, inner]. Numerically stable form
 *   y = exp(x - max) / sum exp(x - max),  log y = x - max - log(sum ...).
 * A row masked with float32's lowest value everywhere comes out uniform
 * (x - max = 0), like PyTorch and ONNX Runtime; no special case.
 *
 * softmax_cross_entropy_loss follows ONNX's reference
 * (onnx/backend/test/case/node/softmaxcrossentropy.py): scores [N, C, D...]
 * are log-softmaxed along C; per sample loss = -w[label] * log_prob[label]
 * with w = weights or 1, and w = 0 (loss 0) where label == ignore_index;
 * reduction none keeps [N, D...], sum adds, mean divides the sum by the sum
 * of w (so all-ignored gives NaN, as numpy does). A label outside [0, C) that
 * is not ignore_index fails the step.
 *
 * The optimised kernels run the reduction along C with a vector of up to
 * SM_CHUNK independent columns when inner > 1 (NCHW-like layouts), so that
 * the inner loops are contiguous; sums of exponentials are kept in double
 * in both versions because softmax rows can be long (vocabularies). */
#include <math.h>

#include "kernels/nn/nn_internal.h"

enum { SM_CHUNK = 64 };

typedef moai_nn_axis_view_t sm_shape_t;

/* ---- softmax / log_softmax ---- */

/* Reference: one (outer, inner) line at a time, everything in double. */
#define SM_REF(name, T)                                                         \
  static void name(const T *x, T *y, sm_shape_t s, int log_out, int ith, int nth) { \
    long long begin, end;                                                       \
    moai_split_range(s.outer * s.inner, ith, nth, &begin, &end);                \
    for (long long line = begin; line < end; ++line) {                          \
      int64_t base = (line / s.inner) * s.c * s.inner + line % s.inner;         \
      double mx = -INFINITY, sum = 0.0;                                         \
      for (int64_t c = 0; c < s.c; ++c) {                                       \
        double v = (double)x[base + c * s.inner];                               \
        if (v > mx) mx = v;                                                     \
      }                                                                         \
      for (int64_t c = 0; c < s.c; ++c) sum += exp((double)x[base + c * s.inner] - mx); \
      double lse = log(sum);                                                    \
      for (int64_t c = 0; c < s.c; ++c) {                                       \
        double v = (double)x[base + c * s.inner] - mx;                          \
        y[base + c * s.inner] = (T)(log_out ? v - lse : exp(v) / sum);          \
      }                                                                         \
    }                                                                           \
  }

SM_REF(sm_ref_f32, float)
SM_REF(sm_ref_f64, double)

/* Optimised: contiguous rows when inner == 1, else SM_CHUNK columns of the
 * [C, inner] block at once. EXP is expf or exp. Each element is read
 * before its output is written, so y may alias x (no restrict). */
#define SM_OPT(name, T, EXP)                                                    \
  static void name##_rows(const T *x, T *y, sm_shape_t s, int log_out,         \
                          long long begin, long long end) {                    \
    for (long long r = begin; r < end; ++r) {                                  \
      const T *xr = x + r * s.c;                                               \
      T *yr = y + r * s.c;                                                     \
      T mx = s.c > 0 ? xr[0] : (T)0;                                           \
      for (int64_t c = 1; c < s.c; ++c) mx = xr[c] > mx ? xr[c] : mx;          \
      double sum = 0.0;                                                        \
      for (int64_t c = 0; c < s.c; ++c) {                                      \
        T e = EXP(xr[c] - mx);                                                 \
        sum += (double)e;                                                      \
        if (!log_out) yr[c] = e;                                               \
      }                                                                        \
      if (log_out) {                                                           \
        T lse = (T)log(sum);                                                   \
        for (int64_t c = 0; c < s.c; ++c) yr[c] = (xr[c] - mx) - lse;          \
      } else {                                                                 \
        T inv = (T)(1.0 / sum);                                                \
        for (int64_t c = 0; c < s.c; ++c) yr[c] *= inv;                        \
      }                                                                        \
    }                                                                          \
  }                                                                            \
  static void name##_cols(const T *x, T *y, sm_shape_t s, int log_out,         \
                          long long begin, long long end) {                    \
    int64_t nchunk = moai_nn_cdiv(s.inner, SM_CHUNK);                          \
    for (long long u = begin; u < end; ++u) {                                  \
      int64_t o = u / nchunk, i0 = (u % nchunk) * SM_CHUNK;                    \
      int64_t ni = s.inner - i0 < SM_CHUNK ? s.inner - i0 : SM_CHUNK;          \
      const T *xb = x + o * s.c * s.inner + i0;                                \
      T *yb = y + o * s.c * s.inner + i0;                                      \
      T mx[SM_CHUNK];                                                          \
      double sum[SM_CHUNK];                                                    \
      for (int64_t i = 0; i < ni; ++i) { mx[i] = xb[i]; sum[i] = 0.0; }        \
      for (int64_t c = 1; c < s.c; ++c)                                        \
        for (int64_t i = 0; i < ni; ++i)                                       \
          mx[i] = xb[c * s.inner + i] > mx[i] ? xb[c * s.inner + i] : mx[i];   \
      for (int64_t c = 0; c < s.c; ++c)                                        \
        for (int64_t i = 0; i < ni; ++i) {                                     \
          T e = EXP(xb[c * s.inner + i] - mx[i]);                              \
          sum[i] += (double)e;                                                 \
          if (!log_out) yb[c * s.inner + i] = e;                               \
        }                                                                      \
      T k[SM_CHUNK];                                                           \
      for (int64_t i = 0; i < ni; ++i)                                         \
        k[i] = log_out ? (T)log(sum[i]) : (T)(1.0 / sum[i]);                   \
      for (int64_t c = 0; c < s.c; ++c)                                        \
        for (int64_t i = 0; i < ni; ++i) {                                     \
          if (log_out)                                                         \
            yb[c * s.inner + i] = (xb[c * s.inner + i] - mx[i]) - k[i];        \
          else                                                                 \
            yb[c * s.inner + i] *= k[i];                                       \
        }                                                                      \
    }                                                                          \
  }                                                                            \
  static void name(const T *x, T *y, sm_shape_t s, int log_out, int ith, int nth) { \
    long long begin, end;                                                      \
    if (s.c == 0) return;                                                      \
    if (s.inner == 1) {                                                        \
      moai_split_range(s.outer, ith, nth, &begin, &end);                       \
      name##_rows(x, y, s, log_out, begin, end);                               \
    } else {                                                                   \
      moai_split_range(s.outer * moai_nn_cdiv(s.inner, SM_CHUNK), ith, nth, &begin, &end); \
      name##_cols(x, y, s, log_out, begin, end);                               \
    }                                                                          \
  }

SM_OPT(sm_opt_f32, float, expf)
SM_OPT(sm_opt_f64, double, exp)

typedef enum sm_variant_e { SM_REFERENCE = 0, SM_OPTIMISED = 1 } sm_variant_t;

static void softmax_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                        sm_variant_t v, int log_out) {
  const moai_tensor_t *tx = moai_op_in(op, 0), *ty = moai_op_out(op, 0);
  const moai_attrs_axis_t *at = moai_op_attrs(op);
  sm_shape_t s = moai_nn_axis_view(tx, at->axis);
  const void *x = moai_tensor_ptr(ex, tx);
  void *y = moai_tensor_ptr(ex, ty);
  switch (tx->dtype) { /* two dtypes: a table would be longer than this */
    case MOAI_ABI_F32:
      (v == SM_REFERENCE ? sm_ref_f32 : sm_opt_f32)(x, y, s, log_out, ith, nth);
      return;
    case MOAI_ABI_F64:
      (v == SM_REFERENCE ? sm_ref_f64 : sm_opt_f64)(x, y, s, log_out, ith, nth);
      return;
  }
  moai_nn_fail_dtype(ex, op, ith, log_out ? "log_softmax" : "softmax", tx->dtype);
}

static void softmax_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  softmax_run(ex, op, ith, nth, SM_REFERENCE, 0);
}
static void softmax_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  softmax_run(ex, op, ith, nth, SM_OPTIMISED, 0);
}
static void log_softmax_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  softmax_run(ex, op, ith, nth, SM_REFERENCE, 1);
}
static void log_softmax_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  softmax_run(ex, op, ith, nth, SM_OPTIMISED, 1);
}

/* ---- softmax_cross_entropy_loss ---- */

typedef struct sce_problem_t {
  int64_t n, c, d; /* scores viewed as [n, c, d] */
  const void *scores, *labels, *weights;
  void *loss, *log_prob;
  int label_i64;
  const moai_attrs_sce_t *at;
} sce_problem_t;

static int64_t sce_label(const sce_problem_t *p, int64_t s) {
  return p->label_i64 ? ((const int64_t *)p->labels)[s]
                      : (int64_t)((const int32_t *)p->labels)[s];
}

static int sce_ignored(const sce_problem_t *p, int64_t label) {
  return p->at->has_ignore_index && label == p->at->ignore_index;
}

static void sce_fail_label(const moai_exec_t *ex, const moai_op_desc_t *op, int64_t label,
                           int64_t c) {
  char msg[128];
  snprintf(msg, sizeof(msg),
           "softmax_cross_entropy_loss: label %lld out of range [0, %lld)",
           (long long)label, (long long)c);
  moai_kernel_fail(ex, op, msg);
}

/* Per sample s = (n, d): max and log-sum-exp along C (stride d), the loss
 * term and its weight; log_prob's line written when asked. EXPD maps a
 * double to the exponential: exp for the reference, float expf for the
 * optimised f32 version. Returns 0 on a bad label. */
#define SCE_SAMPLE(name, T, EXPD)                                               \
  static int name(const sce_problem_t *p, int64_t s, int write_log_prob,        \
                  double *out_loss, double *out_w, int64_t *out_label) {        \
    int64_t n = s / p->d, dd = s % p->d, base = n * p->c * p->d + dd;           \
    const T *x = (const T *)p->scores + base;                                   \
    double mx = -INFINITY, sum = 0.0;                                           \
    for (int64_t c = 0; c < p->c; ++c)                                          \
      mx = (double)x[c * p->d] > mx ? (double)x[c * p->d] : mx;                 \
    for (int64_t c = 0; c < p->c; ++c) sum += EXPD((double)x[c * p->d] - mx);   \
    double lse = mx + log(sum);                                                 \
    if (write_log_prob) {                                                       \
      T *lp = (T *)p->log_prob + base;                                          \
      for (int64_t c = 0; c < p->c; ++c) lp[c * p->d] = (T)((double)x[c * p->d] - lse); \
    }                                                                           \
    int64_t label = sce_label(p, s);                                            \
    *out_label = label;                                                         \
    *out_loss = 0.0;                                                            \
    *out_w = 0.0;                                                               \
    if (sce_ignored(p, label)) return 1;                                        \
    if (label < 0 || label >= p->c) return 0;                                   \
    double w = p->weights ? (double)((const T *)p->weights)[label] : 1.0;       \
    *out_w = w;                                                                 \
    *out_loss = -w * ((double)x[label * p->d] - lse);                           \
    return 1;                                                                   \
  }

#define SCE_EXP_F(v) ((double)expf((float)(v)))
SCE_SAMPLE(sce_sample_ref_f32, float, exp)
SCE_SAMPLE(sce_sample_ref_f64, double, exp)
SCE_SAMPLE(sce_sample_opt_f32, float, SCE_EXP_F)
SCE_SAMPLE(sce_sample_opt_f64, double, exp)

typedef int (*sce_sample_fn_t)(const sce_problem_t *p, int64_t s, int write_log_prob,
                               double *out_loss, double *out_w, int64_t *out_label);

static void sce_store(void *dst, int64_t i, int f64, double v) {
  if (f64)
    ((double *)dst)[i] = v;
  else
    ((float *)dst)[i] = (float)v;
}

/* Samples are split across threads (each writes its log_prob lines and, for
 * reduction none, its losses). A reduced loss needs every sample: with no
 * scratch to combine per-thread partial sums, thread 0 sums them all itself
 * (recomputing the log-sum-exp of the samples it does not own). */
static void sce_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                    sm_variant_t v) {
  const moai_tensor_t *ts = moai_op_in(op, 0), *tl = moai_op_in(op, 1);
  int32_t dtype = ts->dtype;
  if ((dtype != MOAI_ABI_F32 && dtype != MOAI_ABI_F64) ||
      (tl->dtype != MOAI_ABI_I32 && tl->dtype != MOAI_ABI_I64)) {
    moai_nn_fail_dtype(ex, op, ith, "softmax_cross_entropy_loss",
                       dtype != MOAI_ABI_F32 && dtype != MOAI_ABI_F64 ? dtype : tl->dtype);
    return;
  }
  int f64 = dtype == MOAI_ABI_F64;
  sce_sample_fn_t sample = v == SM_REFERENCE ? (f64 ? sce_sample_ref_f64 : sce_sample_ref_f32)
                                             : (f64 ? sce_sample_opt_f64 : sce_sample_opt_f32);
  sce_problem_t p = {0};
  p.at = moai_op_attrs(op);
  p.n = ts->dims[0];
  p.c = ts->dims[1];
  p.d = 1;
  for (int32_t d = 2; d < ts->rank; ++d) p.d *= ts->dims[d];
  p.scores = moai_tensor_ptr(ex, ts);
  p.labels = moai_tensor_ptr(ex, tl);
  p.label_i64 = tl->dtype == MOAI_ABI_I64;
  p.weights = op->n_in > 2 ? moai_tensor_ptr(ex, moai_op_in(op, 2)) : NULL;
  p.loss = moai_tensor_ptr(ex, moai_op_out(op, 0));
  p.log_prob = op->n_out > 1 ? moai_tensor_ptr(ex, moai_op_out(op, 1)) : NULL;
  int reduce = p.at->reduction != 0;

  long long begin, end;
  moai_split_range(p.n * p.d, ith, nth, &begin, &end);
  if (p.log_prob || !reduce) {
    for (long long s = begin; s < end; ++s) {
      double loss, w;
      int64_t label;
      if (!sample(&p, s, p.log_prob != NULL, &loss, &w, &label)) {
        sce_fail_label(ex, op, label, p.c);
        return;
      }
      if (!reduce) sce_store(p.loss, s, f64, loss);
    }
  }
  if (!reduce || ith != 0) return;
  double total = 0.0, wsum = 0.0;
  for (int64_t s = 0; s < p.n * p.d; ++s) {
    double loss, w;
    int64_t label;
    if (!sample(&p, s, 0, &loss, &w, &label)) {
      sce_fail_label(ex, op, label, p.c);
      return;
    }
    total += loss;
    wsum += w;
  }
  sce_store(p.loss, 0, f64, p.at->reduction == 2 ? total / wsum : total);
}

static void sce_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  sce_run(ex, op, ith, nth, SM_REFERENCE);
}
static void sce_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  sce_run(ex, op, ith, nth, SM_OPTIMISED);
}

void moai_nn_register_softmax(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_SOFTMAX] = softmax_ref;
    table[MOAI_KERNEL_LOG_SOFTMAX] = log_softmax_ref;
    table[MOAI_KERNEL_SOFTMAX_CROSS_ENTROPY_LOSS] = sce_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_SOFTMAX] = softmax_opt;
    table[MOAI_KERNEL_LOG_SOFTMAX] = log_softmax_opt;
    table[MOAI_KERNEL_SOFTMAX_CROSS_ENTROPY_LOSS] = sce_opt;
  }
}
