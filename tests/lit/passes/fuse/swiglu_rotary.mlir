// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-fuse)' | FileCheck %s
// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-fuse,moai-shape-infer)' | FileCheck %s --check-prefix=SHAPES

// SwiGLU with every multiplication's operands swapped.
// CHECK-LABEL: func.func @swiglu_swapped
// CHECK-NOT: "moai.sigmoid"
// CHECK: %[[Y:.*]] = "moai.swiglu"(%arg0, %arg1) : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
// CHECK-NEXT: return %[[Y]]
// SHAPES-LABEL: func.func @swiglu_swapped
// SHAPES: "moai.swiglu"{{.*}} -> tensor<3x5xf32>
func.func @swiglu_swapped(%g: tensor<3x5xf32>, %u: tensor<3x5xf32>) -> tensor<3x5xf32> {
  %s = "moai.sigmoid"(%g) : (tensor<3x5xf32>) -> tensor<3x5xf32>
  %silu = "moai.mul"(%s, %g) : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  %y = "moai.mul"(%u, %silu) : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  return %y : tensor<3x5xf32>
}

// Not fused: the silu is also returned; u broadcasts; the sigmoid is of
// another value than the one multiplied.
// CHECK-LABEL: func.func @swiglu_unfused
// CHECK-NOT: "moai.swiglu"
// CHECK: return
func.func @swiglu_unfused(%g: tensor<3x5xf32>, %u: tensor<3x5xf32>, %b: tensor<5xf32>) -> (tensor<3x5xf32>, tensor<3x5xf32>, tensor<3x5xf32>, tensor<3x5xf32>) {
  %s = "moai.sigmoid"(%g) : (tensor<3x5xf32>) -> tensor<3x5xf32>
  %silu = "moai.mul"(%g, %s) : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  %y = "moai.mul"(%silu, %u) : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  %s2 = "moai.sigmoid"(%g) : (tensor<3x5xf32>) -> tensor<3x5xf32>
  %silu2 = "moai.mul"(%g, %s2) : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  %y2 = "moai.mul"(%silu2, %b) : (tensor<3x5xf32>, tensor<5xf32>) -> tensor<3x5xf32>
  %s3 = "moai.sigmoid"(%u) : (tensor<3x5xf32>) -> tensor<3x5xf32>
  %silu3 = "moai.mul"(%g, %s3) : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  %y3 = "moai.mul"(%silu3, %u) : (tensor<3x5xf32>, tensor<3x5xf32>) -> tensor<3x5xf32>
  return %y, %silu, %y2, %y3 : tensor<3x5xf32>, tensor<3x5xf32>, tensor<3x5xf32>, tensor<3x5xf32>
}

