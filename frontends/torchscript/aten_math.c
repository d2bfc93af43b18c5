/* Arithmetic, comparisons, activations, reductions, losses and matrix
 * products. Elementwise ops fold when every operand is known; otherwise
 * operands are brought to PyTorch's result type (numbers as constants of
 * that type, like the ONNX exporter's) and the moai op is built. */
#include <math.h>
#include <string.h>

#include "torchscript/aten_internal.h"

/* ------------------------------------------------------------ broadcasting */

static bool broadcast(int ra, const int64_t *da, int rb, const int64_t *db,
                      int *out_rank, int64_t *out) {
  int r = ra > rb ? ra : rb;
  for (int i = 0; i < r; ++i) {
    int64_t x = i - (r - ra) >= 0 ? da[i - (r - ra)] : 1;
    int64_t y = i - (r - rb) >= 0 ? db[i - (r - rb)] : 1;
    if (x != y && x != 1 && y != 1) return false;
    out[i] = x == 1 ? y : x;
  }
  *out_rank = r;
  return true;
}

/* Index into a broadcast operand for flat output index `o`. */
static int64_t bcast_index(int64_t o, int r, const int64_t *out_dims, int ra,
                           const int64_t *da) {
  int64_t idx = 0, stride = 1;
  for (int i = r - 1; i >= 0; --i) {
    int64_t coord = o % out_dims[i];
    o /= out_dims[i];
    int j = i - (r - ra);
    if (j < 0) continue;
    if (da[j] != 1) idx += coord * stride;
    stride *= da[j];
  }
  return idx;
}

/* ------------------------------------------------------ binary elementwise */

typedef enum binop_e {
  B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_FLOORDIV, B_REM, B_EQ, B_NE, B_LT,
  B_LE, B_GT, B_GE, B_AND, B_OR, B_MAX, B_MIN,
} binop_t;

static const struct {
  const char *name;
  binop_t op;
  const char *mnemonic; /* NULL: compile-time only */
} kBinops[] = {
    {"add", B_ADD, "add"}, {"sub", B_SUB, "sub"}, {"mul", B_MUL, "mul"},
    {"div", B_DIV, "div"}, {"pow", B_POW, "pow"},
    {"floor_divide", B_FLOORDIV, NULL}, {"remainder", B_REM, NULL},
    {"eq", B_EQ, "equal"}, {"ne", B_NE, "equal"}, {"lt", B_LT, "less"},
    {"le", B_LE, "less_or_equal"}, {"gt", B_GT, "greater"},
    {"ge", B_GE, "greater_or_equal"}, {"and", B_AND, "and"},
    {"or", B_OR, "or"}, {"maximum", B_MAX, "max"}, {"minimum", B_MIN, "min"},
};

static bool is_compare(binop_t op) { return op >= B_EQ && op <= B_GE; }

static double fbin(binop_t op, double a, double b) {
  switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_POW: return pow(a, b);
    case B_FLOORDIV: return floor(a / b);
    case B_REM: return a - floor(a / b) * b;
    case B_EQ: return a == b;
    case B_NE: return a != b;
    case B_LT: return a < b;
    case B_LE: return a <= b;
    case B_GT: return a > b;
    case B_GE: return a >= b;
    case B_AND: return (a != 0) && (b != 0);
    case B_OR: return (a != 0) || (b != 0);
    case B_MAX: return a > b ? a : b;
    case B_MIN: return a < b ? a : b;
  }
  return 0;
}

static bool ibin(binop_t op, int64_t a, int64_t b, int64_t *out) {
  switch (op) {
    case B_ADD: *out = (int64_t)((uint64_t)a + (uint64_t)b); return true;
    case B_SUB: *out = (int64_t)((uint64_t)a - (uint64_t)b); return true;
    case B_MUL: *out = (int64_t)((uint64_t)a * (uint64_t)b); return true;
    case B_FLOORDIV:
    case B_REM: {
      if (b == 0 || (a == INT64_MIN && b == -1)) return false;
      int64_t q = a / b, r = a % b;
      if (r != 0 && ((r < 0) != (b < 0))) { --q; r += b; }
      *out = op == B_FLOORDIV ? q : r;
      return true;
    }
    case B_POW: {
      if (b < 0) return false;
      int64_t r = 1;
      for (int64_t i = 0; i < b && i < 64; ++i) r = (int64_t)((uint64_t)r * (uint64_t)a);
      *out = r;
      return true;
    }
    case B_AND: *out = a & b; return true;
    case B_OR: *out = a | b; return true;
    case B_MAX: *out = a > b ? a : b; return true;
    case B_MIN: *out = a < b ? a : b; return true;
    default: *out = (int64_t)fbin(op, (double)a, (double)b); return true;
  }
}

/* Folds when both operands are known; *out stays NULL when they are not
 * (or the result would be too large to keep). */
