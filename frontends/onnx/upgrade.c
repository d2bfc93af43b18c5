/* Older op forms -> the opset-21 form of the moai dialect. The importer
 * reads ai.onnx opsets MOAI_ONNX_MIN_OPSET to MOAI_ONNX_MAX_OPSET; where an
 * op changed between the model's opset and 21 in a way other than new
 * types or new attributes with backward-compatible defaults, the node is
 * rewritten here (the ONNX operator changelog, docs/Changelog.md, is the
 * reference for each version):
 *
 *  - Squeeze, Unsqueeze, ReduceSum < 13, ReduceMean, ReduceMax < 18: the
 *    `axes` attribute becomes a constant i64 operand (Unsqueeze requires
 *    it; elsewhere absent or empty means "all axes").
 *  - Split < 13: the `split` attribute becomes a constant operand.
 *  - Clip < 11: `min` / `max` become constant scalar operands of the
 *    input's element type (absent ones stay absent).
 *  - Dropout < 12: `ratio` becomes a constant operand; there is no
 *    training_mode, so the op is inference (identity). Before opset 10 the
 *    mask has the input's type rather than bool: rejected when used.
 *  - Slice < 10: starts / ends / axes become constant operands.
 *  - Softmax, LogSoftmax < 13: the input is coerced to 2-D at `axis`
 *    (default 1) and normalised over the flattened trailing axes. With axis
 *    the last axis that is opset 13's op; otherwise Flatten(axis) ->
 *    Softmax(axis=-1) -> Reshape to the (static) input shape.
 *  - BatchNormalization < 14: no training_mode attribute; outputs mean and
 *    var exist only in training and are opset 14's running_mean and
 *    running_var (training_mode = 1); saved_mean / saved_var are rejected,
 *    and so is `spatial` = 0 (opsets 7 and 8).
 * Ops whose table entry says they exist since opset 1 but that ONNX added
 * later (Range in 11, say) are rejected in older models, and attributes
 * added later (MaxPool's ceil_mode in 10) are unknown there; left out, they
 * take the table's default, which is what the older form did. */
#include <stdint.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "onnx/importer.h"

enum {
  INTS = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS,
  INT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT,
  FLOAT = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT
};

typedef enum upgrade_kind_e {
  UPGRADE_NONE = 0,
  UPGRADE_AXES,          /* Squeeze, ReduceSum/Mean/Max: axes optional */
  UPGRADE_AXES_REQUIRED, /* Unsqueeze */
  UPGRADE_SPLIT,
  UPGRADE_CLIP,
  UPGRADE_DROPOUT,
  UPGRADE_SLICE,
  UPGRADE_SOFTMAX, /* Softmax and LogSoftmax */
  UPGRADE_BATCH_NORM,
} upgrade_kind_t;

/* An op whose form changed: models of an opset below `until` are upgraded. */
typedef struct upgrade_rule_t {
  const char *onnx_type;
  int until;
  upgrade_kind_t kind;
} upgrade_rule_t;

static const upgrade_rule_t kRules[] = {
    {"Squeeze", 13, UPGRADE_AXES},
    {"Unsqueeze", 13, UPGRADE_AXES_REQUIRED},
    {"ReduceSum", 13, UPGRADE_AXES},
    {"ReduceMean", 18, UPGRADE_AXES},
    {"ReduceMax", 18, UPGRADE_AXES},
    {"Split", 13, UPGRADE_SPLIT},
    {"Clip", 11, UPGRADE_CLIP},
    {"Dropout", 12, UPGRADE_DROPOUT},
    {"Slice", 10, UPGRADE_SLICE},
    {"Softmax", 13, UPGRADE_SOFTMAX},
    {"LogSoftmax", 13, UPGRADE_SOFTMAX},
    {"BatchNormalization", 14, UPGRADE_BATCH_NORM},
};

/* Attributes of the opset-21 form that ONNX added after opset 7: a model
 * of an older opset that sets one is malformed (its absence means the
 * table's default, which is what the older form did). */
typedef struct attr_since_t {
  const char *onnx_type;
  const char *attr;
  int since;
} attr_since_t;

