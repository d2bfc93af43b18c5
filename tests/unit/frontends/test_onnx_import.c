/* Unit tests for the ONNX importer (frontends/onnx): the IR it builds from
 * small models made in memory. The errors it reports are tested in
 * test_onnx_import_errors.c; robustness (truncation, bit flips, fault
 * injection, size) in test_onnx_import_robustness.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moai_test.h"
#include "onnx_test_support.h"

static void test_mlp_imports(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  MlirModule m = {NULL};
  moai_status_t s = ts_import(ctx, &b, &m);
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_TRUE(mlirOperationVerify(mlirModuleGetOperation(m)));
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(
      ir, "func.func @main(%arg0: tensor<2x4xf32> {moai.name = \"x\"})");
  TS_ASSERT_CONTAINS(ir, "-> (tensor<2x3xf32> {moai.name = \"y\"})");
  TS_ASSERT_CONTAINS(ir, "\"moai.matmul\"(%arg0, %0)");
  TS_ASSERT_CONTAINS(ir, "\"moai.add\"");
  TS_ASSERT_CONTAINS(ir, "-> tensor<2x3xf32>");
  TS_ASSERT_CONTAINS(ir, "moai.opset = 17 : i64");
  TS_ASSERT_CONTAINS(ir, "moai.producer = \"moai-test 1.0\"");
  TS_ASSERT_CONTAINS(ir, "moai.source = \"m.onnx\"");
  TS_ASSERT_CONTAINS(ir, "moai.trainable_parameters = [\"W\", \"bias\"]");
  free(ir);

  MlirOperation w = ts_find_weight(m, "W");
  CU_ASSERT_FALSE_FATAL(mlirOperationIsNull(w));
  CU_ASSERT_TRUE(ts_str_attr_is(w, "storage", "raw"));
  CU_ASSERT_TRUE(ts_str_attr_is(w, "file", "m.onnx"));
  CU_ASSERT_EQUAL(ts_int_attr(w, "trainable"), 1);
  CU_ASSERT_EQUAL(ts_int_attr(w, "length"), 48);
  MlirOperation bias = ts_find_weight(m, "bias");
  CU_ASSERT_FALSE_FATAL(mlirOperationIsNull(bias));
  CU_ASSERT_TRUE(ts_str_attr_is(bias, "storage", "field"));
  CU_ASSERT_TRUE(mlirAttributeIsNull(mlirOperationGetAttributeByName(
      bias, mlirStringRefCreateFromCString("offset"))));

  /* Node locations: file, node name, op type, index. */
  char *loc = ts_print_loc(ts_find_op(m, "moai.matmul", 0));
  CU_ASSERT_STRING_EQUAL(loc, "loc(fused<\"MatMul\">[\"mm\"(\"m.onnx\":1:1)])");
  free(loc);
  loc = ts_print_loc(ts_find_op(m, "moai.add", 0));
  CU_ASSERT_STRING_EQUAL(loc, "loc(fused<\"Add\">[\"add\"(\"m.onnx\":2:1)])");
  free(loc);
  mlirModuleDestroy(m);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* The raw_data offset points at the weight's bytes in the file. */
