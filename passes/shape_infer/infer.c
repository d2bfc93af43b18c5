/* The view of one op that the shape rules work on: operand and result
 * segments, attributes with the op table's defaults, result types, and the
 * table from op to rule. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/dialect.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"
#include "shape_infer/shape_infer.h"
#include "shape_infer/shape_infer_internal.h"

/* ---- diagnostics --------------------------------------------------------- */

bool si_error(si_op_t *si, const char *fmt, ...) {
  char msg[768];
  int n = snprintf(msg, sizeof(msg), "%s: ", si->type_name);
  if (n < 0) n = 0;
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, args);
  va_end(args);
  mlirEmitError(mlirOperationGetLocation(si->op), msg);
  return false;
}

typedef struct si_text_t {
  char *buf;
  size_t size, len;
} si_text_t;

static void text_append(MlirStringRef s, void *user_data) {
  si_text_t *t = user_data;
  for (size_t i = 0; i < s.length && t->len + 1 < t->size; ++i)
    t->buf[t->len++] = s.data[i];
  t->buf[t->len] = '\0';
}

const char *si_type_str(MlirType t, char *buf, size_t size) {
  si_text_t text = {buf, size, 0};
  if (size) buf[0] = '\0';
  if (mlirTypeIsNull(t)) {
    snprintf(buf, size, "none");
    return buf;
  }
  mlirTypePrint(t, text_append, &text);
  return buf;
}

const char *si_shape_str(const si_shape_t *s, char *buf, size_t size) {
  if (s->rank == SI_UNRANKED) {
    snprintf(buf, size, "unranked");
    return buf;
  }
  if (s->rank == 0) {
    snprintf(buf, size, "scalar");
    return buf;
  }
  size_t len = 0;
  buf[0] = '\0';
  for (int i = 0; i < s->rank && len + 1 < size; ++i) {
    int n = s->dims[i] == SI_DYN
                ? snprintf(buf + len, size - len, "%s?", i ? "x" : "")
                : snprintf(buf + len, size - len, "%s%lld", i ? "x" : "",
                           (long long)s->dims[i]);
    if (n < 0) break;
    len += (size_t)n;
  }
  return buf;
}

/* ---- element types and shapes ------------------------------------------- */

bool si_is_float(MlirType t) { return !mlirTypeIsNull(t) && mlirTypeIsAFloat(t); }

bool si_is_bool(MlirType t) {
  return !mlirTypeIsNull(t) && mlirTypeIsAInteger(t) &&
         mlirIntegerTypeGetWidth(t) == 1;
}

bool si_is_int(MlirType t) {
  return !mlirTypeIsNull(t) && mlirTypeIsAInteger(t) &&
         mlirIntegerTypeGetWidth(t) > 1;
}

bool si_is_numeric(MlirType t) { return si_is_float(t) || si_is_int(t); }

bool si_is_index_type(MlirType t) {
  return si_is_int(t) && !mlirIntegerTypeIsUnsigned(t) &&
         (mlirIntegerTypeGetWidth(t) == 32 || mlirIntegerTypeGetWidth(t) == 64);
}

bool si_is_i64(MlirType t) {
  return si_is_int(t) && !mlirIntegerTypeIsUnsigned(t) &&
         mlirIntegerTypeGetWidth(t) == 64;
}

void si_shape_unranked(si_shape_t *s) { s->rank = SI_UNRANKED; }

bool si_shape_is_static(const si_shape_t *s) {
  if (s->rank == SI_UNRANKED) return false;
  for (int i = 0; i < s->rank; ++i)
    if (s->dims[i] == SI_DYN) return false;
  return true;
}

int64_t si_shape_numel(const si_shape_t *s) {
  if (s->rank == SI_UNRANKED) return SI_DYN;
  int64_t n = 1;
  for (int i = 0; i < s->rank; ++i) {
    if (s->dims[i] == SI_DYN) return SI_DYN;
    if (s->dims[i] != 0 && n > INT64_MAX / s->dims[i]) return SI_DYN;
    n *= s->dims[i];
  }
  return n;
}