static const attr_since_t kAttrSince[] = {
    {"MaxPool", "storage_order", 8},
    {"MaxPool", "ceil_mode", 10},
    {"MaxPool", "dilations", 10},
    {"AveragePool", "ceil_mode", 10},
    {"AveragePool", "dilations", 19},
    {"Dropout", "seed", 12},
    {"ReduceSum", "noop_with_empty_axes", 13},
    {"ReduceMean", "noop_with_empty_axes", 18},
    {"ReduceMax", "noop_with_empty_axes", 18},
    {"Reshape", "allowzero", 14},
    {"BatchNormalization", "training_mode", 14},
    {"Shape", "start", 15},
    {"Shape", "end", 15},
    {"Split", "num_outputs", 18},
    {"Cast", "saturate", 19},
};

int moai_onnx_attr_since(const char *onnx_type, const char *attr) {
  for (size_t i = 0; i < sizeof(kAttrSince) / sizeof(kAttrSince[0]); ++i)
    if (strcmp(kAttrSince[i].onnx_type, onnx_type) == 0 &&
        strcmp(kAttrSince[i].attr, attr) == 0)
      return kAttrSince[i].since;
  return 0;
}

/* Adds a legacy attribute for moai_onnx_node_attributes to capture. */
static void want_attr(moai_onnx_upgrade_t *up, const char *name, int type) {
  up->legacy[up->n_legacy++] =
      (moai_onnx_legacy_attr_t){.name = name, .type = type};
}

static const Onnx__AttributeProto *legacy_value(const moai_onnx_upgrade_t *up,
                                                const char *name) {
  for (size_t k = 0; k < up->n_legacy; ++k)
    if (strcmp(up->legacy[k].name, name) == 0) return up->legacy[k].value;
  return NULL;
}

static void plan_attrs(moai_onnx_upgrade_t *up) {
  switch ((upgrade_kind_t)up->kind) {
    case UPGRADE_AXES:
    case UPGRADE_AXES_REQUIRED: want_attr(up, "axes", INTS); break;
    case UPGRADE_SPLIT: want_attr(up, "split", INTS); break;
    case UPGRADE_CLIP:
      want_attr(up, "min", FLOAT);
      want_attr(up, "max", FLOAT);
      break;
    case UPGRADE_DROPOUT: want_attr(up, "ratio", FLOAT); break;
    case UPGRADE_SLICE:
      want_attr(up, "starts", INTS);
      want_attr(up, "ends", INTS);
      want_attr(up, "axes", INTS);
      break;
    case UPGRADE_SOFTMAX: want_attr(up, "axis", INT); break;
    case UPGRADE_BATCH_NORM:
      want_attr(up, "training_mode", INT); /* set by the upgrade */
      want_attr(up, "spatial", INT);       /* opsets 7 and 8 only */
      break;
    case UPGRADE_NONE: break;
  }
  /* Every rewrite but BatchNormalization's takes the tensor input alone;
   * the rest of the operands come from attributes. */
  up->max_inputs =
      up->kind == UPGRADE_BATCH_NORM || up->kind == UPGRADE_NONE ? SIZE_MAX : 1;
}

moai_status_t moai_onnx_upgrade_plan(moai_onnx_importer_t *im,
                                     const moai_onnx_node_t *node,
                                     moai_onnx_upgrade_t *out_up) {
  moai_onnx_upgrade_t up = {.max_inputs = SIZE_MAX};
  for (size_t i = 0; i < sizeof(kRules) / sizeof(kRules[0]); ++i)
    if (strcmp(kRules[i].onnx_type, node->op_type) == 0 &&
        im->opset < kRules[i].until)
      up.kind = kRules[i].kind;
  plan_attrs(&up);
  *out_up = up;
  return moai_ok_status();
}

/* ---- operands from attributes ------------------------------------------- */

/* Puts `value` as a constant into operand entry `slot`; upgrades add
 * operands in entry order after the node's single input. */
