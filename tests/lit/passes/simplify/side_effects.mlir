// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-simplify)' | FileCheck %s

// moai.accumulate and the optimizer ops have no results but write their
// operands: DCE keeps them and CSE never merges two of them. Two moai.state
// of one name are one tensor: CSE merges them; an unused one goes.
// CHECK-LABEL: func.func @main
// CHECK: %[[S:.*]] = "moai.state"() {name = "grad.W", param = "W", role = "grad"}
// CHECK-NOT: "moai.state"() {name = "grad.W"
// CHECK: "moai.accumulate"(%[[S]], %arg0)
// CHECK-NEXT: "moai.accumulate"(%[[S]], %arg0)
// CHECK-NOT: unused
// CHECK: return
func.func @main(%g: tensor<4xf32>) {
  %a = "moai.state"() {name = "grad.W", role = "grad", param = "W"} : () -> tensor<4xf32>
  "moai.accumulate"(%a, %g) : (tensor<4xf32>, tensor<4xf32>) -> ()
  %b = "moai.state"() {name = "grad.W", role = "grad", param = "W"} : () -> tensor<4xf32>
  "moai.accumulate"(%b, %g) : (tensor<4xf32>, tensor<4xf32>) -> ()
  %u = "moai.state"() {name = "unused", role = "grad"} : () -> tensor<4xf32>
  return
}

// CHECK-LABEL: func.func @update
// CHECK: "moai.sgd"
// CHECK: "moai.optimizer_finish"
// CHECK: "moai.optimizer_finish"
func.func @update() {
  %p = "moai.weight"() {name = "W", storage = "absent", trainable = 1 : i64} : () -> tensor<4xf32>
  %g = "moai.state"() {name = "grad.W", role = "grad", param = "W"} : () -> tensor<4xf32>
  %s = "moai.state"() {name = "optimizer.step", role = "step"} : () -> tensor<i64>
  %lw = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
  "moai.sgd"(%p, %g, %s, %lw) {lr = 1.000000e-01 : f32, momentum = 0.000000e+00 : f32, dampening = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32, nesterov = 0 : i64, schedule = "constant", warmup_steps = 0 : i64, total_steps = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 1, 1>} : (tensor<4xf32>, tensor<4xf32>, tensor<i64>, tensor<f32>) -> ()
  "moai.optimizer_finish"(%s, %lw) : (tensor<i64>, tensor<f32>) -> ()
  "moai.optimizer_finish"(%s, %lw) : (tensor<i64>, tensor<f32>) -> ()
  return
}
