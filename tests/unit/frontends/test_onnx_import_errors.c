/* Unit tests for the errors of the ONNX importer (frontends/onnx): each
 * names the file, and the node and op type where one is at fault, with the
 * status code callers act on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moai_test.h"
#include "onnx_test_support.h"

static void test_unsupported_ops(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  tb_node(&b, "Foo", "n3", LIST("y"), LIST("z"));
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(
      msg, "m.onnx: node 'n3' (Foo): unsupported op Foo (opset 17)");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  Onnx__NodeProto *n = tb_node(&b, "Relu", "ms", LIST("y"), LIST("z"));
  n->domain = "com.microsoft";
  msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'ms' (Relu): unsupported op Relu "
                         "from domain 'com.microsoft' (ai.onnx opset 17)");
  free(msg);
  tb_free(&b);

  /* Gelu exists from opset 20. */
  build_mlp(&b, 17);
  tb_node(&b, "Gelu", "g", LIST("y"), LIST("z"));
  msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'g' (Gelu): op Gelu needs opset 20 "
                         "or later, the model imports opset 17");
  free(msg);
  tb_free(&b);

  /* Cast to string. */
  build_mlp(&b, 17);
  n = tb_node(&b, "Cast", "c", LIST("y"), LIST("z"));
  tb_attr_int(&b, n, "to", STRING);
  msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  TS_ASSERT_CONTAINS(msg, "node 'c' (Cast): attribute 'to': dtype string (8)");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_attribute_errors(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  Onnx__NodeProto *n = tb_node(&b, "Softmax", "sm", LIST("y"), LIST("z"));
  tb_attr_int(&b, n, "foo", 1);
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'sm' (Softmax): unknown attribute "
                         "'foo' for Softmax (opset 17)");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  n = tb_node(&b, "Softmax", "sm", LIST("y"), LIST("z"));
  tb_attr_float(&b, n, "axis", 1.0f);
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'sm' (Softmax): attribute 'axis' "
                         "has type FLOAT, expected INT");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  tb_node(&b, "Concat", "cat", LIST("y", "y"), LIST("z"));
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'cat' (Concat): missing required "
                         "attribute 'axis'");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  n = tb_node(&b, "Softmax", "sm", LIST("y"), LIST("z"));
  tb_attr_int(&b, n, "axis", 1);
  tb_attr_int(&b, n, "axis", 0);
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  TS_ASSERT_CONTAINS(msg, "attribute 'axis' is given twice");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_opsets(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 6);
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: ai.onnx opset 6 is not supported (moai "
                         "accepts opsets 7 to 21)");
  free(msg);
  tb_free(&b);
  build_mlp(&b, 22);
  msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  TS_ASSERT_CONTAINS(msg, "opset 22 is not supported");
  free(msg);
  tb_free(&b);
  build_mlp(&b, 21);
  b.model->opset_import[0]->domain = "com.example";
  msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: the model imports no ai.onnx opset, "
                         "only domain 'com.example'");
  free(msg);
  b.model->n_opset_import = 0;
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg, "m.onnx: the model imports no ai.onnx opset");
  free(msg);
  b.model->n_opset_import = 1;
  b.model->opset_import[0]->domain = "ai.onnx";
  MlirModule m = {NULL};
  CU_ASSERT_PTR_NULL(ts_import(ctx, &b, &m));
  if (m.ptr) mlirModuleDestroy(m);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_dangling_and_cycles(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  tb_node(&b, "Add", "add2", LIST("y", "foo"), LIST("z"));
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'add2' (Add): input 'foo' is not "
                         "defined by any earlier node, input or initializer");
  free(msg);
  tb_free(&b);

  /* a -> b -> a */
  tb_init(&b, 17);
  tb_input(&b, "x", F32, 1, (const int64_t[]){4});
  tb_node(&b, "Add", "first", LIST("x", "q"), LIST("p"));
  tb_node(&b, "Relu", "second", LIST("p"), LIST("q"));
  tb_output(&b, "q", F32, 1, (const int64_t[]){4});
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'first' (Add): input 'q' is not "
                         "defined by any earlier node, input or initializer");
  free(msg);
  tb_free(&b);

  /* An undefined graph output. */
  build_mlp(&b, 17);
  tb_output(&b, "nowhere", F32, -1, NULL);
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: graph output 'nowhere' is not defined by "
                         "any node, input or initializer");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_duplicate_definitions(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  tb_node(&b, "Relu", "again", LIST("x"), LIST("y"));
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'again' (Relu): output 'y' is "
                         "already defined by node 'add' (Add)");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  tb_node(&b, "Relu", "", LIST("y"), LIST("x"));
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'Relu_2' (Relu): output 'x' is "
                         "already defined by a graph input");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  tb_init_f32(&b, "W", 1, (const int64_t[]){1}, kW, 0);
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg, "m.onnx: initializer 'W' is defined twice");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