static moai_status_t fold_binary(ts_call_t *c, binop_t op, moai_ts_value_t *a,
                                 moai_ts_value_t *b, int compute, int result,
                                 moai_ts_value_t **out) {
  *out = NULL;
  moai_ts_const_t *ka = ts_known(c, a), *kb = ts_known(c, b);
  if (!ka || !kb) return moai_ok_status();
  if ((compute != MOAI_PK_I64 && compute != MOAI_PK_F32 &&
       compute != MOAI_PK_F64 && compute != MOAI_PK_BOOL_DT))
    return moai_ok_status();
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  if (!broadcast(ka->rank, ka->dims, kb->rank, kb->dims, &rank, dims))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "operands do not broadcast");
  int64_t n = ts_numel(rank, dims);
  if (n < 0 || n > MOAI_TS_MAX_CONST_ELEMENTS) return moai_ok_status();
  moai_ts_const_t *k = ts_konst_new(c, result, rank, dims);
  if (!k) return TS_OOM(c);
  bool fl = ts_dtype_is_float(compute);
  for (int64_t o = 0; o < n; ++o) {
    int64_t ia = bcast_index(o, rank, dims, ka->rank, ka->dims);
    int64_t ib = bcast_index(o, rank, dims, kb->rank, kb->dims);
    if (fl) {
      double x = ts_k_getf(ka, ia), y = ts_k_getf(kb, ib);
      if (compute == MOAI_PK_F32) { x = (float)x; y = (float)y; }
      ts_k_setf(k, o, fbin(op, x, y));
    } else {
      int64_t r;
      if (!ibin(op, ts_k_geti(ka, ia), ts_k_geti(kb, ib), &r))
        return ts_err(c, MOAI_INVALID_ARGUMENT,
                      "integer division by zero (or overflow)");
      ts_k_seti(k, o, r);
    }
  }
  k->wrapped_number = ka->wrapped_number && kb->wrapped_number;
  *out = ts_konst_value(c, k);
  return *out ? moai_ok_status() : TS_OOM(c);
}

/* Applies `op` to a and b with PyTorch's typing; the shared core of the
 * binary operators (also used by rsub, alpha and masked ops). */
static moai_status_t binary(ts_call_t *c, binop_t op, moai_ts_value_t *a,
                            moai_ts_value_t *b, moai_ts_value_t **out) {
  moai_ts_value_t *vs[2] = {a, b};
  int compute;
  MOAI_RETURN_IF_ERROR(ts_result_type(c, vs, 2, &compute));
  int result = compute;
  if (op == B_DIV && !ts_dtype_is_float(compute))
    compute = result = MOAI_PK_F32; /* true division */
  if (is_compare(op)) result = MOAI_PK_BOOL_DT;
  if ((op == B_AND || op == B_OR) && compute != MOAI_PK_BOOL_DT &&
      ts_dtype_is_float(compute))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs bool or integer operands");
  MOAI_RETURN_IF_ERROR(fold_binary(c, op, a, b, compute, result, out));
  if (*out) return moai_ok_status();
  const char *mnemonic = NULL;
  for (size_t i = 0; i < sizeof(kBinops) / sizeof(kBinops[0]); ++i)
    if (kBinops[i].op == op) mnemonic = kBinops[i].mnemonic;
  if (!mnemonic)
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "needs compile-time operands (moai has no op for it on "
                  "tensors computed at run time)");
  if ((op == B_AND || op == B_OR) && compute != MOAI_PK_BOOL_DT)
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "bitwise %s of %s tensors (only bool) is not supported",
                  op == B_AND ? "and" : "or", ts_dtype_name(compute));
  MlirValue ops[2], r;
  MOAI_RETURN_IF_ERROR(ts_value_as(c, a, compute, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_value_as(c, b, compute, &ops[1]));
  if (op == B_MAX || op == B_MIN)
    MOAI_RETURN_IF_ERROR(ts_build(c, mnemonic, ops, 2, NULL, 0, 1, &r));
  else
    MOAI_RETURN_IF_ERROR(ts_op(c, mnemonic, ops, 2, NULL, 0, &r));
  if (op == B_NE) MOAI_RETURN_IF_ERROR(ts_op(c, "not", &r, 1, NULL, 0, &r));
  *out = ts_new_tensor(c, r);
  return *out ? moai_ok_status() : TS_OOM(c);
}

static binop_t binop_of(const ts_call_t *c) {
  for (size_t i = 0; i < sizeof(kBinops) / sizeof(kBinops[0]); ++i)
    if (strcmp(kBinops[i].name, c->entry->aux) == 0) return kBinops[i].op;
  return B_ADD;
}

/* An in-place op (add_): the interpreter's value of `self` becomes the
 * result, so later reads of the same value see it. */
static void assign_in_place(ts_call_t *c) {
  if (c->entry->name[strlen(c->entry->name) - 1] != '_' || !ts_is_tensor(c->a[0]))
    return;
  moai_ts_value_t *self = c->a[0];
  self->tensor = c->out->tensor;
  self->konst = c->out->konst;
  c->out = self;
}

