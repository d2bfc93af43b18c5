/* Unit tests of moai-shape-infer's rules: one op at a time through
 * moai_shape_infer_op, as the importer calls it. Expected shapes are worked
 * out by hand from the ONNX opset-21 operator specs; the cases marked
 * "onnx:" are ONNX's own node tests (libonnx-testdata), whose models carry
 * the output shapes. */
#include "ir/op_defs.h"
#include "shape_infer_fixture.h"

static void expect_infer(int line, const char *expected, const char *name,
                         const char *attrs, int n_results,
                         const char *const *operands) {
  si_fixture_t f;
  bool ok = false;
  const char *got = fixture_infer_op(&f, name, attrs, n_results, operands, &ok);
  if (!ok || f.errors_len)
    fprintf(stderr, "\n%s:%d: %s failed: %s", __FILE__, line, name, f.errors);
  CU_assertImplementation(ok && !f.errors_len, (unsigned)line, "infers",
                          __FILE__, "", CU_FALSE);
  fixture_expect_str(got, expected, __FILE__, line);
  fixture_close(&f);
}

static void expect_error(int line, const char *error, const char *name,
                         const char *attrs, int n_results,
                         const char *const *operands) {
  si_fixture_t f;
  bool ok = true;
  const char *got = fixture_infer_op(&f, name, attrs, n_results, operands, &ok);
  if (ok) fprintf(stderr, "\n%s:%d: %s inferred %s\n", __FILE__, line, name, got);
  CU_assertImplementation(!ok, (unsigned)line, "fails", __FILE__, "", CU_FALSE);
  fixture_expect_contains(f.errors, error, __FILE__, line);
  fixture_close(&f);
}

#define OPERANDS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define EXPECT_INFER(expected, name, attrs, n, ...) \
  expect_infer(__LINE__, expected, name, attrs, n, OPERANDS(__VA_ARGS__))
#define EXPECT_ERROR(error, name, attrs, n, ...) \
  expect_error(__LINE__, error, name, attrs, n, OPERANDS(__VA_ARGS__))

/* ---- element-wise --------------------------------------------------------- */

static void test_broadcast(void) {
  EXPECT_INFER("tensor<2x3xf32>", "add", "", 1, "tensor<2x3xf32>", "tensor<3xf32>");
  EXPECT_INFER("tensor<5x3x4xf32>", "mul", "", 1, "tensor<5x1x4xf32>", "tensor<3x1xf32>");
  EXPECT_INFER("tensor<2x3xf32>", "sub", "", 1, "tensor<f32>", "tensor<2x3xf32>");
  /* An unknown dim against 1 stays unknown; against 3 it must be 3. */
  EXPECT_INFER("tensor<?x3xf32>", "div", "", 1, "tensor<?x1xf32>", "tensor<1x3xf32>");
  EXPECT_INFER("tensor<4x3xf32>", "add", "", 1, "tensor<?x3xf32>", "tensor<4x3xf32>");
  EXPECT_INFER("tensor<*xf32>", "add", "", 1, "tensor<*xf32>", "tensor<4x3xf32>");
  EXPECT_INFER("tensor<0x3xi64>", "add", "", 1, "tensor<0x1xi64>", "tensor<3xi64>");
  EXPECT_ERROR("Add: operands 2x3 and 4x3 do not broadcast", "add", "", 1,
               "tensor<2x3xf32>", "tensor<4x3xf32>");
  EXPECT_ERROR("operands have different element types f32 and i64", "add", "", 1,
               "tensor<2xf32>", "tensor<2xi64>");
  EXPECT_ERROR("operand 'a' must be numeric, got i1", "add", "", 1, "tensor<2xi1>",
               "tensor<2xi1>");
}

static void test_compare_logic(void) {
  EXPECT_INFER("tensor<2x3xi1>", "less", "", 1, "tensor<2x1xf32>", "tensor<3xf32>");
  EXPECT_INFER("tensor<4xi1>", "equal", "", 1, "tensor<4xi1>", "tensor<4xi1>");
  EXPECT_INFER("tensor<4xi1>", "greater_or_equal", "", 1, "tensor<4xi64>", "tensor<i64>");
  EXPECT_INFER("tensor<3x4xi1>", "and", "", 1, "tensor<3x1xi1>", "tensor<4xi1>");
  EXPECT_INFER("tensor<?xi1>", "not", "", 1, "tensor<?xi1>");
  EXPECT_ERROR("operand 'a' must be bool (i1), got f32", "or", "", 1,
               "tensor<2xf32>", "tensor<2xi1>");
  EXPECT_ERROR("operand 'x' must be bool (i1), got i64", "not", "", 1, "tensor<2xi64>");
}

static void test_where_variadic(void) {
  /* Three-way broadcast; dtype from x. */
  EXPECT_INFER("tensor<2x3x4xi64>", "where", "", 1, "tensor<3x1xi1>",
               "tensor<2x1x4xi64>", "tensor<4xi64>");
  EXPECT_ERROR("operands 3x1, 2x2x4 and 4 do not broadcast", "where", "", 1,
               "tensor<3x1xi1>", "tensor<2x2x4xf32>", "tensor<4xf32>");
  EXPECT_ERROR("operand 'condition' must be bool (i1), got f32", "where", "", 1,
               "tensor<2xf32>", "tensor<2xf32>", "tensor<2xf32>");
  EXPECT_INFER("tensor<2x3x4xf32>", "max", "", 1, "tensor<3x1xf32>",
               "tensor<2x1x4xf32>", "tensor<f32>");
  EXPECT_INFER("tensor<5xi32>", "min", "", 1, "tensor<5xi32>");
  EXPECT_ERROR("needs at least one operand", "max", "", 1, NULL);
}

