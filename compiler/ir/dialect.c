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

