/* Lowering rules of gather_grad and slice_grad (the other gradient ops of
 * indexing and softmax reuse the forward ops' rules in lower_ops.c). Both
 * results are the forward op's data shape (`shape`), which shape inference
 * made the result type. slice_grad's starts/ends/axes/steps are folded into
 * moai_attrs_slice_t exactly as Slice's are (moai_lower_slice_params); the
 * kernel has no runtime-parameter form, so they must be constants. */
#include <string.h>

#include "codegen/lower_internal.h"
#include "codegen/lower_norm.h"

/* The result's static shape, which must be the `shape` attribute. */
static bool result_is_shape(moai_lower_op_t *o, int32_t *rank, int64_t *dims) {
  int64_t shape[MOAI_MAX_RANK];
  size_t n;
  bool present;
  if (!moai_lower_shape(o, moai_lower_result(o, 0), rank, dims) ||
      !moai_lower_attr_ints(o, "shape", shape, MOAI_MAX_RANK, &n, &present))
    return false;
  if (!present || n != (size_t)*rank ||
      memcmp(shape, dims, (size_t)*rank * sizeof(int64_t)) != 0)
    return moai_lower_error(o, "internal error: the result type disagrees with "
                               "the 'shape' attribute");
  return true;
}

bool moai_lower_rule_gather_grad(moai_lower_t *L, moai_lower_op_t *o) {
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK], axis;
  char err[128];
  if (!result_is_shape(o, &rank, dims) || !moai_lower_attr_int(o, "axis", &axis, NULL))
    return false;
  moai_attrs_axis_t a;
  if (!moai_norm_axis(axis, rank, &a.axis, err, sizeof(err)))
    return moai_lower_error(o, "%s", err);
  moai_lower_set_attrs(o, &a, sizeof(a));
  return moai_lower_add_all_ins(L, o) && moai_lower_add_all_outs(L, o) &&
         moai_lower_emit(L, o);
}

bool moai_lower_rule_slice_grad(moai_lower_t *L, moai_lower_op_t *o) {
  static const char *const names[4] = {"starts", "ends", "axes", "steps"};
  int32_t rank, grad_rank;
  int64_t dims[MOAI_MAX_RANK], grad_dims[MOAI_MAX_RANK], count[MOAI_MAX_RANK];
  if (!result_is_shape(o, &rank, dims) ||
      !moai_lower_shape(o, moai_lower_operand(o, 0), &grad_rank, grad_dims))
    return false;
  for (int e = 1; e <= 4; ++e)
    if (!moai_lower_operand_is_const(o, e))
      return moai_lower_error(o, "slice_grad: '%s' must be a constant (the backend "
                                 "has no slice_grad with runtime parameters)",
                              names[e - 1]);
  moai_attrs_slice_t a;
  if (!moai_lower_slice_params(o, rank, dims, &a, count)) return false;
  if (grad_rank != rank || memcmp(count, grad_dims, (size_t)rank * sizeof(int64_t)))
    return moai_lower_error(o, "slice_grad: the slice's element counts disagree "
                               "with the gradient's shape");
  moai_lower_set_attrs(o, &a, sizeof(a));
  return moai_lower_add_in(L, o, 0) && moai_lower_add_all_outs(L, o) &&
         moai_lower_emit(L, o);
}
