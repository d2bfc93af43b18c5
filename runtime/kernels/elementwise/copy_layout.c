/* Data movement that is one strided read of the input per output element:
 * Copy (reshape and friends; in == out is a no-op, the memory planner
 * aliases views), Expand (numpy broadcast), Transpose (perm) and Slice
 * (per-axis start and step, counts from the output dims, negative steps).
 * Any dtype: elements are moved as bytes. Slice's starts/ends/axes/steps
 * may also come as operands at run time (runtime_params, params.h).
 *
 * The optimised versions describe the op as output dims plus an input
 * stride per output axis, collapse axes that stay contiguous, and copy runs
 * along the innermost axis: memcpy for stride 1, a fill for stride 0, a
 * typed strided loop otherwise; transposes of the innermost axis copy
 * square tiles instead. */
#include <stdio.h>

#include "kernels/elementwise/ew.h"
#include "kernels/params.h"

typedef struct strided_t {
  int rank;
  int64_t dims[MOAI_MAX_RANK]; /* output dims */
  int64_t st[MOAI_MAX_RANK];   /* input element stride per output axis */
  int64_t base;                /* input element offset of output element 0 */
  size_t es;                   /* element bytes */
} strided_t;

/* Drops size-1 axes and merges axis j into j+1 when st[j] == st[j+1]*dims[j+1]. */
static void strided_collapse(strided_t *s) {
  int r = 0;
  for (int j = 0; j < s->rank; ++j) {
    if (s->dims[j] == 1) continue;
    if (r > 0 && s->st[r - 1] == s->st[j] * s->dims[j]) {
      s->dims[r - 1] *= s->dims[j];
      s->st[r - 1] = s->st[j];
    } else {
      s->dims[r] = s->dims[j];
      s->st[r] = s->st[j];
      r++;
    }
  }
  if (r == 0) {
    s->dims[0] = 1;
    s->st[0] = 0;
    r = 1;
  }
  s->rank = r;
}

#define DEF_STRIDED(NAME, T)                                                   \
  static void NAME(void *o_, const void *x_, int64_t n, int64_t st) {          \
    T *o = o_;                                                                 \
    const T *x = x_;                                                           \
    for (int64_t i = 0; i < n; ++i) o[i] = x[i * st];                          \
  }
DEF_STRIDED(strided_1, uint8_t)
DEF_STRIDED(strided_2, uint16_t)
DEF_STRIDED(strided_4, uint32_t)
DEF_STRIDED(strided_8, uint64_t)

static void copy_run(unsigned char *o, const unsigned char *x, int64_t n, int64_t st, size_t es) {
  if (st == 1) {
    memcpy(o, x, (size_t)n * es);
  } else if (st == 0 && es == 1) {
    memset(o, x[0], (size_t)n);
  } else {
    switch (es) {
      case 1: strided_1(o, x, n, st); break;
      case 2: strided_2(o, x, n, st); break;
      case 4: strided_4(o, x, n, st); break;
      default: strided_8(o, x, n, st); break;
    }
  }
}

/* Copies output elements [begin, end). */
static void strided_copy(const strided_t *s, unsigned char *out, const unsigned char *in,
                         int64_t begin, int64_t end) {
  if (begin >= end) return;
  const int r = s->rank;
  int64_t idx[MOAI_MAX_RANK], rest = begin;
  for (int j = r - 1; j >= 0; --j) {
    idx[j] = rest % s->dims[j];
    rest /= s->dims[j];
  }
  for (int64_t pos = begin; pos < end;) {
    int64_t n = s->dims[r - 1] - idx[r - 1];
    if (n > end - pos) n = end - pos;
    int64_t off = s->base;
    for (int j = 0; j < r; ++j) off += idx[j] * s->st[j];
    copy_run(out + (size_t)pos * s->es, in + off * (int64_t)s->es, n, s->st[r - 1], s->es);
    pos += n;
    idx[r - 1] += n;
    for (int j = r - 1; j > 0 && idx[j] >= s->dims[j]; --j) {
      idx[j] = 0;
      idx[j - 1]++;
    }
  }
}

/* Tiled copy for a transpose of the innermost axis: output axis p reads the
 * input contiguously (st[p] == 1) while the innermost output axis strides
 * through it. Copying TILE x TILE blocks of the (p, last) plane uses every
 * input cache line TILE times while it is hot, where run-by-run copying
 * would fetch a line per element. Threads split the tiles. */
#define TILE 16
#define DEF_TILE(NAME, T)                                                                \
  static void NAME(unsigned char *o_, const unsigned char *x_, int64_t ni, int64_t nj,   \
                   int64_t ostride, int64_t istride) {                                   \
    T *o = (T *)o_;                                                                      \
    const T *x = (const T *)x_;                                                          \
    for (int64_t i = 0; i < ni; ++i)                                                     \
      for (int64_t j = 0; j < nj; ++j) o[i * ostride + j] = x[i + j * istride];          \
  }
