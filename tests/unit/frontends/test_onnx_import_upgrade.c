/* Unit tests for the ONNX importer's upgrades of older op forms
 * (frontends/onnx/upgrade.c): a small model per form, built in memory at
 * the older opset, imported, and its IR checked for the opset-21 form
 * (operands, attributes, result shapes); and the older forms it rejects. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moai_test.h"
#include "onnx_test_support.h"

/* Imports `b` (which must succeed and verify) and returns the printed IR
 * (free it); frees the builder. */
static char *import_ir(MlirContext ctx, tb_t *b) {
  MlirModule m = {NULL};
  moai_status_t s = ts_import(ctx, b, &m);
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL(s);
  tb_free(b);
  if (s) {
    moai_status_free(s);
    return strdup("");
  }
  CU_ASSERT_TRUE(mlirOperationVerify(mlirModuleGetOperation(m)));
  char *ir = ts_print(m, false);
  mlirModuleDestroy(m);
  return ir;
}

/* Imports `b`, which must fail with `code` and a message containing
 * `needle`; frees the builder. */
static void expect_error(MlirContext ctx, tb_t *b, moai_status_code_t code,
                         const char *needle) {
  char *msg = ts_import_error(ctx, b, NULL, code);
  TS_ASSERT_CONTAINS(msg, needle);
  free(msg);
  tb_free(b);
}

/* A model at `opset` with input x (f32, the given shape) and one node
 * `op` named "n" from x to y; returns the node. */
static Onnx__NodeProto *unary(tb_t *b, int64_t opset, const char *op, int rank,
                              const int64_t *dims) {
  tb_init(b, opset);
  tb_input(b, "x", F32, rank, dims);
  Onnx__NodeProto *n = tb_node(b, op, "n", LIST("x"), LIST("y"));
  tb_output(b, "y", F32, -1, NULL);
  return n;
}

static void test_squeeze_unsqueeze(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  Onnx__NodeProto *n = unary(&b, 11, "Squeeze", 3, (const int64_t[]){1, 3, 1});
  tb_attr_ints(&b, n, "axes", 1, (const int64_t[]){-1});
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "%0 = \"moai.constant\"() {value = dense<-1> : "
                     "tensor<1xi64>}");
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.squeeze\"(%arg0, %0) : (tensor<1x3x1xf32>, "
                     "tensor<1xi64>) -> tensor<1x3xf32>");
  free(ir);

  /* No axes: every size-1 axis, and no operand. */
  unary(&b, 12, "Squeeze", 3, (const int64_t[]){1, 3, 1});
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.squeeze\"(%arg0) : (tensor<1x3x1xf32>) -> "
                     "tensor<3xf32>");
  CU_ASSERT_PTR_NULL(strstr(ir, "moai.constant"));
  free(ir);

  n = unary(&b, 9, "Unsqueeze", 1, (const int64_t[]){3});
  tb_attr_ints(&b, n, "axes", 2, (const int64_t[]){0, 2});
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.constant\"() {value = dense<[0, 2]> : "
                     "tensor<2xi64>}");
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.unsqueeze\"(%arg0, %0) : (tensor<3xf32>, "
                     "tensor<2xi64>) -> tensor<1x3x1xf32>");
  free(ir);

  /* Unsqueeze's axes were required; at 13 they are an input. */
  unary(&b, 11, "Unsqueeze", 1, (const int64_t[]){3});
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "m.onnx: node 'n' (Unsqueeze): missing required attribute "
               "'axes' (opset 11)");
  n = unary(&b, 13, "Unsqueeze", 1, (const int64_t[]){3});
  tb_attr_ints(&b, n, "axes", 1, (const int64_t[]){0});
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "unknown attribute 'axes' for Unsqueeze (opset 13)");
  /* The older form has one input. */
  tb_init(&b, 11);
  tb_input(&b, "x", F32, 1, (const int64_t[]){3});
  n = tb_node(&b, "Squeeze", "n", LIST("x", "x"), LIST("y"));
  tb_output(&b, "y", F32, -1, NULL);
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "has 2 inputs, Squeeze takes at most 1 at opset 11");
  mlirContextDestroy(ctx);
}

