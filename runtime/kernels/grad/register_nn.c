/* Gradient kernels of the nn ops (conv, pools, batch and layer
 * normalisation): scalar references at MOAI_ISA_REFERENCE, optimised
 * portable versions at MOAI_ISA_GENERIC (higher ISAs fall back to them). */
#include "kernels/grad/grad_nn.h"

void moai_kernels_register_grad_nn(moai_isa_t isa, moai_kernel_fn_t *table) {
  moai_grad_register_conv(isa, table);
  moai_grad_register_pool(isa, table);
  moai_grad_register_norm(isa, table);
}
