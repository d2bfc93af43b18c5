/* The element-wise reduction both backends of comm.h apply in rank order,
 * in one place so that their results are the same bits (internal to
 * runtime/comm). */
#ifndef MOAI_COMM_REDUCE_H
#define MOAI_COMM_REDUCE_H

#include "comm/comm.h"

/* s (the ranks before) combined with v (the next rank's value). MAX is NaN
 * when either is NaN, so a NaN on any rank is seen by every rank. */
static inline float moai_comm_combine_f32(moai_comm_reduce_t op, float s, float v) {
  return op == MOAI_COMM_SUM ? s + v : v > s || v != v ? v : s;
}
static inline double moai_comm_combine_f64(moai_comm_reduce_t op, double s, double v) {
  return op == MOAI_COMM_SUM ? s + v : v > s || v != v ? v : s;
}

#endif /* MOAI_COMM_REDUCE_H */