static void test_reduce_sum_axes(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  Onnx__NodeProto *n = unary(&b, 12, "ReduceSum", 2, (const int64_t[]){2, 3});
  tb_attr_ints(&b, n, "axes", 1, (const int64_t[]){1});
  tb_attr_int(&b, n, "keepdims", 0);
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.constant\"() {value = dense<1> : "
                     "tensor<1xi64>}");
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.reduce_sum\"(%arg0, %0) {keepdims = 0 : i64, "
                     "noop_with_empty_axes = 0 : i64} : (tensor<2x3xf32>, "
                     "tensor<1xi64>) -> tensor<2xf32>");
  free(ir);

  /* No axes (and empty axes): every axis. */
  n = unary(&b, 7, "ReduceSum", 2, (const int64_t[]){2, 3});
  tb_attr_ints(&b, n, "axes", 0, NULL);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.reduce_sum\"(%arg0) {keepdims = 1 : i64, "
                     "noop_with_empty_axes = 0 : i64} : (tensor<2x3xf32>) "
                     "-> tensor<1x1xf32>");
  free(ir);

  /* ReduceMax keeps its attribute form until 18. */
  n = unary(&b, 11, "ReduceMax", 2, (const int64_t[]){2, 3});
  tb_attr_ints(&b, n, "axes", 1, (const int64_t[]){0});
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir, "\"moai.reduce_max\"(%arg0, %0)");
  TS_ASSERT_CONTAINS(ir, "-> tensor<1x3xf32>");
  free(ir);

  n = unary(&b, 13, "ReduceSum", 2, (const int64_t[]){2, 3});
  tb_attr_ints(&b, n, "axes", 1, (const int64_t[]){1});
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "unknown attribute 'axes' for ReduceSum (opset 13)");
  mlirContextDestroy(ctx);
}

static void test_split(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  tb_init(&b, 11);
  tb_input(&b, "x", F32, 2, (const int64_t[]){2, 3});
  Onnx__NodeProto *n = tb_node(&b, "Split", "n", LIST("x"), LIST("a", "c"));
  tb_attr_int(&b, n, "axis", 1);
  tb_attr_ints(&b, n, "split", 2, (const int64_t[]){1, 2});
  tb_output(&b, "a", F32, -1, NULL);
  tb_output(&b, "c", F32, -1, NULL);
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.constant\"() {value = dense<[1, 2]> : "
                     "tensor<2xi64>}");
  TS_ASSERT_CONTAINS(ir, "\"moai.split\"(%arg0, %0) {axis = 1 : i64");
  TS_ASSERT_CONTAINS(ir, "-> (tensor<2x1xf32>, tensor<2x2xf32>)");
  free(ir);

  /* Without `split`: equal parts, no operand. */
  tb_init(&b, 7);
  tb_input(&b, "x", F32, 2, (const int64_t[]){4, 3});
  tb_node(&b, "Split", "n", LIST("x"), LIST("a", "c"));
  tb_output(&b, "a", F32, -1, NULL);
  tb_output(&b, "c", F32, -1, NULL);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.split\"(%arg0) {axis = 0 : i64, "
                     "resultSegmentSizes");
  TS_ASSERT_CONTAINS(ir, "-> (tensor<2x3xf32>, tensor<2x3xf32>)");
  free(ir);
  mlirContextDestroy(ctx);
}