DEF_TILE(tile_1, uint8_t)
DEF_TILE(tile_2, uint16_t)
DEF_TILE(tile_4, uint32_t)
DEF_TILE(tile_8, uint64_t)

static void strided_copy_tiled(const strided_t *s, int p, unsigned char *out,
                               const unsigned char *in, int ith, int nth) {
  const int r = s->rank;
  const int64_t dp = s->dims[p], dl = s->dims[r - 1];
  const int64_t tp = (dp + TILE - 1) / TILE, tl = (dl + TILE - 1) / TILE;
  int64_t ost[MOAI_MAX_RANK], acc = 1; /* output element strides */
  for (int j = r - 1; j >= 0; --j) {
    ost[j] = acc;
    acc *= s->dims[j];
  }
  const int64_t outer = acc / (dp * dl);
  long long begin, end;
  moai_split_range(outer * tp * tl, ith, nth, &begin, &end);
  void (*tile)(unsigned char *, const unsigned char *, int64_t, int64_t, int64_t, int64_t) =
      s->es == 1 ? tile_1 : s->es == 2 ? tile_2 : s->es == 4 ? tile_4 : tile_8;
  for (int64_t t = begin; t < end; ++t) {
    int64_t rest = t / (tp * tl), ti = (t / tl) % tp, tj = t % tl;
    int64_t ooff = 0, ioff = s->base;
    for (int j = r - 2; j >= 0; --j) { /* the outer axes: all but p and last */
      if (j == p) continue;
      int64_t idx = rest % s->dims[j];
      rest /= s->dims[j];
      ooff += idx * ost[j];
      ioff += idx * s->st[j];
    }
    int64_t i0 = ti * TILE, j0 = tj * TILE;
    int64_t ni = dp - i0 < TILE ? dp - i0 : TILE, nj = dl - j0 < TILE ? dl - j0 : TILE;
    ooff += i0 * ost[p] + j0;
    ioff += i0 + j0 * s->st[r - 1];
    tile(out + ooff * (int64_t)s->es, in + ioff * (int64_t)s->es, ni, nj, ost[p], s->st[r - 1]);
  }
}

static void strided_run(const moai_exec_t *ex, const moai_op_desc_t *op, strided_t *s,
                        int ith, int nth) {
  const moai_tensor_t *out = moai_op_out(op, 0);
  unsigned char *po = moai_ew_ptr(ex, out);
  const unsigned char *px = moai_ew_ptr(ex, moai_op_in(op, 0));
  strided_collapse(s);
  const int r = s->rank;
  int p = -1;
  if (r >= 2 && s->st[r - 1] != 1 && s->st[r - 1] != 0 && moai_tensor_numel(out) > 0)
    for (int j = 0; j < r - 1; ++j)
      if (s->st[j] == 1) p = j;
  if (p >= 0) {
    strided_copy_tiled(s, p, po, px, ith, nth);
    return;
  }
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  strided_copy(s, po, px, begin, end);
}

/* Row-major element strides of t. */
static void contiguous_strides(const moai_tensor_t *t, int64_t *st) {
  int64_t acc = 1;
  for (int32_t j = t->rank - 1; j >= 0; --j) {
    st[j] = acc;
    acc *= t->dims[j];
  }
}

/* Checks the data input (and min_in..max_in inputs in all), one output of
 * the data's dtype. */
static bool layout_setup_n(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                           uint32_t min_in, uint32_t max_in) {
  if (!moai_ew_check_arity(ex, op, ith, min_in, max_in, 1)) return false;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  if (!moai_ew_dtype_ok(x->dtype)) {
    moai_ew_fail_dtype(ex, op, ith, x->dtype);
    return false;
  }
  if (out->dtype != x->dtype) {
    moai_ew_fail(ex, op, ith, "%s: output dtype %s differs from the input's %s",
                 moai_kernel_name(op->kernel), moai_ew_dtype_name(out->dtype),
                 moai_ew_dtype_name(x->dtype));
    return false;
  }
  return true;
}

static bool layout_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith) {
  return layout_setup_n(ex, op, ith, 1, 1);
}

/* ---- Copy ---- */

static bool copy_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith) {
  if (!layout_setup(ex, op, ith)) return false;
  if (moai_tensor_numel(moai_op_in(op, 0)) != moai_tensor_numel(moai_op_out(op, 0))) {
    moai_ew_fail(ex, op, ith, "copy: input and output sizes differ");
    return false;
  }
  return true;
}