static moai_status_t add_constant(moai_onnx_importer_t *im,
                                  const moai_onnx_node_t *node,
                                  MlirLocation loc, MlirAttribute value,
                                  size_t slot, moai_onnx_op_inputs_t *in) {
  if (mlirAttributeIsNull(value))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INTERNAL,
                                "could not build the elements of operand %zu",
                                slot);
  MOAI_RETURN_IF_ERROR(moai_onnx_build_constant(im, node, loc, value,
                                                &in->values[in->n_values]));
  ++in->n_values;
  in->segments[slot] = 1;
  return moai_ok_status();
}

static moai_status_t add_ints(moai_onnx_importer_t *im,
                              const moai_onnx_node_t *node, MlirLocation loc,
                              const Onnx__AttributeProto *a, size_t slot,
                              moai_onnx_op_inputs_t *in) {
  return add_constant(
      im, node, loc, moai_onnx_i64_elements(im->ctx, a->ints, a->n_ints, false),
      slot, in);
}

/* A scalar of the data operand's float element type holding `v`. */
static moai_status_t add_float_scalar(moai_onnx_importer_t *im,
                                      const moai_onnx_node_t *node,
                                      MlirLocation loc, float v, size_t slot,
                                      moai_onnx_op_inputs_t *in) {
  MlirType elem = mlirShapedTypeGetElementType(mlirValueGetType(in->values[0]));
  if (!mlirTypeIsAFloat(elem))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "%s before opset %d takes a float input",
                                node->op_type,
                                strcmp(node->op_type, "Clip") == 0 ? 11 : 12);
  MlirType type =
      mlirRankedTensorTypeGet(0, NULL, elem, mlirAttributeGetNull());
  MlirAttribute value = mlirDenseElementsAttrSplatGet(
      type, mlirFloatAttrDoubleGet(im->ctx, elem, v));
  return add_constant(im, node, loc, value, slot, in);
}

static moai_status_t missing_attr(moai_onnx_importer_t *im,
                                  const moai_onnx_node_t *node,
                                  const char *name) {
  return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                              "missing required attribute '%s' (opset %lld)",
                              name, (long long)im->opset);
}

static moai_status_t apply_axes(moai_onnx_importer_t *im,
                                const moai_onnx_node_t *node, MlirLocation loc,
                                const moai_onnx_upgrade_t *up,
                                moai_onnx_op_inputs_t *in) {
  const Onnx__AttributeProto *axes = legacy_value(up, "axes");
  if (up->kind == UPGRADE_AXES_REQUIRED) {
    if (!axes) return missing_attr(im, node, "axes");
    return add_ints(im, node, loc, axes, 1, in);
  }
  /* Absent or empty: every axis (opset 13's absent operand). */
  if (!axes || !axes->n_ints) return moai_ok_status();
  return add_ints(im, node, loc, axes, 1, in);
}

static moai_status_t apply_slice(moai_onnx_importer_t *im,
                                 const moai_onnx_node_t *node, MlirLocation loc,
                                 const moai_onnx_upgrade_t *up,
                                 moai_onnx_op_inputs_t *in) {
  const char *names[3] = {"starts", "ends", "axes"};
  const Onnx__AttributeProto *a[3];
  for (size_t k = 0; k < 3; ++k) {
    a[k] = legacy_value(up, names[k]);
    if (!a[k] && k < 2) return missing_attr(im, node, names[k]);
  }
  for (size_t k = 1; k < 3; ++k)
    if (a[k] && a[k]->n_ints != a[0]->n_ints)
      return MOAI_ONNX_NODE_ERROR(
          im, node, MOAI_INVALID_ARGUMENT,
          "attribute '%s' has %zu values, 'starts' has %zu", names[k],
          a[k]->n_ints, a[0]->n_ints);
  for (size_t k = 0; k < 3; ++k)
    if (a[k]) MOAI_RETURN_IF_ERROR(add_ints(im, node, loc, a[k], k + 1, in));
  return moai_ok_status();
}

