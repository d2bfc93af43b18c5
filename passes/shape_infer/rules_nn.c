/* Shape rules of the neural-network ops: MatMul, Gemm, Conv, pooling,
 * reductions, Softmax, SoftmaxCrossEntropyLoss, Layer/BatchNormalization,
 * Trilu and CumSum. */
#include <string.h>

#include "ir/dtype.h"
#include "mlir-c/BuiltinTypes.h"
#include "shape_infer/shape_infer_internal.h"

bool si_need(si_op_t *si, int slot, const si_type_t *t,
             bool (*ok)(MlirType), const char *expected) {
  if (ok(t->elem)) return true;
  char s[64];
  return si_error(si, "operand '%s' must be %s, got %s",
                  si->def->operands[slot].name, expected,
                  si_type_str(t->elem, s, sizeof(s)));
}

bool si_need_rank(si_op_t *si, int slot, const si_type_t *t, int min,
                  int max) {
  int r = t->shape.rank;
  if (r == SI_UNRANKED || (r >= min && r <= max)) return true;
  if (min == max)
    return si_error(si, "operand '%s' must have rank %d, got %d",
                    si->def->operands[slot].name, min, r);
  return si_error(si, "operand '%s' must have rank >= %d, got %d",
                  si->def->operands[slot].name, min, r);
}

bool si_rule_matmul(si_op_t *si) {
  si_type_t a, b;
  if (!si_in_type(si, 0, &a) || !si_in_type(si, 1, &b) ||
      !si_need(si, 0, &a, si_is_numeric, "numeric") ||
      !si_need(si, 1, &b, si_is_numeric, "numeric") ||
      !si_same_elem(si, a.elem, b.elem, "operands") ||
      !si_need_rank(si, 0, &a, 1, SI_MAX_RANK) ||
      !si_need_rank(si, 1, &b, 1, SI_MAX_RANK))
    return false;
  si_shape_t out;
  if (a.shape.rank == SI_UNRANKED || b.shape.rank == SI_UNRANKED) {
    si_shape_unranked(&out);
    si_set_result(si, 0, 0, a.elem, &out);
    return true;
  }
  /* numpy.matmul: a 1-D operand gains a 1 (prepended for a, appended for
   * b) that the result then drops. */
  const si_shape_t *sa = &a.shape, *sb = &b.shape;
  int ra = sa->rank, rb = sb->rank;
  int64_t m = ra > 1 ? sa->dims[ra - 2] : 1, ka = sa->dims[ra - 1];
  int64_t kb = rb > 1 ? sb->dims[rb - 2] : sb->dims[0];
  int64_t n = rb > 1 ? sb->dims[rb - 1] : 1;
  char x[256], y[256];
  if (!si_dims_agree(ka, kb))
    return si_error(si, "inner dimensions differ: %s and %s",
                    si_shape_str(sa, x, sizeof(x)),
                    si_shape_str(sb, y, sizeof(y)));
  si_shape_t ba = {.rank = ra > 2 ? ra - 2 : 0};
  si_shape_t bb = {.rank = rb > 2 ? rb - 2 : 0};
  memcpy(ba.dims, sa->dims, sizeof(int64_t) * (size_t)ba.rank);
  memcpy(bb.dims, sb->dims, sizeof(int64_t) * (size_t)bb.rank);
  const si_shape_t *batch[2] = {&ba, &bb};
  if (!si_broadcast(si, batch, 2, &out)) return false;
  if (ra > 1) out.dims[out.rank++] = m;
  if (rb > 1) out.dims[out.rank++] = n;
  si_set_result(si, 0, 0, a.elem, &out);
  return true;
}

