/* The per-op lowering rules: which kernel runs a moai op, which of its
 * operands and results the descriptor carries, and its normalised attribute
 * struct (runtime/abi/moai_ops.h). Parameter operands (Slice starts/ends/
 * axes/steps, Reduce axes, Trilu k, CumSum axis) are folded into the
 * attributes when they are constants and not passed; otherwise they are
 * passed in their operand slots and the struct's runtime_* flag tells the
 * kernel to read them at run time. Dropout's training_mode must be
 * constant. */
#include <math.h>
#include <string.h>

#include "codegen/lower_internal.h"
#include "codegen/lower_norm.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"

static bool norm_failed(moai_lower_op_t *o, const char *err) {
  return moai_lower_error(o, "%s", err);
}

static bool tensor_of(moai_lower_op_t *o, MlirValue v, int32_t *rank,
                      int64_t *dims) {
  return moai_lower_shape(o, v, rank, dims);
}

static bool str_is(MlirStringRef s, const char *lit) {
  size_t n = strlen(lit);
  return s.length == n && memcmp(s.data, lit, n) == 0;
}

/* Every operand and result as they are, no attributes. */
static bool rule_plain(moai_lower_t *L, moai_lower_op_t *o) {
  return moai_lower_add_all_ins(L, o) && moai_lower_add_all_outs(L, o) &&
         moai_lower_emit(L, o);
}

/* attention, attention_grad: every operand (an absent mask or key_padding
 * as NONE), the scale and the index masks' causal, window, masked_value. */
