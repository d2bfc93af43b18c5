/* Helpers for the moai-shape-infer unit tests: a context with the moai
 * dialect, diagnostics collected as text, one op built and inferred on its
 * own (as the importer does), or a whole module run through the pass. */
#ifndef MOAI_TEST_SHAPE_INFER_FIXTURE_H
#define MOAI_TEST_SHAPE_INFER_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ir/dialect.h"
#include "ir/op_defs.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"
#include "mlir-c/IR.h"
#include "moai_test.h"
#include "shape_infer/shape_infer.h"

typedef struct si_fixture_t {
  MlirContext ctx;
  MlirModule module;
  MlirDiagnosticHandlerID handler;
  char errors[4096]; /* every diagnostic, one per line */
  size_t errors_len;
  char text[4096];   /* result types, ", "-separated */
  size_t text_len;
} si_fixture_t;

typedef struct fixture_buf_t {
  char *buf;
  size_t *len;
  size_t cap;
} fixture_buf_t;

static inline void fixture_append(MlirStringRef s, void *user_data) {
  fixture_buf_t *b = user_data;
  for (size_t i = 0; i < s.length && *b->len + 1 < b->cap; ++i)
    b->buf[(*b->len)++] = s.data[i];
  b->buf[*b->len] = '\0';
}

static inline void fixture_print(char *buf, size_t *len, size_t cap,
                                 MlirType t) {
  fixture_buf_t b = {buf, len, cap};
  mlirTypePrint(t, fixture_append, &b);
}

static inline void fixture_puts(char *buf, size_t *len, size_t cap,
                                const char *s) {
  fixture_buf_t b = {buf, len, cap};
  fixture_append(mlirStringRefCreateFromCString(s), &b);
}

static inline MlirLogicalResult fixture_diag(MlirDiagnostic d, void *user) {
  si_fixture_t *f = user;
  fixture_buf_t b = {f->errors, &f->errors_len, sizeof(f->errors)};
  mlirDiagnosticPrint(d, fixture_append, &b);
  fixture_puts(f->errors, &f->errors_len, sizeof(f->errors), "\n");
  return mlirLogicalResultSuccess();
}

/* Creates the context and parses `module_text` (NULL: no module). */
static inline bool fixture_open(si_fixture_t *f, const char *module_text) {
  memset(f, 0, sizeof(*f));
  moai_status_t s = moai_context_create(false, &f->ctx);
  if (s) {
    moai_status_free(s);
    return false;
  }
  f->handler = mlirContextAttachDiagnosticHandler(f->ctx, fixture_diag, f, NULL);
  if (!module_text) return true;
  f->module = mlirModuleCreateParse(f->ctx,
                                    mlirStringRefCreateFromCString(module_text));
  if (mlirModuleIsNull(f->module))
    fprintf(stderr, "module does not parse:\n%s\n%s", module_text, f->errors);
  return !mlirModuleIsNull(f->module);
}

static inline void fixture_close(si_fixture_t *f) {
  if (!mlirModuleIsNull(f->module)) mlirModuleDestroy(f->module);
  mlirContextDetachDiagnosticHandler(f->ctx, f->handler);
  mlirContextDestroy(f->ctx);
}

static inline MlirOperation fixture_func(si_fixture_t *f) {
  return mlirBlockGetFirstOperation(mlirModuleGetBody(f->module));
}

/* The result types of `op`, ", "-separated, into f->text. */
static inline const char *fixture_result_types(si_fixture_t *f,
                                               MlirOperation op) {
  f->text_len = 0;
  f->text[0] = '\0';
  for (intptr_t i = 0; i < mlirOperationGetNumResults(op); ++i) {
    if (i) fixture_puts(f->text, &f->text_len, sizeof(f->text), ", ");
    fixture_print(f->text, &f->text_len, sizeof(f->text),
                  mlirValueGetType(mlirOperationGetResult(op, i)));
  }
  return f->text;
}

