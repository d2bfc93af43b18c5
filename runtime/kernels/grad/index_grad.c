/* Gradients of the indexing ops: gather_grad and slice_grad
 * (abi/moai_ops.h, "gradient kernels"). Both write every element of their
 * output (zeros where the forward op read nothing), so they need no zeroed
 * buffer and no barrier.
 *
 * gather_grad is PyTorch's embedding / index_select backward: the output
 * [outer, dim, inner] is zero, then grad[o, j, r] is added at
 * out[o, idx[j], r] for j = 0, 1, ... in order. Threads own disjoint output
 * rows (ranges of idx values; or, when the axis is shorter than the thread
 * count, ranges of the inner dimension) and each scans all the indices, so
 * there are no atomics and every element sums its contributions in index
 * order: results are the same bits for any thread count, and the reference
 * (one element at a time, same order) matches them exactly.
 *
 * slice_grad is the transpose of Slice: out = 0, then grad scattered to
 * start[a] + k * step[a] along every axis (steps may be negative). It
 * moves bytes, so it takes any dtype. */
#include <stddef.h>

#include "kernels/grad/grad_internal.h"

/* ---- gather_grad ---- */

typedef struct gg_t {
  int64_t outer, dim, n_idx, inner; /* out [outer, dim, inner], grad [outer, n_idx, inner] */
  const void *grad, *idx;
  void *out;
  bool idx64, f64;
} gg_t;

static int64_t gg_raw_index(const gg_t *g, int64_t j) {
  return g->idx64 ? ((const int64_t *)g->idx)[j] : (int64_t)((const int32_t *)g->idx)[j];
}

/* Index j wrapped into [0, dim) (gg_setup checked every one). */
static int64_t gg_index(const gg_t *g, int64_t j) {
  int64_t v = gg_raw_index(g, j);
  return v < 0 ? v + g->dim : v;
}

/* Checks the descriptor and every index (each thread: kernels cannot wait
 * for each other, and the scan is cheap next to the adds). */
static bool gg_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, gg_t *g) {
  moai_attrs_axis_t a;
  if (op->n_in != 2 || op->n_out != 1 || !moai_kernel_attrs_load(op, &a, sizeof a, sizeof a)) {
    if (ith == 0) moai_grad_fail(ex, op, "gather_grad: malformed descriptor");
    return false;
  }
  const moai_tensor_t *gr = moai_op_in(op, 0), *ix = moai_op_in(op, 1), *out = moai_op_out(op, 0);
  if (gr->dtype != MOAI_ABI_F32 && gr->dtype != MOAI_ABI_F64) {
    moai_nn_fail_dtype(ex, op, ith, "gather_grad", gr->dtype);
    return false;
  }
  if (ix->dtype != MOAI_ABI_I32 && ix->dtype != MOAI_ABI_I64) {
    if (ith == 0)
      moai_grad_fail(ex, op, "gather_grad: unsupported indices dtype %s",
                     moai_nn_dtype_name(ix->dtype));
    return false;
  }
  if (a.axis < 0 || a.axis >= out->rank) {
    if (ith == 0)
      moai_grad_fail(ex, op, "gather_grad: axis %lld out of range for rank %d",
                     (long long)a.axis, (int)out->rank);
    return false;
  }
  bool ok = out->dtype == gr->dtype && gr->rank == out->rank - 1 + ix->rank;
  for (int32_t j = 0; ok && j < gr->rank; ++j) {
    int64_t want = j < a.axis               ? out->dims[j]
                   : j < a.axis + ix->rank  ? ix->dims[j - a.axis]
                                            : out->dims[j - ix->rank + 1];
    ok = gr->dims[j] == want;
  }
  if (!ok) {
    if (ith == 0)
      moai_grad_fail(ex, op, "gather_grad: grad dtype or dims do not match the output and indices");
    return false;
  }
  g->outer = 1;
  for (int32_t j = 0; j < a.axis; ++j) g->outer *= out->dims[j];
  g->dim = out->dims[a.axis];
  g->n_idx = moai_tensor_numel(ix);
  g->inner = 1;
  for (int32_t j = (int32_t)a.axis + 1; j < out->rank; ++j) g->inner *= out->dims[j];
  g->grad = moai_tensor_ptr(ex, gr);
  g->idx = moai_tensor_ptr(ex, ix);
  g->out = moai_tensor_ptr(ex, out);
  g->idx64 = ix->dtype == MOAI_ABI_I64;
  g->f64 = gr->dtype == MOAI_ABI_F64;
  for (int64_t j = 0; j < g->n_idx; ++j) {
    int64_t v = gg_raw_index(g, j);
    if (v < -g->dim || v >= g->dim) {
      moai_grad_fail(ex, op, "gather_grad: index %lld out of range for axis of size %lld",
                     (long long)v, (long long)g->dim);
      return false;
    }
  }
  return true;
}