bool si_rule_gemm(si_op_t *si) {
  si_type_t a, b, c;
  int64_t ta, tb;
  double alpha, beta;
  if (!si_in_type(si, 0, &a) || !si_in_type(si, 1, &b) ||
      !si_need(si, 0, &a, si_is_numeric, "numeric") ||
      !si_same_elem(si, a.elem, b.elem, "operands") ||
      !si_need_rank(si, 0, &a, 2, 2) || !si_need_rank(si, 1, &b, 2, 2) ||
      !si_attr_int(si, "transA", &ta, NULL) ||
      !si_attr_int(si, "transB", &tb, NULL) ||
      !si_attr_float(si, "alpha", &alpha) || !si_attr_float(si, "beta", &beta))
    return false;
  int64_t m = si_dim_or_dyn(&a.shape, ta ? 1 : 0);
  int64_t ka = si_dim_or_dyn(&a.shape, ta ? 0 : 1);
  int64_t kb = si_dim_or_dyn(&b.shape, tb ? 1 : 0);
  int64_t n = si_dim_or_dyn(&b.shape, tb ? 0 : 1);
  char x[256], y[256];
  if (!si_dims_agree(ka, kb))
    return si_error(si, "inner dimensions differ: %s%s and %s%s",
                    si_shape_str(&a.shape, x, sizeof(x)), ta ? " (transA)" : "",
                    si_shape_str(&b.shape, y, sizeof(y)), tb ? " (transB)" : "");
  si_shape_t out = {.rank = 2, .dims = {m, n}};
  if (si_has(si, 2)) {
    if (!si_in_type(si, 2, &c) || !si_same_elem(si, a.elem, c.elem, "operands") ||
        !si_need_rank(si, 2, &c, 0, 2))
      return false;
    /* C broadcasts one way, to M x N. */
    for (int i = 0; c.shape.rank != SI_UNRANKED && i < c.shape.rank; ++i) {
      int64_t d = c.shape.dims[c.shape.rank - 1 - i];
      int64_t t = out.dims[1 - i];
      if (d != SI_DYN && d != 1 && t != SI_DYN && d != t)
        return si_error(si, "operand 'c' of shape %s does not broadcast to %s",
                        si_shape_str(&c.shape, x, sizeof(x)),
                        si_shape_str(&out, y, sizeof(y)));
    }
  }
  si_set_result(si, 0, 0, a.elem, &out);
  return true;
}

/* ---- convolution and pooling --------------------------------------------- */

/* Reads strides, dilations, pads and auto_pad for `n` spatial axes. */
bool si_window_read(si_op_t *si, si_window_t *w, bool has_ceil) {
  int count;
  bool present;
  char mode[32];
  if (!si_attr_string(si, "auto_pad", mode, sizeof(mode))) return false;
  if (strcmp(mode, "NOTSET") == 0) w->mode = SI_PAD_NOTSET;
  else if (strcmp(mode, "SAME_UPPER") == 0) w->mode = SI_PAD_SAME_UPPER;
  else if (strcmp(mode, "SAME_LOWER") == 0) w->mode = SI_PAD_SAME_LOWER;
  else if (strcmp(mode, "VALID") == 0) w->mode = SI_PAD_VALID;
  else return si_error(si, "unknown auto_pad '%s'", mode);
  static const char *const names[] = {"strides", "dilations"};
  int64_t *lists[] = {w->strides, w->dilations};
  for (int k = 0; k < 2; ++k) {
    if (!si_attr_ints(si, names[k], lists[k], SI_MAX_RANK, &count, &present))
      return false;
    if (!present) {
      for (int i = 0; i < w->n; ++i) lists[k][i] = 1;
      continue;
    }
    if (count != w->n)
      return si_error(si, "'%s' has %d values for %d spatial axes", names[k],
                      count, w->n);
    for (int i = 0; i < w->n; ++i)
      if (lists[k][i] < 1)
        return si_error(si, "'%s' must be positive", names[k]);
  }
  if (!si_attr_ints(si, "pads", w->pads, 2 * SI_MAX_RANK, &count, &present))
    return false;
  if (!present) {
    for (int i = 0; i < 2 * w->n; ++i) w->pads[i] = 0;
  } else if (count != 2 * w->n) {
    return si_error(si, "'pads' has %d values for %d spatial axes", count,
                    w->n);
  }
  for (int i = 0; i < 2 * w->n; ++i)
    if (w->pads[i] < 0) return si_error(si, "'pads' must not be negative");
  int64_t ceil_mode = 0;
  if (has_ceil && !si_attr_int(si, "ceil_mode", &ceil_mode, NULL)) return false;
  w->ceil_mode = ceil_mode != 0;
  return true;
}

/* Output size of spatial axis i (ONNX convPoolShapeInference, including
 * the ceil_mode rule that drops a last window starting in the padding). */
