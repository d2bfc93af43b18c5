/* The nn kernel family: matmul/gemm, softmax/log_softmax/cross-entropy,
 * conv, pools, batch and layer normalisation, cumsum and trilu, and the
 * fused ops of moai-fuse (attention, rms_norm, swiglu, rotary). Each family
 * file fills its ids: scalar reference kernels at MOAI_ISA_REFERENCE, the
 * optimised portable ones at MOAI_ISA_GENERIC. At MOAI_ISA_AVX2 and
 * MOAI_ISA_AVX512 matmul and gemm switch f32 to the packed GEMM (gemm.h);
 * every other kernel falls back to its generic version. */
#include "kernels/nn/nn_internal.h"

void moai_kernels_register_nn(moai_isa_t isa, moai_kernel_fn_t *table) {
  moai_nn_register_matmul(isa, table);
  moai_nn_register_softmax(isa, table);
  moai_nn_register_conv(isa, table);
  moai_nn_register_pool(isa, table);
  moai_nn_register_norm(isa, table);
  moai_nn_register_scan(isa, table);
  moai_nn_register_fused(isa, table);
  moai_nn_register_swiglu(isa, table);
  moai_nn_register_rotary(isa, table);
}
