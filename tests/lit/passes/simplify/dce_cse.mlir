// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-simplify)' | FileCheck %s

// Identical pure ops on the same operands merge; unused ones disappear.
// CHECK-LABEL: func.func @merge
// CHECK-NEXT: %[[A:.*]] = "moai.add"(%arg0, %arg0)
// CHECK-NEXT: %[[M:.*]] = "moai.mul"(%[[A]], %[[A]])
// CHECK-NEXT: return %[[M]]
func.func @merge(%a: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = "moai.add"(%a, %a) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %1 = "moai.add"(%a, %a) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %2 = "moai.mul"(%0, %1) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %3 = "moai.exp"(%2) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %4 = "moai.neg"(%3) : (tensor<2x4xf32>) -> tensor<2x4xf32>
  return %2 : tensor<2x4xf32>
}

// Ops differing in an attribute do not merge.
// CHECK-LABEL: func.func @attrs_differ
// CHECK: "moai.softmax"(%arg0) {axis = -1 : i64}
// CHECK: "moai.softmax"(%arg0) {axis = 0 : i64}
func.func @attrs_differ(%a: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %0 = "moai.softmax"(%a) {axis = -1 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  %1 = "moai.softmax"(%a) {axis = 0 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
  return %0, %1 : tensor<2x4xf32>, tensor<2x4xf32>
}

// Random ops (Dropout) are never merged.
// CHECK-LABEL: func.func @random
// CHECK-COUNT-2: "moai.dropout"
func.func @random(%a: tensor<4xf32>, %r: tensor<f32>, %t: tensor<i1>) -> (tensor<4xf32>, tensor<4xf32>) {
  %0 = "moai.dropout"(%a, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4xf32>, tensor<f32>, tensor<i1>) -> tensor<4xf32>
  %1 = "moai.dropout"(%a, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<4xf32>, tensor<f32>, tensor<i1>) -> tensor<4xf32>
  return %0, %1 : tensor<4xf32>, tensor<4xf32>
}
