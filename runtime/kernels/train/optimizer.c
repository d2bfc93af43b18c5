/* The optimizer kernels (abi/moai_ops.h, "optimizer kernels"): one AdamW or
 * SGD update of a parameter in place, and the end of an optimizer step.
 *
 * They reproduce PyTorch 1.13's torch.optim.AdamW and torch.optim.SGD
 * (single-tensor path, torch/optim/adamw.py and sgd.py): the scalars (bias
 * corrections, step size, learning-rate schedule) are computed in double as
 * the Python code does (`1 - beta1 ** step`, `lr / bias_correction1`,
 * `math.sqrt(bias_correction2)`), then rounded to float32 where ATen turns
 * a Python scalar into the tensor's dtype; the tensor arithmetic is float32
 * in ATen's operation order:
 *   mul_(s)            x * s
 *   add_(y, alpha=a)   x + a * y
 *   addcmul_(y, z, value=a)   x + a * y * z
 *   addcdiv_(y, z, value=a)   x + a * y / z
 * The gradient is grad / loss_weight (grad accumulates loss_weight_k *
 * dloss_k over the micro-batches; moai_ops.h). Step and loss_weight are only
 * read here: OPTIMIZER_FINISH changes them in an op of its own, after a
 * barrier. Every kernel splits elements over (ith, nth). */
#include <math.h>
#include <stdio.h>

#include "kernels/train/train_internal.h"

/* The scalars of one update, the same for every element and thread. */
typedef struct opt_scalars_t {
  float loss_weight;
  /* adamw */
  float decay;          /* 1 - lr * weight_decay */
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float bc2_sqrt;       /* sqrt(1 - beta2 ** t) */
  float eps;
  float neg_step_size;  /* -(lr / (1 - beta1 ** t)) */
  /* sgd */
  float weight_decay, momentum, one_minus_dampening, neg_lr;
  bool first_step;      /* t == 1: the momentum buffer starts as d */
} opt_scalars_t;

static bool is_f32(const moai_tensor_t *t) {
  return t->region != MOAI_REGION_NONE && t->dtype == MOAI_ABI_F32;
}

static bool is_scalar(const moai_tensor_t *t, int32_t dtype) {
  return t->region != MOAI_REGION_NONE && t->dtype == dtype && moai_tensor_numel(t) == 1;
}

/* Reports a malformed descriptor once (thread 0). */
static void fail(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, const char *msg) {
  if (ith == 0) moai_kernel_fail(ex, op, msg);
}

/* Checks the operands common to adamw (n_in 6) and sgd (n_in 5): f32 param
 * and grad of one size, the i64 step and f32 loss_weight scalars, f32
 * moments of the param's size; reads step, loss_weight and the attrs. */
static bool load_common(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                        uint32_t n_in, const char *kernel, moai_attrs_optimizer_t *attrs,
                        int64_t *out_step, float *out_lw) {
  char msg[160];
  if (op->n_in != n_in || op->n_out != 0 ||
      !moai_kernel_attrs_load(op, attrs, sizeof(*attrs), sizeof(*attrs))) {
    snprintf(msg, sizeof(msg), "%s: malformed descriptor (%u operands, %u results, %u attribute "
             "bytes)", kernel, op->n_in, op->n_out, op->attrs_size);
    fail(ex, op, ith, msg);
    return false;
  }
  const moai_tensor_t *param = moai_op_in(op, 0), *grad = moai_op_in(op, 1);
  const moai_tensor_t *step = moai_op_in(op, n_in - 2), *lw = moai_op_in(op, n_in - 1);
  int64_t numel = moai_tensor_numel(param);
  bool ok = is_f32(param) && is_f32(grad) && moai_tensor_numel(grad) == numel;
  for (uint32_t i = 2; ok && i < n_in - 2; ++i) {
    const moai_tensor_t *t = moai_op_in(op, i);
    ok = t->region == MOAI_REGION_NONE || (is_f32(t) && moai_tensor_numel(t) == numel);
  }
  if (!ok || !is_scalar(step, MOAI_ABI_I64) || !is_scalar(lw, MOAI_ABI_F32)) {
    snprintf(msg, sizeof(msg), "%s: needs float32 parameter, gradient and state of one size, "
             "an int64 step and a float32 loss weight", kernel);
    fail(ex, op, ith, msg);
    return false;
  }
  *out_step = *(const int64_t *)moai_tensor_ptr(ex, step);
  *out_lw = *(const float *)moai_tensor_ptr(ex, lw);
  if (!(*out_lw > 0.0f) || isinf(*out_lw)) {
    snprintf(msg, sizeof(msg), "%s: the accumulated loss weight is %g: no loss was counted "
             "this step (every label ignored?)", kernel, (double)*out_lw);
    fail(ex, op, ith, msg);
    return false;
  }
  return true;
}

