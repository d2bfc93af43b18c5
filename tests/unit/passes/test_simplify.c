/* Unit tests for moai-simplify's logic (moai_simplify_run): what is erased,
 * what is merged, and the options that turn each half off. */
#include <string.h>

#include "ir/dialect.h"
#include "ir/strbuf.h"
#include "moai_test.h"
#include "simplify/simplify.h"

static MlirContext g_ctx;

static int suite_init(void) {
  moai_status_t s = moai_context_create(false, &g_ctx);
  if (s) moai_status_free(s);
  return s != NULL;
}

static int suite_clean(void) {
  mlirContextDestroy(g_ctx);
  return 0;
}

static const char kModule[] =
    "func.func @f(%a: tensor<4xf32>, %r: tensor<f32>, %t: tensor<i1>) -> (tensor<4xf32>, tensor<4xf32>) {\n"
    "  %0 = \"moai.exp\"(%a) : (tensor<4xf32>) -> tensor<4xf32>\n"
    "  %1 = \"moai.exp\"(%a) : (tensor<4xf32>) -> tensor<4xf32>\n"
    "  %2 = \"moai.add\"(%0, %1) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>\n"
    "  %3 = \"moai.neg\"(%2) : (tensor<4xf32>) -> tensor<4xf32>\n"
    "  %4 = \"moai.sqrt\"(%3) : (tensor<4xf32>) -> tensor<4xf32>\n"
    "  %5 = \"moai.dropout\"(%a, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4xf32>, tensor<f32>, tensor<i1>) -> tensor<4xf32>\n"
    "  %6 = \"moai.dropout\"(%a, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4xf32>, tensor<f32>, tensor<i1>) -> tensor<4xf32>\n"
    "  return %2, %5 : tensor<4xf32>, tensor<4xf32>\n"
    "}\n";

static size_t count_ops(MlirModule m, const char *name) {
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  mlirOperationPrint(mlirModuleGetOperation(m), moai_strbuf_mlir_callback, &sb);
  size_t n = 0;
  for (const char *p = sb.data; p && (p = strstr(p, name)); p += strlen(name)) ++n;
  moai_strbuf_reset(&sb);
  return n;
}

static void run(moai_simplify_options_t o, moai_simplify_stats_t *stats,
                size_t *exp, size_t *neg, size_t *dropout) {
  MlirModule m = mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(kModule));
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_simplify_run(mlirModuleGetOperation(m), &o, stats);
  CU_ASSERT_TRUE(mlirOperationVerify(mlirModuleGetOperation(m)));
  *exp = count_ops(m, "\"moai.exp\"");
  *neg = count_ops(m, "\"moai.neg\"");
  *dropout = count_ops(m, "\"moai.dropout\"");
  mlirModuleDestroy(m);
}

static void test_dce_and_cse(void) {
  moai_simplify_stats_t st;
  size_t exp, neg, dropout;
  run(moai_simplify_options_default(), &st, &exp, &neg, &dropout);
  CU_ASSERT_EQUAL(exp, 1);     /* the twin exp merged */
  CU_ASSERT_EQUAL(neg, 0);     /* neg -> sqrt chain unused: both gone */
  /* Random ops are not pure: neither merged nor erased when unused (erasing
   * one would shift the random stream of the dropouts after it). */
  CU_ASSERT_EQUAL(dropout, 2);
  CU_ASSERT_EQUAL(st.merged, 1);
  CU_ASSERT_EQUAL(st.erased, 2);
}

static void test_options(void) {
  moai_simplify_stats_t st;
  size_t exp, neg, dropout;
  run((moai_simplify_options_t){.dce = false, .cse = true}, &st, &exp, &neg, &dropout);
  CU_ASSERT_EQUAL(exp, 1);
  CU_ASSERT_EQUAL(neg, 1);
  CU_ASSERT_EQUAL(dropout, 2); /* random: never merged */
  CU_ASSERT_EQUAL(st.erased, 0);
  run((moai_simplify_options_t){.dce = true, .cse = false}, &st, &exp, &neg, &dropout);
  CU_ASSERT_EQUAL(exp, 2);
  CU_ASSERT_EQUAL(neg, 0);
  CU_ASSERT_EQUAL(st.merged, 0);
}

static void test_large_block(void) {
  /* Thousands of identical ops: the table grows and every one merges. */
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  moai_strbuf_append(&sb, "func.func @g(%a: tensor<2xf32>) -> tensor<2xf32> {\n");
  for (int i = 0; i < 3000; ++i)
    moai_strbuf_appendf(&sb, "  %%e%d = \"moai.exp\"(%%a) : (tensor<2xf32>) -> tensor<2xf32>\n", i);
  moai_strbuf_append(&sb, "  %s = \"moai.add\"(%e0, %e2999) : (tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>\n"
                          "  return %s : tensor<2xf32>\n}\n");
  MlirModule m = mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(sb.data));
  moai_strbuf_reset(&sb);
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_simplify_options_t o = moai_simplify_options_default();
  moai_simplify_stats_t st;
  moai_simplify_run(mlirModuleGetOperation(m), &o, &st);
  CU_ASSERT_EQUAL(st.merged, 2999);
  CU_ASSERT_EQUAL(count_ops(m, "\"moai.exp\""), 1);
  mlirModuleDestroy(m);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {{"dce_and_cse", test_dce_and_cse},
                                {"options", test_options},
                                {"large_block", test_large_block},
                                CU_TEST_INFO_NULL};
  CU_pSuite suite = CU_add_suite("simplify", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