bool si_window_dim(si_op_t *si, const si_window_t *w, int i, int64_t in,
                   int64_t *out) {
  int64_t k = w->kernel[i], s = w->strides[i], d = w->dilations[i];
  if (in == SI_DYN || k == SI_DYN) {
    *out = SI_DYN;
    return true;
  }
  if (k < 1 || k > (INT64_MAX / 4) / d || in > INT64_MAX / 4)
    return si_error(si, "invalid kernel size %lld", (long long)k);
  int64_t ek = (k - 1) * d + 1;
  int64_t pb = w->pads[i], pe = w->pads[w->n + i];
  if (w->mode == SI_PAD_VALID) {
    pb = pe = 0;
  } else if (w->mode != SI_PAD_NOTSET) {
    int64_t target = in / s + (in % s != 0);
    int64_t total = (target - 1) * s + ek - in;
    if (total < 0) total = 0;
    pb = w->mode == SI_PAD_SAME_LOWER ? (total + 1) / 2 : total / 2;
    pe = total - pb;
  }
  int64_t eff = in + pb + pe;
  if (eff < ek)
    return si_error(si, "kernel of extent %lld is larger than the padded "
                    "input (%lld) on spatial axis %d", (long long)ek,
                    (long long)eff, i);
  int64_t o = (eff - ek + (w->ceil_mode ? s - 1 : 0)) / s + 1;
  if (w->ceil_mode && (o - 1) * s >= in + pb) --o;
  *out = o;
  return true;
}

bool si_rule_conv(si_op_t *si) {
  si_type_t x, wt, b;
  int64_t group;
  if (!si_in_type(si, 0, &x) || !si_in_type(si, 1, &wt) ||
      !si_need(si, 0, &x, si_is_float, "a float tensor") ||
      !si_same_elem(si, x.elem, wt.elem, "'x' and 'w'") ||
      !si_need_rank(si, 0, &x, 3, SI_MAX_RANK) ||
      !si_need_rank(si, 1, &wt, 3, SI_MAX_RANK) ||
      !si_attr_int(si, "group", &group, NULL))
    return false;
  int r = x.shape.rank != SI_UNRANKED ? x.shape.rank : wt.shape.rank;
  si_shape_t out;
  if (r == SI_UNRANKED) {
    si_shape_unranked(&out);
    si_set_result(si, 0, 0, x.elem, &out);
    return true;
  }
  if (wt.shape.rank != SI_UNRANKED && x.shape.rank != SI_UNRANKED &&
      wt.shape.rank != x.shape.rank)
    return si_error(si, "'x' has rank %d but 'w' has rank %d", x.shape.rank,
                    wt.shape.rank);
  if (group < 1) return si_error(si, "group must be positive");
  si_window_t w = {.n = r - 2};
  int count;
  bool has_kernel;
  if (!si_window_read(si, &w, false) ||
      !si_attr_ints(si, "kernel_shape", w.kernel, SI_MAX_RANK, &count,
                    &has_kernel))
    return false;
  if (has_kernel && count != w.n)
    return si_error(si, "'kernel_shape' has %d values for %d spatial axes",
                    count, w.n);
  for (int i = 0; i < w.n; ++i) {
    int64_t wd = si_dim_or_dyn(&wt.shape, 2 + i);
    if (has_kernel && !si_dims_agree(w.kernel[i], wd))
      return si_error(si, "kernel_shape disagrees with the weight's shape");
    if (!has_kernel) w.kernel[i] = wd;
  }
  int64_t c = si_dim_or_dyn(&x.shape, 1), wc = si_dim_or_dyn(&wt.shape, 1);
  int64_t m = si_dim_or_dyn(&wt.shape, 0);
  if (c != SI_DYN && wc != SI_DYN && wc * group != c)
    return si_error(si, "'x' has %lld channels but 'w' expects %lld x group "
                    "%lld", (long long)c, (long long)wc, (long long)group);
  if (m != SI_DYN && m % group != 0)
    return si_error(si, "%lld output channels are not divisible by group "
                    "%lld", (long long)m, (long long)group);
  if (si_has(si, 2)) {
    if (!si_in_type(si, 2, &b) || !si_same_elem(si, x.elem, b.elem,
                                                "'x' and 'b'") ||
        !si_need_rank(si, 2, &b, 1, 1))
      return false;
    if (!si_dims_agree(si_dim_or_dyn(&b.shape, 0), m))
      return si_error(si, "bias has %lld values for %lld output channels",
                      (long long)b.shape.dims[0], (long long)m);
  }
  out.rank = r;
  out.dims[0] = si_dim_or_dyn(&x.shape, 0);
  out.dims[1] = m;
  for (int i = 0; i < w.n; ++i)
    if (!si_window_dim(si, &w, i, si_dim_or_dyn(&x.shape, 2 + i), &out.dims[2 + i]))
      return false;
  si_set_result(si, 0, 0, x.elem, &out);
  return true;
}

