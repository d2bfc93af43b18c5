/* Shape rules of the fused ops moai-fuse makes and their gradients:
 *   attention(q [B,H,S,D], k [B,KVH,S,D], v [B,KVH,S,D], mask?, key_padding? [B,S])
 *     -> out [B,H,S,D], lse? [B,H,S]
 *   attention_grad(q, k, v, out, lse, grad, mask?, key_padding?) -> q_grad, k_grad, v_grad
 *   rms_norm(x, scale [N]) -> y (x's shape, last dim N)
 *   rms_norm_grad(x, scale, grad) -> x_grad, scale_grad
 *   swiglu(gate, up) -> y, swiglu_grad(gate, up, grad) -> gate_grad, up_grad (one shape)
 *   rotary(x [..., D], cos, sin) -> y, rotary_grad(grad, cos, sin) -> x_grad (x's shape)
 * The kernels need static rank-4 operands; unknown dims are accepted here
 * and agree with whatever the other operands say. */
#include <stdio.h>
#include <string.h>

#include "shape_infer/shape_infer_internal.h"

static bool float_operand(si_op_t *si, int slot, const char *name, si_type_t *out) {
  if (!si_in_type(si, slot, out)) return false;
  if (!si_is_float(out->elem)) return si_error(si, "operand '%s' must be a float tensor", name);
  return true;
}

static bool dims_equal(si_op_t *si, const si_type_t *a, const si_type_t *b, const char *an,
                       const char *bn) {
  char as[128], bs[128];
  if (a->shape.rank == SI_UNRANKED || b->shape.rank == SI_UNRANKED) return true;
  bool ok = a->shape.rank == b->shape.rank;
  for (int i = 0; ok && i < a->shape.rank; ++i) ok = si_dims_agree(a->shape.dims[i], b->shape.dims[i]);
  if (ok) return true;
  return si_error(si, "operands '%s' (%s) and '%s' (%s) differ in shape", an,
                  si_shape_str(&a->shape, as, sizeof(as)), bn, si_shape_str(&b->shape, bs, sizeof(bs)));
}

/* key_padding (when present) is integer or i1 [B,S] of q [B,H,S,D]; the
 * attributes of the masks computed from indices are in range. */
static bool key_padding_operand(si_op_t *si, int slot, const si_type_t *q) {
  int64_t causal, window;
  bool present;
  char ps[128], qs[128];
  if (!si_attr_int(si, "causal", &causal, &present) || !si_attr_int(si, "window", &window, &present))
    return false;
  if (causal != 0 && causal != 1) return si_error(si, "attribute 'causal' must be 0 or 1, got %lld", (long long)causal);
  if (window < 0) return si_error(si, "attribute 'window' must be >= 0, got %lld", (long long)window);
  if (!si_has(si, slot)) return true;
  si_type_t p;
  if (!si_in_type(si, slot, &p)) return false;
  if (!si_is_int(p.elem) && !si_is_bool(p.elem))
    return si_error(si, "operand 'key_padding' must be an integer or i1 tensor");
  const si_shape_t *a = &q->shape;
  if (p.shape.rank == SI_UNRANKED) return true;
  bool ok = p.shape.rank == 2;
  if (ok && a->rank == 4) ok = si_dims_agree(p.shape.dims[0], a->dims[0]) && si_dims_agree(p.shape.dims[1], a->dims[2]);
  if (!ok)
    return si_error(si, "operand 'key_padding' %s must be [B,S] of 'q' %s [B,H,S,D]",
                    si_shape_str(&p.shape, ps, sizeof(ps)), si_shape_str(a, qs, sizeof(qs)));
  return true;
}

