/* MaxPool, AveragePool and GlobalAveragePool (ONNX opset 21), 1 to 3
 * spatial axes (window.h).
 *
 * max_pool: padding never wins (it counts as -inf); dilations. f32, f64,
 * int8, uint8 (ONNX's types). A window with no input tap at all yields the
 * type's lowest value. With a second output (Indices, int64), the flat input
 * index of each maximum over [N, C, spatial], the spatial axes row-major or,
 * with storage_order 1, column-major (ONNX MaxPool-12): taps are visited
 * in row-major order and only a strictly greater value replaces the best,
 * so ties give the first tap, as in ONNX Runtime's MaxPool kernels. Where
 * ONNX leaves the index undefined, a window whose taps are all the lowest
 * value (or NaN) gives its first in-bounds tap, and one without any
 * in-bounds tap -1.
 * average_pool: the sum of the taps inside the input divided by their
 * count, or, with count_include_pad, by the number of taps inside the padded
 * input [-pad_begin, in + pad_end) (PyTorch's and ONNX Runtime's divisor;
 * taps that ceil_mode pushes past the end padding are never counted).
 * f32, f64.
 * global_average_pool: mean over all spatial positions. f32, f64.
 *
 * The optimised max/average pools work by output rows like conv.c: each
 * tap's in-bounds output positions form one branch-free inner loop. */
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>

#include "kernels/nn/window.h"

typedef struct pool_problem_t {
  moai_nn_window_t g;
  int count_include_pad;
  int storage_order; /* max_pool Indices: 0 row-major, 1 column-major */
  const void *x;
  void *y;
  int64_t *indices; /* max_pool's second output, or NULL */
} pool_problem_t;

/* The flat index ONNX gives input element (plane, iz, iy, ix), plane = n * C
 * + c: row-major over the spatial axes, or column-major with storage_order
 * 1. The leading unit axes that make every window 3-D (window.h) have
 * in[a] == 1 and index 0, so one formula serves 1 to 3 spatial axes. */
static inline int64_t pool_flat_index(const pool_problem_t *p, int64_t plane, int64_t iz,
                                      int64_t iy, int64_t ix) {
  const moai_nn_window_t *g = &p->g;
  int64_t spatial = p->storage_order ? iz + (iy + ix * g->in[1]) * g->in[0]
                                     : (iz * g->in[1] + iy) * g->in[2] + ix;
  return plane * g->in[0] * g->in[1] * g->in[2] + spatial;
}

/* ---- max_pool ---- */

#define MAXPOOL_REF(name, T, LOWEST)                                                 \
  static void name(const pool_problem_t *p, int ith, int nth) {                      \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *X = p->x;                                                               \
    T *Y = p->y;                                                                     \
    int64_t osz = g->out[0] * g->out[1] * g->out[2];                                 \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * osz, ith, nth, &begin, &end);                     \
    for (long long e = begin; e < end; ++e) {                                        \
      int64_t ox = e % g->out[2], oy = (e / g->out[2]) % g->out[1];                  \
      int64_t oz = (e / (g->out[2] * g->out[1])) % g->out[0], plane = e / osz;       \
      const T *xp = X + plane * g->in[0] * g->in[1] * g->in[2];                      \
      T best = LOWEST;                                                               \
      MOAI_NN_WINDOW_FOR_TAPS(g, oz, oy, ox, {                                       \
        T v = xp[(iz * g->in[1] + iy) * g->in[2] + ix];                              \
        if (v > best) best = v;                                                      \
      });                                                                            \
      Y[e] = best;                                                                   \
    }                                                                                \
  }

MAXPOOL_REF(maxpool_ref_f32, float, -INFINITY)
MAXPOOL_REF(maxpool_ref_f64, double, -INFINITY)
MAXPOOL_REF(maxpool_ref_i8, int8_t, INT8_MIN)
MAXPOOL_REF(maxpool_ref_u8, uint8_t, 0)

