/* Unit tests of the moai-shape-infer pass: constant folding (values worked
 * out by hand with numpy/ONNX semantics), shape chains that fold to static
 * reshapes, the static-shape check, function types, and the pass object. */
#include <stdlib.h>

#include "ir/pass_util.h"
#include "mlir-c/Pass.h"
#include "shape_infer_fixture.h"

enum { kNoFoldLimit = 1 << 16 };

/* Runs the pass over `text`; returns the module printed (into a static-size
 * buffer owned by the caller) and whether the pass succeeded. */
static bool run_module(si_fixture_t *f, const char *text, bool require_static,
                       int64_t max_fold, char *out, size_t cap) {
  if (!fixture_open(f, text)) return false;
  bool ok = fixture_run(f, require_static, max_fold);
  fixture_module_text(f, out, cap);
  return ok;
}

static int count(const char *haystack, const char *needle) {
  int n = 0;
  for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle)) ++n;
  return n;
}

/* A Mistral-style attention reshape: the head split is computed from the
 * input's shape at run time in the ONNX graph, and must fold away. */
static void test_mistral_shape_chain(void) {
  const char *text =
      "func.func @attn(%x: tensor<2x16x4096xf32>) -> tensor<*xf32> {\n"
      "  %s = \"moai.shape\"(%x) {start = 0 : i64} : (tensor<2x16x4096xf32>) -> tensor<*xi64>\n"
      "  %i0 = \"moai.constant\"() {value = dense<0> : tensor<i64>} : () -> tensor<i64>\n"
      "  %i1 = \"moai.constant\"() {value = dense<1> : tensor<i64>} : () -> tensor<i64>\n"
      "  %b = \"moai.gather\"(%s, %i0) {axis = 0 : i64} : (tensor<*xi64>, tensor<i64>) -> tensor<*xi64>\n"
      "  %t = \"moai.gather\"(%s, %i1) {axis = 0 : i64} : (tensor<*xi64>, tensor<i64>) -> tensor<*xi64>\n"
      "  %ax = \"moai.constant\"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "  %b1 = \"moai.unsqueeze\"(%b, %ax) : (tensor<*xi64>, tensor<1xi64>) -> tensor<1xi64>\n"
      "  %t1 = \"moai.unsqueeze\"(%t, %ax) : (tensor<*xi64>, tensor<1xi64>) -> tensor<1xi64>\n"
      "  %h = \"moai.constant\"() {value = dense<32> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "  %d = \"moai.constant\"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "  %shape = \"moai.concat\"(%b1, %t1, %h, %d) {axis = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 0, 0, 0, 0>} : (tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xi64>\n"
      "  %r = \"moai.reshape\"(%x, %shape) {allowzero = 0 : i64} : (tensor<2x16x4096xf32>, tensor<*xi64>) -> tensor<*xf32>\n"
      "  %p = \"moai.transpose\"(%r) {perm = array<i64: 0, 2, 1, 3>} : (tensor<*xf32>) -> tensor<*xf32>\n"
      "  return %p : tensor<*xf32>\n"
      "}\n";
  si_fixture_t f;
  char out[8192];
  CU_ASSERT_TRUE(run_module(&f, text, true, kNoFoldLimit, out, sizeof(out)));
  /* The -1 stays: the shape operand keeps ONNX's meaning, the result is
   * static either way. */
  EXPECT_CONTAINS(out, "value = dense<[2, 16, 32, -1]> : tensor<4xi64>");
  EXPECT_CONTAINS(out, "-> tensor<2x16x32x128xf32>");
  EXPECT_CONTAINS(out, "-> tensor<2x32x16x128xf32>");
  CU_ASSERT_EQUAL(count(out, "moai.constant"), 1); /* the rest folded away */
  CU_ASSERT_EQUAL(count(out, "moai.shape"), 0);
  CU_ASSERT_EQUAL(count(out, "moai.gather"), 0);
  CU_ASSERT_EQUAL(count(out, "moai.concat"), 0);
  EXPECT_STR(fixture_func_type(&f),
             "(tensor<2x16x4096xf32>) -> tensor<2x32x16x128xf32>");
  CU_ASSERT_EQUAL(f.errors_len, 0);
  fixture_close(&f);
}

