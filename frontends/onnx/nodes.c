/* Nodes -> moai ops, in graph order. Operands and results are matched to the
 * op table's entries (optional ones given as "" or left off at the end are
 * absent); result types start from the model's value_info and are then
 * inferred by moai_shape_infer_op, and the two must agree. Nodes of older
 * opsets are upgraded to their opset-21 form on the way (upgrade.c). */
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "onnx/importer.h"
#include "shape_infer/shape_infer.h"

static bool is_empty(const char *s) { return !s || !*s; }

/* "node 'x' (Add)", "a graph input" or "an initializer", for errors. */
static void describe_definer(const moai_onnx_importer_t *im, long index,
                             char *buf, size_t size) {
  if (index == MOAI_ONNX_DEF_INPUT) {
    snprintf(buf, size, "a graph input");
  } else if (index == MOAI_ONNX_DEF_INITIALIZER) {
    snprintf(buf, size, "an initializer");
  } else {
    const Onnx__NodeProto *p = im->graph->node[index];
    const char *op = moai_onnx_str(p->op_type);
    if (is_empty(p->name))
      snprintf(buf, size, "node '%s_%ld' (%s)", op, index, op);
    else
      snprintf(buf, size, "node '%s' (%s)", p->name, op);
  }
}

static moai_status_t lookup_input(moai_onnx_importer_t *im,
                                  const moai_onnx_node_t *node,
                                  const char *name, MlirValue *out) {
  const moai_onnx_name_entry_t *e = moai_onnx_name_map_find(&im->values, name);
  if (!e)
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_INVALID_ARGUMENT,
        "input '%s' is not defined by any earlier node, "
        "input or initializer",
        name);
  *out = e->value;
  return moai_ok_status();
}

moai_status_t moai_onnx_build_constant(moai_onnx_importer_t *im,
                                       const moai_onnx_node_t *node,
                                       MlirLocation loc, MlirAttribute value,
                                       MlirValue *out_value) {
  MlirType type = mlirAttributeGetType(value);
  MlirNamedAttribute attr = moai_onnx_named(im->ctx, "value", value);
  MlirOperationState state = mlirOperationStateGet(
      mlirStringRefCreateFromCString("moai.constant"), loc);
  mlirOperationStateAddResults(&state, 1, &type);
  mlirOperationStateAddAttributes(&state, 1, &attr);
  MlirOperation op = moai_onnx_append_op(im, &state);
  if (mlirOperationIsNull(op))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INTERNAL,
                                "could not create a constant operand");
  *out_value = mlirOperationGetResult(op, 0);
  return moai_ok_status();
}

/* Matches the node's inputs to the op's operands: values into
 * im->scratch_values (with room for the upgrade's), the count of each
 * operand entry into `segments`. An older form takes at most `max_inputs`. */
static moai_status_t gather_operands(moai_onnx_importer_t *im,
                                     const moai_onnx_node_t *node,
                                     size_t max_inputs, size_t *out_count,
                                     int32_t *segments) {
  const moai_op_def_t *def = node->def;
  const Onnx__NodeProto *p = node->proto;
  size_t n_defs = moai_op_def_operand_count(def);
  size_t n_in = p->n_input;
  size_t variadic = n_defs;
  for (size_t i = 0; i < n_defs; ++i)
    if (def->operands[i].arity == MOAI_ARITY_VARIADIC) variadic = i;
  size_t max_in = max_inputs < n_defs ? max_inputs : n_defs;
  if (variadic == n_defs && n_in > max_in && max_in < n_defs)
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "has %zu inputs, %s takes at most %zu at "
                                "opset %lld",
                                n_in, node->op_type, max_in,
                                (long long)im->opset);
  if (variadic == n_defs && n_in > max_in)
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "has %zu inputs, %s takes at most %zu", n_in,
                                node->op_type, max_in);
  MOAI_RETURN_IF_ERROR(
      moai_onnx_scratch_reserve(im, &im->scratch_values, sizeof(MlirValue),
                                n_in + MOAI_OP_MAX_OPERANDS + 1));
  MlirValue *values = im->scratch_values.data;
  size_t count = 0, next = 0;
  for (size_t i = 0; i < n_defs; ++i) {
    /* A variadic entry takes the inputs the entries after it leave over. */
    size_t want = 1;
    if (i == variadic) {
      size_t after = n_defs - i - 1;
      want = n_in > next + after ? n_in - next - after : 0;
      if (want == 0)
        return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                    "needs at least one '%s' input",
                                    def->operands[i].name);
    }
    segments[i] = 0;
    if (i >= max_in) continue; /* the upgrade supplies the rest */
    for (size_t k = 0; k < want; ++k, ++next) {
      const char *name = next < n_in ? p->input[next] : NULL;
      if (is_empty(name)) {
        if (def->operands[i].arity == MOAI_ARITY_OPTIONAL) continue;
        return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                    "input %zu ('%s') is missing", next,
                                    def->operands[i].name);
      }
      MOAI_RETURN_IF_ERROR(lookup_input(im, node, name, &values[count]));
      ++count;
      ++segments[i];
    }
  }
  *out_count = count;
  return moai_ok_status();
}

