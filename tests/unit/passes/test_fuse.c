/* Unit tests of moai-fuse's SwiGLU and rotary-embedding matchers through
 * moai_fuse_run: the counts in moai_fuse_stats_t, the options that turn each
 * rewrite off, and near-miss chains left alone (tests/lit/passes/fuse/ has
 * the IR-level checks). */
#include "fuse/fuse.h"
#include "shape_infer_fixture.h"

static int count(const char *haystack, const char *needle) {
  int n = 0;
  for (const char *p = strstr(haystack, needle); p; p = strstr(p + 1, needle)) ++n;
  return n;
}

/* SwiGLU on [2,6], then a rotary embedding of [1,2,3,6] with cos/sin
 * [3,6]; START and END bound the upper half's slice (3 and 6, or -3 and
 * past the end, are rotate_half's), CS is the cos/sin type. */
#define MODULE(START, END, CS)                                                                          \
  "func.func @f(%g: tensor<2x6xf32>, %u: tensor<2x6xf32>, %x: tensor<1x2x3x6xf32>, %c: " CS        \
  ", %s: " CS ") -> (tensor<2x6xf32>, tensor<1x2x3x6xf32>) {\n"                                   \
  "  %sg = \"moai.sigmoid\"(%g) : (tensor<2x6xf32>) -> tensor<2x6xf32>\n"                          \
  "  %silu = \"moai.mul\"(%g, %sg) : (tensor<2x6xf32>, tensor<2x6xf32>) -> tensor<2x6xf32>\n"      \
  "  %y = \"moai.mul\"(%silu, %u) : (tensor<2x6xf32>, tensor<2x6xf32>) -> tensor<2x6xf32>\n"       \
  "  %ax = \"moai.constant\"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>\n"        \
  "  %st = \"moai.constant\"() {value = dense<" START "> : tensor<1xi64>} : () -> tensor<1xi64>\n"  \
  "  %z = \"moai.constant\"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>\n"          \
  "  %h = \"moai.constant\"() {value = dense<3> : tensor<1xi64>} : () -> tensor<1xi64>\n"          \
  "  %e = \"moai.constant\"() {value = dense<" END "> : tensor<1xi64>} : () -> tensor<1xi64>\n"    \
  "  %xc = \"moai.mul\"(%x, %c) : (tensor<1x2x3x6xf32>, " CS ") -> tensor<1x2x3x6xf32>\n"          \
  "  %hi = \"moai.slice\"(%x, %st, %e, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : "   \
  "(tensor<1x2x3x6xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x3x3xf32>\n"    \
  "  %nh = \"moai.neg\"(%hi) : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>\n"                     \
  "  %lo = \"moai.slice\"(%x, %z, %h, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : "    \
  "(tensor<1x2x3x6xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x3x3xf32>\n"    \
  "  %rh = \"moai.concat\"(%nh, %lo) {axis = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 0, "  \
  "0, 0, 0, 0, 0>} : (tensor<1x2x3x3xf32>, tensor<1x2x3x3xf32>) -> tensor<1x2x3x6xf32>\n"          \
  "  %rs = \"moai.mul\"(%rh, %s) : (tensor<1x2x3x6xf32>, " CS ") -> tensor<1x2x3x6xf32>\n"         \
  "  %r = \"moai.add\"(%xc, %rs) : (tensor<1x2x3x6xf32>, tensor<1x2x3x6xf32>) -> "                 \
  "tensor<1x2x3x6xf32>\n"                                                                         \
  "  return %y, %r : tensor<2x6xf32>, tensor<1x2x3x6xf32>\n"                                      \
  "}\n"

static moai_fuse_stats_t run(const char *text, const moai_fuse_options_t *o, char *out, size_t cap) {
  si_fixture_t f;
  moai_fuse_stats_t st;
  memset(&st, 0xff, sizeof(st));
  CU_ASSERT_FATAL(fixture_open(&f, text));
  moai_fuse_run(mlirModuleGetOperation(f.module), o, &st);
  CU_ASSERT_TRUE(mlirOperationVerify(mlirModuleGetOperation(f.module)));
  fixture_module_text(&f, out, cap);
  fixture_close(&f);
  return st;
}

static void test_fuses_both(void) {
  moai_fuse_options_t o = moai_fuse_options_default();
  char out[16384];
  moai_fuse_stats_t st = run(MODULE("3", "6", "tensor<3x6xf32>"), &o, out, sizeof(out));
  CU_ASSERT_EQUAL(st.swiglu, 1);
  CU_ASSERT_EQUAL(st.rotary, 1);
  CU_ASSERT_EQUAL(st.attention + st.rms_norm + st.linear, 0);
  CU_ASSERT_EQUAL(count(out, "\"moai.swiglu\"(%arg0, %arg1)"), 1);
  CU_ASSERT_EQUAL(count(out, "\"moai.rotary\"(%arg2, %arg3, %arg4)"), 1);
  /* every op of both chains is gone (the constants stay for moai-simplify) */
  const char *gone[] = {"moai.sigmoid", "moai.mul", "moai.add", "moai.neg", "moai.slice",
                        "moai.concat"};
  for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); ++i) CU_ASSERT_EQUAL(count(out, gone[i]), 0);
}

static void test_options_off(void) {
  moai_fuse_options_t o = moai_fuse_options_default();
  o.swiglu = false;
  o.rotary = false;
  char out[16384];
  moai_fuse_stats_t st = run(MODULE("3", "6", "tensor<3x6xf32>"), &o, out, sizeof(out));
  CU_ASSERT_EQUAL(st.swiglu, 0);
  CU_ASSERT_EQUAL(st.rotary, 0);
  CU_ASSERT_EQUAL(count(out, "moai.sigmoid"), 1);
  CU_ASSERT_EQUAL(count(out, "moai.concat"), 1);
  o.swiglu = true;
  st = run(MODULE("3", "6", "tensor<3x6xf32>"), &o, out, sizeof(out));
  CU_ASSERT_EQUAL(st.swiglu, 1);
  CU_ASSERT_EQUAL(st.rotary, 0);
}

/* A slice of 3 from 2 is not rotate_half's upper half (the shapes agree,
 * only the start tells); cos/sin whose last dim broadcasts are not the
 * rotary tables the kernel reads (while a start of -3 and an end past the
 * dim do describe the upper half: see test_negative_start). */
static void test_near_misses(void) {
  moai_fuse_options_t o = moai_fuse_options_default();
  char out[16384];
  moai_fuse_stats_t st = run(MODULE("2", "5", "tensor<3x6xf32>"), &o, out, sizeof(out));
  CU_ASSERT_EQUAL(st.rotary, 0);
  CU_ASSERT_EQUAL(st.swiglu, 1);
  st = run(MODULE("-3", "100", "tensor<3x1xf32>"), &o, out, sizeof(out));
  CU_ASSERT_EQUAL(st.rotary, 0);
  CU_ASSERT_EQUAL(count(out, "moai.concat"), 1);
}

static void test_negative_start(void) {
  moai_fuse_options_t o = moai_fuse_options_default();
  char out[16384];
  moai_fuse_stats_t st = run(MODULE("-3", "100", "tensor<1x1x3x6xf32>"), &o, out, sizeof(out));
  CU_ASSERT_EQUAL(st.rotary, 1);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"swiglu and rotary chains fuse", test_fuses_both},
      {"options turn each rewrite off", test_options_off},
      {"near misses are left alone", test_near_misses},
      {"slice bounds counted from the end", test_negative_start},
      {NULL, NULL},
  };
  moai_test_add_suite("fuse", tests);
}
