/* The fused attention kernels' shared problem description (attention.c) and
 * the blocked f32 versions built per ISA around the packed GEMM's block
 * function (attention_blocked.h, instantiated by attention_avx512.c and
 * attention_avx2.c). Internal to runtime/kernels/nn. */
#ifndef MOAI_KERNELS_NN_ATTENTION_H
#define MOAI_KERNELS_NN_ATTENTION_H

#include <stdint.h>

typedef struct attn_problem_t {
  int64_t b, h, kvh, s, d;  /* q [b, h, s, d]; k, v [b, kvh, s, d] */
  int64_t mb, mh;           /* mask dims 0 and 1 (1 = broadcast); 0: none */
  int64_t ms, mt;           /* mask dims 2 and 3 */
  const void *q, *k, *v, *mask, *out, *lse, *dout;
  void *o, *l, *dq, *dk, *dv;
  double scale;
} attn_problem_t;

/* Offset of mask[b, h, i, 0] (rows broadcast over a dim of 1). */
static inline int64_t attn_mask_row(const attn_problem_t *p, int64_t b, int64_t h, int64_t i) {
  int64_t bb = p->mb == 1 ? 0 : b, hh = p->mh == 1 ? 0 : h, ii = p->ms == 1 ? 0 : i;
  return ((bb * p->mh + hh) * p->ms + ii) * p->mt;
}

/* Blocked f32 forward and backward (see attention_blocked.h), thread ith
 * of nth; the same work split as the row-at-a-time kernels. */
void moai_attn_fwd_blocked_avx512(const attn_problem_t *p, int ith, int nth);
void moai_attn_bwd_blocked_avx512(const attn_problem_t *p, int ith, int nth);
void moai_attn_fwd_blocked_avx2(const attn_problem_t *p, int ith, int nth);
void moai_attn_bwd_blocked_avx2(const attn_problem_t *p, int ith, int nth);

#endif /* MOAI_KERNELS_NN_ATTENTION_H */
