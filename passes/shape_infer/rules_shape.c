/* Shape rules of the ops that move shapes around: Constant, Weight,
 * ConstantOfShape, Shape, Reshape, Squeeze, Unsqueeze, Transpose, Expand,
 * Flatten. Where a result depends on an operand's value (Reshape's shape,
 * Squeeze's axes, ...) that operand must be a constant for a static shape;
 * otherwise the rule records the dependency and gives what it can. */
#include <stdint.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "shape_infer/shape_infer_internal.h"

/* a * b, false on overflow (both non-negative). */
static bool mul_ok(int64_t a, int64_t b, int64_t *out) {
  if (a != 0 && b > INT64_MAX / a) return false;
  *out = a * b;
  return true;
}

/* An operand that must hold a 1-D int64 vector (shape, axes). */
static bool check_i64_vector(si_op_t *si, int slot, si_type_t *out) {
  if (!si_in_type(si, slot, out)) return false;
  const char *name = si->def->operands[slot].name;
  char s[64];
  if (!si_is_i64(out->elem))
    return si_error(si, "operand '%s' must be int64, got %s", name,
                    si_type_str(out->elem, s, sizeof(s)));
  if (out->shape.rank != SI_UNRANKED && out->shape.rank != 1)
    return si_error(si, "operand '%s' must be 1-D, got rank %d", name,
                    out->shape.rank);
  return true;
}

/* The static length of a 1-D operand, or -1. */
static int64_t vector_len(const si_type_t *t) {
  return t->shape.rank == 1 ? t->shape.dims[0] : -1;
}

static void all_dyn(si_shape_t *s, int64_t rank) {
  if (rank < 0 || rank > SI_MAX_RANK) {
    si_shape_unranked(s);
    return;
  }
  s->rank = (int)rank;
  for (int i = 0; i < s->rank; ++i) s->dims[i] = SI_DYN;
}

bool si_rule_constant(si_op_t *si) {
  MlirAttribute value;
  if (!si_attr_elements(si, "value", &value)) return false;
  si_type_t t;
  if (!si_type_from_mlir(mlirAttributeGetType(value), &t) ||
      t.shape.rank == SI_UNRANKED)
    return si_error(si, "attribute 'value' must be a ranked tensor");
  si_set_result(si, 0, 0, t.elem, &t.shape);
  return true;
}

bool si_rule_weight(si_op_t *si) {
  si_type_t t;
  MlirValue v = mlirOperationGetResult(si->op, 0);
  if (!si_type_from_mlir(mlirValueGetType(v), &t) ||
      t.shape.rank == SI_UNRANKED)
    return si_error(si, "a weight needs a ranked tensor type");
  return true;
}

/* moai.accumulate and the optimizer ops: they update operands in place and
 * have no results to infer; the backend checks their operands. */
bool si_rule_no_results(si_op_t *si) {
  (void)si;
  return true;
}

/* moai.grad_ready: no results; a bucket number >= 0 over the accumulators
 * of weight gradients (moai.state of role grad). */
bool si_rule_grad_ready(si_op_t *si) {
  int64_t bucket = 0;
  if (!si_attr_int(si, "bucket", &bucket, NULL)) return false;
  if (bucket < 0 || bucket > INT32_MAX)
    return si_error(si, "attribute 'bucket' must be in [0, 2^31), got %lld", (long long)bucket);
  for (intptr_t i = 0; i < mlirOperationGetNumOperands(si->op); ++i) {
    MlirValue v = mlirOperationGetOperand(si->op, i);
    MlirOperation def = mlirValueIsAOpResult(v) ? mlirOpResultGetOwner(v) : (MlirOperation){NULL};
    MlirAttribute role = mlirOperationIsNull(def)
                             ? mlirAttributeGetNull()
                             : mlirOperationGetAttributeByName(def, mlirStringRefCreateFromCString("role"));
    MlirStringRef name = mlirOperationIsNull(def) ? (MlirStringRef){"", 0}
                                                  : mlirIdentifierStr(mlirOperationGetName(def));
    bool grad = name.length == 10 && memcmp(name.data, "moai.state", 10) == 0 &&
                !mlirAttributeIsNull(role) && mlirAttributeIsAString(role) &&
                mlirStringAttrGetValue(role).length == 4 &&
                memcmp(mlirStringAttrGetValue(role).data, "grad", 4) == 0;
    if (!grad)
      return si_error(si, "operand %lld is not a gradient accumulator (a moai.state with role "
                          "\"grad\")", (long long)i);
  }
  return true;
}

