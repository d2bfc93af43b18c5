/* Constant folding: evaluates a moai op whose operands are all constants
 * into a DenseElementsAttr. Element-wise ops are evaluated here (numpy
 * broadcasting over host tensors of int64 or double); shape ops in
 * fold_shape.c; pure reshapes reuse the operand's data. Anything whose
 * value is undefined (integer division by zero, NaN to int) is left for
 * the runtime. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "shape_infer/shape_infer_internal.h"

typedef enum ew_op_e {
  EW_ADD, EW_SUB, EW_MUL, EW_DIV, EW_POW,
  EW_EQ, EW_LT, EW_LE, EW_GT, EW_GE, EW_AND, EW_OR,
  EW_NOT, EW_NEG, EW_ABS, EW_RELU, EW_SQRT, EW_EXP, EW_LOG, EW_SIN, EW_COS,
  EW_TANH, EW_SIGMOID, EW_ERF,
  EW_WHERE, EW_MAX, EW_MIN, EW_CLIP, EW_CAST,
} ew_op_t;

typedef enum fold_kind_e {
  FOLD_SHAPE,     /* moai.shape of a static tensor */
  FOLD_RESHAPE,   /* same data, new shape */
  FOLD_EW,        /* element-wise, evaluated here */
  FOLD_CUSTOM,    /* a folder of fold_shape.c */
} fold_kind_t;

typedef struct folder_t {
  const char *name;
  fold_kind_t kind;
  ew_op_t ew;
  si_folder_fn fn;
} folder_t;

static const folder_t kFolders[] = {
    {"shape", FOLD_SHAPE, 0, NULL},
    {"reshape", FOLD_RESHAPE, 0, NULL},
    {"squeeze", FOLD_RESHAPE, 0, NULL},
    {"unsqueeze", FOLD_RESHAPE, 0, NULL},
    {"flatten", FOLD_RESHAPE, 0, NULL},
    {"identity", FOLD_RESHAPE, 0, NULL},
    {"gather", FOLD_CUSTOM, 0, si_fold_gather},
    {"concat", FOLD_CUSTOM, 0, si_fold_concat},
    {"slice", FOLD_CUSTOM, 0, si_fold_slice},
    {"expand", FOLD_CUSTOM, 0, si_fold_expand},
    {"transpose", FOLD_CUSTOM, 0, si_fold_transpose},
    {"constant_of_shape", FOLD_CUSTOM, 0, si_fold_constant_of_shape},
    {"range", FOLD_CUSTOM, 0, si_fold_range},
    {"reduce_sum", FOLD_CUSTOM, 0, si_fold_reduce},
    {"reduce_mean", FOLD_CUSTOM, 0, si_fold_reduce},
    {"reduce_max", FOLD_CUSTOM, 0, si_fold_reduce},
    {"add", FOLD_EW, EW_ADD, NULL},
    {"sub", FOLD_EW, EW_SUB, NULL},
    {"mul", FOLD_EW, EW_MUL, NULL},
    {"div", FOLD_EW, EW_DIV, NULL},
    {"pow", FOLD_EW, EW_POW, NULL},
    {"equal", FOLD_EW, EW_EQ, NULL},
    {"less", FOLD_EW, EW_LT, NULL},
    {"less_or_equal", FOLD_EW, EW_LE, NULL},
    {"greater", FOLD_EW, EW_GT, NULL},
    {"greater_or_equal", FOLD_EW, EW_GE, NULL},
    {"and", FOLD_EW, EW_AND, NULL},
    {"or", FOLD_EW, EW_OR, NULL},
    {"not", FOLD_EW, EW_NOT, NULL},
    {"neg", FOLD_EW, EW_NEG, NULL},
    {"abs", FOLD_EW, EW_ABS, NULL},
    {"relu", FOLD_EW, EW_RELU, NULL},
    {"sqrt", FOLD_EW, EW_SQRT, NULL},
    {"exp", FOLD_EW, EW_EXP, NULL},
    {"log", FOLD_EW, EW_LOG, NULL},
    {"sin", FOLD_EW, EW_SIN, NULL},
    {"cos", FOLD_EW, EW_COS, NULL},
    {"tanh", FOLD_EW, EW_TANH, NULL},
    {"sigmoid", FOLD_EW, EW_SIGMOID, NULL},
    {"erf", FOLD_EW, EW_ERF, NULL},
    {"where", FOLD_EW, EW_WHERE, NULL},
    {"max", FOLD_EW, EW_MAX, NULL},
    {"min", FOLD_EW, EW_MIN, NULL},
    {"clip", FOLD_EW, EW_CLIP, NULL},
    {"cast", FOLD_EW, EW_CAST, NULL},
};

