/* moai-autodiff: the vector-Jacobian rules, one per differentiable moai op.
 * Each follows PyTorch's derivative formula for the op (tools/autograd/
 * derivatives.yaml) so that gradients agree with torch's to rounding. */
#include <math.h>
#include <string.h>

#include "autodiff/autodiff_internal.h"
#include "mlir-c/BuiltinAttributes.h"

#define OPERAND(op, i) mlirOperationGetOperand((op), (i))
#define RESULT(op, i) mlirOperationGetResult((op), (i))
#define NOPS(op) ((int)mlirOperationGetNumOperands(op))

static int norm_axis(int64_t axis, int rank) {
  return (int)(axis < 0 ? axis + rank : axis);
}

/* The operand of op-table entry `entry` (single or optional entries only),
 * or a null value when that optional operand is absent: ops with several
 * optional operands say which are present in operandSegmentSizes. */
static MlirValue entry_operand(MlirOperation op, int entry) {
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  const moai_op_def_t *def = moai_op_def_find(name.data, name.length);
  int32_t counts[MOAI_OP_MAX_OPERANDS] = {0};
  MlirAttribute seg = ad_attr(op, "operandSegmentSizes");
  if (!def) return (MlirValue){NULL};
  if (!mlirAttributeIsNull(seg) && mlirAttributeIsADenseI32Array(seg)) {
    int32_t sizes[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
    intptr_t n = mlirDenseArrayGetNumElements(seg);
    if (n > (intptr_t)(sizeof(sizes) / sizeof(sizes[0]))) return (MlirValue){NULL};
    for (intptr_t i = 0; i < n; ++i) sizes[i] = mlirDenseI32ArrayGetElement(seg, i);
    if (!moai_op_def_decode_segments(def, false, sizes, (size_t)n, counts))
      return (MlirValue){NULL};
  } else {
    /* No segments: the operands fill the entries in order. */
    for (int e = 0; e < NOPS(op) && e < MOAI_OP_MAX_OPERANDS; ++e) counts[e] = 1;
  }
  int k = 0;
  for (int e = 0; e < entry; ++e) k += counts[e];
  return counts[entry] ? OPERAND(op, k) : (MlirValue){NULL};
}

/* ---- elementwise ---------------------------------------------------------- */

static void rule_add(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0), b = OPERAND(op, 1);
  if (ad_needs(ad, a)) ad_accumulate(ad, a, ad_reduce_to_like(ad, g[0], a));
  if (ad_needs(ad, b)) ad_accumulate(ad, b, ad_reduce_to_like(ad, g[0], b));
}

static void rule_sub(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0), b = OPERAND(op, 1);
  if (ad_needs(ad, a)) ad_accumulate(ad, a, ad_reduce_to_like(ad, g[0], a));
  if (ad_needs(ad, b))
    ad_accumulate(ad, b, ad_reduce_to_like(ad, ad_unary(ad, "neg", g[0]), b));
}

static void rule_mul(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0), b = OPERAND(op, 1);
  if (ad_needs(ad, a)) ad_accumulate(ad, a, ad_reduce_to_like(ad, ad_mul(ad, g[0], b), a));
  if (ad_needs(ad, b)) ad_accumulate(ad, b, ad_reduce_to_like(ad, ad_mul(ad, g[0], a), b));
}

static void rule_div(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0), b = OPERAND(op, 1), y = RESULT(op, 0);
  if (ad_needs(ad, a)) ad_accumulate(ad, a, ad_reduce_to_like(ad, ad_div(ad, g[0], b), a));
  if (ad_needs(ad, b)) {
    /* torch: -grad * self / (other * other) = -grad * (y / other) */
    MlirValue t = ad_mul(ad, ad_unary(ad, "neg", g[0]), ad_div(ad, y, b));
    ad_accumulate(ad, b, ad_reduce_to_like(ad, t, b));
  }
}

static void rule_pow(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0), b = OPERAND(op, 1), y = RESULT(op, 0);
  if (ad_needs(ad, a)) {
    double e;
    MlirValue t;
    if (ad_const_scalar(b, &e) && e == 2.0) {
      /* torch: grad * 2 * self */
      t = ad_mul(ad, ad_mul(ad, g[0], ad_scalar_like(ad, a, 2.0)), a);
    } else if (ad_const_scalar(b, &e)) {
      /* torch: grad * (exponent * self.pow(exponent - 1)) */
      MlirValue p = ad_binary(ad, "pow", a, ad_scalar_like(ad, a, e - 1.0));
      t = ad_mul(ad, g[0], ad_mul(ad, ad_scalar_like(ad, a, e), p));
    } else {
      MlirValue bm1 = ad_sub(ad, b, ad_scalar_like(ad, b, 1.0));
      t = ad_mul(ad, g[0], ad_mul(ad, b, ad_binary(ad, "pow", a, bm1)));
    }
    ad_accumulate(ad, a, ad_reduce_to_like(ad, t, a));
  }
  if (ad_needs(ad, b)) {
    MlirValue t = ad_mul(ad, g[0], ad_mul(ad, y, ad_unary(ad, "log", a)));
    ad_accumulate(ad, b, ad_reduce_to_like(ad, t, b));
  }
}

