/* ReduceSum, ReduceMean, ReduceMax over the axes in axes_mask (bit i =
 * input axis i; mask 0 reduces nothing: a copy), or over axes read from
 * operand 1 at run time (runtime_axes, params.h); keepdims only shapes the
 * output, whose elements follow the kept axes in order. dtypes: f32, f64,
 * f16, bf16 and every integer (ReduceMax also bool).
 *  - floats accumulate in double (f16/bf16/f32 results round once); Mean
 *    divides the double sum; Max propagates NaN (np.max);
 *  - integers sum in 64-bit wrapping arithmetic (equal modulo 2^bits to a
 *    sum in the dtype), Mean truncates toward zero;
 *  - an empty reduction (a reduced axis of size 0) gives 0 for Sum, NaN for
 *    float Mean (0 for integers), and the lowest value (-inf) for Max.
 * The optimised version collapses the axes into alternating kept/reduced
 * groups and either reduces contiguous rows (innermost group reduced: 8
 * independent lanes, which vectorise) or accumulates contiguous columns
 * into a block of outputs (innermost group kept). Float sums may differ
 * from the reference's order in the last bit of the double, so rarely in
 * the last bit of an f32 result; integer and Max results are identical. A
 * reduction to a single output runs on one thread. */
#include <math.h>
#include <stdio.h>

#include "kernels/elementwise/ew.h"
#include "kernels/params.h"

typedef union acc_t {
  double f;
  int64_t i;
  uint64_t u;
} acc_t;

enum { RED_SUM, RED_MEAN, RED_MAX };

typedef void (*row_fn_t)(acc_t *acc, const void *x, int64_t n);
typedef void (*cols_fn_t)(acc_t *acc, const void *x, int64_t n);

/* max(a, v) keeping NaN, through a bit mask: with ?: GCC keeps a branch
 * (comparisons may trap) and the loop does not vectorise. */
static inline double fmax_nan(double a, double v) {
  uint64_t m = 0u - (uint64_t)((v > a) | (v != v));
  uint64_t ab, vb;
  memcpy(&ab, &a, sizeof ab);
  memcpy(&vb, &v, sizeof vb);
  uint64_t r = (vb & m) | (ab & ~m);
  memcpy(&a, &r, sizeof a);
  return a;
}

#define SUM_COMBINE(a, v) ((a) + (v))
#define FMAX_COMBINE(a, v) fmax_nan((a), (v))
#define IMAX_COMBINE(a, v) ((v) > (a) ? (v) : (a))

/* NAME##_row folds n contiguous elements into *acc (8 independent lanes);
 * NAME##_cols folds x[t] into acc[t]. */
#define DEF_RED(NAME, T, LD, ACC, FIELD, COMBINE)                              \
  static void NAME##_row(acc_t *acc, const void *x_, int64_t n) {              \
    const T *x = x_;                                                           \
    ACC a = acc->FIELD;                                                        \
    int64_t i = 0;                                                             \
    if (n >= 16) {                                                             \
      ACC lanes[8];                                                            \
      for (int l = 0; l < 8; ++l) lanes[l] = (ACC)LD(x[l]);                    \
      for (i = 8; i + 8 <= n; i += 8)                                          \
        for (int l = 0; l < 8; ++l) {                                          \
          ACC v = (ACC)LD(x[i + l]);                                           \
          lanes[l] = COMBINE(lanes[l], v);                                     \
        }                                                                      \
      for (int l = 0; l < 8; ++l) a = COMBINE(a, lanes[l]);                    \
    }                                                                          \
    for (; i < n; ++i) {                                                       \
      ACC v = (ACC)LD(x[i]);                                                   \
      a = COMBINE(a, v);                                                       \
    }                                                                          \
    acc->FIELD = a;                                                            \
  }                                                                            \
  static void NAME##_cols(acc_t *acc, const void *x_, int64_t n) {             \
    const T *x = x_;                                                           \
    for (int64_t i = 0; i < n; ++i) {                                          \
      ACC v = (ACC)LD(x[i]);                                                   \
      acc[i].FIELD = COMBINE(acc[i].FIELD, v);                                 \
    }                                                                          \
  }

#define LD(v) (v)
#define LD_F16(v) moai_f16_to_f32(v)
#define LD_BF16(v) moai_bf16_to_f32(v)