static moai_status_t apply_clip(moai_onnx_importer_t *im,
                                const moai_onnx_node_t *node, MlirLocation loc,
                                const moai_onnx_upgrade_t *up,
                                moai_onnx_op_inputs_t *in) {
  /* Clip-6 documents +-3.402823e+38 as the defaults; absent bounds stay
   * absent, which differs from clamping to FLT_MAX only for infinities
   * and doubles beyond the f32 range. */
  const char *names[2] = {"min", "max"};
  for (size_t k = 0; k < 2; ++k) {
    const Onnx__AttributeProto *a = legacy_value(up, names[k]);
    if (a)
      MOAI_RETURN_IF_ERROR(add_float_scalar(im, node, loc, a->f, k + 1, in));
  }
  return moai_ok_status();
}

static moai_status_t apply_dropout(moai_onnx_importer_t *im,
                                   const moai_onnx_node_t *node,
                                   MlirLocation loc,
                                   const moai_onnx_upgrade_t *up,
                                   moai_onnx_op_inputs_t *in) {
  const Onnx__NodeProto *p = node->proto;
  if (im->opset < 10 && p->n_output > 1 && p->output[1] && *p->output[1])
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_UNIMPLEMENTED,
        "output 'mask' of Dropout before opset 10 has the input's type, not "
        "bool (opset %lld)",
        (long long)im->opset);
  const Onnx__AttributeProto *ratio = legacy_value(up, "ratio");
  if (!ratio) return moai_ok_status();
  return add_float_scalar(im, node, loc, ratio->f, 1, in);
}

static moai_status_t apply_batch_norm(moai_onnx_importer_t *im,
                                      const moai_onnx_node_t *node,
                                      const moai_onnx_upgrade_t *up,
                                      moai_onnx_op_inputs_t *in) {
  const Onnx__AttributeProto *spatial = legacy_value(up, "spatial");
  if (spatial && im->opset >= 9)
    return moai_onnx_unknown_attr(im, node, "spatial");
  if (spatial && spatial->i != 1)
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_UNIMPLEMENTED,
        "spatial = %lld (statistics per activation, not per channel) is not "
        "supported (opset %lld)",
        (long long)spatial->i, (long long)im->opset);
  const Onnx__NodeProto *p = node->proto;
  static const char *const kOutputs[5] = {"Y", "mean", "var", "saved_mean",
                                          "saved_var"};
  bool training = false;
  for (size_t i = 1; i < p->n_output && i < 5; ++i) {
    if (!p->output[i] || !*p->output[i]) continue;
    if (i >= 3)
      return MOAI_ONNX_NODE_ERROR(
          im, node, MOAI_UNIMPLEMENTED,
          "output '%s' (training statistics of opsets 7 to 13) is not "
          "supported (opset %lld)",
          kOutputs[i], (long long)im->opset);
    training = true;
  }
  /* Outputs mean and var are computed in training only: opset 14's
   * running_mean and running_var, with training_mode set. */
  in->attrs[in->n_attrs++] = moai_onnx_named(
      im->ctx, "training_mode", moai_onnx_i64_attr(im->ctx, training));
  return moai_ok_status();
}

/* ---- Softmax and LogSoftmax before opset 13 ----------------------------- */