static void test_clip(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  Onnx__NodeProto *n = unary(&b, 10, "Clip", 2, (const int64_t[]){2, 3});
  tb_attr_float(&b, n, "min", -1.0f);
  tb_attr_float(&b, n, "max", 0.5f);
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "%0 = \"moai.constant\"() {value = dense<-1.000000e+00> "
                     ": tensor<f32>}");
  TS_ASSERT_CONTAINS(ir,
                     "%1 = \"moai.constant\"() {value = dense<5.000000e-01> "
                     ": tensor<f32>}");
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.clip\"(%arg0, %0, %1) {operandSegmentSizes = "
                     "array<i32: 1, 1, 1>} : (tensor<2x3xf32>, "
                     "tensor<f32>, tensor<f32>) -> tensor<2x3xf32>");
  free(ir);

  /* Bounds take the input's element type; an absent one stays absent. */
  tb_init(&b, 8);
  tb_input(&b, "x", F16, 1, (const int64_t[]){4});
  n = tb_node(&b, "Clip", "n", LIST("x"), LIST("y"));
  tb_attr_float(&b, n, "max", 1.5f);
  tb_output(&b, "y", F16, -1, NULL);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.constant\"() {value = dense<1.500000e+00> : "
                     "tensor<f16>}");
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.clip\"(%arg0, %0) {operandSegmentSizes = "
                     "array<i32: 1, 0, 1>} : (tensor<4xf16>, tensor<f16>) "
                     "-> tensor<4xf16>");
  free(ir);

  tb_init(&b, 10);
  tb_input(&b, "x", I64, 1, (const int64_t[]){4});
  n = tb_node(&b, "Clip", "n", LIST("x"), LIST("y"));
  tb_attr_float(&b, n, "min", 0.0f);
  tb_output(&b, "y", I64, -1, NULL);
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "node 'n' (Clip): Clip before opset 11 takes a float input");
  n = unary(&b, 11, "Clip", 1, (const int64_t[]){4});
  tb_attr_float(&b, n, "min", 0.0f);
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "unknown attribute 'min' for Clip (opset 11)");
  mlirContextDestroy(ctx);
}

static void test_dropout(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  Onnx__NodeProto *n = unary(&b, 10, "Dropout", 1, (const int64_t[]){4});
  tb_attr_float(&b, n, "ratio", 0.25f);
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.constant\"() {value = dense<2.500000e-01> : "
                     "tensor<f32>}");
  /* No training_mode operand: inference, the identity. */
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.dropout\"(%arg0, %0) {operandSegmentSizes = "
                     "array<i32: 1, 1, 0>");
  TS_ASSERT_CONTAINS(ir, "(tensor<4xf32>, tensor<f32>) -> tensor<4xf32>");
  free(ir);

  /* Opsets 10 and 11 have a bool mask, as 12 does. */
  tb_init(&b, 11);
  tb_input(&b, "x", F32, 1, (const int64_t[]){4});
  tb_node(&b, "Dropout", "n", LIST("x"), LIST("y", "mask"));
  tb_output(&b, "y", F32, -1, NULL);
  tb_output(&b, "mask", BOOL, -1, NULL);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.dropout\"(%arg0) {operandSegmentSizes = "
                     "array<i32: 1, 0, 0>} : (tensor<4xf32>) -> "
                     "(tensor<4xf32>, tensor<4xi1>)");
  free(ir);

  /* Before 10 the mask has the input's type. */
  tb_init(&b, 9);
  tb_input(&b, "x", F32, 1, (const int64_t[]){4});
  tb_node(&b, "Dropout", "n", LIST("x"), LIST("y", "mask"));
  tb_output(&b, "y", F32, -1, NULL);
  tb_output(&b, "mask", F32, -1, NULL);
  expect_error(ctx, &b, MOAI_UNIMPLEMENTED,
               "m.onnx: node 'n' (Dropout): output 'mask' of Dropout before "
               "opset 10 has the input's type, not bool (opset 9)");
  n = unary(&b, 11, "Dropout", 1, (const int64_t[]){4});
  tb_attr_int(&b, n, "seed", 3);
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "unknown attribute 'seed' for Dropout (opset 11)");
  mlirContextDestroy(ctx);
}