/* Folds one op of constants and checks the constant it leaves. */
static void expect_fold(int line, const char *ops, const char *ret_type,
                        const char *expected) {
  char text[4096], out[8192];
  snprintf(text, sizeof(text),
           "func.func @f() -> %s {\n%s  return %%r : %s\n}\n", ret_type, ops,
           ret_type);
  si_fixture_t f;
  bool ok = run_module(&f, text, true, kNoFoldLimit, out, sizeof(out));
  if (!ok) fprintf(stderr, "\n%s:%d: pass failed: %s", __FILE__, line, f.errors);
  CU_assertImplementation(ok, (unsigned)line, "pass succeeds", __FILE__, "", CU_FALSE);
  fixture_expect_contains(out, expected, __FILE__, line);
  /* Everything folded into the one returned constant. */
  bool single = count(out, "\"moai.") == 1;
  if (!single) fprintf(stderr, "\n%s:%d: not folded:\n%s", __FILE__, line, out);
  CU_assertImplementation(single, (unsigned)line, "folded", __FILE__, "", CU_FALSE);
  fixture_close(&f);
}

#define C(name, value) \
  "  %" name " = \"moai.constant\"() {value = " value "} : () -> " 
#define EXPECT_FOLD(ops, type, expected) expect_fold(__LINE__, ops, type, expected)

static void test_fold_arithmetic(void) {
  EXPECT_FOLD(C("a", "dense<[1, 2, 3]> : tensor<3xi64>") "tensor<3xi64>\n"
              C("b", "dense<10> : tensor<1xi64>") "tensor<1xi64>\n"
              "  %r = \"moai.add\"(%a, %b) : (tensor<3xi64>, tensor<1xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[11, 12, 13]> : tensor<3xi64>");
  /* Integer Div truncates toward zero (C and onnxruntime), not numpy's //. */
  EXPECT_FOLD(C("a", "dense<[-7, 7, 7]> : tensor<3xi64>") "tensor<3xi64>\n"
              C("b", "dense<[2, -2, 2]> : tensor<3xi64>") "tensor<3xi64>\n"
              "  %r = \"moai.div\"(%a, %b) : (tensor<3xi64>, tensor<3xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[-3, -3, 3]> : tensor<3xi64>");
  /* int32 wraps. */
  EXPECT_FOLD(C("a", "dense<2147483647> : tensor<1xi32>") "tensor<1xi32>\n"
              C("b", "dense<1> : tensor<i32>") "tensor<i32>\n"
              "  %r = \"moai.add\"(%a, %b) : (tensor<1xi32>, tensor<i32>) -> tensor<*xi32>\n",
              "tensor<*xi32>", "dense<-2147483648> : tensor<1xi32>");
  EXPECT_FOLD(C("a", "dense<[[1.5], [2.0]]> : tensor<2x1xf32>") "tensor<2x1xf32>\n"
              C("b", "dense<[2.0, 4.0]> : tensor<2xf32>") "tensor<2xf32>\n"
              "  %r = \"moai.mul\"(%a, %b) : (tensor<2x1xf32>, tensor<2xf32>) -> tensor<*xf32>\n",
              "tensor<*xf32>", "dense<[[3.000000e+00, 6.000000e+00], [4.000000e+00, 8.000000e+00]]> : tensor<2x2xf32>");
  EXPECT_FOLD(C("a", "dense<[4.0, 9.0]> : tensor<2xf32>") "tensor<2xf32>\n"
              "  %r = \"moai.sqrt\"(%a) : (tensor<2xf32>) -> tensor<*xf32>\n",
              "tensor<*xf32>", "dense<[2.000000e+00, 3.000000e+00]> : tensor<2xf32>");
  EXPECT_FOLD(C("a", "dense<[-3, 4]> : tensor<2xi64>") "tensor<2xi64>\n"
              "  %n = \"moai.neg\"(%a) : (tensor<2xi64>) -> tensor<*xi64>\n"
              "  %r = \"moai.abs\"(%n) : (tensor<*xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[3, 4]> : tensor<2xi64>");
  EXPECT_FOLD(C("a", "dense<[1, 9, 3]> : tensor<3xi64>") "tensor<3xi64>\n"
              C("b", "dense<[4, 2, 8]> : tensor<3xi64>") "tensor<3xi64>\n"
              C("c", "dense<[5, 5, 9]> : tensor<3xi64>") "tensor<3xi64>\n"
              "  %r = \"moai.max\"(%a, %b, %c) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0, 0>} : (tensor<3xi64>, tensor<3xi64>, tensor<3xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[5, 9, 9]> : tensor<3xi64>");
}

