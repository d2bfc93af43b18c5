/* moai-autodiff: reverse-mode differentiation of a training export.
 *
 * Input: a module whose function (@main, or its only func.func) returns a
 * float scalar loss (when it has several outputs, the one named "loss"; the
 * others are dropped), after moai-shape-infer (every type static).
 * Output: the same function returning
 *   (loss, loss_weight, grad.<p> for every trainable moai.weight p)
 * with result attributes moai.name ("loss", "loss_weight", "grad.<p>") and
 * moai.grad_of = "<p>" on the gradients. With the module unit attribute
 * `moai.autodiff_inputs`, float graph inputs are differentiated as well
 * (results "grad.<input>", after the weights' gradients).
 *
 * The loss weight w is the number of counted targets when the loss is a
 * SoftmaxCrossEntropyLoss with reduction "mean" (labels not equal to
 * ignore_index, or the sum of their class weights), else 1. Backward is
 * seeded with w: every returned gradient is that of w * loss, which makes
 * gradient accumulation over micro-batches exact (docs/training.md). The
 * module gains attributes describing w: moai.loss_weight_kind ("tokens" or
 * "one"), and for "tokens" moai.labels_input (the labels' graph input name,
 * when they are one) and moai.ignore_index.
 *
 * Rules follow PyTorch's derivative formulas (passes/autodiff/rules.c). A
 * differentiable path through an op without a rule is an error at the op. */
#ifndef MOAI_PASSES_AUTODIFF_H
#define MOAI_PASSES_AUTODIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_autodiff_stats_t {
  size_t parameters;     /* trainable weights differentiated */
  size_t ops_before;     /* ops in the function before the pass */
  size_t ops_after;      /* and after */
  size_t zero_gradients; /* weights the loss does not depend on */
} moai_autodiff_stats_t;

/* The pass, anchored on builtin.module; owned by the caller. */
MlirPass moai_autodiff_pass_create(void);

/* The pass's logic on a module operation. Problems are diagnostics at the
 * op (or function); returns false after one. *out_stats may be NULL. */
bool moai_autodiff_run(MlirOperation module, moai_autodiff_stats_t *out_stats);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_AUTODIFF_H */
