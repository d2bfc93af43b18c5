/* Gather (ONNX, any data dtype, int32 or int64 indices of any shape):
 * out[o, j..., r] = data[o, idx[j...], r] along `axis`. Negative indices
 * count from the end; an index outside [-dim, dim) fails the step (the
 * thread that meets it reports it, any thread). */
#include <stdio.h>

#include "kernels/elementwise/ew.h"

typedef struct gather_t {
  int64_t outer, axis_dim, n_idx, inner;
  size_t es;
  const unsigned char *data;
  const void *idx;
  bool idx64;
  unsigned char *out;
} gather_t;

static bool gather_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, gather_t *g) {
  if (!moai_ew_check_arity(ex, op, ith, 2, 2, 1)) return false;
  const moai_tensor_t *d = moai_op_in(op, 0), *ix = moai_op_in(op, 1), *out = moai_op_out(op, 0);
  moai_attrs_axis_t a;
  if (op->attrs_size < sizeof a) {
    moai_ew_fail(ex, op, ith, "gather: missing attributes");
    return false;
  }
  memcpy(&a, moai_op_attrs(op), sizeof a);
  if (!moai_ew_dtype_ok(d->dtype)) {
    moai_ew_fail_dtype(ex, op, ith, d->dtype);
    return false;
  }
  if (ix->dtype != MOAI_ABI_I32 && ix->dtype != MOAI_ABI_I64) {
    moai_ew_fail(ex, op, ith, "gather: unsupported indices dtype %s", moai_ew_dtype_name(ix->dtype));
    return false;
  }
  if (a.axis < 0 || a.axis >= d->rank) {
    moai_ew_fail(ex, op, ith, "gather: axis %lld out of range for rank %d", (long long)a.axis,
                 (int)d->rank);
    return false;
  }
  bool ok = out->dtype == d->dtype && out->rank == d->rank - 1 + ix->rank;
  for (int32_t j = 0; ok && j < out->rank; ++j) {
    int64_t want = j < a.axis                ? d->dims[j]
                   : j < a.axis + ix->rank   ? ix->dims[j - a.axis]
                                             : d->dims[j - ix->rank + 1];
    ok = out->dims[j] == want;
  }
  if (!ok) {
    moai_ew_fail(ex, op, ith, "gather: output dtype or dims do not match data and indices");
    return false;
  }
  g->outer = 1;
  for (int32_t j = 0; j < a.axis; ++j) g->outer *= d->dims[j];
  g->axis_dim = d->dims[a.axis];
  g->n_idx = moai_tensor_numel(ix);
  g->inner = 1;
  for (int32_t j = (int32_t)a.axis + 1; j < d->rank; ++j) g->inner *= d->dims[j];
  g->es = moai_ew_dtype_size(d->dtype);
  g->data = moai_ew_ptr(ex, d);
  g->idx = moai_tensor_ptr(ex, ix);
  g->idx64 = ix->dtype == MOAI_ABI_I64;
  g->out = moai_ew_ptr(ex, out);
  return true;
}

/* Index j, wrapped into [0, axis_dim); false if out of range. */
static bool gather_index(const gather_t *g, int64_t j, int64_t *out) {
  int64_t v = g->idx64 ? ((const int64_t *)g->idx)[j] : ((const int32_t *)g->idx)[j];
  if (v < 0) v += g->axis_dim;
  *out = v;
  return v >= 0 && v < g->axis_dim;
}

static void gather_bad_index(const moai_exec_t *ex, const moai_op_desc_t *op, const gather_t *g,
                             int64_t j) {
  int64_t v = g->idx64 ? ((const int64_t *)g->idx)[j] : ((const int32_t *)g->idx)[j];
  char msg[160];
  snprintf(msg, sizeof msg, "gather: index %lld out of range for axis of size %lld",
           (long long)v, (long long)g->axis_dim);
  moai_kernel_fail(ex, op, msg);
}

static void gather_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  gather_t g;
  if (!gather_setup(ex, op, ith, &g)) return;
  long long begin, end;
  moai_split_range(g.outer * g.n_idx * g.inner, ith, nth, &begin, &end);
  for (int64_t i = begin; i < end; ++i) {
    int64_t r = i % g.inner, j = (i / g.inner) % g.n_idx, o = i / g.inner / g.n_idx, v;
    if (!gather_index(&g, j, &v)) {
      gather_bad_index(ex, op, &g, j);
      return;
    }
    memcpy(g.out + (size_t)i * g.es, g.data + (size_t)((o * g.axis_dim + v) * g.inner + r) * g.es,
           g.es);
  }
}

#define DEF_GATHER1(NAME, T)                                                          \
  static int64_t NAME(const gather_t *g, int64_t begin, int64_t end) {                \
    T *o = (T *)g->out;                                                               \
    const T *d = (const T *)g->data;                                                  \
    for (int64_t i = begin; i < end; ++i) {                                           \
      int64_t j = i % g->n_idx, v;                                                    \
      if (!gather_index(g, j, &v)) return j;                                          \
      o[i] = d[(i / g->n_idx) * g->axis_dim + v];                                     \
    }                                                                                 \
    return -1;                                                                        \
  }
DEF_GATHER1(gather1_1, uint8_t)
DEF_GATHER1(gather1_2, uint16_t)
DEF_GATHER1(gather1_4, uint32_t)
DEF_GATHER1(gather1_8, uint64_t)

static void gather_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  gather_t g;
  if (!gather_setup(ex, op, ith, &g)) return;
  long long begin, end;
  moai_split_range(g.outer * g.n_idx * g.inner, ith, nth, &begin, &end);
  if (begin >= end) return;
  if (g.inner == 1) { /* single elements: a typed loop */
    int64_t bad;
    switch (g.es) {
      case 1: bad = gather1_1(&g, begin, end); break;
      case 2: bad = gather1_2(&g, begin, end); break;
      case 4: bad = gather1_4(&g, begin, end); break;
      default: bad = gather1_8(&g, begin, end); break;
    }
    if (bad >= 0) gather_bad_index(ex, op, &g, bad);
    return;
  }
  /* Rows of `inner` elements, one memcpy per (piece of a) row. */
  int64_t row = begin / g.inner, r = begin % g.inner;
  for (int64_t pos = begin; pos < end; ++row, r = 0) {
    int64_t cnt = g.inner - r, j = row % g.n_idx, v;
    if (cnt > end - pos) cnt = end - pos;
    if (!gather_index(&g, j, &v)) {
      gather_bad_index(ex, op, &g, j);
      return;
    }
    memcpy(g.out + (size_t)pos * g.es,
           g.data + (size_t)(((row / g.n_idx) * g.axis_dim + v) * g.inner + r) * g.es,
           (size_t)cnt * g.es);
    pos += cnt;
  }
}

void moai_ew_register_gather(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) table[MOAI_KERNEL_GATHER] = gather_ref;
  else if (isa == MOAI_ISA_GENERIC) table[MOAI_KERNEL_GATHER] = gather_opt;
}