static void test_slice(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  Onnx__NodeProto *n = unary(&b, 9, "Slice", 2, (const int64_t[]){3, 4});
  tb_attr_ints(&b, n, "starts", 2, (const int64_t[]){1, 0});
  tb_attr_ints(&b, n, "ends", 2, (const int64_t[]){1000, -1});
  tb_attr_ints(&b, n, "axes", 2, (const int64_t[]){0, 1});
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "%0 = \"moai.constant\"() {value = dense<[1, 0]> : "
                     "tensor<2xi64>}");
  TS_ASSERT_CONTAINS(ir,
                     "%1 = \"moai.constant\"() {value = dense<[1000, -1]> "
                     ": tensor<2xi64>}");
  TS_ASSERT_CONTAINS(ir,
                     "%2 = \"moai.constant\"() {value = dense<[0, 1]> : "
                     "tensor<2xi64>}");
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.slice\"(%arg0, %0, %1, %2) "
                     "{operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>}");
  TS_ASSERT_CONTAINS(ir, "-> tensor<2x3xf32>");
  free(ir);

  /* Without axes: the first ones. */
  n = unary(&b, 7, "Slice", 2, (const int64_t[]){3, 4});
  tb_attr_ints(&b, n, "starts", 1, (const int64_t[]){1});
  tb_attr_ints(&b, n, "ends", 1, (const int64_t[]){3});
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.slice\"(%arg0, %0, %1) {operandSegmentSizes "
                     "= array<i32: 1, 1, 1, 0, 0>}");
  TS_ASSERT_CONTAINS(ir, "-> tensor<2x4xf32>");
  free(ir);

  n = unary(&b, 9, "Slice", 2, (const int64_t[]){3, 4});
  tb_attr_ints(&b, n, "starts", 1, (const int64_t[]){1});
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "node 'n' (Slice): missing required attribute 'ends' (opset 9)");
  n = unary(&b, 9, "Slice", 2, (const int64_t[]){3, 4});
  tb_attr_ints(&b, n, "starts", 1, (const int64_t[]){1});
  tb_attr_ints(&b, n, "ends", 2, (const int64_t[]){3, 3});
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "attribute 'ends' has 2 values, 'starts' has 1");
  /* From opset 10 they are inputs. */
  n = unary(&b, 10, "Slice", 2, (const int64_t[]){3, 4});
  tb_attr_ints(&b, n, "starts", 1, (const int64_t[]){1});
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "unknown attribute 'starts' for Slice (opset 10)");
  mlirContextDestroy(ctx);
}

/* Before opset 13 Softmax normalises over all axes from `axis` (default
 * 1): the last axis alone is opset 13's op, more is Flatten, Softmax over
 * the last axis and Reshape back. */
static void test_softmax(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  unary(&b, 11, "Softmax", 2, (const int64_t[]){2, 3});
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.softmax\"(%arg0) {axis = 1 : i64} : "
                     "(tensor<2x3xf32>) -> tensor<2x3xf32>");
  CU_ASSERT_PTR_NULL(strstr(ir, "moai.flatten"));
  free(ir);

  Onnx__NodeProto *n =
      unary(&b, 12, "LogSoftmax", 3, (const int64_t[]){2, 3, 4});
  tb_attr_int(&b, n, "axis", -1);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.log_softmax\"(%arg0) {axis = 2 : i64} : "
                     "(tensor<2x3x4xf32>) -> tensor<2x3x4xf32>");
  free(ir);

  unary(&b, 11, "Softmax", 3, (const int64_t[]){2, 3, 4});
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "%0 = \"moai.flatten\"(%arg0) {axis = 1 : i64} : "
                     "(tensor<2x3x4xf32>) -> tensor<2x12xf32>");
  TS_ASSERT_CONTAINS(ir,
                     "%1 = \"moai.softmax\"(%0) {axis = -1 : i64} : "
                     "(tensor<2x12xf32>) -> tensor<2x12xf32>");
  TS_ASSERT_CONTAINS(ir,
                     "%2 = \"moai.constant\"() {value = dense<[2, 3, 4]> "
                     ": tensor<3xi64>}");
  TS_ASSERT_CONTAINS(ir,
                     "%3 = \"moai.reshape\"(%1, %2) {allowzero = 0 : i64} "
                     ": (tensor<2x12xf32>, tensor<3xi64>) -> "
                     "tensor<2x3x4xf32>");
  TS_ASSERT_CONTAINS(ir, "return %3 : tensor<2x3x4xf32>");
  free(ir);

  n = unary(&b, 7, "LogSoftmax", 3, (const int64_t[]){2, 3, 4});
  tb_attr_int(&b, n, "axis", -3);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.flatten\"(%arg0) {axis = 0 : i64} : "
                     "(tensor<2x3x4xf32>) -> tensor<1x24xf32>");
  TS_ASSERT_CONTAINS(ir, "\"moai.log_softmax\"(%0) {axis = -1 : i64}");
  TS_ASSERT_CONTAINS(ir, "-> tensor<2x3x4xf32>");
  free(ir);

  n = unary(&b, 11, "Softmax", 2, (const int64_t[]){2, 3});
  tb_attr_int(&b, n, "axis", 2);
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "node 'n' (Softmax): axis 2 out of range for rank 2");

  /* A shape known only at run time (a Range to a graph input's value):
   * the Reshape back cannot be built. */
  tb_init(&b, 11);
  tb_input(&b, "lim", I64, 0, NULL);
  Onnx__TensorProto *zero = tb_tensor(&b, "zero", I64, 0, NULL);
  tb_raw(&b, zero, (const int64_t[]){0}, sizeof(int64_t));
  tb_initializer(&b, zero);
  Onnx__TensorProto *one = tb_tensor(&b, "one", I64, 0, NULL);
  tb_raw(&b, one, (const int64_t[]){1}, sizeof(int64_t));
  tb_initializer(&b, one);
  tb_node(&b, "Range", "r", LIST("zero", "lim", "one"), LIST("seq"));
  tb_node(&b, "Cast", "c", LIST("seq"), LIST("f"));
  tb_attr_int(&b, b.graph->node[1], "to", F32);
  n = tb_node(&b, "Unsqueeze", "u", LIST("f"), LIST("f2"));
  tb_attr_ints(&b, n, "axes", 1, (const int64_t[]){0});
  n = tb_node(&b, "Softmax", "n", LIST("f2"), LIST("y"));
  tb_attr_int(&b, n, "axis", 0);
  tb_output(&b, "y", F32, -1, NULL);
  expect_error(ctx, &b, MOAI_UNIMPLEMENTED,
               "m.onnx: node 'n' (Softmax): Softmax before opset 13 over axes "
               "0.. of an input whose shape is not static (opset 11)");
  mlirContextDestroy(ctx);
}