static void test_fold_logic_cast(void) {
  /* where(equal(a, b), x, 0) */
  EXPECT_FOLD(C("a", "dense<[1, 2, 3]> : tensor<3xi64>") "tensor<3xi64>\n"
              C("b", "dense<[1, 0, 3]> : tensor<3xi64>") "tensor<3xi64>\n"
              C("x", "dense<[10, 20, 30]> : tensor<3xi64>") "tensor<3xi64>\n"
              C("z", "dense<0> : tensor<i64>") "tensor<i64>\n"
              "  %e = \"moai.equal\"(%a, %b) : (tensor<3xi64>, tensor<3xi64>) -> tensor<*xi1>\n"
              "  %r = \"moai.where\"(%e, %x, %z) : (tensor<*xi1>, tensor<3xi64>, tensor<i64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[10, 0, 30]> : tensor<3xi64>");
  EXPECT_FOLD(C("a", "dense<[1, 5]> : tensor<2xi64>") "tensor<2xi64>\n"
              C("b", "dense<3> : tensor<i64>") "tensor<i64>\n"
              "  %l = \"moai.less\"(%a, %b) : (tensor<2xi64>, tensor<i64>) -> tensor<*xi1>\n"
              "  %g = \"moai.greater_or_equal\"(%a, %b) : (tensor<2xi64>, tensor<i64>) -> tensor<*xi1>\n"
              "  %o = \"moai.or\"(%l, %g) : (tensor<*xi1>, tensor<*xi1>) -> tensor<*xi1>\n"
              "  %r = \"moai.not\"(%o) : (tensor<*xi1>) -> tensor<*xi1>\n",
              "tensor<*xi1>", "dense<false> : tensor<2xi1>");
  /* Float to int truncates toward zero. */
  EXPECT_FOLD(C("a", "dense<[1.9, -1.9, 2.5]> : tensor<3xf32>") "tensor<3xf32>\n"
              "  %r = \"moai.cast\"(%a) {saturate = 1 : i64, to = i64} : (tensor<3xf32>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[1, -1, 2]> : tensor<3xi64>");
  EXPECT_FOLD(C("a", "dense<[0, 2]> : tensor<2xi64>") "tensor<2xi64>\n"
              "  %r = \"moai.cast\"(%a) {saturate = 1 : i64, to = i1} : (tensor<2xi64>) -> tensor<*xi1>\n",
              "tensor<*xi1>", "dense<[false, true]> : tensor<2xi1>");
  EXPECT_FOLD(C("a", "dense<[300, -1]> : tensor<2xi64>") "tensor<2xi64>\n"
              "  %r = \"moai.cast\"(%a) {saturate = 1 : i64, to = i32} : (tensor<2xi64>) -> tensor<*xi32>\n",
              "tensor<*xi32>", "dense<[300, -1]> : tensor<2xi32>");
}

