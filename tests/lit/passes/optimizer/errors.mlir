// RUN: rm -rf %t && split-file %s %t
// RUN: not moai-opt %t/not_autodiff.mlir --pass-pipeline='builtin.module(moai-optimizer)' 2>&1 | FileCheck %t/not_autodiff.mlir
// RUN: not moai-opt %t/unknown_optimizer.mlir --pass-pipeline='builtin.module(moai-optimizer)' 2>&1 | FileCheck %t/unknown_optimizer.mlir
// RUN: not moai-opt %t/nesterov.mlir --pass-pipeline='builtin.module(moai-optimizer)' 2>&1 | FileCheck %t/nesterov.mlir
// RUN: not moai-opt %t/cosine.mlir --pass-pipeline='builtin.module(moai-optimizer)' 2>&1 | FileCheck %t/cosine.mlir

//--- not_autodiff.mlir
// CHECK: @main is not the output of moai-autodiff
module {
  func.func @main(%x: tensor<f32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "loss"}) {
    return %x : tensor<f32>
  }
}

//--- unknown_optimizer.mlir
// CHECK: unknown optimizer 'lamb' (adamw or sgd)
module attributes {moai.training = {optimizer = "lamb"}} {
  func.func @main(%x: tensor<f32>) -> (tensor<f32>, tensor<f32>) {
    return %x, %x : tensor<f32>, tensor<f32>
  }
}

//--- nesterov.mlir
// CHECK: nesterov needs a momentum above 0 and zero dampening
module attributes {moai.training = {optimizer = "sgd", nesterov = 1 : i64}} {
  func.func @main(%x: tensor<f32>) -> (tensor<f32>, tensor<f32>) {
    return %x, %x : tensor<f32>, tensor<f32>
  }
}

//--- cosine.mlir
// CHECK: the cosine schedule needs total_steps above warmup_steps
module attributes {moai.training = {schedule = "cosine", warmup_steps = 10 : i64, total_steps = 5 : i64}} {
  func.func @main(%x: tensor<f32>) -> (tensor<f32>, tensor<f32>) {
    return %x, %x : tensor<f32>, tensor<f32>
  }
}