/* The type a result starts with: the value_info's when static, else an
 * unranked placeholder (of the declared element type when known). */
static moai_status_t initial_type(moai_onnx_importer_t *im, const char *name,
                                  MlirType *out) {
  const moai_onnx_name_entry_t *e =
      moai_onnx_name_map_find(&im->value_infos, name);
  const Onnx__TypeProto *tp =
      e ? ((const Onnx__ValueInfoProto *)e->ptr)->type : NULL;
  MOAI_RETURN_IF_ERROR(moai_onnx_type_static(im, tp, out));
  if (!mlirTypeIsNull(*out)) return moai_ok_status();
  moai_dtype_t dtype = moai_onnx_type_dtype(tp);
  *out = mlirUnrankedTensorTypeGet(moai_dtype_to_mlir(
      im->ctx, dtype == MOAI_DTYPE_UNDEFINED ? MOAI_DTYPE_F32 : dtype));
  return moai_ok_status();
}

/* Matches the node's outputs to the op's results: types into
 * im->scratch_types, the count of each result entry into `segments`. */
static moai_status_t gather_results(moai_onnx_importer_t *im,
                                    const moai_onnx_node_t *node,
                                    size_t *out_count, int32_t *segments) {
  const moai_op_def_t *def = node->def;
  const Onnx__NodeProto *p = node->proto;
  size_t n_defs = moai_op_def_result_count(def);
  size_t n_out = p->n_output;
  bool variadic = n_defs == 1 && def->results[0].arity == MOAI_ARITY_VARIADIC;
  /* Outputs named "" past the op's results are absent optional ones (an
   * opset 9 BatchNormalization's saved_mean and saved_var). */
  while (!variadic && n_out > n_defs && is_empty(p->output[n_out - 1])) --n_out;
  if (!variadic && n_out > n_defs)
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "has %zu outputs, %s has at most %zu", n_out,
                                node->op_type, n_defs);
  MOAI_RETURN_IF_ERROR(moai_onnx_scratch_reserve(im, &im->scratch_types,
                                                 sizeof(MlirType), n_out + 1));
  MlirType *types = im->scratch_types.data;
  size_t count = 0;
  for (size_t i = 0; i < (variadic ? n_out : n_defs); ++i) {
    const char *name = i < n_out ? p->output[i] : NULL;
    moai_arity_t arity = def->results[variadic ? 0 : i].arity;
    if (!variadic) segments[i] = 0;
    if (is_empty(name)) {
      if (arity == MOAI_ARITY_OPTIONAL) continue;
      return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                  "output %zu ('%s') is missing", i,
                                  def->results[variadic ? 0 : i].name);
    }
    MOAI_RETURN_IF_ERROR(initial_type(im, name, &types[count]));
    ++count;
    segments[variadic ? 0 : i] = variadic ? (int32_t)count : 1;
  }
  if (count == 0)
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "has no outputs");
  *out_count = count;
  return moai_ok_status();
}

