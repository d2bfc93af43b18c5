/* Where (any dtype, selected by element size) and the variadic Max and Min
 * (every numeric dtype, numpy broadcasting over all inputs). Max and Min
 * follow np.maximum / np.minimum: a NaN operand gives NaN. */
#include "kernels/elementwise/loops.h"

/* ---- Where ---- */

#define DEF_WHERE(NAME, T)                                                      \
  static void NAME(void *o_, const uint8_t *c, const void *a_, const void *b_,  \
                   int64_t n, int64_t sc, int64_t sa, int64_t sb) {             \
    T *o = o_;                                                                  \
    const T *a = a_, *b = b_;                                                   \
    if (sc && sa && sb) {                                                       \
      for (int64_t i = 0; i < n; ++i) o[i] = c[i] ? a[i] : b[i];               \
    } else {                                                                    \
      for (int64_t i = 0; i < n; ++i) o[i] = c[i * sc] ? a[i * sa] : b[i * sb]; \
    }                                                                           \
  }
DEF_WHERE(where_1, uint8_t)
DEF_WHERE(where_2, uint16_t)
DEF_WHERE(where_4, uint32_t)
DEF_WHERE(where_8, uint64_t)

typedef void (*where_loop_t)(void *o, const uint8_t *c, const void *a, const void *b,
                             int64_t n, int64_t sc, int64_t sa, int64_t sb);

static where_loop_t where_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                                moai_ew_shape_t *s) {
  if (!moai_ew_check_arity(ex, op, ith, 3, 3, 1)) return NULL;
  const moai_tensor_t *c = moai_op_in(op, 0), *x = moai_op_in(op, 1), *y = moai_op_in(op, 2),
                      *out = moai_op_out(op, 0);
  if (c->dtype != MOAI_ABI_BOOL) {
    moai_ew_fail(ex, op, ith, "where: condition dtype %s, expected bool",
                 moai_ew_dtype_name(c->dtype));
    return NULL;
  }
  if (!moai_ew_dtype_ok(x->dtype)) {
    moai_ew_fail_dtype(ex, op, ith, x->dtype);
    return NULL;
  }
  if (y->dtype != x->dtype || out->dtype != x->dtype) {
    moai_ew_fail(ex, op, ith, "where: operand dtypes %s, %s -> %s do not match",
                 moai_ew_dtype_name(x->dtype), moai_ew_dtype_name(y->dtype),
                 moai_ew_dtype_name(out->dtype));
    return NULL;
  }
  if (!moai_ew_shape_init(s, ex, op, ith, out, 0, 3)) return NULL;
  switch (moai_ew_dtype_size(x->dtype)) {
    case 1: return where_1;
    case 2: return where_2;
    case 4: return where_4;
    default: return where_8;
  }
}

static void where_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_shape_t s;
  where_loop_t loop = where_setup(ex, op, ith, &s);
  if (!loop) return;
  const moai_tensor_t *c = moai_op_in(op, 0), *x = moai_op_in(op, 1), *y = moai_op_in(op, 2),
                      *out = moai_op_out(op, 0);
  const size_t es = moai_ew_dtype_size(x->dtype);
  const uint8_t *pc = moai_ew_ptr(ex, c);
  const unsigned char *px = moai_ew_ptr(ex, x), *py = moai_ew_ptr(ex, y);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(s.numel, ith, nth, &begin, &end);
  int64_t idx[MOAI_MAX_RANK];
  for (int64_t i = begin; i < end; ++i) {
    moai_ew_unravel(out, i, idx);
    const unsigned char *src = pc[moai_ew_ref_offset(out, c, idx)]
                                   ? px + (size_t)moai_ew_ref_offset(out, x, idx) * es
                                   : py + (size_t)moai_ew_ref_offset(out, y, idx) * es;
    memcpy(po + (size_t)i * es, src, es);
  }
}

typedef struct where_ctx_t {
  where_loop_t loop;
  unsigned char *o;
  const unsigned char *c, *x, *y;
  size_t es;
} where_ctx_t;

static int where_run(void *ctx, int64_t pos, int64_t n, const int64_t *off, const int64_t *inner) {
  const where_ctx_t *w = ctx;
  w->loop(w->o + (size_t)pos * w->es, w->c + off[0], w->x + (size_t)off[1] * w->es,
          w->y + (size_t)off[2] * w->es, n, inner[0], inner[1], inner[2]);
  return 0;
}

static void where_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_shape_t s;
  where_loop_t loop = where_setup(ex, op, ith, &s);
  if (!loop) return;
  int64_t strides[3][MOAI_MAX_RANK];
  for (uint32_t k = 0; k < 3; ++k) moai_ew_shape_strides(&s, moai_op_in(op, k), strides[k]);
  const moai_tensor_t *x = moai_op_in(op, 1);
  where_ctx_t w = {loop, moai_ew_ptr(ex, moai_op_out(op, 0)), moai_ew_ptr(ex, moai_op_in(op, 0)),
                   moai_ew_ptr(ex, x), moai_ew_ptr(ex, moai_op_in(op, 2)),
                   moai_ew_dtype_size(x->dtype)};
  long long begin, end;
  moai_split_range(s.numel, ith, nth, &begin, &end);
  moai_ew_walk(&s, 3, (const int64_t(*)[MOAI_MAX_RANK])strides, begin, end, where_run, &w);
}

/* ---- Max, Min ---- */

MOAI_EW_DEF_BINARY_NUMERIC(max, x >= y ? x : y, x >= y ? x : y, (x >= y || x != x) ? x : y)
MOAI_EW_DEF_BINARY_NUMERIC(min, x <= y ? x : y, x <= y ? x : y, (x <= y || x != x) ? x : y)

