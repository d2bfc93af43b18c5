// RUN: moai-opt %s --pass-pipeline='builtin.module(moai-memory-plan)' | FileCheck %s

// moai.tp_copy is a view like moai.identity (no buffer of its own); an
// all-reduce reduces in place into an input that dies at it, and gets a
// buffer of its own when the input lives on (here: %1 is used after it).
// CHECK-LABEL: func.func @collectives
// CHECK: %[[M:.*]] = "moai.matmul"(%arg0, %arg0) {moai.offsets = array<i64: [[MM:[0-9]+]]>}
// CHECK: %[[C:.*]] = "moai.tp_copy"(%[[M]]) {moai.alias = 0 : i64, moai.offsets = array<i64: [[MM]]>}
// CHECK: %[[R:.*]] = "moai.all_reduce"(%[[C]]) {group = "tp", moai.inplace = 0 : i64, moai.offsets = array<i64: [[MM]]>, op = "sum"}
// CHECK: %[[E:.*]] = "moai.exp"(%[[R]]) {moai.offsets = array<i64: 64>}
// CHECK: "moai.all_reduce"(%[[E]]) {group = "tp", moai.offsets = array<i64: 128>, op = "max"}
func.func @collectives(%x: tensor<4x4xf32> {moai.name = "x"}) -> (tensor<4x4xf32> {moai.name = "y"}, tensor<4x4xf32> {moai.name = "z"}) {
  %0 = "moai.matmul"(%x, %x) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %1 = "moai.tp_copy"(%0) : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %2 = "moai.all_reduce"(%1) {op = "sum", group = "tp"} : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %3 = "moai.exp"(%2) : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %4 = "moai.all_reduce"(%3) {op = "max", group = "tp"} : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %5 = "moai.add"(%3, %4) : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  return %5, %2 : tensor<4x4xf32>, tensor<4x4xf32>
}