static void test_unary_cast_clip_dropout(void) {
  EXPECT_INFER("tensor<2x?xf32>", "sqrt", "", 1, "tensor<2x?xf32>");
  EXPECT_INFER("tensor<3xi32>", "neg", "", 1, "tensor<3xi32>");
  EXPECT_INFER("tensor<3xf64>", "gelu", "{approximate = \"tanh\"}", 1, "tensor<3xf64>");
  EXPECT_ERROR("operand 'x' must be a float tensor, got i64", "exp", "", 1,
               "tensor<3xi64>");
  EXPECT_INFER("tensor<2x3xi64>", "cast", "{to = i64}", 1, "tensor<2x3xf32>");
  EXPECT_INFER("tensor<*xi1>", "cast", "{to = i1}", 1, "tensor<*xf32>");
  EXPECT_ERROR("missing attribute 'to'", "cast", "", 1, "tensor<2xf32>");
  EXPECT_ERROR("attribute 'to' must be a type", "cast", "{to = 3 : i64}", 1,
               "tensor<2xf32>");
  EXPECT_INFER("tensor<2x3xf32>", "clip", "{operandSegmentSizes = array<i32: 1, 1, 1>}",
               1, "tensor<2x3xf32>", "tensor<f32>", "tensor<f32>");
  EXPECT_INFER("tensor<2x3xi8>", "clip", "{operandSegmentSizes = array<i32: 1, 0, 1>}",
               1, "tensor<2x3xi8>", "tensor<i8>");
  EXPECT_ERROR("must be a scalar", "clip", "{operandSegmentSizes = array<i32: 1, 1, 0>}",
               1, "tensor<2x3xf32>", "tensor<2xf32>");
  /* onnx: test_dropout_default_mask_ratio, mask is bool. */
  EXPECT_INFER("tensor<3x4x5xf32>, tensor<3x4x5xi1>", "dropout",
               "{operandSegmentSizes = array<i32: 1, 1, 0>, seed = 0 : i64}", 2,
               "tensor<3x4x5xf32>", "tensor<f32>");
  EXPECT_INFER("tensor<3x4x5xf32>", "pow", "", 1, "tensor<3x4x5xf32>", "tensor<i64>");
}

/* ---- shape ops -------------------------------------------------------------- */

static void test_constant_weight_shape(void) {
  EXPECT_INFER("tensor<3xi64>", "shape", "", 1, "tensor<3x4x5xf32>");
  /* onnx: test_shape_start_1_end_negative_1, _clip_start, _clip_end */
  EXPECT_INFER("tensor<1xi64>", "shape", "{start = 1 : i64, end = -1 : i64}", 1,
               "tensor<3x4x5xf32>");
  EXPECT_INFER("tensor<3xi64>", "shape", "{start = -10 : i64}", 1, "tensor<3x4x5xf32>");
  EXPECT_INFER("tensor<3xi64>", "shape", "{end = 10 : i64}", 1, "tensor<3x4x5xf32>");
  EXPECT_INFER("tensor<0xi64>", "shape", "{start = 2 : i64, end = 1 : i64}", 1,
               "tensor<3x4x5xf32>");
  EXPECT_INFER("tensor<2xi64>", "shape", "", 1, "tensor<?x?xf32>");
  EXPECT_INFER("tensor<?xi64>", "shape", "", 1, "tensor<*xf32>");
  EXPECT_ERROR("attribute 'start' must be an integer", "shape", "{start = \"x\"}", 1,
               "tensor<2xf32>");
}

static void test_constant_of_shape(void) {
  EXPECT_INFER("tensor<2x3xf32>", "constant_of_shape", "", 1,
               "dense<[2, 3]> : tensor<2xi64>");
  EXPECT_INFER("tensor<4xi64>", "constant_of_shape",
               "{value = dense<7> : tensor<1xi64>}", 1, "dense<4> : tensor<1xi64>");
  /* onnx: test_constantofshape_int_shape_zero */
  EXPECT_INFER("tensor<0xi32>", "constant_of_shape",
               "{value = dense<0> : tensor<1xi32>}", 1, "dense<0> : tensor<1xi64>");
  EXPECT_INFER("tensor<f32>", "constant_of_shape", "", 1,
               "dense<> : tensor<0xi64>");
  EXPECT_INFER("tensor<?x?x?xf32>", "constant_of_shape", "", 1, "tensor<3xi64>");
  EXPECT_INFER("tensor<*xf32>", "constant_of_shape", "", 1, "tensor<?xi64>");
  EXPECT_ERROR("negative dimension -2", "constant_of_shape", "", 1,
               "dense<[2, -2]> : tensor<2xi64>");
  EXPECT_ERROR("operand 'input' must be int64, got i32", "constant_of_shape", "", 1,
               "tensor<2xi32>");
}

static void test_reshape(void) {
  /* onnx: test_reshape_negative_extended_dims, _zero_and_negative_dim,
   * _allowzero_reordered, _reordered_last_dims */
  EXPECT_INFER("tensor<1x2x3x4xf32>", "reshape", "", 1, "tensor<2x3x4xf32>",
               "dense<[-1, 2, 3, 4]> : tensor<4xi64>");
  EXPECT_INFER("tensor<2x3x1x4xf32>", "reshape", "", 1, "tensor<2x3x4xf32>",
               "dense<[2, 0, 1, -1]> : tensor<4xi64>");
  EXPECT_INFER("tensor<3x4x0xf32>", "reshape", "{allowzero = 1 : i64}", 1,
               "tensor<0x3x4xf32>", "dense<[3, 4, 0]> : tensor<3xi64>");
  EXPECT_INFER("tensor<2x4x3xf32>", "reshape", "", 1, "tensor<2x3x4xf32>",
               "dense<[2, 4, 3]> : tensor<3xi64>");
  /* A copied unknown dim cancels: ?x6 -> [0, -1] keeps ?x6. */
  EXPECT_INFER("tensor<?x2x3xf32>", "reshape", "", 1, "tensor<?x6xf32>",
               "dense<[0, 2, -1]> : tensor<3xi64>");
  EXPECT_INFER("tensor<?x4xf32>", "reshape", "", 1, "tensor<?x2x2xf32>",
               "dense<[-1, 4]> : tensor<2xi64>");
  /* The shape's value unknown: only its length. */
  EXPECT_INFER("tensor<?x?x?xf32>", "reshape", "", 1, "tensor<2x3x4xf32>",
               "tensor<3xi64>");
  EXPECT_INFER("tensor<*xf32>", "reshape", "", 1, "tensor<2x3x4xf32>", "tensor<?xi64>");
  EXPECT_ERROR("more than one -1", "reshape", "", 1, "tensor<2x3xf32>",
               "dense<[-1, -1]> : tensor<2xi64>");
  EXPECT_ERROR("cannot reshape 2x3 into 4x2: element counts differ", "reshape", "", 1,
               "tensor<2x3xf32>", "dense<[4, 2]> : tensor<2xi64>");
  EXPECT_ERROR("cannot reshape 2x3 into a shape with 4 elements besides -1", "reshape",
               "", 1, "tensor<2x3xf32>", "dense<[4, -1]> : tensor<2xi64>");
  EXPECT_ERROR("shape value 0 at index 2 has no input dimension", "reshape", "", 1,
               "tensor<2x3xf32>", "dense<[1, 1, 0]> : tensor<3xi64>");
  EXPECT_ERROR("both 0 and -1 with allowzero=1", "reshape", "{allowzero = 1 : i64}", 1,
               "tensor<0x3xf32>", "dense<[0, -1]> : tensor<2xi64>");
  EXPECT_ERROR("invalid shape value -3", "reshape", "", 1, "tensor<6xf32>",
               "dense<[-3, 2]> : tensor<2xi64>");
  EXPECT_ERROR("operand 'shape' must be int64, got f32", "reshape", "", 1,
               "tensor<6xf32>", "tensor<2xf32>");
}