/* Compares an inferred type with the model's value_info for `name`: they
 * must agree; a static value_info shape fills in what inference left open. */
static moai_status_t check_declared(moai_onnx_importer_t *im,
                                    const moai_onnx_node_t *node,
                                    const char *name, MlirValue value) {
  const moai_onnx_name_entry_t *e =
      moai_onnx_name_map_find(&im->value_infos, name);
  if (!e) return moai_ok_status();
  const Onnx__TypeProto *tp = ((const Onnx__ValueInfoProto *)e->ptr)->type;
  MlirType inferred = mlirValueGetType(value);
  if (!mlirTypeIsAShaped(inferred)) return moai_ok_status();
  moai_dtype_t want = moai_onnx_type_dtype(tp);
  moai_dtype_t got =
      moai_dtype_from_mlir(mlirShapedTypeGetElementType(inferred));
  if (want != MOAI_DTYPE_UNDEFINED && got != MOAI_DTYPE_UNDEFINED &&
      want != got)
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_INVALID_ARGUMENT,
        "output '%s': dtype %s from value_info disagrees "
        "with inferred %s",
        name, moai_dtype_name(want), moai_dtype_name(got));
  MlirType declared;
  MOAI_RETURN_IF_ERROR(moai_onnx_type_static(im, tp, &declared));
  if (mlirTypeIsNull(declared) || mlirTypeEqual(declared, inferred))
    return moai_ok_status();
  bool agree = true;
  if (mlirShapedTypeHasRank(inferred)) {
    int64_t rank = mlirShapedTypeGetRank(inferred);
    agree = rank == mlirShapedTypeGetRank(declared);
    for (int64_t i = 0; agree && i < rank; ++i) {
      int64_t d = mlirShapedTypeGetDimSize(inferred, (intptr_t)i);
      agree = mlirShapedTypeIsDynamicSize(d) ||
              d == mlirShapedTypeGetDimSize(declared, (intptr_t)i);
    }
  }
  if (!agree) {
    char want_shape[128], got_shape[128];
    moai_onnx_format_shape(declared, want_shape, sizeof(want_shape));
    moai_onnx_format_shape(inferred, got_shape, sizeof(got_shape));
    return MOAI_ONNX_NODE_ERROR(
        im, node, MOAI_INVALID_ARGUMENT,
        "output '%s': shape %s from value_info disagrees "
        "with inferred %s",
        name, want_shape, got_shape);
  }
  if (!mlirShapedTypeHasRank(inferred) ||
      !mlirShapedTypeHasStaticShape(inferred))
    mlirValueSetType(value, declared);
  return moai_ok_status();
}

/* Runs shape inference on `op`, turning its diagnostic into a status. */
static moai_status_t infer(moai_onnx_importer_t *im,
                           const moai_onnx_node_t *node, MlirOperation op) {
  size_t errors = im->diag.error_count;
  if (moai_shape_infer_op(op) && im->diag.error_count == errors)
    return moai_ok_status();
  char fallback[512];
  snprintf(fallback, sizeof(fallback),
           "%s: node '%s' (%s): shape inference failed", im->path, node->name,
           node->op_type);
  return moai_diag_take_status(&im->diag, MOAI_INVALID_ARGUMENT, fallback);
}

/* Infers, checks and maps the op's results to the node's outputs. */
static moai_status_t define_outputs(moai_onnx_importer_t *im,
                                    const moai_onnx_node_t *node,
                                    MlirOperation op) {
  MOAI_RETURN_IF_ERROR(infer(im, node, op));
  const Onnx__NodeProto *p = node->proto;
  intptr_t r = 0;
  for (size_t i = 0; i < p->n_output; ++i) {
    const char *name = p->output[i];
    if (is_empty(name)) continue;
    if (r >= mlirOperationGetNumResults(op))
      return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INTERNAL,
                                  "output '%s' has no result", name);
    MlirValue value = mlirOperationGetResult(op, r++);
    moai_onnx_name_entry_t *e;
    bool existed;
    MOAI_RETURN_IF_ERROR(
        moai_onnx_name_map_insert(&im->values, name, &e, &existed));
    if (existed) {
      char other[256];
      describe_definer(im, e->index, other, sizeof(other));
      return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                  "output '%s' is already defined by %s", name,
                                  other);
    }
    e->value = value;
    e->index = node->index;
    MOAI_RETURN_IF_ERROR(check_declared(im, node, name, value));
  }
  return moai_ok_status();
}