static void copy_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                        bool reference) {
  if (!copy_setup(ex, op, ith)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  const unsigned char *px = moai_ew_ptr(ex, x);
  unsigned char *po = moai_ew_ptr(ex, out);
  if (px == po) return; /* an aliased view: nothing to move */
  const size_t es = moai_ew_dtype_size(x->dtype);
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  if (reference) {
    for (int64_t i = begin; i < end; ++i) memcpy(po + (size_t)i * es, px + (size_t)i * es, es);
  } else if (end > begin) {
    memcpy(po + (size_t)begin * es, px + (size_t)begin * es, (size_t)(end - begin) * es);
  }
}
static void copy_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  copy_kernel(ex, op, ith, nth, true);
}
static void copy_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  copy_kernel(ex, op, ith, nth, false);
}

/* ---- Expand ---- */

static void expand_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_shape_t s;
  if (!layout_setup(ex, op, ith)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  if (!moai_ew_shape_init(&s, ex, op, ith, out, 0, 1)) return;
  const size_t es = moai_ew_dtype_size(x->dtype);
  const unsigned char *px = moai_ew_ptr(ex, x);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(s.numel, ith, nth, &begin, &end);
  int64_t idx[MOAI_MAX_RANK];
  for (int64_t i = begin; i < end; ++i) {
    moai_ew_unravel(out, i, idx);
    memcpy(po + (size_t)i * es, px + (size_t)moai_ew_ref_offset(out, x, idx) * es, es);
  }
}

static void expand_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_shape_t s;
  if (!layout_setup(ex, op, ith)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  if (!moai_ew_shape_init(&s, ex, op, ith, out, 0, 1)) return;
  strided_t t = {.rank = s.rank, .base = 0, .es = moai_ew_dtype_size(x->dtype)};
  memcpy(t.dims, s.dims, sizeof t.dims);
  moai_ew_shape_strides(&s, x, t.st);
  strided_run(ex, op, &t, ith, nth);
}

/* ---- Transpose: out dims[i] = in dims[perm[i]] ---- */

static bool transpose_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                            moai_attrs_transpose_t *a) {
  if (!layout_setup(ex, op, ith)) return false;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  if (op->attrs_size < sizeof *a) {
    moai_ew_fail(ex, op, ith, "transpose: missing attributes");
    return false;
  }
  memcpy(a, moai_op_attrs(op), sizeof *a);
  bool ok = out->rank == x->rank;
  unsigned seen = 0;
  for (int32_t i = 0; ok && i < out->rank; ++i) {
    int64_t p = a->perm[i];
    ok = p >= 0 && p < x->rank && !(seen & (1u << p)) && out->dims[i] == x->dims[p];
    if (ok) seen |= 1u << p;
  }
  if (!ok) moai_ew_fail(ex, op, ith, "transpose: perm does not map the input to the output");
  return ok;
}

static void transpose_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_attrs_transpose_t a;
  if (!transpose_setup(ex, op, ith, &a)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  const size_t es = moai_ew_dtype_size(x->dtype);
  int64_t xst[MOAI_MAX_RANK], idx[MOAI_MAX_RANK];
  contiguous_strides(x, xst);
  const unsigned char *px = moai_ew_ptr(ex, x);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  for (int64_t i = begin; i < end; ++i) {
    moai_ew_unravel(out, i, idx);
    int64_t off = 0;
    for (int32_t j = 0; j < out->rank; ++j) off += idx[j] * xst[a.perm[j]];
    memcpy(po + (size_t)i * es, px + (size_t)off * es, es);
  }
}

static void transpose_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_attrs_transpose_t a;
  if (!transpose_setup(ex, op, ith, &a)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  int64_t xst[MOAI_MAX_RANK];
  contiguous_strides(x, xst);
  strided_t t = {.rank = out->rank, .base = 0, .es = moai_ew_dtype_size(x->dtype)};
  for (int32_t i = 0; i < out->rank; ++i) {
    t.dims[i] = out->dims[i];
    t.st[i] = xst[a.perm[i]];
  }
  strided_run(ex, op, &t, ith, nth);
}

/* ---- Slice: out[idx] = in[start + idx * step] per axis ---- */

/* runtime_params: starts, ends, axes?, steps? from operands 1..4, normalised
 * into a's per-axis start and step; the counts they give must be the
 * output's dims. */
