// RUN: sed 's/SEND/nope/' %s > %t.nope.mlir
// RUN: not moaicc %t.nope.mlir -o %t.plan 2>&1 | FileCheck %s --check-prefix=NONE
// RUN: sed 's/SEND/h/' %s > %t.h.mlir
// RUN: not moaicc %t.h.mlir -o %t.plan 2>&1 | FileCheck %s --check-prefix=TWICE

// moai.pipeline's `send` must name an output of @main, and no op writing
// training state may come before the op computing it.
// NONE: moai.pipeline: send = 'nope' names no output of @main
// TWICE: moai.pipeline: this op writes training state but comes before the op computing the sent output 'h'
module attributes {moai.pipeline = {send = "SEND"}, moai.training = {optimizer = "sgd", lr = 5.000000e-02 : f64, micro_batches = 1 : i64, loss_weight_kind = "one"}} {
  func.func @main(%x: tensor<4xf32> {moai.name = "x"}) -> (tensor<f32> {moai.name = "loss"}, tensor<f32> {moai.name = "loss_weight"}, tensor<4xf32> {moai.name = "h"}) {
    %w = "moai.constant"() {value = dense<1.000000e+00> : tensor<f32>} : () -> tensor<f32>
    %lw = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
    "moai.accumulate"(%lw, %w) : (tensor<f32>, tensor<f32>) -> ()
    %h = "moai.all_reduce"(%x) {op = "sum", group = "tp"} : (tensor<4xf32>) -> tensor<4xf32>
    %loss = "moai.reduce_mean"(%h) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64, operandSegmentSizes = array<i32: 1, 0>} : (tensor<4xf32>) -> tensor<f32>
    return %loss, %w, %h : tensor<f32>, tensor<f32>, tensor<4xf32>
  }
  func.func @update() {
    %s = "moai.state"() {name = "optimizer.step", role = "step"} : () -> tensor<i64>
    %lw = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
    "moai.optimizer_finish"(%s, %lw) : (tensor<i64>, tensor<f32>) -> ()
    return
  }
}
