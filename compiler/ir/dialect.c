#include "dialect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op_defs.h"
#include "ir/strbuf.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Dialect/IRDL.h"
#include "mlir-c/RegisterEverything.h"

/* Every operand, result and attribute gets its own constraint value: IRDL
 * forces two operands sharing one constraint SSA value to the same type. */
static const char *attr_base(moai_attr_kind_t kind) {
  switch (kind) {
    case MOAI_ATTR_INT: return "#builtin.integer";
    case MOAI_ATTR_FLOAT: return "#builtin.float";
    case MOAI_ATTR_STRING: return "#builtin.string";
    case MOAI_ATTR_INTS: return "#builtin.dense_array";
    case MOAI_ATTR_FLOATS: return "#builtin.dense_array";
    case MOAI_ATTR_TENSOR: return "#builtin.dense_int_or_fp_elements";
    case MOAI_ATTR_TYPE: return "#builtin.type";
  }
  return "#builtin.unit";
}

/* Emits one IRDL value slot with its own constraint (%<prefix><k>). */
static void emit_slot_constraint(moai_strbuf_t *sb, char prefix, size_t k) {
  moai_strbuf_appendf(sb,
                      "    %%%c%zur = irdl.base \"!builtin.tensor\"\n"
                      "    %%%c%zuu = irdl.base \"!builtin.unranked_tensor\"\n"
                      "    %%%c%zu = irdl.any_of(%%%c%zur, %%%c%zuu)\n",
                      prefix, k, prefix, k, prefix, k, prefix, k, prefix, k);
}

/* A variadic table entry becomes MOAI_VARIADIC_SLOTS optional slots, each
 * with its own constraint (see op_defs.h for why). */
static void emit_values(moai_strbuf_t *sb, const char *keyword,
                        const moai_value_def_t *values, size_t count,
                        char prefix) {
  size_t slots = 0;
  for (size_t i = 0; i < count; ++i)
    slots += values[i].arity == MOAI_ARITY_VARIADIC ? MOAI_VARIADIC_SLOTS : 1;
  for (size_t k = 0; k < slots; ++k) emit_slot_constraint(sb, prefix, k);
  moai_strbuf_appendf(sb, "    irdl.%s(", keyword);
  size_t k = 0;
  for (size_t i = 0; i < count; ++i) {
    if (values[i].arity == MOAI_ARITY_VARIADIC) {
      for (int j = 0; j < MOAI_VARIADIC_SLOTS; ++j, ++k)
        moai_strbuf_appendf(sb, "%s%s_%d: optional %%%c%zu", k ? ", " : "",
                            values[i].name, j, prefix, k);
      continue;
    }
    const char *arity =
        values[i].arity == MOAI_ARITY_OPTIONAL ? "optional " : "";
    moai_strbuf_appendf(sb, "%s%s: %s%%%c%zu", k ? ", " : "", values[i].name,
                        arity, prefix, k);
    ++k;
  }
  moai_strbuf_append(sb, ")\n");
}

static void emit_op(moai_strbuf_t *sb, const moai_op_def_t *def) {
  moai_strbuf_appendf(sb, "  irdl.operation @%s {\n", def->name);
  size_t n_operands = moai_op_def_operand_count(def);
  size_t n_results = moai_op_def_result_count(def);
  if (n_operands) emit_values(sb, "operands", def->operands, n_operands, 'o');
  emit_values(sb, "results", def->results, n_results, 'r');
  /* Only attributes with a default are declared: the importer always sets
   * them, so IRDL can verify their presence and kind. Optional ones are
   * checked by the passes that read them. */
  size_t declared = 0;
  for (size_t i = 0; i < MOAI_OP_MAX_ATTRS && def->attrs[i].name; ++i) {
    if (!def->attrs[i].default_text) continue;
    moai_strbuf_appendf(sb, "    %%a%zu = irdl.base \"%s\"\n", i,
                        attr_base(def->attrs[i].kind));
    ++declared;
  }
  if (declared) {
    moai_strbuf_append(sb, "    irdl.attributes {");
    size_t k = 0;
    for (size_t i = 0; i < MOAI_OP_MAX_ATTRS && def->attrs[i].name; ++i) {
      if (!def->attrs[i].default_text) continue;
      moai_strbuf_appendf(sb, "%s\"%s\" = %%a%zu", k++ ? ", " : "",
                          def->attrs[i].name, i);
    }
    moai_strbuf_append(sb, "}\n");
  }
  moai_strbuf_append(sb, "  }\n");
}

