/* Unit tests of the backend: lowering of small planned modules to op
 * descriptors (kernels, tensors, regions, normalised attributes, errors at
 * the op), and the generated device binary: compiled, linked, dlopen'ed,
 * its table read field by field against moai_abi.h and its step() run with
 * recording kernels. The memory plans are written by hand (the attributes
 * of moai-memory-plan), so the tests do not depend on the planner. */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "abi/moai_ops.h"
#include "codegen/codegen.h"
#include "ir/dialect.h"
#include "moai_test.h"

static MlirContext g_ctx;
static char g_dir[64];

static int suite_init(void) {
  moai_status_t s = moai_context_create(false, &g_ctx);
  if (s) {
    moai_status_free(s);
    return 1;
  }
  snprintf(g_dir, sizeof(g_dir), "/tmp/moai-codegen-test-XXXXXX");
  return mkdtemp(g_dir) == NULL;
}

static int suite_clean(void) {
  char path[128];
  const char *files[] = {"d.o", "d.so"};
  for (size_t i = 0; i < 2; ++i) {
    snprintf(path, sizeof(path), "%s/%s", g_dir, files[i]);
    unlink(path);
  }
  rmdir(g_dir);
  mlirContextDestroy(g_ctx);
  return 0;
}

/* A module around one planned @main: `args` are its arguments, `results`
 * its result types, `body` its ops (with the return). The arena is 4 KiB. */
static MlirModule parse_main(const char *args, const char *results,
                             const char *body) {
  char text[8192];
  snprintf(text, sizeof(text),
           "module attributes {moai.source = \"t.onnx\", moai.opset = 21 : i64} {\n"
           "func.func @main(%s) -> (%s) attributes {moai.arena_size = 4096 : i64,"
           " moai.live_lower_bound = 1024 : i64, moai.arena_alignment = 64 : i64} {\n"
           "%s\n}\n}\n",
           args, results, body);
  return mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(text));
}

static moai_status_t lower(MlirModule m, moai_device_program_t **out) {
  moai_lower_options_t o = {.layout = moai_weights_layout_safetensors};
  return moai_device_lower(m, &o, moai_allocator_system(), out);
}

static const moai_op_desc_t *op_at(const moai_device_program_t *p, uint32_t i) {
  return i < p->num_ops ? moai_device_program_op(p, i) : NULL;
}

#define X_ARG "%x: tensor<2x4xf32> {moai.name = \"x\", moai.offset = 0 : i64}"

/* ---- lowering ---------------------------------------------------------------- */