static const folder_t *find_folder(const char *name, size_t len) {
  for (size_t i = 0; i < sizeof(kFolders) / sizeof(kFolders[0]); ++i)
    if (strlen(kFolders[i].name) == len &&
        memcmp(kFolders[i].name, name, len) == 0)
      return &kFolders[i];
  return NULL;
}

bool si_fold_supported(const char *mnemonic, size_t len) {
  return find_folder(mnemonic, len) != NULL;
}

/* ---- indexing ------------------------------------------------------------- */

int64_t si_bcast_offset(const si_shape_t *from, const si_shape_t *to,
                        const int64_t *idx) {
  int64_t off = 0;
  int lead = to->rank - from->rank;
  for (int j = 0; j < from->rank; ++j) {
    int64_t d = from->dims[j];
    off = off * d + (d == 1 ? 0 : idx[lead + j]);
  }
  return off;
}

bool si_index_next(const si_shape_t *s, int64_t *idx) {
  for (int i = s->rank - 1; i >= 0; --i) {
    if (++idx[i] < s->dims[i]) return true;
    idx[i] = 0;
  }
  return false;
}

/* ---- element-wise evaluation --------------------------------------------- */

static double get_f(const si_tensor_t *t, int64_t off) {
  return t->is_float ? t->fv[off] : (double)t->iv[off];
}

static bool unary_float(ew_op_t op, double x, double *out) {
  switch (op) {
    case EW_SQRT: *out = sqrt(x); return true;
    case EW_EXP: *out = exp(x); return true;
    case EW_LOG: *out = log(x); return true;
    case EW_SIN: *out = sin(x); return true;
    case EW_COS: *out = cos(x); return true;
    case EW_TANH: *out = tanh(x); return true;
    case EW_SIGMOID: *out = 1.0 / (1.0 + exp(-x)); return true;
    case EW_ERF: *out = erf(x); return true;
    case EW_NEG: *out = -x; return true;
    case EW_ABS: *out = fabs(x); return true;
    case EW_RELU: *out = x > 0 ? x : 0.0; return true;
    default: return false;
  }
}

static bool binary_float(ew_op_t op, double a, double b, double *out) {
  switch (op) {
    case EW_ADD: *out = a + b; return true;
    case EW_SUB: *out = a - b; return true;
    case EW_MUL: *out = a * b; return true;
    case EW_DIV: *out = a / b; return true;
    case EW_POW: *out = pow(a, b); return true;
    default: return false;
  }
}

/* Integer arithmetic wraps (computed unsigned) like the runtime's; division
 * truncates toward zero as C and ONNX do. */
static bool binary_int(ew_op_t op, int64_t a, int64_t b, int64_t *out) {
  switch (op) {
    case EW_ADD: *out = (int64_t)((uint64_t)a + (uint64_t)b); return true;
    case EW_SUB: *out = (int64_t)((uint64_t)a - (uint64_t)b); return true;
    case EW_MUL: *out = (int64_t)((uint64_t)a * (uint64_t)b); return true;
    case EW_DIV:
      if (b == 0 || (a == INT64_MIN && b == -1)) return false;
      *out = a / b;
      return true;
    default: return false;
  }
}

static bool compare(ew_op_t op, const si_tensor_t *x, int64_t xo,
                    const si_tensor_t *y, int64_t yo) {
  if (!x->is_float && !y->is_float) {
    int64_t a = x->iv[xo], b = y->iv[yo];
    switch (op) {
      case EW_EQ: return a == b;
      case EW_LT: return a < b;
      case EW_LE: return a <= b;
      case EW_GT: return a > b;
      case EW_GE: return a >= b;
      case EW_AND: return a && b;
      default: return a || b;
    }
  }
  double a = get_f(x, xo), b = get_f(y, yo);
  switch (op) {
    case EW_EQ: return a == b;
    case EW_LT: return a < b;
    case EW_LE: return a <= b;
    case EW_GT: return a > b;
    default: return a >= b;
  }
}

