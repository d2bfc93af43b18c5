/* Lowering rules of the gradient ops of Conv, pooling and the norms
 * (runtime/abi/moai_ops.h, "gradient kernels (ABI 2)"). Their attributes
 * are the forward op's, normalised by the forward rules' code
 * (moai_lower_window_attrs, moai_norm_axis); where the forward op's input is
 * not an operand of the gradient op, its dims come from the `shape`
 * attribute, and the forward output's dims are always grad's. */
#include <string.h>

#include "codegen/lower_internal.h"
#include "codegen/lower_norm.h"

/* The `shape` attribute (the forward input's dims) into dims. */
static bool shape_attr(moai_lower_op_t *o, int32_t *rank, int64_t *dims) {
  size_t n;
  bool present;
  if (!moai_lower_attr_ints(o, "shape", dims, MOAI_MAX_RANK, &n, &present)) return false;
  if (!present) return moai_lower_error(o, "the 'shape' attribute is missing");
  *rank = (int32_t)n;
  return true;
}

/* conv_grad_input(grad, w){shape = x's}, conv_grad_weight(x, grad){shape =
 * w's}: the Conv's window and group. */
bool moai_lower_rule_conv_grad(moai_lower_t *L, moai_lower_op_t *o) {
  bool input_grad = o->kernel == MOAI_KERNEL_CONV_GRAD_INPUT;
  int32_t xr, gr, wr;
  int64_t x[MOAI_MAX_RANK], g[MOAI_MAX_RANK], w[MOAI_MAX_RANK], group;
  MlirValue grad = moai_lower_operand(o, input_grad ? 0 : 1);
  MlirValue other = moai_lower_operand(o, input_grad ? 1 : 0);
  if (!moai_lower_shape(o, grad, &gr, g) ||
      !(input_grad ? moai_lower_shape(o, other, &wr, w) && shape_attr(o, &xr, x)
                   : moai_lower_shape(o, other, &xr, x) && shape_attr(o, &wr, w)) ||
      !moai_lower_attr_int(o, "group", &group, NULL))
    return false;
  if (wr != xr)
    return moai_lower_error(o, "the weight has rank %d, the input %d", (int)wr, (int)xr);
  moai_attrs_window_t a;
  if (!moai_lower_window_attrs(o, xr, x, gr, g, w, false, &a)) return false;
  a.group = group;
  moai_lower_set_attrs(o, &a, sizeof(a));
  return moai_lower_add_all_ins(L, o) && moai_lower_add_all_outs(L, o) &&
         moai_lower_emit(L, o);
}

/* max_pool_grad(x, grad), average_pool_grad(grad){shape = x's}. */
bool moai_lower_rule_pool_grad(moai_lower_t *L, moai_lower_op_t *o) {
  bool is_max = o->kernel == MOAI_KERNEL_MAX_POOL_GRAD;
  int32_t xr, gr;
  int64_t x[MOAI_MAX_RANK], g[MOAI_MAX_RANK], cip = 0;
  if (!moai_lower_shape(o, moai_lower_operand(o, is_max ? 1 : 0), &gr, g) ||
      !(is_max ? moai_lower_shape(o, moai_lower_operand(o, 0), &xr, x) : shape_attr(o, &xr, x)) ||
      (!is_max && !moai_lower_attr_int(o, "count_include_pad", &cip, NULL)))
    return false;
  moai_attrs_window_t a;
  if (!moai_lower_window_attrs(o, xr, x, gr, g, NULL, true, &a)) return false;
  a.count_include_pad = cip != 0;
  moai_lower_set_attrs(o, &a, sizeof(a));
  return moai_lower_add_all_ins(L, o) && moai_lower_add_all_outs(L, o) &&
         moai_lower_emit(L, o);
}

bool moai_lower_rule_batch_norm_grad(moai_lower_t *L, moai_lower_op_t *o) {
  double eps;
  if (!moai_lower_attr_float(o, "epsilon", &eps)) return false;
  moai_attrs_batch_norm_t a = {.epsilon = (float)eps, .training_mode = 1};
  moai_lower_set_attrs(o, &a, sizeof(a));
  return moai_lower_add_all_ins(L, o) && moai_lower_add_all_outs(L, o) &&
         moai_lower_emit(L, o);
}

bool moai_lower_rule_layer_norm_grad(moai_lower_t *L, moai_lower_op_t *o) {
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK], axis;
  double eps;
  char err[128];
  if (!moai_lower_shape(o, moai_lower_operand(o, 0), &rank, dims) ||
      !moai_lower_attr_int(o, "axis", &axis, NULL) ||
      !moai_lower_attr_float(o, "epsilon", &eps))
    return false;
  moai_attrs_layer_norm_t a = {.epsilon = (float)eps};
  if (!moai_norm_axis(axis, rank, &a.axis, err, sizeof(err)))
    return moai_lower_error(o, "%s", err);
  moai_lower_set_attrs(o, &a, sizeof(a));
  return moai_lower_add_all_ins(L, o) && moai_lower_add_all_outs(L, o) &&
         moai_lower_emit(L, o);
}