DEF_RED(sum_f32, float, LD, double, f, SUM_COMBINE)
DEF_RED(sum_f64, double, LD, double, f, SUM_COMBINE)
DEF_RED(sum_f16, uint16_t, LD_F16, double, f, SUM_COMBINE)
DEF_RED(sum_bf16, uint16_t, LD_BF16, double, f, SUM_COMBINE)
DEF_RED(sum_i8, int8_t, LD, uint64_t, u, SUM_COMBINE)
DEF_RED(sum_i16, int16_t, LD, uint64_t, u, SUM_COMBINE)
DEF_RED(sum_i32, int32_t, LD, uint64_t, u, SUM_COMBINE)
DEF_RED(sum_i64, int64_t, LD, uint64_t, u, SUM_COMBINE)
DEF_RED(sum_u8, uint8_t, LD, uint64_t, u, SUM_COMBINE)
DEF_RED(sum_u16, uint16_t, LD, uint64_t, u, SUM_COMBINE)
DEF_RED(sum_u32, uint32_t, LD, uint64_t, u, SUM_COMBINE)
DEF_RED(sum_u64, uint64_t, LD, uint64_t, u, SUM_COMBINE)
DEF_RED(max_f32, float, LD, double, f, FMAX_COMBINE)
DEF_RED(max_f64, double, LD, double, f, FMAX_COMBINE)
DEF_RED(max_f16, uint16_t, LD_F16, double, f, FMAX_COMBINE)
DEF_RED(max_bf16, uint16_t, LD_BF16, double, f, FMAX_COMBINE)
DEF_RED(max_i8, int8_t, LD, int64_t, i, IMAX_COMBINE)
DEF_RED(max_i16, int16_t, LD, int64_t, i, IMAX_COMBINE)
DEF_RED(max_i32, int32_t, LD, int64_t, i, IMAX_COMBINE)
DEF_RED(max_i64, int64_t, LD, int64_t, i, IMAX_COMBINE)
DEF_RED(max_u8, uint8_t, LD, uint64_t, u, IMAX_COMBINE)
DEF_RED(max_u16, uint16_t, LD, uint64_t, u, IMAX_COMBINE)
DEF_RED(max_u32, uint32_t, LD, uint64_t, u, IMAX_COMBINE)
DEF_RED(max_u64, uint64_t, LD, uint64_t, u, IMAX_COMBINE)

#define RED_ENTRIES(OP, PART)                                                   \
  [MOAI_ABI_F32] = OP##_f32_##PART, [MOAI_ABI_F64] = OP##_f64_##PART,           \
  [MOAI_ABI_F16] = OP##_f16_##PART, [MOAI_ABI_BF16] = OP##_bf16_##PART,         \
  [MOAI_ABI_I8] = OP##_i8_##PART, [MOAI_ABI_I16] = OP##_i16_##PART,             \
  [MOAI_ABI_I32] = OP##_i32_##PART, [MOAI_ABI_I64] = OP##_i64_##PART,           \
  [MOAI_ABI_U8] = OP##_u8_##PART, [MOAI_ABI_U16] = OP##_u16_##PART,             \
  [MOAI_ABI_U32] = OP##_u32_##PART, [MOAI_ABI_U64] = OP##_u64_##PART
static const row_fn_t sum_rows[MOAI_EW_DTYPE_TABLE] = {RED_ENTRIES(sum, row)};
static const cols_fn_t sum_cols[MOAI_EW_DTYPE_TABLE] = {RED_ENTRIES(sum, cols)};
static const row_fn_t max_rows[MOAI_EW_DTYPE_TABLE] = {RED_ENTRIES(max, row),
                                                       [MOAI_ABI_BOOL] = max_u8_row};
static const cols_fn_t max_cols[MOAI_EW_DTYPE_TABLE] = {RED_ENTRIES(max, cols),
                                                        [MOAI_ABI_BOOL] = max_u8_cols};

/* The identity a reduction starts from (Max: the dtype's lowest value). */
static acc_t red_init(int kind, int32_t dt) {
  acc_t a = {.u = 0};
  if (kind != RED_MAX) return a;
  switch (dt) {
    case MOAI_ABI_F32: case MOAI_ABI_F64: case MOAI_ABI_F16: case MOAI_ABI_BF16:
      a.f = -INFINITY; break;
    case MOAI_ABI_I8: a.i = INT8_MIN; break;
    case MOAI_ABI_I16: a.i = INT16_MIN; break;
    case MOAI_ABI_I32: a.i = INT32_MIN; break;
    case MOAI_ABI_I64: a.i = INT64_MIN; break;
    default: break; /* unsigned, bool: 0 */
  }
  return a;
}

