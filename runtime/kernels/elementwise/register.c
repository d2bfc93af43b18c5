/* The elementwise family's entries of the kernel table: reference kernels
 * for MOAI_ISA_REFERENCE, optimised portable C for MOAI_ISA_GENERIC (higher
 * ISAs keep those: moai_kernels_fill registers lower levels first). */
#include "kernels/elementwise/ew.h"

void moai_kernels_register_elementwise(moai_isa_t isa, moai_kernel_fn_t *table) {
  moai_ew_register_binary(isa, table);
  moai_ew_register_pow(isa, table);
  moai_ew_register_compare_logic(isa, table);
  moai_ew_register_where_minmax(isa, table);
  moai_ew_register_unary(isa, table);
  moai_ew_register_activation(isa, table);
  moai_ew_register_cast(isa, table);
  moai_ew_register_copy_layout(isa, table);
  moai_ew_register_concat_split(isa, table);
  moai_ew_register_gather(isa, table);
  moai_ew_register_fill_range(isa, table);
  moai_ew_register_reduce(isa, table);
}