/* add/sub(self, other, alpha), mul, div(self, other, rounding_mode), ... */
static moai_status_t op_binary(ts_call_t *c) {
  binop_t op = binop_of(c);
  moai_ts_value_t *a = c->a[0], *b = c->a[1];
  if (ts_is_none(a) || ts_is_none(b))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs two operands");
  if ((op == B_ADD || op == B_SUB) && c->n_slots > 2 && !ts_is_none(c->a[2])) {
    double alpha;
    MOAI_RETURN_IF_ERROR(ts_arg_float(c, 2, true, 1.0, &alpha));
    if (alpha != 1.0) MOAI_RETURN_IF_ERROR(binary(c, B_MUL, b, c->a[2], &b));
  }
  if (op == B_DIV && c->n_slots > 2 && !ts_is_none(c->a[2])) {
    const moai_ts_value_t *m = c->a[2];
    if (m->kind != MOAI_TS_STR)
      return ts_err(c, MOAI_INVALID_ARGUMENT, "rounding_mode must be a string");
    if (strcmp(m->str, "floor") == 0) op = B_FLOORDIV;
    else if (strcmp(m->str, "trunc") == 0) {
      moai_ts_value_t *vs[2] = {a, b};
      int dt;
      MOAI_RETURN_IF_ERROR(ts_result_type(c, vs, 2, &dt));
      moai_ts_const_t *ka = ts_known(c, a), *kb = ts_known(c, b);
      if (ts_dtype_is_float(dt) || !ka || !kb) {
        if (!ts_dtype_is_float(dt)) {
          /* ONNX Div of integers truncates, as trunc does. */
          MlirValue ops[2], r;
          MOAI_RETURN_IF_ERROR(ts_value_as(c, a, dt, &ops[0]));
          MOAI_RETURN_IF_ERROR(ts_value_as(c, b, dt, &ops[1]));
          MOAI_RETURN_IF_ERROR(ts_op(c, "div", ops, 2, NULL, 0, &r));
          c->out = ts_new_tensor(c, r);
          return c->out ? moai_ok_status() : TS_OOM(c);
        }
        return ts_err(c, MOAI_UNIMPLEMENTED,
                      "rounding_mode 'trunc' of floats is not supported");
      }
      MOAI_RETURN_IF_ERROR(binary(c, B_DIV, a, b, &c->out));
      moai_ts_const_t *k = ts_k_convert(c, c->out->konst, dt);
      if (!k) return TS_OOM(c);
      c->out = ts_konst_value(c, k);
      return c->out ? moai_ok_status() : TS_OOM(c);
    } else {
      return ts_err(c, MOAI_INVALID_ARGUMENT,
                    "rounding_mode must be None, 'trunc' or 'floor', not '%s'",
                    m->str);
    }
  }
  MOAI_RETURN_IF_ERROR(binary(c, op, a, b, &c->out));
  assign_in_place(c);
  return moai_ok_status();
}

/* rsub(self, other, alpha) = other - alpha * self */
static moai_status_t op_rsub(ts_call_t *c) {
  moai_ts_value_t *a = c->a[0];
  double alpha;
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 2, true, 1.0, &alpha));
  if (alpha != 1.0) MOAI_RETURN_IF_ERROR(binary(c, B_MUL, a, c->a[2], &a));
  return binary(c, B_SUB, c->a[1], a, &c->out);
}

/* -------------------------------------------------------------- unary ops */

typedef struct unop_t {
  const char *name;
  const char *mnemonic;
  bool float_only; /* an int operand is computed in float32 */
  double (*f)(double);
} unop_t;

static double f_neg(double x) { return -x; }
static double f_rsqrt(double x) { return 1.0 / sqrt(x); }
static double f_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double f_relu(double x) { return x > 0 ? x : 0; }
static double f_not(double x) { return x == 0; }
static double f_recip(double x) { return 1.0 / x; }
static double f_square(double x) { return x * x; }
static double f_silu(double x) { return x / (1.0 + exp(-x)); }

static const unop_t kUnops[] = {
    {"neg", "neg", false, f_neg},      {"sqrt", "sqrt", true, sqrt},
    {"rsqrt", NULL, true, f_rsqrt},    {"exp", "exp", true, exp},
    {"log", "log", true, log},         {"tanh", "tanh", true, tanh},
    {"sigmoid", "sigmoid", true, f_sigmoid}, {"relu", "relu", false, f_relu},
    {"cos", "cos", true, cos},         {"sin", "sin", true, sin},
    {"abs", "abs", false, fabs},       {"erf", "erf", true, erf},
    {"not", "not", false, f_not},      {"reciprocal", NULL, true, f_recip},
    {"square", NULL, false, f_square}, {"silu", NULL, true, f_silu},
};