/* With Indices: the same walk, remembering where the best value is. */
#define MAXPOOL_IDX_REF(name, T, LOWEST)                                             \
  static void name(const pool_problem_t *p, int ith, int nth) {                      \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *X = p->x;                                                               \
    T *Y = p->y;                                                                     \
    int64_t osz = g->out[0] * g->out[1] * g->out[2];                                 \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * osz, ith, nth, &begin, &end);                     \
    for (long long e = begin; e < end; ++e) {                                        \
      int64_t ox = e % g->out[2], oy = (e / g->out[2]) % g->out[1];                  \
      int64_t oz = (e / (g->out[2] * g->out[1])) % g->out[0], plane = e / osz;       \
      const T *xp = X + plane * g->in[0] * g->in[1] * g->in[2];                      \
      T best = LOWEST;                                                               \
      int64_t best_index = -1;                                                       \
      MOAI_NN_WINDOW_FOR_TAPS(g, oz, oy, ox, {                                       \
        T v = xp[(iz * g->in[1] + iy) * g->in[2] + ix];                              \
        int take = v > best;                                                         \
        if (take || best_index < 0) best_index = pool_flat_index(p, plane, iz, iy, ix); \
        if (take) best = v;                                                          \
      });                                                                            \
      Y[e] = best;                                                                   \
      p->indices[e] = best_index;                                                    \
    }                                                                                \
  }

MAXPOOL_IDX_REF(maxpool_idx_ref_f32, float, -INFINITY)
MAXPOOL_IDX_REF(maxpool_idx_ref_f64, double, -INFINITY)
MAXPOOL_IDX_REF(maxpool_idx_ref_i8, int8_t, INT8_MIN)
MAXPOOL_IDX_REF(maxpool_idx_ref_u8, uint8_t, 0)

/* Output rows of the optimised pools: calls BODY(ys, xs, stride, len) for
 * every in-bounds tap of row r, where ys/xs point at the first output and
 * input element of the tap's valid range. */
#define POOL_ROW_TAPS(T, X, BODY)                                                    \
  do {                                                                               \
    int64_t oy_ = r % g->out[1], oz_ = (r / g->out[1]) % g->out[0];                  \
    int64_t plane_ = r / (g->out[0] * g->out[1]);                                    \
    const T *xp_ = (X) + plane_ * g->in[0] * g->in[1] * g->in[2];                    \
    MOAI_NN_WINDOW_FOR_ROW_TAPS(g, oz_, oy_, {                                       \
      const T *xrow_ = xp_ + (iz * g->in[1] + iy) * g->in[2];                        \
      for (int64_t kx = 0; kx < g->k[2]; ++kx) {                                     \
        int64_t lo_, hi_;                                                            \
        moai_nn_window_valid_outputs(g, 2, kx, &lo_, &hi_);                          \
        if (lo_ >= hi_) continue;                                                    \
        const T *xs = xrow_ + lo_ * g->s[2] + kx * g->dl[2] - g->pb[2];              \
        T *ys = yrow + lo_;                                                          \
        int64_t len = hi_ - lo_, sx = g->s[2];                                       \
        BODY;                                                                        \
      }                                                                              \
    });                                                                              \
  } while (0)

#define MAXPOOL_OPT(name, T, LOWEST)                                                 \
  static void name(const pool_problem_t *p, int ith, int nth) {                      \
    const moai_nn_window_t *g = &p->g;                                               \
    int64_t ow = g->out[2];                                                          \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * g->out[0] * g->out[1], ith, nth, &begin, &end);   \
    for (long long r = begin; r < end; ++r) {                                        \
      T *restrict yrow = (T *)p->y + r * ow;                                         \
      for (int64_t ox = 0; ox < ow; ++ox) yrow[ox] = LOWEST;                         \
      POOL_ROW_TAPS(T, (const T *)p->x, {                                            \
        if (sx == 1) {                                                               \
          for (int64_t j = 0; j < len; ++j) ys[j] = xs[j] > ys[j] ? xs[j] : ys[j];   \
        } else {                                                                     \
          for (int64_t j = 0; j < len; ++j)                                          \
            ys[j] = xs[j * sx] > ys[j] ? xs[j * sx] : ys[j];                         \
        }                                                                            \
      });                                                                            \
    }                                                                                \
  }

