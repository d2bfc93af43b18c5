// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-simplify)' | FileCheck %s

// A transpose of a transpose is one transpose with the composed permutation,
// or nothing when they cancel (backward of nn.Linear's x @ W^T).
// CHECK-LABEL: func.func @cancel
// CHECK-NOT: moai.transpose
// CHECK: "moai.matmul"(%arg1, %arg0)
func.func @cancel(%w: tensor<3x4xf32>, %g: tensor<2x3xf32>) -> tensor<2x4xf32> {
  %wt = "moai.transpose"(%w) {perm = array<i64: 1, 0>} : (tensor<3x4xf32>) -> tensor<4x3xf32>
  %back = "moai.transpose"(%wt) {perm = array<i64: 1, 0>} : (tensor<4x3xf32>) -> tensor<3x4xf32>
  %y = "moai.matmul"(%g, %back) : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}

// CHECK-LABEL: func.func @compose
// CHECK-NEXT: %[[T:.*]] = "moai.transpose"(%arg0) {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
// CHECK-NEXT: return %[[T]]
func.func @compose(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %a = "moai.transpose"(%x) {perm = array<i64: 0, 2, 1>} : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
  %b = "moai.transpose"(%a) {perm = array<i64: 1, 0, 2>} : (tensor<2x4x3xf32>) -> tensor<4x2x3xf32>
  return %b : tensor<4x2x3xf32>
}
