// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-autodiff,moai-optimizer,moai-simplify)' | FileCheck %s

// The module's moai.training settings, completed with the defaults and the
// loss-weight description autodiff left.
// CHECK: moai.training = {beta1 = 0.9499{{[0-9]*}} : f64, beta2 = 0.998{{[0-9]*}} : f64, dampening = 0.000000e+00 : f64, eps = 1.000000e-08 : f64, loss_weight_kind = "one", lr = 5.000000e-02 : f64, micro_batches = 2 : i64, momentum = 0.000000e+00 : f64, nesterov = 0 : i64, optimizer = "adamw", schedule = "constant", total_steps = 0 : i64, warmup_steps = 0 : i64, weight_decay = 1.000000e-02 : f64}
// @main accumulates the gradient and the loss weight, and returns both.
// CHECK-LABEL: func.func @main
// CHECK-SAME: -> (tensor<f32> {moai.name = "loss"}, tensor<f32> {moai.name = "loss_weight"})
// CHECK: %[[G:.*]] = "moai.state"() {name = "grad.w", param = "w", role = "grad"} : () -> tensor<3xf32>
// CHECK: "moai.accumulate"(%[[G]]
// CHECK: %[[LW:.*]] = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
// CHECK: "moai.accumulate"(%[[LW]]
// @update: one AdamW per weight, then the step ends.
// CHECK-LABEL: func.func @update()
// CHECK-DAG: %[[T:.*]] = "moai.state"() {name = "optimizer.step", role = "step"} : () -> tensor<i64>
// CHECK-DAG: %[[P:.*]] = "moai.weight"() {name = "w"
// CHECK-DAG: %[[M:.*]] = "moai.state"() {name = "optimizer.exp_avg.w", param = "w", role = "exp_avg"}
// CHECK-DAG: %[[V:.*]] = "moai.state"() {name = "optimizer.exp_avg_sq.w", param = "w", role = "exp_avg_sq"}
// CHECK: "moai.adamw"(%[[P]], %{{.*}}, %[[M]], %[[V]], %[[T]], %{{.*}}) {beta1 = 0.9499{{[0-9]*}} : f64, beta2 = 0.998{{[0-9]*}} : f64, eps = 1.000000e-08 : f64, lr = 5.000000e-02 : f64, schedule = "constant", total_steps = 0 : i64, warmup_steps = 0 : i64, weight_decay = 1.000000e-02 : f64}
// CHECK: "moai.optimizer_finish"(%[[T]]
// CHECK-NEXT: return
module attributes {moai.training = {lr = 0.05 : f64, beta1 = 0.95 : f64, micro_batches = 2 : i64}} {
  func.func @main(%x: tensor<3xf32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "loss"}) {
    %w = "moai.weight"() {name = "w", trainable = 1 : i64, storage = "absent"} : () -> tensor<3xf32>
    %y = "moai.mul"(%x, %w) : (tensor<3xf32>, tensor<3xf32>) -> tensor<3xf32>
    %a = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
    %l = "moai.reduce_sum"(%y, %a) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64} : (tensor<3xf32>, tensor<1xi64>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
