/* moai-optimizer: the optimizer step and gradient accumulation.
 *
 * Input: a module after moai-autodiff (@main returns loss, loss_weight and
 * the gradients grad.<p>). Settings come from the module's `moai.training`
 * dictionary (docs/training.md lists the keys; missing ones take PyTorch's
 * defaults for the optimizer: AdamW lr 1e-3, betas 0.9/0.999, eps 1e-8,
 * weight decay 0.01; SGD lr 1e-3, no momentum).
 *
 * Output: @main accumulates every gradient into a `moai.state` named
 * grad.<p> and the loss weight into optimizer.loss_weight, and returns
 * (loss, loss_weight); a new function @update applies one `moai.adamw` or
 * `moai.sgd` per trainable weight and ends with `moai.optimizer_finish`. The
 * `moai.training` dictionary is completed with every setting (defaults
 * included) and the loss-weight description autodiff left on the module. */
#ifndef MOAI_PASSES_OPTIMIZER_H
#define MOAI_PASSES_OPTIMIZER_H

#include <stdbool.h>

#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The pass, anchored on builtin.module; owned by the caller. */
MlirPass moai_optimizer_pass_create(void);

/* The pass's logic on a module; false after a diagnostic. */
bool moai_optimizer_run(MlirOperation module);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_OPTIMIZER_H */
