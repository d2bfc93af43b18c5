/* The blocked f32 attention kernels (attention_blocked.h) on the AVX2 GEMM
 * micro-kernel; compiled with -mavx2 -mfma (CMakeLists.txt). Runs only when
 * the kernel table was filled for MOAI_ISA_AVX2. */
#define AB_GEMM moai_sgemm_block_avx2
#define AB_SUFFIX avx2
#include "kernels/nn/attention_blocked.h"