bool si_rule_pool(si_op_t *si) {
  si_type_t x;
  bool is_max = strcmp(si->def->name, "max_pool") == 0;
  if (!si_in_type(si, 0, &x) ||
      !si_need(si, 0, &x, is_max ? si_is_numeric : si_is_float,
            is_max ? "numeric" : "a float tensor"))
    return false;
  si_window_t w;
  int count;
  if (!si_attr_ints(si, "kernel_shape", w.kernel, SI_MAX_RANK - 2, &count,
                    NULL))
    return false;
  w.n = count;
  if (count < 1) return si_error(si, "'kernel_shape' is empty");
  if (x.shape.rank != SI_UNRANKED && x.shape.rank != count + 2)
    return si_error(si, "'kernel_shape' has %d values but 'x' has rank %d",
                    count, x.shape.rank);
  if (!si_window_read(si, &w, true)) return false;
  si_shape_t out = {.rank = count + 2};
  out.dims[0] = si_dim_or_dyn(&x.shape, 0);
  out.dims[1] = si_dim_or_dyn(&x.shape, 1);
  for (int i = 0; i < w.n; ++i)
    if (!si_window_dim(si, &w, i, si_dim_or_dyn(&x.shape, 2 + i), &out.dims[2 + i]))
      return false;
  si_set_result(si, 0, 0, x.elem, &out);
  if (is_max) si_set_result(si, 1, 0, mlirIntegerTypeGet(si->ctx, 64), &out);
  return true;
}

bool si_rule_global_pool(si_op_t *si) {
  si_type_t x;
  if (!si_in_type(si, 0, &x) || !si_need(si, 0, &x, si_is_float, "a float tensor") ||
      !si_need_rank(si, 0, &x, 2, SI_MAX_RANK))
    return false;
  si_shape_t out = x.shape;
  for (int i = 2; i < out.rank; ++i) out.dims[i] = 1;
  si_set_result(si, 0, 0, x.elem, &out);
  return true;
}

/* ---- reductions and normalisation --------------------------------------- */

si_const_t si_reduce_axes(si_op_t *si, int rank, bool *mask, bool *out_keep) {
  int64_t noop;
  *out_keep = false;
  if (!si_attr_int(si, "noop_with_empty_axes", &noop, NULL))
    return SI_CONST_ERROR;
  int64_t axes[SI_MAX_RANK], n = 0;
  if (si_has(si, 1)) {
    si_type_t t;
    if (!si_in_type(si, 1, &t)) return SI_CONST_ERROR;
    if (!si_is_i64(t.elem)) {
      si_error(si, "operand 'axes' must be int64");
      return SI_CONST_ERROR;
    }
    si_const_t st =
        si_const_ints(si, si_operand(si, 1), "axes", axes, SI_MAX_RANK, &n);
    if (st == SI_CONST_UNKNOWN) si->value_dependency = 1;
    if (st != SI_CONST_OK) return st;
  }
  if (n == 0) {
    for (int i = 0; i < SI_MAX_RANK; ++i) mask[i] = !noop;
    *out_keep = noop != 0;
    return SI_CONST_OK;
  }
  return si_axes_mask(si, axes, (int)n, rank, mask) ? SI_CONST_OK
                                                    : SI_CONST_ERROR;
}

static bool numeric_or_bool(MlirType t) {
  return si_is_numeric(t) || si_is_bool(t);
}