bool si_rule_constant_of_shape(si_op_t *si) {
  si_type_t in;
  MlirAttribute value;
  if (!check_i64_vector(si, 0, &in) || !si_attr_elements(si, "value", &value))
    return false;
  MlirType elem = mlirF32TypeGet(si->ctx);
  if (!mlirAttributeIsNull(value)) {
    if (mlirElementsAttrGetNumElements(value) != 1)
      return si_error(si, "attribute 'value' must hold one element");
    elem = mlirShapedTypeGetElementType(mlirAttributeGetType(value));
  }
  int64_t dims[SI_MAX_RANK], n;
  si_shape_t out;
  si_const_t st = si_const_ints(si, si_operand(si, 0), "input", dims,
                                SI_MAX_RANK, &n);
  if (st == SI_CONST_ERROR) return false;
  if (st == SI_CONST_UNKNOWN) {
    si->value_dependency = 0;
    all_dyn(&out, vector_len(&in));
  } else {
    out.rank = (int)n;
    for (int i = 0; i < out.rank; ++i) {
      if (dims[i] < 0)
        return si_error(si, "negative dimension %lld in the shape",
                        (long long)dims[i]);
      out.dims[i] = dims[i];
    }
  }
  si_set_result(si, 0, 0, elem, &out);
  return true;
}

bool si_rule_shape(si_op_t *si) {
  si_type_t in;
  int64_t start, end;
  bool has_end;
  if (!si_in_type(si, 0, &in) || !si_attr_int(si, "start", &start, NULL) ||
      !si_attr_int(si, "end", &end, &has_end))
    return false;
  si_shape_t out = {.rank = 1, .dims = {SI_DYN}};
  if (in.shape.rank != SI_UNRANKED) {
    int64_t r = in.shape.rank;
    if (!has_end) end = r;
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : (start > r ? r : start);
    end = end < 0 ? 0 : (end > r ? r : end);
    out.dims[0] = end > start ? end - start : 0;
  }
  si_set_result(si, 0, 0, mlirIntegerTypeGet(si->ctx, 64), &out);
  return true;
}

/* Fills the result of Reshape from constant shape values `v` (n of them). */
static bool reshape_dims(si_op_t *si, const si_shape_t *in, const int64_t *v,
                         int n, bool allowzero, si_shape_t *out) {
  bool copied[SI_MAX_RANK] = {false};
  int minus_one = -1;
  bool has_zero = false;
  out->rank = n;
  for (int i = 0; i < n; ++i) {
    if (v[i] == -1) {
      if (minus_one >= 0) return si_error(si, "shape has more than one -1");
      minus_one = i;
      out->dims[i] = SI_DYN;
    } else if (v[i] < -1) {
      return si_error(si, "invalid shape value %lld", (long long)v[i]);
    } else if (v[i] == 0 && !allowzero) {
      if (in->rank != SI_UNRANKED && i >= in->rank)
        return si_error(si,
                        "shape value 0 at index %d has no input dimension to "
                        "copy (input rank %d)", i, in->rank);
      out->dims[i] = in->rank == SI_UNRANKED ? SI_DYN : in->dims[i];
      copied[i] = true;
    } else {
      has_zero |= v[i] == 0;
      out->dims[i] = v[i];
    }
  }
  if (has_zero && minus_one >= 0)
    return si_error(si, "shape has both 0 and -1 with allowzero=1");
  if (in->rank == SI_UNRANKED) return true;
  /* A copied dimension appears on both sides and cancels, so ?x6 reshaped
   * to [0, -1] still gives ?x6. */
  int64_t in_known = 1, out_known = 1;
  bool in_unknown = false;
  for (int j = 0; j < in->rank; ++j) {
    if (j < n && copied[j]) continue;
    if (in->dims[j] == SI_DYN)
      in_unknown = true;
    else if (!mul_ok(in_known, in->dims[j], &in_known))
      return si_error(si, "the input has too many elements");
  }
  for (int i = 0; i < n; ++i) {
    if (i == minus_one || copied[i]) continue;
    if (!mul_ok(out_known, out->dims[i], &out_known))
      return si_error(si, "the shape has too many elements");
  }
  char a[256], b[256];
  if (minus_one >= 0) {
    if (in_unknown) return true;
    if (out_known == 0 || in_known % out_known != 0)
      return si_error(si, "cannot reshape %s into a shape with %lld "
                      "elements besides -1", si_shape_str(in, a, sizeof(a)),
                      (long long)out_known);
    out->dims[minus_one] = in_known / out_known;
    return true;
  }
  if (!in_unknown && in_known != out_known)
    return si_error(si, "cannot reshape %s into %s: element counts differ",
                    si_shape_str(in, a, sizeof(a)),
                    si_shape_str(out, b, sizeof(b)));
  return true;
}