static moai_status_t op_unary(ts_call_t *c) {
  const unop_t *u = NULL;
  for (size_t i = 0; i < sizeof(kUnops) / sizeof(kUnops[0]); ++i)
    if (strcmp(kUnops[i].name, c->entry->aux) == 0) u = &kUnops[i];
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  int dt = ts_dtype(x);
  if (strcmp(u->name, "not") == 0 && dt != MOAI_PK_BOOL_DT)
    return ts_err(c, MOAI_UNIMPLEMENTED, "needs a bool tensor, not %s",
                  ts_dtype_name(dt));
  int rdt = u->float_only && !ts_dtype_is_float(dt) ? MOAI_PK_F32 : dt;
  if (x->konst && mlirValueIsNull(x->tensor) && rdt != MOAI_PK_BOOL_DT) {
    moai_ts_const_t *k = ts_k_convert(c, x->konst, rdt);
    moai_ts_const_t *r = k ? ts_konst_new(c, rdt, k->rank, k->dims) : NULL;
    if (!r) return TS_OOM(c);
    for (int64_t i = 0; i < k->numel; ++i) ts_k_setf(r, i, u->f(ts_k_getf(k, i)));
    r->wrapped_number = x->konst->wrapped_number;
    c->out = ts_konst_value(c, r);
    return c->out ? moai_ok_status() : TS_OOM(c);
  }
  MlirValue v, r;
  MOAI_RETURN_IF_ERROR(ts_value_as(c, x, rdt, &v));
  if (u->mnemonic) {
    MOAI_RETURN_IF_ERROR(ts_op(c, u->mnemonic, &v, 1, NULL, 0, &r));
  } else if (strcmp(u->name, "silu") == 0) {
    /* As the ONNX exporter: x * Sigmoid(x). */
    MlirValue s, ops[2];
    MOAI_RETURN_IF_ERROR(ts_op(c, "sigmoid", &v, 1, NULL, 0, &s));
    ops[0] = v;
    ops[1] = s;
    MOAI_RETURN_IF_ERROR(ts_op(c, "mul", ops, 2, NULL, 0, &r));
  } else if (strcmp(u->name, "square") == 0) {
    MlirValue ops[2] = {v, v};
    MOAI_RETURN_IF_ERROR(ts_op(c, "mul", ops, 2, NULL, 0, &r));
  } else { /* rsqrt, reciprocal: 1 / f(x) */
    MlirValue one, ops[2];
    if (strcmp(u->name, "rsqrt") == 0)
      MOAI_RETURN_IF_ERROR(ts_op(c, "sqrt", &v, 1, NULL, 0, &v));
    MOAI_RETURN_IF_ERROR(ts_const_scalar(c, rdt, 1.0, &one));
    ops[0] = one;
    ops[1] = v;
    MOAI_RETURN_IF_ERROR(ts_op(c, "div", ops, 2, NULL, 0, &r));
  }
  OUT_TENSOR(c, r);
}