/* Max/Min of `n` values at offsets off[] (NaN propagates, as numpy's). */
static void extreme(bool is_max, const si_tensor_t *in, const int64_t *off,
                    int n, bool *out_float, int64_t *out_i, double *out_f) {
  *out_float = in[0].is_float;
  if (!*out_float) {
    int64_t v = in[0].iv[off[0]];
    for (int k = 1; k < n; ++k) {
      int64_t x = in[k].iv[off[k]];
      if (is_max ? x > v : x < v) v = x;
    }
    *out_i = v;
    return;
  }
  double v = in[0].fv[off[0]];
  for (int k = 1; k < n && !isnan(v); ++k) {
    double x = in[k].fv[off[k]];
    if (isnan(x) || (is_max ? x > v : x < v)) v = x;
  }
  *out_f = v;
}

/* Clip's bounds default to the widest range. */
static void clip_value(si_op_t *si, const si_tensor_t *in, const int64_t *off,
                       bool *out_float, int64_t *out_i, double *out_f) {
  bool has_min = si->in_len[1] > 0, has_max = si->in_len[2] > 0;
  const si_tensor_t *lo = has_min ? &in[si->in_start[1]] : NULL;
  const si_tensor_t *hi = has_max ? &in[si->in_start[2]] : NULL;
  int64_t lo_off = has_min ? off[si->in_start[1]] : 0;
  int64_t hi_off = has_max ? off[si->in_start[2]] : 0;
  *out_float = in[0].is_float;
  if (in[0].is_float) {
    double v = in[0].fv[off[0]];
    if (lo && v < lo->fv[lo_off]) v = lo->fv[lo_off];
    if (hi && v > hi->fv[hi_off]) v = hi->fv[hi_off];
    *out_f = v;
  } else {
    int64_t v = in[0].iv[off[0]];
    if (lo && v < lo->iv[lo_off]) v = lo->iv[lo_off];
    if (hi && v > hi->iv[hi_off]) v = hi->iv[hi_off];
    *out_i = v;
  }
}

/* Computes element i of `out` from inputs at offsets off[]. */
static bool ew_element(si_op_t *si, ew_op_t op, const si_tensor_t *in,
                       const int64_t *off, int n, si_tensor_t *out,
                       int64_t i) {
  bool is_float = false;
  int64_t vi = 0;
  double vf = 0.0;
  switch (op) {
    case EW_CAST:
      return si_tensor_store(out, i, in[0].is_float,
                             in[0].is_float ? 0 : in[0].iv[off[0]],
                             in[0].is_float ? in[0].fv[off[0]] : 0.0);
    case EW_NOT:
      vi = !in[0].iv[off[0]];
      break;
    case EW_EQ: case EW_LT: case EW_LE: case EW_GT: case EW_GE:
    case EW_AND: case EW_OR:
      vi = compare(op, &in[0], off[0], &in[1], off[1]);
      break;
    case EW_WHERE: {
      const si_tensor_t *src = in[0].iv[off[0]] ? &in[1] : &in[2];
      int64_t o = in[0].iv[off[0]] ? off[1] : off[2];
      is_float = src->is_float;
      if (is_float) vf = src->fv[o]; else vi = src->iv[o];
      break;
    }
    case EW_MAX: case EW_MIN:
      extreme(op == EW_MAX, in, off, n, &is_float, &vi, &vf);
      break;
    case EW_CLIP:
      clip_value(si, in, off, &is_float, &vi, &vf);
      break;
    case EW_NEG: case EW_ABS: case EW_RELU:
      if (!in[0].is_float) {
        int64_t x = in[0].iv[off[0]];
        uint64_t neg = 0 - (uint64_t)x;
        vi = op == EW_NEG ? (int64_t)neg
             : op == EW_ABS ? (x < 0 ? (int64_t)neg : x)
                            : (x > 0 ? x : 0);
        break;
      }
      /* fall through */
    case EW_SQRT: case EW_EXP: case EW_LOG: case EW_SIN: case EW_COS:
    case EW_TANH: case EW_SIGMOID: case EW_ERF:
      if (!in[0].is_float) return false;
      is_float = true;
      unary_float(op, in[0].fv[off[0]], &vf);
      break;
    default: /* binary arithmetic */
      if (in[0].is_float) {
        is_float = true;
        if (!binary_float(op, in[0].fv[off[0]], get_f(&in[1], off[1]), &vf))
          return false;
      } else if (in[1].is_float || !binary_int(op, in[0].iv[off[0]],
                                               in[1].iv[off[1]], &vi)) {
        return false; /* integer Pow, division by zero: runtime's business */
      }
      break;
  }
  return si_tensor_store(out, i, is_float, vi, vf);
}