moai_status_t moai_dialect_irdl_text(moai_allocator_t allocator,
                                     char **out_text) {
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, allocator);
  moai_strbuf_append(&sb,
                     "// The moai dialect, generated from compiler/ir/"
                     "op_defs.c. Do not edit.\nirdl.dialect @moai {\n");
  size_t count = 0;
  const moai_op_def_t *defs = moai_op_defs(&count);
  for (size_t i = 0; i < count; ++i) emit_op(&sb, &defs[i]);
  moai_strbuf_append(&sb, "}\n");
  return moai_strbuf_finish(&sb, out_text);
}

moai_status_t moai_dialect_load(MlirContext ctx) {
  /* An IRDL dialect is loaded once per context; a second load would clash. */
  if (mlirContextIsRegisteredOperation(ctx,
                                       mlirStringRefCreateFromCString(
                                           "moai.constant")))
    return moai_ok_status();
  char *text = NULL;
  MOAI_RETURN_IF_ERROR(moai_dialect_irdl_text(moai_allocator_system(), &text));
  MlirModule module =
      mlirModuleCreateParse(ctx, mlirStringRefCreateFromCString(text));
  moai_allocator_free(moai_allocator_system(), text);
  if (mlirModuleIsNull(module))
    return MOAI_STATUS(MOAI_INTERNAL,
                       "the generated IRDL definition of the moai dialect "
                       "does not parse");
  MlirLogicalResult loaded = mlirLoadIRDLDialects(module);
  mlirModuleDestroy(module);
  if (mlirLogicalResultIsFailure(loaded))
    return MOAI_STATUS(MOAI_INTERNAL, "loading the moai IRDL dialect failed");
  return moai_ok_status();
}

moai_status_t moai_context_create(bool multithreaded, MlirContext *out_ctx) {
  MlirContext ctx = mlirContextCreateWithThreading(multithreaded);
  MlirDialectRegistry registry = mlirDialectRegistryCreate();
  mlirRegisterAllDialects(registry);
  mlirContextAppendDialectRegistry(ctx, registry);
  mlirDialectRegistryDestroy(registry);
  mlirContextLoadAllAvailableDialects(ctx);
  moai_status_t status = moai_dialect_load(ctx);
  if (status) {
    mlirContextDestroy(ctx);
    return status;
  }
  *out_ctx = ctx;
  return moai_ok_status();
}

MlirOperation moai_module_func(MlirOperation module, const char *sym) {
  MlirBlock body = mlirRegionGetFirstBlock(mlirOperationGetRegion(module, 0));
  MlirStringRef want = mlirStringRefCreateFromCString(sym);
  for (MlirOperation op = mlirBlockGetFirstOperation(body); !mlirOperationIsNull(op);
       op = mlirOperationGetNextInBlock(op)) {
    if (!mlirStringRefEqual(mlirIdentifierStr(mlirOperationGetName(op)),
                            mlirStringRefCreateFromCString("func.func")))
      continue;
    MlirAttribute a = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString("sym_name"));
    if (!mlirAttributeIsNull(a) && mlirAttributeIsAString(a) &&
        mlirStringRefEqual(mlirStringAttrGetValue(a), want))
      return op;
  }
  return (MlirOperation){NULL};
}

bool moai_op_is_moai(MlirOperation op) {
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  return name.length > 5 && strncmp(name.data, "moai.", 5) == 0;
}

enum { MAX_DEFAULT_VALUES = 16 };

/* Splits "1,2,3" into up to MAX_DEFAULT_VALUES numbers ("" is none). */
static bool parse_list(const char *text, bool floats, int64_t *ints,
                       float *reals, size_t *out_count) {
  size_t n = 0;
  const char *p = text;
  while (*p) {
    if (n == MAX_DEFAULT_VALUES) return false;
    char *end = NULL;
    if (floats)
      reals[n++] = strtof(p, &end);
    else
      ints[n++] = strtoll(p, &end, 10);
    if (end == p) return false;
    p = end;
    if (*p == ',')
      ++p;
    else if (*p)
      return false;
  }
  *out_count = n;
  return true;
}

