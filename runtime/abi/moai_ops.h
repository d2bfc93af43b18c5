/* Kernel ids and attribute structs of the device ABI (see moai_abi.h).
 *
 * One kernel id per moai op that computes something (moai.weight and
 * moai.constant are buffers, moai.shape is always folded). The compiler
 * normalises attributes before writing them here: negative axes are made
 * positive, parameter operands that are constants (Slice starts/ends/
 * axes/steps, Reduce axes, Trilu k, CumSum axis, Split sizes, Squeeze and
 * Unsqueeze axes) are folded into these structs, auto_pad is resolved into
 * explicit pads, and output shapes are in the output tensors. Shapes of
 * inputs and outputs are always in the tensors themselves: elementwise
 * kernels broadcast by comparing input dims with output dims (numpy rules,
 * right-aligned).
 *
 * Runtime-valued parameters: when Slice's starts/ends/axes/steps, a
 * Reduce's axes, Trilu's k or CumSum's axis are not constants (a graph
 * input, a computed value), the compiler passes them as tensors in their
 * ONNX operand slots and sets the struct's runtime_* flag; the kernel reads
 * and normalises them itself, as ONNX specifies (every thread: kernels
 * cannot wait for each other), and fails cleanly when they are malformed or
 * disagree with the output dims.
 *
 * Compatibility: fields are only ever appended to these structs, and a
 * descriptor's attrs_size says how many bytes its compiler wrote; kernels
 * read fields past attrs_size as zero (moai_kernel_attrs_load in
 * runtime/kernels/kernels.h), which is every appended field's old meaning. */
#ifndef MOAI_OPS_H
#define MOAI_OPS_H

#include <stdint.h>

#include "abi/moai_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* X(id, moai mnemonic). The order is ABI: append only. */
#define MOAI_KERNEL_LIST(X)                                                 \
  X(COPY, "copy") /* reshape, squeeze, unsqueeze, flatten, identity,       \
                     dropout (inference): out = in, same bytes */           \
  X(ADD, "add") X(SUB, "sub") X(MUL, "mul") X(DIV, "div") X(POW, "pow")     \
  X(EQUAL, "equal") X(LESS, "less") X(LESS_OR_EQUAL, "less_or_equal")       \
  X(GREATER, "greater") X(GREATER_OR_EQUAL, "greater_or_equal")             \
  X(AND, "and") X(OR, "or") X(NOT, "not") X(WHERE, "where")                 \
  X(MAX, "max") X(MIN, "min")                                               \
  X(NEG, "neg") X(ABS, "abs") X(SQRT, "sqrt") X(EXP, "exp") X(LOG, "log")   \
  X(SIN, "sin") X(COS, "cos") X(TANH, "tanh") X(SIGMOID, "sigmoid")         \
  X(ERF, "erf") X(RELU, "relu") X(LEAKY_RELU, "leaky_relu") X(GELU, "gelu") \
  X(CLIP, "clip") X(CAST, "cast")                                           \
  X(EXPAND, "expand") X(TRANSPOSE, "transpose") X(SLICE, "slice")           \
  X(CONCAT, "concat") X(SPLIT, "split") X(GATHER, "gather")                 \
  X(CONSTANT_OF_SHAPE, "constant_of_shape") X(RANGE, "range")               \
  X(TRILU, "trilu") X(CUMSUM, "cumsum")                                     \
  X(REDUCE_SUM, "reduce_sum") X(REDUCE_MEAN, "reduce_mean")                 \
  X(REDUCE_MAX, "reduce_max")                                               \
  X(MATMUL, "matmul") X(GEMM, "gemm")                                       \
  X(SOFTMAX, "softmax") X(LOG_SOFTMAX, "log_softmax")                       \
  X(SOFTMAX_CROSS_ENTROPY_LOSS, "softmax_cross_entropy_loss")               \
  X(CONV, "conv") X(MAX_POOL, "max_pool") X(AVERAGE_POOL, "average_pool")   \
  X(GLOBAL_AVERAGE_POOL, "global_average_pool")                             \
  X(BATCH_NORMALIZATION, "batch_normalization")                             \
  X(LAYER_NORMALIZATION, "layer_normalization")                             \
  /* ABI 2: gradients and training (moai-autodiff, moai-optimizer) */       \
  X(GATHER_GRAD, "gather_grad") X(SLICE_GRAD, "slice_grad")                 \
  X(SOFTMAX_GRAD, "softmax_grad") X(LOG_SOFTMAX_GRAD, "log_softmax_grad")   \
  X(SCE_GRAD, "softmax_cross_entropy_loss_grad")                            \
  X(CONV_GRAD_INPUT, "conv_grad_input")                                     \
  X(CONV_GRAD_WEIGHT, "conv_grad_weight")                                   \
  X(MAX_POOL_GRAD, "max_pool_grad")                                         \
  X(AVERAGE_POOL_GRAD, "average_pool_grad")                                 \
  X(BATCH_NORM_GRAD, "batch_normalization_grad")                            \
  X(LAYER_NORM_GRAD, "layer_normalization_grad")                            \
  X(ADAMW, "adamw") X(SGD, "sgd") X(OPTIMIZER_FINISH, "optimizer_finish") \
  /* ABI 3: collectives (tensor parallelism) */                             \
  X(ALL_REDUCE, "all_reduce")                                                \
  /* data parallelism: a bucket of gradients is final */                    \
  X(GRAD_READY, "grad_ready")                                               \
  /* fused ops (moai-fuse) and their gradients */                          \
  X(ATTENTION, "attention") X(ATTENTION_GRAD, "attention_grad")            \
  X(RMS_NORM, "rms_norm") X(RMS_NORM_GRAD, "rms_norm_grad")              \
  X(SWIGLU, "swiglu") X(SWIGLU_GRAD, "swiglu_grad")                        \
  X(ROTARY, "rotary") X(ROTARY_GRAD, "rotary_grad")