static void test_squeeze_unsqueeze(void) {
  /* onnx: test_squeeze_negative_axes, test_unsqueeze_unsorted_axes,
   * test_unsqueeze_negative_axes */
  EXPECT_INFER("tensor<1x3x5xf32>", "squeeze", "", 1, "tensor<1x3x1x5xf32>",
               "dense<[-2]> : tensor<1xi64>");
  EXPECT_INFER("tensor<3x5xf32>", "squeeze", "", 1, "tensor<1x3x1x5xf32>");
  EXPECT_INFER("tensor<*xf32>", "squeeze", "", 1, "tensor<1x?x1xf32>");
  EXPECT_INFER("tensor<?xf32>", "squeeze", "", 1, "tensor<1x?x1xf32>",
               "dense<[0, 2]> : tensor<2xi64>");
  EXPECT_ERROR("cannot squeeze axis 1 of size 3", "squeeze", "", 1,
               "tensor<1x3xf32>", "dense<[1]> : tensor<1xi64>");
  EXPECT_ERROR("axis 4 out of range for rank 2", "squeeze", "", 1, "tensor<1x1xf32>",
               "dense<[4]> : tensor<1xi64>");
  EXPECT_INFER("tensor<3x4x1x5x1x1xf32>", "unsqueeze", "", 1, "tensor<3x4x5xf32>",
               "dense<[5, 4, 2]> : tensor<3xi64>");
  EXPECT_INFER("tensor<1x3x1x1x5xf32>", "unsqueeze", "", 1, "tensor<1x3x1x5xf32>",
               "dense<[-2]> : tensor<1xi64>");
  EXPECT_INFER("tensor<1xi64>", "unsqueeze", "", 1, "tensor<i64>",
               "dense<0> : tensor<1xi64>");
  EXPECT_INFER("tensor<?x?x?xf32>", "unsqueeze", "", 1, "tensor<3xf32>",
               "tensor<2xi64>");
  EXPECT_ERROR("axis -2 appears twice", "unsqueeze", "", 1, "tensor<3xf32>",
               "dense<[1, -2]> : tensor<2xi64>");
  EXPECT_ERROR("axis 3 out of range for rank 3", "unsqueeze", "", 1, "tensor<3x4xf32>",
               "dense<[3]> : tensor<1xi64>");
}

static void test_transpose_expand_flatten(void) {
  EXPECT_INFER("tensor<4x3x2xf32>", "transpose", "", 1, "tensor<2x3x4xf32>");
  EXPECT_INFER("tensor<3x2x4xf32>", "transpose", "{perm = array<i64: 1, 0, 2>}", 1,
               "tensor<2x3x4xf32>");
  EXPECT_INFER("tensor<?x?xf32>", "transpose", "{perm = array<i64: 1, 0>}", 1,
               "tensor<*xf32>");
  EXPECT_ERROR("perm is not a permutation of 0..2", "transpose",
               "{perm = array<i64: 0, 0, 2>}", 1, "tensor<2x3x4xf32>");
  EXPECT_ERROR("perm has 2 values for rank 3", "transpose",
               "{perm = array<i64: 0, 1>}", 1, "tensor<2x3x4xf32>");
  /* onnx: test_expand_dim_changed (bidirectional) */
  EXPECT_INFER("tensor<2x3x6xf32>", "expand", "", 1, "tensor<3x1xf32>",
               "dense<[2, 1, 6]> : tensor<3xi64>");
  EXPECT_INFER("tensor<3x4xf32>", "expand", "", 1, "tensor<3x4xf32>",
               "dense<[1, 1]> : tensor<2xi64>");
  EXPECT_INFER("tensor<?x?x4xf32>", "expand", "", 1, "tensor<1x4xf32>",
               "tensor<3xi64>");
  EXPECT_ERROR("operands 3x2 and 4 do not broadcast", "expand", "", 1,
               "tensor<3x2xf32>", "dense<[4]> : tensor<1xi64>");
  /* onnx: test_flatten_axis0, test_flatten_negative_axis3 */
  EXPECT_INFER("tensor<1x120xf32>", "flatten", "{axis = 0 : i64}", 1, "tensor<2x3x4x5xf32>");
  EXPECT_INFER("tensor<2x60xf32>", "flatten", "{axis = -3 : i64}", 1, "tensor<2x3x4x5xf32>");
  EXPECT_INFER("tensor<120x1xf32>", "flatten", "{axis = 4 : i64}", 1, "tensor<2x3x4x5xf32>");
  EXPECT_INFER("tensor<?x20xf32>", "flatten", "{axis = 2 : i64}", 1, "tensor<2x?x4x5xf32>");
  EXPECT_ERROR("axis 5 out of range for rank 4", "flatten", "{axis = 5 : i64}", 1,
               "tensor<2x3x4x5xf32>");
}

/* ---- indexing --------------------------------------------------------------- */

static void test_gather(void) {
  /* onnx: test_gather_2d_indices, test_gather_1 */
  EXPECT_INFER("tensor<3x1x2xf32>", "gather", "{axis = 1 : i64}", 1, "tensor<3x3xf32>",
               "tensor<1x2xi64>");
  EXPECT_INFER("tensor<5x3x3x2xf32>", "gather", "{axis = 1 : i64}", 1,
               "tensor<5x4x3x2xf32>", "tensor<3xi32>");
  EXPECT_INFER("tensor<i64>", "gather", "", 1, "tensor<4xi64>", "tensor<i64>");
  EXPECT_INFER("tensor<5x4x2xf32>", "gather", "{axis = -2 : i64}", 1,
               "tensor<5x4x3x2xf32>", "tensor<i64>");
  EXPECT_ERROR("Gather: axis 5 out of range for rank 4", "gather", "{axis = 5 : i64}", 1,
               "tensor<5x4x3x2xf32>", "tensor<i64>");
  EXPECT_ERROR("operand 'indices' must be int32 or int64, got f32", "gather", "", 1,
               "tensor<4xf32>", "tensor<2xf32>");
  EXPECT_ERROR("'data' must have rank >= 1", "gather", "", 1, "tensor<f32>",
               "tensor<2xi64>");
}

