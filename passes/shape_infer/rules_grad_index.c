/* Shape rules of the gradient ops of indexing and softmax (made by
 * moai-autodiff, docs/training.md): gather_grad, slice_grad, softmax_grad,
 * log_softmax_grad and softmax_cross_entropy_loss_grad. Their results are
 * fully determined by their operands and attributes (gather_grad and
 * slice_grad by `shape`); the rules check that the operands fit the forward
 * op they differentiate, and that a result type the producer already wrote
 * agrees with the one computed (a mismatch is a bug in the producer, so it is
 * an error, not a hint). */
#include <string.h>

#include "mlir-c/BuiltinTypes.h"
#include "shape_infer/shape_infer_internal.h"

static bool need(si_op_t *si, int slot, const si_type_t *t, bool (*ok)(MlirType),
                 const char *expected) {
  if (ok(t->elem)) return true;
  char s[64];
  return si_error(si, "operand '%s' must be %s, got %s", si->def->operands[slot].name,
                  expected, si_type_str(t->elem, s, sizeof(s)));
}

static bool dims_agree(int64_t a, int64_t b) { return a == SI_DYN || b == SI_DYN || a == b; }

/* Whether two shapes can be the same (unknown rank or dims match anything). */
static bool shapes_agree(const si_shape_t *a, const si_shape_t *b) {
  if (a->rank == SI_UNRANKED || b->rank == SI_UNRANKED) return true;
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; ++i)
    if (!dims_agree(a->dims[i], b->dims[i])) return false;
  return true;
}

/* The more precise of two agreeing shapes. */
static si_shape_t shape_meet(const si_shape_t *a, const si_shape_t *b) {
  if (a->rank == SI_UNRANKED) return *b;
  si_shape_t s = *a;
  if (b->rank == s.rank)
    for (int i = 0; i < s.rank; ++i)
      if (s.dims[i] == SI_DYN) s.dims[i] = b->dims[i];
  return s;
}

/* Sets result 0 to elem/shape after checking the type it already has. */
static bool set_checked_result(si_op_t *si, MlirType elem, const si_shape_t *shape) {
  si_type_t old;
  MlirValue v = mlirOperationGetResult(si->op, si->out_start[0]);
  if (si_type_from_mlir(mlirValueGetType(v), &old) &&
      (!mlirTypeEqual(old.elem, elem) || !shapes_agree(&old.shape, shape))) {
    char have[128], want[128];
    return si_error(si, "result is declared %s but the operands give %s",
                    si_type_str(mlirValueGetType(v), have, sizeof(have)),
                    si_type_str(si_type_to_mlir(elem, shape), want, sizeof(want)));
  }
  si_set_result(si, 0, 0, elem, shape);
  return true;
}

/* The `shape` attribute (the forward op's data shape): static, rank <=
 * SI_MAX_RANK, no negative dims. */
static bool shape_attr(si_op_t *si, si_shape_t *out) {
  int n;
  if (!si_attr_ints(si, "shape", out->dims, SI_MAX_RANK, &n, NULL)) return false;
  out->rank = n;
  for (int i = 0; i < n; ++i)
    if (out->dims[i] < 0)
      return si_error(si, "attribute 'shape' has a negative dimension %lld",
                      (long long)out->dims[i]);
  return true;
}

static bool grad_mismatch(si_op_t *si, const si_shape_t *got, const si_shape_t *want,
                          const char *why) {
  char g[128], w[128];
  return si_error(si, "operand 'grad' is %s but %s gives %s", si_shape_str(got, g, sizeof(g)),
                  why, si_shape_str(want, w, sizeof(w)));
}

bool si_rule_gather_grad(si_op_t *si) {
  si_type_t g, idx;
  si_shape_t shape;
  int64_t axis;
  int a;
  if (!si_in_type(si, 0, &g) || !si_in_type(si, 1, &idx) ||
      !need(si, 0, &g, si_is_float, "a float tensor") ||
      !need(si, 1, &idx, si_is_index_type, "int32 or int64") ||
      !si_attr_int(si, "axis", &axis, NULL) || !shape_attr(si, &shape))
    return false;
  if (shape.rank == 0) return si_error(si, "attribute 'shape' must have rank >= 1");
  if (!si_axis(si, axis, shape.rank, &a)) return false;
  if (idx.shape.rank != SI_UNRANKED) {
    if (shape.rank - 1 + idx.shape.rank > SI_MAX_RANK)
      return si_error(si, "grad rank exceeds moai's limit of %d", SI_MAX_RANK);
    si_shape_t want = {.rank = 0};
    for (int k = 0; k < a; ++k) want.dims[want.rank++] = shape.dims[k];
    for (int k = 0; k < idx.shape.rank; ++k) want.dims[want.rank++] = idx.shape.dims[k];
    for (int k = a + 1; k < shape.rank; ++k) want.dims[want.rank++] = shape.dims[k];
    if (!shapes_agree(&g.shape, &want))
      return grad_mismatch(si, &g.shape, &want, "the Gather of 'shape' by 'indices'");
  }
  return set_checked_result(si, g.elem, &shape);
}