typedef enum moai_kernel_id_e {
#define MOAI_KERNEL_ENUM(id, name) MOAI_KERNEL_##id,
  MOAI_KERNEL_LIST(MOAI_KERNEL_ENUM)
#undef MOAI_KERNEL_ENUM
  MOAI_KERNEL_COUNT
} moai_kernel_id_t;

/* Attribute structs; kernels not listed take none (attrs_size 0). Operands
 * are in ONNX order; absent optional operands have region MOAI_REGION_NONE.
 * Binary/unary elementwise ops, where, max/min, cast, copy, expand, matmul,
 * global_average_pool, range (start, limit, delta operands) take no attrs. */

typedef struct moai_attrs_leaky_relu_t { float alpha; } moai_attrs_leaky_relu_t;
typedef struct moai_attrs_gelu_t { int32_t tanh_approximation; } moai_attrs_gelu_t;

/* clip: operands input, min?, max? (scalars). No attrs. */

typedef struct moai_attrs_axis_t { int64_t axis; } moai_attrs_axis_t;
/* gather, concat, split (output dims give the sizes), softmax,
 * log_softmax use moai_attrs_axis_t. */

typedef struct moai_attrs_transpose_t { int64_t perm[MOAI_MAX_RANK]; } moai_attrs_transpose_t;

/* slice: per input axis, the first index and step (steps may be negative);
 * the output dims give the counts. Only the data operand is passed, unless
 * runtime_params. */
typedef struct moai_attrs_slice_t {
  int64_t start[MOAI_MAX_RANK];
  int64_t step[MOAI_MAX_RANK];
  /* 0: start/step above, one operand. 1: start/step are unused; operands are
   * data, starts, ends, axes?, steps? (int32 or int64, 1-D, NONE when
   * absent), read at run time and clamped as ONNX specifies; the counts
   * they give must equal the output dims. */
  int32_t runtime_params;
  int32_t pad;
} moai_attrs_slice_t;

/* constant_of_shape: the fill value's bytes (output dtype). No operands. */
typedef struct moai_attrs_fill_t { unsigned char value[8]; } moai_attrs_fill_t;

/* trilu: data operand only, unless runtime_k. */
typedef struct moai_attrs_trilu_t {
  int64_t k;
  int32_t upper;
  int32_t pad;
  /* 0: k above. 1: k is unused; operands are input, k (an int64 or int32
   * tensor of one element), read at run time. */
  int32_t runtime_k;
  int32_t pad2;
} moai_attrs_trilu_t;