/* The first function's type after the pass, "(args) -> results". */
static inline const char *fixture_func_type(si_fixture_t *f) {
  MlirAttribute a = mlirOperationGetAttributeByName(
      fixture_func(f), mlirStringRefCreateFromCString("function_type"));
  f->text_len = 0;
  f->text[0] = '\0';
  fixture_print(f->text, &f->text_len, sizeof(f->text), mlirTypeAttrGetValue(a));
  return f->text;
}

/* The module printed in generic form, into `buf`. */
static inline const char *fixture_module_text(si_fixture_t *f, char *buf,
                                              size_t cap) {
  size_t len = 0;
  fixture_buf_t b = {buf, &len, cap};
  buf[0] = '\0';
  mlirOperationPrint(mlirModuleGetOperation(f->module), fixture_append, &b);
  return buf;
}

static inline bool fixture_run(si_fixture_t *f, bool require_static,
                               int64_t max_fold_elements) {
  moai_shape_infer_options_t o = moai_shape_infer_options_default();
  o.require_static = require_static;
  o.max_fold_elements = max_fold_elements;
  return moai_shape_infer_run(mlirModuleGetOperation(f->module), &o);
}

/* Builds one op "moai.<name>" with attributes `attrs` (a dictionary text,
 * "" for none) and `n_results` results of placeholder type tensor<*xf32>,
 * its operands from `operands` (NULL-terminated): a type gives a function
 * argument of that type, "dense<...> : tensor<...>" a moai.constant.
 * Runs moai_shape_infer_op on it; *out_ok receives its answer and the
 * result types are returned (NULL if the op could not even be built). */
/* Ops whose only operand (result) entry is variadic (concat, max, min;
 * split's results) carry an IRDL-level segment attribute; tests that do not
 * spell one get all values in the variadic entry. */
static inline void fixture_add_variadic_segments(si_fixture_t *f,
                                                 MlirOperationState *st,
                                                 const char *name,
                                                 const char *attrs, int n_in,
                                                 int n_out) {
  const moai_op_def_t *def = moai_op_def_find(name, strlen(name));
  if (!def) return;
  for (int results = 0; results < 2; ++results) {
    const moai_value_def_t *v = results ? def->results : def->operands;
    size_t entries = results ? moai_op_def_result_count(def)
                             : moai_op_def_operand_count(def);
    const char *attr = results ? "resultSegmentSizes" : "operandSegmentSizes";
    if (entries != 1 || v[0].arity != MOAI_ARITY_VARIADIC ||
        (attrs && strstr(attrs, attr)))
      continue;
    int32_t count = results ? n_out : n_in, sizes[64];
    size_t n_sizes = 0;
    if (!moai_op_def_encode_segments(def, results, &count, sizes, 64, &n_sizes))
      continue; /* more values than slots: leave it for the op to reject */
    MlirNamedAttribute na = mlirNamedAttributeGet(
        mlirIdentifierGet(f->ctx, mlirStringRefCreateFromCString(attr)),
        mlirDenseI32ArrayGet(f->ctx, (intptr_t)n_sizes, sizes));
    mlirOperationStateAddAttributes(st, 1, &na);
  }
}