MAXPOOL_OPT(maxpool_opt_f32, float, -INFINITY)
MAXPOOL_OPT(maxpool_opt_f64, double, -INFINITY)
MAXPOOL_OPT(maxpool_opt_i8, int8_t, INT8_MIN)
MAXPOOL_OPT(maxpool_opt_u8, uint8_t, 0)

/* With Indices, by output rows: each tap's valid outputs of the row are one
 * run whose input indices form an arithmetic sequence (step sx, or
 * sx * in0 * in1 column-major). Taps come in the reference's order, so
 * every output sees the same sequence of candidates. */
#define MAXPOOL_IDX_OPT(name, T, LOWEST)                                             \
  static void name(const pool_problem_t *p, int ith, int nth) {                      \
    const moai_nn_window_t *g = &p->g;                                               \
    int64_t ow = g->out[2];                                                          \
    int64_t istep = p->storage_order ? g->s[2] * g->in[0] * g->in[1] : g->s[2];      \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * g->out[0] * g->out[1], ith, nth, &begin, &end);   \
    for (long long r = begin; r < end; ++r) {                                        \
      T *restrict yrow = (T *)p->y + r * ow;                                         \
      int64_t *restrict irow = p->indices + r * ow;                                  \
      for (int64_t ox = 0; ox < ow; ++ox) {                                          \
        yrow[ox] = LOWEST;                                                           \
        irow[ox] = -1;                                                               \
      }                                                                              \
      POOL_ROW_TAPS(T, (const T *)p->x, {                                            \
        int64_t *is = irow + lo_;                                                    \
        int64_t i0 = pool_flat_index(p, plane_, iz, iy,                              \
                                     lo_ * sx + kx * g->dl[2] - g->pb[2]);           \
        for (int64_t j = 0; j < len; ++j) {                                          \
          T v = xs[j * sx];                                                          \
          int take = v > ys[j];                                                      \
          if (take || is[j] < 0) is[j] = i0 + j * istep;                             \
          if (take) ys[j] = v;                                                       \
        }                                                                            \
      });                                                                            \
    }                                                                                \
  }

MAXPOOL_IDX_OPT(maxpool_idx_opt_f32, float, -INFINITY)
MAXPOOL_IDX_OPT(maxpool_idx_opt_f64, double, -INFINITY)
MAXPOOL_IDX_OPT(maxpool_idx_opt_i8, int8_t, INT8_MIN)
MAXPOOL_IDX_OPT(maxpool_idx_opt_u8, uint8_t, 0)

/* ---- average_pool ---- */

/* The divisor of output (oz, oy, ox) (window.h). */
static inline int64_t avgpool_count(const pool_problem_t *p, int64_t oz, int64_t oy, int64_t ox) {
  return moai_nn_window_avg_count(&p->g, p->count_include_pad, oz, oy, ox);
}

#define AVGPOOL_REF(name, T)                                                         \
  static void name(const pool_problem_t *p, int ith, int nth) {                      \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *X = p->x;                                                               \
    T *Y = p->y;                                                                     \
    int64_t osz = g->out[0] * g->out[1] * g->out[2];                                 \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * osz, ith, nth, &begin, &end);                     \
    for (long long e = begin; e < end; ++e) {                                        \
      int64_t ox = e % g->out[2], oy = (e / g->out[2]) % g->out[1];                  \
      int64_t oz = (e / (g->out[2] * g->out[1])) % g->out[0], plane = e / osz;       \
      const T *xp = X + plane * g->in[0] * g->in[1] * g->in[2];                      \
      double sum = 0.0;                                                              \
      MOAI_NN_WINDOW_FOR_TAPS(g, oz, oy, ox, {                                       \
        sum += (double)xp[(iz * g->in[1] + iy) * g->in[2] + ix];                     \
      });                                                                            \
      Y[e] = (T)(sum / (double)avgpool_count(p, oz, oy, ox));                        \
    }                                                                                \
  }