static const moai_ew_binary_loop_t max_loops[MOAI_EW_DTYPE_TABLE] = {MOAI_EW_NUMERIC_ENTRIES(max)};
static const moai_ew_binary_loop_t min_loops[MOAI_EW_DTYPE_TABLE] = {MOAI_EW_NUMERIC_ENTRIES(min)};

static moai_ew_binary_loop_t minmax_setup(const moai_exec_t *ex, const moai_op_desc_t *op,
                                          int ith, moai_ew_shape_t *s) {
  if (!moai_ew_check_arity(ex, op, ith, 1, UINT32_MAX, 1)) return NULL;
  const moai_tensor_t *out = moai_op_out(op, 0);
  const moai_ew_binary_loop_t *loops = op->kernel == MOAI_KERNEL_MAX ? max_loops : min_loops;
  moai_ew_binary_loop_t loop = MOAI_EW_LOOKUP(loops, out->dtype);
  if (!loop) {
    moai_ew_fail_dtype(ex, op, ith, out->dtype);
    return NULL;
  }
  for (uint32_t k = 0; k < op->n_in; ++k) {
    if (moai_op_in(op, k)->dtype != out->dtype) {
      moai_ew_fail(ex, op, ith, "%s: input %u has dtype %s, the output %s",
                   moai_kernel_name(op->kernel), k, moai_ew_dtype_name(moai_op_in(op, k)->dtype),
                   moai_ew_dtype_name(out->dtype));
      return NULL;
    }
  }
  if (!moai_ew_shape_init(s, ex, op, ith, out, 0, op->n_in)) return NULL;
  return loop;
}

static void minmax_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  moai_ew_shape_t s;
  moai_ew_binary_loop_t loop = minmax_setup(ex, op, ith, &s);
  if (!loop) return;
  const moai_tensor_t *out = moai_op_out(op, 0);
  const size_t es = moai_ew_dtype_size(out->dtype);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(s.numel, ith, nth, &begin, &end);
  int64_t idx[MOAI_MAX_RANK];
  for (int64_t i = begin; i < end; ++i) {
    moai_ew_unravel(out, i, idx);
    uint64_t acc = 0;
    for (uint32_t k = 0; k < op->n_in; ++k) {
      const moai_tensor_t *in = moai_op_in(op, k);
      const unsigned char *p = moai_ew_ptr(ex, in) + (size_t)moai_ew_ref_offset(out, in, idx) * es;
      if (k == 0) memcpy(&acc, p, es);
      else loop(&acc, &acc, p, 1, 0, 0);
    }
    memcpy(po + (size_t)i * es, &acc, es);
  }
}

typedef struct minmax_ctx_t {
  moai_ew_binary_loop_t loop;
  unsigned char *o;
  const unsigned char *in[MOAI_EW_MAX_IN];
  uint32_t n_in;
  size_t es;
} minmax_ctx_t;

static int minmax_run(void *ctx, int64_t pos, int64_t n, const int64_t *off, const int64_t *inner) {
  const minmax_ctx_t *m = ctx;
  unsigned char *o = m->o + (size_t)pos * m->es;
  const size_t es = m->es;
  if (m->n_in <= 2) { /* o may alias an input element for element: fine */
    uint32_t k1 = m->n_in == 2;
    m->loop(o, m->in[0] + (size_t)off[0] * es, m->in[k1] + (size_t)off[k1] * es, n,
            inner[0], inner[k1]);
    return 0;
  }
  /* More inputs: fold into a block on the stack, so that an output aliasing
   * a later input is not overwritten before it is read. */
  uint64_t tmp[MOAI_EW_BLOCK];
  for (int64_t i = 0; i < n; i += MOAI_EW_BLOCK) {
    int64_t c = n - i < MOAI_EW_BLOCK ? n - i : MOAI_EW_BLOCK;
    m->loop(tmp, m->in[0] + (size_t)(off[0] + i * inner[0]) * es,
            m->in[1] + (size_t)(off[1] + i * inner[1]) * es, c, inner[0], inner[1]);
    for (uint32_t k = 2; k < m->n_in; ++k)
      m->loop(tmp, tmp, m->in[k] + (size_t)(off[k] + i * inner[k]) * es, c, 1, inner[k]);
    memcpy(o + (size_t)i * es, tmp, (size_t)c * es);
  }
  return 0;
}

static void minmax_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  if (op->n_in > MOAI_EW_MAX_IN) {
    minmax_ref(ex, op, ith, nth);
    return;
  }
  moai_ew_shape_t s;
  moai_ew_binary_loop_t loop = minmax_setup(ex, op, ith, &s);
  if (!loop) return;
  const moai_tensor_t *out = moai_op_out(op, 0);
  minmax_ctx_t m = {loop, moai_ew_ptr(ex, out), {NULL}, op->n_in, moai_ew_dtype_size(out->dtype)};
  int64_t strides[MOAI_EW_MAX_IN][MOAI_MAX_RANK];
  for (uint32_t k = 0; k < op->n_in; ++k) {
    m.in[k] = moai_ew_ptr(ex, moai_op_in(op, k));
    moai_ew_shape_strides(&s, moai_op_in(op, k), strides[k]);
  }
  long long begin, end;
  moai_split_range(s.numel, ith, nth, &begin, &end);
  moai_ew_walk(&s, (int)op->n_in, (const int64_t(*)[MOAI_MAX_RANK])strides, begin, end,
               minmax_run, &m);
}

void moai_ew_register_where_minmax(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_WHERE] = where_ref;
    table[MOAI_KERNEL_MAX] = minmax_ref;
    table[MOAI_KERNEL_MIN] = minmax_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_WHERE] = where_opt;
    table[MOAI_KERNEL_MAX] = minmax_opt;
    table[MOAI_KERNEL_MIN] = minmax_opt;
  }
}
