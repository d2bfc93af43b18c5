/* Shape rules of element-wise ops: unary functions, numpy-broadcasting
 * binary and variadic ops, comparisons and logic (bool results), Where,
 * Cast, Clip and Dropout. ONNX opset 21 type constraints. */
#include <stdlib.h>
#include <string.h>

#include "mlir-c/BuiltinTypes.h"
#include "shape_infer/shape_infer_internal.h"

static bool check_class(si_op_t *si, MlirType elem, const char *operand,
                        bool (*ok)(MlirType), const char *expected) {
  if (ok(elem)) return true;
  char s[64];
  return si_error(si, "operand '%s' must be %s, got %s", operand, expected,
                  si_type_str(elem, s, sizeof(s)));
}

static bool is_any(MlirType t) { return !mlirTypeIsNull(t); }

static bool unary(si_op_t *si, bool (*ok)(MlirType), const char *expected) {
  si_type_t x;
  if (!si_in_type(si, 0, &x)) return false;
  if (!check_class(si, x.elem, si->def->operands[0].name, ok, expected))
    return false;
  si_set_result(si, 0, 0, x.elem, &x.shape);
  return true;
}

bool si_rule_unary_float(si_op_t *si) {
  return unary(si, si_is_float, "a float tensor");
}

bool si_rule_unary_numeric(si_op_t *si) {
  return unary(si, si_is_numeric, "numeric");
}

bool si_rule_unary_any(si_op_t *si) { return unary(si, is_any, "a tensor"); }

bool si_rule_not(si_op_t *si) { return unary(si, si_is_bool, "bool (i1)"); }

/* moai.all_reduce: a float tensor reduced over a group of ranks keeps its
 * type; the reduction and the group must be ones the runtime knows. */
bool si_rule_all_reduce(si_op_t *si) {
  char op[32], group[32];
  if (!si_attr_string(si, "op", op, sizeof(op)) ||
      !si_attr_string(si, "group", group, sizeof(group)))
    return false;
  if (strcmp(op, "sum") != 0 && strcmp(op, "max") != 0)
    return si_error(si, "attribute 'op' must be \"sum\" or \"max\", got \"%s\"", op);
  if (strcmp(group, "tp") != 0)
    return si_error(si, "attribute 'group' must be \"tp\" (the only group moai "
                        "reduces over), got \"%s\"", group);
  return unary(si, si_is_float, "a float tensor");
}

/* Two operands of one element class, broadcast; the result has `out_elem`
 * or, when null, the operands' element type. */
static bool binary(si_op_t *si, bool (*ok)(MlirType), const char *expected,
                   bool same_elem, MlirType out_elem) {
  si_type_t a, b;
  if (!si_in_type(si, 0, &a) || !si_in_type(si, 1, &b)) return false;
  if (!check_class(si, a.elem, si->def->operands[0].name, ok, expected) ||
      !check_class(si, b.elem, si->def->operands[1].name, ok, expected))
    return false;
  if (same_elem && !si_same_elem(si, a.elem, b.elem, "operands")) return false;
  const si_shape_t *shapes[2] = {&a.shape, &b.shape};
  si_shape_t out;
  if (!si_broadcast(si, shapes, 2, &out)) return false;
  si_set_result(si, 0, 0, mlirTypeIsNull(out_elem) ? a.elem : out_elem, &out);
  return true;
}

static MlirType i1(si_op_t *si) { return mlirIntegerTypeGet(si->ctx, 1); }

bool si_rule_binary_arith(si_op_t *si) {
  return binary(si, si_is_numeric, "numeric", true, (MlirType){NULL});
}

/* Pow's exponent may have another numeric type (T1). */
bool si_rule_pow(si_op_t *si) {
  return binary(si, si_is_numeric, "numeric", false, (MlirType){NULL});
}

bool si_rule_compare(si_op_t *si) {
  return binary(si, si_is_numeric, "numeric", true, i1(si));
}

/* Equal also compares bools (opset 19+). */
bool si_rule_equal(si_op_t *si) {
  return binary(si, is_any, "a tensor", true, i1(si));
}

