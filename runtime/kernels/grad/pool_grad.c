/* Gradients of MaxPool and AveragePool (pool.c), 1 to 3 spatial axes
 * (window.h), f32 and f64.
 *
 * max_pool_grad: operands x, dy; output dx. Each output's gradient goes to
 * its window's maximum: taps are visited in row-major order and only a
 * strictly greater value replaces the best, so ties give the first tap in
 * scan order (PyTorch's max_pool*_with_indices, and the forward kernel's
 * Indices); padding is never selected; a window whose taps are all -inf or
 * NaN gives its first in-bounds tap (as the forward's Indices: PyTorch
 * instead prefers a NaN), and one without an in-bounds tap gives nothing.
 * average_pool_grad: operand dy; output dx. Each output's gradient divided
 * by its window's divisor (the forward's: taps inside the input, or with
 * count_include_pad inside the padded input [-pad_begin, in + pad_end), so
 * taps that ceil_mode pushes past the end padding are never counted) goes to
 * every in-bounds tap.
 *
 * Each thread owns whole (n, c) planes of dx (max_pool_grad, optimised
 * average_pool_grad: a scatter of the plane's windows in output order) or
 * dx elements (reference average_pool_grad: the gather of the windows that
 * hold the element, in double), so sums do not depend on the thread count.
 * The optimised kernels compute each window's in-bounds taps per axis in
 * closed form instead of testing every tap. */
#include <math.h>
#include <stddef.h>

#include "kernels/grad/grad_nn.h"

typedef struct pool_grad_problem_t {
  moai_nn_window_t g; /* in: x's (dx's) spatial dims, out: dy's */
  int count_include_pad;
  const void *x, *dy;
  void *dx;
} pool_grad_problem_t;

/* The taps [*k0, *k1) of output o along axis a whose input position
 * o*s - pb + k*dl lies in [lo, hi) (an empty range when none does). */
static inline void pg_tap_range(const moai_nn_window_t *g, int a, int64_t o, int64_t lo,
                                int64_t hi, int64_t *k0, int64_t *k1) {
  int64_t p0 = o * g->s[a] - g->pb[a], dl = g->dl[a];
  int64_t a0 = p0 >= lo ? 0 : (lo - p0 + dl - 1) / dl;
  int64_t a1 = p0 >= hi ? 0 : (hi - p0 + dl - 1) / dl;
  if (a1 > g->k[a]) a1 = g->k[a];
  *k0 = a0 < a1 ? a0 : a1;
  *k1 = a1;
}

/* The forward's divisor of output (oz, oy, ox) (pool.c's avgpool_count). */
static inline int64_t pg_avg_count(const pool_grad_problem_t *p, int64_t oz, int64_t oy,
                                   int64_t ox) {
  return moai_nn_window_avg_count(&p->g, p->count_include_pad, oz, oy, ox);
}

/* ---- max_pool_grad ---- */

#define MPG_REF(name, T)                                                             \
  static void name(const pool_grad_problem_t *p, int ith, int nth) {                 \
    const moai_nn_window_t *g = &p->g;                                               \
    int64_t isz = g->in[0] * g->in[1] * g->in[2];                                    \
    int64_t osz = g->out[0] * g->out[1] * g->out[2];                                 \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c, ith, nth, &begin, &end);                           \
    for (long long plane = begin; plane < end; ++plane) {                            \
      const T *xp = (const T *)p->x + plane * isz;                                   \
      const T *dyp = (const T *)p->dy + plane * osz;                                 \
      T *dxp = (T *)p->dx + plane * isz;                                             \
      for (int64_t i = 0; i < isz; ++i) dxp[i] = 0;                                  \
      for (int64_t e = 0; e < osz; ++e) {                                            \
        int64_t ox = e % g->out[2], oy = (e / g->out[2]) % g->out[1];                \
        int64_t oz = e / (g->out[2] * g->out[1]);                                    \
        T best = -INFINITY;                                                          \
        int64_t best_i = -1;                                                         \
        MOAI_NN_WINDOW_FOR_TAPS(g, oz, oy, ox, {                                     \
          int64_t i = (iz * g->in[1] + iy) * g->in[2] + ix;                          \
          int take = xp[i] > best;                                                   \
          if (take || best_i < 0) best_i = i;                                        \
          if (take) best = xp[i];                                                    \
        });                                                                          \
        if (best_i >= 0) dxp[best_i] += dyp[e];                                      \
      }                                                                              \
    }                                                                                \
  }

MPG_REF(mpg_ref_f32, float)
MPG_REF(mpg_ref_f64, double)