/* Reference: one output element at a time, its contributions in index
 * order. O(numel * n_idx): the tests' oracle only. */
#define GG_REF(NAME, T)                                                        \
  static void NAME(const gg_t *g, long long begin, long long end) {           \
    const T *gr = g->grad;                                                     \
    T *out = g->out;                                                           \
    for (long long e = begin; e < end; ++e) {                                  \
      int64_t r = e % g->inner, v = (e / g->inner) % g->dim, o = e / g->inner / g->dim; \
      T acc = 0;                                                               \
      for (int64_t j = 0; j < g->n_idx; ++j)                                   \
        if (gg_index(g, j) == v) acc += gr[(o * g->n_idx + j) * g->inner + r]; \
      out[e] = acc;                                                            \
    }                                                                          \
  }
GG_REF(gg_ref_f32, float)
GG_REF(gg_ref_f64, double)

/* Optimised: thread ith owns the output rows whose index value lies in
 * [vb, ve) (columns [cb, ce) of them), zeroes them, then adds the grad rows
 * of the indices that land there. */
#define GG_OPT(NAME, T)                                                        \
  static void NAME(const gg_t *g, int ith, int nth) {                          \
    const T *gr = g->grad;                                                     \
    T *out = g->out;                                                           \
    long long vb = 0, ve = g->dim, cb = 0, ce = g->inner;                      \
    if (g->dim >= nth || g->inner < nth)                                       \
      moai_split_range(g->dim, ith, nth, &vb, &ve);                            \
    else                                                                       \
      moai_split_range(g->inner, ith, nth, &cb, &ce);                          \
    if (vb >= ve || cb >= ce) return;                                          \
    int64_t w = ce - cb;                                                       \
    for (int64_t o = 0; o < g->outer; ++o)                                     \
      for (int64_t v = vb; v < ve; ++v)                                        \
        memset(out + (o * g->dim + v) * g->inner + cb, 0, (size_t)w * sizeof(T)); \
    for (int64_t j = 0; j < g->n_idx; ++j) {                                   \
      int64_t v = gg_index(g, j);                                              \
      if (v < vb || v >= ve) continue;                                         \
      for (int64_t o = 0; o < g->outer; ++o) {                                 \
        T *restrict dst = out + (o * g->dim + v) * g->inner + cb;              \
        const T *restrict src = gr + (o * g->n_idx + j) * g->inner + cb;       \
        for (int64_t c = 0; c < w; ++c) dst[c] += src[c];                      \
      }                                                                        \
    }                                                                          \
  }
GG_OPT(gg_opt_f32, float)
GG_OPT(gg_opt_f64, double)

static void gather_grad_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  gg_t g;
  if (!gg_setup(ex, op, ith, &g)) return;
  long long begin, end;
  moai_split_range(g.outer * g.dim * g.inner, ith, nth, &begin, &end);
  (g.f64 ? gg_ref_f64 : gg_ref_f32)(&g, begin, end);
}

static void gather_grad_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  gg_t g;
  if (!gg_setup(ex, op, ith, &g)) return;
  (g.f64 ? gg_opt_f64 : gg_opt_f32)(&g, ith, nth);
}

/* ---- slice_grad ---- */

typedef struct sg_t {
  int32_t rank;
  size_t es;
  const moai_tensor_t *grad, *out;
  int64_t start[MOAI_MAX_RANK], step[MOAI_MAX_RANK];
  int64_t gst[MOAI_MAX_RANK]; /* grad's contiguous strides */
  const unsigned char *g;
  unsigned char *o;
} sg_t;

static bool sg_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, sg_t *s) {
  moai_attrs_slice_t a;
  if (op->n_in != 1 || op->n_out != 1 ||
      !moai_kernel_attrs_load(op, &a, sizeof a, offsetof(moai_attrs_slice_t, runtime_params))) {
    if (ith == 0) moai_grad_fail(ex, op, "slice_grad: malformed descriptor");
    return false;
  }
  if (a.runtime_params) {
    if (ith == 0) moai_grad_fail(ex, op, "slice_grad: runtime slice parameters are not supported");
    return false;
  }
  const moai_tensor_t *gr = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  s->es = moai_nn_dtype_size(gr->dtype);
  if (!s->es || out->dtype != gr->dtype || out->rank != gr->rank) {
    if (ith == 0)
      moai_grad_fail(ex, op, "slice_grad: grad and output differ in dtype or rank");
    return false;
  }
  s->rank = gr->rank;
  s->grad = gr;
  s->out = out;
  int64_t stride = 1;
  for (int32_t j = s->rank - 1; j >= 0; --j) {
    s->gst[j] = stride;
    stride *= gr->dims[j];
  }
  for (int32_t j = 0; j < s->rank; ++j) {
    s->start[j] = a.start[j];
    s->step[j] = a.step[j];
    int64_t count = gr->dims[j];
    if (count == 0) continue;
    /* the first and last element written must lie inside the output */
    int64_t span, last;
    bool overflow = __builtin_mul_overflow(count - 1, a.step[j], &span) ||
                    __builtin_add_overflow(a.start[j], span, &last);
    if (overflow || a.start[j] < 0 || a.start[j] >= out->dims[j] || last < 0 ||
        last >= out->dims[j] || (a.step[j] == 0 && count > 1)) {
      if (ith == 0) moai_grad_fail(ex, op, "slice_grad: axis %d writes outside the output", (int)j);
      return false;
    }
  }
  s->g = moai_tensor_ptr(ex, gr);
  s->o = moai_tensor_ptr(ex, out);
  return true;
}