/* gelu(self, approximate='none') */
static moai_status_t op_gelu(ts_call_t *c) {
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  const char *approx = "none";
  if (!ts_is_none(c->a[1])) {
    if (c->a[1]->kind != MOAI_TS_STR)
      return ts_err(c, MOAI_INVALID_ARGUMENT, "approximate must be a string");
    approx = c->a[1]->str;
  }
  if (strcmp(approx, "none") != 0 && strcmp(approx, "tanh") != 0)
    return ts_err(c, MOAI_INVALID_ARGUMENT,
                  "approximate must be 'none' or 'tanh', not '%s'", approx);
  MlirValue v, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  ts_attr_t a = {"approximate", ts_attr_str(c, approx)};
  MOAI_RETURN_IF_ERROR(ts_op(c, "gelu", &v, 1, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* leaky_relu(self, negative_slope=0.01) */
static moai_status_t op_leaky_relu(ts_call_t *c) {
  moai_ts_value_t *x;
  double slope;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 1, true, 0.01, &slope));
  MlirValue v, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  ts_attr_t a = {"alpha", ts_attr_f32(c, slope)};
  MOAI_RETURN_IF_ERROR(ts_op(c, "leaky_relu", &v, 1, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* where(condition, self, other) */
static moai_status_t where3(ts_call_t *c, moai_ts_value_t *cond,
                            moai_ts_value_t *x, moai_ts_value_t *y,
                            moai_ts_value_t **out) {
  moai_ts_value_t *vs[2] = {x, y};
  int dt;
  MOAI_RETURN_IF_ERROR(ts_result_type(c, vs, 2, &dt));
  if (ts_dtype(cond) != MOAI_PK_BOOL_DT)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "condition must be a bool tensor");
  moai_ts_const_t *kc = ts_known(c, cond), *kx = ts_known(c, x),
                  *ky = ts_known(c, y);
  if (kc && kx && ky && (dt == MOAI_PK_F32 || dt == MOAI_PK_F64 ||
                         dt == MOAI_PK_I64 || dt == MOAI_PK_BOOL_DT)) {
    int r1, rank;
    int64_t d1[MOAI_PK_MAX_RANK], dims[MOAI_PK_MAX_RANK];
    if (!broadcast(kc->rank, kc->dims, kx->rank, kx->dims, &r1, d1) ||
        !broadcast(r1, d1, ky->rank, ky->dims, &rank, dims))
      return ts_err(c, MOAI_INVALID_ARGUMENT, "operands do not broadcast");
    int64_t n = ts_numel(rank, dims);
    if (n >= 0 && n <= MOAI_TS_MAX_CONST_ELEMENTS) {
      moai_ts_const_t *k = ts_konst_new(c, dt, rank, dims);
      if (!k) return TS_OOM(c);
      for (int64_t o = 0; o < n; ++o) {
        bool t = ts_k_geti(kc, bcast_index(o, rank, dims, kc->rank, kc->dims));
        moai_ts_const_t *src = t ? kx : ky;
        int64_t i = bcast_index(o, rank, dims, src->rank, src->dims);
        if (ts_dtype_is_float(dt)) ts_k_setf(k, o, ts_k_getf(src, i));
        else ts_k_seti(k, o, ts_k_geti(src, i));
      }
      *out = ts_konst_value(c, k);
      return *out ? moai_ok_status() : TS_OOM(c);
    }
  }
  MlirValue ops[3], r;
  MOAI_RETURN_IF_ERROR(ts_value_as(c, cond, MOAI_PK_BOOL_DT, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_value_as(c, x, dt, &ops[1]));
  MOAI_RETURN_IF_ERROR(ts_value_as(c, y, dt, &ops[2]));
  MOAI_RETURN_IF_ERROR(ts_op(c, "where", ops, 3, NULL, 0, &r));
  *out = ts_new_tensor(c, r);
  return *out ? moai_ok_status() : TS_OOM(c);
}

static moai_status_t op_where(ts_call_t *c) {
  if (ts_is_none(c->a[1]) || ts_is_none(c->a[2]))
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "where(condition) without values is not supported");
  return where3(c, c->a[0], c->a[1], c->a[2], &c->out);
}

/* masked_fill(self, mask, value): Where(mask, value, self), value in
 * self's dtype. */
static moai_status_t op_masked_fill(ts_call_t *c) {
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  moai_ts_value_t *value = c->a[2];
  if (ts_is_none(value))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a value");
  int dt = ts_dtype(x);
  moai_ts_const_t *kv = ts_known(c, value);
  if (!kv || kv->numel != 1)
    return ts_err(c, MOAI_UNIMPLEMENTED, "value must be a compile-time scalar");
  moai_ts_const_t *k = ts_konst_new(c, dt == MOAI_PK_F32 || dt == MOAI_PK_F64 ||
                                               dt == MOAI_PK_I64 || dt == MOAI_PK_BOOL_DT
                                           ? dt
                                           : MOAI_PK_F32,
                                    0, NULL);
  if (!k) return TS_OOM(c);
  ts_k_setf(k, 0, ts_k_getf(kv, 0));
  if (!ts_dtype_is_float((int)k->dtype)) ts_k_seti(k, 0, ts_k_geti(kv, 0));
  moai_ts_value_t *fill = ts_konst_value(c, k);
  if (!fill) return TS_OOM(c);
  MOAI_RETURN_IF_ERROR(where3(c, c->a[1], fill, x, &c->out));
  assign_in_place(c);
  return moai_ok_status();
}

/* clamp(self, min=None, max=None), clamp_min, clamp_max: Clip with
 * constant bounds of self's dtype. */
static moai_status_t op_clamp(ts_call_t *c) {
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  const char *which = c->entry->aux;
  moai_ts_value_t *lo = NULL, *hi = NULL;
  if (strcmp(which, "max") == 0) hi = c->a[1];
  else lo = c->a[1];
  if (strcmp(which, "both") == 0) hi = c->a[2];
  if (ts_is_none(lo) && ts_is_none(hi))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs min or max");
  int dt = ts_dtype(x);
  moai_ts_value_t *r = x;
  if (x->konst && mlirValueIsNull(x->tensor)) {
    if (!ts_is_none(lo)) MOAI_RETURN_IF_ERROR(binary(c, B_MAX, r, lo, &r));
    if (!ts_is_none(hi)) MOAI_RETURN_IF_ERROR(binary(c, B_MIN, r, hi, &r));
    if (r->konst && ts_dtype(r) != dt) {
      moai_ts_const_t *k = ts_k_convert(c, r->konst, dt);
      if (!k) return TS_OOM(c);
      r = ts_konst_value(c, k);
    }
    c->out = r;
    return c->out ? moai_ok_status() : TS_OOM(c);
  }
  MlirValue ops[3] = {{NULL}, {NULL}, {NULL}}, out;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  if (!ts_is_none(lo)) MOAI_RETURN_IF_ERROR(ts_value_as(c, lo, dt, &ops[1]));
  if (!ts_is_none(hi)) MOAI_RETURN_IF_ERROR(ts_value_as(c, hi, dt, &ops[2]));
  MOAI_RETURN_IF_ERROR(ts_op(c, "clip", ops, 3, NULL, 0, &out));
  OUT_TENSOR(c, out);
}

/* ------------------------------------------------------------- reductions */

/* mean/sum(self, dim=None, keepdim=False, dtype=None), amax(self, dim=[],
 * keepdim=False). */
static moai_status_t op_reduce(ts_call_t *c) {
  const char *kind = c->entry->aux;
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  int64_t dims[MOAI_PK_MAX_RANK];
  size_t n_dims = 0;
  if (!ts_is_none(c->a[1]))
    MOAI_RETURN_IF_ERROR(ts_arg_ints(c, 1, dims, MOAI_PK_MAX_RANK, 1, &n_dims));
  bool keepdim;
  MOAI_RETURN_IF_ERROR(ts_arg_bool(c, 2, false, &keepdim));
  int dt = ts_dtype(x);
  bool has_dtype = strcmp(kind, "max") != 0 && c->n_slots > 3 && !ts_is_none(c->a[3]);
  if (has_dtype) {
    int64_t want;
    MOAI_RETURN_IF_ERROR(ts_arg_int(c, 3, false, 0, &want));
    dt = (int)want;
  } else if (strcmp(kind, "mean") == 0 && !ts_dtype_is_float(dt)) {
    return ts_err(c, MOAI_INVALID_ARGUMENT,
                  "mean of a %s tensor: give a floating dtype", ts_dtype_name(dt));
  } else if (strcmp(kind, "sum") == 0 && !ts_dtype_is_float(dt)) {
    dt = MOAI_PK_I64; /* torch sums bool and int tensors as int64 */
  }
  MlirValue v, ops[2] = {{NULL}, {NULL}}, r;
  MOAI_RETURN_IF_ERROR(ts_value_as(c, x, dt, &v));
  ops[0] = v;
  if (n_dims) MOAI_RETURN_IF_ERROR(ts_const_i64s(c, dims, n_dims, &ops[1]));
  const char *mnemonic = strcmp(kind, "mean") == 0  ? "reduce_mean"
                         : strcmp(kind, "sum") == 0 ? "reduce_sum"
                                                    : "reduce_max";
  ts_attr_t a = {"keepdims", ts_attr_i64(c, keepdim)};
  MOAI_RETURN_IF_ERROR(ts_op(c, mnemonic, ops, 2, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* max(self) / min(self): the whole tensor; max(self, other): maximum. */
static moai_status_t op_max(ts_call_t *c) {
  bool is_max = strcmp(c->entry->aux, "max") == 0;
  if (ts_is_tensor(c->a[1]))
    return binary(c, is_max ? B_MAX : B_MIN, c->a[0], c->a[1], &c->out);
  if (!ts_is_none(c->a[1]))
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "%s along a dim (values and indices) is not supported; use amax",
                  is_max ? "max" : "min");
  if (!is_max)
    return ts_err(c, MOAI_UNIMPLEMENTED, "min of a whole tensor is not supported");
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MlirValue v, ops[2] = {{NULL}, {NULL}}, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  ops[0] = v;
  ts_attr_t a = {"keepdims", ts_attr_i64(c, 0)};
  MOAI_RETURN_IF_ERROR(ts_op(c, "reduce_max", ops, 2, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* softmax/log_softmax(self, dim, dtype=None) */
static moai_status_t op_softmax(ts_call_t *c) {
  moai_ts_value_t *x;
  int64_t dim;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &dim));
  int dt = ts_dtype(x);
  if (!ts_is_none(c->a[2])) {
    int64_t want;
    MOAI_RETURN_IF_ERROR(ts_arg_int(c, 2, false, 0, &want));
    dt = (int)want;
  }
  if (!ts_dtype_is_float(dt))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a floating tensor, not %s",
                  ts_dtype_name(dt));
  MlirValue v, r;
  MOAI_RETURN_IF_ERROR(ts_value_as(c, x, dt, &v));
  ts_attr_t a = {"axis", ts_attr_i64(c, dim)};
  MOAI_RETURN_IF_ERROR(ts_op(c, c->entry->aux, &v, 1, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* ------------------------------------------------------------------ losses */

static moai_status_t loss(ts_call_t *c, MlirValue scores) {
  moai_ts_value_t *target;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 1, &target));
  int64_t reduction, ignore;
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 3, true, 1, &reduction));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 4, true, -100, &ignore));
  if (reduction < 0 || reduction > 2)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "reduction %lld is not 0, 1 or 2",
                  (long long)reduction);
  MlirValue ops[3] = {scores, {NULL}, {NULL}}, r;
  MOAI_RETURN_IF_ERROR(ts_value_as(c, target, MOAI_PK_I64, &ops[1]));
  if (!ts_is_none(c->a[2])) {
    int dt = ts_dtype(c->a[2]);
    if (!ts_is_tensor(c->a[2]) || !ts_dtype_is_float(dt))
      return ts_err(c, MOAI_INVALID_ARGUMENT, "weight must be a float tensor");
    MOAI_RETURN_IF_ERROR(ts_value(c, c->a[2], &ops[2]));
  }
  static const char *const kReductions[] = {"none", "mean", "sum"};
  ts_attr_t a[2] = {{"reduction", ts_attr_str(c, kReductions[reduction])},
                    {"ignore_index", ts_attr_i64(c, ignore)}};
  MOAI_RETURN_IF_ERROR(ts_op(c, "softmax_cross_entropy_loss", ops, 3, a, 2, &r));
  OUT_TENSOR(c, r);
}

/* cross_entropy_loss(self, target, weight, reduction=1, ignore_index=-100,
 * label_smoothing=0.0) */
static moai_status_t op_cross_entropy(ts_call_t *c) {
  moai_ts_value_t *x;
  double smoothing;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 5, true, 0.0, &smoothing));
  if (smoothing != 0.0)
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "label_smoothing %g is not supported (only 0)", smoothing);
  if (!ts_dtype_is_float(ts_dtype(x)))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "input must be a float tensor");
  MlirValue v;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  return loss(c, v);
}