bool si_rule_reduce(si_op_t *si) {
  si_type_t x;
  int64_t keepdims;
  bool is_max = strcmp(si->def->name, "reduce_max") == 0;
  if (!si_in_type(si, 0, &x) ||
      !si_need(si, 0, &x, is_max ? numeric_or_bool : si_is_numeric, "numeric") ||
      !si_attr_int(si, "keepdims", &keepdims, NULL))
    return false;
  si_shape_t out;
  bool mask[SI_MAX_RANK], identity;
  if (x.shape.rank == SI_UNRANKED) {
    si_shape_unranked(&out);
    si_set_result(si, 0, 0, x.elem, &out);
    return true;
  }
  si_const_t st = si_reduce_axes(si, x.shape.rank, mask, &identity);
  if (st == SI_CONST_ERROR) return false;
  if (st == SI_CONST_UNKNOWN) {
    /* keepdims keeps the rank even when the axes are unknown. */
    si_shape_unranked(&out);
    if (keepdims) {
      out.rank = x.shape.rank;
      for (int i = 0; i < out.rank; ++i) out.dims[i] = SI_DYN;
    }
  } else if (identity) {
    out = x.shape;
  } else {
    out.rank = 0;
    for (int i = 0; i < x.shape.rank; ++i) {
      if (!mask[i])
        out.dims[out.rank++] = x.shape.dims[i];
      else if (keepdims)
        out.dims[out.rank++] = 1;
    }
  }
  si_set_result(si, 0, 0, x.elem, &out);
  return true;
}

bool si_rule_softmax(si_op_t *si) {
  si_type_t x;
  int64_t axis;
  int a;
  if (!si_in_type(si, 0, &x) || !si_need(si, 0, &x, si_is_float, "a float tensor") ||
      !si_attr_int(si, "axis", &axis, NULL))
    return false;
  if (x.shape.rank != SI_UNRANKED && !si_axis(si, axis, x.shape.rank, &a))
    return false;
  si_set_result(si, 0, 0, x.elem, &x.shape);
  return true;
}

bool si_rule_sce_loss(si_op_t *si) {
  si_type_t s, l, w;
  char reduction[32];
  if (!si_in_type(si, 0, &s) || !si_in_type(si, 1, &l) ||
      !si_need(si, 0, &s, si_is_float, "a float tensor") ||
      !si_need(si, 1, &l, si_is_index_type, "int32 or int64") ||
      !si_need_rank(si, 0, &s, 2, SI_MAX_RANK) ||
      !si_attr_string(si, "reduction", reduction, sizeof(reduction)))
    return false;
  bool none = strcmp(reduction, "none") == 0;
  if (!none && strcmp(reduction, "mean") != 0 && strcmp(reduction, "sum") != 0)
    return si_error(si, "unknown reduction '%s'", reduction);
  const si_shape_t *ss = &s.shape, *ls = &l.shape;
  if (ss->rank != SI_UNRANKED && ls->rank != SI_UNRANKED) {
    if (ls->rank != ss->rank - 1)
      return si_error(si, "'labels' must have rank %d (scores rank minus 1), "
                      "got %d", ss->rank - 1, ls->rank);
    for (int i = 0; i < ls->rank; ++i)
      if (!si_dims_agree(ls->dims[i], ss->dims[i == 0 ? 0 : i + 1]))
        return si_error(si, "'labels' dimension %d (%lld) does not match "
                        "'scores'", i, (long long)ls->dims[i]);
  }
  if (si_has(si, 2)) {
    if (!si_in_type(si, 2, &w) ||
        !si_same_elem(si, s.elem, w.elem, "'scores' and 'weights'") ||
        !si_need_rank(si, 2, &w, 1, 1))
      return false;
    if (!si_dims_agree(si_dim_or_dyn(&w.shape, 0), si_dim_or_dyn(ss, 1)))
      return si_error(si, "'weights' must have one value per class");
  }
  si_shape_t out = {.rank = 0};
  if (none) {
    out = *ls;
    if (ls->rank == SI_UNRANKED && ss->rank != SI_UNRANKED) {
      out.rank = ss->rank - 1;
      out.dims[0] = ss->dims[0];
      for (int i = 1; i < out.rank; ++i) out.dims[i] = ss->dims[i + 1];
    }
  }
  si_set_result(si, 0, 0, s.elem, &out);
  si_set_result(si, 1, 0, s.elem, ss);
  return true;
}