AVGPOOL_REF(avgpool_ref_f32, float)
AVGPOOL_REF(avgpool_ref_f64, double)

#define AVGPOOL_OPT(name, T)                                                         \
  static void name(const pool_problem_t *p, int ith, int nth) {                      \
    const moai_nn_window_t *g = &p->g;                                               \
    int64_t ow = g->out[2];                                                          \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * g->out[0] * g->out[1], ith, nth, &begin, &end);   \
    for (long long r = begin; r < end; ++r) {                                        \
      T *restrict yrow = (T *)p->y + r * ow;                                         \
      for (int64_t ox = 0; ox < ow; ++ox) yrow[ox] = 0;                              \
      POOL_ROW_TAPS(T, (const T *)p->x, {                                            \
        if (sx == 1) {                                                               \
          for (int64_t j = 0; j < len; ++j) ys[j] += xs[j];                          \
        } else {                                                                     \
          for (int64_t j = 0; j < len; ++j) ys[j] += xs[j * sx];                     \
        }                                                                            \
      });                                                                            \
      int64_t oy = r % g->out[1], oz = (r / g->out[1]) % g->out[0];                  \
      for (int64_t ox = 0; ox < ow; ++ox)                                            \
        yrow[ox] /= (T)avgpool_count(p, oz, oy, ox);                                 \
    }                                                                                \
  }

AVGPOOL_OPT(avgpool_opt_f32, float)
AVGPOOL_OPT(avgpool_opt_f64, double)

/* ---- global_average_pool: one (n, c) plane per item; the plain loop is
 * both the reference and the optimised kernel (it streams the plane once,
 * summing in double). ---- */

#define GAP(name, T)                                                                 \
  static void name(const T *X, T *Y, int64_t planes, int64_t size, int ith, int nth) { \
    long long begin, end;                                                            \
    moai_split_range(planes, ith, nth, &begin, &end);                                \
    for (long long pl = begin; pl < end; ++pl) {                                     \
      const T *xp = X + pl * size;                                                   \
      double sum = 0.0;                                                              \
      for (int64_t i = 0; i < size; ++i) sum += (double)xp[i];                       \
      Y[pl] = (T)(sum / (double)size);                                               \
    }                                                                                \
  }

GAP(gap_f32, float)
GAP(gap_f64, double)

/* ---- dispatch ---- */

typedef void (*pool_fn_t)(const pool_problem_t *p, int ith, int nth);

static const pool_fn_t maxpool_ref_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = maxpool_ref_f32, [MOAI_ABI_F64] = maxpool_ref_f64,
    [MOAI_ABI_I8] = maxpool_ref_i8, [MOAI_ABI_U8] = maxpool_ref_u8};
static const pool_fn_t maxpool_opt_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = maxpool_opt_f32, [MOAI_ABI_F64] = maxpool_opt_f64,
    [MOAI_ABI_I8] = maxpool_opt_i8, [MOAI_ABI_U8] = maxpool_opt_u8};
static const pool_fn_t maxpool_idx_ref_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = maxpool_idx_ref_f32, [MOAI_ABI_F64] = maxpool_idx_ref_f64,
    [MOAI_ABI_I8] = maxpool_idx_ref_i8, [MOAI_ABI_U8] = maxpool_idx_ref_u8};
static const pool_fn_t maxpool_idx_opt_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = maxpool_idx_opt_f32, [MOAI_ABI_F64] = maxpool_idx_opt_f64,
    [MOAI_ABI_I8] = maxpool_idx_opt_i8, [MOAI_ABI_U8] = maxpool_idx_opt_u8};
static const pool_fn_t avgpool_ref_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = avgpool_ref_f32, [MOAI_ABI_F64] = avgpool_ref_f64};
static const pool_fn_t avgpool_opt_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = avgpool_opt_f32, [MOAI_ABI_F64] = avgpool_opt_f64};

static void pool_fail(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                      const char *msg) {
  if (ith == 0) moai_kernel_fail(ex, op, msg);
}

