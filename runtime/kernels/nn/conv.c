/* Conv (ONNX opset 21): x [N, C, s...], w [M, C/group, k...], b? [M] ->
 * y [N, M, o...], 1 to 3 spatial axes, with group, strides, dilations and
 * explicit pads (window.h). f32 and f64.
 *
 *   y[n, m, o] = b[m] + sum_{c in group(m), k} w[m, c, k] * x[n, c, o*s - pb + k*dl]
 *
 * The reference computes each output element alone, summing in double. The
 * optimised kernel is direct convolution by output rows: for each (n, m,
 * oz, oy) it accumulates w * x[...] into the row of y one tap at a time, the
 * inner loop running over the output x positions whose tap is in bounds, so
 * it has no branches and is contiguous when stride is 1 (GCC vectorises it).
 * An im2col/packed GEMM formulation comes with the GEMM micro-kernels. */
#include "kernels/nn/window.h"

typedef struct conv_problem_t {
  moai_nn_window_t g;
  int64_t group, cg, mg; /* groups, input and output channels per group */
  const void *x, *w, *b;
  void *y;
} conv_problem_t;

#define CONV_REF(name, T)                                                            \
  static void name(const conv_problem_t *p, int ith, int nth) {                      \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *X = p->x, *W = p->w, *B = p->b;                                         \
    T *Y = p->y;                                                                     \
    int64_t osz = g->out[0] * g->out[1] * g->out[2];                                 \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->m * osz, ith, nth, &begin, &end);                     \
    for (long long e = begin; e < end; ++e) {                                        \
      int64_t ox = e % g->out[2], oy = (e / g->out[2]) % g->out[1];                  \
      int64_t oz = (e / (g->out[2] * g->out[1])) % g->out[0];                        \
      int64_t m = (e / osz) % g->m, n = e / (osz * g->m);                            \
      double acc = B ? (double)B[m] : 0.0;                                           \
      for (int64_t cc = 0; cc < p->cg; ++cc) {                                       \
        int64_t c = (m / p->mg) * p->cg + cc;                                        \
        MOAI_NN_WINDOW_FOR_TAPS(g, oz, oy, ox, {                                     \
          double xv = X[(((n * g->c + c) * g->in[0] + iz) * g->in[1] + iy) * g->in[2] + ix]; \
          double wv = W[(((m * p->cg + cc) * g->k[0] + kz) * g->k[1] + ky) * g->k[2] + kx]; \
          acc += xv * wv;                                                            \
        });                                                                          \
      }                                                                              \
      Y[e] = (T)acc;                                                                 \
    }                                                                                \
  }

CONV_REF(conv_ref_f32, float)
CONV_REF(conv_ref_f64, double)

#define CONV_OPT(name, T)                                                            \
  static void name(const conv_problem_t *p, int ith, int nth) {                      \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *X = p->x, *W = p->w, *B = p->b;                                         \
    T *Y = p->y;                                                                     \
    int64_t ow = g->out[2], sx = g->s[2], rows = g->out[0] * g->out[1];              \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->m * rows, ith, nth, &begin, &end);                    \
    for (long long r = begin; r < end; ++r) {                                        \
      int64_t oy = r % g->out[1], oz = (r / g->out[1]) % g->out[0];                  \
      int64_t m = (r / rows) % g->m, n = r / (rows * g->m);                          \
      T *restrict yrow = Y + r * ow;                                                 \
      T bias = B ? B[m] : (T)0;                                                      \
      for (int64_t ox = 0; ox < ow; ++ox) yrow[ox] = bias;                           \
      for (int64_t cc = 0; cc < p->cg; ++cc) {                                       \
        int64_t c = (m / p->mg) * p->cg + cc;                                        \
        MOAI_NN_WINDOW_FOR_ROW_TAPS(g, oz, oy, {                                     \
          const T *xrow = X + (((n * g->c + c) * g->in[0] + iz) * g->in[1] + iy) * g->in[2]; \
          const T *wk = W + (((m * p->cg + cc) * g->k[0] + kz) * g->k[1] + ky) * g->k[2]; \
          for (int64_t kx = 0; kx < g->k[2]; ++kx) {                                 \
            int64_t lo, hi;                                                          \
            moai_nn_window_valid_outputs(g, 2, kx, &lo, &hi);                        \
            if (lo >= hi) continue;                                                  \
            T w = wk[kx];                                                            \
            int64_t off = kx * g->dl[2] - g->pb[2];                                  \
            if (sx == 1) {                                                           \
              const T *restrict xs = xrow + (lo + off);                              \
              T *restrict ys = yrow + lo;                                            \
              for (int64_t j = 0; j < hi - lo; ++j) ys[j] += w * xs[j];              \
            } else {                                                                 \
              for (int64_t ox = lo; ox < hi; ++ox) yrow[ox] += w * xrow[ox * sx + off]; \
            }                                                                        \
          }                                                                          \
        });                                                                          \
      }                                                                              \
    }                                                                                \
  }

CONV_OPT(conv_opt_f32, float)
CONV_OPT(conv_opt_f64, double)

typedef void (*conv_fn_t)(const conv_problem_t *p, int ith, int nth);

static const conv_fn_t conv_ref_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = conv_ref_f32, [MOAI_ABI_F64] = conv_ref_f64};
static const conv_fn_t conv_opt_by_dtype[MOAI_NN_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = conv_opt_f32, [MOAI_ABI_F64] = conv_opt_f64};

static void conv_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                     const conv_fn_t *table) {
  const moai_tensor_t *tx = moai_op_in(op, 0), *tw = moai_op_in(op, 1);
  const moai_tensor_t *ty = moai_op_out(op, 0);
  conv_fn_t fn = MOAI_NN_LOOKUP(table, tx->dtype);
  if (!fn) {
    moai_nn_fail_dtype(ex, op, ith, "conv", tx->dtype);
    return;
  }
  const moai_attrs_window_t *at = moai_op_attrs(op);
  conv_problem_t p;
  moai_nn_window_init(&p.g, at, tx, ty, tw->dims + 2);
  p.group = at->group > 0 ? at->group : 1;
  p.cg = tw->dims[1];
  p.mg = p.g.m / p.group;
  p.x = moai_tensor_ptr(ex, tx);
  p.w = moai_tensor_ptr(ex, tw);
  p.b = op->n_in > 2 ? moai_tensor_ptr(ex, moai_op_in(op, 2)) : NULL;
  p.y = moai_tensor_ptr(ex, ty);
  if (p.mg <= 0) return; /* no output channels */
  fn(&p, ith, nth);
}

static void conv_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  conv_run(ex, op, ith, nth, conv_ref_by_dtype);
}
static void conv_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  conv_run(ex, op, ith, nth, conv_opt_by_dtype);
}

void moai_nn_register_conv(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE)
    table[MOAI_KERNEL_CONV] = conv_ref;
  else if (isa == MOAI_ISA_GENERIC)
    table[MOAI_KERNEL_CONV] = conv_opt;
}