static void test_concat(void) {
  EXPECT_INFER("tensor<2x7xf32>", "concat", "{axis = 1 : i64}", 1, "tensor<2x3xf32>",
               "tensor<2x4xf32>");
  EXPECT_INFER("tensor<6x5xf32>", "concat", "{axis = -2 : i64}", 1, "tensor<2x?xf32>",
               "tensor<4x5xf32>");
  EXPECT_INFER("tensor<?x5xf32>", "concat", "{axis = 0 : i64}", 1, "tensor<2x5xf32>",
               "tensor<*xf32>");
  EXPECT_ERROR("Concat: operands have ranks 2 and 3", "concat", "{axis = 0 : i64}", 1,
               "tensor<2x3xf32>", "tensor<2x3x4xf32>");
  EXPECT_ERROR("operands differ in dimension 1: 3 and 4", "concat", "{axis = 0 : i64}",
               1, "tensor<2x3xf32>", "tensor<2x4xf32>");
  EXPECT_ERROR("axis 2 out of range for rank 2", "concat", "{axis = 2 : i64}", 1,
               "tensor<2x3xf32>");
  EXPECT_ERROR("missing attribute 'axis'", "concat", "", 1, "tensor<2x3xf32>");
}

static void test_slice(void) {
  const char *segs = "{operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>}";
  /* onnx: test_slice, test_slice_neg_steps, _end_out_of_bounds,
   * _start_out_of_bounds, _negative_axes, test_slice_neg */
  EXPECT_INFER("tensor<3x10x5xf32>", "slice", segs, 1, "tensor<20x10x5xf32>",
               "dense<[0, 0]> : tensor<2xi64>", "dense<[3, 10]> : tensor<2xi64>",
               "dense<[0, 1]> : tensor<2xi64>", "dense<[1, 1]> : tensor<2xi64>");
  EXPECT_INFER("tensor<19x3x2xf32>", "slice", segs, 1, "tensor<20x10x5xf32>",
               "dense<[20, 10, 4]> : tensor<3xi64>", "dense<[0, 0, 1]> : tensor<3xi64>",
               "dense<[0, 1, 2]> : tensor<3xi64>", "dense<[-1, -3, -2]> : tensor<3xi64>");
  EXPECT_INFER("tensor<20x9x5xf32>", "slice", segs, 1, "tensor<20x10x5xf32>",
               "dense<1> : tensor<1xi64>", "dense<1000> : tensor<1xi64>",
               "dense<1> : tensor<1xi64>", "dense<1> : tensor<1xi64>");
  EXPECT_INFER("tensor<20x0x5xf32>", "slice", segs, 1, "tensor<20x10x5xf32>",
               "dense<1000> : tensor<1xi64>", "dense<1000> : tensor<1xi64>",
               "dense<1> : tensor<1xi64>", "dense<1> : tensor<1xi64>");
  EXPECT_INFER("tensor<20x10x1xf32>", "slice",
               "{operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>}", 1,
               "tensor<20x10x5xf32>", "dense<[0, 0, 3]> : tensor<3xi64>",
               "dense<[20, 10, 4]> : tensor<3xi64>", "dense<[0, -2, -1]> : tensor<3xi64>");
  EXPECT_INFER("tensor<20x10x1xf32>", "slice",
               "{operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>}", 1,
               "tensor<20x10x5xf32>", "dense<[0, 0, 3]> : tensor<3xi32>",
               "dense<[20, 10, 4]> : tensor<3xi32>");
  EXPECT_INFER("tensor<20x9x5xf32>", "slice", segs, 1, "tensor<20x10x5xf32>",
               "dense<0> : tensor<1xi64>", "dense<-1> : tensor<1xi64>",
               "dense<1> : tensor<1xi64>", "dense<1> : tensor<1xi64>");
  /* Reversal with INT64_MIN end and huge negative step; step -2 from the
   * end: 10 elements -> indices 9,7,5,3,1. */
  EXPECT_INFER("tensor<10xf32>", "slice", segs, 1, "tensor<10xf32>",
               "dense<-1> : tensor<1xi64>",
               "dense<-9223372036854775808> : tensor<1xi64>",
               "dense<0> : tensor<1xi64>", "dense<-1> : tensor<1xi64>");
  EXPECT_INFER("tensor<5xf32>", "slice", segs, 1, "tensor<10xf32>",
               "dense<9223372036854775807> : tensor<1xi64>",
               "dense<-9223372036854775807> : tensor<1xi64>",
               "dense<0> : tensor<1xi64>", "dense<-2> : tensor<1xi64>");
  EXPECT_INFER("tensor<1xf32>", "slice", segs, 1, "tensor<10xf32>",
               "dense<5> : tensor<1xi64>", "dense<0> : tensor<1xi64>",
               "dense<0> : tensor<1xi64>",
               "dense<-9223372036854775808> : tensor<1xi64>");
  /* An unknown dim stays unknown; runtime starts give unknown dims. */
  EXPECT_INFER("tensor<?x2xf32>", "slice", segs, 1, "tensor<?x10xf32>",
               "dense<[1, 2]> : tensor<2xi64>", "dense<[3, 4]> : tensor<2xi64>",
               "dense<[0, 1]> : tensor<2xi64>", "dense<[1, 1]> : tensor<2xi64>");
  EXPECT_INFER("tensor<?x?xf32>", "slice", segs, 1, "tensor<4x10xf32>",
               "tensor<2xi64>", "dense<[3, 4]> : tensor<2xi64>",
               "dense<[0, 1]> : tensor<2xi64>", "dense<[1, 1]> : tensor<2xi64>");
  EXPECT_ERROR("step must not be 0", "slice", segs, 1, "tensor<10xf32>",
               "dense<0> : tensor<1xi64>", "dense<5> : tensor<1xi64>",
               "dense<0> : tensor<1xi64>", "dense<0> : tensor<1xi64>");
  EXPECT_ERROR("axis 0 is sliced twice", "slice", segs, 1, "tensor<10x3xf32>",
               "dense<[0, 0]> : tensor<2xi64>", "dense<[5, 5]> : tensor<2xi64>",
               "dense<[0, -2]> : tensor<2xi64>", "dense<[1, 1]> : tensor<2xi64>");
  EXPECT_ERROR("starts, ends, axes and steps differ in length", "slice", segs, 1,
               "tensor<10x3xf32>", "dense<[0, 0]> : tensor<2xi64>",
               "dense<[5]> : tensor<1xi64>", "dense<[0, 1]> : tensor<2xi64>",
               "dense<[1, 1]> : tensor<2xi64>");
}

