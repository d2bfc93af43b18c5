// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-autodiff)' | FileCheck %s

// A mean cross-entropy with ignore_index: the loss weight is the number of
// counted labels, and it seeds the scores' gradient.
// CHECK: module attributes {moai.ignore_index = -100 : i64, moai.labels_input = "labels", moai.loss_weight_kind = "tokens"}
// CHECK-LABEL: func.func @main
// CHECK: %[[EQ:.*]] = "moai.equal"(%arg1
// CHECK: %[[NOT:.*]] = "moai.not"(%[[EQ]])
// CHECK: %[[CNT:.*]] = "moai.cast"(%[[NOT]]) {{.*}}to = f32
// CHECK: %[[W:.*]] = "moai.reduce_sum"(%[[CNT]]
// CHECK: "moai.softmax_cross_entropy_loss_grad"(%{{.*}}, %arg1, %[[W]])
// CHECK-SAME: ignore_index = -100 : i64
// CHECK: return %{{.*}}, %[[W]]
module {
  func.func @main(%x: tensor<4x8xf32> {moai.name = "x"}, %labels: tensor<4xi64> {moai.name = "labels"}) -> (tensor<f32> {moai.name = "loss"}) {
    %w = "moai.weight"() {name = "head", trainable = 1 : i64, storage = "absent"} : () -> tensor<8x5xf32>
    %s = "moai.matmul"(%x, %w) : (tensor<4x8xf32>, tensor<8x5xf32>) -> tensor<4x5xf32>
    %l = "moai.softmax_cross_entropy_loss"(%s, %labels) {reduction = "mean", ignore_index = -100 : i64} : (tensor<4x5xf32>, tensor<4xi64>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