bool si_type_from_mlir(MlirType t, si_type_t *out) {
  if (mlirTypeIsNull(t)) return false;
  if (mlirTypeIsAUnrankedTensor(t)) {
    out->elem = mlirShapedTypeGetElementType(t);
    out->shape.rank = SI_UNRANKED;
    return true;
  }
  if (!mlirTypeIsARankedTensor(t)) return false;
  int64_t rank = mlirShapedTypeGetRank(t);
  if (rank > SI_MAX_RANK) return false;
  out->elem = mlirShapedTypeGetElementType(t);
  out->shape.rank = (int)rank;
  for (int i = 0; i < (int)rank; ++i)
    out->shape.dims[i] = mlirShapedTypeIsDynamicDim(t, i)
                             ? SI_DYN
                             : mlirShapedTypeGetDimSize(t, i);
  return true;
}

MlirType si_type_to_mlir(MlirType elem, const si_shape_t *s) {
  if (s->rank == SI_UNRANKED) return mlirUnrankedTensorTypeGet(elem);
  int64_t dims[SI_MAX_RANK];
  for (int i = 0; i < s->rank; ++i)
    dims[i] = s->dims[i] == SI_DYN ? mlirShapedTypeGetDynamicSize() : s->dims[i];
  return mlirRankedTensorTypeGet(s->rank, dims, elem, mlirAttributeGetNull());
}

bool si_broadcast(si_op_t *si, const si_shape_t *const *shapes, int n,
                  si_shape_t *out) {
  int rank = 0;
  for (int k = 0; k < n; ++k) {
    if (shapes[k]->rank == SI_UNRANKED) {
      si_shape_unranked(out);
      return true;
    }
    if (shapes[k]->rank > rank) rank = shapes[k]->rank;
  }
  out->rank = rank;
  for (int i = 0; i < rank; ++i) {
    int64_t known = 1; /* the dimension other than 1, if any */
    bool unknown = false;
    for (int k = 0; k < n; ++k) {
      int off = shapes[k]->rank - rank + i;
      if (off < 0) continue;
      int64_t d = shapes[k]->dims[off];
      if (d == SI_DYN) {
        unknown = true;
      } else if (d != 1) {
        if (known != 1 && known != d) {
          char text[1024];
          size_t len = 0;
          text[0] = '\0';
          for (int j = 0; j < n && len + 1 < sizeof(text); ++j) {
            char s[256];
            int w = snprintf(text + len, sizeof(text) - len, "%s%s",
                             j == 0 ? "" : (j == n - 1 ? " and " : ", "),
                             si_shape_str(shapes[j], s, sizeof(s)));
            if (w < 0) break;
            len += (size_t)w;
          }
          return si_error(si, "operands %s do not broadcast", text);
        }
        known = d;
      }
    }
    /* A known size other than 1 decides; an unknown one with only 1s
     * around could be anything. */
    out->dims[i] = known != 1 ? known : (unknown ? SI_DYN : 1);
  }
  return true;
}

bool si_same_elem(si_op_t *si, MlirType a, MlirType b, const char *what) {
  if (mlirTypeEqual(a, b)) return true;
  char x[64], y[64];
  return si_error(si, "%s have different element types %s and %s", what,
                  si_type_str(a, x, sizeof(x)), si_type_str(b, y, sizeof(y)));
}

bool si_axis(si_op_t *si, int64_t axis, int rank, int *out) {
  if (axis < -(int64_t)rank || axis >= rank)
    return si_error(si, "axis %lld out of range for rank %d", (long long)axis,
                    rank);
  *out = (int)(axis < 0 ? axis + rank : axis);
  return true;
}

bool si_axes_mask(si_op_t *si, const int64_t *axes, int n, int rank,
                  bool *mask) {
  for (int i = 0; i < SI_MAX_RANK; ++i) mask[i] = false;
  for (int i = 0; i < n; ++i) {
    int a;
    if (!si_axis(si, axes[i], rank, &a)) return false;
    if (mask[a])
      return si_error(si, "axis %lld appears twice", (long long)axes[i]);
    mask[a] = true;
  }
  return true;
}

/* ---- operands and results ----------------------------------------------- */

/* Splits `total` values into the definition's slots, from a segment-size
 * attribute when the definition needs one. */