static void test_split(void) {
  /* onnx: test_split_equal_parts_2d, test_split_variable_parts_2d,
   * test_split_zero_size_splits */
  EXPECT_INFER("tensor<2x3xf32>, tensor<2x3xf32>", "split", "{axis = 1 : i64}", 2,
               "tensor<2x6xf32>");
  EXPECT_INFER("tensor<2x2xf32>, tensor<2x4xf32>", "split", "{axis = 1 : i64}", 2,
               "tensor<2x6xf32>", "dense<[2, 4]> : tensor<2xi64>");
  EXPECT_INFER("tensor<0xf32>, tensor<0xf32>, tensor<0xf32>", "split", "", 3,
               "tensor<0xf32>", "dense<[0, 0, 0]> : tensor<3xi64>");
  /* num_outputs: ceil(7 / 3) = 3, the last chunk smaller. */
  EXPECT_INFER("tensor<3x2xf32>, tensor<3x2xf32>, tensor<1x2xf32>", "split",
               "{num_outputs = 3 : i64}", 3, "tensor<7x2xf32>");
  EXPECT_INFER("tensor<?x2xf32>, tensor<?x2xf32>", "split", "", 2, "tensor<?x2xf32>");
  EXPECT_INFER("tensor<?xf32>, tensor<?xf32>", "split", "", 2, "tensor<6xf32>",
               "tensor<2xi64>");
  EXPECT_ERROR("split sizes sum to 5 but the axis has size 6", "split", "", 2,
               "tensor<6xf32>", "dense<[2, 3]> : tensor<2xi64>");
  EXPECT_ERROR("cannot split a dimension of 7 into 2 equal parts", "split", "", 2,
               "tensor<7xf32>");
  EXPECT_ERROR("num_outputs is 3 but the op has 2 results", "split",
               "{num_outputs = 3 : i64}", 2, "tensor<6xf32>");
  EXPECT_ERROR("'split' has 3 values for 2 outputs", "split", "", 2, "tensor<6xf32>",
               "dense<[2, 2, 2]> : tensor<3xi64>");
}

static void test_range(void) {
  /* onnx: test_range_int32_type_negative_delta, _float_type_positive_delta */
  EXPECT_INFER("tensor<2xi32>", "range", "", 1, "dense<10> : tensor<i32>",
               "dense<6> : tensor<i32>", "dense<-3> : tensor<i32>");
  EXPECT_INFER("tensor<2xf32>", "range", "", 1, "dense<1.0> : tensor<f32>",
               "dense<5.0> : tensor<f32>", "dense<2.0> : tensor<f32>");
  EXPECT_INFER("tensor<0xi64>", "range", "", 1, "dense<5> : tensor<i64>",
               "dense<1> : tensor<i64>", "dense<1> : tensor<i64>");
  EXPECT_INFER("tensor<?xi64>", "range", "", 1, "tensor<i64>",
               "dense<1> : tensor<i64>", "dense<1> : tensor<i64>");
  EXPECT_ERROR("delta must not be 0", "range", "", 1, "dense<0> : tensor<i64>",
               "dense<3> : tensor<i64>", "dense<0> : tensor<i64>");
  EXPECT_ERROR("operand 'start' must be a scalar", "range", "", 1, "tensor<2xi64>",
               "tensor<i64>", "tensor<i64>");
}

/* ---- neural-network ops ----------------------------------------------------- */

static void test_matmul_gemm(void) {
  /* onnx: test_matmul_4d, test_matmul_3d */
  EXPECT_INFER("tensor<1x2x3x3xf32>", "matmul", "", 1, "tensor<1x2x3x4xf32>",
               "tensor<1x2x4x3xf32>");
  EXPECT_INFER("tensor<2x5x3x6xf32>", "matmul", "", 1, "tensor<2x1x3x4xf32>",
               "tensor<5x4x6xf32>");
  EXPECT_INFER("tensor<5xf32>", "matmul", "", 1, "tensor<4xf32>", "tensor<4x5xf32>");
  EXPECT_INFER("tensor<2x3xf32>", "matmul", "", 1, "tensor<2x3x4xf32>", "tensor<4xf32>");
  EXPECT_INFER("tensor<f32>", "matmul", "", 1, "tensor<4xf32>", "tensor<4xf32>");
  EXPECT_INFER("tensor<?x7x5xf32>", "matmul", "", 1, "tensor<?x7x?xf32>",
               "tensor<3x5xf32>");
  EXPECT_ERROR("MatMul: inner dimensions differ: 2x3 and 4x5", "matmul", "", 1,
               "tensor<2x3xf32>", "tensor<4x5xf32>");
  EXPECT_ERROR("operand 'a' must be numeric, got i1", "matmul", "", 1, "tensor<2x3xi1>",
               "tensor<3x2xi1>");
  EXPECT_ERROR("operand 'b' must have rank >= 1, got 0", "matmul", "", 1,
               "tensor<3xf32>", "tensor<f32>");
  /* onnx: test_gemm_all_attributes, test_gemm_transposeA */
  EXPECT_INFER("tensor<3x5xf32>", "gemm", "{transA = 1 : i64, transB = 1 : i64}", 1,
               "tensor<4x3xf32>", "tensor<5x4xf32>", "tensor<1x5xf32>");
  EXPECT_INFER("tensor<3x4xf32>", "gemm", "{transA = 1 : i64}", 1, "tensor<6x3xf32>",
               "tensor<6x4xf32>", "tensor<1x4xf32>");
  EXPECT_INFER("tensor<2x4xf32>", "gemm", "", 1, "tensor<2x7xf32>", "tensor<7x4xf32>");
  EXPECT_ERROR("operand 'c' of shape 3 does not broadcast to 2x4", "gemm", "", 1,
               "tensor<2x7xf32>", "tensor<7x4xf32>", "tensor<3xf32>");
  EXPECT_ERROR("operand 'a' must have rank 2, got 3", "gemm", "", 1,
               "tensor<1x2x7xf32>", "tensor<7x4xf32>");
  EXPECT_ERROR("attribute 'alpha' must be a float", "gemm", "{alpha = \"x\"}", 1,
               "tensor<2x7xf32>", "tensor<7x4xf32>");
}

