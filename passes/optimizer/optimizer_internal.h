/* What optimizer.c and buckets.c share (buckets.c: the placement of the
 * gradient accumulations in @main and the data-parallel buckets). */
#ifndef MOAI_PASSES_OPTIMIZER_INTERNAL_H
#define MOAI_PASSES_OPTIMIZER_INTERNAL_H

#include "autodiff/autodiff_internal.h"
#include "mlir-c/IR.h"

/* The op a gradient's accumulation goes before: right after the op that
 * computes `grad`, so the gradient is final (and its buffer free) as early
 * as possible, but not before `floor` (null: none) and never after `ret`. */
MlirOperation opt_accumulate_anchor(MlirValue grad, MlirOperation floor, MlirOperation ret);

/* Pipeline stages (moai.pipeline = {send = "h"}): the op of @main computing
 * the sent output "h". The forward entry runs the ops up to it, so nothing
 * that writes training state may come earlier. Null otherwise. */
MlirOperation opt_pipeline_floor(MlirOperation module, MlirOperation main, MlirOperation ret);

/* When the module's moai.parallel has dp > 1: groups the gradient
 * accumulations of `block` into buckets (moai_grad_buckets_assign, in block
 * order) and inserts a moai.grad_ready {bucket = b} after the last one of
 * each bucket. False after a diagnostic. */
bool opt_insert_grad_ready(ad_t *ad, MlirOperation module, MlirBlock block);

#endif /* MOAI_PASSES_OPTIMIZER_INTERNAL_H */