static bool slice_runtime(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                          moai_attrs_slice_t *a) {
  static const char *const names[4] = {"starts", "ends", "axes", "steps"};
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  int64_t v[4][MOAI_MAX_RANK], count[MOAI_MAX_RANK];
  size_t n[4] = {0, 0, 0, 0};
  bool present[4] = {false, false, false, false};
  char err[160], got[96], want[96];
  for (uint32_t i = 0; i < 4; ++i) {
    const moai_tensor_t *t = i + 1 < op->n_in ? moai_op_in(op, i + 1) : NULL;
    present[i] = t && t->region != MOAI_REGION_NONE;
    if (present[i] &&
        !moai_params_read_ints(ex, t, names[i], v[i], MOAI_MAX_RANK, &n[i], err, sizeof err))
      goto fail;
  }
  if (n[1] != n[0] || (present[2] && n[2] != n[0]) || (present[3] && n[3] != n[0])) {
    snprintf(err, sizeof err, "starts, ends, axes and steps differ in length (%zu, %zu, %zu, %zu)",
             n[0], n[1], n[2], n[3]);
    goto fail;
  }
  if (!moai_params_slice(x->rank, x->dims, n[0], v[0], v[1], present[2] ? v[2] : NULL,
                         present[3] ? v[3] : NULL, a->start, a->step, count, err, sizeof err))
    goto fail;
  if (memcmp(count, out->dims, (size_t)x->rank * sizeof(int64_t)) != 0) {
    snprintf(err, sizeof err, "the runtime starts/ends/axes/steps select %s, the output is %s",
             moai_params_dims_str(x->rank, count, got, sizeof got),
             moai_params_dims_str(out->rank, out->dims, want, sizeof want));
    goto fail;
  }
  return true;
fail:
  moai_ew_fail(ex, op, ith, "slice: %s", err);
  return false;
}

static bool slice_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                        moai_attrs_slice_t *a) {
  if (!moai_kernel_attrs_load(op, a, sizeof *a, offsetof(moai_attrs_slice_t, runtime_params))) {
    moai_ew_fail(ex, op, ith, "slice: missing attributes");
    return false;
  }
  const bool runtime = a->runtime_params != 0;
  if (!layout_setup_n(ex, op, ith, runtime ? 3 : 1, runtime ? 5 : 1)) return false;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  if (out->rank != x->rank) {
    moai_ew_fail(ex, op, ith, "slice: input and output ranks differ");
    return false;
  }
  if (runtime && !slice_runtime(ex, op, ith, a)) return false;
  for (int32_t j = 0; j < x->rank; ++j) {
    if (out->dims[j] == 0) continue;
    /* the first and last index read must lie inside the input */
    int64_t first = a->start[j], span, last;
    bool overflow = __builtin_mul_overflow(out->dims[j] - 1, a->step[j], &span) ||
                    __builtin_add_overflow(first, span, &last);
    if (overflow || first < 0 || first >= x->dims[j] || last < 0 || last >= x->dims[j] ||
        (a->step[j] == 0 && out->dims[j] > 1)) {
      moai_ew_fail(ex, op, ith, "slice: axis %d reads outside the input", (int)j);
      return false;
    }
  }
  return true;
}

static void slice_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_attrs_slice_t a;
  if (!slice_setup(ex, op, ith, &a)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  const size_t es = moai_ew_dtype_size(x->dtype);
  int64_t xst[MOAI_MAX_RANK], idx[MOAI_MAX_RANK];
  contiguous_strides(x, xst);
  const unsigned char *px = moai_ew_ptr(ex, x);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  for (int64_t i = begin; i < end; ++i) {
    moai_ew_unravel(out, i, idx);
    int64_t off = 0;
    for (int32_t j = 0; j < out->rank; ++j) off += (a.start[j] + idx[j] * a.step[j]) * xst[j];
    memcpy(po + (size_t)i * es, px + (size_t)off * es, es);
  }
}

static void slice_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_attrs_slice_t a;
  if (!slice_setup(ex, op, ith, &a)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  int64_t xst[MOAI_MAX_RANK];
  contiguous_strides(x, xst);
  strided_t t = {.rank = out->rank, .base = 0, .es = moai_ew_dtype_size(x->dtype)};
  for (int32_t j = 0; j < out->rank; ++j) {
    t.dims[j] = out->dims[j];
    /* a step only matters along an axis of two or more elements, where
     * slice_setup bounded it by the input's dim; elsewhere it may be any
     * int64 (a step of INT64_MAX takes one element) and must not be scaled */
    t.st[j] = out->dims[j] > 1 ? a.step[j] * xst[j] : 0;
    t.base += a.start[j] * xst[j];
  }
  strided_run(ex, op, &t, ith, nth);
}

void moai_ew_register_copy_layout(moai_isa_t isa, moai_kernel_fn_t *table) {
#define SET(ID, NAME) table[MOAI_KERNEL_##ID] = isa == MOAI_ISA_REFERENCE ? NAME##_ref : NAME##_opt;
  if (isa != MOAI_ISA_REFERENCE && isa != MOAI_ISA_GENERIC) return;
  SET(COPY, copy) SET(EXPAND, expand) SET(TRANSPOSE, transpose) SET(SLICE, slice)
#undef SET
}
