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
 * included) and the loss-weight description autodiff left on the module.
 *
 * Each accumulation follows the op that computes its gradient. When the
 * module's `moai.parallel` has dp > 1, the accumulations are grouped into
 * buckets of about 25 MiB (at most 8 gradients each) in the order they come,
 * and a `moai.grad_ready {bucket = b}` follows the last of bucket b. */
#ifndef MOAI_PASSES_OPTIMIZER_H
#define MOAI_PASSES_OPTIMIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The pass, anchored on builtin.module; owned by the caller. */
MlirPass moai_optimizer_pass_create(void);

/* The pass's logic on a module; false after a diagnostic. */
bool moai_optimizer_run(MlirOperation module);

/* Data parallelism: PyTorch DDP's default bucket_cap_mb. */
#define MOAI_GRAD_BUCKET_CAP_BYTES ((uint64_t)25 << 20)

/* Numbers n gradients of bytes[i] bytes, in the order they are finished,
 * into buckets: out_bucket[i] = its bucket (0 first, consecutive). A bucket
 * is closed when it reaches cap_bytes (so it passes the cap by at most its
 * last gradient) or holds max_count gradients (0: no limit), or at the end.
 * Returns the bucket count. */
size_t moai_grad_buckets_assign(const uint64_t *bytes, size_t n, uint64_t cap_bytes,
                                size_t max_count, uint32_t *out_bucket);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_OPTIMIZER_H */
