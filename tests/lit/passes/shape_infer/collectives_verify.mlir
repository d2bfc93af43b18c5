// RUN: not moai-opt %s 2>&1 | FileCheck %s

// The dialect's verifier (IRDL, generated from the op table) holds the
// collectives to their signature: all_reduce carries its `op` and `group`,
// each op has one operand and one result.

// CHECK: collectives_verify.mlir:[[@LINE+2]]:{{[0-9]+}}: 'moai.all_reduce' op attribute "group" is expected but not provided
func.func @no_group(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "moai.all_reduce"(%a) {op = "sum"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// CHECK: collectives_verify.mlir:[[@LINE+2]]:{{[0-9]+}}: op expects exactly 1 operands, but got 2
func.func @two_operands(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = "moai.tp_copy"(%a, %a) : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}
