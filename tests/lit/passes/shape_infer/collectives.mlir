// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' | FileCheck %s

// Collectives of tensor parallelism: moai.all_reduce and moai.tp_copy keep
// their input's type.

// CHECK-LABEL: func.func @collectives
// CHECK-SAME: -> (tensor<2x3xf32>, tensor<4xf64>, tensor<2x3xf32>, tensor<5xi64>)
// CHECK: "moai.all_reduce"(%arg0) {group = "tp", op = "sum"} : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK: "moai.all_reduce"(%arg1) {group = "tp", op = "max"} : (tensor<4xf64>) -> tensor<4xf64>
// CHECK: "moai.tp_copy"(%arg0) : (tensor<2x3xf32>) -> tensor<2x3xf32>
// CHECK: "moai.tp_copy"(%arg2) : (tensor<5xi64>) -> tensor<5xi64>
func.func @collectives(%a: tensor<2x3xf32>, %b: tensor<4xf64>, %i: tensor<5xi64>)
    -> (tensor<*xf32>, tensor<*xf64>, tensor<*xf32>, tensor<*xi64>) {
  %0 = "moai.all_reduce"(%a) {op = "sum", group = "tp"} : (tensor<2x3xf32>) -> tensor<*xf32>
  %1 = "moai.all_reduce"(%b) {op = "max", group = "tp"} : (tensor<4xf64>) -> tensor<*xf64>
  %2 = "moai.tp_copy"(%a) : (tensor<2x3xf32>) -> tensor<*xf32>
  %3 = "moai.tp_copy"(%i) : (tensor<5xi64>) -> tensor<*xi64>
  return %0, %1, %2, %3 : tensor<*xf32>, tensor<*xf64>, tensor<*xf32>, tensor<*xi64>
}
