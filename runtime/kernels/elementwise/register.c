#include "kernels/kernels.h"

/* Placeholder until the elementwise family lands. */
void moai_kernels_register_elementwise(moai_isa_t isa, moai_kernel_fn_t *table) {
  (void)isa;
  (void)table;
}