/* max_pool's Indices output, when the descriptor has one: int64, the dims
 * of Y. NULL with *ok when there is none. */
static int64_t *pool_indices(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                             bool *ok) {
  *ok = true;
  if (op->n_out < 2 || moai_op_out(op, 1)->region == MOAI_REGION_NONE) return NULL;
  const moai_tensor_t *ty = moai_op_out(op, 0), *ti = moai_op_out(op, 1);
  bool same = ti->region < MOAI_REGION_COUNT && ti->dtype == MOAI_ABI_I64 &&
              ti->rank == ty->rank;
  for (int32_t d = 0; same && d < ty->rank; ++d) same = ti->dims[d] == ty->dims[d];
  if (!same) {
    pool_fail(ex, op, ith, "max_pool: Indices must be int64 with the dims of the output");
    *ok = false;
    return NULL;
  }
  return moai_tensor_ptr(ex, ti);
}

static void pool_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                     const pool_fn_t *table, const pool_fn_t *idx_table, const char *kernel) {
  const moai_tensor_t *tx = moai_op_in(op, 0), *ty = moai_op_out(op, 0);
  moai_attrs_window_t at;
  if (!moai_kernel_attrs_load(op, &at, sizeof at, offsetof(moai_attrs_window_t, storage_order))) {
    pool_fail(ex, op, ith, "pool: missing attributes");
    return;
  }
  bool ok;
  int64_t *indices = idx_table ? pool_indices(ex, op, ith, &ok) : NULL;
  if (idx_table && !ok) return;
  pool_fn_t fn = MOAI_NN_LOOKUP(indices ? idx_table : table, tx->dtype);
  if (!fn) {
    moai_nn_fail_dtype(ex, op, ith, kernel, tx->dtype);
    return;
  }
  pool_problem_t p;
  moai_nn_window_init(&p.g, &at, tx, ty, NULL);
  p.count_include_pad = at.count_include_pad;
  p.storage_order = at.storage_order != 0;
  p.x = moai_tensor_ptr(ex, tx);
  p.y = moai_tensor_ptr(ex, ty);
  p.indices = indices;
  fn(&p, ith, nth);
}

static void maxpool_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  pool_run(ex, op, ith, nth, maxpool_ref_by_dtype, maxpool_idx_ref_by_dtype, "max_pool");
}
static void maxpool_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  pool_run(ex, op, ith, nth, maxpool_opt_by_dtype, maxpool_idx_opt_by_dtype, "max_pool");
}
static void avgpool_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  pool_run(ex, op, ith, nth, avgpool_ref_by_dtype, NULL, "average_pool");
}
static void avgpool_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  pool_run(ex, op, ith, nth, avgpool_opt_by_dtype, NULL, "average_pool");
}

static void global_avgpool(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  const moai_tensor_t *tx = moai_op_in(op, 0);
  int64_t planes = tx->dims[0] * (tx->rank > 1 ? tx->dims[1] : 1), size = 1;
  for (int32_t d = 2; d < tx->rank; ++d) size *= tx->dims[d];
  const void *x = moai_tensor_ptr(ex, tx);
  void *y = moai_tensor_ptr(ex, moai_op_out(op, 0));
  if (tx->dtype == MOAI_ABI_F32)
    gap_f32(x, y, planes, size, ith, nth);
  else if (tx->dtype == MOAI_ABI_F64)
    gap_f64(x, y, planes, size, ith, nth);
  else
    moai_nn_fail_dtype(ex, op, ith, "global_average_pool", tx->dtype);
}

void moai_nn_register_pool(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_MAX_POOL] = maxpool_ref;
    table[MOAI_KERNEL_AVERAGE_POOL] = avgpool_ref;
    table[MOAI_KERNEL_GLOBAL_AVERAGE_POOL] = global_avgpool;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_MAX_POOL] = maxpool_opt;
    table[MOAI_KERNEL_AVERAGE_POOL] = avgpool_opt;
    table[MOAI_KERNEL_GLOBAL_AVERAGE_POOL] = global_avgpool;
  }
}