static void test_conv_pool(void) {
  /* onnx: test_basic_conv_with_padding, test_conv_with_strides_and_
   * asymmetric_padding, test_conv_with_autopad_same, _strides_padding */
  EXPECT_INFER("tensor<1x1x5x5xf32>", "conv",
               "{kernel_shape = array<i64: 3, 3>, pads = array<i64: 1, 1, 1, 1>}", 1,
               "tensor<1x1x5x5xf32>", "tensor<1x1x3x3xf32>");
  EXPECT_INFER("tensor<1x1x4x2xf32>", "conv",
               "{pads = array<i64: 1, 0, 1, 0>, strides = array<i64: 2, 2>}", 1,
               "tensor<1x1x7x5xf32>", "tensor<1x1x3x3xf32>");
  EXPECT_INFER("tensor<1x1x3x3xf32>", "conv",
               "{auto_pad = \"SAME_LOWER\", strides = array<i64: 2, 2>}", 1,
               "tensor<1x1x5x5xf32>", "tensor<1x1x3x3xf32>");
  EXPECT_INFER("tensor<1x1x4x3xf32>", "conv",
               "{pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>}", 1,
               "tensor<1x1x7x5xf32>", "tensor<1x1x3x3xf32>");
  /* Groups, dilation, bias, VALID, unknown batch. */
  EXPECT_INFER("tensor<?x8x6x6xf32>", "conv",
               "{group = 2 : i64, dilations = array<i64: 2, 2>, auto_pad = \"VALID\"}",
               1, "tensor<?x4x10x10xf32>", "tensor<8x2x3x3xf32>", "tensor<8xf32>");
  EXPECT_ERROR("'x' has 4 channels but 'w' expects 3 x group 1", "conv", "", 1,
               "tensor<1x4x5x5xf32>", "tensor<2x3x3x3xf32>");
  EXPECT_ERROR("'strides' has 1 values for 2 spatial axes", "conv",
               "{strides = array<i64: 2>}", 1, "tensor<1x1x5x5xf32>",
               "tensor<1x1x3x3xf32>");
  EXPECT_ERROR("kernel of extent 7 is larger than the padded input (5)", "conv", "", 1,
               "tensor<1x1x5x5xf32>", "tensor<1x1x7x7xf32>");
  EXPECT_ERROR("unknown auto_pad 'SAME'", "conv", "{auto_pad = \"SAME\"}", 1,
               "tensor<1x1x5x5xf32>", "tensor<1x1x3x3xf32>");
  /* onnx: test_maxpool_2d_ceil, _same_lower, _dilations, _pads, _3d_default,
   * test_averagepool_2d_precomputed_same_upper, _strides, _ceil */
  EXPECT_INFER("tensor<1x1x2x2xf32>", "max_pool",
               "{ceil_mode = 1 : i64, kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>}",
               1, "tensor<1x1x4x4xf32>");
  EXPECT_INFER("tensor<1x3x32x32xf32>", "max_pool",
               "{auto_pad = \"SAME_LOWER\", kernel_shape = array<i64: 2, 2>}", 1,
               "tensor<1x3x32x32xf32>");
  EXPECT_INFER("tensor<1x1x2x2xf32>", "max_pool",
               "{dilations = array<i64: 2, 2>, kernel_shape = array<i64: 2, 2>}", 1,
               "tensor<1x1x4x4xf32>");
  EXPECT_INFER("tensor<1x3x30x30xf32>", "max_pool",
               "{kernel_shape = array<i64: 3, 3>, pads = array<i64: 2, 2, 2, 2>}", 1,
               "tensor<1x3x28x28xf32>");
  EXPECT_INFER("tensor<1x3x31x31x31xf32>, tensor<1x3x31x31x31xi64>", "max_pool",
               "{kernel_shape = array<i64: 2, 2, 2>}", 2, "tensor<1x3x32x32x32xf32>");
  EXPECT_INFER("tensor<1x1x3x3xf32>", "average_pool",
               "{auto_pad = \"SAME_UPPER\", kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>}",
               1, "tensor<1x1x5x5xf32>");
  EXPECT_INFER("tensor<1x3x10x10xf32>", "average_pool",
               "{kernel_shape = array<i64: 5, 5>, strides = array<i64: 3, 3>}", 1,
               "tensor<1x3x32x32xf32>");
  /* ceil_mode drops a last window that would start in the padding
   * (onnx test_maxpool_2d_ceil_output_size_reduce_by_one, opset 22 data). */
  EXPECT_INFER("tensor<1x1x1x1xf32>", "max_pool",
               "{ceil_mode = 1 : i64, kernel_shape = array<i64: 1, 1>, strides = array<i64: 2, 2>}",
               1, "tensor<1x1x2x2xf32>");
  EXPECT_ERROR("missing attribute 'kernel_shape'", "max_pool", "", 1,
               "tensor<1x1x4x4xf32>");
  EXPECT_ERROR("'kernel_shape' has 2 values but 'x' has rank 3", "average_pool",
               "{kernel_shape = array<i64: 2, 2>}", 1, "tensor<1x1x4xf32>");
  /* onnx: test_globalaveragepool */
  EXPECT_INFER("tensor<1x3x1x1xf32>", "global_average_pool", "", 1, "tensor<1x3x5x5xf32>");
}

static void test_reduce_softmax(void) {
  /* onnx: test_reduce_sum_do_not_keepdims_example, test_reduce_mean_negative_
   * axes_keepdims_example, _empty_axes_input_noop, test_reduce_max_default */
  EXPECT_INFER("tensor<3x2xf32>", "reduce_sum", "{keepdims = 0 : i64}", 1,
               "tensor<3x2x2xf32>", "dense<1> : tensor<1xi64>");
  EXPECT_INFER("tensor<3x1x2xf32>", "reduce_mean", "", 1, "tensor<3x2x2xf32>",
               "dense<-2> : tensor<1xi64>");
  EXPECT_INFER("tensor<3x2x2xf32>", "reduce_sum", "{noop_with_empty_axes = 1 : i64}", 1,
               "tensor<3x2x2xf32>", "dense<> : tensor<0xi64>");
  EXPECT_INFER("tensor<1x1x1xf32>", "reduce_max", "", 1, "tensor<3x2x2xf32>");
  EXPECT_INFER("tensor<f32>", "reduce_max", "{keepdims = 0 : i64}", 1, "tensor<3x2x2xf32>");
  EXPECT_INFER("tensor<?x?x?xf32>", "reduce_sum", "", 1, "tensor<3x2x2xf32>",
               "tensor<1xi64>");
  EXPECT_INFER("tensor<*xf32>", "reduce_sum", "{keepdims = 0 : i64}", 1,
               "tensor<3x2x2xf32>", "tensor<1xi64>");
  EXPECT_INFER("tensor<1x4xi1>", "reduce_max", "", 1, "tensor<3x4xi1>",
               "dense<0> : tensor<1xi64>");
  EXPECT_ERROR("axis 3 out of range for rank 3", "reduce_mean", "", 1,
               "tensor<3x2x2xf32>", "dense<3> : tensor<1xi64>");
  EXPECT_INFER("tensor<2x3xf32>", "softmax", "{axis = 0 : i64}", 1, "tensor<2x3xf32>");
  EXPECT_ERROR("Softmax: axis 5 out of range for rank 4", "softmax", "{axis = 5 : i64}", 1,
               "tensor<1x2x3x4xf32>");
  EXPECT_ERROR("LogSoftmax: axis -3 out of range for rank 2", "log_softmax",
               "{axis = -3 : i64}", 1, "tensor<2x3xf32>");
}