bool si_rule_layer_norm(si_op_t *si) {
  si_type_t x, scale, b;
  int64_t axis, stash;
  double eps;
  if (!si_in_type(si, 0, &x) || !si_in_type(si, 1, &scale) ||
      !si_need(si, 0, &x, si_is_float, "a float tensor") ||
      !si_same_elem(si, x.elem, scale.elem, "'x' and 'scale'") ||
      !si_attr_int(si, "axis", &axis, NULL) ||
      !si_attr_int(si, "stash_type", &stash, NULL) ||
      !si_attr_float(si, "epsilon", &eps))
    return false;
  if (si_has(si, 2) &&
      (!si_in_type(si, 2, &b) || !si_same_elem(si, x.elem, b.elem, "'x' and 'b'")))
    return false;
  MlirType stash_elem = moai_dtype_to_mlir(si->ctx, (moai_dtype_t)stash);
  if (stash != MOAI_DTYPE_F32 && stash != MOAI_DTYPE_BF16 &&
      stash != MOAI_DTYPE_F16 && stash != MOAI_DTYPE_F64)
    return si_error(si, "stash_type %lld is not a float type", (long long)stash);
  si_shape_t stats = x.shape;
  if (x.shape.rank != SI_UNRANKED) {
    int a;
    if (!si_axis(si, axis, x.shape.rank, &a)) return false;
    for (int i = a; i < stats.rank; ++i) stats.dims[i] = 1;
  }
  si_set_result(si, 0, 0, x.elem, &x.shape);
  si_set_result(si, 1, 0, stash_elem, &stats);
  si_set_result(si, 2, 0, stash_elem, &stats);
  return true;
}

bool si_rule_batch_norm(si_op_t *si) {
  si_type_t x, p[4];
  if (!si_in_type(si, 0, &x) || !si_need(si, 0, &x, si_is_float, "a float tensor") ||
      !si_need_rank(si, 0, &x, 2, SI_MAX_RANK))
    return false;
  int64_t c = si_dim_or_dyn(&x.shape, 1);
  for (int k = 0; k < 4; ++k) {
    if (!si_in_type(si, k + 1, &p[k]) ||
        !si_need(si, k + 1, &p[k], si_is_float, "a float tensor") ||
        !si_need_rank(si, k + 1, &p[k], 1, 1))
      return false;
    if (!si_dims_agree(si_dim_or_dyn(&p[k].shape, 0), c))
      return si_error(si, "operand '%s' must have one value per channel (%lld)",
                      si->def->operands[k + 1].name, (long long)c);
  }
  si_shape_t stats = {.rank = 1, .dims = {c}};
  si_set_result(si, 0, 0, x.elem, &x.shape);
  si_set_result(si, 1, 0, p[2].elem, &stats);
  si_set_result(si, 2, 0, p[3].elem, &stats);
  return true;
}

bool si_rule_trilu(si_op_t *si) {
  si_type_t x, k;
  if (!si_in_type(si, 0, &x) || !si_need_rank(si, 0, &x, 2, SI_MAX_RANK))
    return false;
  if (si_has(si, 1)) {
    if (!si_in_type(si, 1, &k) || !si_need(si, 1, &k, si_is_i64, "int64"))
      return false;
    int64_t n = si_shape_numel(&k.shape);
    if (n != SI_DYN && n != 1)
      return si_error(si, "operand 'k' must be a scalar");
  }
  si_set_result(si, 0, 0, x.elem, &x.shape);
  return true;
}

bool si_rule_cumsum(si_op_t *si) {
  si_type_t x, a;
  if (!si_in_type(si, 0, &x) || !si_in_type(si, 1, &a) ||
      !si_need(si, 0, &x, si_is_numeric, "numeric") ||
      !si_need(si, 1, &a, si_is_index_type, "int32 or int64") ||
      !si_need_rank(si, 1, &a, 0, 1))
    return false;
  int64_t axis, n;
  int norm;
  si_const_t st = si_const_ints(si, si_operand(si, 1), "axis", &axis, 1, &n);
  if (st == SI_CONST_ERROR) return false;
  if (st == SI_CONST_OK && n != 1)
    return si_error(si, "operand 'axis' must be a scalar");
  if (st == SI_CONST_OK && x.shape.rank != SI_UNRANKED &&
      !si_axis(si, axis, x.shape.rank, &norm))
    return false;
  si_set_result(si, 0, 0, x.elem, &x.shape);
  return true;
}
