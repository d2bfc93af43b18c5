/* Shape rules of the gradient ops of Conv, pooling and the normalisations
 * (made by moai-autodiff with static result types; the rules check that
 * the operands fit the forward op they differentiate and set the results):
 *
 *   conv_grad_input(grad, w){shape}     -> x_grad of `shape` (the Conv's x)
 *   conv_grad_weight(x, grad){shape}    -> w_grad of `shape` (the Conv's w)
 *   max_pool_grad(x, grad)              -> x_grad of x's shape
 *   average_pool_grad(grad){shape}      -> x_grad of `shape`
 *   batch_normalization_grad(x, scale, grad) -> x_grad, scale_grad, b_grad
 *   layer_normalization_grad(x, scale, grad) -> x_grad, scale_grad, b_grad
 *
 * `grad` must have the shape the forward op gives for its input (windows
 * through rules_nn.c's si_window_read/si_window_dim, so auto_pad, ceil_mode
 * and dilations follow the forward rules exactly). */
#include <string.h>

#include "shape_infer/shape_infer_internal.h"

/* The `shape` attribute: a static shape of rank >= min_rank. */
static bool read_shape_attr(si_op_t *si, int min_rank, si_shape_t *out) {
  int n;
  if (!si_attr_ints(si, "shape", out->dims, SI_MAX_RANK, &n, NULL)) return false;
  if (n < min_rank)
    return si_error(si, "'shape' has rank %d (at least %d expected)", n, min_rank);
  for (int i = 0; i < n; ++i)
    if (out->dims[i] < 0)
      return si_error(si, "'shape' has a negative dimension");
  out->rank = n;
  return true;
}

/* grad (the forward output's gradient) against the forward output shape
 * of input `x` with `channels` output channels (SI_DYN: not checked). */
static bool check_window_grad(si_op_t *si, const si_window_t *w, const si_shape_t *x,
                              int64_t channels, const si_type_t *grad) {
  const si_shape_t *g = &grad->shape;
  if (g->rank == SI_UNRANKED) return true;
  char a[256], b[256];
  if (g->rank != w->n + 2)
    return si_error(si, "operand 'grad' has rank %d, the forward output %d", g->rank, w->n + 2);
  si_shape_t want = {.rank = w->n + 2};
  want.dims[0] = si_dim_or_dyn(x, 0);
  want.dims[1] = channels;
  for (int i = 0; i < w->n; ++i)
    if (!si_window_dim(si, w, i, si_dim_or_dyn(x, 2 + i), &want.dims[2 + i])) return false;
  for (int i = 0; i < want.rank; ++i)
    if (!si_dims_agree(g->dims[i], want.dims[i]))
      return si_error(si, "operand 'grad' has shape %s, the forward output %s",
                      si_shape_str(g, a, sizeof(a)), si_shape_str(&want, b, sizeof(b)));
  return true;
}

static bool same_rank(si_op_t *si, const char *what, const si_shape_t *s, int rank) {
  if (s->rank == SI_UNRANKED || s->rank == rank) return true;
  return si_error(si, "%s has rank %d, expected %d", what, s->rank, rank);
}

bool si_rule_conv_grad(si_op_t *si) {
  bool input_grad = strcmp(si->def->name, "conv_grad_input") == 0;
  si_type_t a, b;
  si_shape_t shape;
  int64_t group;
  /* conv_grad_input: (grad, w), shape = x's; conv_grad_weight: (x, grad),
   * shape = w's */
  if (!si_in_type(si, 0, &a) || !si_in_type(si, 1, &b) ||
      !si_need(si, 0, &a, si_is_float, "a float tensor") ||
      !si_same_elem(si, a.elem, b.elem, "operands") || !read_shape_attr(si, 3, &shape) ||
      !si_attr_int(si, "group", &group, NULL))
    return false;
  int r = shape.rank;
  const si_type_t *grad = input_grad ? &a : &b;
  si_shape_t x = input_grad ? shape : a.shape, wt = input_grad ? b.shape : shape;
  if (!same_rank(si, "operand 'grad'", &grad->shape, r) ||
      !same_rank(si, input_grad ? "operand 'w'" : "operand 'x'", input_grad ? &wt : &x, r))
    return false;
  if (group < 1) return si_error(si, "group must be positive");
  si_window_t w = {.n = r - 2};
  int count;
  bool has_kernel;
  if (!si_window_read(si, &w, false) ||
      !si_attr_ints(si, "kernel_shape", w.kernel, SI_MAX_RANK, &count, &has_kernel))
    return false;
  if (has_kernel && count != w.n)
    return si_error(si, "'kernel_shape' has %d values for %d spatial axes", count, w.n);
  for (int i = 0; i < w.n; ++i) {
    int64_t wd = si_dim_or_dyn(&wt, 2 + i);
    if (has_kernel && !si_dims_agree(w.kernel[i], wd))
      return si_error(si, "kernel_shape disagrees with the weight's shape");
    if (!has_kernel) w.kernel[i] = wd;
  }
  int64_t c = si_dim_or_dyn(&x, 1), wc = si_dim_or_dyn(&wt, 1), m = si_dim_or_dyn(&wt, 0);
  if (c != SI_DYN && wc != SI_DYN && wc * group != c)
    return si_error(si, "'x' has %lld channels but 'w' expects %lld x group %lld",
                    (long long)c, (long long)wc, (long long)group);
  if (m != SI_DYN && m % group != 0)
    return si_error(si, "%lld output channels are not divisible by group %lld", (long long)m,
                    (long long)group);
  if (!check_window_grad(si, &w, &x, m, grad)) return false;
  si_set_result(si, 0, 0, a.elem, &shape);
  return true;
}