/* cumsum: data operand only, unless runtime_axis. */
typedef struct moai_attrs_cumsum_t {
  int64_t axis;
  int32_t exclusive;
  int32_t reverse;
  /* 0: axis above (non-negative). 1: axis is unused; operands are x, axis
   * (an int32 or int64 tensor of one element, negative counts from the
   * end), read at run time. */
  int32_t runtime_axis;
  int32_t pad;
} moai_attrs_cumsum_t;

/* reduce_*: data operand only, unless runtime_axes; axes as a bit mask over
 * the input's axes (bit i = reduce axis i; 0 reduces nothing: a copy);
 * keepdims only affects the output dims. */
typedef struct moai_attrs_reduce_t {
  uint64_t axes_mask;
  int32_t keepdims;
  int32_t pad;
  /* 0: axes_mask above. 1: axes_mask is unused; operands are data, axes (an
   * int64 or int32 1-D tensor, negative axes count from the end), read at
   * run time: no axes reduce all of them, unless noop_with_empty_axes
   * (then none). The output dims must be those the axes and keepdims
   * give. */
  int32_t runtime_axes;
  int32_t noop_with_empty_axes; /* read with runtime_axes only */
} moai_attrs_reduce_t;

typedef struct moai_attrs_gemm_t {
  float alpha, beta;
  int32_t trans_a, trans_b;
} moai_attrs_gemm_t;

/* softmax_cross_entropy_loss: operands scores [N,C,d...], labels [N,d...],
 * weights? [C]; outputs loss, log_prob?. reduction: 0 none, 1 sum, 2 mean. */
typedef struct moai_attrs_sce_t {
  int32_t reduction;
  int32_t has_ignore_index;
  int64_t ignore_index;
} moai_attrs_sce_t;

/* conv and pools: spatial_rank (r) spatial axes (1..3); pads as ONNX lays
 * them out: begins in pads[0..r), ends in pads[r..2r); output dims are in the
 * output tensor. max_pool has outputs y and, when the model uses them,
 * indices (n_out 2). */
typedef struct moai_attrs_window_t {
  int32_t spatial_rank;
  int32_t count_include_pad; /* average_pool */
  int64_t group;             /* conv */
  int64_t kernel[3];
  int64_t strides[3];
  int64_t dilations[3];
  int64_t pads[6];
  /* max_pool with a second output (Indices: int64, the output's dims): the
   * flat index of each maximum in the input, counted over [N, C, spatial]
   * with the spatial axes row-major (0) or column-major (1: the first
   * spatial axis fastest), as ONNX's storage_order. */
  int32_t storage_order;
  int32_t pad;
} moai_attrs_window_t;

/* batch_normalization: operands x, scale, b, mean, var; outputs y,
 * running_mean?, running_var?. */
typedef struct moai_attrs_batch_norm_t {
  float epsilon;
  float momentum;
  int32_t training_mode;
  int32_t pad;
} moai_attrs_batch_norm_t;

/* layer_normalization: operands x, scale, b?; outputs y, mean?, inv_std_dev?;
 * normalised over axes [axis, rank). */
typedef struct moai_attrs_layer_norm_t {
  int64_t axis;
  float epsilon;
  int32_t pad;
} moai_attrs_layer_norm_t;

/* attention: operands q [B,H,S,D], k [B,KVH,S,D], v [B,KVH,S,D], mask?
 *   (additive, rank 4, each dim 1 or [B,H,S,S]'s), key_padding? ([B,S]
 *   integer or bool: nonzero = key j of batch b may be attended); outputs
 *   out [B,H,S,D], lse? [B,H,S] (each row's log-sum-exp of the scaled,
 *   masked scores). Head h reads kv head h / (H / KVH).
 * attention_grad: operands q, k, v, out, lse, grad (dout), mask?,
 *   key_padding?; outputs dq, dk, dv. Both take moai_attrs_attention_t.
 * Score (b, h, i, j) = scale q.k + mask + (hidden ? masked_value : 0), with
 *   hidden = (causal && j > i) || (window && i - j >= window) ||
 *   (key_padding && key_padding[b, j] == 0), computed from the indices.
 *   causal, window and masked_value were appended: descriptors written
 *   before them read 0 (nothing hidden; no key_padding existed either). */