static bool split_segments(si_op_t *si, const moai_value_def_t *defs,
                           int slots, bool needs_attr, const char *attr_name,
                           int total, int *start, int *len, const char *what) {
  if (needs_attr) {
    /* The attribute is at IRDL level (variadic entries expanded into
     * MOAI_VARIADIC_SLOTS optional slots); decode it to one count per
     * table entry. */
    MlirAttribute a = mlirOperationGetAttributeByName(
        si->op, mlirStringRefCreateFromCString(attr_name));
    bool results = defs == si->def->results;
    intptr_t n = mlirAttributeIsNull(a) || !mlirAttributeIsADenseI32Array(a)
                     ? -1
                     : mlirDenseArrayGetNumElements(a);
    int32_t sizes[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
    int32_t counts[MOAI_OP_MAX_OPERANDS];
    if (n < 0 || n > (intptr_t)(sizeof(sizes) / sizeof(sizes[0])))
      return si_error(si, "missing or malformed '%s' attribute", attr_name);
    for (intptr_t i = 0; i < n; ++i) sizes[i] = mlirDenseI32ArrayGetElement(a, i);
    if (!moai_op_def_decode_segments(si->def, results, sizes, (size_t)n, counts))
      return si_error(si, "'%s' does not fit the %s of the op", attr_name,
                      what);
    int pos = 0;
    for (int i = 0; i < slots; ++i) {
      start[i] = pos;
      len[i] = counts[i];
      pos += counts[i];
    }
    if (pos != total)
      return si_error(si, "'%s' does not fit the %s of the op", attr_name,
                      what);
    (void)defs;
    return true;
  }
  int singles = 0;
  for (int i = 0; i < slots; ++i)
    if (defs[i].arity == MOAI_ARITY_SINGLE) ++singles;
  int rest = total - singles;
  bool has_other = singles < slots;
  if (rest < 0 || (!has_other && rest != 0))
    return si_error(si, "expects %d %s, got %d", singles, what, total);
  int pos = 0;
  for (int i = 0; i < slots; ++i) {
    int n = defs[i].arity == MOAI_ARITY_SINGLE ? 1 : rest;
    if (defs[i].arity == MOAI_ARITY_OPTIONAL && n > 1)
      return si_error(si, "expects at most %d %s, got %d", singles + 1, what,
                      total);
    start[i] = pos;
    len[i] = n;
    pos += n;
  }
  return true;
}

bool si_op_init(si_op_t *si, MlirOperation op) {
  memset(si, 0, sizeof(*si));
  si->op = op;
  si->ctx = mlirOperationGetContext(op);
  si->value_dependency = -1;
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  si->def = moai_op_is_moai(op) ? moai_op_def_find(name.data, name.length)
                                : NULL;
  if (!si->def) {
    char msg[256];
    snprintf(msg, sizeof(msg), "'%.*s' is not a moai op known to shape "
             "inference", (int)name.length, name.data);
    mlirEmitError(mlirOperationGetLocation(op), msg);
    return false;
  }
  si->type_name = si->def->onnx_type ? si->def->onnx_type : si->def->name;
  intptr_t n_in = mlirOperationGetNumOperands(op);
  intptr_t n_out = mlirOperationGetNumResults(op);
  if (n_in > 1 << 20 || n_out > 1 << 20)
    return si_error(si, "too many operands or results");
  return split_segments(si, si->def->operands,
                        (int)moai_op_def_operand_count(si->def),
                        moai_op_def_needs_operand_segments(si->def),
                        "operandSegmentSizes", (int)n_in, si->in_start,
                        si->in_len, "operands") &&
         split_segments(si, si->def->results,
                        (int)moai_op_def_result_count(si->def),
                        moai_op_def_needs_result_segments(si->def),
                        "resultSegmentSizes", (int)n_out, si->out_start,
                        si->out_len, "results");
}

bool si_has(const si_op_t *si, int slot) { return si->in_len[slot] > 0; }

int si_operand_len(const si_op_t *si, int slot) { return si->in_len[slot]; }

int si_result_len(const si_op_t *si, int slot) { return si->out_len[slot]; }

MlirValue si_operand_at(const si_op_t *si, int slot, int k) {
  if (k >= si->in_len[slot]) return (MlirValue){NULL};
  return mlirOperationGetOperand(si->op, si->in_start[slot] + k);
}

MlirValue si_operand(const si_op_t *si, int slot) {
  return si_operand_at(si, slot, 0);
}

bool si_value_type(si_op_t *si, MlirValue v, const char *what,
                   si_type_t *out) {
  MlirType t = mlirValueGetType(v);
  if (si_type_from_mlir(t, out)) return true;
  char s[128];
  if (mlirTypeIsARankedTensor(t))
    return si_error(si, "operand '%s' has rank %lld; moai supports up to %d",
                    what, (long long)mlirShapedTypeGetRank(t), SI_MAX_RANK);
  return si_error(si, "operand '%s' is not a tensor (%s)", what,
                  si_type_str(t, s, sizeof(s)));
}

bool si_in_type(si_op_t *si, int slot, si_type_t *out) {
  if (!si_has(si, slot))
    return si_error(si, "missing operand '%s'", si->def->operands[slot].name);
  return si_value_type(si, si_operand(si, slot), si->def->operands[slot].name,
                       out);
}

/* The inferred shape, refined by what the existing type says where the
 * inference left a dimension (or the rank) unknown. A conflict keeps the
 * inferred shape: the existing type is only a hint. */
static void merge_existing(MlirType existing, si_shape_t *s) {
  si_type_t old;
  if (si_shape_is_static(s) || !si_type_from_mlir(existing, &old) ||
      old.shape.rank == SI_UNRANKED)
    return;
  if (s->rank == SI_UNRANKED) {
    *s = old.shape;
    return;
  }
  if (s->rank != old.shape.rank) return;
  for (int i = 0; i < s->rank; ++i)
    if (s->dims[i] != SI_DYN && old.shape.dims[i] != SI_DYN &&
        s->dims[i] != old.shape.dims[i])
      return;
  for (int i = 0; i < s->rank; ++i)
    if (s->dims[i] == SI_DYN) s->dims[i] = old.shape.dims[i];
}

void si_set_result(si_op_t *si, int slot, int k, MlirType elem,
                   const si_shape_t *shape) {
  if (k >= si->out_len[slot]) return;
  MlirValue v = mlirOperationGetResult(si->op, si->out_start[slot] + k);
  si_shape_t s = *shape;
  merge_existing(mlirValueGetType(v), &s);
  mlirValueSetType(v, si_type_to_mlir(elem, &s));
}

/* ---- attributes ---------------------------------------------------------- */

static MlirAttribute get_attr(si_op_t *si, const char *name) {
  return mlirOperationGetAttributeByName(si->op,
                                         mlirStringRefCreateFromCString(name));
}

/* The table's default text of an absent attribute: NULL when it has none
 * (*out_required tells whether it must be set). */
static const char *default_text(si_op_t *si, const char *name,
                                bool *out_required) {
  const moai_attr_def_t *d = moai_op_def_find_attr(si->def, name);
  *out_required = false;
  if (!d || !d->default_text) return NULL;
  if (strcmp(d->default_text, MOAI_ATTR_REQUIRED) == 0) {
    *out_required = true;
    return NULL;
  }
  return d->default_text;
}

/* Common handling of an absent attribute: true when a default was found
 * (text in *out_text) or it may be absent (*out_present false). */
static bool absent_attr(si_op_t *si, const char *name, const char **out_text,
                        bool *out_present) {
  bool required;
  *out_text = default_text(si, name, &required);
  if (*out_text) {
    if (out_present) *out_present = true;
    return true;
  }
  if (!required && out_present) {
    *out_present = false;
    return true;
  }
  return si_error(si, "missing attribute '%s'", name);
}

bool si_attr_int(si_op_t *si, const char *name, int64_t *out,
                 bool *out_present) {
  MlirAttribute a = get_attr(si, name);
  if (mlirAttributeIsNull(a)) {
    const char *text;
    if (!absent_attr(si, name, &text, out_present)) return false;
    if (text) *out = strtoll(text, NULL, 10);
    return true;
  }
  if (!mlirAttributeIsAInteger(a) ||
      !mlirTypeIsAInteger(mlirAttributeGetType(a)) ||
      mlirIntegerTypeGetWidth(mlirAttributeGetType(a)) > 64)
    return si_error(si, "attribute '%s' must be an integer", name);
  *out = mlirIntegerAttrGetValueInt(a);
  if (out_present) *out_present = true;
  return true;
}

bool si_attr_float(si_op_t *si, const char *name, double *out) {
  MlirAttribute a = get_attr(si, name);
  if (mlirAttributeIsNull(a)) {
    const char *text;
    if (!absent_attr(si, name, &text, NULL)) return false;
    *out = strtod(text, NULL);
    return true;
  }
  if (mlirAttributeIsAFloat(a)) {
    *out = mlirFloatAttrGetValueDouble(a);
    return true;
  }
  return si_error(si, "attribute '%s' must be a float", name);
}

bool si_attr_string(si_op_t *si, const char *name, char *buf, size_t size) {
  MlirAttribute a = get_attr(si, name);
  if (mlirAttributeIsNull(a)) {
    const char *text;
    if (!absent_attr(si, name, &text, NULL)) return false;
    snprintf(buf, size, "%s", text);
    return true;
  }
  if (!mlirAttributeIsAString(a))
    return si_error(si, "attribute '%s' must be a string", name);
  MlirStringRef s = mlirStringAttrGetValue(a);
  snprintf(buf, size, "%.*s", (int)s.length, s.data);
  return true;
}

bool si_attr_ints(si_op_t *si, const char *name, int64_t *buf, int cap,
                  int *out_n, bool *out_present) {
  MlirAttribute a = get_attr(si, name);
  *out_n = 0;
  if (mlirAttributeIsNull(a)) {
    const char *text;
    if (!absent_attr(si, name, &text, out_present)) return false;
    if (!text) return true;
    while (*text) {
      char *end;
      long long v = strtoll(text, &end, 10);
      if (end == text) break;
      if (*out_n >= cap)
        return si_error(si, "attribute '%s' has too many values", name);
      buf[(*out_n)++] = v;
      text = *end == ',' ? end + 1 : end;
    }
    return true;
  }
  bool i64 = mlirAttributeIsADenseI64Array(a);
  if (!i64 && !mlirAttributeIsADenseI32Array(a))
    return si_error(si, "attribute '%s' must be an array of integers", name);
  intptr_t n = mlirDenseArrayGetNumElements(a);
  if (n > cap)
    return si_error(si, "attribute '%s' has %lld values; at most %d allowed",
                    name, (long long)n, cap);
  for (intptr_t i = 0; i < n; ++i)
    buf[i] = i64 ? mlirDenseI64ArrayGetElement(a, i)
                 : mlirDenseI32ArrayGetElement(a, i);
  *out_n = (int)n;
  if (out_present) *out_present = true;
  return true;
}

bool si_attr_type(si_op_t *si, const char *name, MlirType *out) {
  MlirAttribute a = get_attr(si, name);
  if (mlirAttributeIsNull(a))
    return si_error(si, "missing attribute '%s'", name);
  if (!mlirAttributeIsAType(a))
    return si_error(si, "attribute '%s' must be a type", name);
  *out = mlirTypeAttrGetValue(a);
  return true;
}

bool si_attr_elements(si_op_t *si, const char *name, MlirAttribute *out) {
  MlirAttribute a = get_attr(si, name);
  *out = a;
  if (mlirAttributeIsNull(a)) {
    bool required;
    (void)default_text(si, name, &required);
    return required ? si_error(si, "missing attribute '%s'", name) : true;
  }
  if (!mlirAttributeIsADenseIntElements(a) &&
      !mlirAttributeIsADenseFPElements(a))
    return si_error(si, "attribute '%s' must be a dense tensor of numbers",
                    name);
  return true;
}

/* ---- the rule table ------------------------------------------------------ */

typedef struct si_rule_entry_t {
  const char *name;
  si_rule_fn fn;
} si_rule_entry_t;

static const si_rule_entry_t kRules[] = {
    {"weight", si_rule_weight},
    {"state", si_rule_weight},
    {"accumulate", si_rule_no_results},
    {"adamw", si_rule_no_results},
    {"sgd", si_rule_no_results},
    {"optimizer_finish", si_rule_no_results},
    {"grad_ready", si_rule_grad_ready},
    {"constant", si_rule_constant},
    {"constant_of_shape", si_rule_constant_of_shape},
    {"shape", si_rule_shape},
    {"gather", si_rule_gather},
    {"unsqueeze", si_rule_unsqueeze},
    {"squeeze", si_rule_squeeze},
    {"reshape", si_rule_reshape},
    {"transpose", si_rule_transpose},
    {"concat", si_rule_concat},
    {"slice", si_rule_slice},
    {"expand", si_rule_expand},
    {"where", si_rule_where},
    {"equal", si_rule_equal},
    {"less", si_rule_compare},
    {"less_or_equal", si_rule_compare},
    {"greater", si_rule_compare},
    {"greater_or_equal", si_rule_compare},
    {"and", si_rule_logic},
    {"or", si_rule_logic},
    {"not", si_rule_not},
    {"cast", si_rule_cast},
    {"add", si_rule_binary_arith},
    {"sub", si_rule_binary_arith},
    {"mul", si_rule_binary_arith},
    {"div", si_rule_binary_arith},
    {"pow", si_rule_pow},
    {"sqrt", si_rule_unary_float},
    {"neg", si_rule_unary_numeric},
    {"cos", si_rule_unary_float},
    {"sin", si_rule_unary_float},
    {"exp", si_rule_unary_float},
    {"log", si_rule_unary_float},
    {"sigmoid", si_rule_unary_float},
    {"tanh", si_rule_unary_float},
    {"erf", si_rule_unary_float},
    {"relu", si_rule_unary_numeric},
    {"abs", si_rule_unary_numeric},
    {"leaky_relu", si_rule_unary_float},
    {"gelu", si_rule_unary_float},
    {"matmul", si_rule_matmul},
    {"gemm", si_rule_gemm},
    {"reduce_mean", si_rule_reduce},
    {"reduce_sum", si_rule_reduce},
    {"reduce_max", si_rule_reduce},
    {"softmax", si_rule_softmax},
    {"log_softmax", si_rule_softmax},
    {"softmax_cross_entropy_loss", si_rule_sce_loss},
    {"trilu", si_rule_trilu},
    {"range", si_rule_range},
    {"cumsum", si_rule_cumsum},
    {"identity", si_rule_unary_any},
    {"conv", si_rule_conv},
    {"max_pool", si_rule_pool},
    {"average_pool", si_rule_pool},
    {"global_average_pool", si_rule_global_pool},
    {"batch_normalization", si_rule_batch_norm},
    {"layer_normalization", si_rule_layer_norm},
    {"conv_grad_input", si_rule_conv_grad},
    {"conv_grad_weight", si_rule_conv_grad},
    {"max_pool_grad", si_rule_max_pool_grad},
    {"average_pool_grad", si_rule_average_pool_grad},
    {"batch_normalization_grad", si_rule_batch_norm_grad},
    {"layer_normalization_grad", si_rule_layer_norm_grad},
    {"flatten", si_rule_flatten},
    {"dropout", si_rule_dropout},
    {"clip", si_rule_clip},
    {"split", si_rule_split},
    {"max", si_rule_variadic},
    {"min", si_rule_variadic},
    {"gather_grad", si_rule_gather_grad},
    {"slice_grad", si_rule_slice_grad},
    {"softmax_grad", si_rule_softmax_grad},
    {"log_softmax_grad", si_rule_softmax_grad},
    {"softmax_cross_entropy_loss_grad", si_rule_sce_grad},
    {"all_reduce", si_rule_all_reduce},
    {"tp_copy", si_rule_unary_any},
    {"attention", si_rule_attention},
    {"attention_grad", si_rule_attention_grad},
    {"rms_norm", si_rule_rms_norm},
    {"rms_norm_grad", si_rule_rms_norm_grad},
    {"swiglu", si_rule_swiglu},
    {"swiglu_grad", si_rule_swiglu_grad},
    {"rotary", si_rule_rotary},
    {"rotary_grad", si_rule_rotary_grad},
};

static si_rule_fn find_rule(const char *name) {
  for (size_t i = 0; i < sizeof(kRules) / sizeof(kRules[0]); ++i)
    if (strcmp(kRules[i].name, name) == 0) return kRules[i].fn;
  return NULL;
}

bool si_infer(MlirOperation op, int *out_value_dependency) {
  *out_value_dependency = -1;
  if (mlirOperationIsNull(op)) return false;
  si_op_t si;
  if (!si_op_init(&si, op)) return false;
  si_rule_fn rule = find_rule(si.def->name);
  if (!rule) return si_error(&si, "no shape inference rule");
  bool ok = rule(&si);
  *out_value_dependency = si.value_dependency;
  return ok;
}

bool moai_shape_infer_op(MlirOperation op) {
  int dependency;
  return si_infer(op, &dependency);
}
