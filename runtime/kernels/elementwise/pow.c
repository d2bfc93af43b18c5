/* Pow (ONNX opset 15): base of f32, f64, f16, bf16, int32 or int64, exponent
 * of any numeric dtype, result in the base's dtype, numpy broadcasting.
 *  - float base: pow() in double, rounded once to the base's dtype;
 *  - integer base, integer exponent: exact power by squaring, wrapping like
 *    numpy; a negative exponent gives 1/x^|e| truncated (1, -1 or 0; 0 for a
 *    zero base, where numpy raises);
 *  - integer base, float exponent: pow() in double, truncated toward zero and
 *    saturated like Cast (NaN -> 0). */
#include <math.h>

#include "kernels/elementwise/ew.h"

static bool is_int_dtype(int32_t dt) {
  switch (dt) {
    case MOAI_ABI_I8: case MOAI_ABI_I16: case MOAI_ABI_I32: case MOAI_ABI_I64:
    case MOAI_ABI_U8: case MOAI_ABI_U16: case MOAI_ABI_U32: case MOAI_ABI_U64:
      return true;
    default:
      return false;
  }
}

static bool base_ok(int32_t dt) {
  return dt == MOAI_ABI_F32 || dt == MOAI_ABI_F64 || dt == MOAI_ABI_F16 ||
         dt == MOAI_ABI_BF16 || dt == MOAI_ABI_I32 || dt == MOAI_ABI_I64;
}

static double load_f64(const void *p, int32_t dt) {
  switch (dt) {
    case MOAI_ABI_F32: return *(const float *)p;
    case MOAI_ABI_F64: return *(const double *)p;
    case MOAI_ABI_F16: return moai_f16_to_f32(*(const uint16_t *)p);
    case MOAI_ABI_BF16: return moai_bf16_to_f32(*(const uint16_t *)p);
    case MOAI_ABI_I8: return *(const int8_t *)p;
    case MOAI_ABI_I16: return *(const int16_t *)p;
    case MOAI_ABI_I32: return *(const int32_t *)p;
    case MOAI_ABI_I64: return (double)*(const int64_t *)p;
    case MOAI_ABI_U8: return *(const uint8_t *)p;
    case MOAI_ABI_U16: return *(const uint16_t *)p;
    case MOAI_ABI_U32: return *(const uint32_t *)p;
    case MOAI_ABI_U64: return (double)*(const uint64_t *)p;
    default: return 0;
  }
}

/* Integer exponents; uint64 beyond INT64_MAX saturates (same result). */
static int64_t load_i64(const void *p, int32_t dt) {
  switch (dt) {
    case MOAI_ABI_I8: return *(const int8_t *)p;
    case MOAI_ABI_I16: return *(const int16_t *)p;
    case MOAI_ABI_I32: return *(const int32_t *)p;
    case MOAI_ABI_I64: return *(const int64_t *)p;
    case MOAI_ABI_U8: return *(const uint8_t *)p;
    case MOAI_ABI_U16: return *(const uint16_t *)p;
    case MOAI_ABI_U32: return *(const uint32_t *)p;
    case MOAI_ABI_U64: {
      uint64_t u = *(const uint64_t *)p;
      return u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
    }
    default: return 0;
  }
}

/* x^e in 64-bit wrapping arithmetic. */
static uint64_t ipow(int64_t x, int64_t e) {
  if (e < 0) {
    if (x == 1) return 1;
    if (x == -1) return (e & 1) ? (uint64_t)-1 : 1;
    return 0;
  }
  uint64_t r = 1, b = (uint64_t)x;
  while (e) {
    if (e & 1) r *= b;
    b *= b;
    e >>= 1;
  }
  return r;
}

/* A double truncated toward zero into [lo, hi]; NaN -> 0. */
static int64_t sat_i64(double v, double lo, double hi_excl, int64_t min, int64_t max) {
  if (v != v) return 0;
  if (v < lo) return min;
  if (v >= hi_excl) return max;
  return (int64_t)v;
}

/* One element: o = a ^ b (base dtype bt, exponent dtype et). */
static void pow_elem(void *o, const void *a, const void *b, int32_t bt, int32_t et) {
  if (bt == MOAI_ABI_I32 || bt == MOAI_ABI_I64) {
    int64_t x = bt == MOAI_ABI_I32 ? *(const int32_t *)a : *(const int64_t *)a;
    if (is_int_dtype(et)) {
      uint64_t r = ipow(x, load_i64(b, et));
      if (bt == MOAI_ABI_I32) *(int32_t *)o = (int32_t)(uint32_t)r;
      else *(int64_t *)o = (int64_t)r;
    } else {
      double r = pow((double)x, load_f64(b, et));
      if (bt == MOAI_ABI_I32)
        *(int32_t *)o = (int32_t)sat_i64(r, -2147483648.0, 2147483648.0, INT32_MIN, INT32_MAX);
      else
        *(int64_t *)o = sat_i64(r, -9223372036854775808.0, 9223372036854775808.0,
                                INT64_MIN, INT64_MAX);
    }
    return;
  }
  double r = pow(load_f64(a, bt), load_f64(b, et));
  switch (bt) {
    case MOAI_ABI_F32: *(float *)o = (float)r; break;
    case MOAI_ABI_F64: *(double *)o = r; break;
    case MOAI_ABI_F16: *(uint16_t *)o = moai_f64_to_f16(r); break;
    case MOAI_ABI_BF16: *(uint16_t *)o = moai_f64_to_bf16(r); break;
    default: break;
  }
}

