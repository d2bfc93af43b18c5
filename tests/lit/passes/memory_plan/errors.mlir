// RUN: not moai-opt %s --pass-pipeline='builtin.module(moai-memory-plan)' 2>&1 | FileCheck %s

// The plan needs a static size for every value: run moai-shape-infer first.

// CHECK: errors.mlir:[[@LINE+3]]:{{[0-9]+}}: moai-memory-plan: result 0 has no static shape; run moai-shape-infer first
func.func @unranked(%a: tensor<2x3xf32>) -> tensor<*xf32> {
  %c = "moai.constant"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>
  %0 = "moai.add"(%a, %c) : (tensor<2x3xf32>, tensor<f32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// CHECK: errors.mlir:[[@LINE+1]]:{{[0-9]+}}: moai-memory-plan: argument 0 has no static shape; run moai-shape-infer first
func.func @dynamic(%a: tensor<?x3xf32>) -> tensor<?x3xf32> {
  return %a : tensor<?x3xf32>
}
