/* Helpers shared by the ONNX importer's unit tests: a context, importing a
 * built model, printing and searching the result. */
#ifndef MOAI_TESTS_ONNX_TEST_SUPPORT_H
#define MOAI_TESTS_ONNX_TEST_SUPPORT_H

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/allocator.h"
#include "base/status.h"
#include "ir/dialect.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/IR.h"
#include "onnx/onnx_import.h"
#include "onnx_model_builder.h"

static inline MlirContext ts_context(void) {
  MlirContext ctx = {NULL};
  moai_status_t s = moai_context_create(false, &ctx);
  CU_ASSERT_PTR_NULL_FATAL(s);
  return ctx;
}

/* Packs the model and imports it as "m.onnx" from memory. */
static inline moai_status_t ts_import_options(
    MlirContext ctx, const tb_t *b, const moai_onnx_import_options_t *options,
    MlirModule *out) {
  size_t size = 0;
  uint8_t *data = tb_pack(b, &size);
  moai_status_t s = moai_onnx_import_buffer(
      ctx, data, size, "m.onnx", NULL, options, moai_allocator_system(), out);
  free(data);
  return s;
}

static inline moai_status_t ts_import(MlirContext ctx, const tb_t *b,
                                      MlirModule *out) {
  return ts_import_options(ctx, b, NULL, out);
}

/* Imports a model that must fail; returns the message (owned, free it) and
 * checks the code. */
static inline char *ts_import_error(MlirContext ctx, const tb_t *b,
                                    const moai_onnx_import_options_t *options,
                                    moai_status_code_t code) {
  MlirModule m = {NULL};
  moai_status_t s = ts_import_options(ctx, b, options, &m);
  CU_ASSERT_PTR_NOT_NULL(s);
  CU_ASSERT_PTR_NULL(m.ptr); /* untouched */
  if (!s) {
    if (m.ptr) mlirModuleDestroy(m);
    return strdup("");
  }
  if (moai_status_code(s) != code)
    fprintf(stderr, "\n  unexpected code %s: %s\n",
            moai_status_code_name(moai_status_code(s)), moai_status_message(s));
  CU_ASSERT_EQUAL(moai_status_code(s), code);
  char *msg = strdup(moai_status_message(s));
  moai_status_free(s);
  return msg;
}

/* CU_ASSERT that `text` contains `needle`, printing both when not. */
#define TS_ASSERT_CONTAINS(text, needle)                             \
  do {                                                               \
    const char *ts_text_ = (text);                                   \
    bool ts_found_ = ts_text_ && strstr(ts_text_, (needle)) != NULL; \
    if (!ts_found_)                                                  \
      fprintf(stderr, "\n  expected \"%s\" in:\n%s\n", (needle),     \
              ts_text_ ? ts_text_ : "(null)");                       \
    CU_ASSERT_TRUE(ts_found_);                                       \
  } while (0)

typedef struct ts_text_t {
  char *data;
  size_t length;
} ts_text_t;

static inline void ts_text_append(MlirStringRef s, void *user_data) {
  ts_text_t *t = user_data;
  t->data = realloc(t->data, t->length + s.length + 1);
  memcpy(t->data + t->length, s.data, s.length);
  t->length += s.length;
  t->data[t->length] = '\0';
}

/* The module printed (with locations when `debug_info`); free it. */
static inline char *ts_print(MlirModule m, bool debug_info) {
  ts_text_t t = {0};
  MlirOpPrintingFlags flags = mlirOpPrintingFlagsCreate();
  if (debug_info) mlirOpPrintingFlagsEnableDebugInfo(flags, true, false);
  mlirOperationPrintWithFlags(mlirModuleGetOperation(m), flags, ts_text_append,
                              &t);
  mlirOpPrintingFlagsDestroy(flags);
  return t.data ? t.data : strdup("");
}

static inline char *ts_print_attr(MlirAttribute a) {
  ts_text_t t = {0};
  mlirAttributePrint(a, ts_text_append, &t);
  return t.data ? t.data : strdup("");
}

