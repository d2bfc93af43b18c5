/* Unit tests for compiler/ir: the op table, the generated IRDL dialect, node
 * locations and the diagnostic format, and the external-pass lifecycle. */
#include <string.h>

#include "ir/dialect.h"
#include "ir/diag.h"
#include "ir/dtype.h"
#include "ir/op_defs.h"
#include "ir/pass_util.h"
#include "mlir-c/Pass.h"
#include "moai_test.h"
#include "simplify/simplify.h"

static MlirContext g_ctx;

static int suite_init(void) {
  moai_status_t s = moai_context_create(false, &g_ctx);
  if (s) {
    moai_status_free(s);
    return 1;
  }
  return 0;
}

static int suite_clean(void) {
  mlirContextDestroy(g_ctx);
  return 0;
}

/* Parses `text`, verifies, returns whether it verified; the first error goes
 * into `err` when non-NULL. */
static bool parses_and_verifies(const char *text, char *err, size_t err_size) {
  moai_diag_sink_t diag;
  moai_diag_attach(g_ctx, &diag, NULL);
  MlirModule m = mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(text));
  bool ok = !mlirModuleIsNull(m) && mlirOperationVerify(mlirModuleGetOperation(m));
  if (err && diag.first_error) snprintf(err, err_size, "%s", diag.first_error);
  if (!mlirModuleIsNull(m)) mlirModuleDestroy(m);
  moai_diag_detach(&diag);
  return ok;
}

static void test_table_is_consistent(void) {
  size_t n = 0;
  const moai_op_def_t *defs = moai_op_defs(&n);
  CU_ASSERT_TRUE(n >= 60);
  for (size_t i = 0; i < n; ++i) {
    CU_ASSERT_PTR_EQUAL(moai_op_def_find(defs[i].name, strlen(defs[i].name)), &defs[i]);
    if (defs[i].onnx_type)
      CU_ASSERT_PTR_EQUAL(moai_op_def_find_onnx(defs[i].onnx_type), &defs[i]);
    /* Only ops that write an operand in place may have no result. */
    CU_ASSERT_TRUE(moai_op_def_result_count(&defs[i]) >= 1 ||
                   (defs[i].flags & MOAI_OP_FLAG_SIDE_EFFECT));
    for (size_t j = 0; j < moai_op_def_operand_count(&defs[i]); ++j)
      for (const char *c = defs[i].operands[j].name; *c; ++c)
        CU_ASSERT_FALSE(*c >= 'A' && *c <= 'Z'); /* IRDL wants lower case */
  }
  CU_ASSERT_PTR_NULL(moai_op_def_find_onnx("NonZero"));
  CU_ASSERT_PTR_NOT_NULL(moai_op_def_find("moai.softmax", 12));
}

static void test_required_ops_present(void) {
  /* The ops the foundation issue lists: a Mistral-style export and the CNN set. */
  static const char *const required[] = {
      "Constant", "ConstantOfShape", "Shape", "Gather", "Unsqueeze", "Squeeze",
      "Reshape", "Transpose", "Concat", "Slice", "Expand", "Where", "Equal",
      "LessOrEqual", "GreaterOrEqual", "Less", "Greater", "And", "Or", "Not",
      "Cast", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Neg", "Cos", "Sin",
      "Exp", "Log", "Sigmoid", "Tanh", "Erf", "MatMul", "Gemm", "ReduceMean",
      "ReduceSum", "ReduceMax", "Softmax", "LogSoftmax",
      "SoftmaxCrossEntropyLoss", "Trilu", "Range", "CumSum", "Identity", "Conv",
      "MaxPool", "AveragePool", "GlobalAveragePool", "BatchNormalization",
      "Relu", "LeakyRelu", "Gelu", "LayerNormalization", "Flatten", "Dropout",
      "Clip", "Split", "Max", "Min", "Abs"};
  for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); ++i) {
    if (!moai_op_def_find_onnx(required[i]))
      CU_FAIL_FATAL("a required ONNX op is missing from the op table");
  }
}