static void rule_sqrt(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0), y = RESULT(op, 0);
  /* torch: grad / (2 * result) */
  ad_accumulate(ad, a, ad_div(ad, g[0], ad_mul(ad, ad_scalar_like(ad, y, 2.0), y)));
}

static void rule_neg(ad_t *ad, MlirOperation op, const MlirValue *g) {
  ad_accumulate(ad, OPERAND(op, 0), ad_unary(ad, "neg", g[0]));
}

static void rule_exp(ad_t *ad, MlirOperation op, const MlirValue *g) {
  ad_accumulate(ad, OPERAND(op, 0), ad_mul(ad, g[0], RESULT(op, 0)));
}

static void rule_log(ad_t *ad, MlirOperation op, const MlirValue *g) {
  ad_accumulate(ad, OPERAND(op, 0), ad_div(ad, g[0], OPERAND(op, 0)));
}

static void rule_sin(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0);
  ad_accumulate(ad, a, ad_mul(ad, g[0], ad_unary(ad, "cos", a)));
}

static void rule_cos(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0);
  ad_accumulate(ad, a, ad_mul(ad, g[0], ad_unary(ad, "neg", ad_unary(ad, "sin", a))));
}

static void rule_sigmoid(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue y = RESULT(op, 0);
  /* torch: grad * (1 - y) * y */
  MlirValue one_minus = ad_sub(ad, ad_scalar_like(ad, y, 1.0), y);
  ad_accumulate(ad, OPERAND(op, 0), ad_mul(ad, ad_mul(ad, g[0], one_minus), y));
}

static void rule_tanh(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue y = RESULT(op, 0);
  /* torch: grad * (1 - y * y) */
  MlirValue t = ad_sub(ad, ad_scalar_like(ad, y, 1.0), ad_mul(ad, y, y));
  ad_accumulate(ad, OPERAND(op, 0), ad_mul(ad, g[0], t));
}

static void rule_erf(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0);
  /* torch: 2 / sqrt(pi) * exp(-self^2) * grad */
  MlirValue e = ad_unary(ad, "exp", ad_unary(ad, "neg", ad_mul(ad, a, a)));
  MlirValue c = ad_scalar_like(ad, a, 1.1283791670955126);
  ad_accumulate(ad, a, ad_mul(ad, ad_mul(ad, c, e), g[0]));
}

static void rule_relu(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue y = RESULT(op, 0);
  /* torch threshold_backward: grad where result > 0 */
  MlirValue m = ad_compare(ad, "greater", y, ad_scalar_like(ad, y, 0.0));
  ad_accumulate(ad, OPERAND(op, 0), ad_where(ad, m, g[0], ad_scalar_like(ad, y, 0.0)));
}

static void rule_leaky_relu(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0);
  double alpha = ad_attr_float(op, "alpha", 0.01);
  MlirValue m = ad_compare(ad, "greater", a, ad_scalar_like(ad, a, 0.0));
  MlirValue neg = ad_mul(ad, g[0], ad_scalar_like(ad, a, alpha));
  ad_accumulate(ad, a, ad_where(ad, m, g[0], neg));
}

static void rule_abs(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0);
  MlirValue zero = ad_scalar_like(ad, a, 0.0);
  MlirValue pos = ad_compare(ad, "greater", a, zero);
  MlirValue neg = ad_compare(ad, "less", a, zero);
  MlirValue t = ad_where(ad, neg, ad_unary(ad, "neg", g[0]), zero);
  ad_accumulate(ad, a, ad_where(ad, pos, g[0], t));
}

static void rule_gelu(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  if (ad_attr_str_is(op, "approximate", "tanh", false)) {
    /* y = 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3) */
    MlirValue x2 = ad_mul(ad, x, x);
    MlirValue inner = ad_add(ad, x, ad_mul(ad, ad_scalar_like(ad, x, 0.044715), ad_mul(ad, x2, x)));
    MlirValue u = ad_mul(ad, ad_scalar_like(ad, x, 0.7978845608028654), inner);
    MlirValue t = ad_unary(ad, "tanh", u);
    MlirValue left = ad_mul(ad, ad_scalar_like(ad, x, 0.5), ad_add(ad, ad_scalar_like(ad, x, 1.0), t));
    MlirValue du = ad_mul(ad, ad_scalar_like(ad, x, 0.7978845608028654),
                          ad_add(ad, ad_scalar_like(ad, x, 1.0),
                                 ad_mul(ad, ad_scalar_like(ad, x, 3 * 0.044715), x2)));
    MlirValue sech2 = ad_sub(ad, ad_scalar_like(ad, x, 1.0), ad_mul(ad, t, t));
    MlirValue right = ad_mul(ad, ad_mul(ad, ad_scalar_like(ad, x, 0.5), x), ad_mul(ad, sech2, du));
    ad_accumulate(ad, x, ad_mul(ad, g[0], ad_add(ad, left, right)));
    return;
  }
  /* exact: cdf + x * pdf */
  MlirValue cdf = ad_mul(ad, ad_scalar_like(ad, x, 0.5),
                         ad_add(ad, ad_scalar_like(ad, x, 1.0),
                                ad_unary(ad, "erf", ad_mul(ad, x, ad_scalar_like(ad, x, 0.70710678118654752440)))));
  MlirValue pdf = ad_mul(ad, ad_scalar_like(ad, x, 0.3989422804014327),
                         ad_unary(ad, "exp", ad_mul(ad, ad_scalar_like(ad, x, -0.5), ad_mul(ad, x, x))));
  ad_accumulate(ad, x, ad_mul(ad, g[0], ad_add(ad, cdf, ad_mul(ad, x, pdf))));
}

