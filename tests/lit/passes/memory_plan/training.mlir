// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-memory-plan)' | FileCheck %s

// moai.state lives in the persistent region: no offset. The accumulate has
// no result and gets nothing, but keeps %g (256 B) alive until it runs, so
// the exp cannot take over %g's buffer and %e needs its own: arena 512.
// CHECK-LABEL: func.func @main
// CHECK-SAME: moai.arena_size = 512 : i64
// CHECK: "moai.state"() {name = "grad.W", param = "W", role = "grad"} : () -> tensor<64xf32>
// CHECK: "moai.exp"(%arg0) {moai.offsets = array<i64: [[E:[0-9]+]]>}
// CHECK: "moai.accumulate"(%{{.*}}, %arg0) : (tensor<64xf32>, tensor<64xf32>) -> ()
// CHECK: "moai.accumulate"(%{{.*}}, %{{.*}}) : (tensor<64xf32>, tensor<64xf32>) -> ()
func.func @main(%g: tensor<64xf32> {moai.name = "g"}) -> (tensor<64xf32> {moai.name = "e"}) {
  %a = "moai.state"() {name = "grad.W", role = "grad", param = "W"} : () -> tensor<64xf32>
  %e = "moai.exp"(%g) : (tensor<64xf32>) -> tensor<64xf32>
  "moai.accumulate"(%a, %g) : (tensor<64xf32>, tensor<64xf32>) -> ()
  "moai.accumulate"(%a, %e) : (tensor<64xf32>, tensor<64xf32>) -> ()
  return %e : tensor<64xf32>
}

// @update (no arguments, no results) is planned: an empty arena.
// CHECK-LABEL: func.func @update
// CHECK-SAME: moai.arena_size = 0 : i64
// CHECK: "moai.optimizer_finish"(%{{.*}}, %{{.*}}) : (tensor<i64>, tensor<f32>) -> ()
func.func @update() {
  %s = "moai.state"() {name = "optimizer.step", role = "step"} : () -> tensor<i64>
  %lw = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
  "moai.optimizer_finish"(%s, %lw) : (tensor<i64>, tensor<f32>) -> ()
  return
}