static inline const char *fixture_infer_op(si_fixture_t *f, const char *name,
                                           const char *attrs, int n_results,
                                           const char *const *operands,
                                           bool *out_ok) {
  char text[4096];
  size_t len = 0, cap = sizeof(text);
  int n = 0;
  text[0] = '\0';
  fixture_puts(text, &len, cap, "func.func @f(");
  for (int k = 0, args = 0; operands[k]; ++k, ++n) {
    if (strncmp(operands[k], "dense<", 6) == 0) continue;
    char a[512];
    snprintf(a, sizeof(a), "%s%%a%d: %s", args++ ? ", " : "", k, operands[k]);
    fixture_puts(text, &len, cap, a);
  }
  fixture_puts(text, &len, cap, ") {\n");
  for (int k = 0; operands[k]; ++k) {
    const char *colon = strstr(operands[k], " : ");
    if (strncmp(operands[k], "dense<", 6) != 0 || !colon) continue;
    char c[1024];
    snprintf(c, sizeof(c), "  %%a%d = \"moai.constant\"() {value = %s} : () -> %s\n",
             k, operands[k], colon + 3);
    fixture_puts(text, &len, cap, c);
  }
  fixture_puts(text, &len, cap, "  return\n}\n");
  if (!fixture_open(f, text)) return NULL;
  MlirOperation func = fixture_func(f);
  MlirBlock body = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
  MlirValue values[64];
  for (int k = 0, arg = 0, cst = 0; k < n && k < 64; ++k) {
    if (strncmp(operands[k], "dense<", 6) == 0) {
      MlirOperation c = mlirBlockGetFirstOperation(body);
      for (int j = 0; j < cst; ++j) c = mlirOperationGetNextInBlock(c);
      values[k] = mlirOperationGetResult(c, 0);
      ++cst;
    } else {
      values[k] = mlirBlockGetArgument(body, arg++);
    }
  }
  char full[128];
  snprintf(full, sizeof(full), "moai.%s", name);
  MlirOperationState st = mlirOperationStateGet(
      mlirStringRefCreateFromCString(full), mlirLocationUnknownGet(f->ctx));
  MlirType placeholder = mlirUnrankedTensorTypeGet(mlirF32TypeGet(f->ctx));
  for (int i = 0; i < n_results; ++i)
    mlirOperationStateAddResults(&st, 1, &placeholder);
  mlirOperationStateAddOperands(&st, n, values);
  if (attrs && *attrs) {
    MlirAttribute dict =
        mlirAttributeParseGet(f->ctx, mlirStringRefCreateFromCString(attrs));
    if (mlirAttributeIsNull(dict)) return NULL;
    for (intptr_t i = 0; i < mlirDictionaryAttrGetNumElements(dict); ++i) {
      MlirNamedAttribute na = mlirDictionaryAttrGetElement(dict, i);
      mlirOperationStateAddAttributes(&st, 1, &na);
    }
  }
  fixture_add_variadic_segments(f, &st, name, attrs, n, n_results);
  MlirOperation op = mlirOperationCreate(&st);
  mlirBlockInsertOwnedOperationBefore(body, mlirBlockGetTerminator(body), op);
  *out_ok = moai_shape_infer_op(op);
  return fixture_result_types(f, op);
}

/* Checks that a string equals what was expected, printing both if not. */
#define EXPECT_STR(actual, expected) \
  fixture_expect_str((actual), (expected), __FILE__, __LINE__)

static inline void fixture_expect_str(const char *actual, const char *expected,
                                      const char *file, int line) {
  bool ok = actual && strcmp(actual, expected) == 0;
  if (!ok)
    fprintf(stderr, "\n%s:%d: expected '%s'\n%*sgot      '%s'\n", file, line,
            expected, (int)strlen(file) + 8, "", actual ? actual : "(null)");
  CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line,
                          "EXPECT_STR", file, "", CU_FALSE);
}

#define EXPECT_CONTAINS(haystack, needle) \
  fixture_expect_contains((haystack), (needle), __FILE__, __LINE__)

static inline void fixture_expect_contains(const char *haystack,
                                           const char *needle,
                                           const char *file, int line) {
  bool ok = haystack && strstr(haystack, needle) != NULL;
  if (!ok)
    fprintf(stderr, "\n%s:%d: expected to find '%s' in\n%s\n", file, line,
            needle, haystack ? haystack : "(null)");
  CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line,
                          "EXPECT_CONTAINS", file, "", CU_FALSE);
}

#endif /* MOAI_TEST_SHAPE_INFER_FIXTURE_H */