static void rule_clip(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  MlirValue lo = entry_operand(op, 1), hi = entry_operand(op, 2);
  MlirValue mask = (MlirValue){NULL};
  if (!mlirValueIsNull(lo)) mask = ad_compare(ad, "greater_or_equal", x, lo);
  if (!mlirValueIsNull(hi)) {
    MlirValue m2 = ad_compare(ad, "less_or_equal", x, hi);
    mask = mlirValueIsNull(mask) ? m2 : ad_compare(ad, "and", mask, m2);
  }
  MlirValue gx = mlirValueIsNull(mask) ? g[0] : ad_where(ad, mask, g[0], ad_scalar_like(ad, x, 0.0));
  ad_accumulate(ad, x, gx);
  if ((!mlirValueIsNull(lo) && ad_needs(ad, lo)) || (!mlirValueIsNull(hi) && ad_needs(ad, hi)))
    ad_error(ad, "gradients with respect to Clip's min/max are not supported");
}

static void rule_minmax(ad_t *ad, MlirOperation op, const MlirValue *g, bool is_max) {
  int n = NOPS(op);
  if (n == 1) {
    ad_accumulate(ad, OPERAND(op, 0), g[0]);
    return;
  }
  if (n != 2) {
    ad_error(ad, "gradients of %s with more than two inputs are not supported", is_max ? "Max" : "Min");
    return;
  }
  MlirValue a = OPERAND(op, 0), b = OPERAND(op, 1);
  /* torch maximum: grad where a > b, half of it on ties. */
  MlirValue zero = ad_scalar_like(ad, a, 0.0);
  MlirValue wins = ad_compare(ad, is_max ? "greater" : "less", a, b);
  MlirValue tie = ad_compare(ad, "equal", a, b);
  MlirValue half = ad_mul(ad, g[0], ad_scalar_like(ad, a, 0.5));
  if (ad_needs(ad, a))
    ad_accumulate(ad, a, ad_reduce_to_like(ad, ad_where(ad, wins, g[0], ad_where(ad, tie, half, zero)), a));
  if (ad_needs(ad, b))
    ad_accumulate(ad, b, ad_reduce_to_like(ad, ad_where(ad, wins, zero, ad_where(ad, tie, half, g[0])), b));
}
static void rule_max(ad_t *ad, MlirOperation op, const MlirValue *g) { rule_minmax(ad, op, g, true); }
static void rule_min(ad_t *ad, MlirOperation op, const MlirValue *g) { rule_minmax(ad, op, g, false); }

static void rule_where(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue c = OPERAND(op, 0), x = OPERAND(op, 1), y = OPERAND(op, 2);
  MlirValue zero = ad_scalar_like(ad, g[0], 0.0);
  if (ad_needs(ad, x)) ad_accumulate(ad, x, ad_reduce_to_like(ad, ad_where(ad, c, g[0], zero), x));
  if (ad_needs(ad, y)) ad_accumulate(ad, y, ad_reduce_to_like(ad, ad_where(ad, c, zero, g[0]), y));
}

static void rule_cast(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  ad_accumulate(ad, x, ad_cast(ad, g[0], ad_elem(x)));
}

/* ---- shape ops ---------------------------------------------------------------- */

static void rule_view(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  ad_accumulate(ad, x, ad_reshape_like(ad, g[0], x));
}

static void rule_dropout(ad_t *ad, MlirOperation op, const MlirValue *g) {
  /* Operands data, ratio?, training_mode?: an identity unless training with
   * a ratio above zero (moai-simplify removes identity Dropouts first; this
   * rule covers autodiff run on its own). */
  MlirValue ratio = entry_operand(op, 1), training = entry_operand(op, 2);
  double r = 0.0, mode = 1.0;
  bool is_training = !mlirValueIsNull(training) && !(ad_const_scalar(training, &mode) && mode == 0.0);
  bool zero_ratio = !mlirValueIsNull(ratio) && ad_const_scalar(ratio, &r) && r == 0.0;
  if (is_training && !zero_ratio) {
    ad_error(ad, "training-mode Dropout with a ratio above 0 is not supported; export with "
                 "dropout disabled (p=0) or in eval mode");
    return;
  }
  ad_accumulate(ad, OPERAND(op, 0), g[0]);
}

static void rule_expand(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  ad_accumulate(ad, x, ad_reduce_to_like(ad, g[0], x));
}

static void rule_transpose(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  int r = ad_rank(x);
  int64_t perm[AD_MAX_RANK], inv[AD_MAX_RANK];
  if (ad_attr_ints(op, "perm", perm, AD_MAX_RANK) != r)
    for (int i = 0; i < r; ++i) perm[i] = r - 1 - i;
  for (int i = 0; i < r; ++i) inv[perm[i]] = i;
  ad_accumulate(ad, x, ad_transpose(ad, g[0], inv));
}