/* nll_loss(self, target, weight, reduction, ignore_index) of a
 * log_softmax over the class axis: the same SoftmaxCrossEntropyLoss on the
 * log_softmax's input. */
static moai_status_t op_nll_loss(ts_call_t *c) {
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MlirValue v;
  MlirOperation ls;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  bool ok = ts_defined_by(v, "moai.log_softmax", &ls) && ts_shape(x, &rank, dims);
  if (ok) {
    MlirAttribute axis = mlirOperationGetAttributeByName(
        ls, mlirStringRefCreateFromCString("axis"));
    int64_t a = mlirAttributeIsNull(axis) ? -1 : mlirIntegerAttrGetValueInt(axis);
    if (a < 0) a += rank;
    ok = a == (rank > 1 ? 1 : 0);
  }
  if (!ok)
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "only supported on a log_softmax over the class axis "
                  "(use cross_entropy)");
  return loss(c, mlirOperationGetOperand(ls, 0));
}

/* ---------------------------------------------------------- matrix products */

static moai_status_t matmul2(ts_call_t *c, moai_ts_value_t *a,
                             moai_ts_value_t *b, MlirValue *out) {
  MlirValue ops[2];
  MOAI_RETURN_IF_ERROR(ts_value(c, a, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_value(c, b, &ops[1]));
  return ts_op(c, "matmul", ops, 2, NULL, 0, out);
}

/* matmul, mm, bmm(self, other) */
static moai_status_t op_matmul(ts_call_t *c) {
  moai_ts_value_t *a, *b;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &a));
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 1, &b));
  MlirValue r;
  MOAI_RETURN_IF_ERROR(matmul2(c, a, b, &r));
  OUT_TENSOR(c, r);
}