/* Flatten(axis) -> op(axis=-1) -> Reshape to the input's static shape. */
static moai_status_t softmax_2d(moai_onnx_importer_t *im,
                                const moai_onnx_node_t *node, MlirLocation loc,
                                MlirValue x, int64_t axis,
                                MlirOperation *out_op) {
  MlirType type = mlirValueGetType(x);
  int64_t rank = mlirShapedTypeGetRank(type);
  if (!mlirShapedTypeHasStaticShape(type))
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_UNIMPLEMENTED,
        "%s before opset 13 over axes %lld.. of an input whose shape is not "
        "static (opset %lld)",
        node->op_type, (long long)axis, (long long)im->opset);
  MOAI_RETURN_IF_ERROR(moai_onnx_scratch_reserve(
      im, &im->scratch_dims, sizeof(int64_t), (size_t)rank + 1));
  int64_t *dims = im->scratch_dims.data;
  for (int64_t i = 0; i < rank; ++i)
    dims[i] = mlirShapedTypeGetDimSize(type, (intptr_t)i);
  MlirNamedAttribute attr =
      moai_onnx_named(im->ctx, "axis", moai_onnx_i64_attr(im->ctx, axis));
  MlirOperation flat, norm;
  MOAI_RETURN_IF_ERROR(
      moai_onnx_build_op(im, node, loc, "flatten", &x, 1, &attr, 1, &flat));
  attr = moai_onnx_named(im->ctx, "axis", moai_onnx_i64_attr(im->ctx, -1));
  MlirValue flat_value = mlirOperationGetResult(flat, 0);
  MOAI_RETURN_IF_ERROR(moai_onnx_build_op(im, node, loc, node->def->name,
                                          &flat_value, 1, &attr, 1, &norm));
  MlirValue operands[2] = {mlirOperationGetResult(norm, 0)};
  MOAI_RETURN_IF_ERROR(moai_onnx_build_constant(
      im, node, loc, moai_onnx_i64_elements(im->ctx, dims, (size_t)rank, false),
      &operands[1]));
  attr = moai_onnx_named(im->ctx, "allowzero", moai_onnx_i64_attr(im->ctx, 0));
  return moai_onnx_build_op(im, node, loc, "reshape", operands, 2, &attr, 1,
                            out_op);
}

static moai_status_t apply_softmax(moai_onnx_importer_t *im,
                                   const moai_onnx_node_t *node,
                                   MlirLocation loc,
                                   const moai_onnx_upgrade_t *up,
                                   moai_onnx_op_inputs_t *in,
                                   MlirOperation *out_op) {
  const Onnx__AttributeProto *a = legacy_value(up, "axis");
  int64_t axis = a ? a->i : 1; /* the default before opset 13 */
  MlirType type = mlirValueGetType(in->values[0]);
  if (!mlirShapedTypeHasRank(type))
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_UNIMPLEMENTED,
        "%s before opset 13 on an input of unknown rank (opset %lld)",
        node->op_type, (long long)im->opset);
  int64_t rank = mlirShapedTypeGetRank(type);
  if (axis < -rank || axis >= rank)
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "axis %lld out of range for rank %lld",
                                (long long)axis, (long long)rank);
  if (axis < 0) axis += rank;
  /* Over the last axis alone the 2-D coercion changes nothing. */
  if (axis == rank - 1) {
    in->attrs[in->n_attrs++] =
        moai_onnx_named(im->ctx, "axis", moai_onnx_i64_attr(im->ctx, axis));
    return moai_ok_status();
  }
  return softmax_2d(im, node, loc, in->values[0], axis, out_op);
}

moai_status_t moai_onnx_upgrade_apply(moai_onnx_importer_t *im,
                                      const moai_onnx_node_t *node,
                                      MlirLocation loc,
                                      const moai_onnx_upgrade_t *up,
                                      moai_onnx_op_inputs_t *in,
                                      MlirOperation *out_op) {
  *out_op = (MlirOperation){NULL};
  /* Operands from attributes follow the tensor input; without it the
   * node is malformed and gather_operands has said so. */
  if (up->kind != UPGRADE_NONE && up->kind != UPGRADE_BATCH_NORM &&
      in->n_values != 1)
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INTERNAL,
                                "expected one input before the upgrade");
  switch ((upgrade_kind_t)up->kind) {
    case UPGRADE_NONE: return moai_ok_status();
    case UPGRADE_AXES:
    case UPGRADE_AXES_REQUIRED: return apply_axes(im, node, loc, up, in);
    case UPGRADE_SPLIT: {
      const Onnx__AttributeProto *split = legacy_value(up, "split");
      if (!split || !split->n_ints) return moai_ok_status();
      return add_ints(im, node, loc, split, 1, in);
    }
    case UPGRADE_CLIP: return apply_clip(im, node, loc, up, in);
    case UPGRADE_DROPOUT: return apply_dropout(im, node, loc, up, in);
    case UPGRADE_SLICE: return apply_slice(im, node, loc, up, in);
    case UPGRADE_SOFTMAX: return apply_softmax(im, node, loc, up, in, out_op);
    case UPGRADE_BATCH_NORM: return apply_batch_norm(im, node, up, in);
  }
  return moai_ok_status();
}