static void rule_slice(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  /* operands data, starts, ends, axes?, steps? */
  MlirValue in[5] = {g[0], entry_operand(op, 1), entry_operand(op, 2), entry_operand(op, 3),
                     entry_operand(op, 4)};
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(x, d);
  MlirType t = ad_tensor_type(ad, r, d, ad_elem(g[0]));
  MlirNamedAttribute a = ad_named(ad, "shape", ad_ints_attr(ad, r, d));
  ad_accumulate(ad, x, ad_build(ad, "slice_grad", in, 5, 0, &t, 1, &a, 1, NULL));
}

static void rule_concat(ad_t *ad, MlirOperation op, const MlirValue *g) {
  int n = NOPS(op);
  int r = ad_rank(RESULT(op, 0));
  int axis = norm_axis(ad_attr_int(op, "axis", 0), r);
  int64_t off = 0;
  for (int i = 0; i < n; ++i) {
    MlirValue x = OPERAND(op, i);
    int64_t d[AD_MAX_RANK];
    ad_dims(x, d);
    if (ad_needs(ad, x)) ad_accumulate(ad, x, ad_slice(ad, g[0], axis, off, off + d[axis]));
    off += d[axis];
  }
}

static void rule_split(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  int nres = (int)mlirOperationGetNumResults(op);
  MlirValue parts[MOAI_VARIADIC_SLOTS];
  if (nres > MOAI_VARIADIC_SLOTS) {
    ad_error(ad, "gradients of Split into more than %d outputs are not supported", MOAI_VARIADIC_SLOTS);
    return;
  }
  for (int i = 0; i < nres; ++i) {
    MlirValue y = RESULT(op, i);
    if (!mlirValueIsNull(g[i])) {
      parts[i] = g[i];
    } else {
      int64_t d[AD_MAX_RANK];
      int r = ad_dims(y, d);
      parts[i] = ad_zeros(ad, r, d, ad_elem(y));
    }
  }
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(x, d);
  MlirType t = ad_tensor_type(ad, r, d, ad_elem(x));
  MlirNamedAttribute a = ad_named(ad, "axis", ad_i64_attr(ad, norm_axis(ad_attr_int(op, "axis", 0), r)));
  ad_accumulate(ad, x, ad_build(ad, "concat", parts, nres, nres, &t, 1, &a, 1, NULL));
}

static void rule_gather(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue data = OPERAND(op, 0), idx = OPERAND(op, 1);
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(data, d);
  MlirType t = ad_tensor_type(ad, r, d, ad_elem(g[0]));
  MlirNamedAttribute a[2] = {
      ad_named(ad, "axis", ad_i64_attr(ad, norm_axis(ad_attr_int(op, "axis", 0), r))),
      ad_named(ad, "shape", ad_ints_attr(ad, r, d))};
  MlirValue in[2] = {g[0], idx};
  ad_accumulate(ad, data, ad_build(ad, "gather_grad", in, 2, 0, &t, 1, a, 2, NULL));
}

static void rule_cumsum(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  MlirNamedAttribute a[2] = {
      ad_named(ad, "exclusive", ad_i64_attr(ad, ad_attr_int(op, "exclusive", 0))),
      ad_named(ad, "reverse", ad_i64_attr(ad, !ad_attr_int(op, "reverse", 0)))};
  MlirValue in[2] = {g[0], OPERAND(op, 1)};
  MlirType t = mlirValueGetType(g[0]);
  ad_accumulate(ad, x, ad_build(ad, "cumsum", in, 2, 0, &t, 1, a, 2, NULL));
}

static void rule_trilu(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  MlirValue in[2] = {g[0], NOPS(op) > 1 ? OPERAND(op, 1) : (MlirValue){NULL}};
  MlirNamedAttribute a = ad_named(ad, "upper", ad_i64_attr(ad, ad_attr_int(op, "upper", 1)));
  MlirType t = mlirValueGetType(g[0]);
  ad_accumulate(ad, x, ad_build(ad, "trilu", in, 2, 0, &t, 1, &a, 1, NULL));
}

/* ---- reductions ------------------------------------------------------------- */

/* The reduced axes of a Reduce op (all when none are given), for x =
 * operand 0 and its gradient g. False, with the rule's work done, if they
 * are not constants (an error) or the op reduces nothing (g passes to x). */
static bool reduce_axes(ad_t *ad, MlirOperation op, MlirValue g, bool *mask) {
  MlirValue x = OPERAND(op, 0);
  int rank = ad_rank(x);
  int64_t axes[AD_MAX_RANK];
  int n = NOPS(op) > 1 ? ad_const_ints(OPERAND(op, 1), axes, AD_MAX_RANK) : 0;
  if (n < 0) {
    ad_error(ad, "gradients of a Reduce whose axes are computed at run time are not supported");
    return false;
  }
  for (int i = 0; i < rank; ++i) mask[i] = n == 0;
  if (n == 0 && ad_attr_int(op, "noop_with_empty_axes", 0)) {
    if (!ad->failed) ad_accumulate(ad, x, ad_reshape_like(ad, g, x));
    return false;
  }
  for (int i = 0; i < n; ++i) mask[norm_axis(axes[i], rank)] = true;
  return true;
}