static si_fold_t fold_elementwise(si_op_t *si, ew_op_t op, si_tensor_t *in,
                                  int n, si_tensor_t *out) {
  int64_t *off = malloc((size_t)n * sizeof(int64_t));
  if (!off) return SI_FOLD_NO;
  int64_t idx[SI_MAX_RANK] = {0};
  si_fold_t result = SI_FOLD_DONE;
  for (int64_t i = 0; i < out->count; ++i) {
    for (int k = 0; k < n; ++k)
      off[k] = si_bcast_offset(&in[k].shape, &out->shape, idx);
    if (!ew_element(si, op, in, off, n, out, i)) {
      result = SI_FOLD_NO;
      break;
    }
    si_index_next(&out->shape, idx);
  }
  free(off);
  return result;
}

/* ---- driver ---------------------------------------------------------------- */

static si_fold_t fold_shape_op(si_op_t *si, si_tensor_t *out) {
  int64_t n;
  MlirValue result = mlirOperationGetResult(si->op, 0);
  si_const_t st = si_const_ints(si, result, "shape", out->iv, out->count, &n);
  return st == SI_CONST_OK && n == out->count ? SI_FOLD_DONE : SI_FOLD_NO;
}

static si_fold_t fold_with_inputs(si_op_t *si, const folder_t *f,
                                  int64_t max_elements, si_tensor_t *out) {
  int n = (int)mlirOperationGetNumOperands(si->op);
  si_tensor_t *in = calloc(n ? (size_t)n : 1, sizeof(si_tensor_t));
  if (!in) return SI_FOLD_NO;
  /* Inputs may be larger than the result (a Slice of a table); bound them
   * so that folding stays cheap. */
  int64_t max_in = max_elements > INT64_MAX / 16 ? INT64_MAX : max_elements * 16;
  si_fold_t result = SI_FOLD_DONE;
  for (int k = 0; k < n && result == SI_FOLD_DONE; ++k)
    if (!si_tensor_from_attr(si_const_attr(mlirOperationGetOperand(si->op, k)),
                             max_in, &in[k]))
      result = SI_FOLD_NO;
  if (result == SI_FOLD_DONE)
    result = f->kind == FOLD_EW ? fold_elementwise(si, f->ew, in, n, out)
                                : f->fn(si, in, n, out);
  for (int k = 0; k < n; ++k) si_tensor_free(&in[k]);
  free(in);
  return result;
}

si_fold_t si_fold(MlirOperation op, int64_t max_elements,
                  MlirAttribute *out_attr) {
  si_op_t si;
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  if (name.length <= 5 || memcmp(name.data, "moai.", 5) != 0)
    return SI_FOLD_NO;
  const folder_t *f = find_folder(name.data + 5, name.length - 5);
  if (!f || mlirOperationGetNumResults(op) != 1) return SI_FOLD_NO;
  MlirType type = mlirValueGetType(mlirOperationGetResult(op, 0));
  si_type_t rt;
  if (!si_type_from_mlir(type, &rt) || !si_shape_is_static(&rt.shape) ||
      !si_elem_foldable(rt.elem) || si_shape_numel(&rt.shape) > max_elements)
    return SI_FOLD_NO;
  if (!si_op_init(&si, op)) return SI_FOLD_ERROR;
  if (f->kind != FOLD_SHAPE)
    for (intptr_t k = 0; k < mlirOperationGetNumOperands(op); ++k)
      if (mlirAttributeIsNull(si_const_attr(mlirOperationGetOperand(op, k))))
        return SI_FOLD_NO;
  if (f->kind == FOLD_RESHAPE) {
    MlirAttribute data = si_const_attr(mlirOperationGetOperand(op, 0));
    if (!mlirTypeEqual(mlirShapedTypeGetElementType(mlirAttributeGetType(data)),
                       rt.elem))
      return SI_FOLD_NO;
    *out_attr = mlirDenseElementsAttrReshapeGet(data, type);
    return mlirAttributeIsNull(*out_attr) ? SI_FOLD_NO : SI_FOLD_DONE;
  }
  si_tensor_t out;
  if (!si_tensor_alloc(&out, rt.elem, &rt.shape)) return SI_FOLD_NO;
  si_fold_t result = f->kind == FOLD_SHAPE
                         ? fold_shape_op(&si, &out)
                         : fold_with_inputs(&si, f, max_elements, &out);
  if (result == SI_FOLD_DONE) {
    *out_attr = si_tensor_to_attr(&out);
    if (mlirAttributeIsNull(*out_attr)) result = SI_FOLD_NO;
  }
  si_tensor_free(&out);
  return result;
}