/* q, k, v (and the mask when present) of attention and its gradient. */
static bool attention_operands(si_op_t *si, int mask_slot, si_type_t *q) {
  si_type_t k, v, m;
  double scale;
  char qs[128], ks[128];
  if (!float_operand(si, 0, "q", q) || !float_operand(si, 1, "k", &k) ||
      !float_operand(si, 2, "v", &v) || !si_same_elem(si, q->elem, k.elem, "'q' and 'k'") ||
      !si_same_elem(si, q->elem, v.elem, "'q' and 'v'") || !dims_equal(si, &k, &v, "k", "v") ||
      !si_attr_float(si, "scale", &scale))
    return false;
  const si_shape_t *a = &q->shape, *b = &k.shape;
  if ((a->rank != SI_UNRANKED && a->rank != 4) || (b->rank != SI_UNRANKED && b->rank != 4))
    return si_error(si, "operands 'q' and 'k' must have rank 4 ([B,H,S,D], [B,KVH,S,D]), got %s and %s",
                    si_shape_str(a, qs, sizeof(qs)), si_shape_str(b, ks, sizeof(ks)));
  if (a->rank == 4 && b->rank == 4) {
    bool ok = si_dims_agree(a->dims[0], b->dims[0]) && si_dims_agree(a->dims[2], b->dims[2]) &&
              si_dims_agree(a->dims[3], b->dims[3]);
    if (ok && a->dims[1] > 0 && b->dims[1] > 0) ok = a->dims[1] % b->dims[1] == 0;
    if (!ok)
      return si_error(si, "operands 'q' %s and 'k' %s are not [B,H,S,D] and [B,KVH,S,D] with H a "
                      "multiple of KVH", si_shape_str(a, qs, sizeof(qs)), si_shape_str(b, ks, sizeof(ks)));
  }
  if (si_has(si, mask_slot)) {
    if (!float_operand(si, mask_slot, "mask", &m) ||
        !si_same_elem(si, q->elem, m.elem, "'q' and 'mask'"))
      return false;
    if (m.shape.rank != SI_UNRANKED && a->rank == 4) {
      const int64_t want[4] = {a->dims[0], a->dims[1], a->dims[2], a->dims[2]};
      bool ok = m.shape.rank == 4;
      for (int i = 0; ok && i < 4; ++i) ok = m.shape.dims[i] == 1 || si_dims_agree(m.shape.dims[i], want[i]);
      if (!ok)
        return si_error(si, "operand 'mask' %s does not broadcast to the scores [B,H,S,S] of 'q' %s",
                        si_shape_str(&m.shape, ks, sizeof(ks)), si_shape_str(a, qs, sizeof(qs)));
    }
  }
  return key_padding_operand(si, mask_slot + 1, q);
}

bool si_rule_attention(si_op_t *si) {
  si_type_t q;
  if (!attention_operands(si, 3, &q)) return false;
  si_set_result(si, 0, 0, q.elem, &q.shape);
  if (si_result_len(si, 1)) {
    si_shape_t l = {.rank = SI_UNRANKED};
    if (q.shape.rank == 4) {
      l.rank = 3;
      memcpy(l.dims, q.shape.dims, 3 * sizeof(int64_t));
    }
    si_set_result(si, 1, 0, q.elem, &l);
  }
  return true;
}

bool si_rule_attention_grad(si_op_t *si) {
  si_type_t q, k, v, out, g;
  if (!attention_operands(si, 6, &q) || !si_in_type(si, 1, &k) || !si_in_type(si, 2, &v) ||
      !float_operand(si, 3, "output", &out) || !float_operand(si, 5, "grad", &g) ||
      !dims_equal(si, &q, &out, "q", "output") || !dims_equal(si, &q, &g, "q", "grad"))
    return false;
  si_set_result(si, 0, 0, q.elem, &q.shape);
  si_set_result(si, 1, 0, q.elem, &k.shape);
  si_set_result(si, 2, 0, q.elem, &v.shape);
  return true;
}

static bool rms_operands(si_op_t *si, si_type_t *x, si_type_t *s) {
  double eps;
  char xs[128], ss[128];
  if (!float_operand(si, 0, "x", x) || !float_operand(si, 1, "scale", s) ||
      !si_same_elem(si, x->elem, s->elem, "'x' and 'scale'") || !si_attr_float(si, "epsilon", &eps))
    return false;
  if (x->shape.rank == 0) return si_error(si, "operand 'x' must have rank >= 1");
  if (x->shape.rank != SI_UNRANKED && s->shape.rank != SI_UNRANKED &&
      (s->shape.rank != 1 || !si_dims_agree(s->shape.dims[0], x->shape.dims[x->shape.rank - 1])))
    return si_error(si, "operand 'scale' %s must be 1-D of the last dim of 'x' %s",
                    si_shape_str(&s->shape, ss, sizeof(ss)), si_shape_str(&x->shape, xs, sizeof(xs)));
  return true;
}