#define MPG_OPT(name, T)                                                             \
  static void name(const pool_grad_problem_t *p, int ith, int nth) {                 \
    const moai_nn_window_t *g = &p->g;                                               \
    int64_t isz = g->in[0] * g->in[1] * g->in[2];                                    \
    int64_t osz = g->out[0] * g->out[1] * g->out[2];                                 \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c, ith, nth, &begin, &end);                           \
    for (long long plane = begin; plane < end; ++plane) {                            \
      const T *restrict xp = (const T *)p->x + plane * isz;                          \
      const T *restrict dyp = (const T *)p->dy + plane * osz;                        \
      T *restrict dxp = (T *)p->dx + plane * isz;                                    \
      for (int64_t i = 0; i < isz; ++i) dxp[i] = 0;                                  \
      const T *dy = dyp;                                                             \
      for (int64_t oz = 0; oz < g->out[0]; ++oz) {                                   \
        int64_t z0, z1;                                                              \
        pg_tap_range(g, 0, oz, 0, g->in[0], &z0, &z1);                               \
        int64_t iz0 = oz * g->s[0] - g->pb[0];                                       \
        for (int64_t oy = 0; oy < g->out[1]; ++oy) {                                 \
          int64_t y0, y1;                                                            \
          pg_tap_range(g, 1, oy, 0, g->in[1], &y0, &y1);                             \
          int64_t iy0 = oy * g->s[1] - g->pb[1];                                     \
          for (int64_t ox = 0; ox < g->out[2]; ++ox, ++dy) {                         \
            int64_t x0, x1;                                                          \
            pg_tap_range(g, 2, ox, 0, g->in[2], &x0, &x1);                           \
            if (z0 >= z1 || y0 >= y1 || x0 >= x1) continue;                          \
            int64_t ix0 = ox * g->s[2] - g->pb[2];                                   \
            T best = -INFINITY;                                                      \
            int64_t best_i = ((iz0 + z0 * g->dl[0]) * g->in[1] + iy0 + y0 * g->dl[1]) * \
                                 g->in[2] + ix0 + x0 * g->dl[2];                     \
            for (int64_t kz = z0; kz < z1; ++kz)                                     \
              for (int64_t ky = y0; ky < y1; ++ky) {                                 \
                int64_t row = ((iz0 + kz * g->dl[0]) * g->in[1] + iy0 + ky * g->dl[1]) * \
                                  g->in[2] + ix0;                                    \
                for (int64_t kx = x0; kx < x1; ++kx) {                               \
                  int64_t i = row + kx * g->dl[2];                                   \
                  if (xp[i] > best) {                                                \
                    best = xp[i];                                                    \
                    best_i = i;                                                      \
                  }                                                                  \
                }                                                                    \
              }                                                                      \
            dxp[best_i] += *dy;                                                      \
          }                                                                          \
        }                                                                            \
      }                                                                              \
    }                                                                                \
  }

MPG_OPT(mpg_opt_f32, float)
MPG_OPT(mpg_opt_f64, double)

/* ---- average_pool_grad ---- */

#define APG_REF(name, T)                                                             \
  static void name(const pool_grad_problem_t *p, int ith, int nth) {                 \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *DY = p->dy;                                                             \
    T *DX = p->dx;                                                                   \
    int64_t isz = g->in[0] * g->in[1] * g->in[2];                                    \
    int64_t osz = g->out[0] * g->out[1] * g->out[2];                                 \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * isz, ith, nth, &begin, &end);                     \
    for (long long e = begin; e < end; ++e) {                                        \
      int64_t ix = e % g->in[2], iy = (e / g->in[2]) % g->in[1];                     \
      int64_t iz = (e / (g->in[2] * g->in[1])) % g->in[0], plane = e / isz;          \
      double acc = 0.0;                                                              \
      MOAI_NN_WINDOW_FOR_OUTPUTS(g, iz, iy, ix, {                                    \
        double d = DY[plane * osz + (oz * g->out[1] + oy) * g->out[2] + ox];         \
        acc += d / (double)pg_avg_count(p, oz, oy, ox);                              \
      });                                                                            \
      DX[e] = (T)acc;                                                                \
    }                                                                                \
  }

APG_REF(apg_ref_f32, float)
APG_REF(apg_ref_f64, double)