static bool rule_attention(moai_lower_t *L, moai_lower_op_t *o) {
  double scale, masked;
  int64_t causal, window;
  bool present;
  if (!moai_lower_attr_float(o, "scale", &scale) ||
      !moai_lower_attr_int(o, "causal", &causal, &present) ||
      !moai_lower_attr_int(o, "window", &window, &present) ||
      !moai_lower_attr_float(o, "masked_value", &masked))
    return false;
  if ((causal != 0 && causal != 1) || window < 0)
    return moai_lower_error(o, "causal %lld must be 0 or 1 and window %lld >= 0",
                            (long long)causal, (long long)window);
  moai_attrs_attention_t a = {.scale = (float)scale, .causal = (int32_t)causal,
                              .masked_value = (float)masked, .window = window};
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* rms_norm, rms_norm_grad: every operand, epsilon. */
static bool rule_rms_norm(moai_lower_t *L, moai_lower_op_t *o) {
  double eps;
  if (!moai_lower_attr_float(o, "epsilon", &eps)) return false;
  moai_attrs_rms_norm_t a = {.epsilon = (float)eps};
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* The data operand and every result (the other operands are folded into
 * the attributes or the output dims). */
static bool data_only(moai_lower_t *L, moai_lower_op_t *o) {
  return moai_lower_add_in(L, o, 0) && moai_lower_add_all_outs(L, o);
}

/* out = in, same bytes; nothing to do when the memory plan gave the result
 * its operand's buffer. */
static bool emit_copy(moai_lower_t *L, moai_lower_op_t *o) {
  o->kernel = MOAI_KERNEL_COPY;
  o->n_in = o->n_out = 0;
  o->attrs_size = 0;
  if (!moai_lower_add_in(L, o, 0) || !moai_lower_add_out(L, o, 0)) return false;
  o->n_out = 1; /* a view has one data result */
  const moai_tensor_t *in = &o->ins[0], *out = &o->outs[0];
  if (out->region == MOAI_REGION_NONE) return true;
  if (in->region == out->region && in->offset == out->offset) return true;
  return moai_lower_emit(L, o);
}

static bool rule_view(moai_lower_t *L, moai_lower_op_t *o) {
  return emit_copy(L, o);
}

/* Dropout in inference mode is the identity; its mask is all true. */
static bool rule_dropout(moai_lower_t *L, moai_lower_op_t *o) {
  bool training = false;
  if (!moai_lower_const_bool(o, 2, "training_mode", false, &training))
    return false;
  if (training)
    return moai_lower_error(o, "training-mode dropout is not supported by the "
                               "backend yet");
  if (!emit_copy(L, o)) return false;
  MlirValue mask = moai_lower_result(o, 1);
  if (mlirValueIsNull(mask) || !moai_lower_value_used(mask)) return true;
  o->kernel = MOAI_KERNEL_CONSTANT_OF_SHAPE;
  o->n_in = o->n_out = 0;
  moai_attrs_fill_t fill = {.value = {1}};
  moai_lower_set_attrs(o, &fill, sizeof(fill));
  return moai_lower_add_out(L, o, 1) && moai_lower_emit(L, o);
}

static bool rule_leaky_relu(moai_lower_t *L, moai_lower_op_t *o) {
  double alpha;
  if (!moai_lower_attr_float(o, "alpha", &alpha)) return false;
  moai_attrs_leaky_relu_t a = {.alpha = (float)alpha};
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

static bool rule_gelu(moai_lower_t *L, moai_lower_op_t *o) {
  MlirStringRef approx;
  if (!moai_lower_attr_string(o, "approximate", &approx)) return false;
  moai_attrs_gelu_t a = {0};
  if (str_is(approx, "tanh")) a.tanh_approximation = 1;
  else if (!str_is(approx, "none"))
    return moai_lower_error(o, "unknown Gelu approximation '%.*s'",
                            (int)approx.length, approx.data);
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* Expand: the target shape is the output's dims. */
static bool rule_expand(moai_lower_t *L, moai_lower_op_t *o) {
  return data_only(L, o) && moai_lower_emit(L, o);
}

/* An `axis` attribute made positive against the rank of `v`. */
static bool axis_attrs(moai_lower_op_t *o, MlirValue v, const char *name,
                       moai_attrs_axis_t *out) {
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK], axis;
  char err[128];
  if (!tensor_of(o, v, &rank, dims) ||
      !moai_lower_attr_int(o, name, &axis, NULL))
    return false;
  if (!moai_norm_axis(axis, rank, &out->axis, err, sizeof(err)))
    return norm_failed(o, err);
  return true;
}

static bool rule_axis_of_input(moai_lower_t *L, moai_lower_op_t *o) {
  moai_attrs_axis_t a;
  if (!axis_attrs(o, moai_lower_operand(o, 0), "axis", &a)) return false;
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* Concat's axis counts in the output's rank (inputs share it). */
static bool rule_concat(moai_lower_t *L, moai_lower_op_t *o) {
  moai_attrs_axis_t a;
  if (!axis_attrs(o, moai_lower_result(o, 0), "axis", &a)) return false;
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* Split: the sizes are the outputs' dims along the axis. */
static bool rule_split(moai_lower_t *L, moai_lower_op_t *o) {
  moai_attrs_axis_t a;
  if (!axis_attrs(o, moai_lower_operand(o, 0), "axis", &a)) return false;
  moai_lower_set_attrs(o, &a, sizeof(a));
  return data_only(L, o) && moai_lower_emit(L, o);
}

static bool rule_transpose(moai_lower_t *L, moai_lower_op_t *o) {
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK], perm[MOAI_MAX_RANK];
  size_t n;
  bool present;
  char err[128];
  if (!tensor_of(o, moai_lower_operand(o, 0), &rank, dims) ||
      !moai_lower_attr_ints(o, "perm", perm, MOAI_MAX_RANK, &n, &present))
    return false;
  moai_attrs_transpose_t a;
  memset(&a, 0, sizeof(a));
  if (!moai_norm_perm(rank, present ? n : 0, perm, a.perm, err, sizeof(err)))
    return norm_failed(o, err);
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* Every operand and result, with the attribute struct `a` (a runtime
 * parameter form). */
static bool emit_runtime_form(moai_lower_t *L, moai_lower_op_t *o, const void *a,
                              size_t size) {
  moai_lower_set_attrs(o, a, size);
  return rule_plain(L, o);
}

/* Slice whose starts/ends/axes/steps are computed at run time: the kernel
 * reads and clamps them; their types are checked here. */
static bool slice_runtime(moai_lower_t *L, moai_lower_op_t *o, int32_t rank,
                          int32_t out_rank) {
  static const char *const names[4] = {"starts", "ends", "axes", "steps"};
  int64_t n[4] = {-1, -1, -1, -1};
  if (out_rank != rank)
    return moai_lower_error(o, "the slice's result has rank %d, its input %d",
                            (int)out_rank, (int)rank);
  for (int e = 1; e <= 4; ++e)
    if (!mlirValueIsNull(moai_lower_operand(o, e)) &&
        !moai_lower_int_operand(o, e, names[e - 1], false, &n[e - 1]))
      return false;
  if (n[1] != n[0] || (n[2] >= 0 && n[2] != n[0]) || (n[3] >= 0 && n[3] != n[0]))
    return moai_lower_error(o, "starts, ends, axes and steps differ in length");
  if (n[0] > rank)
    return moai_lower_error(o, "%lld slice axes for an input of rank %d",
                            (long long)n[0], (int)rank);
  moai_attrs_slice_t a;
  memset(&a, 0, sizeof(a));
  a.runtime_params = 1;
  return emit_runtime_form(L, o, &a, sizeof(a));
}

bool moai_lower_slice_params(moai_lower_op_t *o, int32_t rank, const int64_t *dims,
                             moai_attrs_slice_t *out, int64_t *out_count) {
  int64_t starts[MOAI_MAX_RANK], ends[MOAI_MAX_RANK], axes[MOAI_MAX_RANK],
      steps[MOAI_MAX_RANK];
  size_t ns, ne, na, nt;
  bool has_axes, has_steps;
  char err[160];
  if (!moai_lower_const_ints(o, 1, "starts", starts, MOAI_MAX_RANK, &ns, NULL) ||
      !moai_lower_const_ints(o, 2, "ends", ends, MOAI_MAX_RANK, &ne, NULL) ||
      !moai_lower_const_ints(o, 3, "axes", axes, MOAI_MAX_RANK, &na, &has_axes) ||
      !moai_lower_const_ints(o, 4, "steps", steps, MOAI_MAX_RANK, &nt, &has_steps))
    return false;
  if (ne != ns || (has_axes && na != ns) || (has_steps && nt != ns))
    return moai_lower_error(o, "starts, ends, axes and steps differ in length");
  memset(out, 0, sizeof(*out));
  if (!moai_norm_slice(rank, dims, ns, starts, ends, has_axes ? axes : NULL,
                       has_steps ? steps : NULL, out->start, out->step, out_count,
                       err, sizeof(err)))
    return norm_failed(o, err);
  return true;
}

static bool rule_slice(moai_lower_t *L, moai_lower_op_t *o) {
  int32_t rank, out_rank;
  int64_t dims[MOAI_MAX_RANK], out_dims[MOAI_MAX_RANK], count[MOAI_MAX_RANK];
  if (!tensor_of(o, moai_lower_operand(o, 0), &rank, dims) ||
      !tensor_of(o, moai_lower_result(o, 0), &out_rank, out_dims))
    return false;
  for (int e = 1; e <= 4; ++e)
    if (!moai_lower_operand_is_const(o, e)) return slice_runtime(L, o, rank, out_rank);
  moai_attrs_slice_t a;
  if (!moai_lower_slice_params(o, rank, dims, &a, count)) return false;
  if (out_rank != rank || memcmp(count, out_dims, (size_t)rank * sizeof(int64_t)))
    return moai_lower_error(o, "internal error: the slice's element counts "
                               "disagree with its result type");
  moai_lower_set_attrs(o, &a, sizeof(a));
  return data_only(L, o) && moai_lower_emit(L, o);
}

static bool rule_constant_of_shape(moai_lower_t *L, moai_lower_op_t *o) {
  moai_attrs_fill_t a;
  memset(&a, 0, sizeof(a));
  MlirAttribute v = mlirOperationGetAttributeByName(
      o->op, mlirStringRefCreateFromCString("value"));
  if (!mlirAttributeIsNull(v)) {
    if (!mlirAttributeIsADenseElements(v) ||
        mlirElementsAttrGetNumElements(v) != 1)
      return moai_lower_error(o, "'value' must be a one-element tensor");
    MlirType elem = mlirShapedTypeGetElementType(mlirAttributeGetType(v));
    if (mlirTypeIsAInteger(elem) && mlirIntegerTypeGetWidth(elem) == 1) {
      a.value[0] = mlirDenseElementsAttrGetBoolValue(v, 0) ? 1 : 0;
    } else {
      unsigned bits = mlirTypeIsAInteger(elem) ? mlirIntegerTypeGetWidth(elem)
                      : mlirTypeIsAF64(elem)   ? 64
                      : mlirTypeIsAF32(elem)   ? 32
                                               : 16;
      memcpy(a.value, mlirDenseElementsAttrGetRawData(v), bits / 8);
    }
  }
  moai_lower_set_attrs(o, &a, sizeof(a));
  return moai_lower_add_all_outs(L, o) && moai_lower_emit(L, o);
}

static bool rule_trilu(moai_lower_t *L, moai_lower_op_t *o) {
  int64_t k[1] = {0}, upper, count;
  size_t n;
  if (!moai_lower_attr_int(o, "upper", &upper, NULL)) return false;
  if (!moai_lower_operand_is_const(o, 1)) {
    if (!moai_lower_int_operand(o, 1, "k", true, &count)) return false;
    moai_attrs_trilu_t a = {.upper = upper != 0, .runtime_k = 1};
    return emit_runtime_form(L, o, &a, sizeof(a));
  }
  if (!moai_lower_const_ints(o, 1, "k", k, 1, &n, NULL)) return false;
  moai_attrs_trilu_t a = {.k = n ? k[0] : 0, .upper = upper != 0};
  moai_lower_set_attrs(o, &a, sizeof(a));
  return data_only(L, o) && moai_lower_emit(L, o);
}

static bool rule_cumsum(moai_lower_t *L, moai_lower_op_t *o) {
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK], axis[1], exclusive, reverse, count;
  size_t n;
  char err[128];
  if (!tensor_of(o, moai_lower_operand(o, 0), &rank, dims) ||
      !moai_lower_attr_int(o, "exclusive", &exclusive, NULL) ||
      !moai_lower_attr_int(o, "reverse", &reverse, NULL))
    return false;
  if (!moai_lower_operand_is_const(o, 1)) {
    if (!moai_lower_int_operand(o, 1, "axis", true, &count)) return false;
    moai_attrs_cumsum_t a = {.exclusive = exclusive != 0, .reverse = reverse != 0,
                             .runtime_axis = 1};
    return emit_runtime_form(L, o, &a, sizeof(a));
  }
  if (!moai_lower_const_ints(o, 1, "axis", axis, 1, &n, NULL)) return false;
  if (n != 1) return moai_lower_error(o, "'axis' must be a scalar");
  moai_attrs_cumsum_t a = {.exclusive = exclusive != 0, .reverse = reverse != 0};
  if (!moai_norm_axis(axis[0], rank, &a.axis, err, sizeof(err)))
    return norm_failed(o, err);
  moai_lower_set_attrs(o, &a, sizeof(a));
  return data_only(L, o) && moai_lower_emit(L, o);
}

static bool rule_reduce(moai_lower_t *L, moai_lower_op_t *o) {
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK], axes[64], keepdims, noop_empty, count;
  size_t n;
  char err[128];
  if (!tensor_of(o, moai_lower_operand(o, 0), &rank, dims) ||
      !moai_lower_attr_int(o, "keepdims", &keepdims, NULL) ||
      !moai_lower_attr_int(o, "noop_with_empty_axes", &noop_empty, NULL))
    return false;
  if (!moai_lower_operand_is_const(o, 1)) {
    if (!moai_lower_int_operand(o, 1, "axes", false, &count)) return false;
    moai_attrs_reduce_t a = {.keepdims = keepdims != 0, .runtime_axes = 1,
                             .noop_with_empty_axes = noop_empty != 0};
    return emit_runtime_form(L, o, &a, sizeof(a));
  }
  if (!moai_lower_const_ints(o, 1, "axes", axes, 64, &n, NULL)) return false;
  moai_attrs_reduce_t a = {.keepdims = keepdims != 0};
  bool noop;
  if (!moai_norm_reduce_axes(rank, n, axes, noop_empty != 0, &a.axes_mask,
                             &noop, err, sizeof(err)))
    return norm_failed(o, err);
  if (noop) return emit_copy(L, o);
  moai_lower_set_attrs(o, &a, sizeof(a));
  return data_only(L, o) && moai_lower_emit(L, o);
}

static bool rule_gemm(moai_lower_t *L, moai_lower_op_t *o) {
  double alpha, beta;
  int64_t ta, tb;
  if (!moai_lower_attr_float(o, "alpha", &alpha) ||
      !moai_lower_attr_float(o, "beta", &beta) ||
      !moai_lower_attr_int(o, "transA", &ta, NULL) ||
      !moai_lower_attr_int(o, "transB", &tb, NULL))
    return false;
  moai_attrs_gemm_t a = {.alpha = (float)alpha, .beta = (float)beta,
                         .trans_a = ta != 0, .trans_b = tb != 0};
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

static bool rule_sce(moai_lower_t *L, moai_lower_op_t *o) {
  MlirStringRef reduction;
  int64_t ignore = 0;
  bool has_ignore;
  if (!moai_lower_attr_string(o, "reduction", &reduction) ||
      !moai_lower_attr_int(o, "ignore_index", &ignore, &has_ignore))
    return false;
  moai_attrs_sce_t a = {.has_ignore_index = has_ignore,
                        .ignore_index = has_ignore ? ignore : 0};
  if (str_is(reduction, "none")) a.reduction = 0;
  else if (str_is(reduction, "sum")) a.reduction = 1;
  else if (str_is(reduction, "mean")) a.reduction = 2;
  else
    return moai_lower_error(o, "unknown reduction '%.*s'",
                            (int)reduction.length, reduction.data);
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* Conv and pools: explicit pads, strides and dilations. */
bool moai_lower_window_attrs(moai_lower_op_t *o, int32_t rank, const int64_t *in,
                             int32_t out_rank, const int64_t *out,
                             const int64_t *w_dims, bool has_ceil,
                             moai_attrs_window_t *a) {
  int64_t kernel[MOAI_MAX_RANK], strides[MOAI_MAX_RANK], dil[MOAI_MAX_RANK],
      pads[2 * MOAI_MAX_RANK], sizes[3];
  size_t nk, ns, nd, np;
  bool hk, hs, hd, hp;
  int64_t ceil_mode = 0;
  MlirStringRef pad_text;
  moai_auto_pad_t mode;
  char err[192];
  if (!moai_lower_attr_ints(o, "kernel_shape", kernel, MOAI_MAX_RANK, &nk, &hk) ||
      !moai_lower_attr_ints(o, "strides", strides, MOAI_MAX_RANK, &ns, &hs) ||
      !moai_lower_attr_ints(o, "dilations", dil, MOAI_MAX_RANK, &nd, &hd) ||
      !moai_lower_attr_ints(o, "pads", pads, 2 * MOAI_MAX_RANK, &np, &hp) ||
      !moai_lower_attr_string(o, "auto_pad", &pad_text) ||
      (has_ceil && !moai_lower_attr_int(o, "ceil_mode", &ceil_mode, NULL)))
    return false;
  int n = rank - 2;
  if (n < 1 || n > 3)
    return moai_lower_error(o, "%d spatial axes (the backend supports 1 to 3)", n);
  if (!moai_norm_auto_pad(pad_text.data, pad_text.length, &mode))
    return moai_lower_error(o, "unknown auto_pad '%.*s'", (int)pad_text.length,
                            pad_text.data);
  if (w_dims && !hk) {
    for (int i = 0; i < n; ++i) kernel[i] = w_dims[2 + i];
    nk = (size_t)n;
    hk = true;
  }
  if (!hk || nk != (size_t)n || (hs && ns != (size_t)n) ||
      (hd && nd != (size_t)n) || (hp && np != 2 * (size_t)n))
    return moai_lower_error(o, "kernel_shape, strides, dilations or pads do "
                               "not match %d spatial axes", n);
  memset(a, 0, sizeof(*a));
  a->spatial_rank = n;
  for (int i = 0; i < n; ++i) a->kernel[i] = kernel[i];
  if (!moai_norm_window(n, in + 2, kernel, hs ? strides : NULL,
                        hd ? dil : NULL, hp ? pads : NULL, mode, ceil_mode != 0,
                        a->strides, a->dilations, a->pads, sizes, err,
                        sizeof(err)))
    return norm_failed(o, err);
  for (int i = 0; i < n; ++i)
    if (out_rank != rank || sizes[i] != out[2 + i])
      return moai_lower_error(o, "internal error: the window's output size "
                                 "disagrees with the result type");
  /* pads stay in ONNX's layout: begins of the n axes, then their ends
   * (pads[i], pads[n + i]). */
  return true;
}

/* The forward ops: x is operand 0, y result 0, conv's w operand 1. */
static bool window_attrs(moai_lower_op_t *o, bool is_conv, bool has_ceil,
                         moai_attrs_window_t *a) {
  int32_t rank, out_rank, wr;
  int64_t in[MOAI_MAX_RANK], out[MOAI_MAX_RANK], w[MOAI_MAX_RANK];
  if (!tensor_of(o, moai_lower_operand(o, 0), &rank, in) ||
      !tensor_of(o, moai_lower_result(o, 0), &out_rank, out) ||
      (is_conv && !tensor_of(o, moai_lower_operand(o, 1), &wr, w)))
    return false;
  return moai_lower_window_attrs(o, rank, in, out_rank, out, is_conv ? w : NULL,
                                 has_ceil, a);
}

static bool rule_conv(moai_lower_t *L, moai_lower_op_t *o) {
  moai_attrs_window_t a;
  int64_t group;
  if (!window_attrs(o, true, false, &a) ||
      !moai_lower_attr_int(o, "group", &group, NULL))
    return false;
  a.group = group;
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* MaxPool: Y, and Indices when the model uses them (int64, Y's shape). */
static bool rule_max_pool(moai_lower_t *L, moai_lower_op_t *o) {
  MlirValue indices = moai_lower_result(o, 1);
  bool with_indices = !mlirValueIsNull(indices) && moai_lower_value_used(indices);
  moai_attrs_window_t a;
  int64_t storage_order;
  if (!window_attrs(o, false, true, &a) ||
      !moai_lower_attr_int(o, "storage_order", &storage_order, NULL))
    return false;
  if (storage_order != 0 && storage_order != 1)
    return moai_lower_error(o, "storage_order %lld (ONNX allows 0 and 1)",
                            (long long)storage_order);
  a.storage_order = (int32_t)storage_order;
  moai_lower_set_attrs(o, &a, sizeof(a));
  if (!moai_lower_add_in(L, o, 0) || !moai_lower_add_out(L, o, 0)) return false;
  if (with_indices) {
    if (!moai_lower_add_out(L, o, 1)) return false;
    const moai_tensor_t *y = &o->outs[0], *i = &o->outs[1];
    if (i->dtype != MOAI_ABI_I64 || i->rank != y->rank ||
        memcmp(i->dims, y->dims, (size_t)y->rank * sizeof(int64_t)) != 0)
      return moai_lower_error(o, "the Indices output of MaxPool must be int64 "
                                 "with the shape of its output");
  }
  return moai_lower_emit(L, o);
}

static bool rule_average_pool(moai_lower_t *L, moai_lower_op_t *o) {
  moai_attrs_window_t a;
  int64_t cip;
  if (!window_attrs(o, false, true, &a) ||
      !moai_lower_attr_int(o, "count_include_pad", &cip, NULL))
    return false;
  a.count_include_pad = cip != 0;
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

static bool rule_batch_norm(moai_lower_t *L, moai_lower_op_t *o) {
  double eps, momentum;
  int64_t training;
  if (!moai_lower_attr_float(o, "epsilon", &eps) ||
      !moai_lower_attr_float(o, "momentum", &momentum) ||
      !moai_lower_attr_int(o, "training_mode", &training, NULL))
    return false;
  moai_attrs_batch_norm_t a = {.epsilon = (float)eps,
                               .momentum = (float)momentum,
                               .training_mode = training != 0};
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

static bool rule_layer_norm(moai_lower_t *L, moai_lower_op_t *o) {
  moai_attrs_axis_t ax;
  double eps;
  if (!axis_attrs(o, moai_lower_operand(o, 0), "axis", &ax) ||
      !moai_lower_attr_float(o, "epsilon", &eps))
    return false;
  moai_attrs_layer_norm_t a = {.axis = ax.axis, .epsilon = (float)eps};
  moai_lower_set_attrs(o, &a, sizeof(a));
  return rule_plain(L, o);
}

/* The reduction and the group as the kernel's enums; the memory plan may
 * have given the output the input's buffer (reduced in place). */
static bool rule_all_reduce(moai_lower_t *L, moai_lower_op_t *o) {
  MlirStringRef op, group;
  if (!moai_lower_attr_string(o, "op", &op) || !moai_lower_attr_string(o, "group", &group))
    return false;
  moai_attrs_all_reduce_t a = {.group = MOAI_GROUP_TP};
  if (str_is(op, "sum")) a.op = MOAI_REDUCE_SUM;
  else if (str_is(op, "max")) a.op = MOAI_REDUCE_MAX;
  else
    return moai_lower_error(o, "all_reduce: op '%.*s' is not supported (sum or max)",
                            (int)op.length, op.data);
  if (!str_is(group, "tp"))
    return moai_lower_error(o, "all_reduce: group '%.*s' is not supported (tp)",
                            (int)group.length, group.data);
  moai_lower_set_attrs(o, &a, sizeof(a));
  if (!moai_lower_add_in(L, o, 0) || !moai_lower_add_out(L, o, 0)) return false;
  if (o->ins[0].dtype != MOAI_ABI_F32 && o->ins[0].dtype != MOAI_ABI_F64)
    return moai_lower_error(o, "all_reduce: the backend reduces float32 and float64 tensors "
                               "only");
  return moai_lower_emit(L, o);
}

#define K(id) MOAI_KERNEL_##id
static const moai_lower_rule_t kRules[] = {
    {"reshape", K(COPY), rule_view},
    {"squeeze", K(COPY), rule_view},
    {"unsqueeze", K(COPY), rule_view},
    {"flatten", K(COPY), rule_view},
    {"identity", K(COPY), rule_view},
    {"tp_copy", K(COPY), rule_view},
    {"dropout", K(COPY), rule_dropout},
    {"add", K(ADD), rule_plain},
    {"sub", K(SUB), rule_plain},
    {"mul", K(MUL), rule_plain},
    {"div", K(DIV), rule_plain},
    {"pow", K(POW), rule_plain},
    {"equal", K(EQUAL), rule_plain},
    {"less", K(LESS), rule_plain},
    {"less_or_equal", K(LESS_OR_EQUAL), rule_plain},
    {"greater", K(GREATER), rule_plain},
    {"greater_or_equal", K(GREATER_OR_EQUAL), rule_plain},
    {"and", K(AND), rule_plain},
    {"or", K(OR), rule_plain},
    {"not", K(NOT), rule_plain},
    {"where", K(WHERE), rule_plain},
    {"max", K(MAX), rule_plain},
    {"min", K(MIN), rule_plain},
    {"neg", K(NEG), rule_plain},
    {"abs", K(ABS), rule_plain},
    {"sqrt", K(SQRT), rule_plain},
    {"exp", K(EXP), rule_plain},
    {"log", K(LOG), rule_plain},
    {"sin", K(SIN), rule_plain},
    {"cos", K(COS), rule_plain},
    {"tanh", K(TANH), rule_plain},
    {"sigmoid", K(SIGMOID), rule_plain},
    {"erf", K(ERF), rule_plain},
    {"relu", K(RELU), rule_plain},
    {"leaky_relu", K(LEAKY_RELU), rule_leaky_relu},
    {"gelu", K(GELU), rule_gelu},
    {"clip", K(CLIP), rule_plain},
    {"cast", K(CAST), rule_plain},
    {"expand", K(EXPAND), rule_expand},
    {"transpose", K(TRANSPOSE), rule_transpose},
    {"slice", K(SLICE), rule_slice},
    {"concat", K(CONCAT), rule_concat},
    {"split", K(SPLIT), rule_split},
    {"gather", K(GATHER), rule_axis_of_input},
    {"constant_of_shape", K(CONSTANT_OF_SHAPE), rule_constant_of_shape},
    {"range", K(RANGE), rule_plain},
    {"trilu", K(TRILU), rule_trilu},
    {"cumsum", K(CUMSUM), rule_cumsum},
    {"reduce_sum", K(REDUCE_SUM), rule_reduce},
    {"reduce_mean", K(REDUCE_MEAN), rule_reduce},
    {"reduce_max", K(REDUCE_MAX), rule_reduce},
    {"matmul", K(MATMUL), rule_plain},
    {"gemm", K(GEMM), rule_gemm},
    {"softmax", K(SOFTMAX), rule_axis_of_input},
    {"log_softmax", K(LOG_SOFTMAX), rule_axis_of_input},
    {"softmax_cross_entropy_loss", K(SOFTMAX_CROSS_ENTROPY_LOSS), rule_sce},
    {"conv", K(CONV), rule_conv},
    {"max_pool", K(MAX_POOL), rule_max_pool},
    {"average_pool", K(AVERAGE_POOL), rule_average_pool},
    {"global_average_pool", K(GLOBAL_AVERAGE_POOL), rule_plain},
    {"batch_normalization", K(BATCH_NORMALIZATION), rule_batch_norm},
    {"layer_normalization", K(LAYER_NORMALIZATION), rule_layer_norm},
    {"gather_grad", K(GATHER_GRAD), moai_lower_rule_gather_grad},
    {"slice_grad", K(SLICE_GRAD), moai_lower_rule_slice_grad},
    {"softmax_grad", K(SOFTMAX_GRAD), rule_axis_of_input},
    {"log_softmax_grad", K(LOG_SOFTMAX_GRAD), rule_axis_of_input},
    {"softmax_cross_entropy_loss_grad", K(SCE_GRAD), rule_sce},
    {"conv_grad_input", K(CONV_GRAD_INPUT), moai_lower_rule_conv_grad},
    {"conv_grad_weight", K(CONV_GRAD_WEIGHT), moai_lower_rule_conv_grad},
    {"max_pool_grad", K(MAX_POOL_GRAD), moai_lower_rule_pool_grad},
    {"average_pool_grad", K(AVERAGE_POOL_GRAD), moai_lower_rule_pool_grad},
    {"batch_normalization_grad", K(BATCH_NORM_GRAD), moai_lower_rule_batch_norm_grad},
    {"layer_normalization_grad", K(LAYER_NORM_GRAD), moai_lower_rule_layer_norm_grad},
    /* fused ops (moai-fuse) */
    {"attention", K(ATTENTION), rule_attention},
    {"attention_grad", K(ATTENTION_GRAD), rule_attention},
    {"rms_norm", K(RMS_NORM), rule_rms_norm},
    {"rms_norm_grad", K(RMS_NORM_GRAD), rule_rms_norm},
    {"swiglu", K(SWIGLU), rule_plain},
    {"swiglu_grad", K(SWIGLU_GRAD), rule_plain},
    {"rotary", K(ROTARY), rule_plain},
    {"rotary_grad", K(ROTARY_GRAD), rule_plain},
    /* collectives */
    {"all_reduce", K(ALL_REDUCE), rule_all_reduce},
    {"grad_ready", K(GRAD_READY), moai_lower_rule_grad_ready},
    /* training (lower_train.c) */
    {"accumulate", K(ADD), moai_lower_rule_accumulate},
    {"adamw", K(ADAMW), moai_lower_rule_optimizer},
    {"sgd", K(SGD), moai_lower_rule_optimizer},
    {"optimizer_finish", K(OPTIMIZER_FINISH), moai_lower_rule_optimizer_finish},
};
#undef K

const moai_lower_rule_t *moai_lower_rule_find(const char *mnemonic, size_t len) {
  for (size_t i = 0; i < sizeof(kRules) / sizeof(kRules[0]); ++i)
    if (strlen(kRules[i].mnemonic) == len &&
        memcmp(kRules[i].mnemonic, mnemonic, len) == 0)
      return &kRules[i];
  return NULL;
}
