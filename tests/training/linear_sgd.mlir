// A post-optimizer training module (docs/training.md) written by hand: y = x W + B,
// loss = mean((y - t)^2); W trained by SGD (momentum 0.9, nesterov, weight decay),
// B frozen. The backward is spelled out: dy = (2/15) (y - t), dW = x^T dy.
// Weights: data/linear_weights.bin (W then B, float32), relative to the
// current directory (storage "external" with no moai.source).
module attributes {moai.training = {optimizer = "sgd", lr = 5.000000e-02 : f64, weight_decay = 1.000000e-02 : f64, momentum = 9.000000e-01 : f64, dampening = 0.000000e+00 : f64, nesterov = 1 : i64, schedule = "constant", warmup_steps = 0 : i64, total_steps = 0 : i64, micro_batches = 1 : i64, loss_weight_kind = "one"}} {
  func.func @main(%x: tensor<5x4xf32> {moai.name = "x"}, %t: tensor<5x3xf32> {moai.name = "t"}) -> (tensor<f32> {moai.name = "loss"}, tensor<f32> {moai.name = "loss_weight"}) {
    %W = "moai.weight"() {name = "W", trainable = 1 : i64, storage = "external", file = "linear_weights.bin", offset = 0 : i64, length = 48 : i64} : () -> tensor<4x3xf32>
    %B = "moai.weight"() {name = "B", trainable = 0 : i64, storage = "external", file = "linear_weights.bin", offset = 48 : i64, length = 12 : i64} : () -> tensor<3xf32>
    %xw = "moai.matmul"(%x, %W) : (tensor<5x4xf32>, tensor<4x3xf32>) -> tensor<5x3xf32>
    %y = "moai.add"(%xw, %B) : (tensor<5x3xf32>, tensor<3xf32>) -> tensor<5x3xf32>
    %d = "moai.sub"(%y, %t) : (tensor<5x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>
    %sq = "moai.mul"(%d, %d) : (tensor<5x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>
    %loss = "moai.reduce_mean"(%sq) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64, operandSegmentSizes = array<i32: 1, 0>} : (tensor<5x3xf32>) -> tensor<f32>
    %c = "moai.constant"() {value = dense<0.13333334> : tensor<f32>} : () -> tensor<f32>
    %dy = "moai.mul"(%d, %c) : (tensor<5x3xf32>, tensor<f32>) -> tensor<5x3xf32>
    %xt = "moai.transpose"(%x) {perm = array<i64: 1, 0>} : (tensor<5x4xf32>) -> tensor<4x5xf32>
    %gW = "moai.matmul"(%xt, %dy) : (tensor<4x5xf32>, tensor<5x3xf32>) -> tensor<4x3xf32>
    %w = "moai.constant"() {value = dense<1.000000e+00> : tensor<f32>} : () -> tensor<f32>
    %acc = "moai.state"() {name = "grad.W", role = "grad", param = "W"} : () -> tensor<4x3xf32>
    "moai.accumulate"(%acc, %gW) : (tensor<4x3xf32>, tensor<4x3xf32>) -> ()
    %lw = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
    "moai.accumulate"(%lw, %w) : (tensor<f32>, tensor<f32>) -> ()
    return %loss, %w : tensor<f32>, tensor<f32>
  }
  func.func @update() {
    %p = "moai.weight"() {name = "W", trainable = 1 : i64, storage = "external", file = "linear_weights.bin", offset = 0 : i64, length = 48 : i64} : () -> tensor<4x3xf32>
    %g = "moai.state"() {name = "grad.W", role = "grad", param = "W"} : () -> tensor<4x3xf32>
    %b = "moai.state"() {name = "optimizer.momentum_buffer.W", role = "momentum_buffer", param = "W"} : () -> tensor<4x3xf32>
    %s = "moai.state"() {name = "optimizer.step", role = "step"} : () -> tensor<i64>
    %lw = "moai.state"() {name = "optimizer.loss_weight", role = "loss_weight"} : () -> tensor<f32>
    "moai.sgd"(%p, %g, %b, %s, %lw) {lr = 5.000000e-02 : f32, momentum = 9.000000e-01 : f32, dampening = 0.000000e+00 : f32, weight_decay = 1.000000e-02 : f32, nesterov = 1 : i64, schedule = "constant", warmup_steps = 0 : i64, total_steps = 0 : i64, operandSegmentSizes = array<i32: 1, 1, 1, 1, 1>} : (tensor<4x3xf32>, tensor<4x3xf32>, tensor<4x3xf32>, tensor<i64>, tensor<f32>) -> ()
    "moai.optimizer_finish"(%s, %lw) : (tensor<i64>, tensor<f32>) -> ()
    return
  }
}
