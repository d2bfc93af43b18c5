// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-memory-plan)' | FileCheck %s

// x (512 B) dies at the matmul; relu overwrites the matmul's result in place;
// softmax needs a second 1 KiB buffer, which the reshape views and the
// return keeps to the end. Only the matmul/relu and softmax buffers are live
// together: arena = lower bound = 2 KiB, x fits under the longer-lived one.
// CHECK-LABEL: func.func @mlp(%arg0: tensor<4x32xf32> {moai.name = "x", moai.offset = 0 : i64}) -> (tensor<256xf32> {moai.name = "y"})
// CHECK-SAME: attributes {moai.arena_alignment = 64 : i64, moai.arena_size = 2048 : i64, moai.live_lower_bound = 2048 : i64}
// Weights and constants live outside the arena: no offsets.
// CHECK: "moai.weight"() {file = "w.onnx", length = 8192 : i64, name = "w", offset = 0 : i64, storage = "raw", trainable = 0 : i64}
// CHECK: "moai.matmul"(%arg0, %{{.*}}) {moai.offsets = array<i64: 1024>}
// CHECK: "moai.relu"(%{{.*}}) {moai.inplace = 0 : i64, moai.offsets = array<i64: 1024>}
// CHECK: "moai.softmax"(%{{.*}}) {axis = -1 : i64, moai.offsets = array<i64: 0>}
// CHECK: "moai.constant"() {value = dense<256> : tensor<1xi64>}
// CHECK: "moai.reshape"(%{{.*}}, %{{.*}}) {allowzero = 0 : i64, moai.alias = 0 : i64, moai.offsets = array<i64: 0>}
func.func @mlp(%x: tensor<4x32xf32> {moai.name = "x"}) -> (tensor<256xf32> {moai.name = "y"}) {
  %w = "moai.weight"() {file = "w.onnx", length = 8192 : i64, name = "w", offset = 0 : i64, storage = "raw", trainable = 0 : i64} : () -> tensor<32x64xf32>
  %0 = "moai.matmul"(%x, %w) : (tensor<4x32xf32>, tensor<32x64xf32>) -> tensor<4x64xf32>
  %1 = "moai.relu"(%0) : (tensor<4x64xf32>) -> tensor<4x64xf32>
  %2 = "moai.softmax"(%1) {axis = -1 : i64} : (tensor<4x64xf32>) -> tensor<4x64xf32>
  %s = "moai.constant"() {value = dense<256> : tensor<1xi64>} : () -> tensor<1xi64>
  %3 = "moai.reshape"(%2, %s) {allowzero = 0 : i64} : (tensor<4x64xf32>, tensor<1xi64>) -> tensor<256xf32>
  return %3 : tensor<256xf32>
}

// Every result of a multi-result op gets an offset, unused ones included
// (the kernel writes them); a training dropout is not a view and its mask
// (2x16 i1 = 32 B) still takes a 64-byte slot: 128 + 128 + 64 live at the
// dropout. A returned value is never overwritten in place: the sub writes
// into x, which dies there, not into y.
// CHECK-LABEL: func.func @multi
// CHECK-SAME: moai.arena_size = 320 : i64, moai.live_lower_bound = 320 : i64
// CHECK: "moai.dropout"(%arg0, %{{.*}}, %{{.*}}) {moai.offsets = array<i64: [[OUT:[0-9]+]], [[MASK:[0-9]+]]>,
// CHECK-NOT: moai.alias
// CHECK: "moai.exp"(%[[D:.*]]#0) {moai.inplace = 0 : i64, moai.offsets = array<i64: [[OUT]]>}
// CHECK: "moai.sub"(%arg0, %{{.*}}) {moai.inplace = 0 : i64, moai.offsets = array<i64: 0>}
func.func @multi(%x: tensor<2x16xf32>) -> (tensor<2x16xf32>, tensor<2x16xf32>) {
  %r = "moai.constant"() {value = dense<5.000000e-01> : tensor<f32>} : () -> tensor<f32>
  %t = "moai.constant"() {value = dense<true> : tensor<i1>} : () -> tensor<i1>
  %d:2 = "moai.dropout"(%x, %r, %t) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<2x16xf32>, tensor<f32>, tensor<i1>) -> (tensor<2x16xf32>, tensor<2x16xi1>)
  %y = "moai.exp"(%d#0) : (tensor<2x16xf32>) -> tensor<2x16xf32>
  %z = "moai.sub"(%x, %y) : (tensor<2x16xf32>, tensor<2x16xf32>) -> tensor<2x16xf32>
  return %y, %z : tensor<2x16xf32>, tensor<2x16xf32>
}

// Inference dropout (no training_mode, or a constant false) and flatten are
// views of their input; a view of a constant gets its own buffer (the code
// generator copies).
// CHECK-LABEL: func.func @views
// CHECK-SAME: moai.offset = [[X:[0-9]+]] : i64
// CHECK: "moai.dropout"(%arg0) {moai.alias = 0 : i64, moai.offsets = array<i64: [[X]]>
// CHECK: "moai.dropout"(%{{.*}}, %{{.*}}, %{{.*}}) {moai.alias = 0 : i64, moai.offsets = array<i64: [[X]]>
// CHECK: "moai.flatten"(%{{.*}}) {axis = 1 : i64, moai.alias = 0 : i64, moai.offsets = array<i64: [[X]]>}
// CHECK: "moai.flatten"(%{{.*}}) {axis = 0 : i64, moai.offsets = array<i64: {{[0-9]+}}>}
func.func @views(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<1x3xf32>) {
  %f = "moai.constant"() {value = dense<false> : tensor<i1>} : () -> tensor<i1>
  %r = "moai.constant"() {value = dense<1.000000e-01> : tensor<f32>} : () -> tensor<f32>
  %c = "moai.constant"() {value = dense<[1.0, 2.0, 3.0]> : tensor<3xf32>} : () -> tensor<3xf32>
  %0 = "moai.dropout"(%x) {operandSegmentSizes = array<i32: 1, 0, 0>} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %1 = "moai.dropout"(%0, %r, %f) {operandSegmentSizes = array<i32: 1, 1, 1>} : (tensor<2x8xf32>, tensor<f32>, tensor<i1>) -> tensor<2x8xf32>
  %2 = "moai.flatten"(%1) {axis = 1 : i64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %3 = "moai.flatten"(%c) {axis = 0 : i64} : (tensor<3xf32>) -> tensor<1x3xf32>
  return %2, %3 : tensor<2x8xf32>, tensor<1x3xf32>
}