static void adamw_scalars(const moai_attrs_optimizer_t *a, int64_t step, float lw,
                          opt_scalars_t *s) {
  double lr = moai_optimizer_lr(a, step);
  double t = (double)(step + 1);
  double bias_correction1 = 1.0 - pow(a->beta1, t);
  double bias_correction2 = 1.0 - pow(a->beta2, t);
  double step_size = lr / bias_correction1;
  *s = (opt_scalars_t){
      .loss_weight = lw,
      .decay = (float)(1.0 - lr * a->weight_decay),
      .beta1 = (float)a->beta1,
      .one_minus_beta1 = (float)(1.0 - a->beta1),
      .beta2 = (float)a->beta2,
      .one_minus_beta2 = (float)(1.0 - a->beta2),
      .bc2_sqrt = (float)sqrt(bias_correction2),
      .eps = (float)a->eps,
      .neg_step_size = (float)-step_size,
  };
}

static void sgd_scalars(const moai_attrs_optimizer_t *a, int64_t step, float lw,
                        opt_scalars_t *s) {
  double lr = moai_optimizer_lr(a, step);
  *s = (opt_scalars_t){
      .loss_weight = lw,
      .weight_decay = (float)a->weight_decay,
      .momentum = (float)a->momentum,
      .one_minus_dampening = (float)(1.0 - a->dampening),
      .neg_lr = (float)-lr,
      .first_step = step == 0,
  };
}

/* Loads and checks adamw's operands (exp_avg and exp_avg_sq are required)
 * and computes its scalars; false, reported once, on a bad descriptor. */
static bool adamw_prepare(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                          opt_scalars_t *out_s) {
  moai_attrs_optimizer_t a;
  int64_t step;
  float lw;
  if (!load_common(ex, op, ith, 6, "adamw", &a, &step, &lw)) return false;
  if (moai_op_in(op, 2)->region == MOAI_REGION_NONE ||
      moai_op_in(op, 3)->region == MOAI_REGION_NONE) {
    fail(ex, op, ith, "adamw: exp_avg and exp_avg_sq are required");
    return false;
  }
  adamw_scalars(&a, step, lw, out_s);
  return true;
}

/* Loads and checks sgd's operands (a momentum other than 0 needs the
 * momentum buffer) and computes its scalars; false, reported once, on a bad
 * descriptor. */
static bool sgd_prepare(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                        moai_attrs_optimizer_t *out_attrs, opt_scalars_t *out_s) {
  int64_t step;
  float lw;
  if (!load_common(ex, op, ith, 5, "sgd", out_attrs, &step, &lw)) return false;
  if (out_attrs->momentum != 0.0 && moai_op_in(op, 2)->region == MOAI_REGION_NONE) {
    fail(ex, op, ith, "sgd: momentum needs a momentum_buffer operand");
    return false;
  }
  sgd_scalars(out_attrs, step, lw, out_s);
  return true;
}

/* ---- reference: one element at a time, exactly the formulas above ---------- */

static void adamw_element(const opt_scalars_t *s, float *p, float *grad, float *m, float *v) {
  float g = *grad / s->loss_weight;
  *p = *p * s->decay;
  *m = *m * s->beta1;
  *m = *m + s->one_minus_beta1 * g;
  *v = *v * s->beta2;
  *v = *v + s->one_minus_beta2 * g * g;
  float denom = sqrtf(*v) / s->bc2_sqrt;
  denom = denom + s->eps;
  *p = *p + s->neg_step_size * *m / denom;
  *grad = 0.0f;
}

static void adamw_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  opt_scalars_t s;
  if (!adamw_prepare(ex, op, ith, &s)) return;
  float *p = moai_tensor_ptr(ex, moai_op_in(op, 0)), *g = moai_tensor_ptr(ex, moai_op_in(op, 1)),
        *m = moai_tensor_ptr(ex, moai_op_in(op, 2)), *v = moai_tensor_ptr(ex, moai_op_in(op, 3));
  long long b, e;
  moai_split_range(moai_tensor_numel(moai_op_in(op, 0)), ith, nth, &b, &e);
  for (long long i = b; i < e; ++i) adamw_element(&s, &p[i], &g[i], &m[i], &v[i]);
}

static void sgd_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_attrs_optimizer_t a;
  opt_scalars_t s;
  if (!sgd_prepare(ex, op, ith, &a, &s)) return;
  bool has_buf = a.momentum != 0.0;
  float *p = moai_tensor_ptr(ex, moai_op_in(op, 0)), *g = moai_tensor_ptr(ex, moai_op_in(op, 1));
  float *buf = has_buf ? moai_tensor_ptr(ex, moai_op_in(op, 2)) : NULL;
  long long b, e;
  moai_split_range(moai_tensor_numel(moai_op_in(op, 0)), ith, nth, &b, &e);
  for (long long i = b; i < e; ++i) {
    float d = g[i] / s.loss_weight;
    if (s.weight_decay != 0.0f) d = d + s.weight_decay * p[i];
    if (has_buf) {
      if (s.first_step) {
        buf[i] = d;
      } else {
        buf[i] = buf[i] * s.momentum;
        buf[i] = buf[i] + s.one_minus_dampening * d;
      }
      d = a.nesterov ? d + s.momentum * buf[i] : buf[i];
    }
    p[i] = p[i] + s.neg_lr * d;
    g[i] = 0.0f;
  }
}

