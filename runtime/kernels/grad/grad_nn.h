/* Internal to the gradient kernels of the nn family (runtime/kernels/grad:
 * conv_grad.c, pool_grad.c, norm_grad.c): their per-file registration, which
 * moai_kernels_register_grad_nn (register_nn.c) calls. They reuse the
 * forward kernels' window geometry (kernels/nn/window.h) and dtype helpers.
 *
 * The gradient ops are not elementwise, so the memory plan never places an
 * output in an operand's buffer: these kernels may read their operands
 * after writing outputs. Every kernel splits its outputs over (ith, nth) so
 * that each thread owns disjoint elements: no atomics, no scratch, results
 * independent of the thread count. */
#ifndef MOAI_KERNELS_GRAD_NN_H
#define MOAI_KERNELS_GRAD_NN_H

#include "kernels/nn/window.h"

void moai_grad_register_conv(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_grad_register_pool(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_grad_register_norm(moai_isa_t isa, moai_kernel_fn_t *table);

/* Reports `msg` once (from thread 0). */
static inline void moai_grad_fail(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                  const char *msg) {
  if (ith == 0) moai_kernel_fail(ex, op, msg);
}

#endif /* MOAI_KERNELS_GRAD_NN_H */
