/* ConstantOfShape (the output filled with the attribute's value bytes; the
 * shape operand, if passed, is ignored: the output dims hold it) and Range
 * (start, limit, delta scalar operands of f32, f64, int16, int32 or int64;
 * out[i] = start + i * delta for the output's n elements, the compiler having
 * computed n = max(ceil((limit - start) / delta), 0)). Integer Range wraps;
 * f32 Range computes in double and rounds once. */
#include "kernels/elementwise/ew.h"

/* ---- ConstantOfShape ---- */

static bool fill_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                       moai_attrs_fill_t *a) {
  if (!moai_ew_check_arity(ex, op, ith, 0, 1, 1)) return false;
  const moai_tensor_t *out = moai_op_out(op, 0);
  if (!moai_ew_dtype_ok(out->dtype)) {
    moai_ew_fail_dtype(ex, op, ith, out->dtype);
    return false;
  }
  if (op->attrs_size < sizeof *a) {
    moai_ew_fail(ex, op, ith, "constant_of_shape: missing attributes");
    return false;
  }
  memcpy(a, moai_op_attrs(op), sizeof *a);
  return true;
}

static void constant_of_shape_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                  int nth) {
  moai_attrs_fill_t a;
  if (!fill_setup(ex, op, ith, &a)) return;
  const moai_tensor_t *out = moai_op_out(op, 0);
  const size_t es = moai_ew_dtype_size(out->dtype);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  for (int64_t i = begin; i < end; ++i) memcpy(po + (size_t)i * es, a.value, es);
}

#define DEF_FILL(NAME, T)                                                   \
  static void NAME(void *o_, const unsigned char *value, int64_t n) {       \
    T v, *o = o_;                                                           \
    memcpy(&v, value, sizeof v);                                            \
    for (int64_t i = 0; i < n; ++i) o[i] = v;                               \
  }
DEF_FILL(fill_2, uint16_t)
DEF_FILL(fill_4, uint32_t)
DEF_FILL(fill_8, uint64_t)

static void constant_of_shape_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                  int nth) {
  moai_attrs_fill_t a;
  if (!fill_setup(ex, op, ith, &a)) return;
  const moai_tensor_t *out = moai_op_out(op, 0);
  const size_t es = moai_ew_dtype_size(out->dtype);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  if (begin >= end) return;
  unsigned char *o = po + (size_t)begin * es;
  int64_t n = end - begin;
  bool same = true; /* every byte equal (zeros, -1): memset */
  for (size_t b = 1; b < es; ++b) same = same && a.value[b] == a.value[0];
  if (same) {
    memset(o, a.value[0], (size_t)n * es);
    return;
  }
  switch (es) {
    case 2: fill_2(o, a.value, n); break;
    case 4: fill_4(o, a.value, n); break;
    default: fill_8(o, a.value, n); break;
  }
}

/* ---- Range ---- */

#define DEF_RANGE_INT(NAME, T, U)                                             \
  static void NAME(void *o_, const void *s, const void *d, int64_t b, int64_t e) { \
    T *o = o_, start, delta;                                                  \
    memcpy(&start, s, sizeof start);                                          \
    memcpy(&delta, d, sizeof delta);                                          \
    for (int64_t i = b; i < e; ++i) o[i] = (T)((U)start + (U)i * (U)delta);    \
  }
DEF_RANGE_INT(range_i16, int16_t, uint32_t)
DEF_RANGE_INT(range_i32, int32_t, uint32_t)
DEF_RANGE_INT(range_i64, int64_t, uint64_t)

static void range_f32(void *o_, const void *s, const void *d, int64_t b, int64_t e) {
  float *o = o_, start, delta;
  memcpy(&start, s, sizeof start);
  memcpy(&delta, d, sizeof delta);
  for (int64_t i = b; i < e; ++i) o[i] = (float)((double)start + (double)i * (double)delta);
}
static void range_f64(void *o_, const void *s, const void *d, int64_t b, int64_t e) {
  double *o = o_, start, delta;
  memcpy(&start, s, sizeof start);
  memcpy(&delta, d, sizeof delta);
  for (int64_t i = b; i < e; ++i) o[i] = start + (double)i * delta;
}

typedef void (*range_loop_t)(void *o, const void *start, const void *delta, int64_t b, int64_t e);
static const range_loop_t range_loops[MOAI_EW_DTYPE_TABLE] = {
    [MOAI_ABI_I16] = range_i16, [MOAI_ABI_I32] = range_i32, [MOAI_ABI_I64] = range_i64,
    [MOAI_ABI_F32] = range_f32, [MOAI_ABI_F64] = range_f64};

static void range_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                         bool reference) {
  if (!moai_ew_check_arity(ex, op, ith, 3, 3, 1)) return;
  const moai_tensor_t *out = moai_op_out(op, 0);
  range_loop_t loop = MOAI_EW_LOOKUP(range_loops, out->dtype);
  if (!loop) {
    moai_ew_fail_dtype(ex, op, ith, out->dtype);
    return;
  }
  for (uint32_t k = 0; k < 3; ++k) {
    const moai_tensor_t *t = moai_op_in(op, k);
    if (t->dtype != out->dtype || moai_tensor_numel(t) != 1) {
      moai_ew_fail(ex, op, ith, "range: operand %u must be one %s element", k,
                   moai_ew_dtype_name(out->dtype));
      return;
    }
  }
  if (out->rank != 1) {
    moai_ew_fail(ex, op, ith, "range: the output must be 1-D");
    return;
  }
  const void *start = moai_tensor_ptr(ex, moai_op_in(op, 0));
  const void *delta = moai_tensor_ptr(ex, moai_op_in(op, 2));
  void *po = moai_tensor_ptr(ex, out);
  long long begin, end;
  moai_split_range(out->dims[0], ith, nth, &begin, &end);
  if (reference) {
    for (int64_t i = begin; i < end; ++i) loop(po, start, delta, i, i + 1);
  } else {
    loop(po, start, delta, begin, end);
  }
}
static void range_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  range_kernel(ex, op, ith, nth, true);
}
static void range_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  range_kernel(ex, op, ith, nth, false);
}

void moai_ew_register_fill_range(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_CONSTANT_OF_SHAPE] = constant_of_shape_ref;
    table[MOAI_KERNEL_RANGE] = range_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_CONSTANT_OF_SHAPE] = constant_of_shape_opt;
    table[MOAI_KERNEL_RANGE] = range_opt;
  }
}