/* Writes the result of acc over k elements to out (dtype dt). */
static void red_store(int kind, int32_t dt, acc_t a, int64_t k, void *out) {
  if (kind == RED_MEAN) {
    switch (dt) {
      case MOAI_ABI_F32: case MOAI_ABI_F64: case MOAI_ABI_F16: case MOAI_ABI_BF16:
        a.f = a.f / (double)k; break;
      case MOAI_ABI_I8: case MOAI_ABI_I16: case MOAI_ABI_I32: case MOAI_ABI_I64:
        a.i = k ? (int64_t)a.u / k : 0; break;
      default:
        a.u = k ? a.u / (uint64_t)k : 0; break;
    }
  }
  switch (dt) {
    case MOAI_ABI_F32: *(float *)out = (float)a.f; break;
    case MOAI_ABI_F64: *(double *)out = a.f; break;
    case MOAI_ABI_F16: *(uint16_t *)out = moai_f64_to_f16(a.f); break;
    case MOAI_ABI_BF16: *(uint16_t *)out = moai_f64_to_bf16(a.f); break;
    case MOAI_ABI_I8: case MOAI_ABI_U8: case MOAI_ABI_BOOL: *(uint8_t *)out = (uint8_t)a.u; break;
    case MOAI_ABI_I16: case MOAI_ABI_U16: *(uint16_t *)out = (uint16_t)a.u; break;
    case MOAI_ABI_I32: case MOAI_ABI_U32: *(uint32_t *)out = (uint32_t)a.u; break;
    default: *(uint64_t *)out = a.u; break;
  }
}

typedef struct red_t {
  int kind;
  int32_t dt;
  size_t es;
  row_fn_t row;
  cols_fn_t cols;
  uint64_t mask; /* reduced input axes */
  int64_t K;     /* reduced elements per output */
  int64_t out_n; /* output elements */
  /* collapsed groups */
  int nk, nr;
  int64_t kd[MOAI_MAX_RANK], ks[MOAI_MAX_RANK];
  int64_t rd[MOAI_MAX_RANK], rs[MOAI_MAX_RANK];
  bool inner_reduced;
  const unsigned char *x;
  unsigned char *out;
} red_t;

/* runtime_axes: the mask from operand 1 (params.h); the output dims must
 * be those the axes and keepdims give. */
static bool red_runtime_axes(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                             moai_attrs_reduce_t *a) {
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  int64_t axes[64], want[MOAI_MAX_RANK];
  size_t n;
  char err[160], got_s[96], want_s[96];
  if (!moai_params_read_ints(ex, moai_op_in(op, 1), "axes", axes, 64, &n, err, sizeof err) ||
      !moai_params_reduce_mask(x->rank, n, axes, a->noop_with_empty_axes != 0, &a->axes_mask, err,
                               sizeof err)) {
    moai_ew_fail(ex, op, ith, "%s: %s", moai_kernel_name(op->kernel), err);
    return false;
  }
  int32_t rank = 0;
  for (int32_t j = 0; j < x->rank; ++j) {
    if (!((a->axes_mask >> j) & 1u)) want[rank++] = x->dims[j];
    else if (a->keepdims) want[rank++] = 1;
  }
  if (out->rank != rank || memcmp(want, out->dims, (size_t)rank * sizeof(int64_t)) != 0) {
    moai_ew_fail(ex, op, ith, "%s: the runtime axes give dims %s, the output is %s",
                 moai_kernel_name(op->kernel), moai_params_dims_str(rank, want, want_s, sizeof want_s),
                 moai_params_dims_str(out->rank, out->dims, got_s, sizeof got_s));
    return false;
  }
  return true;
}