/* Position k along axis j of the grad that output index i is, or -1 when
 * the slice did not read it. */
static int64_t sg_axis_pos(const sg_t *s, int32_t j, int64_t i) {
  int64_t count = s->grad->dims[j], d = i - s->start[j];
  if (count == 0) return -1;
  if (count == 1) return d == 0 ? 0 : -1; /* step may be anything */
  if (d % s->step[j] != 0) return -1;
  int64_t k = d / s->step[j];
  return k >= 0 && k < count ? k : -1;
}

static void slice_grad_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  sg_t s;
  if (!sg_setup(ex, op, ith, &s)) return;
  long long begin, end;
  moai_split_range(moai_tensor_numel(s.out), ith, nth, &begin, &end);
  for (long long e = begin; e < end; ++e) {
    int64_t rest = e, off = 0;
    bool hit = true;
    for (int32_t j = s.rank - 1; j >= 0; --j) {
      int64_t i = rest % s.out->dims[j];
      rest /= s.out->dims[j];
      int64_t k = sg_axis_pos(&s, j, i);
      if (k < 0) hit = false;
      else off += k * s.gst[j];
    }
    if (hit) memcpy(s.o + (size_t)e * s.es, s.g + (size_t)off * s.es, s.es);
    else memset(s.o + (size_t)e * s.es, 0, s.es);
  }
}

/* Optimised: whole rows of the last axis; a row the slice missed is one
 * memset, a hit row a memset plus a copy (step 1) or a scatter. */
static void slice_grad_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  sg_t s;
  if (!sg_setup(ex, op, ith, &s)) return;
  if (s.rank == 0) {
    if (ith == 0) memcpy(s.o, s.g, s.es);
    return;
  }
  int32_t last = s.rank - 1;
  int64_t len = s.out->dims[last];
  if (len == 0) return;
  int64_t rows = moai_tensor_numel(s.out) / len, count = s.grad->dims[last];
  int64_t first = s.start[last], step = s.step[last];
  size_t es = s.es;
  long long begin, end;
  moai_split_range(rows, ith, nth, &begin, &end);
  for (long long r = begin; r < end; ++r) {
    unsigned char *dst = s.o + (size_t)r * (size_t)len * es;
    int64_t rest = r, off = 0;
    bool hit = count > 0;
    for (int32_t j = last - 1; hit && j >= 0; --j) {
      int64_t k = sg_axis_pos(&s, j, rest % s.out->dims[j]);
      rest /= s.out->dims[j];
      if (k < 0) hit = false;
      else off += k * s.gst[j];
    }
    if (!hit) {
      memset(dst, 0, (size_t)len * es);
      continue;
    }
    const unsigned char *src = s.g + (size_t)off * es;
    if (step == 1 || count == 1) {
      memset(dst, 0, (size_t)first * es);
      memcpy(dst + (size_t)first * es, src, (size_t)count * es);
      memset(dst + (size_t)(first + count) * es, 0, (size_t)(len - first - count) * es);
    } else {
      memset(dst, 0, (size_t)len * es);
      for (int64_t k = 0; k < count; ++k)
        memcpy(dst + (size_t)(first + k * step) * es, src + (size_t)k * es, es);
    }
  }
}

void moai_grad_register_index(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_GATHER_GRAD] = gather_grad_ref;
    table[MOAI_KERNEL_SLICE_GRAD] = slice_grad_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_GATHER_GRAD] = gather_grad_opt;
    table[MOAI_KERNEL_SLICE_GRAD] = slice_grad_opt;
  }
}

void moai_kernels_register_grad_index(moai_isa_t isa, moai_kernel_fn_t *table) {
  moai_grad_register_index(isa, table);
  moai_grad_register_softmax(isa, table);
}
