/* The training kernel family's entries of the kernel table: scalar
 * reference kernels at MOAI_ISA_REFERENCE, portable auto-vectorised ones at
 * MOAI_ISA_GENERIC (higher ISAs keep those). */
#include "kernels/train/train_internal.h"

void moai_kernels_register_train(moai_isa_t isa, moai_kernel_fn_t *table) {
  moai_train_register_optimizer(isa, table);
}