/* g of the reduced shape, expanded back to x's shape. */
static MlirValue unreduce(ad_t *ad, MlirValue x, MlirValue g, const bool *mask,
                          int64_t *out_count) {
  int64_t d[AD_MAX_RANK], kd[AD_MAX_RANK];
  int r = ad_dims(x, d);
  int64_t count = 1;
  for (int i = 0; i < r; ++i) {
    kd[i] = mask[i] ? 1 : d[i];
    if (mask[i]) count *= d[i];
  }
  *out_count = count;
  return ad_expand(ad, ad_reshape(ad, g, r, kd), r, d);
}

static void rule_reduce_sum(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  bool mask[AD_MAX_RANK];
  if (!reduce_axes(ad, op, g[0], mask)) return;
  int64_t count;
  ad_accumulate(ad, x, unreduce(ad, x, g[0], mask, &count));
}

static void rule_reduce_mean(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  bool mask[AD_MAX_RANK];
  if (!reduce_axes(ad, op, g[0], mask)) return;
  int64_t count;
  MlirValue e = unreduce(ad, x, g[0], mask, &count);
  /* torch: grad.expand(...) / count */
  ad_accumulate(ad, x, ad_div(ad, e, ad_scalar_like(ad, x, (double)count)));
}

static void rule_reduce_max(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0), y = RESULT(op, 0);
  bool mask[AD_MAX_RANK];
  if (!reduce_axes(ad, op, g[0], mask)) return;
  int64_t count;
  MlirValue ge = unreduce(ad, x, g[0], mask, &count);
  MlirValue ye = unreduce(ad, x, y, mask, &count);
  /* torch amax: the gradient split evenly over the maxima */
  MlirValue is_max = ad_compare(ad, "equal", x, ye);
  MlirValue ones = ad_cast(ad, is_max, ad_elem(x));
  int64_t axes[AD_MAX_RANK];
  int n = 0, r = ad_rank(x);
  for (int i = 0; i < r; ++i)
    if (mask[i]) axes[n++] = i;
  MlirValue cnt = ad_reduce_sum(ad, ones, n, axes, true);
  int64_t d[AD_MAX_RANK];
  ad_dims(x, d);
  MlirValue share = ad_div(ad, ge, ad_expand(ad, cnt, r, d));
  ad_accumulate(ad, x, ad_mul(ad, share, ones));
}

/* ---- linear algebra ------------------------------------------------------------ */

static void rule_matmul(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0), b = OPERAND(op, 1), gy = g[0];
  int ra = ad_rank(a), rb = ad_rank(b);
  MlirValue a2 = a, b2 = b, g2 = gy;
  /* 1-D operands: promote as numpy does ([K] -> [1, K] or [K, 1]) and view
   * the gradient with the promoted result's shape. */
  if (ra == 1 || rb == 1) {
    int64_t da[AD_MAX_RANK], db[AD_MAX_RANK], o[AD_MAX_RANK];
    ad_dims(a, da);
    ad_dims(b, db);
    if (ra == 1) {
      int64_t s[2] = {1, da[0]};
      a2 = ad_reshape(ad, a, 2, s);
    }
    if (rb == 1) {
      int64_t s[2] = {db[0], 1};
      b2 = ad_reshape(ad, b, 2, s);
    }
    int64_t pa[AD_MAX_RANK], pb[AD_MAX_RANK];
    int qa = ad_dims(a2, pa), qb = ad_dims(b2, pb);
    int r = qa > qb ? qa : qb;
    for (int i = 0; i < r - 2; ++i) {
      int64_t x = i - (r - qa) >= 0 ? pa[i - (r - qa)] : 1;
      int64_t y = i - (r - qb) >= 0 ? pb[i - (r - qb)] : 1;
      o[i] = x == 1 ? y : x;
    }
    o[r - 2] = pa[qa - 2];
    o[r - 1] = pb[qb - 1];
    g2 = ad_reshape(ad, gy, r, o);
  }
  if (ad_needs(ad, a)) {
    MlirValue ga;
    int64_t dg[AD_MAX_RANK], da[AD_MAX_RANK];
    int ng = ad_dims(g2, dg), na = ad_dims(a2, da);
    if (ad_rank(b2) == 2 && ng == na && memcmp(dg, da, sizeof(int64_t) * (size_t)(na - 1)) == 0) {
      /* [..., M, N] x [K, N]^T: one GEMM over the flattened rows, b read
       * transposed in place */
      int64_t rows = ad_numel(g2) / dg[ng - 1], sg[2] = {rows, dg[ng - 1]};
      ga = ad_gemm(ad, ad_reshape(ad, g2, 2, sg), b2, false, true);
      ga = ad_reshape_like(ad, ga, a2);
    } else {
      ga = ad_matmul(ad, g2, ad_transpose_last2(ad, b2));
      ga = ad_reduce_to_like(ad, ga, a2);
    }
    ad_accumulate(ad, a, ad_reshape_like(ad, ga, a));
  }
  if (ad_needs(ad, b)) {
    MlirValue gb;
    if (ad_rank(b2) == 2 && ad_rank(a2) > 2) {
      /* [..., M, K] x [K, N]: one GEMM over the flattened rows. */
      int64_t da[AD_MAX_RANK], dg[AD_MAX_RANK];
      int na = ad_dims(a2, da), ng = ad_dims(g2, dg);
      int64_t rows = ad_numel(a2) / da[na - 1];
      int64_t sa[2] = {rows, da[na - 1]}, sg[2] = {rows, dg[ng - 1]};
      MlirValue af = ad_reshape(ad, a2, 2, sa);
      MlirValue gf = ad_reshape(ad, g2, 2, sg);
      if (ad_numel(g2) != rows * dg[ng - 1]) {
        /* a broadcast over batch axes that `a` lacks: fall back */
        gb = ad_reduce_to_like(ad, ad_matmul(ad, ad_transpose_last2(ad, a2), g2), b2);
      } else {
        /* af^T gf: a Gemm with transA; the packed GEMM reads the
         * activation transposed in place (no copy) */
        gb = ad_gemm(ad, af, gf, true, false);
      }
    } else {
      gb = ad_reduce_to_like(ad, ad_matmul(ad, ad_transpose_last2(ad, a2), g2), b2);
    }
    ad_accumulate(ad, b, ad_reshape_like(ad, gb, b));
  }
}

