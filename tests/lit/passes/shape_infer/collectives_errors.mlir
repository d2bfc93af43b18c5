// RUN: not moai-opt %s --pass-pipeline='builtin.module(moai-shape-infer)' 2>&1 | FileCheck %s

// moai.all_reduce reduces float tensors only, with op "sum" or "max", over
// the tp group.

// CHECK: collectives_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: all_reduce: operand 'input' must be a float tensor, got i64
func.func @int_input(%a: tensor<4xi64>) -> tensor<*xi64> {
  %0 = "moai.all_reduce"(%a) {op = "sum", group = "tp"} : (tensor<4xi64>) -> tensor<*xi64>
  return %0 : tensor<*xi64>
}

// CHECK: collectives_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: all_reduce: attribute 'op' must be "sum" or "max", got "mean"
func.func @bad_op(%a: tensor<4xf32>) -> tensor<*xf32> {
  %0 = "moai.all_reduce"(%a) {op = "mean", group = "tp"} : (tensor<4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: collectives_errors.mlir:[[@LINE+2]]:{{[0-9]+}}: all_reduce: attribute 'group' must be "tp" (the only group moai reduces over), got "dp"
func.func @bad_group(%a: tensor<4xf32>) -> tensor<*xf32> {
  %0 = "moai.all_reduce"(%a) {op = "sum", group = "dp"} : (tensor<4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}
