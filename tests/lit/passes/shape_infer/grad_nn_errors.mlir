// RUN: not moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' 2>&1 | FileCheck %s

// Malformed gradient ops of Conv, pooling and the norms, reported at their
// location.

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: conv_grad_input: operand 'grad' has shape 2x6x5x5, the forward output 2x6x4x4
func.func @conv_grad_shape(%w: tensor<6x2x3x3xf32>, %g: tensor<2x6x5x5xf32>) -> tensor<*xf32> {
  %0 = "moai.conv_grad_input"(%g, %w) {auto_pad = "NOTSET", group = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>, shape = array<i64: 2, 4, 8, 8>} : (tensor<2x6x5x5xf32>, tensor<6x2x3x3xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: conv_grad_weight: 'x' has 4 channels but 'w' expects 3 x group 2
func.func @conv_grad_channels(%x: tensor<2x4x8x8xf32>, %g: tensor<2x6x4x4xf32>) -> tensor<*xf32> {
  %0 = "moai.conv_grad_weight"(%x, %g) {auto_pad = "NOTSET", group = 2 : i64, pads = array<i64: 1, 1, 1, 1>, strides = array<i64: 2, 2>, shape = array<i64: 6, 3, 3, 3>} : (tensor<2x4x8x8xf32>, tensor<2x6x4x4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: conv_grad_input: operand 'grad' has rank 3, expected 4
func.func @conv_grad_rank(%w: tensor<6x4x3x3xf32>, %g: tensor<2x6x4xf32>) -> tensor<*xf32> {
  %0 = "moai.conv_grad_input"(%g, %w) {auto_pad = "NOTSET", group = 1 : i64, shape = array<i64: 2, 4, 6, 6>} : (tensor<2x6x4xf32>, tensor<6x4x3x3xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: conv_grad_input: 'shape' has a negative dimension
func.func @conv_grad_negative(%w: tensor<6x4x3x3xf32>, %g: tensor<2x6x4x4xf32>) -> tensor<*xf32> {
  %0 = "moai.conv_grad_input"(%g, %w) {auto_pad = "NOTSET", group = 1 : i64, shape = array<i64: 2, 4, -6, 6>} : (tensor<2x6x4x4xf32>, tensor<6x4x3x3xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: max_pool_grad: operand 'x' must be a float tensor, got i32
func.func @max_pool_grad_int(%x: tensor<1x2x8x8xi32>, %g: tensor<1x2x3x3xi32>) -> tensor<*xi32> {
  %0 = "moai.max_pool_grad"(%x, %g) {auto_pad = "NOTSET", ceil_mode = 0 : i64, kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>} : (tensor<1x2x8x8xi32>, tensor<1x2x3x3xi32>) -> tensor<*xi32>
  return %0 : tensor<*xi32>
}

// Without ceil_mode the forward output is 3x3, not 4x4.
// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: max_pool_grad: operand 'grad' has shape 1x2x4x4, the forward output 1x2x3x3
func.func @max_pool_grad_ceil(%x: tensor<1x2x8x8xf32>, %g: tensor<1x2x4x4xf32>) -> tensor<*xf32> {
  %0 = "moai.max_pool_grad"(%x, %g) {auto_pad = "NOTSET", ceil_mode = 0 : i64, kernel_shape = array<i64: 3, 3>, strides = array<i64: 2, 2>} : (tensor<1x2x8x8xf32>, tensor<1x2x4x4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: average_pool_grad: 'kernel_shape' has 1 values for an input of rank 4
func.func @average_pool_grad_kernel(%g: tensor<1x2x4x4xf32>) -> tensor<*xf32> {
  %0 = "moai.average_pool_grad"(%g) {auto_pad = "NOTSET", ceil_mode = 0 : i64, count_include_pad = 0 : i64, kernel_shape = array<i64: 3>, shape = array<i64: 1, 2, 8, 8>} : (tensor<1x2x4x4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: batch_normalization_grad: operand 'scale' must have one value per channel (3)
func.func @batch_norm_grad_scale(%x: tensor<4x3x5xf32>, %s: tensor<4xf32>, %g: tensor<4x3x5xf32>) -> tensor<*xf32> {
  %0:3 = "moai.batch_normalization_grad"(%x, %s, %g) {epsilon = 1.0e-05 : f32} : (tensor<4x3x5xf32>, tensor<4xf32>, tensor<4x3x5xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  return %0#0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: batch_normalization_grad: operand 'grad' has shape 4x3x6, 'x' 4x3x5
func.func @batch_norm_grad_shape(%x: tensor<4x3x5xf32>, %s: tensor<3xf32>, %g: tensor<4x3x6xf32>) -> tensor<*xf32> {
  %0:3 = "moai.batch_normalization_grad"(%x, %s, %g) {epsilon = 1.0e-05 : f32} : (tensor<4x3x5xf32>, tensor<3xf32>, tensor<4x3x6xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  return %0#0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: layer_normalization_grad: operand 'scale' of shape 4x8 does not broadcast over the normalised axes 2.. of 'x' 2x4x8
func.func @layer_norm_grad_scale(%x: tensor<2x4x8xf32>, %s: tensor<4x8xf32>, %g: tensor<2x4x8xf32>) -> tensor<*xf32> {
  %0:3 = "moai.layer_normalization_grad"(%x, %s, %g) {epsilon = 1.0e-05 : f32, axis = 2 : i64} : (tensor<2x4x8xf32>, tensor<4x8xf32>, tensor<2x4x8xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  return %0#0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: layer_normalization_grad: axis 3 out of range for rank 3
func.func @layer_norm_grad_axis(%x: tensor<2x4x8xf32>, %s: tensor<8xf32>, %g: tensor<2x4x8xf32>) -> tensor<*xf32> {
  %0:3 = "moai.layer_normalization_grad"(%x, %s, %g) {epsilon = 1.0e-05 : f32, axis = 3 : i64} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<2x4x8xf32>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  return %0#0 : tensor<*xf32>
}

// CHECK: grad_nn_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: layer_normalization_grad: 'x' and 'grad' have different element types f32 and f64
func.func @layer_norm_grad_dtype(%x: tensor<2x4x8xf32>, %s: tensor<8xf32>, %g: tensor<2x4x8xf64>) -> tensor<*xf32> {
  %0:3 = "moai.layer_normalization_grad"(%x, %s, %g) {epsilon = 1.0e-05 : f32, axis = 2 : i64} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<2x4x8xf64>) -> (tensor<*xf32>, tensor<*xf32>, tensor<*xf32>)
  return %0#0 : tensor<*xf32>
}