static void rule_gemm(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue a = OPERAND(op, 0), b = OPERAND(op, 1);
  MlirValue c = NOPS(op) > 2 ? OPERAND(op, 2) : (MlirValue){NULL};
  double alpha = ad_attr_float(op, "alpha", 1.0), beta = ad_attr_float(op, "beta", 1.0);
  bool ta = ad_attr_int(op, "transA", 0) != 0, tb = ad_attr_int(op, "transB", 0) != 0;
  MlirValue gy = g[0];
  if (alpha != 1.0 && (ad_needs(ad, a) || ad_needs(ad, b)))
    gy = ad_mul(ad, gy, ad_scalar_like(ad, gy, alpha));
  /* Y = op(A) op(B): d op(A) = gy op(B)^T, d op(B) = op(A)^T gy; every
   * product a Gemm whose transA/transB read the operands transposed in
   * place. dA = ta ? op(B) gy^T : gy op(B)^T, dB = tb ? gy^T op(A) : op(A)^T gy. */
  if (ad_needs(ad, a)) {
    MlirValue ga = ta ? ad_gemm(ad, b, gy, tb, true) : ad_gemm(ad, gy, b, false, !tb);
    ad_accumulate(ad, a, ga);
  }
  if (ad_needs(ad, b)) {
    MlirValue gb = tb ? ad_gemm(ad, gy, a, true, ta) : ad_gemm(ad, a, gy, !ta, false);
    ad_accumulate(ad, b, gb);
  }
  if (!mlirValueIsNull(c) && ad_needs(ad, c)) {
    MlirValue gc = beta == 1.0 ? g[0] : ad_mul(ad, g[0], ad_scalar_like(ad, g[0], beta));
    ad_accumulate(ad, c, ad_reduce_to_like(ad, gc, c));
  }
}

/* ---- softmax and losses ------------------------------------------------------------ */

static void rule_softmax_like(ad_t *ad, MlirOperation op, const MlirValue *g, const char *grad_op) {
  MlirValue x = OPERAND(op, 0), y = RESULT(op, 0);
  int axis = norm_axis(ad_attr_int(op, "axis", -1), ad_rank(x));
  MlirNamedAttribute a = ad_named(ad, "axis", ad_i64_attr(ad, axis));
  MlirValue in[2] = {y, g[0]};
  MlirType t = mlirValueGetType(x);
  ad_accumulate(ad, x, ad_build(ad, grad_op, in, 2, 0, &t, 1, &a, 1, NULL));
}
static void rule_softmax(ad_t *ad, MlirOperation op, const MlirValue *g) {
  rule_softmax_like(ad, op, g, "softmax_grad");
}
static void rule_log_softmax(ad_t *ad, MlirOperation op, const MlirValue *g) {
  rule_softmax_like(ad, op, g, "log_softmax_grad");
}

static void rule_sce(ad_t *ad, MlirOperation op, const MlirValue *g) {
  if (mlirOperationGetNumResults(op) > 1 && !mlirValueIsNull(g[1])) {
    ad_error(ad, "gradients through SoftmaxCrossEntropyLoss's log_prob output are not supported");
    return;
  }
  if (mlirValueIsNull(g[0])) return;
  MlirValue scores = OPERAND(op, 0), labels = OPERAND(op, 1);
  MlirValue weights = NOPS(op) > 2 ? OPERAND(op, 2) : (MlirValue){NULL};
  if (!mlirValueIsNull(weights) && ad_needs(ad, weights)) {
    ad_error(ad, "gradients with respect to SoftmaxCrossEntropyLoss's class weights are not supported");
    return;
  }
  MlirNamedAttribute a[2];
  int na = 0;
  a[na++] = ad_named(ad, "reduction", ad_attr(op, "reduction"));
  MlirAttribute ii = ad_attr(op, "ignore_index");
  if (!mlirAttributeIsNull(ii)) a[na++] = ad_named(ad, "ignore_index", ii);
  if (mlirAttributeIsNull(a[0].attribute)) a[0] = ad_named(ad, "reduction", ad_str_attr(ad, "mean"));
  MlirValue in[4] = {scores, labels, weights, g[0]};
  MlirType t = mlirValueGetType(scores);
  ad_accumulate(ad, scores, ad_build(ad, "softmax_cross_entropy_loss_grad", in, 4, 0, &t, 1, a, na, NULL));
}