static void test_irdl_verifies_ops(void) {
  char err[512] = {0};
  CU_ASSERT_TRUE(parses_and_verifies(
      "func.func @f(%a: tensor<2x3xf32>, %s: tensor<2xi64>) -> tensor<3x2xf32> {\n"
      "  %0 = \"moai.reshape\"(%a, %s) {allowzero = 0 : i64} : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32>\n"
      "  return %0 : tensor<3x2xf32>\n}\n", err, sizeof(err)));
  /* A missing declared attribute is rejected by IRDL. */
  CU_ASSERT_FALSE(parses_and_verifies(
      "func.func @f(%a: tensor<2x3xf32>, %s: tensor<2xi64>) -> tensor<3x2xf32> {\n"
      "  %0 = \"moai.reshape\"(%a, %s) : (tensor<2x3xf32>, tensor<2xi64>) -> tensor<3x2xf32>\n"
      "  return %0 : tensor<3x2xf32>\n}\n", err, sizeof(err)));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "allowzero"));
  /* Wrong operand count. */
  CU_ASSERT_FALSE(parses_and_verifies(
      "func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n"
      "  %0 = \"moai.add\"(%a) : (tensor<2xf32>) -> tensor<2xf32>\n"
      "  return %0 : tensor<2xf32>\n}\n", err, sizeof(err)));
  /* Unknown op in the dialect. */
  CU_ASSERT_FALSE(parses_and_verifies(
      "func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n"
      "  %0 = \"moai.frobnicate\"(%a) : (tensor<2xf32>) -> tensor<2xf32>\n"
      "  return %0 : tensor<2xf32>\n}\n", err, sizeof(err)));
  /* Optional operands with segment sizes. */
  CU_ASSERT_TRUE(parses_and_verifies(
      "func.func @f(%a: tensor<4xf32>, %s: tensor<1xi64>) -> tensor<*xf32> {\n"
      "  %0 = \"moai.slice\"(%a, %s, %s) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>} : (tensor<4xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xf32>\n"
      "  return %0 : tensor<*xf32>\n}\n", err, sizeof(err)));
  /* A weight carries name, shape and dtype; its bytes stay outside. */
  CU_ASSERT_TRUE(parses_and_verifies(
      "func.func @f() -> tensor<4096x4096xbf16> {\n"
      "  %0 = \"moai.weight\"() {name = \"w\", trainable = 1 : i64, storage = \"absent\"} : () -> tensor<4096x4096xbf16>\n"
      "  return %0 : tensor<4096x4096xbf16>\n}\n", err, sizeof(err)));
}

static void test_irdl_text_mentions_every_op(void) {
  char *text = NULL;
  CU_ASSERT_PTR_NULL_FATAL(moai_dialect_irdl_text(moai_allocator_system(), &text));
  size_t n = 0;
  const moai_op_def_t *defs = moai_op_defs(&n);
  for (size_t i = 0; i < n; ++i) {
    char needle[96];
    snprintf(needle, sizeof(needle), "irdl.operation @%s {", defs[i].name);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, needle));
  }
  free(text);
  /* The IRDL text fails cleanly under allocation failure. */
  for (uint64_t k = 1; k <= 3; ++k) {
    moai_fault_allocator_t fa = {.fail_at = k};
    char *t = NULL;
    moai_status_t s = moai_dialect_irdl_text(moai_fault_allocator(&fa), &t);
    CU_ASSERT_EQUAL(moai_status_code(s), MOAI_OUT_OF_MEMORY);
    CU_ASSERT_PTR_NULL(t);
    CU_ASSERT_EQUAL(fa.live, 0);
    moai_status_free(s);
  }
}