typedef struct moai_attrs_attention_t {
  float scale;
  int32_t pad;
  int32_t causal;     /* 1: key j hidden from query i when j > i */
  float masked_value; /* added to hidden scores (exporters: -3.40282347e38) */
  int64_t window;     /* > 0: key j hidden from query i when i - j >= window */
} moai_attrs_attention_t;

/* rms_norm: operands x, scale [last dim]; output y. rms_norm_grad: operands
 * x, scale, grad; outputs dx, dscale. Normalised over the last axis. */
typedef struct moai_attrs_rms_norm_t {
  float epsilon;
  int32_t pad;
} moai_attrs_rms_norm_t;

/* swiglu: operands g, u (one shape); output y = silu(g) u = g sigmoid(g) u.
 * swiglu_grad: operands g, u, grad (dy); outputs dg, du. No attrs. */

/* rotary: operands x [..., D] (D even), cos, sin (one shape, broadcasting
 *   to x's right-aligned, last dim D); output y = x cos + rotate_half(x) sin
 *   with rotate_half(x) = concat(-x[..., D/2:], x[..., :D/2]).
 * rotary_grad: operands grad (dy, x's shape), cos, sin; output dx = dy cos
 *   + rotate_half^T(dy sin), rotate_half^T(z) = concat(z[..., D/2:],
 *   -z[..., :D/2]). No attrs. */

/* ---- gradient kernels (ABI 2) ----------------------------------------------
 *
 * gather_grad: operands grad (the Gather output's gradient), indices; output
 *   the data's gradient (zeros, then grad rows added at the indices; negative
 *   indices count from the end, out-of-range ones fail the step). Attrs:
 *   moai_attrs_axis_t (non-negative).
 * slice_grad: operand grad; output the data's gradient: zeros, then grad
 *   written at start[i] + k * step[i] along each output axis (the forward
 *   Slice's normalised start/step, moai_attrs_slice_t, runtime_params 0).
 * softmax_grad / log_softmax_grad: operands y (the forward output), grad;
 *   output the input's gradient. Attrs: moai_attrs_axis_t.
 * softmax_cross_entropy_loss_grad: operands scores [N,C,d...], labels
 *   [N,d...], weights? [C], grad (the loss's gradient: a scalar for
 *   reduction sum/mean, [N,d...] for none); output the scores' gradient.
 *   Attrs: moai_attrs_sce_t.
 * conv_grad_input: operands grad (dy), w; output dx. conv_grad_weight:
 *   operands x, grad (dy); output dw. max_pool_grad: operands x, grad;
 *   output dx (each window's gradient to its first maximum in scan order, as
 *   PyTorch). average_pool_grad: operand grad; output dx. Attrs:
 *   moai_attrs_window_t of the forward op (its output dims are grad's).
 * batch_normalization_grad: operands x, scale, grad; outputs dx, dscale,
 *   dbias, for training mode (batch mean and biased variance recomputed from
 *   x). Attrs: moai_attrs_batch_norm_t (epsilon used).
 * layer_normalization_grad: operands x, scale, grad; outputs dx, dscale,
 *   dbias. Attrs: moai_attrs_layer_norm_t.
 *
 * ---- optimizer kernels (ABI 2) -----------------------------------------------
 *
 * They have no outputs: they update operands in place (all in
 * MOAI_REGION_PERSIST). adamw: operands param, grad, exp_avg, exp_avg_sq,
 * step (int64 scalar: optimizer steps completed before this one), loss_weight
 * (f32 scalar: the sum of the micro-batches' loss weights; grad holds the sum
 * of loss_weight_i * dloss_i/dparam). The update uses g = grad / loss_weight,
 * t = step + 1, lr = moai_optimizer_lr(attrs, step), in torch.optim.AdamW's
 * order (PyTorch 1.13, single-tensor path):
 *   param *= 1 - lr * wd;  m = m * b1 + g * (1 - b1);
 *   v = v * b2 + g * g * (1 - b2);
 *   denom = sqrt(v) / sqrt(1 - b2^t) + eps;  param += -(lr / (1 - b1^t)) * m / denom
 * and then sets grad to zero. sgd: operands param, grad, momentum_buffer?,
 * step, loss_weight; torch.optim.SGD: d = g + wd * param; with momentum,
 * buf = d at t = 1, else buf = buf * momentum + d * (1 - dampening);
 * d = nesterov ? d + momentum * buf : buf; param += -lr * d; zeroes grad.
 * optimizer_finish: operands step, loss_weight: step += 1, loss_weight = 0.
 * It runs last in the update function, after a barrier. */

