/* Lowering of the gradient ops of indexing and softmax (lower_grad_index.c
 * and the forward rules they share in lower_ops.c): kernel ids, operands
 * passed, normalised attributes, and the errors for parameters the backend
 * cannot fold. Planned modules are written by hand, as in test_codegen.c. */
#include <stdio.h>
#include <string.h>

#include "abi/moai_ops.h"
#include "codegen/codegen.h"
#include "ir/dialect.h"
#include "moai_test.h"

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

/* A module around one planned @main (4 KiB arena). */
static MlirModule parse_main(const char *args, const char *results, const char *body) {
  char text[8192];
  snprintf(text, sizeof(text),
           "module attributes {moai.source = \"t.onnx\", moai.opset = 21 : i64} {\n"
           "func.func @main(%s) -> (%s) attributes {moai.arena_size = 4096 : i64,"
           " moai.live_lower_bound = 1024 : i64, moai.arena_alignment = 64 : i64} {\n"
           "%s\n}\n}\n",
           args, results, body);
  return mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(text));
}

static moai_device_program_t *lower_ok(MlirModule m) {
  moai_lower_options_t o = {.layout = moai_weights_layout_safetensors};
  moai_device_program_t *p = NULL;
  moai_status_t s = moai_device_lower(m, &o, moai_allocator_system(), &p);
  if (s) {
    fprintf(stderr, "lowering failed: %s\n", moai_status_message(s));
    moai_status_free(s);
  }
  return p;
}

static const char *lower_error(MlirModule m) {
  static char msg[512];
  moai_lower_options_t o = {.layout = moai_weights_layout_safetensors};
  moai_device_program_t *p = NULL;
  moai_status_t s = moai_device_lower(m, &o, moai_allocator_system(), &p);
  CU_ASSERT_PTR_NOT_NULL(s);
  CU_ASSERT_PTR_NULL(p);
  snprintf(msg, sizeof(msg), "%s", s ? moai_status_message(s) : "");
  moai_status_free(s);
  moai_device_program_destroy(p);
  return msg;
}