bool si_rule_reshape(si_op_t *si) {
  si_type_t data, shape;
  int64_t allowzero;
  if (!si_in_type(si, 0, &data) || !check_i64_vector(si, 1, &shape) ||
      !si_attr_int(si, "allowzero", &allowzero, NULL))
    return false;
  int64_t v[SI_MAX_RANK], n;
  si_shape_t out;
  si_const_t st =
      si_const_ints(si, si_operand(si, 1), "shape", v, SI_MAX_RANK, &n);
  if (st == SI_CONST_ERROR) return false;
  if (st == SI_CONST_UNKNOWN) {
    si->value_dependency = 1;
    all_dyn(&out, vector_len(&shape));
  } else if (!reshape_dims(si, &data.shape, v, (int)n, allowzero != 0, &out)) {
    return false;
  }
  si_set_result(si, 0, 0, data.elem, &out);
  return true;
}

bool si_rule_squeeze(si_op_t *si) {
  si_type_t data, axes_t;
  if (!si_in_type(si, 0, &data)) return false;
  const si_shape_t *in = &data.shape;
  si_shape_t out;
  bool mask[SI_MAX_RANK] = {false};
  if (si_has(si, 1)) {
    if (!check_i64_vector(si, 1, &axes_t)) return false;
    int64_t axes[SI_MAX_RANK], n;
    si_const_t st =
        si_const_ints(si, si_operand(si, 1), "axes", axes, SI_MAX_RANK, &n);
    if (st == SI_CONST_ERROR) return false;
    if (st == SI_CONST_UNKNOWN || in->rank == SI_UNRANKED) {
      if (st == SI_CONST_UNKNOWN) si->value_dependency = 1;
      int64_t k = st == SI_CONST_OK ? n : vector_len(&axes_t);
      all_dyn(&out, in->rank == SI_UNRANKED || k < 0 ? -1 : in->rank - k);
      si_set_result(si, 0, 0, data.elem, &out);
      return true;
    }
    if (!si_axes_mask(si, axes, (int)n, in->rank, mask)) return false;
    for (int i = 0; i < in->rank; ++i)
      if (mask[i] && in->dims[i] != SI_DYN && in->dims[i] != 1)
        return si_error(si, "cannot squeeze axis %d of size %lld", i,
                        (long long)in->dims[i]);
  } else {
    /* Without axes every 1 goes, so an unknown dimension hides the rank. */
    if (!si_shape_is_static(in)) {
      si_shape_unranked(&out);
      si_set_result(si, 0, 0, data.elem, &out);
      return true;
    }
    for (int i = 0; i < in->rank; ++i) mask[i] = in->dims[i] == 1;
  }
  out.rank = 0;
  for (int i = 0; i < in->rank; ++i)
    if (!mask[i]) out.dims[out.rank++] = in->dims[i];
  si_set_result(si, 0, 0, data.elem, &out);
  return true;
}

bool si_rule_unsqueeze(si_op_t *si) {
  si_type_t data, axes_t;
  if (!si_in_type(si, 0, &data) || !check_i64_vector(si, 1, &axes_t))
    return false;
  const si_shape_t *in = &data.shape;
  int64_t axes[SI_MAX_RANK], n;
  si_shape_t out;
  si_const_t st =
      si_const_ints(si, si_operand(si, 1), "axes", axes, SI_MAX_RANK, &n);
  if (st == SI_CONST_ERROR) return false;
  if (st == SI_CONST_UNKNOWN || in->rank == SI_UNRANKED) {
    if (st == SI_CONST_UNKNOWN) si->value_dependency = 1;
    int64_t k = st == SI_CONST_OK ? n : vector_len(&axes_t);
    all_dyn(&out, in->rank == SI_UNRANKED || k < 0 ? -1 : in->rank + k);
    si_set_result(si, 0, 0, data.elem, &out);
    return true;
  }
  if (in->rank + n > SI_MAX_RANK)
    return si_error(si, "result rank %lld exceeds moai's limit of %d",
                    (long long)(in->rank + n), SI_MAX_RANK);
  out.rank = in->rank + (int)n;
  bool mask[SI_MAX_RANK];
  if (!si_axes_mask(si, axes, (int)n, out.rank, mask)) return false;
  for (int i = 0, j = 0; i < out.rank; ++i)
    out.dims[i] = mask[i] ? 1 : in->dims[j++];
  si_set_result(si, 0, 0, data.elem, &out);
  return true;
}