/* linear(input, weight, bias=None), as torch.onnx exports it: Gemm(x, W,
 * b, transB=1) for a 2-D input with a bias, else MatMul(x, Transpose(W))
 * (+ Add). */
static moai_status_t op_linear(ts_call_t *c) {
  moai_ts_value_t *x, *w;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 1, &w));
  bool has_bias = !ts_is_none(c->a[2]);
  if (has_bias && !ts_is_tensor(c->a[2]))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "bias must be a tensor or None");
  int xr, wr;
  int64_t xd[MOAI_PK_MAX_RANK], wd[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &xr, xd));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, w, &wr, wd));
  if (wr != 2)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "weight must be 2-D, not rank %d", wr);
  MlirValue xv, wv, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &xv));
  MOAI_RETURN_IF_ERROR(ts_value(c, w, &wv));
  if (xr == 2 && has_bias) {
    MlirValue ops[3] = {xv, wv, {NULL}};
    MOAI_RETURN_IF_ERROR(ts_value(c, c->a[2], &ops[2]));
    ts_attr_t a = {"transB", ts_attr_i64(c, 1)};
    MOAI_RETURN_IF_ERROR(ts_op(c, "gemm", ops, 3, &a, 1, &r));
  } else {
    static const int64_t perm[2] = {1, 0};
    ts_attr_t a = {"perm", ts_attr_ints(c, perm, 2)};
    MlirValue wt, ops[2];
    MOAI_RETURN_IF_ERROR(ts_op(c, "transpose", &wv, 1, &a, 1, &wt));
    ops[0] = xv;
    ops[1] = wt;
    MOAI_RETURN_IF_ERROR(ts_op(c, "matmul", ops, 2, NULL, 0, &r));
    if (has_bias) {
      ops[0] = r;
      MOAI_RETURN_IF_ERROR(ts_value(c, c->a[2], &ops[1]));
      MOAI_RETURN_IF_ERROR(ts_op(c, "add", ops, 2, NULL, 0, &r));
    }
  }
  OUT_TENSOR(c, r);
}