static void test_fold_shape_ops(void) {
  /* onnx: test_range_int32_type_negative_delta, _float_type_positive_delta */
  EXPECT_FOLD(C("s", "dense<10> : tensor<i32>") "tensor<i32>\n"
              C("l", "dense<6> : tensor<i32>") "tensor<i32>\n"
              C("d", "dense<-3> : tensor<i32>") "tensor<i32>\n"
              "  %r = \"moai.range\"(%s, %l, %d) : (tensor<i32>, tensor<i32>, tensor<i32>) -> tensor<*xi32>\n",
              "tensor<*xi32>", "dense<[10, 7]> : tensor<2xi32>");
  EXPECT_FOLD(C("s", "dense<1.0> : tensor<f32>") "tensor<f32>\n"
              C("l", "dense<5.0> : tensor<f32>") "tensor<f32>\n"
              C("d", "dense<2.0> : tensor<f32>") "tensor<f32>\n"
              "  %r = \"moai.range\"(%s, %l, %d) : (tensor<f32>, tensor<f32>, tensor<f32>) -> tensor<*xf32>\n",
              "tensor<*xf32>", "dense<[1.000000e+00, 3.000000e+00]> : tensor<2xf32>");
  EXPECT_FOLD(C("s", "dense<[2, 3]> : tensor<2xi64>") "tensor<2xi64>\n"
              "  %r = \"moai.constant_of_shape\"(%s) {value = dense<7> : tensor<1xi64>} : (tensor<2xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<7> : tensor<2x3xi64>");
  EXPECT_FOLD(C("s", "dense<[2]> : tensor<1xi64>") "tensor<1xi64>\n"
              "  %r = \"moai.constant_of_shape\"(%s) : (tensor<1xi64>) -> tensor<*xf32>\n",
              "tensor<*xf32>", "dense<0.000000e+00> : tensor<2xf32>");
  /* Gather with a negative index. */
  EXPECT_FOLD(C("d", "dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi64>") "tensor<3x2xi64>\n"
              C("i", "dense<[-1, 0]> : tensor<2xi64>") "tensor<2xi64>\n"
              "  %r = \"moai.gather\"(%d, %i) {axis = 0 : i64} : (tensor<3x2xi64>, tensor<2xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[[5, 6], [1, 2]]> : tensor<2x2xi64>");
  EXPECT_FOLD(C("d", "dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi64>") "tensor<3x2xi64>\n"
              C("i", "dense<1> : tensor<i32>") "tensor<i32>\n"
              "  %r = \"moai.gather\"(%d, %i) {axis = 1 : i64} : (tensor<3x2xi64>, tensor<i32>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[2, 4, 6]> : tensor<3xi64>");
  /* Slice backwards from the end with a huge negative end. */
  EXPECT_FOLD(C("x", "dense<[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]> : tensor<10xi64>") "tensor<10xi64>\n"
              C("s", "dense<-1> : tensor<1xi64>") "tensor<1xi64>\n"
              C("e", "dense<-9223372036854775808> : tensor<1xi64>") "tensor<1xi64>\n"
              C("a", "dense<0> : tensor<1xi64>") "tensor<1xi64>\n"
              C("t", "dense<-3> : tensor<1xi64>") "tensor<1xi64>\n"
              "  %r = \"moai.slice\"(%x, %s, %e, %a, %t) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<10xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[9, 6, 3, 0]> : tensor<4xi64>");
  EXPECT_FOLD(C("x", "dense<[[1, 2, 3], [4, 5, 6]]> : tensor<2x3xi32>") "tensor<2x3xi32>\n"
              "  %r = \"moai.transpose\"(%x) : (tensor<2x3xi32>) -> tensor<*xi32>\n",
              "tensor<*xi32>", "dense<[[1, 4], [2, 5], [3, 6]]> : tensor<3x2xi32>");
  EXPECT_FOLD(C("x", "dense<[1, 2]> : tensor<2xi64>") "tensor<2xi64>\n"
              C("s", "dense<[2, 1]> : tensor<2xi64>") "tensor<2xi64>\n"
              "  %r = \"moai.expand\"(%x, %s) : (tensor<2xi64>, tensor<2xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[[1, 2], [1, 2]]> : tensor<2x2xi64>");
  /* Variadic operands of different types cannot be written in .mlir text
   * (IRDL binds one type per variadic segment), so build this Concat. */
  si_fixture_t f;
  bool ok = false;
  char out[8192];
  fixture_infer_op(&f, "concat", "{axis = 0 : i64}", 1,
                   (const char *const[]){"dense<[[1, 2]]> : tensor<1x2xi64>",
                                         "dense<[[3, 4], [5, 6]]> : tensor<2x2xi64>",
                                         NULL},
                   &ok);
  CU_ASSERT_TRUE(ok);
  CU_ASSERT_TRUE(fixture_run(&f, true, kNoFoldLimit));
  fixture_module_text(&f, out, sizeof(out));
  EXPECT_CONTAINS(out, "dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi64>");
  CU_ASSERT_EQUAL(count(out, "moai.concat"), 0);
  fixture_close(&f);
  EXPECT_FOLD(C("x", "dense<[[1, 2, 3]]> : tensor<1x3xi64>") "tensor<1x3xi64>\n"
              C("a", "dense<0> : tensor<1xi64>") "tensor<1xi64>\n"
              "  %r = \"moai.squeeze\"(%x, %a) : (tensor<1x3xi64>, tensor<1xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[1, 2, 3]> : tensor<3xi64>");
}

