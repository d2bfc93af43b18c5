/* The packed f32 GEMM behind matmul and gemm on AVX2 and AVX-512 (BLIS's
 * loop structure: Van Zee and van de Geijn, "BLIS: A Framework for Rapidly
 * Instantiating BLAS Functionality", TOMS 2015; Goto and van de Geijn,
 * "Anatomy of High-Performance Matrix Multiplication", TOMS 2008).
 *
 * matmul.c splits the output of one op into blocks, one or more per thread
 * (ith, nth), and hands each block to the ISA's block function; every block
 * function packs its own operand panels into buffers of the calling thread,
 * so threads share nothing and need no barrier inside the op.
 *
 * gemm_avx2.c and gemm_avx512.c are the only files compiled with -mavx2 /
 * -mavx512f; they include gemm_driver.h, which instantiates the loops
 * around their micro-kernel. Internal to runtime/kernels/nn. */
#ifndef MOAI_KERNELS_NN_GEMM_H
#define MOAI_KERNELS_NN_GEMM_H

#include <stddef.h>
#include <stdint.h>

/* One block C[0..m) x [0..n) (row stride ldc) of
 *   C = alpha * A' * B'            (accumulate == 0)
 *   C = alpha * A' * B' + C        (accumulate != 0: C holds beta * bias)
 * where A'(i, k) = a[i * as_i + k * as_k] and B'(k, j) = b[k * bs_k + j * bs_j]
 * (any strides: transposed operands need no copy). k >= 1. */
typedef struct moai_sgemm_block_t {
  int64_t m, n, k;
  const float *a;
  int64_t as_i, as_k;
  const float *b;
  int64_t bs_k, bs_j;
  float *c;
  int64_t ldc;
  float alpha;
  int accumulate;
} moai_sgemm_block_t;

/* Computes one block; 0 when the calling thread's packing buffers could not
 * be allocated (C untouched: the caller falls back to the portable loops). */
typedef int (*moai_sgemm_block_fn_t)(const moai_sgemm_block_t *blk);

int moai_sgemm_block_avx2(const moai_sgemm_block_t *blk);
int moai_sgemm_block_avx512(const moai_sgemm_block_t *blk);

/* The calling thread's packing buffer of at least `floats` floats, 64-byte
 * aligned; allocated on the thread's first call (or when a larger one is
 * asked for) and kept until the thread exits. NULL when out of memory. */
float *moai_gemm_thread_buffer(size_t floats);

#endif /* MOAI_KERNELS_NN_GEMM_H */