/* ---- collective kernels (ABI 3) -----------------------------------------------
 *
 * all_reduce: operand input, output output (f32 or f64, one shape; the same
 * buffer when the memory plan reduces in place). Thread 0 copies input to
 * output when they differ and hands output to the all-reduce hook the
 * runtime bound to the plan (moai_plan_set_allreduce in loader/plan.h); the
 * other threads wait at the barrier after the op. Every rank of the group
 * runs its all-reduces in the same order. */
enum {
  MOAI_REDUCE_SUM = 0,
  MOAI_REDUCE_MAX = 1,
};
enum {
  MOAI_GROUP_TP = 0, /* the tensor-parallel ranks of one (dp, pp) coordinate */
};
typedef struct moai_attrs_all_reduce_t {
  int32_t op;    /* MOAI_REDUCE_* */
  int32_t group; /* MOAI_GROUP_* */
} moai_attrs_all_reduce_t;

/* grad_ready: operands the bucket's gradient accumulators (MOAI_REGION_PERSIST,
 * 1 to 8), no output. Thread 0 calls the grad-ready hook the runtime bound to
 * the plan (moai_plan_set_grad_ready in loader/plan.h) with the bucket, which
 * may start summing the accumulators over the dp group; the step's later ops
 * never touch them. No hook bound: nothing happens. */
typedef struct moai_attrs_grad_ready_t {
  int32_t bucket; /* 0, 1, ... in step order */
  int32_t reserved;
} moai_attrs_grad_ready_t;

enum {
  MOAI_LR_CONSTANT = 0,
  /* Linear warm-up from 0 over warmup_steps, then cosine decay to 0 at
   * total_steps (Hugging Face's get_cosine_schedule_with_warmup). */
  MOAI_LR_COSINE = 1,
};

typedef struct moai_attrs_optimizer_t {
  double lr, beta1, beta2, eps, weight_decay; /* adamw */
  double momentum, dampening;                 /* sgd (and weight_decay) */
  int32_t nesterov;
  int32_t schedule; /* MOAI_LR_* */
  int64_t warmup_steps, total_steps;
} moai_attrs_optimizer_t;

/* The learning rate of the step that follows `step` completed ones: the one
 * kernel and runtime (logs) share. */
static inline double moai_optimizer_lr(const moai_attrs_optimizer_t *a,
                                       int64_t step) {
  if (a->schedule != MOAI_LR_COSINE) return a->lr;
  if (step < a->warmup_steps)
    return a->lr * ((double)step / (double)(a->warmup_steps > 1 ? a->warmup_steps : 1));
  int64_t decay = a->total_steps - a->warmup_steps;
  double progress = (double)(step - a->warmup_steps) / (double)(decay > 1 ? decay : 1);
  double f = 0.5 * (1.0 + __builtin_cos(3.14159265358979323846 * progress));
  return a->lr * (f > 0.0 ? f : 0.0);
}

/* The mnemonic of a kernel id ("add"), or NULL. */
static inline const char *moai_kernel_name(uint32_t id) {
  static const char *const names[] = {
#define MOAI_KERNEL_NAME(id, name) name,
      MOAI_KERNEL_LIST(MOAI_KERNEL_NAME)
#undef MOAI_KERNEL_NAME
  };
  return id < MOAI_KERNEL_COUNT ? names[id] : (const char *)0;
}

#ifdef __cplusplus
}
#endif

#endif /* MOAI_OPS_H */