static void test_raw_offsets_point_at_bytes(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  /* A second raw initializer after a non-raw one, to check ordering. */
  static const int64_t vd[1] = {4};
  static const float v[4] = {-1, -2, -3, -4};
  tb_init_f32(&b, "V", 1, vd, v, 1);
  size_t size = 0;
  uint8_t *data = tb_pack(&b, &size);
  char path[] = "/tmp/moai_onnx_raw_XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_TRUE_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(write(fd, data, size), (ssize_t)size);
  close(fd);
  MlirModule m = {NULL};
  moai_status_t s =
      moai_onnx_import_file(ctx, path, NULL, moai_allocator_system(), &m);
  CU_ASSERT_PTR_NULL_FATAL(s);
  const char *names[2] = {"W", "V"};
  const float *values[2] = {kW, v};
  for (int i = 0; i < 2; ++i) {
    MlirOperation w = ts_find_weight(m, names[i]);
    CU_ASSERT_FALSE_FATAL(mlirOperationIsNull(w));
    CU_ASSERT_TRUE(ts_str_attr_is(w, "file", path));
    int64_t offset = ts_int_attr(w, "offset"),
            length = ts_int_attr(w, "length");
    CU_ASSERT_TRUE_FATAL(offset > 0 && offset + length <= (int64_t)size);
    CU_ASSERT_EQUAL(memcmp(data + offset, values[i], (size_t)length), 0);
  }
  mlirModuleDestroy(m);
  unlink(path);
  free(data);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* protobuf merges a repeated `graph` field: initializers from both parts,
 * and raw_data offsets still point at their bytes. */
static void test_raw_offsets_across_merged_graphs(void) {
  MlirContext ctx = ts_context();
  tb_t first, second;
  build_mlp(&first, 17);
  tb_init(&second, 17);
  second.model->n_opset_import = 0;
  second.model->producer_name = NULL;
  second.model->producer_version = NULL;
  second.graph->name = NULL;
  static const float v[2] = {7, 8};
  tb_init_f32(&second, "V", 1, (const int64_t[]){2}, v, 1);
  tb_output(&second, "V", F32, -1, NULL);
  size_t n1 = 0, n2 = 0;
  uint8_t *a = tb_pack(&first, &n1), *b = tb_pack(&second, &n2);
  uint8_t *both = malloc(n1 + n2);
  memcpy(both, a, n1);
  memcpy(both + n1, b, n2);
  MlirModule m = {NULL};
  moai_status_t s = moai_onnx_import_buffer(ctx, both, n1 + n2, "m.onnx", NULL,
                                            NULL, moai_allocator_system(), &m);
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  MlirOperation w = ts_find_weight(m, "W"), vw = ts_find_weight(m, "V");
  CU_ASSERT_EQUAL(memcmp(both + ts_int_attr(w, "offset"), kW, sizeof(kW)), 0);
  CU_ASSERT_EQUAL(memcmp(both + ts_int_attr(vw, "offset"), v, sizeof(v)), 0);
  CU_ASSERT_TRUE(ts_int_attr(vw, "offset") > (int64_t)n1);
  mlirModuleDestroy(m);
  free(both);
  free(a);
  free(b);
  tb_free(&first);
  tb_free(&second);
  mlirContextDestroy(ctx);
}

/* Split has as many results as the node has outputs; ConstantOfShape takes
 * a TENSOR attribute. */
static void test_variadic_results_and_tensor_attrs(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  tb_init(&b, 18);
  tb_input(&b, "x", F32, 2, (const int64_t[]){6, 2});
  Onnx__NodeProto *n =
      tb_node(&b, "Split", "split", LIST("x"), LIST("a", "b", "c"));
  tb_attr_int(&b, n, "num_outputs", 3);
  Onnx__TensorProto *shape =
      tb_tensor(&b, "shape", I64, 1, (const int64_t[]){2});
  static const int64_t shape_values[2] = {2, 2};
  tb_raw(&b, shape, shape_values, sizeof(shape_values));
  tb_initializer(&b, shape);
  n = tb_node(&b, "ConstantOfShape", "fill", LIST("shape"), LIST("ones"));
  Onnx__AttributeProto *value =
      tb_attr(&b, n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  value->t = tb_tensor(&b, NULL, F32, 1, (const int64_t[]){1});
  static const float one = 1.0f;
  tb_raw(&b, value->t, &one, sizeof(one));
  tb_output(&b, "a", F32, 2, (const int64_t[]){2, 2});
  tb_output(&b, "c", F32, 2, (const int64_t[]){2, 2});
  tb_output(&b, "ones", F32, 2, (const int64_t[]){2, 2});
  MlirModule m = {NULL};
  moai_status_t s = ts_import(ctx, &b, &m);
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(
      ir,
      "%1:3 = \"moai.split\"(%arg0) {axis = 0 : i64, num_outputs = 3 : i64, "
      "resultSegmentSizes = array<i32: 1, 1, 1, 0, 0, 0, 0, 0>}");
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.constant_of_shape\"(%0) {value = "
                     "dense<1.000000e+00> : tensor<1xf32>}");
  TS_ASSERT_CONTAINS(ir, "return %1#0, %1#2, %2");
  free(ir);
  mlirModuleDestroy(m);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* Concat takes differently shaped inputs, and more inputs than IRDL has
 * slots for (MOAI_VARIADIC_SLOTS) as a chain of concats. */
static void test_variadic_operands(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  tb_init(&b, 17);
  tb_input(&b, "x", F32, 2, (const int64_t[]){2, 3});
  tb_input(&b, "y", F32, 2, (const int64_t[]){2, 5});
  Onnx__NodeProto *n = tb_node(&b, "Concat", "two", LIST("x", "y"), LIST("xy"));
  tb_attr_int(&b, n, "axis", 1);
  n = tb_node(&b, "Concat", "many",
              LIST("x", "x", "x", "x", "x", "x", "x", "x", "x", "y"),
              LIST("wide"));
  tb_attr_int(&b, n, "axis", 1);
  tb_node(&b, "Max", "max", LIST("x", "x", "x"), LIST("m"));
  tb_output(&b, "xy", F32, 2, (const int64_t[]){2, 8});
  tb_output(&b, "wide", F32, 2, (const int64_t[]){2, 32});
  tb_output(&b, "m", F32, -1, NULL);
  MlirModule m = {NULL};
  moai_status_t s = ts_import(ctx, &b, &m);
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_TRUE(mlirOperationVerify(mlirModuleGetOperation(m)));
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.concat\"(%arg0, %arg1) {axis = 1 : i64, "
                     "operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0, "
                     "0, 0>} : (tensor<2x3xf32>, tensor<2x5xf32>) -> "
                     "tensor<2x8xf32>");
  /* 10 inputs: 8, then the first link's result and the last 2. */
  TS_ASSERT_CONTAINS(ir,
                     "%1 = \"moai.concat\"(%arg0, %arg0, %arg0, %arg0, "
                     "%arg0, %arg0, %arg0, %arg0)");
  TS_ASSERT_CONTAINS(ir,
                     "%2 = \"moai.concat\"(%1, %arg0, %arg1) {axis = 1 : "
                     "i64, operandSegmentSizes = array<i32: 1, 1, 1, 0, 0, "
                     "0, 0, 0>}");
  TS_ASSERT_CONTAINS(ir, "-> tensor<2x32xf32>");
  free(ir);
  mlirModuleDestroy(m);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* Small non-float initializers, small frozen floats and Constant nodes are
 * held inline. */
static void test_constants_inline(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  tb_init(&b, 17);
  static const int64_t xd[2] = {2, 3}, sd[1] = {2}, one[1] = {1}, bd[1] = {2};
  tb_input(&b, "x", F32, 2, xd);
  Onnx__TensorProto *shape = tb_tensor(&b, "shape", I64, 1, sd);
  static const int64_t shape_values[2] = {3, 2};
  tb_raw(&b, shape, shape_values, sizeof(shape_values));
  tb_initializer(&b, shape);
  static const float eps = 0.5f;
  tb_init_f32(&b, "onnx::Const_7", 1, one, &eps, 1); /* folded: frozen */
  Onnx__TensorProto *mask = tb_tensor(&b, "mask", BOOL, 1, bd);
  static const int32_t mask_values[2] = {1, 0};
  mask->n_int32_data = 2;
  mask->int32_data = (int32_t *)mask_values;
  tb_initializer(&b, mask);
  Onnx__TensorProto *half = tb_tensor(&b, "onnx::half", F16, 1, one);
  static const int32_t half_bits[1] = {0x3c00}; /* 1.0 */
  half->n_int32_data = 1;
  half->int32_data = (int32_t *)half_bits;
  tb_initializer(&b, half);
  Onnx__NodeProto *c = tb_node(&b, "Constant", "c", NULL, LIST("axes"));
  static const int64_t axes[1] = {0};
  tb_attr_ints(&b, c, "value_ints", 1, axes);
  Onnx__NodeProto *cf = tb_node(&b, "Constant", "", NULL, LIST("two"));
  tb_attr_float(&b, cf, "value_float", 2.0f);
  tb_node(&b, "Reshape", "r", LIST("x", "shape"), LIST("y"));
  tb_output(&b, "y", F32, 2, (const int64_t[]){3, 2});
  tb_output(&b, "axes", I64, -1, NULL);
  tb_output(&b, "two", F32, -1, NULL);
  tb_output(&b, "mask", BOOL, -1, NULL);
  tb_output(&b, "onnx::half", F16, -1, NULL);
  tb_output(&b, "onnx::Const_7", F32, -1, NULL);
  MlirModule m = {NULL};
  moai_status_t s = ts_import(ctx, &b, &m);
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir, "{value = dense<[3, 2]> : tensor<2xi64>}");
  TS_ASSERT_CONTAINS(ir, "{value = dense<5.000000e-01> : tensor<1xf32>}");
  TS_ASSERT_CONTAINS(ir, "{value = dense<[true, false]> : tensor<2xi1>}");
  TS_ASSERT_CONTAINS(ir, "{value = dense<1.000000e+00> : tensor<1xf16>}");
  TS_ASSERT_CONTAINS(ir, "{value = dense<0> : tensor<1xi64>}");
  TS_ASSERT_CONTAINS(ir, "{value = dense<2.000000e+00> : tensor<f32>}");
  TS_ASSERT_CONTAINS(ir, "moai.trainable_parameters = []");
  /* An unnamed node is called <op_type>_<index>. */
  char *loc = ts_print_loc(ts_find_op(m, "moai.constant", 5));
  CU_ASSERT_STRING_EQUAL(
      loc, "loc(fused<\"Constant\">[\"Constant_1\"(\"m.onnx\":2:1)])");
  free(loc);
  CU_ASSERT_TRUE(mlirOperationIsNull(ts_find_op(m, "moai.weight", 0)));
  free(ir);
  mlirModuleDestroy(m);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_trainable_lists(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  tb_metadata(&b, "moai.trainable_parameters", "[\"W\"]");
  MlirModule m = {NULL};
  CU_ASSERT_PTR_NULL_FATAL(ts_import(ctx, &b, &m));
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir, "moai.trainable_parameters = [\"W\"]");
  /* bias is now a frozen float of 3 elements: inline. */
  TS_ASSERT_CONTAINS(ir, "dense<[1.000000e+00, 2.000000e+00, 3.000000e+00]>");
  free(ir);
  CU_ASSERT_EQUAL(ts_int_attr(ts_find_weight(m, "W"), "trainable"), 1);
  mlirModuleDestroy(m);

  /* Options override the metadata; frozen wins over both. */
  const char *trainable[] = {"W", "bias"}, *frozen[] = {"W"};
  moai_onnx_import_options_t o = {.trainable = trainable,
                                  .trainable_count = 2,
                                  .frozen = frozen,
                                  .frozen_count = 1};
  CU_ASSERT_PTR_NULL_FATAL(ts_import_options(ctx, &b, &o, &m));
  ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir, "moai.trainable_parameters = [\"bias\"]");
  free(ir);
  /* Frozen and only 12 elements: W is inline now. */
  CU_ASSERT_TRUE(mlirOperationIsNull(ts_find_weight(m, "W")));
  CU_ASSERT_EQUAL(ts_int_attr(ts_find_weight(m, "bias"), "trainable"), 1);
  mlirModuleDestroy(m);

  const char *unknown[] = {"nope"};
  o = (moai_onnx_import_options_t){.frozen = unknown, .frozen_count = 1};
  char *msg = ts_import_error(ctx, &b, &o, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: the frozen list names 'nope', which is "
                         "not an initializer");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  tb_metadata(&b, "moai.trainable_parameters", "[\"W\", 3");
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  TS_ASSERT_CONTAINS(msg,
                     "m.onnx: metadata moai.trainable_parameters is not a "
                     "JSON list of names");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  tb_metadata(&b, "moai.trainable_parameters", "[\"W\", \"ghost\"]");
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  TS_ASSERT_CONTAINS(msg, "names 'ghost', which is not an initializer");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* Defaults are always set; optional operands and results are absent. */
static void test_defaults_and_optionals(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  static const float max = 6;
  tb_init_f32(&b, "onnx::max", 0, NULL, &max, 1);
  tb_node(&b, "Softmax", "sm", LIST("y"), LIST("s"));
  tb_node(&b, "Clip", "clip", LIST("s", "", "onnx::max"), LIST("c"));
  tb_node(&b, "Dropout", "drop", LIST("c"), LIST("d"));
  Onnx__NodeProto *n = tb_node(&b, "Gemm", "gemm", LIST("d", "W"), LIST("g"));
  tb_attr_int(&b, n, "transB", 1);
  tb_output(&b, "g", F32, -1, NULL);
  MlirModule m = {NULL};
  moai_status_t s = ts_import(ctx, &b, &m);
  if (s) fprintf(stderr, "\n  %s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir, "\"moai.softmax\"(%4) {axis = -1 : i64}");
  TS_ASSERT_CONTAINS(
      ir, "\"moai.clip\"(%5, %2) {operandSegmentSizes = array<i32: 1, 0, 1>}");
  TS_ASSERT_CONTAINS(
      ir, "\"moai.dropout\"(%6) {operandSegmentSizes = array<i32: 1, 0, 0>}");
  TS_ASSERT_CONTAINS(ir,
                     "{alpha = 1.000000e+00 : f32, beta = 1.000000e+00 : f32, "
                     "transA = 0 : i64, transB = 1 : i64}");
  free(ir);
  mlirModuleDestroy(m);
  tb_free(&b);

  /* Too many inputs or outputs. */
  build_mlp(&b, 17);
  tb_node(&b, "Relu", "r", LIST("y", "y"), LIST("z"));
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'r' (Relu): has 2 inputs, Relu "
                         "takes at most 1");
  free(msg);
  tb_free(&b);
  build_mlp(&b, 17);
  tb_node(&b, "MatMul", "mm2", LIST("y"), LIST("z"));
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(
      msg, "m.onnx: node 'mm2' (MatMul): input 1 ('b') is missing");
  free(msg);
  tb_free(&b);
  build_mlp(&b, 17);
  tb_node(&b, "Relu", "r", LIST("y"), LIST("z", "z2"));
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  TS_ASSERT_CONTAINS(msg, "has 2 outputs, Relu has at most 1");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* ReduceMean before opset 18 takes axes as an attribute. */
static void test_reduce_axes_upgrade(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  static const int64_t axes[1] = {1};
  build_mlp(&b, 13);
  Onnx__NodeProto *n = tb_node(&b, "ReduceMean", "rm", LIST("y"), LIST("z"));
  tb_attr_ints(&b, n, "axes", 1, axes);
  tb_attr_int(&b, n, "keepdims", 0);
  tb_output(&b, "z", F32, -1, NULL);
  MlirModule m = {NULL};
  CU_ASSERT_PTR_NULL_FATAL(ts_import(ctx, &b, &m));
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.constant\"() {value = dense<1> : tensor<1xi64>}");
  TS_ASSERT_CONTAINS(ir,
                     "\"moai.reduce_mean\"(%3, %4) {keepdims = 0 : i64, "
                     "noop_with_empty_axes = 0 : i64}");
  free(ir);
  mlirModuleDestroy(m);
  tb_free(&b);

  build_mlp(&b, 18);
  n = tb_node(&b, "ReduceMean", "rm", LIST("y"), LIST("z"));
  tb_attr_ints(&b, n, "axes", 1, axes);
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'rm' (ReduceMean): unknown "
                         "attribute 'axes' for ReduceMean (opset 18)");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* Graph outputs may be inputs or initializers directly; a graph input named
 * like an initializer is the initializer. */