static moai_status_t import_constant(moai_onnx_importer_t *im,
                                     const moai_onnx_node_t *node,
                                     MlirLocation loc) {
  const Onnx__NodeProto *p = node->proto;
  if (p->n_input)
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "has %zu inputs, Constant takes none",
                                p->n_input);
  if (p->n_output != 1 || is_empty(p->output[0]))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INVALID_ARGUMENT,
                                "needs exactly one output");
  MlirAttribute value;
  MOAI_RETURN_IF_ERROR(moai_onnx_constant_node_value(im, node, &value));
  MlirType type = mlirAttributeGetType(value);
  MlirNamedAttribute attr = moai_onnx_named(im->ctx, "value", value);
  MlirOperationState state = mlirOperationStateGet(
      mlirStringRefCreateFromCString("moai.constant"), loc);
  mlirOperationStateAddResults(&state, 1, &type);
  mlirOperationStateAddAttributes(&state, 1, &attr);
  MlirOperation op = moai_onnx_append_op(im, &state);
  if (mlirOperationIsNull(op))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INTERNAL,
                                "could not create its op");
  return define_outputs(im, node, op);
}

/* The op's operands, results and attributes as table-level lists. */
typedef struct op_parts_t {
  const MlirValue *operands;
  size_t n_operands;
  const int32_t *operand_counts; /* one per table entry */
  const MlirType *types;
  size_t n_types;
  const int32_t *result_counts;
  const MlirNamedAttribute *attrs;
  size_t n_attrs;
} op_parts_t;

/* Adds `name` (operandSegmentSizes/resultSegmentSizes) in the IRDL-level
 * encoding when the definition needs it; false when a count does not fit. */
static bool add_segments(MlirContext ctx, const moai_op_def_t *def,
                         bool results, const int32_t *counts,
                         MlirNamedAttribute *attrs, size_t *inout_n) {
  bool needed = results ? moai_op_def_needs_result_segments(def)
                        : moai_op_def_needs_operand_segments(def);
  if (!needed) return true;
  int32_t sizes[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
  size_t n = 0;
  if (!moai_op_def_encode_segments(def, results, counts, sizes,
                                   sizeof(sizes) / sizeof(sizes[0]), &n))
    return false;
  attrs[(*inout_n)++] = moai_onnx_named(
      ctx, results ? "resultSegmentSizes" : "operandSegmentSizes",
      mlirDenseI32ArrayGet(ctx, (intptr_t)n, sizes));
  return true;
}

static moai_status_t create_op(moai_onnx_importer_t *im,
                               const moai_onnx_node_t *node, MlirLocation loc,
                               const op_parts_t *parts, MlirOperation *out) {
  const moai_op_def_t *def = node->def;
  MlirNamedAttribute attrs[MOAI_OP_MAX_ATTRS + 2];
  size_t n_attrs = parts->n_attrs;
  memcpy(attrs, parts->attrs, n_attrs * sizeof(attrs[0]));
  if (!add_segments(im->ctx, def, false, parts->operand_counts, attrs,
                    &n_attrs))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_UNIMPLEMENTED,
                                "has %zu inputs; moai's %s takes at most %d",
                                node->proto->n_input, node->op_type,
                                MOAI_VARIADIC_SLOTS);
  if (!add_segments(im->ctx, def, true, parts->result_counts, attrs, &n_attrs))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_UNIMPLEMENTED,
                                "has %zu outputs; moai's %s has at most %d",
                                node->proto->n_output, node->op_type,
                                MOAI_VARIADIC_SLOTS);
  char op_name[64];
  snprintf(op_name, sizeof(op_name), "moai.%s", def->name);
  MlirOperationState state =
      mlirOperationStateGet(mlirStringRefCreateFromCString(op_name), loc);
  mlirOperationStateAddOperands(&state, (intptr_t)parts->n_operands,
                                parts->operands);
  mlirOperationStateAddResults(&state, (intptr_t)parts->n_types, parts->types);
  mlirOperationStateAddAttributes(&state, (intptr_t)n_attrs, attrs);
  *out = moai_onnx_append_op(im, &state);
  if (mlirOperationIsNull(*out))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INTERNAL,
                                "could not create its op");
  return moai_ok_status();
}

