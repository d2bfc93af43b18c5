// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-fuse)' | FileCheck %s

// torch.nn.Linear as exported: x [2,3,4] times the transposed weight [5,4].
// CHECK-LABEL: func.func @linear_3d
// CHECK-NOT: "moai.transpose"
// CHECK: %[[S:.*]] = "moai.constant"() {value = dense<[6, 4]> : tensor<2xi64>}
// CHECK: %[[X:.*]] = "moai.reshape"(%arg0, %[[S]]) {{.*}} -> tensor<6x4xf32>
// CHECK: %[[Y:.*]] = "moai.gemm"(%[[X]], %arg1) {{.*}}transA = 0 : i64, transB = 1 : i64{{.*}} -> tensor<6x5xf32>
// CHECK: %[[O:.*]] = "moai.constant"() {value = dense<[2, 3, 5]> : tensor<3xi64>}
// CHECK: %[[R:.*]] = "moai.reshape"(%[[Y]], %[[O]]) {{.*}} -> tensor<2x3x5xf32>
// CHECK: return %[[R]]
func.func @linear_3d(%x: tensor<2x3x4xf32>, %w: tensor<5x4xf32>) -> tensor<2x3x5xf32> {
  %wt = "moai.transpose"(%w) {perm = array<i64: 1, 0>} : (tensor<5x4xf32>) -> tensor<4x5xf32>
  %y = "moai.matmul"(%x, %wt) : (tensor<2x3x4xf32>, tensor<4x5xf32>) -> tensor<2x3x5xf32>
  return %y : tensor<2x3x5xf32>
}

// 2-D x needs no reshape; the transposed weight has another user, so the
// transpose stays for it.
// CHECK-LABEL: func.func @linear_2d_shared
// CHECK: %[[T:.*]] = "moai.transpose"(%arg1)
// CHECK: %[[Y:.*]] = "moai.gemm"(%arg0, %arg1) {{.*}}transB = 1 : i64{{.*}} -> tensor<3x5xf32>
// CHECK: return %[[Y]], %[[T]]
func.func @linear_2d_shared(%x: tensor<3x4xf32>, %w: tensor<5x4xf32>) -> (tensor<3x5xf32>, tensor<4x5xf32>) {
  %wt = "moai.transpose"(%w) {perm = array<i64: 1, 0>} : (tensor<5x4xf32>) -> tensor<4x5xf32>
  %y = "moai.matmul"(%x, %wt) : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  return %y, %wt : tensor<3x5xf32>, tensor<4x5xf32>
}

// Not a linear layer: a plain weight, a batched transpose, integer operands.
// CHECK-LABEL: func.func @not_linear
// CHECK-NOT: "moai.gemm"
// CHECK-COUNT-3: "moai.matmul"
func.func @not_linear(%x: tensor<3x4xf32>, %w: tensor<4x5xf32>, %b: tensor<2x5x4xf32>, %xb: tensor<2x3x4xf32>, %i: tensor<3x4xi32>, %wi: tensor<5x4xi32>) -> (tensor<3x5xf32>, tensor<2x3x5xf32>, tensor<3x5xi32>) {
  %a = "moai.matmul"(%x, %w) : (tensor<3x4xf32>, tensor<4x5xf32>) -> tensor<3x5xf32>
  %bt = "moai.transpose"(%b) {perm = array<i64: 0, 2, 1>} : (tensor<2x5x4xf32>) -> tensor<2x4x5xf32>
  %c = "moai.matmul"(%xb, %bt) : (tensor<2x3x4xf32>, tensor<2x4x5xf32>) -> tensor<2x3x5xf32>
  %wit = "moai.transpose"(%wi) {perm = array<i64: 1, 0>} : (tensor<5x4xi32>) -> tensor<4x5xi32>
  %d = "moai.matmul"(%i, %wit) : (tensor<3x4xi32>, tensor<4x5xi32>) -> tensor<3x5xi32>
  return %a, %c, %d : tensor<3x5xf32>, tensor<2x3x5xf32>, tensor<3x5xi32>
}
