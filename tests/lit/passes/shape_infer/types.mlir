// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' | FileCheck %s

// Result types of moai ops are filled in from their operands and attributes
// (ONNX opset 21), and function types follow what the functions return.

// CHECK-LABEL: func.func @elementwise
// CHECK-SAME: -> (tensor<5x3x4xf32>, tensor<5x3x4xi1>, tensor<2x3xi64>)
// CHECK: "moai.add"{{.*}} -> tensor<5x3x4xf32>
// CHECK: "moai.less"{{.*}} -> tensor<5x3x4xi1>
// CHECK: "moai.cast"{{.*}} -> tensor<2x3xi64>
func.func @elementwise(%a: tensor<5x1x4xf32>, %b: tensor<3x1xf32>, %c: tensor<2x3xf32>)
    -> (tensor<*xf32>, tensor<*xi1>, tensor<*xi64>) {
  %0 = "moai.add"(%a, %b) : (tensor<5x1x4xf32>, tensor<3x1xf32>) -> tensor<*xf32>
  %1 = "moai.less"(%a, %b) : (tensor<5x1x4xf32>, tensor<3x1xf32>) -> tensor<*xi1>
  %2 = "moai.cast"(%c) {saturate = 1 : i64, to = i64} : (tensor<2x3xf32>) -> tensor<*xi64>
  return %0, %1, %2 : tensor<*xf32>, tensor<*xi1>, tensor<*xi64>
}

// CHECK-LABEL: func.func @matmul_softmax
// CHECK: "moai.matmul"{{.*}} -> tensor<2x5x3x6xf32>
// CHECK: "moai.softmax"{{.*}} -> tensor<2x5x3x6xf32>
// CHECK: "moai.reduce_mean"{{.*}} -> tensor<2x5x3x1xf32>
func.func @matmul_softmax(%a: tensor<2x1x3x4xf32>, %b: tensor<5x4x6xf32>) -> tensor<*xf32> {
  %0 = "moai.matmul"(%a, %b) : (tensor<2x1x3x4xf32>, tensor<5x4x6xf32>) -> tensor<*xf32>
  %1 = "moai.softmax"(%0) {axis = -1 : i64} : (tensor<*xf32>) -> tensor<*xf32>
  %axes = "moai.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %2 = "moai.reduce_mean"(%1, %axes) {keepdims = 1 : i64, noop_with_empty_axes = 0 : i64} : (tensor<*xf32>, tensor<1xi64>) -> tensor<*xf32>
  return %2 : tensor<*xf32>
}

// A small CNN head: Conv with padding and stride, MaxPool in ceil mode,
// GlobalAveragePool, Flatten, Gemm with transB.
// CHECK-LABEL: func.func @cnn
// CHECK-SAME: -> tensor<1x10xf32>
// CHECK: "moai.conv"{{.*}} -> tensor<1x8x16x16xf32>
// CHECK: "moai.relu"{{.*}} -> tensor<1x8x16x16xf32>
// CHECK: "moai.max_pool"{{.*}} -> tensor<1x8x9x9xf32>
// CHECK: "moai.global_average_pool"{{.*}} -> tensor<1x8x1x1xf32>
// CHECK: "moai.flatten"{{.*}} -> tensor<1x8xf32>
// CHECK: "moai.gemm"{{.*}} -> tensor<1x10xf32>
func.func @cnn(%x: tensor<1x3x32x32xf32>, %w: tensor<8x3x3x3xf32>, %bias: tensor<8xf32>,
               %fc: tensor<10x8xf32>) -> tensor<*xf32> {
  %0 = "moai.conv"(%x, %w, %bias) {auto_pad = "NOTSET", group = 1 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>} : (tensor<1x3x32x32xf32>, tensor<8x3x3x3xf32>, tensor<8xf32>) -> tensor<*xf32>
  %1 = "moai.relu"(%0) : (tensor<*xf32>) -> tensor<*xf32>
  %2 = "moai.max_pool"(%1) {auto_pad = "NOTSET", ceil_mode = 1 : i64, kernel_shape = array<i64: 3, 3>, storage_order = 0 : i64, strides = array<i64: 2, 2>, pads = array<i64: 1, 1, 1, 1>} : (tensor<*xf32>) -> tensor<*xf32>
  %3 = "moai.global_average_pool"(%2) : (tensor<*xf32>) -> tensor<*xf32>
  %4 = "moai.flatten"(%3) {axis = 1 : i64} : (tensor<*xf32>) -> tensor<*xf32>
  %5 = "moai.gemm"(%4, %fc) {alpha = 1.0 : f32, beta = 1.0 : f32, transA = 0 : i64, transB = 1 : i64} : (tensor<*xf32>, tensor<10x8xf32>) -> tensor<*xf32>
  return %5 : tensor<*xf32>
}

// Layer normalization statistics keep the leading dims and 1s after axis;
// Dropout's mask is bool; SoftmaxCrossEntropyLoss reduces to a scalar.
// CHECK-LABEL: func.func @training
// CHECK: "moai.layer_normalization"{{.*}} -> (tensor<4x16x32xf32>, tensor<4x16x1xf32>, tensor<4x16x1xf32>)
// CHECK: "moai.dropout"{{.*}} -> (tensor<4x16x32xf32>, tensor<4x16x32xi1>)
// CHECK: "moai.softmax_cross_entropy_loss"{{.*}} -> (tensor<f32>, tensor<4x16x32xf32>)
func.func @training(%x: tensor<4x16x32xf32>, %g: tensor<32xf32>, %labels: tensor<4x32xi64>)
    -> (tensor<*xf32>, tensor<*xf32>) {
  %y:3 = "moai.layer_normalization"(%x, %g) {axis = -1 : i64, epsilon = 1.0e-05 : f32, stash_type = 1 : i64, resultSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4x16x32xf32>, tensor<32xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  %d:2 = "moai.dropout"(%y#0) {operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<*xf32>) -> (tensor<*xf32>, tensor<*xi1>)
  %l:2 = "moai.softmax_cross_entropy_loss"(%d#0, %labels) {reduction = "mean"} : (tensor<*xf32>, tensor<4x32xi64>) -> (tensor<*xf32>, tensor<*xf32>)
  return %l#0, %l#1 : tensor<*xf32>, tensor<*xf32>
}

// A ranked placeholder (an importer's value_info) refines what inference
// cannot know: here the Reshape's shape is a runtime value.
// CHECK-LABEL: func.func @placeholder_refines
// CHECK: "moai.reshape"{{.*}} -> tensor<2x3xf32>
func.func @placeholder_refines(%x: tensor<6xf32>, %s: tensor<2xi64>) -> tensor<2x3xf32> {
  %0 = "moai.reshape"(%x, %s) {allowzero = 0 : i64} : (tensor<6xf32>, tensor<2xi64>) -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}
