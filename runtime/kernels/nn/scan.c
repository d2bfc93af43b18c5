/* CumSum and Trilu (ONNX opset 21).
 *
 * cumsum: running sum along `axis` (the input viewed as [outer, L, inner]);
 * exclusive shifts it by one (the first output is 0), reverse runs from the
 * end. f32, f64, int32, int64, uint32, uint64; integers wrap around. The
 * optimised kernel carries SCAN_CHUNK independent running sums across the
 * inner axis so that each step is a contiguous vector add.
 *
 * trilu: keeps the upper (j - i >= k) or lower (j - i <= k) triangle of the
 * last two axes and zeroes the rest; any dtype (it only moves bytes). The
 * optimised kernel copies and clears whole row segments; both allow y == x.
 *
 * CumSum's axis and Trilu's k may come as operand 1 at run time
 * (runtime_axis, runtime_k; params.h): every thread reads it itself. */
#include <stddef.h>

#include "kernels/nn/nn_internal.h"
#include "kernels/params.h"

enum { SCAN_CHUNK = 64 };

typedef struct cumsum_problem_t {
  int64_t outer, len, inner;
  int exclusive, reverse;
  const void *x;
  void *y;
} cumsum_problem_t;

/* Reference: one line at a time; ACC is double for floats and a 64-bit
 * unsigned integer for integers (wrapping, then truncated to T). */
#define CUMSUM_REF(name, T, ACC)                                                  \
  static void name(const cumsum_problem_t *p, int ith, int nth) {                 \
    const T *X = p->x;                                                            \
    T *Y = p->y;                                                                  \
    long long begin, end;                                                         \
    moai_split_range(p->outer * p->inner, ith, nth, &begin, &end);                \
    for (long long line = begin; line < end; ++line) {                            \
      int64_t base = (line / p->inner) * p->len * p->inner + line % p->inner;     \
      ACC acc = 0;                                                                \
      for (int64_t t = 0; t < p->len; ++t) {                                      \
        int64_t a = p->reverse ? p->len - 1 - t : t;                              \
        ACC v = (ACC)X[base + a * p->inner];                                      \
        if (p->exclusive) {                                                       \
          Y[base + a * p->inner] = (T)acc;                                        \
          acc += v;                                                               \
        } else {                                                                  \
          acc += v;                                                               \
          Y[base + a * p->inner] = (T)acc;                                        \
        }                                                                         \
      }                                                                           \
    }                                                                             \
  }

CUMSUM_REF(cumsum_ref_f32, float, double)
CUMSUM_REF(cumsum_ref_f64, double, double)
CUMSUM_REF(cumsum_ref_i32, int32_t, uint64_t)
CUMSUM_REF(cumsum_ref_i64, int64_t, uint64_t)
CUMSUM_REF(cumsum_ref_u32, uint32_t, uint64_t)
CUMSUM_REF(cumsum_ref_u64, uint64_t, uint64_t)

/* Optimised: SCAN_CHUNK lines of the inner axis at once. T is the storage
 * type (unsigned for integers: same bits, defined wrap-around). The values
 * are read before the outputs are written, so y may alias x. */
#define CUMSUM_OPT(name, T)                                                       \
  static void name(const cumsum_problem_t *p, int ith, int nth) {                 \
    int64_t nchunk = moai_nn_cdiv(p->inner, SCAN_CHUNK);                          \
    long long begin, end;                                                         \
    moai_split_range(p->outer * nchunk, ith, nth, &begin, &end);                  \
    for (long long u = begin; u < end; ++u) {                                     \
      int64_t o = u / nchunk, i0 = (u % nchunk) * SCAN_CHUNK;                     \
      int64_t ni = p->inner - i0 < SCAN_CHUNK ? p->inner - i0 : SCAN_CHUNK;       \
      const T *xb = (const T *)p->x + o * p->len * p->inner + i0;                 \
      T *yb = (T *)p->y + o * p->len * p->inner + i0;                             \
      T acc[SCAN_CHUNK], v[SCAN_CHUNK];                                           \
      for (int64_t i = 0; i < ni; ++i) acc[i] = 0;                                \
      for (int64_t t = 0; t < p->len; ++t) {                                      \
        int64_t off = (p->reverse ? p->len - 1 - t : t) * p->inner;               \
        for (int64_t i = 0; i < ni; ++i) v[i] = xb[off + i];                      \
        if (p->exclusive) {                                                       \
          for (int64_t i = 0; i < ni; ++i) {                                      \
            yb[off + i] = acc[i];                                                 \
            acc[i] += v[i];                                                       \
          }                                                                       \
        } else {                                                                  \
          for (int64_t i = 0; i < ni; ++i) {                                      \
            acc[i] += v[i];                                                       \
            yb[off + i] = acc[i];                                                 \
          }                                                                       \
        }                                                                         \
      }                                                                           \
    }                                                                             \
  }