/* A BatchNormalization of 2x3x4x4 at `opset` with the given outputs. */
static Onnx__NodeProto *batch_norm(tb_t *b, int64_t opset,
                                   const char *const *outputs) {
  tb_init(b, opset);
  tb_input(b, "x", F32, 4, (const int64_t[]){2, 3, 4, 4});
  tb_input(b, "s", F32, 1, (const int64_t[]){3});
  Onnx__NodeProto *n = tb_node(b, "BatchNormalization", "bn",
                               LIST("x", "s", "s", "s", "s"), outputs);
  for (size_t i = 0; outputs[i]; ++i)
    if (*outputs[i]) tb_output(b, outputs[i], F32, -1, NULL);
  return n;
}

static void test_batch_norm(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  batch_norm(&b, 9, LIST("y"));
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.batch_normalization\"(%arg0, %arg1, %arg1, "
                     "%arg1, %arg1) {epsilon = 9.99999974E-6 : f32, "
                     "momentum = 0.899999976 : f32, resultSegmentSizes = "
                     "array<i32: 1, 0, 0>, training_mode = 0 : i64}");
  TS_ASSERT_CONTAINS(ir, "-> tensor<2x3x4x4xf32>");
  free(ir);

  /* Outputs mean and var exist in training only: opset 14's running
   * statistics. Empty trailing outputs are absent. */
  batch_norm(&b, 12, LIST("y", "m", "v", "", ""));
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir,
                     "resultSegmentSizes = array<i32: 1, 1, 1>, "
                     "training_mode = 1 : i64}");
  TS_ASSERT_CONTAINS(ir,
                     "-> (tensor<2x3x4x4xf32>, tensor<3xf32>, "
                     "tensor<3xf32>)");
  free(ir);

  /* spatial (opsets 7 and 8): 1 is opset 9's behaviour. */
  Onnx__NodeProto *n = batch_norm(&b, 7, LIST("y"));
  tb_attr_int(&b, n, "spatial", 1);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir, "training_mode = 0 : i64}");
  CU_ASSERT_PTR_NULL(strstr(ir, "spatial"));
  free(ir);

  n = batch_norm(&b, 8, LIST("y"));
  tb_attr_int(&b, n, "spatial", 0);
  expect_error(ctx, &b, MOAI_UNIMPLEMENTED,
               "m.onnx: node 'bn' (BatchNormalization): spatial = 0 "
               "(statistics per activation, not per channel) is not "
               "supported (opset 8)");
  n = batch_norm(&b, 9, LIST("y"));
  tb_attr_int(&b, n, "spatial", 1);
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "unknown attribute 'spatial' for BatchNormalization (opset 9)");
  batch_norm(&b, 9, LIST("y", "m", "v", "sm"));
  expect_error(ctx, &b, MOAI_UNIMPLEMENTED,
               "node 'bn' (BatchNormalization): output 'saved_mean' "
               "(training statistics of opsets 7 to 13) is not supported "
               "(opset 9)");
  batch_norm(&b, 13, LIST("y", "", "", "", "sv"));
  expect_error(ctx, &b, MOAI_UNIMPLEMENTED, "output 'saved_var'");
  n = batch_norm(&b, 13, LIST("y"));
  tb_attr_int(&b, n, "training_mode", 1);
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "unknown attribute 'training_mode' for BatchNormalization "
               "(opset 13)");

  /* From 14 on it is the table's form. */
  n = batch_norm(&b, 14, LIST("y", "m", "v"));
  tb_attr_int(&b, n, "training_mode", 1);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir, "training_mode = 1 : i64}");
  free(ir);
  mlirContextDestroy(ctx);
}

