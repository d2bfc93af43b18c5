/* The fused attention kernels' shared problem description (attention.c) and
 * the blocked f32 versions built per ISA around the packed GEMM's block
 * function (attention_blocked.h, instantiated by attention_avx512.c and
 * attention_avx2.c). Internal to runtime/kernels/nn. */
#ifndef MOAI_KERNELS_NN_ATTENTION_H
#define MOAI_KERNELS_NN_ATTENTION_H

#include <stdbool.h>
#include <stdint.h>

typedef struct attn_problem_t {
  int64_t b, h, kvh, s, d;  /* q [b, h, s, d]; k, v [b, kvh, s, d] */
  int64_t mb, mh;           /* mask dims 0 and 1 (1 = broadcast); 0: none */
  int64_t ms, mt;           /* mask dims 2 and 3 */
  const void *q, *k, *v, *mask, *out, *lse, *dout;
  void *o, *l, *dq, *dk, *dv;
  double scale;
  /* The masks computed from indices (moai_attrs_attention_t): key j is
   * hidden from query i when causal && j > i, window && i - j >= window or
   * key_padding[b, j] == 0; a hidden score gets masked_value added. */
  const uint8_t *kpad; /* key_padding [b, s], kpad_es bytes an element; NULL: none */
  int64_t kpad_es;
  int64_t window;      /* 0: none */
  bool causal;
  bool indexed;        /* causal, window or kpad: some key may be hidden */
  double masked_value;
} attn_problem_t;

/* Offset of mask[b, h, i, 0] (rows broadcast over a dim of 1). */
static inline int64_t attn_mask_row(const attn_problem_t *p, int64_t b, int64_t h, int64_t i) {
  int64_t bb = p->mb == 1 ? 0 : b, hh = p->mh == 1 ? 0 : h, ii = p->ms == 1 ? 0 : i;
  return ((bb * p->mh + hh) * p->ms + ii) * p->mt;
}

/* The keys [*lo, *hi] that causal and window leave visible to query i. */
static inline void attn_key_range(const attn_problem_t *p, int64_t i, int64_t *lo, int64_t *hi) {
  *hi = p->causal ? i : p->s - 1;
  *lo = p->window > 0 && i - p->window + 1 > 0 ? i - p->window + 1 : 0;
}

/* Whether key j of batch b is padding: key_padding[b, j] == 0, read as
 * bytes, which is the same for every integer and bool element type. */
static inline bool attn_key_padded(const attn_problem_t *p, int64_t b, int64_t j) {
  if (!p->kpad) return false;
  const uint8_t *e = p->kpad + (b * p->s + j) * p->kpad_es;
  for (int64_t k = 0; k < p->kpad_es; ++k)
    if (e[k]) return false;
  return true;
}

/* Whether key j is hidden from the query whose range is [lo, hi]. */
static inline bool attn_hidden(const attn_problem_t *p, int64_t b, int64_t lo, int64_t hi,
                               int64_t j) {
  return j < lo || j > hi || attn_key_padded(p, b, j);
}

/* Blocked f32 forward and backward (see attention_blocked.h), thread ith
 * of nth; the same work split as the row-at-a-time kernels. */
void moai_attn_fwd_blocked_avx512(const attn_problem_t *p, int ith, int nth);
void moai_attn_bwd_blocked_avx512(const attn_problem_t *p, int ith, int nth);
void moai_attn_fwd_blocked_avx2(const attn_problem_t *p, int ith, int nth);
void moai_attn_bwd_blocked_avx2(const attn_problem_t *p, int ith, int nth);

#endif /* MOAI_KERNELS_NN_ATTENTION_H */