CUMSUM_OPT(cumsum_opt_f32, float)
CUMSUM_OPT(cumsum_opt_f64, double)
CUMSUM_OPT(cumsum_opt_u32, uint32_t)
CUMSUM_OPT(cumsum_opt_u64, uint64_t)

typedef void (*cumsum_fn_t)(const cumsum_problem_t *p, int ith, int nth);

static const cumsum_fn_t cumsum_ref_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = cumsum_ref_f32, [MOAI_ABI_F64] = cumsum_ref_f64,
    [MOAI_ABI_I32] = cumsum_ref_i32, [MOAI_ABI_I64] = cumsum_ref_i64,
    [MOAI_ABI_U32] = cumsum_ref_u32, [MOAI_ABI_U64] = cumsum_ref_u64};
static const cumsum_fn_t cumsum_opt_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = cumsum_opt_f32, [MOAI_ABI_F64] = cumsum_opt_f64,
    [MOAI_ABI_I32] = cumsum_opt_u32, [MOAI_ABI_I64] = cumsum_opt_u64,
    [MOAI_ABI_U32] = cumsum_opt_u32, [MOAI_ABI_U64] = cumsum_opt_u64};

/* Reports "<kernel>: <err>" once (thread 0). */
static void scan_fail(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                      const char *kernel, const char *err) {
  if (ith != 0) return;
  char msg[224];
  snprintf(msg, sizeof msg, "%s: %s", kernel, err);
  moai_kernel_fail(ex, op, msg);
}

/* Loads the attribute struct (fields an older compiler did not write read
 * as zero). */
static bool scan_attrs(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                       const char *kernel, void *attrs, size_t size, size_t min_size) {
  if (!moai_kernel_attrs_load(op, attrs, size, min_size)) {
    scan_fail(ex, op, ith, kernel, "missing attributes");
    return false;
  }
  return true;
}

/* The operands: x (and the runtime parameter when `runtime`), one output of
 * x's dtype and dims. */
static bool scan_operands(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                          const char *kernel, bool runtime) {
  const uint32_t n_in = runtime ? 2 : 1;
  if (op->n_in != n_in || op->n_out != 1) {
    char err[96];
    snprintf(err, sizeof err, "expected %u inputs and 1 output, got %u and %u", n_in, op->n_in,
             op->n_out);
    scan_fail(ex, op, ith, kernel, err);
    return false;
  }
  const moai_tensor_t *x = moai_op_in(op, 0), *y = moai_op_out(op, 0);
  bool ok = x->region < MOAI_REGION_COUNT && y->region < MOAI_REGION_COUNT &&
            x->rank >= 0 && x->rank <= MOAI_MAX_RANK && y->rank == x->rank &&
            y->dtype == x->dtype;
  for (int32_t d = 0; ok && d < x->rank; ++d) ok = x->dims[d] >= 0 && y->dims[d] == x->dims[d];
  if (!ok) scan_fail(ex, op, ith, kernel, "the output's dtype or dims differ from the input's");
  return ok;
}

static void cumsum_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                       const cumsum_fn_t *table) {
  moai_attrs_cumsum_t at;
  if (!scan_attrs(ex, op, ith, "cumsum", &at, sizeof at,
                  offsetof(moai_attrs_cumsum_t, runtime_axis)) ||
      !scan_operands(ex, op, ith, "cumsum", at.runtime_axis != 0))
    return;
  const moai_tensor_t *tx = moai_op_in(op, 0);
  cumsum_fn_t fn = MOAI_NN_LOOKUP(table, tx->dtype);
  if (!fn) {
    moai_nn_fail_dtype(ex, op, ith, "cumsum", tx->dtype);
    return;
  }
  char err[160];
  int64_t axis = at.axis;
  if (at.runtime_axis &&
      !moai_params_read_scalar(ex, moai_op_in(op, 1), "axis", &axis, err, sizeof err)) {
    scan_fail(ex, op, ith, "cumsum", err);
    return;
  }
  /* a folded axis is already non-negative; a runtime one may count from the end */
  if (!moai_params_axis(axis, tx->rank, "axis", &axis, err, sizeof err)) {
    scan_fail(ex, op, ith, "cumsum", err);
    return;
  }
  cumsum_problem_t p = {1, 1, 1, at.exclusive, at.reverse, moai_tensor_ptr(ex, tx),
                        moai_tensor_ptr(ex, moai_op_out(op, 0))};
  for (int32_t d = 0; d < tx->rank; ++d) {
    if (d < axis)
      p.outer *= tx->dims[d];
    else if (d == axis)
      p.len = tx->dims[d];
    else
      p.inner *= tx->dims[d];
  }
  fn(&p, ith, nth);
}