static void test_fold_reductions(void) {
  EXPECT_FOLD(C("x", "dense<[[1, 2], [3, 4]]> : tensor<2x2xi64>") "tensor<2x2xi64>\n"
              C("a", "dense<1> : tensor<1xi64>") "tensor<1xi64>\n"
              "  %r = \"moai.reduce_sum\"(%x, %a) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64} : (tensor<2x2xi64>, tensor<1xi64>) -> tensor<*xi64>\n",
              "tensor<*xi64>", "dense<[3, 7]> : tensor<2xi64>");
  EXPECT_FOLD(C("x", "dense<[[1.0, 2.0], [3.0, 4.0]]> : tensor<2x2xf32>") "tensor<2x2xf32>\n"
              C("a", "dense<0> : tensor<1xi64>") "tensor<1xi64>\n"
              "  %r = \"moai.reduce_mean\"(%x, %a) {keepdims = 1 : i64, noop_with_empty_axes = 0 : i64} : (tensor<2x2xf32>, tensor<1xi64>) -> tensor<*xf32>\n",
              "tensor<*xf32>", "dense<[[2.000000e+00, 3.000000e+00]]> : tensor<1x2xf32>");
  EXPECT_FOLD(C("x", "dense<[[1, 7], [3, 4]]> : tensor<2x2xi32>") "tensor<2x2xi32>\n"
              "  %r = \"moai.reduce_max\"(%x) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64} : (tensor<2x2xi32>) -> tensor<*xi32>\n",
              "tensor<*xi32>", "dense<7> : tensor<i32>");
}

/* Values with no defined result, and results over the limit, stay ops. */
static void test_fold_declined(void) {
  const char *div0 =
      "func.func @f() -> tensor<*xi64> {\n"
      "  %a = \"moai.constant\"() {value = dense<[1, 2]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "  %b = \"moai.constant\"() {value = dense<[1, 0]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "  %r = \"moai.div\"(%a, %b) : (tensor<2xi64>, tensor<2xi64>) -> tensor<*xi64>\n"
      "  return %r : tensor<*xi64>\n}\n";
  si_fixture_t f;
  char out[8192];
  CU_ASSERT_TRUE(run_module(&f, div0, true, kNoFoldLimit, out, sizeof(out)));
  EXPECT_CONTAINS(out, "\"moai.div\"");
  EXPECT_CONTAINS(out, "-> tensor<2xi64>");
  fixture_close(&f);
  const char *big =
      "func.func @f() -> tensor<*xf32> {\n"
      "  %s = \"moai.constant\"() {value = dense<[3, 3]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "  %r = \"moai.constant_of_shape\"(%s) : (tensor<2xi64>) -> tensor<*xf32>\n"
      "  return %r : tensor<*xf32>\n}\n";
  CU_ASSERT_TRUE(run_module(&f, big, true, 8, out, sizeof(out)));
  EXPECT_CONTAINS(out, "\"moai.constant_of_shape\"");
  EXPECT_CONTAINS(out, "-> tensor<3x3xf32>");
  fixture_close(&f);
  /* max_fold_elements 0 turns folding off. */
  CU_ASSERT_TRUE(run_module(&f, big, true, 0, out, sizeof(out)));
  EXPECT_CONTAINS(out, "\"moai.constant_of_shape\"");
  fixture_close(&f);
  const char *nan =
      "func.func @f() -> tensor<*xi64> {\n"
      "  %a = \"moai.constant\"() {value = dense<0x7FC00000> : tensor<1xf32>} : () -> tensor<1xf32>\n"
      "  %r = \"moai.cast\"(%a) {saturate = 1 : i64, to = i64} : (tensor<1xf32>) -> tensor<*xi64>\n"
      "  return %r : tensor<*xi64>\n}\n";
  CU_ASSERT_TRUE(run_module(&f, nan, true, kNoFoldLimit, out, sizeof(out)));
  EXPECT_CONTAINS(out, "\"moai.cast\"");
  fixture_close(&f);
}

