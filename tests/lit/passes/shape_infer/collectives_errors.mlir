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

// moai.grad_ready names gradient accumulators only, with a bucket >= 0.

// CHECK: collectives_errors.mlir:[[@LINE+3]]:{{[0-9]+}}: grad_ready: operand 0 is not a gradient accumulator (a moai.state with role "grad")
func.func @not_a_grad(%a: tensor<4xf32>) {
  %m = "moai.state"() {name = "optimizer.exp_avg.w", role = "exp_avg", param = "w"} : () -> tensor<4xf32>
  "moai.grad_ready"(%m) {bucket = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0, 0, 0, 0, 0, 0>} : (tensor<4xf32>) -> ()
  return
}

// CHECK: collectives_errors.mlir:[[@LINE+3]]:{{[0-9]+}}: grad_ready: attribute 'bucket' must be in [0, 2^31), got -1
func.func @bad_bucket(%a: tensor<4xf32>) {
  %g = "moai.state"() {name = "grad.w", role = "grad", param = "w"} : () -> tensor<4xf32>
  "moai.grad_ready"(%g) {bucket = -1 : i64, operandSegmentSizes = array<i32: 1, 0, 0, 0, 0, 0, 0, 0>} : (tensor<4xf32>) -> ()
  return
}
