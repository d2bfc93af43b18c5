/* Fused SwiGLU (moai.swiglu, made by moai-fuse from mul(mul(g, sigmoid(g)),
 * u)) and its gradient, f32 and f64.
 *
 * Forward: y = (g s) u with s = sigmoid(g), in the unfused chain's order and
 * precision; the f32 sigmoid is the one the unfused sigmoid kernel of the
 * same ISA level uses (the reference's double-precision formula, or
 * fastmath.h's vectorisable one), so fused and unfused f32 agree to the
 * last bit up to contraction into FMAs.
 * Gradient (silu'(g) = s (1 + g (1 - s))): du = dy g s,
 * dg = dy u s (1 + g (1 - s)).
 * Elementwise: threads split the flat index range; one pass, no scratch. */
#include <math.h>
#include <stdio.h>

#include "kernels/elementwise/fastmath.h"
#include "kernels/nn/nn_internal.h"

static inline float sigmoid_ref_f32(float x) { return (float)(1.0 / (1.0 + exp(-(double)x))); }
static inline double sigmoid_f64(double x) { return 1.0 / (1.0 + exp(-x)); }

#define SWIGLU_KERNELS(SUF, T, SIG)                                                      \
  static void swiglu_fwd_##SUF(const T *G, const T *U, T *Y, long long b, long long e) { \
    for (long long i = b; i < e; ++i) {                                                  \
      T g = G[i], silu = g * SIG(g);                                                     \
      Y[i] = silu * U[i];                                                                \
    }                                                                                    \
  }                                                                                      \
  static void swiglu_bwd_##SUF(const T *G, const T *U, const T *DY, T *DG, T *DU,        \
                               long long b, long long e) {                               \
    for (long long i = b; i < e; ++i) {                                                  \
      T g = G[i], s = SIG(g), dy = DY[i];                                                \
      DU[i] = dy * (g * s);                                                              \
      DG[i] = dy * U[i] * (s * ((T)1 + g * ((T)1 - s)));                                 \
    }                                                                                    \
  }

SWIGLU_KERNELS(ref_f32, float, sigmoid_ref_f32)
SWIGLU_KERNELS(fast_f32, float, moai_sigmoidf_fast)
SWIGLU_KERNELS(f64, double, sigmoid_f64)

/* Checks operand counts, dtypes and shapes (every operand and result of x's
 * shape); reports from thread 0. */
static bool swiglu_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                         const char *kname, uint32_t n_in, uint32_t n_out, int64_t *numel) {
  char msg[160];
  msg[0] = 0;
  if (op->n_in < n_in || op->n_out < n_out) {
    snprintf(msg, sizeof(msg), "%s: wrong operand or result count", kname);
  } else {
    const moai_tensor_t *g = moai_op_in(op, 0);
    for (uint32_t i = 0; i < n_in + n_out && !msg[0]; ++i) {
      const moai_tensor_t *t = i < n_in ? moai_op_in(op, i) : moai_op_out(op, i - n_in);
      bool same = t->dtype == g->dtype && t->rank == g->rank;
      for (int32_t d = 0; same && d < g->rank; ++d) same = t->dims[d] == g->dims[d];
      if (!same)
        snprintf(msg, sizeof(msg), "%s: %s %u must have the shape and dtype of operand 0", kname,
                 i < n_in ? "operand" : "result", i < n_in ? i : i - n_in);
    }
    *numel = moai_tensor_numel(g);
  }
  if (msg[0]) {
    if (ith == 0) moai_kernel_fail(ex, op, msg);
    return false;
  }
  return true;
}

static void swiglu_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                       bool reference) {
  int64_t n = 0;
  if (!swiglu_setup(ex, op, ith, "swiglu", 2, 1, &n)) return;
  const void *g = moai_tensor_ptr(ex, moai_op_in(op, 0)), *u = moai_tensor_ptr(ex, moai_op_in(op, 1));
  void *y = moai_tensor_ptr(ex, moai_op_out(op, 0));
  long long b, e;
  moai_split_range(n, ith, nth, &b, &e);
  int32_t dtype = moai_op_in(op, 0)->dtype;
  if (dtype == MOAI_ABI_F32 && reference) swiglu_fwd_ref_f32(g, u, y, b, e);
  else if (dtype == MOAI_ABI_F32) swiglu_fwd_fast_f32(g, u, y, b, e);
  else if (dtype == MOAI_ABI_F64) swiglu_fwd_f64(g, u, y, b, e);
  else moai_nn_fail_dtype(ex, op, ith, "swiglu", dtype);
}

static void swiglu_grad_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                            bool reference) {
  int64_t n = 0;
  if (!swiglu_setup(ex, op, ith, "swiglu_grad", 3, 2, &n)) return;
  const void *g = moai_tensor_ptr(ex, moai_op_in(op, 0)), *u = moai_tensor_ptr(ex, moai_op_in(op, 1));
  const void *dy = moai_tensor_ptr(ex, moai_op_in(op, 2));
  void *dg = moai_tensor_ptr(ex, moai_op_out(op, 0)), *du = moai_tensor_ptr(ex, moai_op_out(op, 1));
  long long b, e;
  moai_split_range(n, ith, nth, &b, &e);
  int32_t dtype = moai_op_in(op, 0)->dtype;
  if (dtype == MOAI_ABI_F32 && reference) swiglu_bwd_ref_f32(g, u, dy, dg, du, b, e);
  else if (dtype == MOAI_ABI_F32) swiglu_bwd_fast_f32(g, u, dy, dg, du, b, e);
  else if (dtype == MOAI_ABI_F64) swiglu_bwd_f64(g, u, dy, dg, du, b, e);
  else moai_nn_fail_dtype(ex, op, ith, "swiglu_grad", dtype);
}

static void swiglu_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  swiglu_run(ex, op, ith, nth, true);
}
static void swiglu_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  swiglu_run(ex, op, ith, nth, false);
}
static void swiglu_grad_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  swiglu_grad_run(ex, op, ith, nth, true);
}
static void swiglu_grad_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  swiglu_grad_run(ex, op, ith, nth, false);
}

void moai_nn_register_swiglu(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa != MOAI_ISA_REFERENCE && isa != MOAI_ISA_GENERIC) return;
  bool ref = isa == MOAI_ISA_REFERENCE;
  table[MOAI_KERNEL_SWIGLU] = ref ? swiglu_ref : swiglu_opt;
  table[MOAI_KERNEL_SWIGLU_GRAD] = ref ? swiglu_grad_ref : swiglu_grad_opt;
}