/* Bad tensors name the initializer. */
static void test_bad_initializers(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  b.graph->initializer[0]->raw_data.len = 40;
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_DATA_LOSS);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: initializer 'W': raw_data holds 40 "
                         "bytes, expected 48 (12 elements of float32)");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  b.graph->initializer[1]->n_float_data = 2;
  msg = ts_import_error(ctx, &b, NULL, MOAI_DATA_LOSS);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: initializer 'bias': holds 2 values, "
                         "expected 3");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  b.graph->initializer[1]->dims[0] = -3;
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  TS_ASSERT_CONTAINS(msg, "initializer 'bias': dimension 0 is negative (-3)");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  b.graph->initializer[1]->data_type = STRING;
  msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: initializer 'bias': dtype string (8) is "
                         "not supported");
  free(msg);
  tb_free(&b);

  /* Dims whose product overflows. */
  build_mlp(&b, 17);
  Onnx__TensorProto *huge =
      tb_tensor(&b, "huge", F32, 3, (const int64_t[]){INT64_MAX / 2, 4, 4});
  tb_initializer(&b, huge);
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: initializer 'huge': the number of "
                         "elements overflows");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_model_level_errors(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  b.model->graph = NULL;
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg, "m.onnx: the model has no graph");
  free(msg);
  b.model->graph = b.graph;
  b.graph->n_output = 0;
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg, "m.onnx: the graph has no outputs");
  free(msg);
  tb_free(&b);

  MlirModule m = {NULL};
  moai_status_t s = moai_onnx_import_file(ctx, "/nonexistent/m.onnx", NULL,
                                          moai_allocator_system(), &m);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_NOT_FOUND);
  TS_ASSERT_CONTAINS(moai_status_message(s),
                     "/nonexistent/m.onnx: cannot open");
  moai_status_free(s);

  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x07, 0x00};
  s = moai_onnx_import_buffer(ctx, garbage, sizeof(garbage), "g.onnx", NULL,
                              NULL, moai_allocator_system(), &m);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_DATA_LOSS);
  CU_ASSERT_STRING_EQUAL(moai_status_message(s),
                         "g.onnx: not a valid ONNX model (protobuf parse "
                         "failed): the file is truncated or corrupt");
  moai_status_free(s);
  CU_ASSERT_PTR_NULL(m.ptr);
  mlirContextDestroy(ctx);
}

/* Constant nodes: exactly one supported value attribute. */
static void test_constant_node_errors(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  Onnx__NodeProto *n = tb_node(&b, "Constant", "k", NULL, LIST("k0"));
  Onnx__AttributeProto *a =
      tb_attr(&b, n, "sparse_value",
              ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR);
  (void)a;
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'k' (Constant): Constant with "
                         "attribute 'sparse_value' is not supported");
  free(msg);
  tb_free(&b);

  build_mlp(&b, 17);
  n = tb_node(&b, "Constant", "k", NULL, LIST("k0"));
  tb_attr_int(&b, n, "value_int", 1);
  tb_attr_float(&b, n, "value_float", 1);
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  TS_ASSERT_CONTAINS(msg,
                     "node 'k' (Constant): has 2 attributes, expected "
                     "exactly one of value");
  free(msg);
  tb_free(&b);

  /* A tensor value without data. */
  build_mlp(&b, 17);
  n = tb_node(&b, "Constant", "k", NULL, LIST("k0"));
  a = tb_attr(&b, n, "value", ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSOR);
  a->t = tb_tensor(&b, NULL, F32, 1, (const int64_t[]){3});
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'k' (Constant): attribute 'value': "
                         "the tensor has no data");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

static void test_graph_input_errors(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  build_mlp(&b, 17);
  b.graph->input[0]->type->tensor_type->elem_type = STRING;
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: graph input 'x' has dtype string (8), "
                         "which is not supported");
  free(msg);
  b.graph->input[0]->type->tensor_type->elem_type = COMPLEX64;
  msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  TS_ASSERT_CONTAINS(msg, "dtype complex64 (14)");
  free(msg);
  b.graph->input[0]->type->tensor_type->elem_type = F32;
  b.graph->input[0]->type->tensor_type->shape = NULL;
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  TS_ASSERT_CONTAINS(msg, "graph input 'x' has an unknown rank");
  free(msg);
  b.graph->input[0]->type = NULL;
  msg = ts_import_error(ctx, &b, NULL, MOAI_INVALID_ARGUMENT);
  CU_ASSERT_STRING_EQUAL(msg, "m.onnx: graph input 'x' has no type");
  free(msg);
  tb_free(&b);

  /* A directory is not a model. */
  MlirModule m = {NULL};
  moai_status_t s =
      moai_onnx_import_file(ctx, "/tmp", NULL, moai_allocator_system(), &m);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  TS_ASSERT_CONTAINS(moai_status_message(s), "/tmp: not a regular file");
  moai_status_free(s);
  CU_ASSERT_PTR_NULL(m.ptr);
  mlirContextDestroy(ctx);
}

/* IRDL gives a variadic result MOAI_VARIADIC_SLOTS slots. */
static void test_too_many_split_outputs(void) {
  MlirContext ctx = ts_context();
  tb_t b;
  tb_init(&b, 18);
  tb_input(&b, "x", F32, 1, (const int64_t[]){9});
  Onnx__NodeProto *n =
      tb_node(&b, "Split", "split", LIST("x"),
              LIST("o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8"));
  tb_attr_int(&b, n, "num_outputs", 9);
  tb_output(&b, "o0", F32, -1, NULL);
  char *msg = ts_import_error(ctx, &b, NULL, MOAI_UNIMPLEMENTED);
  CU_ASSERT_STRING_EQUAL(msg,
                         "m.onnx: node 'split' (Split): has 9 outputs; "
                         "moai's Split has at most 8");
  free(msg);
  tb_free(&b);
  mlirContextDestroy(ctx);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"unsupported_ops", test_unsupported_ops},
      {"attribute_errors", test_attribute_errors},
      {"opsets", test_opsets},
      {"dangling_and_cycles", test_dangling_and_cycles},
      {"duplicate_definitions", test_duplicate_definitions},
      {"bad_initializers", test_bad_initializers},
      {"model_level_errors", test_model_level_errors},
      {"constant_node_errors", test_constant_node_errors},
      {"graph_input_errors", test_graph_input_errors},
      {"too_many_split_outputs", test_too_many_split_outputs},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("onnx_import_errors", tests);
}