static bool red_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, red_t *r) {
  moai_attrs_reduce_t a;
  if (!moai_kernel_attrs_load(op, &a, sizeof a, offsetof(moai_attrs_reduce_t, runtime_axes))) {
    moai_ew_fail(ex, op, ith, "%s: missing attributes", moai_kernel_name(op->kernel));
    return false;
  }
  const uint32_t n_in = a.runtime_axes ? 2 : 1;
  if (!moai_ew_check_arity(ex, op, ith, n_in, n_in, 1)) return false;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  r->kind = op->kernel == MOAI_KERNEL_REDUCE_SUM ? RED_SUM
            : op->kernel == MOAI_KERNEL_REDUCE_MEAN ? RED_MEAN
                                                    : RED_MAX;
  r->dt = x->dtype;
  r->row = MOAI_EW_LOOKUP(r->kind == RED_MAX ? max_rows : sum_rows, x->dtype);
  r->cols = MOAI_EW_LOOKUP(r->kind == RED_MAX ? max_cols : sum_cols, x->dtype);
  if (!r->row) {
    moai_ew_fail_dtype(ex, op, ith, x->dtype);
    return false;
  }
  if (out->dtype != x->dtype) {
    moai_ew_fail(ex, op, ith, "%s: output dtype %s differs from the input's %s",
                 moai_kernel_name(op->kernel), moai_ew_dtype_name(out->dtype),
                 moai_ew_dtype_name(x->dtype));
    return false;
  }
  if (a.runtime_axes && !red_runtime_axes(ex, op, ith, &a)) return false;
  if (x->rank < 64 && (a.axes_mask >> x->rank) != 0) {
    moai_ew_fail(ex, op, ith, "%s: axes mask 0x%llx has axes beyond rank %d",
                 moai_kernel_name(op->kernel), (unsigned long long)a.axes_mask, (int)x->rank);
    return false;
  }
  r->es = moai_ew_dtype_size(x->dtype);
  r->mask = a.axes_mask;
  r->K = 1;
  r->out_n = 1;
  r->nk = r->nr = 0;
  int prev = -1; /* class of the previous kept group: 0 kept, 1 reduced */
  int64_t stride = 1, st[MOAI_MAX_RANK];
  for (int32_t j = x->rank - 1; j >= 0; --j) {
    st[j] = stride;
    stride *= x->dims[j];
  }
  for (int32_t j = 0; j < x->rank; ++j) {
    int64_t d = x->dims[j];
    int red = (int)((a.axes_mask >> j) & 1u);
    if (red) r->K *= d;
    else r->out_n *= d;
    if (d == 1) continue;
    int64_t *dims = red ? r->rd : r->kd, *strides = red ? r->rs : r->ks;
    int *n = red ? &r->nr : &r->nk;
    if (prev == red) { /* merge with the group before (contiguous) */
      dims[*n - 1] *= d;
      strides[*n - 1] = st[j];
    } else {
      dims[*n] = d;
      strides[*n] = st[j];
      (*n)++;
    }
    prev = red;
  }
  r->inner_reduced = prev == 1;
  if (moai_tensor_numel(out) != r->out_n) {
    moai_ew_fail(ex, op, ith, "%s: output has %lld elements, the kept axes %lld",
                 moai_kernel_name(op->kernel), (long long)moai_tensor_numel(out),
                 (long long)r->out_n);
    return false;
  }
  r->x = moai_ew_ptr(ex, x);
  r->out = moai_ew_ptr(ex, out);
  return true;
}

/* Reference: each output element walks its K inputs one at a time from the
 * full (uncollapsed) multi-index. */
static void reduce_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  red_t r;
  if (!red_setup(ex, op, ith, &r)) return;
  const moai_tensor_t *x = moai_op_in(op, 0);
  const uint64_t mask = r.mask;
  int64_t st[MOAI_MAX_RANK], stride = 1;
  for (int32_t j = x->rank - 1; j >= 0; --j) {
    st[j] = stride;
    stride *= x->dims[j];
  }
  long long begin, end;
  moai_split_range(r.out_n, ith, nth, &begin, &end);
  for (int64_t o = begin; o < end; ++o) {
    int64_t base = 0, rest = o;
    for (int32_t j = x->rank - 1; j >= 0; --j) {
      if ((mask >> j) & 1u) continue;
      base += (rest % x->dims[j]) * st[j];
      rest /= x->dims[j];
    }
    acc_t acc = red_init(r.kind, r.dt);
    for (int64_t k = 0; k < r.K; ++k) {
      int64_t off = base, rk = k;
      for (int32_t j = x->rank - 1; j >= 0; --j) {
        if (!((mask >> j) & 1u)) continue;
        off += (rk % x->dims[j]) * st[j];
        rk /= x->dims[j];
      }
      r.row(&acc, r.x + (size_t)off * r.es, 1);
    }
    red_store(r.kind, r.dt, acc, r.K, r.out + (size_t)o * r.es);
  }
}