/* An op's location as MLIR prints it; free it. */
static inline char *ts_print_loc(MlirOperation op) {
  ts_text_t t = {0};
  if (!mlirOperationIsNull(op))
    mlirLocationPrint(mlirOperationGetLocation(op), ts_text_append, &t);
  return t.data ? t.data : strdup("");
}

/* The body of @main. */
static inline MlirBlock ts_main_body(MlirModule m) {
  MlirOperation func = mlirBlockGetFirstOperation(mlirModuleGetBody(m));
  return mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
}

static inline bool ts_op_is(MlirOperation op, const char *name) {
  MlirStringRef n = mlirIdentifierStr(mlirOperationGetName(op));
  return n.length == strlen(name) && strncmp(n.data, name, n.length) == 0;
}

/* The `index`-th op called `op_name` in @main, or a null op. */
static inline MlirOperation ts_find_op(MlirModule m, const char *op_name,
                                       int index) {
  for (MlirOperation op = mlirBlockGetFirstOperation(ts_main_body(m));
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op))
    if (ts_op_is(op, op_name) && index-- == 0) return op;
  return (MlirOperation){NULL};
}

/* The moai.weight (or moai.constant with a NameLoc) named `name`. */
static inline MlirOperation ts_find_weight(MlirModule m, const char *name) {
  for (MlirOperation op = mlirBlockGetFirstOperation(ts_main_body(m));
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
    if (!ts_op_is(op, "moai.weight")) continue;
    MlirAttribute a = mlirOperationGetAttributeByName(
        op, mlirStringRefCreateFromCString("name"));
    MlirStringRef s = mlirStringAttrGetValue(a);
    if (s.length == strlen(name) && strncmp(s.data, name, s.length) == 0)
      return op;
  }
  return (MlirOperation){NULL};
}

static inline int64_t ts_int_attr(MlirOperation op, const char *name) {
  CU_ASSERT_FALSE_FATAL(mlirOperationIsNull(op));
  MlirAttribute a =
      mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
  CU_ASSERT_FALSE_FATAL(mlirAttributeIsNull(a));
  return mlirIntegerAttrGetValueInt(a);
}

static inline bool ts_str_attr_is(MlirOperation op, const char *name,
                                  const char *want) {
  MlirAttribute a =
      mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a)) return false;
  MlirStringRef s = mlirStringAttrGetValue(a);
  return s.length == strlen(want) && strncmp(s.data, want, s.length) == 0;
}

/* ONNX element types used by the tests. */
enum {
  F32 = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT,
  F16 = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT16,
  I64 = ONNX__TENSOR_PROTO__DATA_TYPE__INT64,
  BOOL = ONNX__TENSOR_PROTO__DATA_TYPE__BOOL,
  STRING = ONNX__TENSOR_PROTO__DATA_TYPE__STRING,
  COMPLEX64 = ONNX__TENSOR_PROTO__DATA_TYPE__COMPLEX64,
};

/* A NULL-terminated list of value names. */
#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

/* W of build_mlp. */
static const float kW[12] = {0, 0.5f, 1, 1.5f, 2, 2.5f,
                             3, 3.5f, 4, 4.5f, 5, 5.5f};

/* y = x @ W + bias: W in raw_data, bias in float_data. */
static inline void build_mlp(tb_t *b, int64_t opset) {
  static const int64_t xd[2] = {2, 4}, wd[2] = {4, 3}, bd[1] = {3},
                       yd[2] = {2, 3};
  static const float bias[3] = {1, 2, 3};
  tb_init(b, opset);
  tb_input(b, "x", F32, 2, xd);
  tb_init_f32(b, "W", 2, wd, kW, 1);
  tb_init_f32(b, "bias", 1, bd, bias, 0);
  tb_node(b, "MatMul", "mm", LIST("x", "W"), LIST("h"));
  tb_node(b, "Add", "add", LIST("h", "bias"), LIST("y"));
  tb_output(b, "y", F32, 2, yd);
}

#endif /* MOAI_TESTS_ONNX_TEST_SUPPORT_H */