#define APG_OPT(name, T)                                                             \
  static void name(const pool_grad_problem_t *p, int ith, int nth) {                 \
    const moai_nn_window_t *g = &p->g;                                               \
    int64_t isz = g->in[0] * g->in[1] * g->in[2];                                    \
    int64_t osz = g->out[0] * g->out[1] * g->out[2];                                 \
    int cip = p->count_include_pad;                                                  \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c, ith, nth, &begin, &end);                           \
    for (long long plane = begin; plane < end; ++plane) {                            \
      const T *dy = (const T *)p->dy + plane * osz;                                  \
      T *restrict dxp = (T *)p->dx + plane * isz;                                    \
      for (int64_t i = 0; i < isz; ++i) dxp[i] = 0;                                  \
      int64_t c0, c1; /* divisor taps: count_include_pad's range */                  \
      for (int64_t oz = 0; oz < g->out[0]; ++oz) {                                   \
        int64_t z0, z1;                                                              \
        pg_tap_range(g, 0, oz, 0, g->in[0], &z0, &z1);                               \
        pg_tap_range(g, 0, oz, cip ? -g->pb[0] : 0, g->in[0] + (cip ? g->pe[0] : 0), &c0, &c1); \
        int64_t nz = c1 - c0, iz0 = oz * g->s[0] - g->pb[0];                         \
        for (int64_t oy = 0; oy < g->out[1]; ++oy) {                                 \
          int64_t y0, y1;                                                            \
          pg_tap_range(g, 1, oy, 0, g->in[1], &y0, &y1);                             \
          pg_tap_range(g, 1, oy, cip ? -g->pb[1] : 0, g->in[1] + (cip ? g->pe[1] : 0), &c0, &c1); \
          int64_t nzy = nz * (c1 - c0), iy0 = oy * g->s[1] - g->pb[1];               \
          for (int64_t ox = 0; ox < g->out[2]; ++ox, ++dy) {                         \
            int64_t x0, x1;                                                          \
            pg_tap_range(g, 2, ox, 0, g->in[2], &x0, &x1);                           \
            pg_tap_range(g, 2, ox, cip ? -g->pb[2] : 0, g->in[2] + (cip ? g->pe[2] : 0), &c0, &c1); \
            int64_t cnt = nzy * (c1 - c0);                                           \
            if (cnt <= 0) continue;                                                  \
            T d = (T)((double)*dy / (double)cnt);                                    \
            int64_t ix0 = ox * g->s[2] - g->pb[2];                                   \
            for (int64_t kz = z0; kz < z1; ++kz)                                     \
              for (int64_t ky = y0; ky < y1; ++ky) {                                 \
                T *row = dxp + ((iz0 + kz * g->dl[0]) * g->in[1] + iy0 + ky * g->dl[1]) * \
                                   g->in[2] + ix0;                                   \
                for (int64_t kx = x0; kx < x1; ++kx) row[kx * g->dl[2]] += d;        \
              }                                                                      \
          }                                                                          \
        }                                                                            \
      }                                                                              \
    }                                                                                \
  }

APG_OPT(apg_opt_f32, float)
APG_OPT(apg_opt_f64, double)

/* ---- dispatch ---- */

typedef void (*pool_grad_fn_t)(const pool_grad_problem_t *p, int ith, int nth);

/* [0] reference, [1] optimised; per dtype. */
static const pool_grad_fn_t mpg_by_dtype[2][MOAI_NN_DTYPE_TABLE] = {
    {[MOAI_ABI_F32] = mpg_ref_f32, [MOAI_ABI_F64] = mpg_ref_f64},
    {[MOAI_ABI_F32] = mpg_opt_f32, [MOAI_ABI_F64] = mpg_opt_f64}};
static const pool_grad_fn_t apg_by_dtype[2][MOAI_NN_DTYPE_TABLE] = {
    {[MOAI_ABI_F32] = apg_ref_f32, [MOAI_ABI_F64] = apg_ref_f64},
    {[MOAI_ABI_F32] = apg_opt_f32, [MOAI_ABI_F64] = apg_opt_f64}};

static void pool_grad_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                          bool is_max, int optimised) {
  const char *kernel = is_max ? "max_pool_grad" : "average_pool_grad";
  const moai_tensor_t *tdy = moai_op_in(op, is_max ? 1 : 0), *tdx = moai_op_out(op, 0);
  const moai_tensor_t *tx = is_max ? moai_op_in(op, 0) : NULL;
  if (tdy->dtype != tdx->dtype || (tx && tx->dtype != tdx->dtype)) {
    moai_grad_fail(ex, op, ith, is_max ? "max_pool_grad: operand dtypes differ"
                                       : "average_pool_grad: operand dtypes differ");
    return;
  }
  pool_grad_fn_t fn = MOAI_NN_LOOKUP(is_max ? mpg_by_dtype[optimised] : apg_by_dtype[optimised],
                                     tdx->dtype);
  if (!fn) {
    moai_nn_fail_dtype(ex, op, ith, kernel, tdx->dtype);
    return;
  }
  moai_attrs_window_t at;
  if (!moai_kernel_attrs_load(op, &at, sizeof at, offsetof(moai_attrs_window_t, storage_order))) {
    moai_grad_fail(ex, op, ith, is_max ? "max_pool_grad: missing attributes"
                                       : "average_pool_grad: missing attributes");
    return;
  }
  pool_grad_problem_t p;
  moai_nn_window_init(&p.g, &at, tdx, tdy, NULL);
  p.count_include_pad = at.count_include_pad != 0;
  p.x = tx ? moai_tensor_ptr(ex, tx) : NULL;
  p.dy = moai_tensor_ptr(ex, tdy);
  p.dx = moai_tensor_ptr(ex, tdx);
  fn(&p, ith, nth);
}

static void mpg_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  pool_grad_run(ex, op, ith, nth, true, 0);
}
static void mpg_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  pool_grad_run(ex, op, ith, nth, true, 1);
}
static void apg_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  pool_grad_run(ex, op, ith, nth, false, 0);
}
static void apg_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  pool_grad_run(ex, op, ith, nth, false, 1);
}

void moai_grad_register_pool(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_MAX_POOL_GRAD] = mpg_ref;
    table[MOAI_KERNEL_AVERAGE_POOL_GRAD] = apg_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_MAX_POOL_GRAD] = mpg_opt;
    table[MOAI_KERNEL_AVERAGE_POOL_GRAD] = apg_opt;
  }
}