static void test_regions_and_constants(void) {
  MlirModule m = parse_main(
      X_ARG, "tensor<2x3xf32> {moai.name = \"y\"}",
      "%w = \"moai.weight\"() {name = \"w\", storage = \"raw\", file = \"t.onnx\","
      " offset = 16 : i64, length = 48 : i64, trainable = 0 : i64} : () -> tensor<4x3xf32>\n"
      "%c = \"moai.constant\"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : () -> tensor<3xf32>\n"
      "%b = \"moai.constant\"() {value = dense<[true, false, true]> : tensor<3xi1>} : () -> tensor<3xi1>\n"
      "%mm = \"moai.matmul\"(%x, %w) {moai.offsets = array<i64: 64>} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>\n"
      "%a = \"moai.add\"(%mm, %c) {moai.offsets = array<i64: 128>} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>\n"
      "%y = \"moai.where\"(%b, %a, %mm) {moai.offsets = array<i64: 192>} : (tensor<3xi1>, tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>\n"
      "return %y : tensor<2x3xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  CU_ASSERT_PTR_NULL(s);
  if (s) {
    moai_status_fprint(stderr, s, true);
    moai_status_free(s);
  }
  CU_ASSERT_FATAL(p != NULL);
  CU_ASSERT_EQUAL(p->num_ops, 3);
  CU_ASSERT_EQUAL(p->arena_size, 4096);
  CU_ASSERT_EQUAL(p->live_lower_bound, 1024);
  const moai_op_desc_t *mm = op_at(p, 0);
  CU_ASSERT_EQUAL(mm->kernel, MOAI_KERNEL_MATMUL);
  CU_ASSERT_EQUAL(mm->n_in, 2);
  CU_ASSERT_EQUAL(mm->n_out, 1);
  CU_ASSERT_EQUAL(mm->index, 0);
  CU_ASSERT_EQUAL(mm->size % 8, 0);
  CU_ASSERT_EQUAL(moai_op_in(mm, 0)->region, MOAI_REGION_ARENA);
  CU_ASSERT_EQUAL(moai_op_in(mm, 0)->offset, 0);
  CU_ASSERT_EQUAL(moai_op_in(mm, 1)->region, MOAI_REGION_WEIGHTS);
  CU_ASSERT_EQUAL(moai_op_in(mm, 1)->offset, p->weights[0].offset);
  CU_ASSERT_EQUAL(moai_op_in(mm, 1)->dims[0], 4);
  CU_ASSERT_EQUAL(moai_op_in(mm, 1)->dims[1], 3);
  CU_ASSERT_EQUAL(moai_op_out(mm, 0)->offset, 64);
  CU_ASSERT_EQUAL(moai_op_out(mm, 0)->dtype, MOAI_ABI_F32);
  /* the weight: where its bytes are, and its place in the weights file */
  CU_ASSERT_EQUAL(p->num_weights, 1);
  CU_ASSERT_STRING_EQUAL(p->weights[0].name, "w");
  CU_ASSERT_STRING_EQUAL(p->weights[0].storage, "raw");
  CU_ASSERT_EQUAL(p->weights[0].file_offset, 16);
  CU_ASSERT_EQUAL(p->weights[0].nbytes, 48);
  CU_ASSERT_EQUAL(p->weights_size, 48);
  /* constants: f32 bytes, bools one byte each, each naturally aligned */
  const moai_op_desc_t *add = op_at(p, 1);
  const moai_tensor_t *c = moai_op_in(add, 1);
  CU_ASSERT_EQUAL(c->region, MOAI_REGION_CONST);
  CU_ASSERT_EQUAL(c->offset % 4, 0);
  float f[3];
  memcpy(f, p->const_data + c->offset, sizeof(f));
  CU_ASSERT_EQUAL(f[0], 1.0f);
  CU_ASSERT_EQUAL(f[2], 3.0f);
  const moai_op_desc_t *where = op_at(p, 2);
  CU_ASSERT_EQUAL(where->kernel, MOAI_KERNEL_WHERE);
  const moai_tensor_t *b = moai_op_in(where, 0);
  CU_ASSERT_EQUAL(b->region, MOAI_REGION_CONST);
  CU_ASSERT_EQUAL(b->dtype, MOAI_ABI_BOOL);
  CU_ASSERT_EQUAL(p->const_data[b->offset], 1);
  CU_ASSERT_EQUAL(p->const_data[b->offset + 1], 0);
  CU_ASSERT_EQUAL(p->const_data[b->offset + 2], 1);
  /* io tables */
  CU_ASSERT_EQUAL(p->num_inputs, 1);
  CU_ASSERT_STRING_EQUAL(p->inputs[0].name, "x");
  CU_ASSERT_EQUAL(p->num_outputs, 1);
  CU_ASSERT_STRING_EQUAL(p->outputs[0].name, "y");
  CU_ASSERT_EQUAL(p->outputs[0].tensor.offset, 192);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

static void test_slice_folded(void) {
  /* x[1:3, -1:-100:-2] on 4x6: axis 1 starts at 5, steps -2, count 3 */
  MlirModule m = parse_main(
      "%x: tensor<4x6xf32> {moai.name = \"x\", moai.offset = 0 : i64}",
      "tensor<2x3xf32>",
      "%s = \"moai.constant\"() {value = dense<[1, -1]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "%e = \"moai.constant\"() {value = dense<[3, -100]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "%a = \"moai.constant\"() {value = dense<[0, -1]> : tensor<2xi32>} : () -> tensor<2xi32>\n"
      "%t = \"moai.constant\"() {value = dense<[1, -2]> : tensor<2xi64>} : () -> tensor<2xi64>\n"
      "%y = \"moai.slice\"(%x, %s, %e, %a, %t) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>,"
      " moai.offsets = array<i64: 128>} : (tensor<4x6xf32>, tensor<2xi64>, tensor<2xi64>,"
      " tensor<2xi32>, tensor<2xi64>) -> tensor<2x3xf32>\n"
      "return %y : tensor<2x3xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  CU_ASSERT_PTR_NULL_FATAL(s);
  const moai_op_desc_t *d = op_at(p, 0);
  CU_ASSERT_EQUAL(d->kernel, MOAI_KERNEL_SLICE);
  CU_ASSERT_EQUAL(d->n_in, 1); /* starts/ends/axes/steps are folded */
  CU_ASSERT_EQUAL(d->attrs_size, sizeof(moai_attrs_slice_t));
  const moai_attrs_slice_t *a = moai_op_attrs(d);
  CU_ASSERT_EQUAL(a->start[0], 1);
  CU_ASSERT_EQUAL(a->step[0], 1);
  CU_ASSERT_EQUAL(a->start[1], 5);
  CU_ASSERT_EQUAL(a->step[1], -2);
  CU_ASSERT_EQUAL(p->const_size, 0); /* folded constants are not in the blob */
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

static void test_window_and_reduce(void) {
  /* Conv SAME_UPPER, 6x5 input, 3x3 kernel, stride 2: out 3x3, pads
   * (0,1) begins and (1,1) ends. ReduceMean axes [-1] -> mask 0b1000;
   * ReduceSum with no axes and noop_with_empty_axes is a copy; a reshape
   * sharing its operand's buffer is no kernel at all. */
  MlirModule m = parse_main(
      "%x: tensor<1x1x6x5xf32> {moai.name = \"x\", moai.offset = 0 : i64}",
      "tensor<1x1x3xf32>, tensor<1x1x3x3xf32>, tensor<9xf32>",
      "%w = \"moai.weight\"() {name = \"w\", storage = \"absent\", trainable = 0 : i64} : () -> tensor<1x1x3x3xf32>\n"
      "%c = \"moai.conv\"(%x, %w) {auto_pad = \"SAME_UPPER\", group = 1 : i64,"
      " strides = array<i64: 2, 2>,"
      " moai.offsets = array<i64: 256>} : (tensor<1x1x6x5xf32>, tensor<1x1x3x3xf32>) -> tensor<1x1x3x3xf32>\n"
      "%ax = \"moai.constant\"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "%r = \"moai.reduce_mean\"(%c, %ax) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64, moai.offsets = array<i64: 320>}"
      " : (tensor<1x1x3x3xf32>, tensor<1xi64>) -> tensor<1x1x3xf32>\n"
      "%n = \"moai.reduce_sum\"(%c) {keepdims = 1 : i64, noop_with_empty_axes = 1 : i64, moai.offsets = array<i64: 384>}"
      " : (tensor<1x1x3x3xf32>) -> tensor<1x1x3x3xf32>\n"
      "%sh = \"moai.constant\"() {value = dense<9> : tensor<1xi64>} : () -> tensor<1xi64>\n"
      "%v = \"moai.reshape\"(%n, %sh) {allowzero = 0 : i64, moai.offsets = array<i64: 384>} : (tensor<1x1x3x3xf32>, tensor<1xi64>) -> tensor<9xf32>\n"
      "return %r, %n, %v : tensor<1x1x3xf32>, tensor<1x1x3x3xf32>, tensor<9xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_EQUAL_FATAL(p->num_ops, 3);
  const moai_op_desc_t *conv = op_at(p, 0);
  CU_ASSERT_EQUAL(conv->kernel, MOAI_KERNEL_CONV);
  CU_ASSERT_EQUAL(conv->n_in, 3);
  CU_ASSERT_EQUAL(moai_op_in(conv, 2)->region, MOAI_REGION_NONE); /* no bias */
  const moai_attrs_window_t *w = moai_op_attrs(conv);
  CU_ASSERT_EQUAL(w->spatial_rank, 2);
  CU_ASSERT_EQUAL(w->group, 1);
  CU_ASSERT_EQUAL(w->kernel[0], 3); /* from the weight's shape */
  CU_ASSERT_EQUAL(w->kernel[1], 3);
  CU_ASSERT_EQUAL(w->strides[0], 2);
  CU_ASSERT_EQUAL(w->dilations[1], 1);
  CU_ASSERT_EQUAL(w->pads[0], 0);
  CU_ASSERT_EQUAL(w->pads[1], 1);
  CU_ASSERT_EQUAL(w->pads[2], 1);
  CU_ASSERT_EQUAL(w->pads[3], 1);
  const moai_op_desc_t *mean = op_at(p, 1);
  CU_ASSERT_EQUAL(mean->kernel, MOAI_KERNEL_REDUCE_MEAN);
  CU_ASSERT_EQUAL(mean->n_in, 1);
  const moai_attrs_reduce_t *r = moai_op_attrs(mean);
  CU_ASSERT_EQUAL(r->axes_mask, 8u);
  CU_ASSERT_EQUAL(r->keepdims, 0);
  const moai_op_desc_t *copy = op_at(p, 2);
  CU_ASSERT_EQUAL(copy->kernel, MOAI_KERNEL_COPY);
  CU_ASSERT_EQUAL(moai_op_in(copy, 0)->offset, 256);
  CU_ASSERT_EQUAL(moai_op_out(copy, 0)->offset, 384);
  /* absent weights lower (their data is needed only for a plan) */
  s = moai_weights_check(p);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_NOT_FOUND);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s),
                                "weight 'w' has no data in the model"));
  moai_status_free(s);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

/* The gradient ops of conv, pools and layer norm reuse the forward rules'
 * normalisation: auto_pad resolved against `shape` (conv_grad_input,
 * average_pool_grad) or x (conv_grad_weight), kernel sizes from the weight
 * or `shape`, ceil_mode and count_include_pad, negative axes. */
static void test_grad_nn(void) {
  MlirModule m = parse_main(
      "%x: tensor<1x1x6x5xf32> {moai.name = \"x\", moai.offset = 0 : i64},"
      " %g: tensor<1x1x3x3xf32> {moai.name = \"g\", moai.offset = 128 : i64}",
      "tensor<1x1x6x5xf32>, tensor<1x1x3x3xf32>, tensor<1x1x6x5xf32>, tensor<5xf32>",
      "%w = \"moai.weight\"() {name = \"w\", storage = \"absent\", trainable = 0 : i64} : () -> tensor<1x1x3x3xf32>\n"
      "%s = \"moai.weight\"() {name = \"s\", storage = \"absent\", trainable = 0 : i64} : () -> tensor<5xf32>\n"
      "%dx = \"moai.conv_grad_input\"(%g, %w) {auto_pad = \"SAME_UPPER\", group = 1 : i64,"
      " strides = array<i64: 2, 2>, shape = array<i64: 1, 1, 6, 5>, moai.offsets = array<i64: 256>}"
      " : (tensor<1x1x3x3xf32>, tensor<1x1x3x3xf32>) -> tensor<1x1x6x5xf32>\n"
      "%dw = \"moai.conv_grad_weight\"(%x, %g) {auto_pad = \"SAME_UPPER\", group = 1 : i64,"
      " strides = array<i64: 2, 2>, shape = array<i64: 1, 1, 3, 3>, moai.offsets = array<i64: 384>}"
      " : (tensor<1x1x6x5xf32>, tensor<1x1x3x3xf32>) -> tensor<1x1x3x3xf32>\n"
      "%dp = \"moai.average_pool_grad\"(%g) {auto_pad = \"NOTSET\", ceil_mode = 1 : i64,"
      " count_include_pad = 1 : i64, kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>,"
      " shape = array<i64: 1, 1, 6, 5>, moai.offsets = array<i64: 448>}"
      " : (tensor<1x1x3x3xf32>) -> tensor<1x1x6x5xf32>\n"
      "%ln:3 = \"moai.layer_normalization_grad\"(%x, %s, %x) {axis = -1 : i64, epsilon = 1.0e-03 : f32,"
      " moai.offsets = array<i64: 576, 704, 768>}"
      " : (tensor<1x1x6x5xf32>, tensor<5xf32>, tensor<1x1x6x5xf32>) -> (tensor<1x1x6x5xf32>, tensor<5xf32>, tensor<5xf32>)\n"
      "return %dx, %dw, %dp, %ln#1 : tensor<1x1x6x5xf32>, tensor<1x1x3x3xf32>, tensor<1x1x6x5xf32>, tensor<5xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  if (s) fprintf(stderr, "%s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_EQUAL_FATAL(p->num_ops, 4);
  const moai_op_desc_t *gi = op_at(p, 0), *gw = op_at(p, 1), *ap = op_at(p, 2), *ln = op_at(p, 3);
  CU_ASSERT_EQUAL(gi->kernel, MOAI_KERNEL_CONV_GRAD_INPUT);
  CU_ASSERT_EQUAL(gi->n_in, 2);
  CU_ASSERT_EQUAL(gi->n_out, 1);
  CU_ASSERT_EQUAL(moai_op_in(gi, 0)->offset, 128);
  CU_ASSERT_EQUAL(moai_op_out(gi, 0)->dims[2], 6);
  CU_ASSERT_EQUAL(moai_op_out(gi, 0)->offset, 256);
  CU_ASSERT_EQUAL(gw->kernel, MOAI_KERNEL_CONV_GRAD_WEIGHT);
  CU_ASSERT_EQUAL(moai_op_in(gw, 0)->offset, 0);
  CU_ASSERT_EQUAL(moai_op_in(gw, 1)->offset, 128);
  /* SAME_UPPER over 6x5, kernel 3x3 (from w, from `shape`), stride 2: pads
   * (0, 1) begins, (1, 1) ends, as the forward conv */
  for (int k = 0; k < 2; ++k) {
    const moai_attrs_window_t *w = moai_op_attrs(k ? gw : gi);
    CU_ASSERT_EQUAL(w->spatial_rank, 2);
    CU_ASSERT_EQUAL(w->group, 1);
    CU_ASSERT_EQUAL(w->kernel[0], 3);
    CU_ASSERT_EQUAL(w->kernel[1], 3);
    CU_ASSERT_EQUAL(w->strides[1], 2);
    CU_ASSERT_EQUAL(w->dilations[0], 1);
    CU_ASSERT_EQUAL(w->pads[0], 0);
    CU_ASSERT_EQUAL(w->pads[1], 1);
    CU_ASSERT_EQUAL(w->pads[2], 1);
    CU_ASSERT_EQUAL(w->pads[3], 1);
  }
  CU_ASSERT_EQUAL(ap->kernel, MOAI_KERNEL_AVERAGE_POOL_GRAD);
  CU_ASSERT_EQUAL(ap->n_in, 1);
  const moai_attrs_window_t *aw = moai_op_attrs(ap);
  CU_ASSERT_EQUAL(aw->count_include_pad, 1);
  CU_ASSERT_EQUAL(aw->kernel[1], 2);
  CU_ASSERT_EQUAL(aw->pads[3], 0);
  CU_ASSERT_EQUAL(ln->kernel, MOAI_KERNEL_LAYER_NORM_GRAD);
  CU_ASSERT_EQUAL(ln->n_in, 3);
  CU_ASSERT_EQUAL(ln->n_out, 3);
  const moai_attrs_layer_norm_t *la = moai_op_attrs(ln);
  CU_ASSERT_EQUAL(la->axis, 3);
  CU_ASSERT_DOUBLE_EQUAL(la->epsilon, 1e-3, 1e-9);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

/* Lowers a module expected to fail; returns the status message (static). */
static const char *lower_error(MlirModule m, moai_status_code_t *out_code) {
  static char msg[512];
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  CU_ASSERT_PTR_NOT_NULL(s);
  CU_ASSERT_PTR_NULL(p);
  snprintf(msg, sizeof(msg), "%s", moai_status_message(s));
  if (out_code) *out_code = moai_status_code(s);
  moai_status_free(s);
  moai_device_program_destroy(p);
  return msg;
}

static void test_errors_at_the_op(void) {
  MlirModule m = parse_main(
      X_ARG, "tensor<2x4xf32>",
      "%r = \"moai.constant\"() {value = dense<0.5> : tensor<f32>} : () -> tensor<f32>\n"
      "%t = \"moai.constant\"() {value = dense<true> : tensor<i1>} : () -> tensor<i1>\n"
      "%d = \"moai.dropout\"(%x, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>,"
      " moai.offsets = array<i64: 64>} : (tensor<2x4xf32>, tensor<f32>, tensor<i1>) -> tensor<2x4xf32>"
      " loc(fused<\"Dropout\">[\"drop1\"(\"t.onnx\":3:1)])\n"
      "return %d : tensor<2x4xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_status_code_t code;
  const char *msg = lower_error(m, &code);
  CU_ASSERT_EQUAL(code, MOAI_UNIMPLEMENTED);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "t.onnx: node 'drop1' (Dropout): "
                                     "training-mode dropout is not supported "
                                     "by the backend yet"));
  mlirModuleDestroy(m);

  m = parse_main(
      "%x: tensor<1x1x4x4xf32> {moai.name = \"x\", moai.offset = 0 : i64}",
      "tensor<1x1x2x2xi64>",
      "%y, %i = \"moai.max_pool\"(%x) {auto_pad = \"NOTSET\", ceil_mode = 0 : i64, storage_order = 2 : i64,"
      " kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>,"
      " moai.offsets = array<i64: 64, 128>} : (tensor<1x1x4x4xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xi64>)\n"
      "return %i : tensor<1x1x2x2xi64>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  CU_ASSERT_PTR_NOT_NULL(strstr(lower_error(m, NULL), "storage_order 2 (ONNX allows 0 and 1)"));
  mlirModuleDestroy(m);

  m = parse_main(
      X_ARG, "tensor<2xi64>",
      "%s = \"moai.shape\"(%x) {start = 0 : i64, moai.offsets = array<i64: 64>} : (tensor<2x4xf32>) -> tensor<2xi64>\n"
      "return %s : tensor<2xi64>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  CU_ASSERT_PTR_NOT_NULL(strstr(lower_error(m, NULL), "moai.shape was not folded"));
  mlirModuleDestroy(m);

  /* a memory plan that does not fit its arena is caught, not emitted */
  m = parse_main(
      X_ARG, "tensor<2x4xf32>",
      "%e = \"moai.exp\"(%x) {moai.offsets = array<i64: 4090>} : (tensor<2x4xf32>) -> tensor<2x4xf32>\n"
      "return %e : tensor<2x4xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  CU_ASSERT_PTR_NOT_NULL(strstr(lower_error(m, NULL), "outside the arena"));
  mlirModuleDestroy(m);
}

/* Parameters computed at run time (here graph inputs) are passed in their
 * operand slots with the runtime_* flag; constants are still folded. */
static void test_runtime_params(void) {
  MlirModule m = parse_main(
      "%x: tensor<4x6xf32> {moai.name = \"x\", moai.offset = 0 : i64},"
      " %s: tensor<2xi64> {moai.name = \"s\", moai.offset = 128 : i64},"
      " %e: tensor<2xi32> {moai.name = \"e\", moai.offset = 192 : i64},"
      " %ax: tensor<1xi64> {moai.name = \"ax\", moai.offset = 256 : i64},"
      " %k: tensor<i64> {moai.name = \"k\", moai.offset = 320 : i64}",
      "tensor<2x3xf32>, tensor<4xf32>, tensor<4x6xf32>, tensor<4x6xf32>",
      "%y = \"moai.slice\"(%x, %s, %e) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>,"
      " moai.offsets = array<i64: 384>} : (tensor<4x6xf32>, tensor<2xi64>, tensor<2xi32>) -> tensor<2x3xf32>\n"
      "%r = \"moai.reduce_sum\"(%x, %ax) {keepdims = 0 : i64, noop_with_empty_axes = 1 : i64,"
      " moai.offsets = array<i64: 448>} : (tensor<4x6xf32>, tensor<1xi64>) -> tensor<4xf32>\n"
      "%t = \"moai.trilu\"(%x, %k) {upper = 0 : i64, moai.offsets = array<i64: 512>}"
      " : (tensor<4x6xf32>, tensor<i64>) -> tensor<4x6xf32>\n"
      "%c = \"moai.cumsum\"(%x, %k) {exclusive = 1 : i64, reverse = 0 : i64, moai.offsets = array<i64: 640>}"
      " : (tensor<4x6xf32>, tensor<i64>) -> tensor<4x6xf32>\n"
      "return %y, %r, %t, %c : tensor<2x3xf32>, tensor<4xf32>, tensor<4x6xf32>, tensor<4x6xf32>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  if (s) moai_status_fprint(stderr, s, true);
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_EQUAL_FATAL(p->num_ops, 4);
  const moai_op_desc_t *sl = op_at(p, 0);
  CU_ASSERT_EQUAL(sl->kernel, MOAI_KERNEL_SLICE);
  CU_ASSERT_EQUAL(sl->n_in, 5); /* data, starts, ends, axes (absent), steps (absent) */
  CU_ASSERT_EQUAL(moai_op_in(sl, 1)->offset, 128);
  CU_ASSERT_EQUAL(moai_op_in(sl, 2)->dtype, MOAI_ABI_I32);
  CU_ASSERT_EQUAL(moai_op_in(sl, 3)->region, MOAI_REGION_NONE);
  CU_ASSERT_EQUAL(moai_op_in(sl, 4)->region, MOAI_REGION_NONE);
  CU_ASSERT_EQUAL(sl->attrs_size, sizeof(moai_attrs_slice_t));
  CU_ASSERT_EQUAL(((const moai_attrs_slice_t *)moai_op_attrs(sl))->runtime_params, 1);
  const moai_op_desc_t *red = op_at(p, 1);
  CU_ASSERT_EQUAL(red->kernel, MOAI_KERNEL_REDUCE_SUM);
  CU_ASSERT_EQUAL(red->n_in, 2);
  CU_ASSERT_EQUAL(moai_op_in(red, 1)->offset, 256);
  const moai_attrs_reduce_t *ra = moai_op_attrs(red);
  CU_ASSERT_EQUAL(ra->runtime_axes, 1);
  CU_ASSERT_EQUAL(ra->noop_with_empty_axes, 1);
  CU_ASSERT_EQUAL(ra->keepdims, 0);
  const moai_op_desc_t *tr = op_at(p, 2);
  CU_ASSERT_EQUAL(tr->n_in, 2);
  CU_ASSERT_EQUAL(moai_op_in(tr, 1)->rank, 0);
  CU_ASSERT_EQUAL(((const moai_attrs_trilu_t *)moai_op_attrs(tr))->runtime_k, 1);
  CU_ASSERT_EQUAL(((const moai_attrs_trilu_t *)moai_op_attrs(tr))->upper, 0);
  const moai_op_desc_t *cs = op_at(p, 3);
  CU_ASSERT_EQUAL(cs->n_in, 2);
  const moai_attrs_cumsum_t *ca = moai_op_attrs(cs);
  CU_ASSERT_EQUAL(ca->runtime_axis, 1);
  CU_ASSERT_EQUAL(ca->exclusive, 1);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);

  /* what the types already tell is checked at compile time */
  static const struct {
    const char *args, *op, *needle;
  } bad[] = {
      {"%s: tensor<2xf32> {moai.name = \"s\", moai.offset = 128 : i64}",
       "%y = \"moai.slice\"(%x, %s, %s) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>,"
       " moai.offsets = array<i64: 384>} : (tensor<2x4xf32>, tensor<2xf32>, tensor<2xf32>) -> tensor<2x4xf32>",
       "'starts' must hold int32 or int64 values"},
      {"%s: tensor<3xi64> {moai.name = \"s\", moai.offset = 128 : i64}",
       "%y = \"moai.slice\"(%x, %s, %s) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>,"
       " moai.offsets = array<i64: 384>} : (tensor<2x4xf32>, tensor<3xi64>, tensor<3xi64>) -> tensor<2x4xf32>",
       "3 slice axes for an input of rank 2"},
      {"%s: tensor<1x2xi64> {moai.name = \"s\", moai.offset = 128 : i64}",
       "%y = \"moai.reduce_max\"(%x, %s) {keepdims = 1 : i64, noop_with_empty_axes = 0 : i64,"
       " moai.offsets = array<i64: 384>} : (tensor<2x4xf32>, tensor<1x2xi64>) -> tensor<2x4xf32>",
       "'axes' must be 1-D"},
      {"%s: tensor<2xi64> {moai.name = \"s\", moai.offset = 128 : i64}",
       "%y = \"moai.trilu\"(%x, %s) {upper = 1 : i64, moai.offsets = array<i64: 384>}"
       " : (tensor<2x4xf32>, tensor<2xi64>) -> tensor<2x4xf32>",
       "'k' must hold one value (it holds 2)"},
  };
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
    char args[256], body[1024];
    snprintf(args, sizeof(args), "%s, %s", X_ARG, bad[i].args);
    snprintf(body, sizeof(body), "%s\nreturn %%y : tensor<2x4xf32>", bad[i].op);
    m = parse_main(args, "tensor<2x4xf32>", body);
    CU_ASSERT_FATAL(!mlirModuleIsNull(m));
    const char *msg = lower_error(m, NULL);
    if (!strstr(msg, bad[i].needle)) fprintf(stderr, "case %zu: %s\n", i, msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, bad[i].needle));
    mlirModuleDestroy(m);
  }
}

/* A used Indices output of MaxPool is the descriptor's second output. */
static void test_max_pool_indices(void) {
  MlirModule m = parse_main(
      "%x: tensor<1x1x4x4xf32> {moai.name = \"x\", moai.offset = 0 : i64}",
      "tensor<1x1x2x2xi64>",
      "%y, %i = \"moai.max_pool\"(%x) {auto_pad = \"NOTSET\", ceil_mode = 0 : i64, storage_order = 1 : i64,"
      " kernel_shape = array<i64: 2, 2>, strides = array<i64: 2, 2>,"
      " moai.offsets = array<i64: 64, 128>} : (tensor<1x1x4x4xf32>) -> (tensor<1x1x2x2xf32>, tensor<1x1x2x2xi64>)\n"
      "return %i : tensor<1x1x2x2xi64>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  CU_ASSERT_PTR_NULL_FATAL(s);
  const moai_op_desc_t *d = op_at(p, 0);
  CU_ASSERT_EQUAL(d->kernel, MOAI_KERNEL_MAX_POOL);
  CU_ASSERT_EQUAL(d->n_out, 2);
  CU_ASSERT_EQUAL(moai_op_out(d, 1)->dtype, MOAI_ABI_I64);
  CU_ASSERT_EQUAL(moai_op_out(d, 1)->offset, 128);
  CU_ASSERT_EQUAL(((const moai_attrs_window_t *)moai_op_attrs(d))->storage_order, 1);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

static void test_needs_memory_plan(void) {
  MlirModule m = mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(
      "func.func @main(%x: tensor<2xf32>) -> tensor<2xf32> {\n"
      "  %e = \"moai.exp\"(%x) : (tensor<2xf32>) -> tensor<2xf32>\n"
      "  return %e : tensor<2xf32>\n}\n"));
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_status_code_t code;
  const char *msg = lower_error(m, &code);
  CU_ASSERT_EQUAL(code, MOAI_FAILED_PRECONDITION);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "moai-memory-plan"));
  mlirModuleDestroy(m);
}

/* ---- the device binary --------------------------------------------------------- */

typedef struct trace_t {
  uint32_t kernel[16];
  const moai_op_desc_t *desc[16];
  int ith[16], nth[16];
  int calls, barriers;
} trace_t;
static trace_t g_trace;

static void record_kernel(const moai_exec_t *ex, const moai_op_desc_t *op,
                          int ith, int nth) {
  (void)ex;
  if (g_trace.calls < 16) {
    g_trace.kernel[g_trace.calls] = op->kernel;
    g_trace.desc[g_trace.calls] = op;
    g_trace.ith[g_trace.calls] = ith;
    g_trace.nth[g_trace.calls] = nth;
  }
  g_trace.calls++;
}

static void record_barrier(const moai_exec_t *ex) {
  (void)ex;
  g_trace.barriers++;
}

/* Compiles p for this machine into g_dir/d.so and loads it: its table, or
 * NULL after a failed assertion. *lib and *target to release. */
static const moai_device_table_t *build_and_load(const moai_device_program_t *p,
                                                 moai_target_t *target, void **lib) {
  moai_status_t s = moai_target_resolve(NULL, NULL, target);
  CU_ASSERT_PTR_NULL_FATAL(s);
  MlirModule llvm = {NULL};
  s = moai_codegen_build(g_ctx, p, target, &llvm);
  CU_ASSERT_PTR_NULL_FATAL(s);
  char obj[128], so[128];
  snprintf(obj, sizeof(obj), "%s/d.o", g_dir);
  snprintf(so, sizeof(so), "%s/d.so", g_dir);
  char *ir = NULL;
  s = moai_codegen_compile(llvm, target, obj, &ir);
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_PTR_NOT_NULL(strstr(ir, "@moai_device_table_v3()"));
  free(ir);
  s = moai_codegen_link(obj, so);
  CU_ASSERT_PTR_NULL_FATAL(s);
  mlirModuleDestroy(llvm);
  /* a fresh path each time: dlopen would hand back an already loaded one */
  static int serial;
  char so2[160];
  snprintf(so2, sizeof(so2), "%s/d%d.so", g_dir, serial++);
  CU_ASSERT_EQUAL_FATAL(rename(so, so2), 0);
  *lib = dlopen(so2, RTLD_NOW | RTLD_LOCAL);
  unlink(so2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(*lib);
  moai_device_table_fn_t fn = (moai_device_table_fn_t)dlsym(*lib, MOAI_DEVICE_TABLE_SYMBOL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(fn);
  return fn();
}

static void test_binary_table_and_step(void) {
  MlirModule m = parse_main(
      X_ARG ", %z: tensor<3xi64> {moai.name = \"z\", moai.offset = 64 : i64}",
      "tensor<2x3xf32> {moai.name = \"y\"}, tensor<3xi64> {moai.name = \"z_out\"}",
      "%w = \"moai.weight\"() {name = \"w\", storage = \"raw\", file = \"t.onnx\","
      " offset = 0 : i64, length = 48 : i64, trainable = 1 : i64} : () -> tensor<4x3xf32>\n"
      "%c = \"moai.constant\"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : () -> tensor<3xf32>\n"
      "%mm = \"moai.matmul\"(%x, %w) {moai.offsets = array<i64: 128>} : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>\n"
      "%a = \"moai.add\"(%mm, %c) {moai.offsets = array<i64: 192>} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>\n"
      "%s = \"moai.softmax\"(%a) {axis = -1 : i64, moai.offsets = array<i64: 256>} : (tensor<2x3xf32>) -> tensor<2x3xf32>\n"
      "return %s, %z : tensor<2x3xf32>, tensor<3xi64>");
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  CU_ASSERT_PTR_NULL_FATAL(s);
  moai_target_t target;
  void *lib = NULL;
  const moai_device_table_t *t = build_and_load(p, &target, &lib);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t);
  CU_ASSERT_EQUAL(t->abi_version, MOAI_ABI_VERSION);
  CU_ASSERT_EQUAL(t->device, 0);
  CU_ASSERT_STRING_EQUAL(t->target_triple, target.triple);
  CU_ASSERT_STRING_EQUAL(t->target_cpu, target.cpu);
  CU_ASSERT_STRING_EQUAL(t->target_features, target.features);
  CU_ASSERT_PTR_NOT_NULL(t->moai_version);
  CU_ASSERT_EQUAL(t->arena_size, 4096);
  CU_ASSERT_EQUAL(t->weights_size, 48);
  CU_ASSERT_EQUAL(t->const_size, p->const_size);
  CU_ASSERT_EQUAL(memcmp(t->const_data, p->const_data, p->const_size), 0);
  CU_ASSERT_EQUAL((uintptr_t)t->const_data % 16, 0);
  CU_ASSERT_EQUAL(t->num_inputs, 2);
  CU_ASSERT_EQUAL(t->num_outputs, 2);
  CU_ASSERT_EQUAL(t->num_weights, 1);
  CU_ASSERT_EQUAL(t->num_ops, 3);
  CU_ASSERT_STRING_EQUAL(t->inputs[1].name, "z");
  CU_ASSERT_EQUAL(t->inputs[1].tensor.region, MOAI_REGION_ARENA);
  CU_ASSERT_EQUAL(t->inputs[1].tensor.dtype, MOAI_ABI_I64);
  CU_ASSERT_EQUAL(t->inputs[1].tensor.offset, 64);
  CU_ASSERT_EQUAL(t->inputs[1].tensor.rank, 1);
  CU_ASSERT_EQUAL(t->inputs[1].tensor.dims[0], 3);
  CU_ASSERT_STRING_EQUAL(t->outputs[0].name, "y");
  CU_ASSERT_EQUAL(t->outputs[0].tensor.offset, 256);
  CU_ASSERT_STRING_EQUAL(t->outputs[1].name, "z_out");
  CU_ASSERT_EQUAL(t->outputs[1].tensor.offset, 64);
  CU_ASSERT_STRING_EQUAL(t->weights[0].name, "w");
  CU_ASSERT_EQUAL(t->weights[0].tensor.region, MOAI_REGION_WEIGHTS);
  CU_ASSERT_EQUAL(t->weights[0].tensor.dims[1], 3);
  CU_ASSERT_PTR_NOT_NULL_FATAL(t->step);

  /* step(): each op's kernel with its descriptor, then a barrier */
  moai_kernel_fn_t kernels[MOAI_KERNEL_COUNT];
  for (int i = 0; i < MOAI_KERNEL_COUNT; ++i) kernels[i] = record_kernel;
  moai_exec_t ex = {.kernels = kernels, .barrier = record_barrier};
  memset(&g_trace, 0, sizeof(g_trace));
  t->step(&ex, 2, 5);
  CU_ASSERT_EQUAL(g_trace.calls, 3);
  CU_ASSERT_EQUAL(g_trace.barriers, 3);
  const uint32_t want[] = {MOAI_KERNEL_MATMUL, MOAI_KERNEL_ADD, MOAI_KERNEL_SOFTMAX};
  for (int i = 0; i < 3; ++i) {
    CU_ASSERT_EQUAL(g_trace.kernel[i], want[i]);
    CU_ASSERT_EQUAL(g_trace.ith[i], 2);
    CU_ASSERT_EQUAL(g_trace.nth[i], 5);
    const moai_op_desc_t *d = g_trace.desc[i];
    CU_ASSERT_EQUAL((uintptr_t)d % 16, 0);
    CU_ASSERT_EQUAL(d->index, (uint32_t)i);
    const moai_op_desc_t *ref = moai_device_program_op(p, (uint32_t)i);
    CU_ASSERT_EQUAL(d->size, ref->size);
    CU_ASSERT_EQUAL(memcmp(d, ref, ref->size), 0);
  }
  const moai_attrs_axis_t *ax = moai_op_attrs(g_trace.desc[2]);
  CU_ASSERT_EQUAL(ax->axis, 1); /* -1 made positive */
  dlclose(lib);
  moai_target_deinit(&target);
  moai_device_program_destroy(p);
  mlirModuleDestroy(m);
}

/* ---- elementwise fusion (fuse_elementwise.c) --------------------------------------- */

/* x [2,40] (80 elements: 5 lines of 16, so 3 threads get 32/32/16), a
 * scalar constant c; the chain a = x + c, b = a * x, d = b / c, e = -d,
 * f = sigmoid(e), g = exp(f) - x, h = sqrt(g*g), r = relu(h - x). `extra`
 * adds ops after it. */
#define EW_ARG "%x: tensor<2x40xf32> {moai.name = \"x\", moai.offset = 0 : i64}"
#define EW_T "tensor<2x40xf32>"
#define EW_CHAIN                                                                                   \
  "%c = \"moai.constant\"() {value = dense<1.5> : tensor<f32>} : () -> tensor<f32>\n"              \
  "%a = \"moai.add\"(%x, %c) {moai.offsets = array<i64: 512>} : (" EW_T ", tensor<f32>) -> " EW_T "\n" \
  "%b = \"moai.mul\"(%a, %x) {moai.offsets = array<i64: 1024>} : (" EW_T ", " EW_T ") -> " EW_T "\n"   \
  "%d = \"moai.div\"(%b, %c) {moai.offsets = array<i64: 512>} : (" EW_T ", tensor<f32>) -> " EW_T "\n" \
  "%e = \"moai.neg\"(%d) {moai.offsets = array<i64: 1024>} : (" EW_T ") -> " EW_T "\n"                 \
  "%f = \"moai.sigmoid\"(%e) {moai.offsets = array<i64: 512>} : (" EW_T ") -> " EW_T "\n"              \
  "%f2 = \"moai.exp\"(%f) {moai.offsets = array<i64: 1024>} : (" EW_T ") -> " EW_T "\n"                \
  "%g = \"moai.sub\"(%f2, %x) {moai.offsets = array<i64: 512>} : (" EW_T ", " EW_T ") -> " EW_T "\n"   \
  "%g2 = \"moai.mul\"(%g, %g) {moai.offsets = array<i64: 1024>} : (" EW_T ", " EW_T ") -> " EW_T "\n"  \
  "%h = \"moai.sqrt\"(%g2) {moai.offsets = array<i64: 512>} : (" EW_T ") -> " EW_T "\n"                \
  "%h2 = \"moai.sub\"(%h, %x) {moai.offsets = array<i64: 1024>} : (" EW_T ", " EW_T ") -> " EW_T "\n"  \
  "%r = \"moai.relu\"(%h2) {moai.offsets = array<i64: 1536>} : (" EW_T ") -> " EW_T "\n"

static moai_device_program_t *ew_program(const char *results, const char *extra, const char *ret) {
  char body[4096];
  snprintf(body, sizeof(body), "%s%s\nreturn %s", EW_CHAIN, extra, ret);
  if (strstr(ret, "%b")) { /* %b is kept to the end: its own place */
    char *at = strstr(body, "%b = ");
    char *off = at ? strstr(at, "1024") : NULL;
    if (off) memcpy(off, "2048", 4);
  }
  MlirModule m = parse_main(EW_ARG, results, body);
  CU_ASSERT_FATAL(!mlirModuleIsNull(m));
  moai_device_program_t *p = NULL;
  moai_status_t s = lower(m, &p);
  CU_ASSERT_PTR_NULL_FATAL(s);
  mlirModuleDestroy(m);
  return p;
}

static void test_elementwise_groups(void) {
  /* the whole chain: one group of 11 ops */
  moai_device_program_t *p = ew_program(EW_T " {moai.name = \"r\"}", "", "%r : " EW_T);
  uint32_t end[32];
  CU_ASSERT_EQUAL_FATAL(p->num_ops, 11);
  CU_ASSERT_EQUAL(moai_codegen_elementwise_groups(p, end), 1);
  CU_ASSERT_EQUAL(end[0], 10);
  moai_device_program_destroy(p);
  /* %b is also a result: the group stops at the op that makes it (the
   * rest, from %d on, is a group of its own) */
  p = ew_program(EW_T " {moai.name = \"r\"}, " EW_T " {moai.name = \"b\"}", "",
                 "%r, %b : " EW_T ", " EW_T);
  CU_ASSERT_EQUAL(moai_codegen_elementwise_groups(p, end), 2);
  CU_ASSERT_EQUAL(end[0], 1);
  CU_ASSERT_EQUAL(end[2], 10);
  moai_device_program_destroy(p);
  /* a softmax reading %h2 after the chain: %h2 stays in memory, the relu
   * is left out; a pipeline stage is never fused */
  p = ew_program(EW_T " {moai.name = \"r\"}, " EW_T " {moai.name = \"s\"}",
                 "%s = \"moai.softmax\"(%h2) {axis = -1 : i64, moai.offsets = array<i64: 2048>} : (" EW_T
                 ") -> " EW_T,
                 "%r, %s : " EW_T ", " EW_T);
  CU_ASSERT_EQUAL(moai_codegen_elementwise_groups(p, end), 1);
  CU_ASSERT_EQUAL(end[0], 9);
  CU_ASSERT_EQUAL(end[10], 10);
  p->pipeline = true;
  CU_ASSERT_EQUAL(moai_codegen_elementwise_groups(p, end), 0);
  moai_device_program_destroy(p);
}

/* x + c ... relu(...) in float, op by op, as the separate kernels do. */
static float ew_reference(float x) {
  float c = 1.5f, a = x + c, b = a * x, d = b / c, e = -d;
  float f = 1.0f / (1.0f + expf(-e)), f2 = expf(f), g = f2 - x, h = sqrtf(g * g), h2 = h - x;
  return h2 < 0.0f ? 0.0f : h2;
}

static void test_elementwise_fused_step(void) {
  for (int fused = 0; fused < 2; ++fused) {
    moai_device_program_t *p = ew_program(EW_T " {moai.name = \"r\"}", "", "%r : " EW_T);
    p->no_elementwise_fusion = !fused;
    moai_target_t target;
    void *lib = NULL;
    const moai_device_table_t *t = build_and_load(p, &target, &lib);
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    moai_kernel_fn_t kernels[MOAI_KERNEL_COUNT];
    for (int i = 0; i < MOAI_KERNEL_COUNT; ++i) kernels[i] = record_kernel;
    _Alignas(64) unsigned char arena[4096];
    float *x = (float *)(void *)arena, *r = (float *)(void *)(arena + 1536);
    for (int i = 0; i < 80; ++i) x[i] = (float)(i - 40) / 9.0f;
    moai_exec_t ex = {.kernels = kernels, .barrier = record_barrier};
    ex.base[MOAI_REGION_ARENA] = arena;
    ex.base[MOAI_REGION_CONST] = (unsigned char *)t->const_data;
    memset(&g_trace, 0, sizeof(g_trace));
    for (int i = 0; i < 80; ++i) r[i] = -7.0f;
    for (int ith = 0; ith < 3; ++ith) t->step(&ex, ith, 3); /* three threads' shares */
    if (fused) {
      /* one generated loop and one barrier per thread, no kernel */
      CU_ASSERT_EQUAL(g_trace.calls, 0);
      CU_ASSERT_EQUAL(g_trace.barriers, 3);
      double worst = 0.0;
      for (int i = 0; i < 80; ++i) {
        double err = fabs((double)r[i] - (double)ew_reference(x[i])) / (1.0 + fabs(ew_reference(x[i])));
        if (err > worst) worst = err;
      }
      /* exact ops but for exp (LLVM's vs libm's, within an ulp or two of
       * each, amplified at most by the chain's few roundings) */
      CU_ASSERT(worst < 1e-6);
      fprintf(stderr, "  fused elementwise chain vs C reference: max rel error %.1e\n", worst);
    } else {
      CU_ASSERT_EQUAL(g_trace.calls, 3 * 11);
      CU_ASSERT_EQUAL(g_trace.barriers, 3 * 11);
    }
    dlclose(lib);
    moai_target_deinit(&target);
    moai_device_program_destroy(p);
  }
}

static void test_target(void) {
  moai_target_t t;
  moai_status_t s = moai_target_resolve("x86-64-v3", NULL, &t);
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_STRING_EQUAL(t.cpu, "x86-64-v3");
  CU_ASSERT_PTR_NOT_NULL(strstr(t.features, "+avx2"));
  CU_ASSERT_PTR_NOT_NULL(strstr(t.features, "+fma"));
  CU_ASSERT_PTR_NULL(strstr(t.features, "+avx512f"));
  moai_target_deinit(&t);
  s = moai_target_resolve("x86-64-v3", "+avx512f", &t);
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_PTR_NOT_NULL(strstr(t.features, "+avx512f"));
  moai_target_deinit(&t);
  s = moai_target_resolve("not-a-cpu", NULL, &t);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), "unknown target CPU 'not-a-cpu'"));
  moai_status_free(s);
  s = moai_target_resolve("skylake", "+avx512f,+no-such", &t);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), "unknown target feature 'no-such'"));
  moai_status_free(s);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"regions_and_constants", test_regions_and_constants},
      {"slice_folded", test_slice_folded},
      {"window_and_reduce", test_window_and_reduce},
      {"grad_nn", test_grad_nn},
      {"errors_at_the_op", test_errors_at_the_op},
      {"runtime_params", test_runtime_params},
      {"max_pool_indices", test_max_pool_indices},
      {"needs_memory_plan", test_needs_memory_plan},
      {"binary_table_and_step", test_binary_table_and_step},
      {"elementwise_groups", test_elementwise_groups},
      {"elementwise_fused_step", test_elementwise_fused_step},
      {"target", test_target},
      CU_TEST_INFO_NULL};
  CU_pSuite suite = CU_add_suite("codegen", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