bool si_rule_rms_norm(si_op_t *si) {
  si_type_t x, s;
  if (!rms_operands(si, &x, &s)) return false;
  si_set_result(si, 0, 0, x.elem, &x.shape);
  return true;
}

bool si_rule_rms_norm_grad(si_op_t *si) {
  si_type_t x, s, g;
  if (!rms_operands(si, &x, &s) || !float_operand(si, 2, "grad", &g) ||
      !dims_equal(si, &x, &g, "x", "grad"))
    return false;
  si_set_result(si, 0, 0, x.elem, &x.shape);
  si_set_result(si, 1, 0, x.elem, &s.shape);
  return true;
}

/* swiglu(gate, up) -> y; swiglu_grad(gate, up, grad) -> gate_grad, up_grad:
 * every operand of one float type and one shape. */
static bool swiglu_operands(si_op_t *si, int n, si_type_t *g) {
  static const char *const names[3] = {"gate", "up", "grad"};
  if (!float_operand(si, 0, names[0], g)) return false;
  for (int i = 1; i < n; ++i) {
    si_type_t t;
    char what[32];
    snprintf(what, sizeof(what), "'gate' and '%s'", names[i]);
    if (!float_operand(si, i, names[i], &t) || !si_same_elem(si, g->elem, t.elem, what) ||
        !dims_equal(si, g, &t, "gate", names[i]))
      return false;
  }
  return true;
}

bool si_rule_swiglu(si_op_t *si) {
  si_type_t g;
  if (!swiglu_operands(si, 2, &g)) return false;
  si_set_result(si, 0, 0, g.elem, &g.shape);
  return true;
}

bool si_rule_swiglu_grad(si_op_t *si) {
  si_type_t g;
  if (!swiglu_operands(si, 3, &g)) return false;
  si_set_result(si, 0, 0, g.elem, &g.shape);
  si_set_result(si, 1, 0, g.elem, &g.shape);
  return true;
}

/* rotary(x, cos, sin) -> y and rotary_grad(grad, cos, sin) -> x_grad: x of
 * rank >= 1 with an even last dim D; cos and sin of one shape, broadcasting
 * to x (right-aligned) with last dim D; the result has x's shape. */
static bool rotary_rule(si_op_t *si, const char *xn) {
  si_type_t x, c, s;
  char xs[128], cs[128], what[32];
  snprintf(what, sizeof(what), "'%s' and 'cos'", xn);
  if (!float_operand(si, 0, xn, &x) || !float_operand(si, 1, "cos", &c) ||
      !float_operand(si, 2, "sin", &s) || !si_same_elem(si, x.elem, c.elem, what) ||
      !si_same_elem(si, c.elem, s.elem, "'cos' and 'sin'") || !dims_equal(si, &c, &s, "cos", "sin"))
    return false;
  const si_shape_t *a = &x.shape, *b = &c.shape;
  if (a->rank == 0) return si_error(si, "operand '%s' must have rank >= 1", xn);
  if (a->rank != SI_UNRANKED && a->dims[a->rank - 1] > 0 && a->dims[a->rank - 1] % 2 != 0)
    return si_error(si, "operand '%s' %s must have an even last dim (two halves to rotate)", xn,
                    si_shape_str(a, xs, sizeof(xs)));
  if (a->rank != SI_UNRANKED && b->rank != SI_UNRANKED) {
    bool ok = b->rank >= 1 && b->rank <= a->rank &&
              si_dims_agree(b->dims[b->rank - 1], a->dims[a->rank - 1]);
    for (int i = 0; ok && i + 1 < b->rank; ++i)
      ok = b->dims[i] == 1 || si_dims_agree(b->dims[i], a->dims[a->rank - b->rank + i]);
    if (!ok)
      return si_error(si, "operand 'cos' %s must broadcast to '%s' %s with its last dim",
                      si_shape_str(b, cs, sizeof(cs)), xn, si_shape_str(a, xs, sizeof(xs)));
  }
  si_set_result(si, 0, 0, x.elem, &x.shape);
  return true;
}

bool si_rule_rotary(si_op_t *si) { return rotary_rule(si, "x"); }
bool si_rule_rotary_grad(si_op_t *si) { return rotary_rule(si, "grad"); }
