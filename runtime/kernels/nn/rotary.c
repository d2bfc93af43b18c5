/* Fused rotary position embedding (moai.rotary, made by moai-fuse from the
 * exporters' x * cos + rotate_half(x) * sin) and its gradient, f32 and f64.
 * RoFormer (Su et al., 2021, eq. 34) in the half-split layout of GPT-NeoX
 * and Llama: rotate_half(x) = concat(-x[..., D/2:], x[..., :D/2]).
 *
 * Forward, per row of D and j < D/2 (h = D/2):
 *   y[j]     = x[j] c[j]         + (-x[j + h]) s[j]
 *   y[j + h] = x[j + h] c[j + h] + x[j] s[j + h]
 * in the unfused chain's order (mul, neg, mul, add), so f32 agrees with it.
 * Gradient (the transpose of that rotation):
 *   dx[j]     = dy[j] c[j]         + dy[j + h] s[j + h]
 *   dx[j + h] = dy[j + h] c[j + h] - dy[j] s[j]
 * cos and sin broadcast to x right-aligned with their last dim D (rows of
 * [B,1,S,D] against [B,H,S,D]): each x row finds its cos/sin row by its
 * index. Threads split the rows; the loops over a half row vectorise. */
#include <stdio.h>

#include "kernels/nn/nn_internal.h"

/* Offset (in elements) of the cos/sin row that x's row `row` reads. */
static int64_t cs_row_offset(const moai_tensor_t *x, const moai_tensor_t *c, int64_t row) {
  int64_t off = 0, stride = c->dims[c->rank - 1];
  for (int32_t ax = x->rank - 2; ax >= 0; --ax) {
    int64_t idx = row % x->dims[ax];
    row /= x->dims[ax];
    int32_t k = ax - (x->rank - c->rank);
    if (k < 0) break;
    if (c->dims[k] != 1) off += idx * stride;
    stride *= c->dims[k];
  }
  return off;
}

#define ROTARY_KERNELS(SUF, T)                                                           \
  static void rotary_fwd_##SUF(const moai_tensor_t *xt, const moai_tensor_t *ct,          \
                               const T *X, const T *C, const T *S, T *Y, int64_t rows,    \
                               int64_t d, int ith, int nth) {                             \
    int64_t h = d / 2;                                                                    \
    long long begin, end;                                                                 \
    moai_split_range(rows, ith, nth, &begin, &end);                                       \
    for (long long r = begin; r < end; ++r) {                                             \
      int64_t o = cs_row_offset(xt, ct, r);                                               \
      const T *x = X + r * d, *c = C + o, *s = S + o;                                     \
      T *y = Y + r * d;                                                                   \
      for (int64_t j = 0; j < h; ++j) y[j] = x[j] * c[j] + (-x[j + h]) * s[j];            \
      for (int64_t j = h; j < d; ++j) y[j] = x[j] * c[j] + x[j - h] * s[j];               \
    }                                                                                     \
  }                                                                                       \
  static void rotary_bwd_##SUF(const moai_tensor_t *xt, const moai_tensor_t *ct,          \
                               const T *DY, const T *C, const T *S, T *DX, int64_t rows,  \
                               int64_t d, int ith, int nth) {                             \
    int64_t h = d / 2;                                                                    \
    long long begin, end;                                                                 \
    moai_split_range(rows, ith, nth, &begin, &end);                                       \
    for (long long r = begin; r < end; ++r) {                                             \
      int64_t o = cs_row_offset(xt, ct, r);                                               \
      const T *g = DY + r * d, *c = C + o, *s = S + o;                                    \
      T *dx = DX + r * d;                                                                 \
      for (int64_t j = 0; j < h; ++j) dx[j] = g[j] * c[j] + g[j + h] * s[j + h];          \
      for (int64_t j = h; j < d; ++j) dx[j] = g[j] * c[j] - g[j - h] * s[j - h];          \
    }                                                                                     \
  }

ROTARY_KERNELS(f32, float)
ROTARY_KERNELS(f64, double)

/* Checks the operands: x (or dy) of rank >= 1 with an even last dim D, cos
 * and sin of one shape broadcasting to x with last dim D, the result of x's
 * shape, one float dtype; reports from thread 0. */