bool moai_attr_default(MlirContext ctx, const moai_attr_def_t *def,
                       MlirAttribute *out) {
  const char *text = def->default_text;
  if (!text || strcmp(text, MOAI_ATTR_REQUIRED) == 0) return false;
  char *end = NULL;
  int64_t ints[MAX_DEFAULT_VALUES];
  float reals[MAX_DEFAULT_VALUES];
  size_t n = 0;
  switch (def->kind) {
    case MOAI_ATTR_INT: {
      long long v = strtoll(text, &end, 10);
      *out = mlirIntegerAttrGet(mlirIntegerTypeGet(ctx, 64), v);
      return end != text && !*end;
    }
    case MOAI_ATTR_FLOAT: {
      double v = strtod(text, &end);
      *out = mlirFloatAttrDoubleGet(ctx, mlirF32TypeGet(ctx), v);
      return end != text && !*end;
    }
    case MOAI_ATTR_STRING:
      *out = mlirStringAttrGet(ctx, mlirStringRefCreateFromCString(text));
      return true;
    case MOAI_ATTR_INTS:
      if (!parse_list(text, false, ints, reals, &n)) return false;
      *out = mlirDenseI64ArrayGet(ctx, (intptr_t)n, ints);
      return true;
    case MOAI_ATTR_FLOATS:
      if (!parse_list(text, true, ints, reals, &n)) return false;
      *out = mlirDenseF32ArrayGet(ctx, (intptr_t)n, reals);
      return true;
    case MOAI_ATTR_TENSOR:
    case MOAI_ATTR_TYPE: return false;
  }
  return false;
}

bool moai_const_scalar(MlirValue v, double *out) {
  if (mlirValueIsNull(v) || !mlirValueIsAOpResult(v)) return false;
  MlirOperation def = mlirOpResultGetOwner(v);
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(def));
  if (name.length != 13 || memcmp(name.data, "moai.constant", 13) != 0) return false;
  MlirAttribute a = mlirOperationGetAttributeByName(def, mlirStringRefCreateFromCString("value"));
  if (mlirAttributeIsNull(a) || !mlirAttributeIsADenseElements(a) ||
      !(mlirDenseElementsAttrIsSplat(a) || mlirElementsAttrGetNumElements(a) == 1))
    return false;
  MlirType t = mlirShapedTypeGetElementType(mlirAttributeGetType(a));
  unsigned width = mlirTypeIsAInteger(t) ? mlirIntegerTypeGetWidth(t) : 0;
  if (mlirTypeIsAF32(t))
    *out = mlirDenseElementsAttrGetFloatValue(a, 0);
  else if (mlirTypeIsAF64(t))
    *out = mlirDenseElementsAttrGetDoubleValue(a, 0);
  else if (width == 1)
    *out = mlirDenseElementsAttrGetBoolValue(a, 0) ? 1.0 : 0.0;
  else if (width == 32)
    *out = mlirDenseElementsAttrGetInt32Value(a, 0);
  else if (width == 64)
    *out = (double)mlirDenseElementsAttrGetInt64Value(a, 0);
  else
    return false;
  return true;
}


