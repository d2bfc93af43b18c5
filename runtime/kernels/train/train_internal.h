/* Shared helpers of the training kernel family (the optimizers of
 * abi/moai_ops.h: adamw, sgd, optimizer_finish). Internal to
 * runtime/kernels/train. */
#ifndef MOAI_KERNELS_TRAIN_INTERNAL_H
#define MOAI_KERNELS_TRAIN_INTERNAL_H

#include "kernels/kernels.h"

/* Registers the optimizer kernels for one ISA level (optimizer.c). */
void moai_train_register_optimizer(moai_isa_t isa, moai_kernel_fn_t *table);

#endif /* MOAI_KERNELS_TRAIN_INTERNAL_H */