static void test_fold_errors(void) {
  const char *text =
      "func.func @f() -> tensor<*xi64> {\n"
      "  %d = \"moai.constant\"() {value = dense<[1, 2, 3]> : tensor<3xi64>} : () -> tensor<3xi64>\n"
      "  %i = \"moai.constant\"() {value = dense<[3]> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "  %r = \"moai.gather\"(%d, %i) {axis = 0 : i64} : (tensor<3xi64>, tensor<1xi64>) -> tensor<*xi64>\n"
      "  return %r : tensor<*xi64>\n}\n";
  si_fixture_t f;
  char out[8192];
  CU_ASSERT_FALSE(run_module(&f, text, true, kNoFoldLimit, out, sizeof(out)));
  EXPECT_CONTAINS(f.errors, "Gather: index 3 out of range for axis 0 of size 3");
  fixture_close(&f);
}

/* ---- the static-shape check and function types ------------------------------ */

static void test_require_static(void) {
  const char *runtime_shape =
      "func.func @f(%x: tensor<6xf32>, %s: tensor<2xi64>) -> tensor<*xf32> {\n"
      "  %r = \"moai.reshape\"(%x, %s) {allowzero = 0 : i64} : (tensor<6xf32>, tensor<2xi64>) -> tensor<*xf32>\n"
      "  %n = \"moai.neg\"(%r) : (tensor<*xf32>) -> tensor<*xf32>\n"
      "  return %n : tensor<*xf32>\n}\n";
  si_fixture_t f;
  char out[8192];
  CU_ASSERT_FALSE(run_module(&f, runtime_shape, true, kNoFoldLimit, out, sizeof(out)));
  EXPECT_STR(f.errors,
             "Reshape: result 0 has no static shape: its shape depends on the "
             "runtime value of operand 'shape'\n");
  fixture_close(&f);
  /* Without require_static the same module passes, shapes left unknown. */
  CU_ASSERT_TRUE(run_module(&f, runtime_shape, false, kNoFoldLimit, out, sizeof(out)));
  EXPECT_STR(fixture_func_type(&f),
             "(tensor<6xf32>, tensor<2xi64>) -> tensor<?x?xf32>");
  fixture_close(&f);
  /* A dynamic argument is reported once, at the function, not at every op
   * its unknown dimension flows into. */
  const char *dynamic_arg =
      "func.func @f(%x: tensor<?x4xf32>) -> tensor<*xf32> {\n"
      "  %a = \"moai.relu\"(%x) : (tensor<?x4xf32>) -> tensor<*xf32>\n"
      "  %b = \"moai.exp\"(%a) : (tensor<*xf32>) -> tensor<*xf32>\n"
      "  return %b : tensor<*xf32>\n}\n";
  CU_ASSERT_FALSE(run_module(&f, dynamic_arg, true, kNoFoldLimit, out, sizeof(out)));
  EXPECT_STR(f.errors, "argument 0 has no static shape (tensor<?x4xf32>)\n");
  fixture_close(&f);
}

static void test_function_type(void) {
  const char *text =
      "func.func @f(%a: tensor<2x3xf32>, %b: tensor<3xf32>) -> (tensor<*xf32>, tensor<?x3xi1>) {\n"
      "  %0 = \"moai.add\"(%a, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<*xf32>\n"
      "  %1 = \"moai.less\"(%a, %b) : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<?x3xi1>\n"
      "  return %0, %1 : tensor<*xf32>, tensor<?x3xi1>\n}\n";
  si_fixture_t f;
  char out[8192];
  CU_ASSERT_TRUE(run_module(&f, text, true, kNoFoldLimit, out, sizeof(out)));
  EXPECT_STR(fixture_func_type(&f),
             "(tensor<2x3xf32>, tensor<3xf32>) -> (tensor<2x3xf32>, tensor<2x3xi1>)");
  fixture_close(&f);
  /* A declared result that contradicts the inferred one is an error. */
  const char *wrong =
      "func.func @f(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {\n"
      "  %0 = \"moai.relu\"(%a) : (tensor<2x3xf32>) -> tensor<3x2xf32>\n"
      "  return %0 : tensor<3x2xf32>\n}\n";
  CU_ASSERT_FALSE(run_module(&f, wrong, true, kNoFoldLimit, out, sizeof(out)));
  EXPECT_CONTAINS(f.errors, "result 0 of the function is declared tensor<3x2xf32> "
                            "but the returned value is tensor<2x3xf32>");
  fixture_close(&f);
}