/* ---- convolution, pooling, normalisation ------------------------------------------------- */

/* Copies the forward op's attributes named in `names` (when present). */
static int copy_attrs(ad_t *ad, MlirOperation op, const char *const *names, MlirNamedAttribute *out) {
  int n = 0;
  for (int i = 0; names[i]; ++i) {
    MlirAttribute a = ad_attr(op, names[i]);
    if (!mlirAttributeIsNull(a)) out[n++] = ad_named(ad, names[i], a);
  }
  return n;
}

static void rule_conv(ad_t *ad, MlirOperation op, const MlirValue *g) {
  static const char *const names[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
  MlirValue x = OPERAND(op, 0), w = OPERAND(op, 1);
  MlirValue b = NOPS(op) > 2 ? OPERAND(op, 2) : (MlirValue){NULL};
  MlirNamedAttribute a[8];
  int n = copy_attrs(ad, op, names, a);
  if (ad_needs(ad, x)) {
    int64_t d[AD_MAX_RANK];
    int r = ad_dims(x, d);
    a[n] = ad_named(ad, "shape", ad_ints_attr(ad, r, d));
    MlirValue in[2] = {g[0], w};
    MlirType t = mlirValueGetType(x);
    ad_accumulate(ad, x, ad_build(ad, "conv_grad_input", in, 2, 0, &t, 1, a, n + 1, NULL));
  }
  if (ad_needs(ad, w)) {
    int64_t d[AD_MAX_RANK];
    int r = ad_dims(w, d);
    a[n] = ad_named(ad, "shape", ad_ints_attr(ad, r, d));
    MlirValue in[2] = {x, g[0]};
    MlirType t = mlirValueGetType(w);
    ad_accumulate(ad, w, ad_build(ad, "conv_grad_weight", in, 2, 0, &t, 1, a, n + 1, NULL));
  }
  if (!mlirValueIsNull(b) && ad_needs(ad, b)) {
    int r = ad_rank(g[0]);
    int64_t axes[AD_MAX_RANK];
    int k = 0;
    for (int i = 0; i < r; ++i)
      if (i != 1) axes[k++] = i;
    ad_accumulate(ad, b, ad_reduce_sum(ad, g[0], k, axes, false));
  }
}

static void rule_max_pool(ad_t *ad, MlirOperation op, const MlirValue *g) {
  static const char *const names[] = {"auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides", NULL};
  if (mlirOperationGetNumResults(op) > 1 && !mlirValueIsNull(g[1])) return;
  MlirValue x = OPERAND(op, 0);
  MlirNamedAttribute a[8];
  int n = copy_attrs(ad, op, names, a);
  MlirValue in[2] = {x, g[0]};
  MlirType t = mlirValueGetType(x);
  ad_accumulate(ad, x, ad_build(ad, "max_pool_grad", in, 2, 0, &t, 1, a, n, NULL));
}

static void rule_average_pool(ad_t *ad, MlirOperation op, const MlirValue *g) {
  static const char *const names[] = {"auto_pad", "ceil_mode", "count_include_pad", "dilations",
                                      "kernel_shape", "pads", "strides", NULL};
  MlirValue x = OPERAND(op, 0);
  MlirNamedAttribute a[9];
  int n = copy_attrs(ad, op, names, a);
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(x, d);
  a[n++] = ad_named(ad, "shape", ad_ints_attr(ad, r, d));
  MlirType t = mlirValueGetType(x);
  ad_accumulate(ad, x, ad_build(ad, "average_pool_grad", g, 1, 0, &t, 1, a, n, NULL));
}

static void rule_global_average_pool(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirValue x = OPERAND(op, 0);
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(x, d);
  int64_t count = 1;
  for (int i = 2; i < r; ++i) count *= d[i];
  MlirValue e = ad_expand(ad, g[0], r, d);
  ad_accumulate(ad, x, ad_div(ad, e, ad_scalar_like(ad, x, (double)count)));
}

static void rule_norm(ad_t *ad, MlirOperation op, const MlirValue *g, bool batch) {
  int nres = (int)mlirOperationGetNumResults(op);
  for (int i = 1; i < nres; ++i)
    if (!mlirValueIsNull(g[i])) {
      ad_error(ad, "gradients through the statistics outputs of %s are not supported",
               batch ? "BatchNormalization" : "LayerNormalization");
      return;
    }
  if (mlirValueIsNull(g[0])) return;
  MlirValue x = OPERAND(op, 0), scale = OPERAND(op, 1);
  MlirValue b = NOPS(op) > 2 ? OPERAND(op, 2) : (MlirValue){NULL};
  MlirNamedAttribute a[2];
  int n = 0;
  if (batch) {
    if (!ad_attr_int(op, "training_mode", 0)) {
      ad_error(ad, "gradients of inference-mode BatchNormalization are not supported; export "
                   "the training step in training mode");
      return;
    }
    if (ad_needs(ad, OPERAND(op, 3)) || ad_needs(ad, OPERAND(op, 4))) {
      ad_error(ad, "BatchNormalization's running mean and variance cannot be trained");
      return;
    }
    a[n++] = ad_named(ad, "epsilon", ad_f32_attr(ad, ad_attr_float(op, "epsilon", 1e-5)));
  } else {
    a[n++] = ad_named(ad, "axis", ad_i64_attr(ad, norm_axis(ad_attr_int(op, "axis", -1), ad_rank(x))));
    a[n++] = ad_named(ad, "epsilon", ad_f32_attr(ad, ad_attr_float(op, "epsilon", 1e-5)));
  }
  MlirValue in[3] = {x, scale, g[0]};
  MlirType t[3] = {mlirValueGetType(x), mlirValueGetType(scale), mlirValueGetType(scale)};
  MlirValue out[3];
  ad_build(ad, batch ? "batch_normalization_grad" : "layer_normalization_grad", in, 3, 0, t, 3, a, n,
           out);
  if (ad->failed) return;
  ad_accumulate(ad, x, out[0]);
  ad_accumulate(ad, scale, out[1]);
  if (!mlirValueIsNull(b)) ad_accumulate(ad, b, ad_reshape_like(ad, out[2], b));
}
static void rule_batch_norm(ad_t *ad, MlirOperation op, const MlirValue *g) { rule_norm(ad, op, g, true); }
static void rule_layer_norm(ad_t *ad, MlirOperation op, const MlirValue *g) { rule_norm(ad, op, g, false); }

/* ---- table ------------------------------------------------------------------------------- */

typedef struct rule_t {
  const char *name;
  ad_rule_fn_t fn;
} rule_t;

/* Tensor-parallel collectives (passes/partition, Megatron's f and g): an
 * all-reduce-sum feeds replicated computation, so each rank's input gets the
 * (identical) output gradient; an all-reduce-max only stabilises a
 * softmax (parallel cross-entropy) and carries no gradient; tp_copy is the
 * identity whose users are rank-local, so its input gradient is the sum of
 * every rank's: an all-reduce. */
static void rule_all_reduce(ad_t *ad, MlirOperation op, const MlirValue *g) {
  if (ad_attr_str_is(op, "op", "sum", true)) ad_accumulate(ad, OPERAND(op, 0), g[0]);
}

static void rule_tp_copy(ad_t *ad, MlirOperation op, const MlirValue *g) {
  MlirNamedAttribute attrs[2] = {ad_named(ad, "op", ad_str_attr(ad, "sum")),
                                 ad_named(ad, "group", ad_str_attr(ad, "tp"))};
  MlirType t = mlirValueGetType(g[0]);
  ad_accumulate(ad, OPERAND(op, 0), ad_build(ad, "all_reduce", g, 1, 0, &t, 1, attrs, 2, NULL));
}

static const rule_t kRules[] = {
    {"add", rule_add},           {"sub", rule_sub},
    {"mul", rule_mul},           {"div", rule_div},
    {"pow", rule_pow},           {"sqrt", rule_sqrt},
    {"neg", rule_neg},           {"exp", rule_exp},
    {"log", rule_log},           {"sin", rule_sin},
    {"cos", rule_cos},           {"sigmoid", rule_sigmoid},
    {"tanh", rule_tanh},         {"erf", rule_erf},
    {"relu", rule_relu},         {"leaky_relu", rule_leaky_relu},
    {"abs", rule_abs},           {"gelu", rule_gelu},
    {"clip", rule_clip},         {"max", rule_max},
    {"min", rule_min},           {"where", rule_where},
    {"cast", rule_cast},         {"reshape", rule_view},
    {"squeeze", rule_view},      {"unsqueeze", rule_view},
    {"flatten", rule_view},      {"identity", rule_view},
    {"dropout", rule_dropout},   {"expand", rule_expand},
    {"transpose", rule_transpose}, {"slice", rule_slice},
    {"concat", rule_concat},     {"split", rule_split},
    {"gather", rule_gather},     {"cumsum", rule_cumsum},
    {"trilu", rule_trilu},       {"reduce_sum", rule_reduce_sum},
    {"reduce_mean", rule_reduce_mean}, {"reduce_max", rule_reduce_max},
    {"matmul", rule_matmul},     {"gemm", rule_gemm},
    {"softmax", rule_softmax},   {"log_softmax", rule_log_softmax},
    {"softmax_cross_entropy_loss", rule_sce},
    {"conv", rule_conv},         {"max_pool", rule_max_pool},
    {"average_pool", rule_average_pool},
    {"global_average_pool", rule_global_average_pool},
    {"batch_normalization", rule_batch_norm},
    {"layer_normalization", rule_layer_norm},
    {"all_reduce", rule_all_reduce}, {"tp_copy", rule_tp_copy},
    /* fused ops (rules_fused.c) */
    {"attention", ad_rule_attention}, {"rms_norm", ad_rule_rms_norm},
    {"swiglu", ad_rule_swiglu},   {"rotary", ad_rule_rotary},
};

ad_rule_fn_t ad_rule_find(const char *mnemonic, size_t len) {
  for (size_t i = 0; i < sizeof(kRules) / sizeof(kRules[0]); ++i)
    if (strlen(kRules[i].name) == len && memcmp(kRules[i].name, mnemonic, len) == 0)
      return kRules[i].fn;
  return NULL;
}