static bool rotary_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                         const char *kname, int64_t *rows, int64_t *d) {
  char msg[192];
  msg[0] = 0;
  if (op->n_in < 3 || op->n_out < 1) {
    snprintf(msg, sizeof(msg), "%s: wrong operand or result count", kname);
  } else {
    const moai_tensor_t *x = moai_op_in(op, 0), *c = moai_op_in(op, 1), *s = moai_op_in(op, 2);
    const moai_tensor_t *y = moai_op_out(op, 0);
    bool ok = x->rank >= 1 && c->rank >= 1 && c->rank <= x->rank && c->rank == s->rank &&
              y->rank == x->rank && c->dtype == x->dtype && s->dtype == x->dtype &&
              y->dtype == x->dtype;
    for (int32_t i = 0; ok && i < c->rank; ++i) {
      int64_t xd = x->dims[x->rank - c->rank + i];
      ok = c->dims[i] == s->dims[i] && (c->dims[i] == xd || (c->dims[i] == 1 && i < c->rank - 1));
    }
    for (int32_t i = 0; ok && i < x->rank; ++i) ok = y->dims[i] == x->dims[i];
    if (!ok || x->dims[x->rank - 1] % 2 != 0) {
      snprintf(msg, sizeof(msg),
               "%s: cos and sin must share one shape broadcasting to operand 0 (even last dim) with "
               "its last dim, and the result must have operand 0's shape and dtype", kname);
    } else {
      *d = x->dims[x->rank - 1];
      *rows = *d ? moai_tensor_numel(x) / *d : 0;
    }
  }
  if (msg[0]) {
    if (ith == 0) moai_kernel_fail(ex, op, msg);
    return false;
  }
  return true;
}

static void rotary_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  int64_t rows = 0, d = 0;
  if (!rotary_setup(ex, op, ith, "rotary", &rows, &d)) return;
  const moai_tensor_t *xt = moai_op_in(op, 0), *ct = moai_op_in(op, 1);
  const void *x = moai_tensor_ptr(ex, xt), *c = moai_tensor_ptr(ex, ct);
  const void *s = moai_tensor_ptr(ex, moai_op_in(op, 2));
  void *y = moai_tensor_ptr(ex, moai_op_out(op, 0));
  if (xt->dtype == MOAI_ABI_F32) rotary_fwd_f32(xt, ct, x, c, s, y, rows, d, ith, nth);
  else if (xt->dtype == MOAI_ABI_F64) rotary_fwd_f64(xt, ct, x, c, s, y, rows, d, ith, nth);
  else moai_nn_fail_dtype(ex, op, ith, "rotary", xt->dtype);
}

static void rotary_grad_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  int64_t rows = 0, d = 0;
  if (!rotary_setup(ex, op, ith, "rotary_grad", &rows, &d)) return;
  const moai_tensor_t *gt = moai_op_in(op, 0), *ct = moai_op_in(op, 1);
  const void *g = moai_tensor_ptr(ex, gt), *c = moai_tensor_ptr(ex, ct);
  const void *s = moai_tensor_ptr(ex, moai_op_in(op, 2));
  void *dx = moai_tensor_ptr(ex, moai_op_out(op, 0));
  if (gt->dtype == MOAI_ABI_F32) rotary_bwd_f32(gt, ct, g, c, s, dx, rows, d, ith, nth);
  else if (gt->dtype == MOAI_ABI_F64) rotary_bwd_f64(gt, ct, g, c, s, dx, rows, d, ith, nth);
  else moai_nn_fail_dtype(ex, op, ith, "rotary_grad", gt->dtype);
}

/* One version for every ISA: the loops are plain multiply-adds that the
 * compiler vectorises; the unit tests compare them with the unfused
 * reference kernels. */
void moai_nn_register_rotary(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa != MOAI_ISA_REFERENCE && isa != MOAI_ISA_GENERIC) return;
  table[MOAI_KERNEL_ROTARY] = rotary_kernel;
  table[MOAI_KERNEL_ROTARY_GRAD] = rotary_grad_kernel;
}
