// RUN: not moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' 2>&1 | FileCheck %s

// Gradient ops whose operands do not fit the forward op, or whose declared
// result disagrees with the one their operands give.

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: gather_grad: operand 'grad' is 2x4x5 but the Gather of 'shape' by 'indices' gives 2x3x5
func.func @gather_grad_dims(%g: tensor<2x4x5xf32>, %i: tensor<2x3xi64>) -> tensor<*xf32> {
  %0 = "moai.gather_grad"(%g, %i) {axis = 0 : i64, shape = array<i64: 7, 5>} : (tensor<2x4x5xf32>, tensor<2x3xi64>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: gather_grad: axis 2 out of range for rank 2
func.func @gather_grad_axis(%g: tensor<3x5xf32>, %i: tensor<3xi64>) -> tensor<*xf32> {
  %0 = "moai.gather_grad"(%g, %i) {axis = 2 : i64, shape = array<i64: 7, 5>} : (tensor<3x5xf32>, tensor<3xi64>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: gather_grad: operand 'indices' must be int32 or int64, got f32
func.func @gather_grad_float_indices(%g: tensor<3x5xf32>, %i: tensor<3xf32>) -> tensor<*xf32> {
  %0 = "moai.gather_grad"(%g, %i) {axis = 0 : i64, shape = array<i64: 7, 5>} : (tensor<3x5xf32>, tensor<3xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: gather_grad: result is declared tensor<7x4xf32> but the operands give tensor<7x5xf32>
func.func @gather_grad_declared(%g: tensor<3x5xf32>, %i: tensor<3xi64>) -> tensor<7x4xf32> {
  %0 = "moai.gather_grad"(%g, %i) {axis = 0 : i64, shape = array<i64: 7, 5>} : (tensor<3x5xf32>, tensor<3xi64>) -> tensor<7x4xf32>
  return %0 : tensor<7x4xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+4]]:{{[0-9]+}}: slice_grad: operand 'grad' is 3x5 but the Slice of 'shape' gives 2x5
func.func @slice_grad_dims(%g: tensor<3x5xf32>) -> tensor<*xf32> {
  %s = "moai.constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %e = "moai.constant"() {value = dense<[3]> : tensor<1xi64>} : () -> tensor<1xi64>
  %0 = "moai.slice_grad"(%g, %s, %e) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, shape = array<i64: 6, 5>} : (tensor<3x5xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+4]]:{{[0-9]+}}: slice_grad: step must not be 0
func.func @slice_grad_step(%g: tensor<3x5xf32>) -> tensor<*xf32> {
  %s = "moai.constant"() {value = dense<[1]> : tensor<1xi64>} : () -> tensor<1xi64>
  %t = "moai.constant"() {value = dense<[0]> : tensor<1xi64>} : () -> tensor<1xi64>
  %0 = "moai.slice_grad"(%g, %s, %s, %s, %t) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>, shape = array<i64: 6, 5>} : (tensor<3x5xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: slice_grad: operand 'grad' has rank 1 but 'shape' has rank 2
func.func @slice_grad_rank(%g: tensor<3xf32>, %s: tensor<1xi64>) -> tensor<*xf32> {
  %0 = "moai.slice_grad"(%g, %s, %s) {operandSegmentSizes = array<i32: 1, 1, 1, 0, 0>, shape = array<i64: 6, 5>} : (tensor<3xf32>, tensor<1xi64>, tensor<1xi64>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: softmax_grad: operands 'output' (3x5) and 'grad' (3x4) differ in shape
func.func @softmax_grad_shape(%y: tensor<3x5xf32>, %g: tensor<3x4xf32>) -> tensor<*xf32> {
  %0 = "moai.softmax_grad"(%y, %g) {axis = 1 : i64} : (tensor<3x5xf32>, tensor<3x4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: log_softmax_grad: 'output' and 'grad' have different element types f32 and f64
func.func @log_softmax_grad_elem(%y: tensor<3x5xf32>, %g: tensor<3x5xf64>) -> tensor<*xf32> {
  %0 = "moai.log_softmax_grad"(%y, %g) {axis = 1 : i64} : (tensor<3x5xf32>, tensor<3x5xf64>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: softmax_grad: axis -3 out of range for rank 2
func.func @softmax_grad_axis(%y: tensor<3x5xf32>, %g: tensor<3x5xf32>) -> tensor<*xf32> {
  %0 = "moai.softmax_grad"(%y, %g) {axis = -3 : i64} : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: softmax_cross_entropy_loss_grad: operand 'grad' is 6 but a reduced loss gives scalar
func.func @sce_grad_reduced(%x: tensor<6x5xf32>, %l: tensor<6xi64>, %g: tensor<6xf32>) -> tensor<*xf32> {
  %0 = "moai.softmax_cross_entropy_loss_grad"(%x, %l, %g) {reduction = "sum"} : (tensor<6x5xf32>, tensor<6xi64>, tensor<6xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: softmax_cross_entropy_loss_grad: operand 'grad' is scalar but reduction 'none' gives 3x5
func.func @sce_grad_none(%x: tensor<3x4x5xf32>, %l: tensor<3x5xi64>, %g: tensor<f32>) -> tensor<*xf32> {
  %0 = "moai.softmax_cross_entropy_loss_grad"(%x, %l, %g) {reduction = "none"} : (tensor<3x4x5xf32>, tensor<3x5xi64>, tensor<f32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: softmax_cross_entropy_loss_grad: operand 'labels' is 3x4 but 'scores' needs 3x5
func.func @sce_grad_labels(%x: tensor<3x4x5xf32>, %l: tensor<3x4xi64>, %g: tensor<f32>) -> tensor<*xf32> {
  %0 = "moai.softmax_cross_entropy_loss_grad"(%x, %l, %g) {reduction = "mean"} : (tensor<3x4x5xf32>, tensor<3x4xi64>, tensor<f32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: softmax_cross_entropy_loss_grad: operand 'weights' must have one value per class
func.func @sce_grad_weights(%x: tensor<6x5xf32>, %l: tensor<6xi64>, %w: tensor<4xf32>, %g: tensor<f32>) -> tensor<*xf32> {
  %0 = "moai.softmax_cross_entropy_loss_grad"(%x, %l, %w, %g) {reduction = "mean"} : (tensor<6x5xf32>, tensor<6xi64>, tensor<4xf32>, tensor<f32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_index_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: softmax_cross_entropy_loss_grad: unknown reduction 'avg'
func.func @sce_grad_reduction(%x: tensor<6x5xf32>, %l: tensor<6xi64>, %g: tensor<f32>) -> tensor<*xf32> {
  %0 = "moai.softmax_cross_entropy_loss_grad"(%x, %l, %g) {reduction = "avg"} : (tensor<6x5xf32>, tensor<6xi64>, tensor<f32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}