MlirOperation moai_op_build(MlirContext ctx, MlirLocation loc, const char *name,
                            const MlirValue *in, int n_in, int n_variadic,
                            const MlirType *res, int n_res, const MlirNamedAttribute *attrs,
                            int n_attrs, char *err, size_t err_size) {
  MlirOperation none = {NULL};
  const moai_op_def_t *def = moai_op_def_find(name, strlen(name));
  if (!def) {
    snprintf(err, err_size, "no op moai.%s", name);
    return none;
  }
  size_t n_entries = moai_op_def_operand_count(def);
  MlirValue operands[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
  int32_t counts[MOAI_OP_MAX_OPERANDS];
  int k = 0, used = 0;
  for (size_t e = 0; e < n_entries; ++e) {
    if (def->operands[e].arity == MOAI_ARITY_VARIADIC) {
      if (n_variadic < 0 || n_variadic > MOAI_VARIADIC_SLOTS || used + n_variadic > n_in) {
        snprintf(err, err_size, "bad variadic operand count %d for moai.%s", n_variadic, name);
        return none;
      }
      counts[e] = n_variadic;
      for (int j = 0; j < n_variadic; ++j) operands[k++] = in[used++];
    } else {
      MlirValue v = used < n_in ? in[used] : (MlirValue){NULL};
      ++used;
      counts[e] = mlirValueIsNull(v) ? 0 : 1;
      if (counts[e]) operands[k++] = v;
    }
    if (counts[e] == 0 && def->operands[e].arity == MOAI_ARITY_SINGLE) {
      snprintf(err, err_size, "moai.%s missing operand '%s'", name, def->operands[e].name);
      return none;
    }
  }
  for (int i = 0; i < k; ++i)
    if (mlirValueIsNull(operands[i])) {
      snprintf(err, err_size, "moai.%s: a null operand", name);
      return none;
    }
  MlirNamedAttribute all[MOAI_OP_MAX_ATTRS + 4];
  int na = 0;
  if (n_attrs < 0 || n_attrs > MOAI_OP_MAX_ATTRS) {
    snprintf(err, err_size, "moai.%s: %d attributes given, at most %d", name, n_attrs,
             MOAI_OP_MAX_ATTRS);
    return none;
  }
  for (int i = 0; i < n_attrs; ++i) all[na++] = attrs[i];
  for (size_t i = 0; i < MOAI_OP_MAX_ATTRS && def->attrs[i].name; ++i) {
    bool given = false;
    for (int j = 0; j < n_attrs; ++j) {
      MlirStringRef s = mlirIdentifierStr(attrs[j].name);
      given |= s.length == strlen(def->attrs[i].name) &&
               memcmp(s.data, def->attrs[i].name, s.length) == 0;
    }
    MlirAttribute d;
    if (!given && na < MOAI_OP_MAX_ATTRS && moai_attr_default(ctx, &def->attrs[i], &d))
      all[na++] = mlirNamedAttributeGet(
          mlirIdentifierGet(ctx, mlirStringRefCreateFromCString(def->attrs[i].name)), d);
  }
  if (moai_op_def_needs_operand_segments(def)) {
    int32_t sizes[MOAI_OP_MAX_OPERANDS * MOAI_VARIADIC_SLOTS];
    size_t ns = 0;
    if (!moai_op_def_encode_segments(def, false, counts, sizes, sizeof(sizes) / sizeof(sizes[0]),
                                     &ns)) {
      snprintf(err, err_size, "bad operand counts for moai.%s", name);
      return none;
    }
    all[na++] = mlirNamedAttributeGet(
        mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("operandSegmentSizes")),
        mlirDenseI32ArrayGet(ctx, (intptr_t)ns, sizes));
  }
  if (moai_op_def_needs_result_segments(def)) {
    int32_t rc[MOAI_OP_MAX_RESULTS];
    for (size_t e = 0; e < moai_op_def_result_count(def); ++e) rc[e] = 1;
    int32_t sizes[MOAI_OP_MAX_RESULTS * MOAI_VARIADIC_SLOTS];
    size_t ns = 0;
    if (!moai_op_def_encode_segments(def, true, rc, sizes, sizeof(sizes) / sizeof(sizes[0]), &ns)) {
      snprintf(err, err_size, "bad result counts for moai.%s", name);
      return none;
    }
    all[na++] = mlirNamedAttributeGet(
        mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("resultSegmentSizes")),
        mlirDenseI32ArrayGet(ctx, (intptr_t)ns, sizes));
  }
  char full[64];
  snprintf(full, sizeof(full), "moai.%s", name);
  MlirOperationState st = mlirOperationStateGet(mlirStringRefCreateFromCString(full), loc);
  mlirOperationStateAddOperands(&st, k, operands);
  mlirOperationStateAddResults(&st, n_res, res);
  mlirOperationStateAddAttributes(&st, na, all);
  MlirOperation op = mlirOperationCreate(&st);
  if (mlirOperationIsNull(op)) snprintf(err, err_size, "could not create %s", full);
  return op;
}