static void cumsum_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  cumsum_run(ex, op, ith, nth, cumsum_ref_by_dtype);
}
static void cumsum_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  cumsum_run(ex, op, ith, nth, cumsum_opt_by_dtype);
}

/* ---- trilu ---- */

typedef struct trilu_problem_t {
  int64_t mats, rows, cols, k;
  int upper;
  size_t esize;
  const unsigned char *x;
  unsigned char *y;
} trilu_problem_t;

static int trilu_keep(const trilu_problem_t *p, int64_t i, int64_t j) {
  return p->upper ? j - i >= p->k : j - i <= p->k;
}

/* Reference: element by element, byte copies. */
static void trilu_ref_run(const trilu_problem_t *p, int ith, int nth) {
  long long begin, end;
  moai_split_range(p->mats * p->rows * p->cols, ith, nth, &begin, &end);
  for (long long e = begin; e < end; ++e) {
    int64_t j = e % p->cols, i = (e / p->cols) % p->rows;
    for (size_t b = 0; b < p->esize; ++b)
      p->y[(size_t)e * p->esize + b] = trilu_keep(p, i, j) ? p->x[(size_t)e * p->esize + b] : 0;
  }
}

/* Optimised: per row, the kept columns are one contiguous range. */
static void trilu_opt_run(const trilu_problem_t *p, int ith, int nth) {
  long long begin, end;
  moai_split_range(p->mats * p->rows, ith, nth, &begin, &end);
  size_t row_bytes = (size_t)p->cols * p->esize;
  for (long long r = begin; r < end; ++r) {
    int64_t i = r % p->rows, lo, hi; /* kept: [lo, hi) */
    if (p->upper) {
      lo = i + p->k;
      hi = p->cols;
    } else {
      lo = 0;
      hi = i + p->k + 1;
    }
    lo = lo < 0 ? 0 : lo > p->cols ? p->cols : lo;
    hi = hi < lo ? lo : hi > p->cols ? p->cols : hi;
    const unsigned char *xr = p->x + (size_t)r * row_bytes;
    unsigned char *yr = p->y + (size_t)r * row_bytes;
    memset(yr, 0, (size_t)lo * p->esize);
    if (yr != xr) memcpy(yr + (size_t)lo * p->esize, xr + (size_t)lo * p->esize,
                         (size_t)(hi - lo) * p->esize);
    memset(yr + (size_t)hi * p->esize, 0, (size_t)(p->cols - hi) * p->esize);
  }
}

static void trilu_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                      void (*fn)(const trilu_problem_t *p, int ith, int nth)) {
  moai_attrs_trilu_t at;
  if (!scan_attrs(ex, op, ith, "trilu", &at, sizeof at, offsetof(moai_attrs_trilu_t, runtime_k)) ||
      !scan_operands(ex, op, ith, "trilu", at.runtime_k != 0))
    return;
  const moai_tensor_t *tx = moai_op_in(op, 0);
  size_t esize = moai_nn_dtype_size(tx->dtype);
  if (!esize) {
    moai_nn_fail_dtype(ex, op, ith, "trilu", tx->dtype);
    return;
  }
  if (tx->rank < 2) {
    if (ith == 0) moai_kernel_fail(ex, op, "trilu: input rank below 2");
    return;
  }
  int64_t k = at.k;
  char err[160];
  if (at.runtime_k && !moai_params_read_scalar(ex, moai_op_in(op, 1), "k", &k, err, sizeof err)) {
    scan_fail(ex, op, ith, "trilu", err);
    return;
  }
  trilu_problem_t p = {1, tx->dims[tx->rank - 2], tx->dims[tx->rank - 1], k, at.upper,
                       esize, moai_tensor_ptr(ex, tx), moai_tensor_ptr(ex, moai_op_out(op, 0))};
  for (int32_t d = 0; d < tx->rank - 2; ++d) p.mats *= tx->dims[d];
  /* beyond +-(rows + cols) every k is the same; clamping keeps i + k exact */
  int64_t kmax = p.rows + p.cols;
  p.k = p.k > kmax ? kmax : p.k < -kmax ? -kmax : p.k;
  fn(&p, ith, nth);
}

static void trilu_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  trilu_run(ex, op, ith, nth, trilu_ref_run);
}
static void trilu_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  trilu_run(ex, op, ith, nth, trilu_opt_run);
}

void moai_nn_register_scan(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_CUMSUM] = cumsum_ref;
    table[MOAI_KERNEL_TRILU] = trilu_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_CUMSUM] = cumsum_opt;
    table[MOAI_KERNEL_TRILU] = trilu_opt;
  }
}