/* Older forms that need no rewrite import as they are; ops ONNX added
 * after the model's opset are rejected. */
static void test_unchanged_forms_and_op_versions(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 7);
  char *ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir, "moai.opset = 7 : i64");
  TS_ASSERT_CONTAINS(ir, "\"moai.matmul\"(%arg0, %0)");
  free(ir);

  /* AveragePool before 10 has no ceil_mode: the default, 0. */
  Onnx__NodeProto *n =
      unary(&b, 7, "AveragePool", 4, (const int64_t[]){1, 1, 4, 4});
  tb_attr_ints(&b, n, "kernel_shape", 2, (const int64_t[]){2, 2});
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir, "ceil_mode = 0 : i64");
  TS_ASSERT_CONTAINS(ir, "-> tensor<1x1x3x3xf32>");
  free(ir);

  /* Attributes ONNX added later are unknown in older models. */
  n = unary(&b, 9, "MaxPool", 4, (const int64_t[]){1, 1, 4, 4});
  tb_attr_ints(&b, n, "kernel_shape", 2, (const int64_t[]){2, 2});
  tb_attr_int(&b, n, "ceil_mode", 1);
  expect_error(ctx, &b, MOAI_INVALID_ARGUMENT,
               "m.onnx: node 'n' (MaxPool): unknown attribute 'ceil_mode' "
               "for MaxPool (opset 9)");
  n = unary(&b, 10, "MaxPool", 4, (const int64_t[]){1, 1, 4, 4});
  tb_attr_ints(&b, n, "kernel_shape", 2, (const int64_t[]){2, 2});
  tb_attr_int(&b, n, "ceil_mode", 1);
  ir = import_ir(ctx, &b);
  TS_ASSERT_CONTAINS(ir, "-> tensor<1x1x3x3xf32>");
  free(ir);

  tb_init(&b, 10);
  tb_input(&b, "a", I64, 0, NULL);
  tb_node(&b, "Range", "r", LIST("a", "a", "a"), LIST("y"));
  tb_output(&b, "y", I64, -1, NULL);
  expect_error(ctx, &b, MOAI_UNIMPLEMENTED,
               "m.onnx: node 'r' (Range): op Range needs opset 11 or later, "
               "the model imports opset 10");
  n = unary(&b, 8, "Erf", 1, (const int64_t[]){4});
  expect_error(ctx, &b, MOAI_UNIMPLEMENTED,
               "op Erf needs opset 9 or later, the model imports opset 8");
  unary(&b, 9, "Erf", 1, (const int64_t[]){4});
  free(import_ir(ctx, &b));
  mlirContextDestroy(ctx);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"squeeze_unsqueeze", test_squeeze_unsqueeze},
      {"reduce_sum_axes", test_reduce_sum_axes},
      {"split", test_split},
      {"clip", test_clip},
      {"dropout", test_dropout},
      {"slice", test_slice},
      {"softmax", test_softmax},
      {"batch_norm", test_batch_norm},
      {"unchanged_forms_and_op_versions", test_unchanged_forms_and_op_versions},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("onnx_import_upgrade", tests);
}