static void test_losses_norms(void) {
  /* onnx: test_sce_none_log_prob, test_sce_mean */
  EXPECT_INFER("tensor<3xf32>, tensor<3x5xf32>", "softmax_cross_entropy_loss",
               "{reduction = \"none\"}", 2, "tensor<3x5xf32>", "tensor<3xi64>");
  EXPECT_INFER("tensor<f32>", "softmax_cross_entropy_loss", "", 1, "tensor<3x5xf32>",
               "tensor<3xi64>");
  EXPECT_INFER("tensor<2x4x5xf32>", "softmax_cross_entropy_loss",
               "{reduction = \"none\"}", 1, "tensor<2x3x4x5xf32>", "tensor<*xi32>");
  EXPECT_INFER("tensor<f32>", "softmax_cross_entropy_loss",
               "{reduction = \"sum\"}", 1, "tensor<2x3x4xf32>", "tensor<2x4xi64>",
               "tensor<3xf32>");
  EXPECT_ERROR("'labels' must have rank 1 (scores rank minus 1), got 2",
               "softmax_cross_entropy_loss", "", 1, "tensor<3x5xf32>", "tensor<3x5xi64>");
  EXPECT_ERROR("unknown reduction 'avg'", "softmax_cross_entropy_loss",
               "{reduction = \"avg\"}", 1, "tensor<3x5xf32>", "tensor<3xi64>");
  /* onnx: test_layer_normalization_4d_axis1 */
  EXPECT_INFER("tensor<2x3x4x5xf32>, tensor<2x1x1x1xf32>, tensor<2x1x1x1xf32>",
               "layer_normalization",
               "{axis = 1 : i64, resultSegmentSizes = array<i32: 1, 1, 1>, "
               "operandSegmentSizes = array<i32: 1, 1, 1>}",
               3, "tensor<2x3x4x5xf32>", "tensor<3x4x5xf32>", "tensor<3x4x5xf32>");
  EXPECT_INFER("tensor<2x3x4xf32>, tensor<2x3x1xf32>", "layer_normalization",
               "{resultSegmentSizes = array<i32: 1, 1, 0>}", 2, "tensor<2x3x4xf32>",
               "tensor<4xf32>");
  /* onnx: test_batchnorm_example_training_mode */
  EXPECT_INFER("tensor<2x3x4x5xf32>, tensor<3xf32>, tensor<3xf32>",
               "batch_normalization",
               "{training_mode = 1 : i64, resultSegmentSizes = array<i32: 1, 1, 1>}", 3,
               "tensor<2x3x4x5xf32>", "tensor<3xf32>", "tensor<3xf32>", "tensor<3xf32>",
               "tensor<3xf32>");
  EXPECT_ERROR("operand 'scale' must have one value per channel (3)",
               "batch_normalization", "{resultSegmentSizes = array<i32: 1, 0, 0>}", 1,
               "tensor<2x3x4x5xf32>", "tensor<4xf32>", "tensor<3xf32>", "tensor<3xf32>",
               "tensor<3xf32>");
  /* onnx: test_tril_zero, test_cumsum_2d_negative_axis */
  EXPECT_INFER("tensor<3x0x5xi64>", "trilu", "{upper = 0 : i64}", 1, "tensor<3x0x5xi64>",
               "tensor<i64>");
  EXPECT_ERROR("operand 'input' must have rank >= 2, got 1", "trilu", "", 1,
               "tensor<3xf32>");
  EXPECT_INFER("tensor<2x3xf64>", "cumsum", "", 1, "tensor<2x3xf64>",
               "dense<-1> : tensor<i32>");
  EXPECT_ERROR("axis 2 out of range for rank 2", "cumsum", "", 1, "tensor<2x3xf64>",
               "dense<2> : tensor<i32>");
}

/* ---- malformed ops must not crash ------------------------------------------- */

static void test_bad_inputs(void) {
  EXPECT_ERROR("expects 2 operands, got 1", "add", "", 1, "tensor<2xf32>");
  EXPECT_ERROR("operand 'a' is not a tensor (f32)", "add", "", 1, "f32", "f32");
  EXPECT_ERROR("attribute 'axis' must be an integer", "softmax", "{axis = 1.5 : f32}", 1,
               "tensor<2xf32>");
  EXPECT_ERROR("attribute 'perm' must be an array of integers", "transpose",
               "{perm = [1, 0]}", 1, "tensor<2x3xf32>");
  EXPECT_ERROR("missing or malformed 'operandSegmentSizes' attribute", "slice", "", 1,
               "tensor<2xf32>", "tensor<1xi64>", "tensor<1xi64>");
  EXPECT_ERROR("'operandSegmentSizes' does not fit", "slice",
               "{operandSegmentSizes = array<i32: 1, 1, 1, 2, 0>}", 1, "tensor<2xf32>",
               "tensor<1xi64>", "tensor<1xi64>", "tensor<1xi64>", "tensor<1xi64>");
  EXPECT_ERROR("attribute 'value' must be a dense tensor", "constant_of_shape",
               "{value = 3 : i64}", 1, "dense<[2]> : tensor<1xi64>");
  EXPECT_ERROR("has rank 33; moai supports up to 32", "relu", "", 1,
               "tensor<1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1xf32>");
  EXPECT_ERROR("result rank 33 exceeds moai's limit of 32", "unsqueeze", "", 1,
               "tensor<1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1x1xf32>",
               "dense<0> : tensor<1xi64>");
}

/* Every op of the table, with unranked operands, bool operands and no
 * attributes: each either infers or fails with a diagnostic, never crashes,
 * and always leaves tensor results. */