// The exporters' rotate_half with the add's and both muls' operands
// swapped, cos/sin of rank 2, slice ends past the dim and axis 3.
// CHECK-LABEL: func.func @rotary_swapped
// CHECK-NOT: "moai.concat"
// CHECK: %[[R:.*]] = "moai.rotary"(%arg0, %arg1, %arg2) : (tensor<1x2x5x6xf32>, tensor<5x6xf32>, tensor<5x6xf32>) -> tensor<1x2x5x6xf32>
// CHECK-NEXT: return %[[R]]
// SHAPES-LABEL: func.func @rotary_swapped
// SHAPES: "moai.rotary"{{.*}} -> tensor<1x2x5x6xf32>
func.func @rotary_swapped(%x: tensor<1x2x5x6xf32>, %cos: tensor<5x6xf32>, %sin: tensor<5x6xf32>) -> tensor<1x2x5x6xf32> {
  %ax = "moai.constant"() {value = dense<3> : tensor<1xi64>} : () -> tensor<1xi64>
  %one = "moai.constant"() {value = dense<1> : tensor<1xi64>} : () -> tensor<1xi64>
  %zero = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %h = "moai.constant"() {value = dense<3> : tensor<1xi64>} : () -> tensor<1xi64>
  %big = "moai.constant"() {value = dense<9223372036854775807> : tensor<1xi64>} : () -> tensor<1xi64>
  %xc = "moai.mul"(%cos, %x) : (tensor<5x6xf32>, tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %hi = "moai.slice"(%x, %h, %big, %ax, %one) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<1x2x5x6xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x5x3xf32>
  %nhi = "moai.neg"(%hi) : (tensor<1x2x5x3xf32>) -> tensor<1x2x5x3xf32>
  %lo = "moai.slice"(%x, %zero, %h, %ax, %one) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<1x2x5x6xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<1x2x5x3xf32>
  %rh = "moai.concat"(%nhi, %lo) {axis = 3 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0, 0, 0>} : (tensor<1x2x5x3xf32>, tensor<1x2x5x3xf32>) -> tensor<1x2x5x6xf32>
  %rs = "moai.mul"(%sin, %rh) : (tensor<5x6xf32>, tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  %y = "moai.add"(%rs, %xc) : (tensor<1x2x5x6xf32>, tensor<1x2x5x6xf32>) -> tensor<1x2x5x6xf32>
  return %y : tensor<1x2x5x6xf32>
}

// Not fused: halves swapped in the concat (not rotate_half); the slices of
// another tensor than the one multiplied by cos; the negated half also
// returned.
// CHECK-LABEL: func.func @rotary_unfused
// CHECK-NOT: "moai.rotary"
// CHECK: return
func.func @rotary_unfused(%x: tensor<2x4xf32>, %z: tensor<2x4xf32>, %cos: tensor<2x4xf32>, %sin: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x2xf32>) {
  %ax = "moai.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %zero = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %h = "moai.constant"() {value = dense<2> : tensor<1xi64>} : () -> tensor<1xi64>
  %d = "moai.constant"() {value = dense<4> : tensor<1xi64>} : () -> tensor<1xi64>
  %xc = "moai.mul"(%x, %cos) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %hi = "moai.slice"(%x, %h, %d, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x2xf32>
  %nhi = "moai.neg"(%hi) : (tensor<2x2xf32>) -> tensor<2x2xf32>
  %lo = "moai.slice"(%x, %zero, %h, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x2xf32>
  %rh = "moai.concat"(%lo, %nhi) {axis = -1 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0, 0, 0>} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x4xf32>
  %rs = "moai.mul"(%rh, %sin) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %y = "moai.add"(%xc, %rs) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %zc = "moai.mul"(%z, %cos) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %hi2 = "moai.slice"(%x, %h, %d, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x2xf32>
  %nhi2 = "moai.neg"(%hi2) : (tensor<2x2xf32>) -> tensor<2x2xf32>
  %lo2 = "moai.slice"(%x, %zero, %h, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x2xf32>
  %rh2 = "moai.concat"(%nhi2, %lo2) {axis = -1 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0, 0, 0>} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x4xf32>
  %rs2 = "moai.mul"(%rh2, %sin) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %y2 = "moai.add"(%zc, %rs2) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %xc3 = "moai.mul"(%x, %cos) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %hi3 = "moai.slice"(%x, %h, %d, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x2xf32>
  %nhi3 = "moai.neg"(%hi3) : (tensor<2x2xf32>) -> tensor<2x2xf32>
  %lo3 = "moai.slice"(%x, %zero, %h, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x2xf32>
  %rh3 = "moai.concat"(%nhi3, %lo3) {axis = -1 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0, 0, 0>} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x4xf32>
  %rs3 = "moai.mul"(%rh3, %sin) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %y3 = "moai.add"(%xc3, %rs3) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %y, %y2, %y3, %nhi3 : tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x2xf32>
}

// A positive control in the same short form as @rotary_unfused (2-D x,
// slices with axes but no steps, axis -1): fused.
// CHECK-LABEL: func.func @rotary_2d
// CHECK: "moai.rotary"(%arg0, %arg1, %arg2) : (tensor<2x4xf32>, tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
func.func @rotary_2d(%x: tensor<2x4xf32>, %cos: tensor<2x4xf32>, %sin: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %ax = "moai.constant"() {value = dense<-1> : tensor<1xi64>} : () -> tensor<1xi64>
  %zero = "moai.constant"() {value = dense<0> : tensor<1xi64>} : () -> tensor<1xi64>
  %h = "moai.constant"() {value = dense<2> : tensor<1xi64>} : () -> tensor<1xi64>
  %d = "moai.constant"() {value = dense<4> : tensor<1xi64>} : () -> tensor<1xi64>
  %xc = "moai.mul"(%x, %cos) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %hi = "moai.slice"(%x, %h, %d, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x2xf32>
  %nhi = "moai.neg"(%hi) : (tensor<2x2xf32>) -> tensor<2x2xf32>
  %lo = "moai.slice"(%x, %zero, %h, %ax) {operandSegmentSizes = array<i32: 1, 1, 1, 1, 0>} : (tensor<2x4xf32>, tensor<1xi64>, tensor<1xi64>, tensor<1xi64>) -> tensor<2x2xf32>
  %rh = "moai.concat"(%nhi, %lo) {axis = -1 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 0, 0, 0, 0, 0>} : (tensor<2x2xf32>, tensor<2x2xf32>) -> tensor<2x4xf32>
  %rs = "moai.mul"(%rh, %sin) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %y = "moai.add"(%xc, %rs) : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %y : tensor<2x4xf32>
}
