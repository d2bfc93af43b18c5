// RUN: rm -rf %t && split-file %s %t
// RUN: not moai-opt %t/not_scalar.mlir --pass-pipeline='builtin.module(moai-autodiff)' 2>&1 | FileCheck %t/not_scalar.mlir
// RUN: not moai-opt %t/no_trainable.mlir --pass-pipeline='builtin.module(moai-autodiff)' 2>&1 | FileCheck %t/no_trainable.mlir
// RUN: not moai-opt %t/no_loss_output.mlir --pass-pipeline='builtin.module(moai-autodiff)' 2>&1 | FileCheck %t/no_loss_output.mlir
// RUN: not moai-opt %t/dropout.mlir --pass-pipeline='builtin.module(moai-autodiff)' 2>&1 | FileCheck %t/dropout.mlir
// RUN: not moai-opt %t/loss_independent.mlir --pass-pipeline='builtin.module(moai-autodiff)' 2>&1 | FileCheck %t/loss_independent.mlir

//--- not_scalar.mlir
// CHECK: the loss output 'loss' is of shape 2x3, not a float scalar
module {
  func.func @main(%x: tensor<2x3xf32> {moai.name = "x"}) -> (tensor<2x3xf32> {moai.name = "loss"}) {
    %w = "moai.weight"() {name = "w", trainable = 1 : i64, storage = "absent"} : () -> tensor<2x3xf32>
    %y = "moai.mul"(%x, %w) : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
    return %y : tensor<2x3xf32>
  }
}

//--- no_trainable.mlir
// CHECK: the model has no trainable weights
module {
  func.func @main(%x: tensor<3xf32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "loss"}) {
    %w = "moai.weight"() {name = "w", trainable = 0 : i64, storage = "absent"} : () -> tensor<3xf32>
    %y = "moai.mul"(%x, %w) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
    %a = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
    %l = "moai.reduce_sum"(%y, %a) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64} : (tensor<3xf32>, tensor<1xi64>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

//--- no_loss_output.mlir
// CHECK: the model has 2 outputs and none is named 'loss'
module {
  func.func @main(%x: tensor<f32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "a"}, tensor<f32> {moai.name = "b"}) {
    return %x, %x : tensor<f32>, tensor<f32>
  }
}

//--- dropout.mlir
// CHECK: training-mode Dropout with a ratio above 0 is not supported
module {
  func.func @main(%x: tensor<3xf32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "loss"}) {
    %w = "moai.weight"() {name = "w", trainable = 1 : i64, storage = "absent"} : () -> tensor<3xf32>
    %y = "moai.mul"(%x, %w) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
    %r = "moai.constant"() {value = dense<0.1> : tensor<f32>} : () -> tensor<f32>
    %t = "moai.constant"() {value = dense<true> : tensor<i1>} : () -> tensor<i1>
    %d, %m = "moai.dropout"(%y, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>, resultSegmentSizes = array<i32: 1, 1>, seed = 0 : i64} : (tensor<3xf32>, tensor<f32>, tensor<i1>) -> (tensor<3xf32>, tensor<3xi1>)
    %a = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
    %l = "moai.reduce_sum"(%d, %a) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64} : (tensor<3xf32>, tensor<1xi64>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

//--- loss_independent.mlir
// CHECK: the loss does not depend on any trainable weight
module {
  func.func @main(%x: tensor<f32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "loss"}) {
    %w = "moai.weight"() {name = "w", trainable = 1 : i64, storage = "absent"} : () -> tensor<3xf32>
    return %x : tensor<f32>
  }
}