/* addmm(self, mat1, mat2, beta=1, alpha=1): Gemm(mat1, mat2, self). */
static moai_status_t op_addmm(ts_call_t *c) {
  moai_ts_value_t *bias, *a, *b;
  double beta, alpha;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &bias));
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 1, &a));
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 2, &b));
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 3, true, 1.0, &beta));
  MOAI_RETURN_IF_ERROR(ts_arg_float(c, 4, true, 1.0, &alpha));
  MlirValue ops[3], r;
  MOAI_RETURN_IF_ERROR(ts_value(c, a, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_value(c, b, &ops[1]));
  MOAI_RETURN_IF_ERROR(ts_value(c, bias, &ops[2]));
  ts_attr_t at[2] = {{"alpha", ts_attr_f32(c, alpha)}, {"beta", ts_attr_f32(c, beta)}};
  MOAI_RETURN_IF_ERROR(ts_op(c, "gemm", ops, 3, at, 2, &r));
  OUT_TENSOR(c, r);
}

/* ------------------------------------------------------------------- table */

#define BIN(n, aux) {"torch." n, "self,other", op_binary, aux}
#define UN(n, aux) {"torch." n, "self", op_unary, aux}
const ts_op_entry_t ts_ops_math[] = {
    {"torch.add", "self,other,alpha", op_binary, "add"},
    {"torch.add_", "self,other,alpha", op_binary, "add"},
    {"torch.sub", "self,other,alpha", op_binary, "sub"},
    {"torch.sub_", "self,other,alpha", op_binary, "sub"},
    {"torch.rsub", "self,other,alpha", op_rsub, NULL},
    BIN("mul", "mul"), BIN("mul_", "mul"),
    {"torch.div", "self,other,rounding_mode", op_binary, "div"},
    {"torch.div_", "self,other,rounding_mode", op_binary, "div"},
    {"torch.true_divide", "self,other", op_binary, "div"},
    {"torch.pow", "self,exponent", op_binary, "pow"},
    BIN("floor_divide", "floor_divide"), BIN("remainder", "remainder"),
    BIN("eq", "eq"), BIN("ne", "ne"), BIN("lt", "lt"), BIN("le", "le"),
    BIN("gt", "gt"), BIN("ge", "ge"),
    BIN("__and__", "and"), BIN("__or__", "or"), BIN("bitwise_and", "and"),
    BIN("bitwise_or", "or"), BIN("logical_and", "and"), BIN("logical_or", "or"),
    BIN("maximum", "maximum"), BIN("minimum", "minimum"),
    {"torch.max", "self,other,keepdim", op_max, "max"},
    {"torch.min", "self,other,keepdim", op_max, "min"},
    UN("neg", "neg"), UN("sqrt", "sqrt"), UN("rsqrt", "rsqrt"), UN("exp", "exp"),
    UN("log", "log"), UN("tanh", "tanh"), UN("sigmoid", "sigmoid"),
    UN("relu", "relu"), UN("cos", "cos"), UN("sin", "sin"),
    UN("abs", "abs"), UN("erf", "erf"), UN("bitwise_not", "not"),
    UN("logical_not", "not"), UN("reciprocal", "reciprocal"),
    UN("square", "square"), UN("silu", "silu"),
    {"torch.gelu", "self,approximate", op_gelu, NULL},
    {"torch.leaky_relu", "self,negative_slope", op_leaky_relu, NULL},
    {"torch.where", "condition,self,other", op_where, NULL},
    {"torch.masked_fill", "self,mask,value", op_masked_fill, NULL},
    {"torch.masked_fill_", "self,mask,value", op_masked_fill, NULL},
    {"torch.clamp", "self,min,max", op_clamp, "both"},
    {"torch.clip", "self,min,max", op_clamp, "both"},
    {"torch.clamp_min", "self,min", op_clamp, "min"},
    {"torch.clamp_max", "self,max", op_clamp, "max"},
    {"torch.mean", "self,dim,keepdim,dtype", op_reduce, "mean"},
    {"torch.sum", "self,dim,keepdim,dtype", op_reduce, "sum"},
    {"torch.amax", "self,dim,keepdim", op_reduce, "max"},
    {"torch.softmax", "self,dim,dtype", op_softmax, "softmax"},
    {"torch.log_softmax", "self,dim,dtype", op_softmax, "log_softmax"},
    {"torch.cross_entropy_loss",
     "self,target,weight,reduction,ignore_index,label_smoothing",
     op_cross_entropy, NULL},
    {"torch.nll_loss", "self,target,weight,reduction,ignore_index", op_nll_loss, NULL},
    {"torch.nll_loss_nd", "self,target,weight,reduction,ignore_index", op_nll_loss, NULL},
    {"torch.nll_loss2d", "self,target,weight,reduction,ignore_index", op_nll_loss, NULL},
    {"torch.linear", "input,weight,bias", op_linear, NULL},
    {"torch.matmul", "self,other", op_matmul, NULL},
    {"torch.mm", "self,mat2", op_matmul, NULL},
    {"torch.bmm", "self,mat2", op_matmul, NULL},
    {"torch.addmm", "self,mat1,mat2,beta,alpha", op_addmm, NULL},
    {NULL, NULL, NULL, NULL},
};