static void test_passthrough_outputs(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  tb_input(&b, "W", F32, 2, (const int64_t[]){4, 3});
  tb_output(&b, "x", F32, -1, NULL);
  tb_output(&b, "W", F32, -1, NULL);
  MlirModule m = {NULL};
  CU_ASSERT_PTR_NULL_FATAL(ts_import(ctx, &b, &m));
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir,
                     "@main(%arg0: tensor<2x4xf32> {moai.name = \"x\"}) -> ");
  TS_ASSERT_CONTAINS(ir, "return %3, %arg0, %0");
  free(ir);
  mlirModuleDestroy(m);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_input_shapes(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  tb_init(&b, 17);
  tb_input(&b, "ids", I64, 2, (const int64_t[]){-1, 16});
  tb_node(&b, "Identity", "id", LIST("ids"), LIST("out"));
  tb_output(&b, "out", I64, -1, NULL);
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: graph input 'ids' has a symbolic "
                         "dimension 0 ('N'); fix it with a dimension option "
                         "(N=N) or its shape with an input "
                         "shape option (ids=D0xD1x...)");
  free(msg);

  const char *good[] = {"ids=2x16"};
  moai_onnx_import_options_t o = {.input_shapes = good, .input_shape_count = 1};
  MlirModule m = {NULL};
  CU_ASSERT_PTR_NULL_FATAL(ts_import_options(ctx, &b, &o, &m));
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir, "%arg0: tensor<2x16xi64> {moai.name = \"ids\"}");
  free(ir);
  mlirModuleDestroy(m);

  const char *cases[][2] = {
      {"ids=2xx16", "bad input shape 'ids=2xx16'"},
      {"ids=2x-1", "bad input shape 'ids=2x-1'"},
      {"=2", "bad input shape '=2': no NAME="},
      {"ids=2x8",
       "input shape 'ids=2x8' sets dimension 1 to 8, but the model "
       "fixes it to 16"},
      {"ids=2",
       "input shape 'ids=2' has rank 1, but the model gives graph "
       "input 'ids' rank 2"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
    o.input_shapes = &cases[i][0];
    msg = ts_import_error(ctx, &b, &o, MOAI_INVALID_ARGUMENT);
    TS_ASSERT_CONTAINS(msg, cases[i][1]);
    free(msg);
  }
  const char *two[] = {"ids=2x16", "other=1"};
  o = (moai_onnx_import_options_t){.input_shapes = two, .input_shape_count = 2};
  msg = ts_import_error(ctx, &b, &o, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: input shape 'other=1' names no graph input");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* Creates a temporary directory for external data tests. */
static char *make_temp_dir(void) {
  char *dir = strdup("/tmp/moai_onnx_ext_XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  return dir;
}

static void write_file(const char *dir, const char *name, const void *data,
                       size_t size) {
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(fwrite(data, 1, size, f), size);
  fclose(f);
}

static moai_status_t import_in_dir(MlirContext ctx, const char *dir,
                                   const tb_t *b, bool check, MlirModule *m) {
  size_t size = 0;
  uint8_t *data = tb_pack(b, &size);
  write_file(dir, "model.onnx", data, size);
  free(data);
  char path[512];
  snprintf(path, sizeof(path), "%s/model.onnx", dir);
  moai_onnx_import_options_t o = {.check_external_data = check};
  return moai_onnx_import_file(ctx, path, &o, moai_allocator_system(), m);
}

static void build_external(tb_t *b, const char *location, const char *offset) {
  static const int64_t xd[2] = {2, 4}, wd[2] = {4, 3};
  tb_init(b, 17);
  tb_input(b, "x", F32, 2, xd);
  Onnx__TensorProto *w = tb_tensor(b, "W", F32, 2, wd);
  tb_external(b, w, location, offset, "48");
  tb_initializer(b, w);
  tb_node(b, "MatMul", "mm", LIST("x", "W"), LIST("y"));
  tb_output(b, "y", F32, 2, (const int64_t[]){2, 3});
}

static void test_external_data(void) {
  MlirContext ctx = ts_context();
  char *dir = make_temp_dir();
  char model_path[512], bin_path[512];
  snprintf(model_path, sizeof(model_path), "%s/model.onnx", dir);
  snprintf(bin_path, sizeof(bin_path), "%s/w.bin", dir);
  tb_t b;
  build_external(&b, "w.bin", "16");
  MlirModule m = {NULL};

  /* Missing file: fine unless checked. */
  CU_ASSERT_PTR_NULL_FATAL(import_in_dir(ctx, dir, &b, false, &m));
  MlirOperation w = ts_find_weight(m, "W");
  CU_ASSERT_TRUE(ts_str_attr_is(w, "storage", "external"));
  CU_ASSERT_TRUE(ts_str_attr_is(w, "file", "w.bin"));
  CU_ASSERT_EQUAL(ts_int_attr(w, "offset"), 16);
  CU_ASSERT_EQUAL(ts_int_attr(w, "length"), 48);
  mlirModuleDestroy(m);
  m.ptr = NULL;
  moai_status_t s = import_in_dir(ctx, dir, &b, true, &m);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_NOT_FOUND);
  char want[1024];
  snprintf(want, sizeof(want),
           "%s: external data file 'w.bin' for initializer 'W' not found",
           model_path);
  CU_ASSERT_STRING_EQUAL(moai_status_message(s), want);
  CU_ASSERT_PTR_NULL(m.ptr);
  moai_status_free(s);

  /* Present but too short, then long enough. */
  uint8_t bytes[64] = {0};
  write_file(dir, "w.bin", bytes, 40);
  s = import_in_dir(ctx, dir, &b, true, &m);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_DATA_LOSS);
  TS_ASSERT_CONTAINS(moai_status_message(s),
                     "holds 40 bytes, but its data spans "
                     "bytes 16 to 64");
  moai_status_free(s);
  write_file(dir, "w.bin", bytes, 64);
  CU_ASSERT_PTR_NULL(import_in_dir(ctx, dir, &b, true, &m));
  if (m.ptr) mlirModuleDestroy(m);
  tb_free(&b);

  /* Locations that leave the model's directory. */
  const char *escapes[] = {"../w.bin", "/etc/passwd", "a/../../w.bin"};
  for (size_t i = 0; i < 3; ++i) {
    build_external(&b, escapes[i], NULL);
    m.ptr = NULL;
    s = import_in_dir(ctx, dir, &b, false, &m);
    CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
    snprintf(want, sizeof(want),
             "%s: initializer 'W': external data location '%s' escapes the "
             "model's directory",
             model_path, escapes[i]);
    CU_ASSERT_STRING_EQUAL(moai_status_message(s), want);
    moai_status_free(s);
    tb_free(&b);
  }
  unlink(bin_path);
  unlink(model_path);
  rmdir(dir);
  free(dir);
  mlirContextDestroy(ctx);
}

/* value_info that disagrees with inference is an error; inference that
 * leaves a shape open takes the value_info's. */
static void test_value_info(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  tb_value_info(&b, "h", F32, 2, (const int64_t[]){2, 3});
  MlirModule m = {NULL};
  CU_ASSERT_PTR_NULL_FATAL(ts_import(ctx, &b, &m));
  char *ir = ts_print(m, false);
  TS_ASSERT_CONTAINS(ir,
                     "(tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>");
  free(ir);
  mlirModuleDestroy(m);
  tb_free(&b);

  /* A wrong value_info: caught when shape inference knows better. */
  build_mlp(&b, 17);
  tb_value_info(&b, "h", F32, 2, (const int64_t[]){2, 4});
  moai_status_t s = ts_import(ctx, &b, &m);
  if (s) {
    CU_ASSERT_STRING_EQUAL(moai_status_message(s),
                           "m.onnx: node 'mm' (MatMul): output 'h': shape 2x4 "
                           "from value_info disagrees with inferred 2x3");
    moai_status_free(s);
  } else {
    /* Inference is not there yet: the value_info stands. */
    mlirModuleDestroy(m);
  }
  tb_free(&b);
  mlirContextDestroy(ctx);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"mlp_imports", test_mlp_imports},
      {"raw_offsets_point_at_bytes", test_raw_offsets_point_at_bytes},
      {"raw_offsets_across_merged_graphs",
       test_raw_offsets_across_merged_graphs},
      {"variadic_results_and_tensor_attrs",
       test_variadic_results_and_tensor_attrs},
      {"variadic_operands", test_variadic_operands},
      {"constants_inline", test_constants_inline},
      {"trainable_lists", test_trainable_lists},
      {"defaults_and_optionals", test_defaults_and_optionals},
      {"reduce_axes_upgrade", test_reduce_axes_upgrade},
      {"passthrough_outputs", test_passthrough_outputs},
      {"input_shapes", test_input_shapes},
      {"external_data", test_external_data},
      {"value_info", test_value_info},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("onnx_import", tests);
}
