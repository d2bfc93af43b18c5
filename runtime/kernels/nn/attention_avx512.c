/* The blocked f32 attention kernels (attention_blocked.h) on the AVX-512
 * GEMM micro-kernel; compiled with -mavx512f (CMakeLists.txt) so that the
 * softmax loops between the GEMMs vectorise for it too. Runs only when the
 * kernel table was filled for MOAI_ISA_AVX512. */
#define AB_GEMM moai_sgemm_block_avx512
#define AB_SUFFIX avx512
#include "kernels/nn/attention_blocked.h"