/* Input offset of kept-group multi-index `ki` / reduced-group odometer. */
static int64_t group_offset(int n, const int64_t *idx, const int64_t *strides) {
  int64_t off = 0;
  for (int g = 0; g < n; ++g) off += idx[g] * strides[g];
  return off;
}
static void group_unravel(int n, const int64_t *dims, int64_t i, int64_t *idx) {
  for (int g = n - 1; g >= 0; --g) {
    idx[g] = i % dims[g];
    i /= dims[g];
  }
}
/* Advances an odometer over dims[0..n); false after the last combination. */
static bool group_next(int n, const int64_t *dims, int64_t *idx) {
  for (int g = n - 1; g >= 0; --g) {
    if (++idx[g] < dims[g]) return true;
    idx[g] = 0;
  }
  return false;
}

static void reduce_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  red_t r;
  if (!red_setup(ex, op, ith, &r)) return;
  long long begin, end;
  moai_split_range(r.out_n, ith, nth, &begin, &end);
  if (begin >= end) return;
  const acc_t init = red_init(r.kind, r.dt);
  int64_t ki[MOAI_MAX_RANK], ri[MOAI_MAX_RANK];
  if (r.K == 0) { /* empty reduction: the identity everywhere */
    for (int64_t o = begin; o < end; ++o) red_store(r.kind, r.dt, init, 0, r.out + (size_t)o * r.es);
    return;
  }
  if (r.inner_reduced) {
    /* Each output reduces rows of L contiguous elements. */
    const int outer_nr = r.nr - 1;
    const int64_t L = r.rd[r.nr - 1];
    for (int64_t o = begin; o < end; ++o) {
      group_unravel(r.nk, r.kd, o, ki);
      const int64_t base = group_offset(r.nk, ki, r.ks);
      acc_t acc = init;
      for (int g = 0; g < outer_nr; ++g) ri[g] = 0;
      do {
        r.row(&acc, r.x + (size_t)(base + group_offset(outer_nr, ri, r.rs)) * r.es, L);
      } while (group_next(outer_nr, r.rd, ri));
      red_store(r.kind, r.dt, acc, r.K, r.out + (size_t)o * r.es);
    }
    return;
  }
  /* Innermost group kept (or nothing reduced): blocks of consecutive
   * outputs accumulate contiguous columns of the input. */
  const int64_t L = r.nk ? r.kd[r.nk - 1] : 1;
  acc_t acc[MOAI_EW_BLOCK];
  for (int64_t pos = begin; pos < end;) {
    group_unravel(r.nk, r.kd, pos, ki);
    int64_t n = L - (r.nk ? ki[r.nk - 1] : 0);
    if (n > end - pos) n = end - pos;
    if (n > MOAI_EW_BLOCK) n = MOAI_EW_BLOCK;
    const int64_t base = group_offset(r.nk, ki, r.ks);
    for (int64_t t = 0; t < n; ++t) acc[t] = init;
    for (int g = 0; g < r.nr; ++g) ri[g] = 0;
    do {
      r.cols(acc, r.x + (size_t)(base + group_offset(r.nr, ri, r.rs)) * r.es, n);
    } while (group_next(r.nr, r.rd, ri));
    for (int64_t t = 0; t < n; ++t)
      red_store(r.kind, r.dt, acc[t], r.K, r.out + (size_t)(pos + t) * r.es);
    pos += n;
  }
}

void moai_ew_register_reduce(moai_isa_t isa, moai_kernel_fn_t *table) {
  moai_kernel_fn_t fn = isa == MOAI_ISA_REFERENCE ? reduce_ref
                        : isa == MOAI_ISA_GENERIC ? reduce_opt
                                                  : NULL;
  if (!fn) return;
  table[MOAI_KERNEL_REDUCE_SUM] = fn;
  table[MOAI_KERNEL_REDUCE_MEAN] = fn;
  table[MOAI_KERNEL_REDUCE_MAX] = fn;
}