/* kernel_shape (required) and the window of a pool over `rank` dims. */
static bool pool_window(si_op_t *si, int rank, si_window_t *w) {
  int count;
  if (!si_attr_ints(si, "kernel_shape", w->kernel, SI_MAX_RANK - 2, &count, NULL)) return false;
  if (count < 1) return si_error(si, "'kernel_shape' is empty");
  if (rank != SI_UNRANKED && rank != count + 2)
    return si_error(si, "'kernel_shape' has %d values for an input of rank %d", count, rank);
  w->n = count;
  return si_window_read(si, w, true);
}

bool si_rule_max_pool_grad(si_op_t *si) {
  si_type_t x, grad;
  si_window_t w;
  if (!si_in_type(si, 0, &x) || !si_in_type(si, 1, &grad) ||
      !si_need(si, 0, &x, si_is_float, "a float tensor") ||
      !si_same_elem(si, x.elem, grad.elem, "operands") || !pool_window(si, x.shape.rank, &w) ||
      !check_window_grad(si, &w, &x.shape, si_dim_or_dyn(&x.shape, 1), &grad))
    return false;
  si_set_result(si, 0, 0, x.elem, &x.shape);
  return true;
}

bool si_rule_average_pool_grad(si_op_t *si) {
  si_type_t grad;
  si_shape_t shape;
  si_window_t w;
  if (!si_in_type(si, 0, &grad) || !si_need(si, 0, &grad, si_is_float, "a float tensor") ||
      !read_shape_attr(si, 3, &shape) || !pool_window(si, shape.rank, &w) ||
      !check_window_grad(si, &w, &shape, shape.dims[1], &grad))
    return false;
  si_set_result(si, 0, 0, grad.elem, &shape);
  return true;
}

/* x, scale and grad of a norm gradient: float, one element type, grad of
 * x's shape. */
static bool norm_grad_operands(si_op_t *si, si_type_t *x, si_type_t *scale) {
  si_type_t grad;
  char a[256], b[256];
  if (!si_in_type(si, 0, x) || !si_in_type(si, 1, scale) || !si_in_type(si, 2, &grad) ||
      !si_need(si, 0, x, si_is_float, "a float tensor") ||
      !si_same_elem(si, x->elem, scale->elem, "'x' and 'scale'") ||
      !si_same_elem(si, x->elem, grad.elem, "'x' and 'grad'"))
    return false;
  const si_shape_t *xs = &x->shape, *gs = &grad.shape;
  bool agree = xs->rank == SI_UNRANKED || gs->rank == SI_UNRANKED || xs->rank == gs->rank;
  for (int i = 0; agree && xs->rank != SI_UNRANKED && i < gs->rank; ++i)
    agree = si_dims_agree(xs->dims[i], gs->dims[i]);
  if (!agree)
    return si_error(si, "operand 'grad' has shape %s, 'x' %s", si_shape_str(gs, a, sizeof(a)),
                    si_shape_str(xs, b, sizeof(b)));
  return true;
}

bool si_rule_batch_norm_grad(si_op_t *si) {
  si_type_t x, scale;
  double eps;
  if (!norm_grad_operands(si, &x, &scale) || !si_need_rank(si, 0, &x, 2, SI_MAX_RANK) ||
      !si_need_rank(si, 1, &scale, 1, 1) || !si_attr_float(si, "epsilon", &eps))
    return false;
  int64_t c = si_dim_or_dyn(&x.shape, 1);
  if (!si_dims_agree(si_dim_or_dyn(&scale.shape, 0), c))
    return si_error(si, "operand 'scale' must have one value per channel (%lld)", (long long)c);
  si_shape_t stats = {.rank = 1, .dims = {c != SI_DYN ? c : si_dim_or_dyn(&scale.shape, 0)}};
  si_set_result(si, 0, 0, x.elem, &x.shape);
  si_set_result(si, 1, 0, x.elem, &stats);
  si_set_result(si, 2, 0, x.elem, &stats);
  return true;
}

bool si_rule_layer_norm_grad(si_op_t *si) {
  si_type_t x, scale;
  int64_t axis;
  double eps;
  if (!norm_grad_operands(si, &x, &scale) || !si_attr_int(si, "axis", &axis, NULL) ||
      !si_attr_float(si, "epsilon", &eps))
    return false;
  const si_shape_t *xs = &x.shape, *ss = &scale.shape;
  if (xs->rank != SI_UNRANKED) {
    int a;
    char sb[256], xb[256];
    if (!si_axis(si, axis, xs->rank, &a)) return false;
    /* scale broadcasts over the normalised axes [a, rank) only (the
     * kernels' restriction; ONNX gives scale the normalised shape) */
    bool ok = ss->rank == SI_UNRANKED || ss->rank <= xs->rank;
    for (int td = ss->rank - 1, d = xs->rank - 1; ok && ss->rank != SI_UNRANKED && td >= 0;
         --td, --d)
      ok = ss->dims[td] == 1 || (d >= a && si_dims_agree(ss->dims[td], xs->dims[d]));
    if (!ok)
      return si_error(si, "operand 'scale' of shape %s does not broadcast over the normalised "
                      "axes %d.. of 'x' %s", si_shape_str(ss, sb, sizeof(sb)), a,
                      si_shape_str(xs, xb, sizeof(xb)));
  }
  si_set_result(si, 0, 0, x.elem, xs);
  si_set_result(si, 1, 0, x.elem, ss);
  si_set_result(si, 2, 0, x.elem, ss);
  return true;
}