static void test_node_location_format(void) {
  MlirLocation loc = moai_loc_node(g_ctx, "model.onnx", "Attention_12", "Softmax", 11);
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  moai_loc_format(loc, &sb);
  CU_ASSERT_STRING_EQUAL(sb.data, "model.onnx: node 'Attention_12' (Softmax)");
  moai_strbuf_reset(&sb);

  moai_diag_sink_t diag;
  moai_diag_attach(g_ctx, &diag, NULL);
  mlirEmitError(loc, "axis 5 out of range for rank 4");
  CU_ASSERT_EQUAL(diag.error_count, 1);
  CU_ASSERT_STRING_EQUAL(diag.first_error,
                         "model.onnx: node 'Attention_12' (Softmax): axis 5 out of range for rank 4");
  moai_status_t s = moai_diag_take_status(&diag, MOAI_INVALID_ARGUMENT, "x");
  CU_ASSERT_STRING_EQUAL(moai_status_message(s),
                         "model.onnx: node 'Attention_12' (Softmax): axis 5 out of range for rank 4");
  moai_status_free(s);
  moai_diag_detach(&diag);
}

static void test_dtype_round_trip(void) {
  static const moai_dtype_t all[] = {
      MOAI_DTYPE_F32, MOAI_DTYPE_U8, MOAI_DTYPE_I8, MOAI_DTYPE_U16, MOAI_DTYPE_I16,
      MOAI_DTYPE_I32, MOAI_DTYPE_I64, MOAI_DTYPE_BOOL, MOAI_DTYPE_F16,
      MOAI_DTYPE_F64, MOAI_DTYPE_U32, MOAI_DTYPE_U64, MOAI_DTYPE_BF16};
  for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); ++i) {
    MlirType t = moai_dtype_to_mlir(g_ctx, all[i]);
    CU_ASSERT_FALSE(mlirTypeIsNull(t));
    CU_ASSERT_EQUAL(moai_dtype_from_mlir(t), all[i]);
    CU_ASSERT_TRUE(moai_dtype_size(all[i]) > 0);
  }
  CU_ASSERT_FALSE(moai_dtype_is_supported(8)); /* string */
  CU_ASSERT_TRUE(mlirTypeIsNull(moai_dtype_to_mlir(g_ctx, (moai_dtype_t)8)));
}

/* Like MLIR's test/CAPI/pass.c: every constructed pass is destructed, also
 * when the pass manager clones passes. */
static void test_pass_lifecycle(void) {
  long before = moai_external_pass_live_count();
  MlirPassManager pm = mlirPassManagerCreate(g_ctx);
  moai_simplify_options_t o = moai_simplify_options_default();
  mlirPassManagerAddOwnedPass(pm, moai_simplify_pass_create(&o));
  CU_ASSERT_EQUAL(moai_external_pass_live_count(), before + 1);
  MlirModule m = mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(
      "func.func @f(%a: tensor<2xf32>) -> tensor<2xf32> {\n"
      "  %0 = \"moai.exp\"(%a) : (tensor<2xf32>) -> tensor<2xf32>\n"
      "  return %a : tensor<2xf32>\n}\n"));
  CU_ASSERT_TRUE(mlirLogicalResultIsSuccess(
      mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(m))));
  /* The dead exp is gone. */
  MlirOperation func = mlirBlockGetFirstOperation(mlirModuleGetBody(m));
  MlirBlock body = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
  MlirStringRef first = mlirIdentifierStr(mlirOperationGetName(mlirBlockGetFirstOperation(body)));
  CU_ASSERT_EQUAL(strncmp(first.data, "func.return", first.length), 0);
  mlirModuleDestroy(m);
  mlirPassManagerDestroy(pm);
  CU_ASSERT_EQUAL(moai_external_pass_live_count(), before);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"table_is_consistent", test_table_is_consistent},
      {"required_ops_present", test_required_ops_present},
      {"irdl_verifies_ops", test_irdl_verifies_ops},
      {"irdl_text_mentions_every_op", test_irdl_text_mentions_every_op},
      {"node_location_format", test_node_location_format},
      {"dtype_round_trip", test_dtype_round_trip},
      {"pass_lifecycle", test_pass_lifecycle},
      CU_TEST_INFO_NULL};
  CU_pSuite suite = CU_add_suite("ir", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
