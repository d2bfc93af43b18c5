// Upstream mlir-opt runs moai's passes from the plugin, with the dialect
// loaded from the IRDL file the build generates.
// UNSUPPORTED: asan
// RUN: %mlir_opt --irdl-file=%moai_irdl --load-pass-plugin=%moai_lib/libmoai_plugin.so --pass-pipeline='builtin.module(moai-simplify)' %s | FileCheck %s

// CHECK-LABEL: func.func @f
// CHECK-COUNT-1: "moai.add"
// CHECK-NOT: "moai.exp"
func.func @f(%a: tensor<3xf32>) -> tensor<3xf32> {
  %0 = "moai.add"(%a, %a) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %1 = "moai.add"(%a, %a) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  %2 = "moai.exp"(%1) : (tensor<3xf32>) -> tensor<3xf32>
  %3 = "moai.sub"(%0, %1) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
  return %3 : tensor<3xf32>
}
