// A hand-written post-optimizer training module with collectives and a
// pipeline send (docs/abi.md, ABI 3): one tensor-parallel rank of
// h = all_reduce_sum(tp_copy(x) W), y = h + B, loss = mean((y - t)^2); its
// `send` output is h, so the forward entry runs the ops up to h's
// all-reduce. The backward is spelled out: dy = (2/15) (y - t),
// dW = all_reduce_sum(x^T dy). `dmax` = all_reduce_max(d) reads d, which
// lives on (the kernel copies, then reduces). W trained by plain SGD, B
// frozen. grad.W is gradient bucket 0 (moai.grad_ready, data parallelism).
// Weights: data/linear_weights.bin (W then B, float32), relative to the
// current directory.
module attributes {moai.pipeline = {send = "h"}, moai.training = {optimizer = "sgd", lr = 5.000000e-02 : f64, weight_decay = 0.000000e+00 : f64, momentum = 0.000000e+00 : f64, dampening = 0.000000e+00 : f64, nesterov = 0 : i64, schedule = "constant", warmup_steps = 0 : i64, total_steps = 0 : i64, micro_batches = 1 : i64, loss_weight_kind = "one"}} {
  func.func @main(%x: tensor<5x4xf32> {moai.name = "x"}, %t: tensor<5x3xf32> {moai.name = "t"}) -> (tensor<f32> {moai.name = "loss"}, tensor<f32> {moai.name = "loss_weight"}, tensor<5x3xf32> {moai.name = "h"}, tensor<5x3xf32> {moai.name = "dmax"}) {
    %W = "moai.weight"() {name = "W", trainable = 1 : i64, storage = "external", file = "linear_weights.bin", offset = 0 : i64, length = 48 : i64} : () -> tensor<4x3xf32>
    %B = "moai.weight"() {name = "B", trainable = 0 : i64, storage = "external", file = "linear_weights.bin", offset = 48 : i64, length = 12 : i64} : () -> tensor<3xf32>
    %xc = "moai.tp_copy"(%x) : (tensor<5x4xf32>) -> tensor<5x4xf32>
    %xw = "moai.matmul"(%xc, %W) : (tensor<5x4xf32>, tensor<4x3xf32>) -> tensor<5x3xf32>
    %h = "moai.all_reduce"(%xw) {op = "sum", group = "tp"} : (tensor<5x3xf32>) -> tensor<5x3xf32>
    %y = "moai.add"(%h, %B) : (tensor<5x3xf32>, tensor<3xf32>) -> tensor<5x3xf32>
    %d = "moai.sub"(%y, %t) : (tensor<5x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>
    %dmax = "moai.all_reduce"(%d) {op = "max", group = "tp"} : (tensor<5x3xf32>) -> tensor<5x3xf32>
    %sq = "moai.mul"(%d, %d) : (tensor<5x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>
    %loss = "moai.reduce_mean"(%sq) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64, operandSegmentSizes = array<i32: 1, 0>} : (tensor<5x3xf32>) -> tensor<f32>
    %c = "moai.constant"() {value = dense<0.13333334> : tensor<f32>} : () -> tensor<f32>
    %dy = "moai.mul"(%d, %c) : (tensor<5x3xf32>, tensor<f32>) -> tensor<5x3xf32>
    %xt = "moai.transpose"(%xc) {perm = array<i64: 1, 0>} : (tensor<5x4xf32>) -> tensor<4x5xf32>
    %gWp = "moai.matmul"(%xt, %dy) : (tensor<4x5xf32>, tensor<5x3xf32>) -> tensor<4x3xf32>
    %gW = "moai.all_reduce"(%gWp) {op = "sum", group = "tp"} : (tensor<4x3xf32>) -> tensor<4x3xf32>
    %w = "moai.constant"() {value = dense<1.000000e+00> : tensor<f32>} : () -> tensor<f32>
    %acc = "moai.state"() {name = "grad.W", role = "grad", param = "W"} : () -> tensor<4x3xf32>
    "moai.accumulate"(%acc, %gW) : (tensor<4x3xf32>, tensor<4x3xf32>) -> ()
    "moai.grad_ready"(%acc) {bucket = 0 : i64, operandSegmentSizes = array<i32: 1, 0, 0, 0, 0, 0, 0, 0>} : (tensor<4x3xf32>) -> ()
    %lw = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
    "moai.accumulate"(%lw, %w) : (tensor<f32>, tensor<f32>) -> ()
    return %loss, %w, %h, %dmax : tensor<f32>, tensor<f32>, tensor<5x3xf32>, tensor<5x3xf32>
  }
  func.func @update() {
    %p = "moai.weight"() {name = "W", trainable = 1 : i64, storage = "external", file = "linear_weights.bin", offset = 0 : i64, length = 48 : i64} : () -> tensor<4x3xf32>
    %g = "moai.state"() {name = "grad.W", role = "grad", param = "W"} : () -> tensor<4x3xf32>
    %s = "moai.state"() {name = "optimizer.step", role = "step"} : () -> tensor<i64>
    %lw = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
    "moai.sgd"(%p, %g, %s, %lw) {lr = 5.000000e-02 : f32, momentum = 0.000000e+00 : f32, dampening = 0.000000e+00 : f32, weight_decay = 0.000000e+00 : f32, nesterov = 0 : i64, schedule = "constant", warmup_steps = 0 : i64, total_steps = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 0, 1, 1>} : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<i64>, tensor<f32>) -> ()
    "moai.optimizer_finish"(%s, %lw) : (tensor<i64>, tensor<f32>) -> ()
    return
  }
}