bool si_rule_slice_grad(si_op_t *si) {
  si_type_t g;
  si_shape_t shape;
  if (!si_in_type(si, 0, &g) || !need(si, 0, &g, si_is_float, "a float tensor") ||
      !shape_attr(si, &shape))
    return false;
  for (int slot = 1; slot <= 4; ++slot) {
    si_type_t t;
    if (si_has(si, slot) &&
        (!si_in_type(si, slot, &t) || !need(si, slot, &t, si_is_index_type, "int32 or int64")))
      return false;
  }
  if (g.shape.rank != SI_UNRANKED && g.shape.rank != shape.rank)
    return si_error(si, "operand 'grad' has rank %d but 'shape' has rank %d", g.shape.rank,
                    shape.rank);
  si_slice_t p;
  si_const_t st = si_slice_params(si, &shape, &p);
  /* The result is `shape` whatever the parameters are: nothing depends on
   * their runtime value here (the lowering requires constants). */
  si->value_dependency = -1;
  if (st == SI_CONST_ERROR) return false;
  if (st == SI_CONST_OK) {
    si_shape_t want = {.rank = shape.rank};
    memcpy(want.dims, p.size, sizeof(int64_t) * (size_t)shape.rank);
    if (!shapes_agree(&g.shape, &want))
      return grad_mismatch(si, &g.shape, &want, "the Slice of 'shape'");
  }
  return set_checked_result(si, g.elem, &shape);
}

/* softmax_grad, log_softmax_grad: (y, grad) of one shape and float type. */
bool si_rule_softmax_grad(si_op_t *si) {
  si_type_t y, g;
  int64_t axis;
  int a;
  if (!si_in_type(si, 0, &y) || !si_in_type(si, 1, &g) ||
      !need(si, 0, &y, si_is_float, "a float tensor") ||
      !si_same_elem(si, y.elem, g.elem, "'output' and 'grad'") ||
      !si_attr_int(si, "axis", &axis, NULL))
    return false;
  if (!shapes_agree(&y.shape, &g.shape)) {
    char ys[128], gs[128];
    return si_error(si, "operands 'output' (%s) and 'grad' (%s) differ in shape",
                    si_shape_str(&y.shape, ys, sizeof(ys)), si_shape_str(&g.shape, gs, sizeof(gs)));
  }
  si_shape_t out = shape_meet(&y.shape, &g.shape);
  if (out.rank != SI_UNRANKED && !si_axis(si, axis, out.rank, &a)) return false;
  return set_checked_result(si, y.elem, &out);
}

bool si_rule_sce_grad(si_op_t *si) {
  si_type_t s, l, w, g;
  char reduction[32];
  int64_t ignore;
  bool has_ignore;
  if (!si_in_type(si, 0, &s) || !si_in_type(si, 1, &l) || !si_in_type(si, 3, &g) ||
      !need(si, 0, &s, si_is_float, "a float tensor") ||
      !need(si, 1, &l, si_is_index_type, "int32 or int64") ||
      !si_same_elem(si, s.elem, g.elem, "'scores' and 'grad'") ||
      !si_attr_string(si, "reduction", reduction, sizeof(reduction)) ||
      !si_attr_int(si, "ignore_index", &ignore, &has_ignore))
    return false;
  bool none = strcmp(reduction, "none") == 0;
  if (!none && strcmp(reduction, "mean") != 0 && strcmp(reduction, "sum") != 0)
    return si_error(si, "unknown reduction '%s'", reduction);
  const si_shape_t *ss = &s.shape, *ls = &l.shape;
  if (ss->rank != SI_UNRANKED && ss->rank < 2)
    return si_error(si, "operand 'scores' must have rank >= 2, got %d", ss->rank);
  /* labels [N, d...] for scores [N, C, d...] */
  si_shape_t want_l = {.rank = SI_UNRANKED};
  if (ss->rank != SI_UNRANKED) {
    want_l.rank = ss->rank - 1;
    want_l.dims[0] = ss->dims[0];
    for (int i = 1; i < want_l.rank; ++i) want_l.dims[i] = ss->dims[i + 1];
  }
  if (!shapes_agree(ls, &want_l)) {
    char a[128], b[128];
    return si_error(si, "operand 'labels' is %s but 'scores' needs %s", si_shape_str(ls, a, sizeof(a)),
                    si_shape_str(&want_l, b, sizeof(b)));
  }
  if (si_has(si, 2)) {
    if (!si_in_type(si, 2, &w) || !si_same_elem(si, s.elem, w.elem, "'scores' and 'weights'"))
      return false;
    if (w.shape.rank != SI_UNRANKED &&
        (w.shape.rank != 1 ||
         !dims_agree(w.shape.dims[0], ss->rank == SI_UNRANKED ? SI_DYN : ss->dims[1])))
      return si_error(si, "operand 'weights' must have one value per class");
  }
  si_shape_t want_g = {.rank = 0};
  if (none) want_g = shape_meet(ls, &want_l);
  if (!shapes_agree(&g.shape, &want_g))
    return grad_mismatch(si, &g.shape, &want_g, none ? "reduction 'none'" : "a reduced loss");
  return set_checked_result(si, s.elem, ss);
}