static void test_every_op_survives_odd_operands(void) {
  static const char *const kinds[] = {"tensor<*xf32>", "tensor<*xi1>", "tensor<i64>",
                                      "tensor<0x?xf32>"};
  size_t count;
  const moai_op_def_t *defs = moai_op_defs(&count);
  for (size_t d = 0; d < count; ++d) {
    for (size_t kind = 0; kind < sizeof(kinds) / sizeof(kinds[0]); ++kind) {
      size_t n = moai_op_def_operand_count(&defs[d]);
      const char *operands[MOAI_OP_MAX_OPERANDS + 1] = {NULL};
      for (size_t i = 0; i < n; ++i) operands[i] = kinds[kind];
      si_fixture_t f;
      bool ok = false;
      char attrs[512] = "{";
      size_t len = 1;
      /* Segment attributes are at IRDL level (variadic entries expanded);
       * encode one value per operand entry, and every non-optional result. */
      int32_t counts[MOAI_OP_MAX_OPERANDS], sizes[64];
      size_t n_sizes = 0;
      for (size_t i = 0; i < n; ++i) counts[i] = 1;
      if (moai_op_def_needs_operand_segments(&defs[d]) &&
          moai_op_def_encode_segments(&defs[d], false, counts, sizes, 64, &n_sizes)) {
        len += (size_t)snprintf(attrs + len, sizeof(attrs) - len,
                                "operandSegmentSizes = array<i32");
        for (size_t i = 0; i < n_sizes; ++i)
          len += (size_t)snprintf(attrs + len, sizeof(attrs) - len, "%s %d",
                                  i ? "," : ":", sizes[i]);
        len += (size_t)snprintf(attrs + len, sizeof(attrs) - len, ">");
      }
      size_t n_res = moai_op_def_result_count(&defs[d]);
      int results = 0;
      for (size_t i = 0; i < n_res; ++i) {
        counts[i] = defs[d].results[i].arity != MOAI_ARITY_OPTIONAL;
        results += counts[i];
      }
      if (moai_op_def_needs_result_segments(&defs[d]) &&
          moai_op_def_encode_segments(&defs[d], true, counts, sizes, 64, &n_sizes)) {
        len += (size_t)snprintf(attrs + len, sizeof(attrs) - len,
                                "%sresultSegmentSizes = array<i32",
                                len > 1 ? ", " : "");
        for (size_t i = 0; i < n_sizes; ++i)
          len += (size_t)snprintf(attrs + len, sizeof(attrs) - len, "%s %d",
                                  i ? "," : ":", sizes[i]);
        len += (size_t)snprintf(attrs + len, sizeof(attrs) - len, ">");
      }
      snprintf(attrs + len, sizeof(attrs) - len, "}");
      const char *got =
          fixture_infer_op(&f, defs[d].name, attrs, results, operands, &ok);
      CU_ASSERT_PTR_NOT_NULL(got);
      if (!ok) CU_ASSERT_TRUE(f.errors_len > 0);
      if (ok && got && results > 0) CU_ASSERT_PTR_NOT_NULL(strstr(got, "tensor<"));
      fixture_close(&f);
    }
  }
}

/* Every attribute of every op given the wrong kind: a diagnostic, no crash. */
static void test_every_op_survives_bad_attributes(void) {
  size_t count;
  const moai_op_def_t *defs = moai_op_defs(&count);
  for (size_t d = 0; d < count; ++d) {
    size_t n = moai_op_def_operand_count(&defs[d]);
    const char *operands[MOAI_OP_MAX_OPERANDS + 1] = {NULL};
    for (size_t i = 0; i < n; ++i) operands[i] = "tensor<2x3xf32>";
    char attrs[1024] = "{";
    size_t len = 1;
    for (size_t a = 0; a < MOAI_OP_MAX_ATTRS && defs[d].attrs[a].name; ++a) {
      const char *bad = defs[d].attrs[a].kind == MOAI_ATTR_STRING ? "7 : i64"
                                                                  : "\"bad\"";
      len += (size_t)snprintf(attrs + len, sizeof(attrs) - len, "%s%s = %s",
                              a ? ", " : "", defs[d].attrs[a].name, bad);
    }
    snprintf(attrs + len, sizeof(attrs) - len, "}");
    si_fixture_t f;
    bool ok = true;
    const char *got = fixture_infer_op(&f, defs[d].name, attrs, 1, operands, &ok);
    CU_ASSERT_PTR_NOT_NULL(got);
    /* Ops without attributes still infer; the rest must complain. */
    if (defs[d].attrs[0].name && !ok) CU_ASSERT_TRUE(f.errors_len > 0);
    fixture_close(&f);
  }
}

void moai_test_register(void) {
  static CU_TestInfo elementwise[] = {
      {"broadcast", test_broadcast},
      {"compare_logic", test_compare_logic},
      {"where_variadic", test_where_variadic},
      {"unary_cast_clip_dropout", test_unary_cast_clip_dropout},
      CU_TEST_INFO_NULL};
  static CU_TestInfo shape[] = {
      {"constant_weight_shape", test_constant_weight_shape},
      {"constant_of_shape", test_constant_of_shape},
      {"reshape", test_reshape},
      {"squeeze_unsqueeze", test_squeeze_unsqueeze},
      {"transpose_expand_flatten", test_transpose_expand_flatten},
      CU_TEST_INFO_NULL};
  static CU_TestInfo indexing[] = {
      {"gather", test_gather},   {"concat", test_concat}, {"slice", test_slice},
      {"split", test_split},     {"range", test_range},   CU_TEST_INFO_NULL};
  static CU_TestInfo nn[] = {
      {"matmul_gemm", test_matmul_gemm},
      {"conv_pool", test_conv_pool},
      {"reduce_softmax", test_reduce_softmax},
      {"losses_norms", test_losses_norms},
      CU_TEST_INFO_NULL};
  static CU_TestInfo robustness[] = {
      {"bad_inputs", test_bad_inputs},
      {"every_op_survives_odd_operands", test_every_op_survives_odd_operands},
      {"every_op_survives_bad_attributes", test_every_op_survives_bad_attributes},
      CU_TEST_INFO_NULL};
  moai_test_add_suite("shape_infer.elementwise", elementwise);
  moai_test_add_suite("shape_infer.shape", shape);
  moai_test_add_suite("shape_infer.indexing", indexing);
  moai_test_add_suite("shape_infer.nn", nn);
  moai_test_add_suite("shape_infer.robustness", robustness);
}