/* ---- generic: the same operations in the same order, in loops the compiler
 * vectorises (no contraction: C11 mode keeps -ffp-contract=off) ------------- */

static void adamw_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  opt_scalars_t s;
  if (!adamw_prepare(ex, op, ith, &s)) return;
  float *restrict p = moai_tensor_ptr(ex, moai_op_in(op, 0));
  float *restrict g = moai_tensor_ptr(ex, moai_op_in(op, 1));
  float *restrict m = moai_tensor_ptr(ex, moai_op_in(op, 2));
  float *restrict v = moai_tensor_ptr(ex, moai_op_in(op, 3));
  long long b, e;
  moai_split_range(moai_tensor_numel(moai_op_in(op, 0)), ith, nth, &b, &e);
  const float lwf = s.loss_weight, decay = s.decay, b1 = s.beta1, omb1 = s.one_minus_beta1,
              b2 = s.beta2, omb2 = s.one_minus_beta2, bc2 = s.bc2_sqrt, eps = s.eps,
              nss = s.neg_step_size;
  for (long long i = b; i < e; ++i) {
    float gi = g[i] / lwf;
    float pi = p[i] * decay;
    float mi = m[i] * b1;
    mi = mi + omb1 * gi;
    float vi = v[i] * b2;
    vi = vi + omb2 * gi * gi;
    float denom = __builtin_sqrtf(vi) / bc2 + eps;
    p[i] = pi + nss * mi / denom;
    m[i] = mi;
    v[i] = vi;
    g[i] = 0.0f;
  }
}

static void sgd_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_attrs_optimizer_t a;
  opt_scalars_t s;
  if (!sgd_prepare(ex, op, ith, &a, &s)) return;
  float *restrict p = moai_tensor_ptr(ex, moai_op_in(op, 0));
  float *restrict g = moai_tensor_ptr(ex, moai_op_in(op, 1));
  long long b, e;
  moai_split_range(moai_tensor_numel(moai_op_in(op, 0)), ith, nth, &b, &e);
  const float lwf = s.loss_weight, wd = s.weight_decay, mom = s.momentum,
              omd = s.one_minus_dampening, nlr = s.neg_lr;
  if (a.momentum == 0.0) {
    for (long long i = b; i < e; ++i) {
      float d = g[i] / lwf;
      if (wd != 0.0f) d = d + wd * p[i];
      p[i] = p[i] + nlr * d;
      g[i] = 0.0f;
    }
    return;
  }
  float *restrict buf = moai_tensor_ptr(ex, moai_op_in(op, 2));
  const bool first = s.first_step, nesterov = a.nesterov != 0;
  for (long long i = b; i < e; ++i) {
    float d = g[i] / lwf;
    if (wd != 0.0f) d = d + wd * p[i];
    float bi = first ? d : buf[i] * mom;
    if (!first) bi = bi + omd * d;
    buf[i] = bi;
    d = nesterov ? d + mom * bi : bi;
    p[i] = p[i] + nlr * d;
    g[i] = 0.0f;
  }
}

/* step += 1, loss_weight = 0: by thread 0 only, after the updates (the
 * update function puts a barrier between ops). */
static void optimizer_finish(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                             int nth) {
  (void)nth;
  if (ith != 0) return;
  if (op->n_in != 2 || op->n_out != 0 || !is_scalar(moai_op_in(op, 0), MOAI_ABI_I64) ||
      !is_scalar(moai_op_in(op, 1), MOAI_ABI_F32)) {
    moai_kernel_fail(ex, op, "optimizer_finish: needs an int64 step and a float32 loss weight");
    return;
  }
  *(int64_t *)moai_tensor_ptr(ex, moai_op_in(op, 0)) += 1;
  *(float *)moai_tensor_ptr(ex, moai_op_in(op, 1)) = 0.0f;
}

void moai_train_register_optimizer(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_ADAMW] = adamw_ref;
    table[MOAI_KERNEL_SGD] = sgd_ref;
    table[MOAI_KERNEL_OPTIMIZER_FINISH] = optimizer_finish;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_ADAMW] = adamw_opt;
    table[MOAI_KERNEL_SGD] = sgd_opt;
    table[MOAI_KERNEL_OPTIMIZER_FINISH] = optimizer_finish;
  }
}
