/* Shared pieces of the gradient kernels (runtime/kernels/grad): the
 * per-file registration functions that moai_kernels_register_grad_index
 * calls, and failure reporting. Internal to runtime/kernels/grad. */
#ifndef MOAI_KERNELS_GRAD_INTERNAL_H
#define MOAI_KERNELS_GRAD_INTERNAL_H

#include <stdarg.h>
#include <stdio.h>

#include "kernels/nn/nn_internal.h"

/* gather_grad, slice_grad (index_grad.c). */
void moai_grad_register_index(moai_isa_t isa, moai_kernel_fn_t *table);
/* softmax_grad, log_softmax_grad, softmax_cross_entropy_loss_grad
 * (softmax_grad.c). */
void moai_grad_register_softmax(moai_isa_t isa, moai_kernel_fn_t *table);

/* Reports a formatted failure once per step (the first failure wins; only
 * thread 0 reports problems every thread sees, such as a bad descriptor). */
static inline void moai_grad_fail(const moai_exec_t *ex, const moai_op_desc_t *op,
                                  const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void moai_grad_fail(const moai_exec_t *ex, const moai_op_desc_t *op,
                                  const char *fmt, ...) {
  char msg[200];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof(msg), fmt, args);
  va_end(args);
  moai_kernel_fail(ex, op, msg);
}

/* Whether a descriptor's tensor is present (not an absent optional). */
static inline bool moai_grad_present(const moai_op_desc_t *op, uint32_t i) {
  return i < op->n_in && moai_op_in(op, i)->region != MOAI_REGION_NONE;
}

static inline bool moai_grad_same_dims(const moai_tensor_t *a, const moai_tensor_t *b) {
  if (a->rank != b->rank) return false;
  for (int32_t i = 0; i < a->rank; ++i)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

#endif /* MOAI_KERNELS_GRAD_INTERNAL_H */