bool si_rule_transpose(si_op_t *si) {
  si_type_t data;
  int64_t perm[SI_MAX_RANK];
  int n;
  bool has_perm;
  if (!si_in_type(si, 0, &data) ||
      !si_attr_ints(si, "perm", perm, SI_MAX_RANK, &n, &has_perm))
    return false;
  const si_shape_t *in = &data.shape;
  si_shape_t out;
  if (in->rank == SI_UNRANKED) {
    all_dyn(&out, has_perm ? n : -1);
    si_set_result(si, 0, 0, data.elem, &out);
    return true;
  }
  if (has_perm && n != in->rank)
    return si_error(si, "perm has %d values for rank %d", n, in->rank);
  bool seen[SI_MAX_RANK] = {false};
  out.rank = in->rank;
  for (int i = 0; i < in->rank; ++i) {
    int64_t p = has_perm ? perm[i] : in->rank - 1 - i;
    if (p < 0 || p >= in->rank || seen[p])
      return si_error(si, "perm is not a permutation of 0..%d", in->rank - 1);
    seen[p] = true;
    out.dims[i] = in->dims[p];
  }
  si_set_result(si, 0, 0, data.elem, &out);
  return true;
}

bool si_rule_expand(si_op_t *si) {
  si_type_t data, shape_t;
  if (!si_in_type(si, 0, &data) || !check_i64_vector(si, 1, &shape_t))
    return false;
  int64_t v[SI_MAX_RANK], n;
  si_shape_t out;
  si_const_t st =
      si_const_ints(si, si_operand(si, 1), "shape", v, SI_MAX_RANK, &n);
  if (st == SI_CONST_ERROR) return false;
  if (st == SI_CONST_UNKNOWN) {
    si->value_dependency = 1;
    int64_t k = vector_len(&shape_t);
    if (data.shape.rank == SI_UNRANKED || k < 0) {
      si_shape_unranked(&out);
    } else {
      /* Only a known input dimension other than 1 survives for sure. */
      int r = data.shape.rank;
      all_dyn(&out, k > r ? k : r);
      for (int i = 0; i < r && out.rank != SI_UNRANKED; ++i) {
        int64_t d = data.shape.dims[r - 1 - i];
        if (d != SI_DYN && d != 1) out.dims[out.rank - 1 - i] = d;
      }
    }
  } else {
    si_shape_t target = {.rank = (int)n};
    for (int i = 0; i < (int)n; ++i) {
      if (v[i] < 0)
        return si_error(si, "negative dimension %lld in the shape",
                        (long long)v[i]);
      target.dims[i] = v[i];
    }
    const si_shape_t *shapes[2] = {&data.shape, &target};
    if (!si_broadcast(si, shapes, 2, &out)) return false;
  }
  si_set_result(si, 0, 0, data.elem, &out);
  return true;
}

static int64_t dims_product(const si_shape_t *s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; ++i)
    if (s->dims[i] == SI_DYN || !mul_ok(p, s->dims[i], &p)) return SI_DYN;
  return p;
}

bool si_rule_flatten(si_op_t *si) {
  si_type_t data;
  int64_t axis;
  if (!si_in_type(si, 0, &data) || !si_attr_int(si, "axis", &axis, NULL))
    return false;
  const si_shape_t *in = &data.shape;
  si_shape_t out = {.rank = 2, .dims = {SI_DYN, SI_DYN}};
  if (in->rank != SI_UNRANKED) {
    /* Flatten's axis may equal the rank (everything in the outer dim). */
    if (axis < -(int64_t)in->rank || axis > in->rank)
      return si_error(si, "axis %lld out of range for rank %d",
                      (long long)axis, in->rank);
    int a = (int)(axis < 0 ? axis + in->rank : axis);
    out.dims[0] = dims_product(in, 0, a);
    out.dims[1] = dims_product(in, a, in->rank);
  }
  si_set_result(si, 0, 0, data.elem, &out);
  return true;
}