bool si_rule_logic(si_op_t *si) {
  return binary(si, si_is_bool, "bool (i1)", true, i1(si));
}

bool si_rule_where(si_op_t *si) {
  si_type_t c, x, y;
  if (!si_in_type(si, 0, &c) || !si_in_type(si, 1, &x) ||
      !si_in_type(si, 2, &y))
    return false;
  if (!check_class(si, c.elem, "condition", si_is_bool, "bool (i1)") ||
      !si_same_elem(si, x.elem, y.elem, "operands 'x' and 'y'"))
    return false;
  const si_shape_t *shapes[3] = {&c.shape, &x.shape, &y.shape};
  si_shape_t out;
  if (!si_broadcast(si, shapes, 3, &out)) return false;
  si_set_result(si, 0, 0, x.elem, &out);
  return true;
}

/* Max and Min: any number of numeric operands of one type, broadcast. */
bool si_rule_variadic(si_op_t *si) {
  int n = si_operand_len(si, 0);
  if (n < 1) return si_error(si, "needs at least one operand");
  si_type_t *types = malloc((size_t)n * sizeof(*types));
  const si_shape_t **shapes = malloc((size_t)n * sizeof(*shapes));
  bool ok = types && shapes;
  if (!ok) si_error(si, "out of memory");
  for (int k = 0; ok && k < n; ++k) {
    ok = si_value_type(si, si_operand_at(si, 0, k), "data_0", &types[k]) &&
         check_class(si, types[k].elem, "data_0", si_is_numeric, "numeric") &&
         si_same_elem(si, types[0].elem, types[k].elem, "operands");
    shapes[k] = ok ? &types[k].shape : NULL;
  }
  si_shape_t out;
  if (ok) ok = si_broadcast(si, shapes, n, &out);
  if (ok) si_set_result(si, 0, 0, types[0].elem, &out);
  free(types);
  free(shapes);
  return ok;
}

bool si_rule_cast(si_op_t *si) {
  si_type_t x;
  MlirType to;
  if (!si_in_type(si, 0, &x) || !si_attr_type(si, "to", &to)) return false;
  if (!si_is_float(to) && !mlirTypeIsAInteger(to)) {
    char s[64];
    return si_error(si, "cannot cast to %s", si_type_str(to, s, sizeof(s)));
  }
  si_set_result(si, 0, 0, to, &x.shape);
  return true;
}

bool si_rule_clip(si_op_t *si) {
  si_type_t x;
  if (!si_in_type(si, 0, &x) ||
      !check_class(si, x.elem, "input", si_is_numeric, "numeric"))
    return false;
  for (int slot = 1; slot <= 2; ++slot) {
    if (!si_has(si, slot)) continue;
    si_type_t b;
    if (!si_in_type(si, slot, &b) ||
        !si_same_elem(si, x.elem, b.elem, "'input' and its bound"))
      return false;
    int64_t n = si_shape_numel(&b.shape);
    if (n != SI_DYN && n != 1)
      return si_error(si, "bound '%s' must be a scalar, got %lld elements",
                      si->def->operands[slot].name, (long long)n);
  }
  si_set_result(si, 0, 0, x.elem, &x.shape);
  return true;
}

bool si_rule_dropout(si_op_t *si) {
  si_type_t x;
  if (!si_in_type(si, 0, &x) ||
      !check_class(si, x.elem, "data", si_is_float, "a float tensor"))
    return false;
  if (si_has(si, 1)) {
    si_type_t r;
    if (!si_in_type(si, 1, &r) ||
        !check_class(si, r.elem, "ratio", si_is_float, "a float tensor"))
      return false;
  }
  if (si_has(si, 2)) {
    si_type_t t;
    if (!si_in_type(si, 2, &t) ||
        !check_class(si, t.elem, "training_mode", si_is_bool, "bool (i1)"))
      return false;
  }
  si_set_result(si, 0, 0, x.elem, &x.shape);
  si_set_result(si, 1, 0, i1(si), &x.shape);
  return true;
}