static void test_gather_grad(void) {
  MlirModule m = parse_main(
      "%g: tensor<2x3x5xf32> {moai.name = \"g\", moai.offset = 0 : i64},"
      " %i: tensor<3xi32> {moai.name = \"i\", moai.offset = 128 : i64}",
      "tensor<2x7x5xf32>",
      "%y = \"moai.gather_grad\"(%g, %i) {axis = -2 : i64, shape = array<i64: 2, 7, 5>,"
      " moai.offsets = array<i64: 256>} : (tensor<2x3x5xf32>, tensor<3xi32>) -> tensor<2x7x5xf32>\n"
      "return %y : tensor<2x7x5xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = lower_ok(m);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  const moai_op_desc_t *d = moai_device_program_op(p, 0);
  CU_ASSERT_EQUAL(d->kernel, MOAI_KERNEL_GATHER_GRAD);
  CU_ASSERT_EQUAL(d->n_in, 2);
  CU_ASSERT_EQUAL(d->n_out, 1);
  CU_ASSERT_EQUAL(moai_op_out(d, 0)->dims[1], 7);
  CU_ASSERT_EQUAL(d->attrs_size, sizeof(moai_attrs_axis_t));
  CU_ASSERT_EQUAL(((const moai_attrs_axis_t *)moai_op_attrs(d))->axis, 1);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

/* x[1:3, -1:-100:-2] on 4x6, as test_codegen.c's Slice: the same
 * normalisation (axis 1 starts at 5, step -2), only grad passed. */
static void test_slice_grad_folded(void) {
  MlirModule m = parse_main(
      "%g: tensor<2x3xf32> {moai.name = \"g\", moai.offset = 0 : i64}",
      "tensor<4x6xf32>",
      "%s = \"moai.constant\"() {value = dense<[1, -1]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "%e = \"moai.constant\"() {value = dense<[3, -100]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "%a = \"moai.constant\"() {value = dense<[0, -1]> : tensor<2xi32>} : () -> tensor<2xi32>\n"
      "%t = \"moai.constant\"() {value = dense<[1, -2]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "%y = \"moai.slice_grad\"(%g, %s, %e, %a, %t) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>,"
      " shape = array<i64: 4, 6>, moai.offsets = array<i64: 128>} : (tensor<2x3xf32>, tensor<2xi64>,"
      " tensor<2xi64>, tensor<2xi32>, tensor<2xi64>) -> tensor<4x6xf32>\n"
      "return %y : tensor<4x6xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = lower_ok(m);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  const moai_op_desc_t *d = moai_device_program_op(p, 0);
  CU_ASSERT_EQUAL(d->kernel, MOAI_KERNEL_SLICE_GRAD);
  CU_ASSERT_EQUAL(d->n_in, 1);
  CU_ASSERT_EQUAL(d->attrs_size, sizeof(moai_attrs_slice_t));
  const moai_attrs_slice_t *a = moai_op_attrs(d);
  CU_ASSERT(a->start[0] == 1 && a->step[0] == 1 && a->start[1] == 5 && a->step[1] == -2);
  CU_ASSERT_EQUAL(a->runtime_params, 0);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

static void test_slice_grad_errors(void) {
  /* starts from a graph input: not foldable */
  MlirModule m = parse_main(
      "%g: tensor<2x6xf32> {moai.name = \"g\", moai.offset = 0 : i64},"
      " %s: tensor<1xi64> {moai.name = \"s\", moai.offset = 64 : i64}",
      "tensor<4x6xf32>",
      "%e = \"moai.constant\"() {value = dense<[3]> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "%y = \"moai.slice_grad\"(%g, %s, %e) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>,"
      " shape = array<i64: 4, 6>, moai.offsets = array<i64: 128>} : (tensor<2x6xf32>, tensor<1xi64>,"
      " tensor<1xi64>) -> tensor<4x6xf32>\n"
      "return %y : tensor<4x6xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  const char *msg = lower_error(m);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "slice_grad: 'starts' must be a constant"));
  if (!strstr(msg, "slice_grad: 'starts' must be a constant")) fprintf(stderr, "%s\n", msg);
  mlirModuleDestroy(m);

  /* counts that disagree with grad */
  m = parse_main(
      "%g: tensor<3x6xf32> {moai.name = \"g\", moai.offset = 0 : i64}",
      "tensor<4x6xf32>",
      "%s = \"moai.constant\"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "%e = \"moai.constant\"() {value = dense<[3]> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "%y = \"moai.slice_grad\"(%g, %s, %e) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>,"
      " shape = array<i64: 4, 6>, moai.offsets = array<i64: 128>} : (tensor<3x6xf32>, tensor<1xi64>,"
      " tensor<1xi64>) -> tensor<4x6xf32>\n"
      "return %y : tensor<4x6xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  CU_ASSERT_PTR_NOT_NULL(strstr(lower_error(m), "element counts disagree with the gradient"));
  mlirModuleDestroy(m);
}

static void test_softmax_and_sce_grads(void) {
  MlirModule m = parse_main(
      "%y: tensor<3x5xf64> {moai.name = \"y\", moai.offset = 0 : i64},"
      " %g: tensor<3x5xf64> {moai.name = \"g\", moai.offset = 128 : i64},"
      " %l: tensor<3xi64> {moai.name = \"l\", moai.offset = 256 : i64},"
      " %s: tensor<f64> {moai.name = \"s\", moai.offset = 320 : i64}",
      "tensor<3x5xf64>, tensor<3x5xf64>, tensor<3x5xf64>",
      "%a = \"moai.softmax_grad\"(%y, %g) {axis = -1 : i64, moai.offsets = array<i64: 384>}"
      " : (tensor<3x5xf64>, tensor<3x5xf64>) -> tensor<3x5xf64>\n"
      "%b = \"moai.log_softmax_grad\"(%y, %g) {axis = 0 : i64, moai.offsets = array<i64: 512>}"
      " : (tensor<3x5xf64>, tensor<3x5xf64>) -> tensor<3x5xf64>\n"
      "%c = \"moai.softmax_cross_entropy_loss_grad\"(%y, %l, %s) {reduction = \"sum\","
      " ignore_index = -1 : i64, moai.offsets = array<i64: 640>}"
      " : (tensor<3x5xf64>, tensor<3xi64>, tensor<f64>) -> tensor<3x5xf64>\n"
      "return %a, %b, %c : tensor<3x5xf64>, tensor<3x5xf64>, tensor<3x5xf64>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = lower_ok(m);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  const moai_op_desc_t *d = moai_device_program_op(p, 0);
  CU_ASSERT_EQUAL(d->kernel, MOAI_KERNEL_SOFTMAX_GRAD);
  CU_ASSERT_EQUAL(((const moai_attrs_axis_t *)moai_op_attrs(d))->axis, 1);
  d = moai_device_program_op(p, 1);
  CU_ASSERT_EQUAL(d->kernel, MOAI_KERNEL_LOG_SOFTMAX_GRAD);
  CU_ASSERT_EQUAL(((const moai_attrs_axis_t *)moai_op_attrs(d))->axis, 0);
  d = moai_device_program_op(p, 2);
  CU_ASSERT_EQUAL(d->kernel, MOAI_KERNEL_SCE_GRAD);
  CU_ASSERT_EQUAL(d->n_in, 4); /* absent weights: a NONE slot */
  CU_ASSERT_EQUAL(moai_op_in(d, 2)->region, MOAI_REGION_NONE);
  CU_ASSERT_EQUAL(moai_op_in(d, 3)->rank, 0);
  const moai_attrs_sce_t *a = moai_op_attrs(d);
  CU_ASSERT(a->reduction == 1 && a->has_ignore_index == 1 && a->ignore_index == -1);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

void moai_test_register(void) {
  CU_pSuite suite = CU_add_suite("lower_grad_index", suite_init, suite_clean);
  static CU_TestInfo tests[] = {
      {"gather_grad", test_gather_grad},
      {"slice_grad folded", test_slice_grad_folded},
      {"slice_grad errors", test_slice_grad_errors},
      {"softmax and cross-entropy gradients", test_softmax_and_sce_grads},
      CU_TEST_INFO_NULL,
  };
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