static bool pow_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                      moai_ew_shape_t *s) {
  if (!moai_ew_check_arity(ex, op, ith, 2, 2, 1)) return false;
  const moai_tensor_t *x = moai_op_in(op, 0), *y = moai_op_in(op, 1), *out = moai_op_out(op, 0);
  if (!base_ok(x->dtype)) {
    moai_ew_fail_dtype(ex, op, ith, x->dtype);
    return false;
  }
  if (!is_int_dtype(y->dtype) && y->dtype != MOAI_ABI_F32 && y->dtype != MOAI_ABI_F64 &&
      y->dtype != MOAI_ABI_F16 && y->dtype != MOAI_ABI_BF16) {
    moai_ew_fail(ex, op, ith, "pow: unsupported exponent dtype %s", moai_ew_dtype_name(y->dtype));
    return false;
  }
  if (out->dtype != x->dtype) {
    moai_ew_fail(ex, op, ith, "pow: output dtype %s differs from the base's %s",
                 moai_ew_dtype_name(out->dtype), moai_ew_dtype_name(x->dtype));
    return false;
  }
  return moai_ew_shape_init(s, ex, op, ith, out, 0, 2);
}

static void pow_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_shape_t s;
  if (!pow_setup(ex, op, ith, &s)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *y = moai_op_in(op, 1), *out = moai_op_out(op, 0);
  const size_t xs = moai_ew_dtype_size(x->dtype), ys = moai_ew_dtype_size(y->dtype);
  const unsigned char *px = moai_ew_ptr(ex, x), *py = moai_ew_ptr(ex, y);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(s.numel, ith, nth, &begin, &end);
  int64_t idx[MOAI_MAX_RANK];
  for (int64_t i = begin; i < end; ++i) {
    moai_ew_unravel(out, i, idx);
    pow_elem(po + (size_t)i * xs, px + (size_t)moai_ew_ref_offset(out, x, idx) * xs,
             py + (size_t)moai_ew_ref_offset(out, y, idx) * ys, x->dtype, y->dtype);
  }
}

typedef struct pow_ctx_t {
  unsigned char *o;
  const unsigned char *x, *y;
  int32_t bt, et;
  size_t xs, ys;
} pow_ctx_t;

static int pow_run(void *ctx, int64_t pos, int64_t n, const int64_t *off, const int64_t *inner) {
  const pow_ctx_t *c = ctx;
  unsigned char *o = c->o + (size_t)pos * c->xs;
  const unsigned char *a = c->x + (size_t)off[0] * c->xs, *b = c->y + (size_t)off[1] * c->ys;
  if (c->bt == MOAI_ABI_F32 && c->et == MOAI_ABI_F32) {
    float *of = (float *)o;
    const float *af = (const float *)a, *bf = (const float *)b;
    if (!inner[1] && bf[0] == 2.0f) {
      /* x*x is exact in double, so (float)pow(x, 2.0) == x*x in f32. */
      if (inner[0])
        for (int64_t i = 0; i < n; ++i) of[i] = af[i] * af[i];
      else
        for (int64_t i = 0; i < n; ++i) of[i] = af[0] * af[0];
    } else if (!inner[1] && bf[0] == 1.0f) {
      for (int64_t i = 0; i < n; ++i) of[i] = af[i * inner[0]];
    } else {
      for (int64_t i = 0; i < n; ++i)
        of[i] = (float)pow((double)af[i * inner[0]], (double)bf[i * inner[1]]);
    }
    return 0;
  }
  for (int64_t i = 0; i < n; ++i)
    pow_elem(o + (size_t)i * c->xs, a + (size_t)(i * inner[0]) * c->xs,
             b + (size_t)(i * inner[1]) * c->ys, c->bt, c->et);
  return 0;
}

static void pow_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_shape_t s;
  if (!pow_setup(ex, op, ith, &s)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *y = moai_op_in(op, 1), *out = moai_op_out(op, 0);
  int64_t strides[2][MOAI_MAX_RANK];
  moai_ew_shape_strides(&s, x, strides[0]);
  moai_ew_shape_strides(&s, y, strides[1]);
  pow_ctx_t c = {moai_ew_ptr(ex, out), moai_ew_ptr(ex, x), moai_ew_ptr(ex, y), x->dtype,
                 y->dtype, moai_ew_dtype_size(x->dtype), moai_ew_dtype_size(y->dtype)};
  long long begin, end;
  moai_split_range(s.numel, ith, nth, &begin, &end);
  moai_ew_walk(&s, 2, (const int64_t(*)[MOAI_MAX_RANK])strides, begin, end, pow_run, &c);
}

void moai_ew_register_pow(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) table[MOAI_KERNEL_POW] = pow_ref;
  else if (isa == MOAI_ISA_GENERIC) table[MOAI_KERNEL_POW] = pow_opt;
}
