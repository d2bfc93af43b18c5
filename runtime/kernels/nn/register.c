/* The nn kernel family: matmul/gemm, softmax/log_softmax/cross-entropy,
 * conv, pools, batch and layer normalisation, cumsum and trilu. Each family
 * file fills its ids: scalar reference kernels at MOAI_ISA_REFERENCE, the
 * optimised portable ones at MOAI_ISA_GENERIC (AVX2 and AVX-512 fall back to
 * them until ISA-specific kernels land). */
#include "kernels/nn/nn_internal.h"

void moai_kernels_register_nn(moai_isa_t isa, moai_kernel_fn_t *table) {
  moai_nn_register_matmul(isa, table);
  moai_nn_register_softmax(isa, table);
  moai_nn_register_conv(isa, table);
  moai_nn_register_pool(isa, table);
  moai_nn_register_norm(isa, table);
  moai_nn_register_scan(isa, table);
  moai_nn_register_fused(isa, table);
}