/* An error stops the pass with its diagnostic. */
static void test_errors_fail_the_pass(void) {
  const char *text =
      "func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) -> tensor<*xf32> {\n"
      "  %0 = \"moai.add\"(%a, %b) : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<*xf32>\n"
      "  return %0 : tensor<*xf32>\n}\n";
  si_fixture_t f;
  char out[8192];
  CU_ASSERT_FALSE(run_module(&f, text, true, kNoFoldLimit, out, sizeof(out)));
  EXPECT_STR(f.errors, "Add: operands 2x3 and 4x3 do not broadcast\n");
  fixture_close(&f);
  CU_ASSERT_FALSE(moai_shape_infer_op((MlirOperation){NULL}));
  CU_ASSERT_FALSE(moai_shape_infer_run((MlirOperation){NULL}, NULL));
}

/* Running twice changes nothing the second time. */
static void test_idempotent(void) {
  const char *text =
      "func.func @f(%x: tensor<4x6xf32>) -> tensor<*xf32> {\n"
      "  %s = \"moai.shape\"(%x) {start = 0 : i64} : (tensor<4x6xf32>) -> tensor<*xi64>\n"
      "  %z = \"moai.constant_of_shape\"(%s) : (tensor<*xi64>) -> tensor<*xf32>\n"
      "  %r = \"moai.add\"(%x, %z) : (tensor<4x6xf32>, tensor<*xf32>) -> tensor<*xf32>\n"
      "  return %r : tensor<*xf32>\n}\n";
  si_fixture_t f;
  char once[8192], twice[8192];
  CU_ASSERT_TRUE(run_module(&f, text, true, kNoFoldLimit, once, sizeof(once)));
  CU_ASSERT_TRUE(fixture_run(&f, true, kNoFoldLimit));
  fixture_module_text(&f, twice, sizeof(twice));
  EXPECT_STR(twice, once);
  EXPECT_CONTAINS(once, "dense<0.000000e+00> : tensor<4x6xf32>");
  fixture_close(&f);
}

/* The pass object: runs in a pass manager, and every instance it creates
 * (MLIR clones passes) is destroyed. */
static void test_pass_lifecycle(void) {
  long live = moai_external_pass_live_count();
  si_fixture_t f;
  CU_ASSERT_TRUE_FATAL(fixture_open(
      &f, "func.func @f(%a: tensor<2x3xf32>) -> tensor<*xf32> {\n"
          "  %0 = \"moai.transpose\"(%a) : (tensor<2x3xf32>) -> tensor<*xf32>\n"
          "  return %0 : tensor<*xf32>\n}\n"));
  moai_shape_infer_options_t options = moai_shape_infer_options_default();
  MlirPassManager pm = mlirPassManagerCreate(f.ctx);
  MlirPass pass = moai_shape_infer_pass_create(&options);
  CU_ASSERT_PTR_NOT_NULL(pass.ptr);
  mlirPassManagerAddOwnedPass(pm, pass);
  CU_ASSERT_TRUE(mlirLogicalResultIsSuccess(
      mlirPassManagerRunOnOp(pm, mlirModuleGetOperation(f.module))));
  EXPECT_STR(fixture_func_type(&f), "(tensor<2x3xf32>) -> tensor<3x2xf32>");
  mlirPassManagerDestroy(pm);
  CU_ASSERT_EQUAL(moai_external_pass_live_count(), live);
  fixture_close(&f);
}

void moai_test_register(void) {
  static CU_TestInfo fold[] = {
      {"mistral_shape_chain", test_mistral_shape_chain},
      {"arithmetic", test_fold_arithmetic},
      {"logic_cast", test_fold_logic_cast},
      {"shape_ops", test_fold_shape_ops},
      {"reductions", test_fold_reductions},
      {"declined", test_fold_declined},
      {"errors", test_fold_errors},
      CU_TEST_INFO_NULL};
  static CU_TestInfo pass[] = {
      {"require_static", test_require_static},
      {"function_type", test_function_type},
      {"errors_fail_the_pass", test_errors_fail_the_pass},
      {"idempotent", test_idempotent},
      {"pass_lifecycle", test_pass_lifecycle},
      CU_TEST_INFO_NULL};
  moai_test_add_suite("shape_infer.fold", fold);
  moai_test_add_suite("shape_infer.pass", pass);
}