/* IRDL gives a variadic operand MOAI_VARIADIC_SLOTS slots. An op whose only
 * operand is variadic and that is associative (Concat along one axis, Max,
 * Min) takes more inputs as a chain: each link combines up to that many
 * values, the first being the previous link's result. Leaves the last
 * link's operands in im->scratch_values. */
static moai_status_t chain_variadic(moai_onnx_importer_t *im,
                                    const moai_onnx_node_t *node,
                                    MlirLocation loc, op_parts_t *parts,
                                    int32_t *operand_counts) {
  const moai_op_def_t *def = node->def;
  if (parts->n_operands <= MOAI_VARIADIC_SLOTS ||
      moai_op_def_operand_count(def) != 1 ||
      def->operands[0].arity != MOAI_ARITY_VARIADIC ||
      moai_op_def_result_count(def) != 1)
    return moai_ok_status(); /* create_op reports what does not fit */
  MlirValue *values = im->scratch_values.data;
  size_t count = parts->n_operands;
  while (count > MOAI_VARIADIC_SLOTS) {
    MlirType elem = mlirShapedTypeGetElementType(mlirValueGetType(values[0]));
    MlirType type = mlirUnrankedTensorTypeGet(elem);
    int32_t link_counts[1] = {MOAI_VARIADIC_SLOTS};
    int32_t result_counts[1] = {1};
    op_parts_t link = *parts;
    link.operands = values;
    link.n_operands = MOAI_VARIADIC_SLOTS;
    link.operand_counts = link_counts;
    link.types = &type;
    link.n_types = 1;
    link.result_counts = result_counts;
    MlirOperation op;
    MOAI_RETURN_IF_ERROR(create_op(im, node, loc, &link, &op));
    MOAI_RETURN_IF_ERROR(infer(im, node, op));
    values[0] = mlirOperationGetResult(op, 0);
    memmove(values + 1, values + MOAI_VARIADIC_SLOTS,
            (count - MOAI_VARIADIC_SLOTS) * sizeof(MlirValue));
    count -= MOAI_VARIADIC_SLOTS - 1;
  }
  parts->n_operands = count;
  operand_counts[0] = (int32_t)count;
  return moai_ok_status();
}

moai_status_t moai_onnx_build_op(moai_onnx_importer_t *im,
                                 const moai_onnx_node_t *node, MlirLocation loc,
                                 const char *mnemonic,
                                 const MlirValue *operands, size_t n,
                                 const MlirNamedAttribute *attrs,
                                 size_t n_attrs, MlirOperation *out_op) {
  moai_onnx_node_t part = *node;
  part.def = moai_op_def_find(mnemonic, strlen(mnemonic));
  if (!part.def || n == 0 || n > MOAI_OP_MAX_OPERANDS ||
      n_attrs > MOAI_OP_MAX_ATTRS || n != moai_op_def_operand_count(part.def))
    return MOAI_ONNX_NODE_ERROR(im, node, MOAI_INTERNAL,
                                "cannot build moai.%s from %zu operands",
                                mnemonic, n);
  int32_t operand_counts[MOAI_OP_MAX_OPERANDS], result_counts[1] = {1};
  for (size_t i = 0; i < n; ++i) operand_counts[i] = 1;
  MlirType type = mlirUnrankedTensorTypeGet(
      mlirShapedTypeGetElementType(mlirValueGetType(operands[0])));
  op_parts_t parts = {.operands = operands,
                      .n_operands = n,
                      .operand_counts = operand_counts,
                      .types = &type,
                      .n_types = 1,
                      .result_counts = result_counts,
                      .attrs = attrs,
                      .n_attrs = n_attrs};
  MOAI_RETURN_IF_ERROR(create_op(im, &part, loc, &parts, out_op));
  return infer(im, node, *out_op);
}

