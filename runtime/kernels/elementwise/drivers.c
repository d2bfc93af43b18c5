/* Drivers shared by the elementwise ops: binary (broadcasting, one dtype
 * table per op) and unary (same shape in and out). */
#include <stdio.h>

#include "kernels/elementwise/ew.h"

/* ---- Binary drivers (add ... div, comparisons, and/or) ---- */

/* Checks a binary op's operands; returns the loop or NULL (reported). */
static moai_ew_binary_loop_t binary_setup(const moai_exec_t *ex, const moai_op_desc_t *op,
                                          int ith, const moai_ew_binary_t *b) {
  if (!moai_ew_check_arity(ex, op, ith, 2, 2, 1)) return NULL;
  const moai_tensor_t *x = moai_op_in(op, 0), *y = moai_op_in(op, 1), *out = moai_op_out(op, 0);
  moai_ew_binary_loop_t loop = MOAI_EW_LOOKUP(b->loops, x->dtype);
  if (!loop) {
    moai_ew_fail_dtype(ex, op, ith, x->dtype);
    return NULL;
  }
  int32_t want = b->out_bool ? MOAI_ABI_BOOL : x->dtype;
  if (y->dtype != x->dtype || out->dtype != want) {
    moai_ew_fail(ex, op, ith, "%s: operand dtypes %s, %s -> %s do not match",
                 moai_kernel_name(op->kernel), moai_ew_dtype_name(x->dtype),
                 moai_ew_dtype_name(y->dtype), moai_ew_dtype_name(out->dtype));
    return NULL;
  }
  return loop;
}

static void binary_report(const moai_exec_t *ex, const moai_op_desc_t *op,
                          const moai_ew_binary_t *b) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", moai_kernel_name(op->kernel),
           b->error ? b->error : "failed");
  moai_kernel_fail(ex, op, msg);
}

void moai_ew_binary_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                        int nth, const moai_ew_binary_t *b) {
  moai_ew_binary_loop_t loop = binary_setup(ex, op, ith, b);
  if (!loop) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *y = moai_op_in(op, 1), *out = moai_op_out(op, 0);
  /* Reference broadcasting trusts nothing the optimised path computes, but
   * still refuses shapes that would read out of bounds. */
  moai_ew_shape_t s;
  if (!moai_ew_shape_init(&s, ex, op, ith, out, 0, 2)) return;
  const size_t esz = moai_ew_dtype_size(x->dtype), osz = moai_ew_dtype_size(out->dtype);
  const unsigned char *px = moai_ew_ptr(ex, x), *py = moai_ew_ptr(ex, y);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  int err = 0;
  int64_t idx[MOAI_MAX_RANK];
  for (int64_t i = begin; i < end; ++i) {
    moai_ew_unravel(out, i, idx);
    err |= loop(po + (size_t)i * osz, px + (size_t)moai_ew_ref_offset(out, x, idx) * esz,
                py + (size_t)moai_ew_ref_offset(out, y, idx) * esz, 1, 0, 0);
  }
  if (err) binary_report(ex, op, b);
}

typedef struct binary_ctx_t {
  moai_ew_binary_loop_t loop;
  unsigned char *o;
  const unsigned char *x, *y;
  size_t esz, osz;
} binary_ctx_t;

static int binary_run(void *ctx, int64_t pos, int64_t n, const int64_t *off,
                      const int64_t *inner) {
  const binary_ctx_t *c = ctx;
  return c->loop(c->o + (size_t)pos * c->osz, c->x + (size_t)off[0] * c->esz,
                 c->y + (size_t)off[1] * c->esz, n, inner[0], inner[1]);
}

void moai_ew_binary_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                        int nth, const moai_ew_binary_t *b) {
  moai_ew_binary_loop_t loop = binary_setup(ex, op, ith, b);
  if (!loop) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *y = moai_op_in(op, 1), *out = moai_op_out(op, 0);
  moai_ew_shape_t s;
  if (!moai_ew_shape_init(&s, ex, op, ith, out, 0, 2)) return;
  int64_t strides[2][MOAI_MAX_RANK];
  moai_ew_shape_strides(&s, x, strides[0]);
  moai_ew_shape_strides(&s, y, strides[1]);
  binary_ctx_t c = {loop, moai_ew_ptr(ex, out), moai_ew_ptr(ex, x), moai_ew_ptr(ex, y),
                    moai_ew_dtype_size(x->dtype), moai_ew_dtype_size(out->dtype)};
  long long begin, end;
  moai_split_range(s.numel, ith, nth, &begin, &end);
  if (moai_ew_walk(&s, 2, (const int64_t(*)[MOAI_MAX_RANK])strides, begin, end,
                   binary_run, &c))
    binary_report(ex, op, b);
}

/* ---- Unary driver ---- */

bool moai_ew_unary_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                         uint32_t max_in, int32_t out_dtype) {
  if (!moai_ew_check_arity(ex, op, ith, 1, max_in, 1)) return false;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  int32_t want = out_dtype ? out_dtype : x->dtype;
  if (out->dtype != want) {
    moai_ew_fail(ex, op, ith, "%s: output dtype %s, expected %s", moai_kernel_name(op->kernel),
                 moai_ew_dtype_name(out->dtype), moai_ew_dtype_name(want));
    return false;
  }
  if (moai_tensor_numel(x) != moai_tensor_numel(out)) {
    moai_ew_fail(ex, op, ith, "%s: input and output sizes differ", moai_kernel_name(op->kernel));
    return false;
  }
  return true;
}

void moai_ew_unary_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                       moai_ew_unary_loop_t loop, const void *params, bool reference) {
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  const size_t xs = moai_ew_dtype_size(x->dtype), os = moai_ew_dtype_size(out->dtype);
  const unsigned char *px = moai_ew_ptr(ex, x);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  if (reference) {
    for (int64_t i = begin; i < end; ++i)
      loop(po + (size_t)i * os, px + (size_t)i * xs, 1, params);
  } else if (end > begin) {
    loop(po + (size_t)begin * os, px + (size_t)begin * xs, end - begin, params);
  }
}

void moai_ew_unary(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                   const moai_ew_unary_loop_t *loops, const void *params, bool reference) {
  if (!moai_ew_unary_setup(ex, op, ith, 1, 0)) return;
  int32_t dt = moai_op_in(op, 0)->dtype;
  moai_ew_unary_loop_t loop = MOAI_EW_LOOKUP(loops, dt);
  if (!loop) {
    moai_ew_fail_dtype(ex, op, ith, dt);
    return;
  }
  moai_ew_unary_run(ex, op, ith, nth, loop, params, reference);
}