static moai_status_t import_op(moai_onnx_importer_t *im,
                               const moai_onnx_node_t *node, MlirLocation loc) {
  moai_onnx_upgrade_t up;
  MOAI_RETURN_IF_ERROR(moai_onnx_upgrade_plan(im, node, &up));
  MlirNamedAttribute attrs[MOAI_OP_MAX_ATTRS];
  int32_t operand_counts[MOAI_OP_MAX_OPERANDS] = {0};
  int32_t result_counts[MOAI_OP_MAX_RESULTS] = {0};
  moai_onnx_op_inputs_t in = {.segments = operand_counts, .attrs = attrs};
  MOAI_RETURN_IF_ERROR(moai_onnx_node_attributes(im, node, attrs, &in.n_attrs,
                                                 up.legacy, up.n_legacy));
  MOAI_RETURN_IF_ERROR(
      gather_operands(im, node, up.max_inputs, &in.n_values, operand_counts));
  in.values = im->scratch_values.data;
  MlirOperation op = {NULL};
  MOAI_RETURN_IF_ERROR(moai_onnx_upgrade_apply(im, node, loc, &up, &in, &op));
  if (!mlirOperationIsNull(op)) return define_outputs(im, node, op);
  op_parts_t parts = {.n_operands = in.n_values,
                      .operand_counts = operand_counts,
                      .result_counts = result_counts,
                      .attrs = attrs,
                      .n_attrs = in.n_attrs};
  MOAI_RETURN_IF_ERROR(chain_variadic(im, node, loc, &parts, operand_counts));
  size_t n_results = 0;
  MOAI_RETURN_IF_ERROR(gather_results(im, node, &n_results, result_counts));
  parts.operands = im->scratch_values.data;
  parts.types = im->scratch_types.data;
  parts.n_types = n_results;
  MOAI_RETURN_IF_ERROR(create_op(im, node, loc, &parts, &op));
  return define_outputs(im, node, op);
}

moai_status_t moai_onnx_import_node(moai_onnx_importer_t *im, long index) {
  moai_onnx_node_t node = {.proto = im->graph->node[index], .index = index};
  const Onnx__NodeProto *p = node.proto;
  node.op_type = moai_onnx_str(p->op_type);
  if (is_empty(p->name)) {
    snprintf(node.name_buf, sizeof(node.name_buf), "%s_%ld", node.op_type,
             index);
    node.name = node.name_buf;
  } else {
    node.name = p->name;
  }
  if (!*node.op_type)
    return MOAI_ONNX_NODE_ERROR(im, &node, MOAI_INVALID_ARGUMENT,
                                "has no op type");
  const char *domain = moai_onnx_str(p->domain);
  if (*domain && strcmp(domain, "ai.onnx") != 0)
    return MOAI_ONNX_NODE_ERROR(
        im, &node, MOAI_UNIMPLEMENTED,
        "unsupported op %s from domain '%s' (ai.onnx opset "
        "%lld)",
        node.op_type, domain, (long long)im->opset);
  MlirLocation loc =
      moai_loc_node(im->ctx, im->path, node.name, node.op_type, index);
  if (strcmp(node.op_type, "Constant") == 0)
    return import_constant(im, &node, loc);
  node.def = moai_op_def_find_onnx(node.op_type);
  if (!node.def)
    return MOAI_ONNX_NODE_ERROR(im, &node, MOAI_UNIMPLEMENTED,
                                "unsupported op %s (opset %lld)", node.op_type,
                                (long long)im->opset);
  if (node.def->min_opset > im->opset)
    return MOAI_ONNX_NODE_ERROR(
        im, &node, MOAI_UNIMPLEMENTED,
        "op %s needs opset %d or later, the model imports "
        "opset %lld",
        node.op_type, node.def->min_opset, (long long)im->opset);
  return import_op(im, &node, loc);
}
