/* Gradients of Conv (conv.c): x [N, C, s...], w [M, C/group, k...],
 * dy [N, M, o...], 1 to 3 spatial axes (window.h), f32 and f64.
 *
 *   conv_grad_input:  dx[n, c, i] = sum_{m in group(c), k, o : o*s - pb + k*dl = i}
 *                                       w[m, c % cg, k] * dy[n, m, o]
 *   conv_grad_weight: dw[m, cc, k] = sum_{n, o : o*s - pb + k*dl in [0, in)}
 *                                       dy[n, m, o] * x[n, group(m)*cg + cc, o*s - pb + k*dl]
 *
 * (the transposed convolution and the correlation of x with dy that
 * PyTorch's convolution_backward computes). The bias gradient is a
 * ReduceSum the autodiff builds.
 *
 * References: one output element at a time, summing in double. Optimised
 * conv_grad_input works by rows of dx like conv.c works by rows of y: each
 * (m, tap) with an output row adds w * dy into the dx row in one branch-free
 * inner loop over the tap's valid outputs (contiguous at stride 1), summing
 * in the tensor's type as conv.c does. Optimised conv_grad_weight gives each
 * thread whole rows of dw (m, cc, kz, ky) and sums each tap's dot products
 * of dy and x rows in double (a tap sums N * output-size terms). */
#include <stddef.h>

#include "kernels/grad/grad_nn.h"

typedef struct conv_grad_problem_t {
  moai_nn_window_t g; /* in: x's (dx's) spatial dims, out: dy's */
  int64_t cg, mg;     /* input and output channels per group */
  const void *x, *w, *dy;
  void *dx, *dw;
} conv_grad_problem_t;

/* ---- conv_grad_input ---- */

#define CGI_REF(name, T)                                                             \
  static void name(const conv_grad_problem_t *p, int ith, int nth) {                 \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *W = p->w, *DY = p->dy;                                                  \
    T *DX = p->dx;                                                                   \
    int64_t isz = g->in[0] * g->in[1] * g->in[2];                                    \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * isz, ith, nth, &begin, &end);                     \
    for (long long e = begin; e < end; ++e) {                                        \
      int64_t ix = e % g->in[2], iy = (e / g->in[2]) % g->in[1];                     \
      int64_t iz = (e / (g->in[2] * g->in[1])) % g->in[0];                           \
      int64_t c = (e / isz) % g->c, n = e / (isz * g->c);                            \
      int64_t cc = c % p->cg, m0 = (c / p->cg) * p->mg;                              \
      double acc = 0.0;                                                              \
      for (int64_t m = m0; m < m0 + p->mg; ++m)                                      \
        MOAI_NN_WINDOW_FOR_OUTPUTS(g, iz, iy, ix, {                                  \
          double d = DY[(((n * g->m + m) * g->out[0] + oz) * g->out[1] + oy) * g->out[2] + ox]; \
          double wv = W[(((m * p->cg + cc) * g->k[0] + kz) * g->k[1] + ky) * g->k[2] + kx]; \
          acc += d * wv;                                                             \
        });                                                                          \
      DX[e] = (T)acc;                                                                \
    }                                                                                \
  }

CGI_REF(cgi_ref_f32, float)
CGI_REF(cgi_ref_f64, double)

#define CGI_OPT(name, T)                                                             \
  static void name(const conv_grad_problem_t *p, int ith, int nth) {                 \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *W = p->w, *DY = p->dy;                                                  \
    int64_t iw = g->in[2], sx = g->s[2], rows = g->in[0] * g->in[1];                 \
    long long begin, end;                                                            \
    moai_split_range(g->n * g->c * rows, ith, nth, &begin, &end);                    \
    for (long long r = begin; r < end; ++r) {                                        \
      int64_t iy = r % g->in[1], iz = (r / g->in[1]) % g->in[0];                     \
      int64_t c = (r / rows) % g->c, n = r / (rows * g->c);                          \
      int64_t cc = c % p->cg, m0 = (c / p->cg) * p->mg;                              \
      T *restrict dxrow = (T *)p->dx + r * iw;                                       \
      for (int64_t ix = 0; ix < iw; ++ix) dxrow[ix] = 0;                             \
      for (int64_t m = m0; m < m0 + p->mg; ++m)                                      \
        MOAI_NN_WINDOW_FOR_ROW_OUTPUTS(g, iz, iy, {                                  \
          const T *dyrow = DY + (((n * g->m + m) * g->out[0] + oz) * g->out[1] + oy) * g->out[2]; \
          const T *wk = W + (((m * p->cg + cc) * g->k[0] + kz) * g->k[1] + ky) * g->k[2]; \
          for (int64_t kx = 0; kx < g->k[2]; ++kx) {                                 \
            int64_t lo, hi;                                                          \
            moai_nn_window_valid_outputs(g, 2, kx, &lo, &hi);                        \
            if (lo >= hi) continue;                                                  \
            T wv = wk[kx];                                                           \
            int64_t off = kx * g->dl[2] - g->pb[2];                                  \
            if (sx == 1) {                                                           \
              T *restrict xs = dxrow + (lo + off);                                   \
              const T *restrict ys = dyrow + lo;                                     \
              for (int64_t j = 0; j < hi - lo; ++j) xs[j] += wv * ys[j];             \
            } else {                                                                 \
              for (int64_t ox = lo; ox < hi; ++ox) dxrow[ox * sx + off] += wv * dyrow[ox]; \
            }                                                                        \
          }                                                                          \
        });                                                                          \
    }                                                                                \
  }

CGI_OPT(cgi_opt_f32, float)
CGI_OPT(cgi_opt_f64, double)

/* ---- conv_grad_weight ---- */

#define CGW_REF(name, T)                                                             \
  static void name(const conv_grad_problem_t *p, int ith, int nth) {                 \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *X = p->x, *DY = p->dy;                                                  \
    T *DW = p->dw;                                                                   \
    int64_t ksz = g->k[0] * g->k[1] * g->k[2];                                       \
    long long begin, end;                                                            \
    moai_split_range(g->m * p->cg * ksz, ith, nth, &begin, &end);                    \
    for (long long e = begin; e < end; ++e) {                                        \
      int64_t kx = e % g->k[2], ky = (e / g->k[2]) % g->k[1];                        \
      int64_t kz = (e / (g->k[2] * g->k[1])) % g->k[0];                              \
      int64_t cc = (e / ksz) % p->cg, m = e / (ksz * p->cg);                         \
      int64_t c = (m / p->mg) * p->cg + cc;                                          \
      double acc = 0.0;                                                              \
      for (int64_t n = 0; n < g->n; ++n)                                             \
        for (int64_t oz = 0; oz < g->out[0]; ++oz) {                                 \
          int64_t iz = oz * g->s[0] - g->pb[0] + kz * g->dl[0];                      \
          if (iz < 0 || iz >= g->in[0]) continue;                                    \
          for (int64_t oy = 0; oy < g->out[1]; ++oy) {                               \
            int64_t iy = oy * g->s[1] - g->pb[1] + ky * g->dl[1];                    \
            if (iy < 0 || iy >= g->in[1]) continue;                                  \
            for (int64_t ox = 0; ox < g->out[2]; ++ox) {                             \
              int64_t ix = ox * g->s[2] - g->pb[2] + kx * g->dl[2];                  \
              if (ix < 0 || ix >= g->in[2]) continue;                                \
              double d = DY[(((n * g->m + m) * g->out[0] + oz) * g->out[1] + oy) * g->out[2] + ox]; \
              double xv = X[(((n * g->c + c) * g->in[0] + iz) * g->in[1] + iy) * g->in[2] + ix]; \
              acc += d * xv;                                                         \
            }                                                                        \
          }                                                                          \
        }                                                                            \
      DW[e] = (T)acc;                                                                \
    }                                                                                \
  }

CGW_REF(cgw_ref_f32, float)
CGW_REF(cgw_ref_f64, double)

#define CGW_OPT(name, T)                                                             \
  static void name(const conv_grad_problem_t *p, int ith, int nth) {                 \
    const moai_nn_window_t *g = &p->g;                                               \
    const T *X = p->x, *DY = p->dy;                                                  \
    int64_t sx = g->s[2], rows = g->k[0] * g->k[1];                                  \
    long long begin, end;                                                            \
    moai_split_range(g->m * p->cg * rows, ith, nth, &begin, &end);                   \
    for (long long r = begin; r < end; ++r) {                                        \
      int64_t ky = r % g->k[1], kz = (r / g->k[1]) % g->k[0];                        \
      int64_t cc = (r / rows) % p->cg, m = r / (rows * p->cg);                       \
      int64_t c = (m / p->mg) * p->cg + cc;                                          \
      int64_t oz0, oz1, oy0, oy1;                                                    \
      moai_nn_window_valid_outputs(g, 0, kz, &oz0, &oz1);                            \
      moai_nn_window_valid_outputs(g, 1, ky, &oy0, &oy1);                            \
      T *dwrow = (T *)p->dw + r * g->k[2];                                           \
      for (int64_t kx = 0; kx < g->k[2]; ++kx) {                                     \
        int64_t lo, hi;                                                              \
        moai_nn_window_valid_outputs(g, 2, kx, &lo, &hi);                            \
        int64_t off = kx * g->dl[2] - g->pb[2];                                      \
        double acc = 0.0;                                                            \
        for (int64_t n = 0; n < g->n && lo < hi; ++n)                                \
          for (int64_t oz = oz0; oz < oz1; ++oz) {                                   \
            int64_t iz = oz * g->s[0] - g->pb[0] + kz * g->dl[0];                    \
            for (int64_t oy = oy0; oy < oy1; ++oy) {                                 \
              int64_t iy = oy * g->s[1] - g->pb[1] + ky * g->dl[1];                  \
              const T *restrict dys =                                                \
                  DY + (((n * g->m + m) * g->out[0] + oz) * g->out[1] + oy) * g->out[2] + lo; \
              const T *restrict xs = X + (((n * g->c + c) * g->in[0] + iz) * g->in[1] + iy) * g->in[2] + \
                                     lo * sx + off;                                  \
              double dot = 0.0;                                                      \
              if (sx == 1) {                                                         \
                for (int64_t j = 0; j < hi - lo; ++j) dot += (double)dys[j] * (double)xs[j]; \
              } else {                                                               \
                for (int64_t j = 0; j < hi - lo; ++j)                                \
                  dot += (double)dys[j] * (double)xs[j * sx];                        \
              }                                                                      \
              acc += dot;                                                            \
            }                                                                        \
          }                                                                          \
        dwrow[kx] = (T)acc;                                                          \
      }                                                                              \
    }                                                                                \
  }

CGW_OPT(cgw_opt_f32, float)
CGW_OPT(cgw_opt_f64, double)

/* ---- dispatch ---- */

typedef void (*conv_grad_fn_t)(const conv_grad_problem_t *p, int ith, int nth);

/* [0] reference, [1] optimised; per dtype. */
static const conv_grad_fn_t cgi_by_dtype[2][MOAI_NN_DTYPE_TABLE] = {
    {[MOAI_ABI_F32] = cgi_ref_f32, [MOAI_ABI_F64] = cgi_ref_f64},
    {[MOAI_ABI_F32] = cgi_opt_f32, [MOAI_ABI_F64] = cgi_opt_f64}};
static const conv_grad_fn_t cgw_by_dtype[2][MOAI_NN_DTYPE_TABLE] = {
    {[MOAI_ABI_F32] = cgw_ref_f32, [MOAI_ABI_F64] = cgw_ref_f64},
    {[MOAI_ABI_F32] = cgw_opt_f32, [MOAI_ABI_F64] = cgw_opt_f64}};

/* Shared set-up: x is the forward input (dx for conv_grad_input), w the
 * forward weight (dw for conv_grad_weight), dy the output's gradient. */
static void conv_grad_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                          bool input_grad, int optimised) {
  const char *kernel = input_grad ? "conv_grad_input" : "conv_grad_weight";
  const moai_tensor_t *tdy = moai_op_in(op, input_grad ? 0 : 1);
  const moai_tensor_t *tx = input_grad ? moai_op_out(op, 0) : moai_op_in(op, 0);
  const moai_tensor_t *tw = input_grad ? moai_op_in(op, 1) : moai_op_out(op, 0);
  if (tdy->dtype != tx->dtype || tw->dtype != tx->dtype) {
    moai_grad_fail(ex, op, ith, input_grad ? "conv_grad_input: operand dtypes differ"
                                           : "conv_grad_weight: operand dtypes differ");
    return;
  }
  conv_grad_fn_t fn = MOAI_NN_LOOKUP(input_grad ? cgi_by_dtype[optimised] : cgw_by_dtype[optimised],
                                     tx->dtype);
  if (!fn) {
    moai_nn_fail_dtype(ex, op, ith, kernel, tx->dtype);
    return;
  }
  moai_attrs_window_t at;
  if (!moai_kernel_attrs_load(op, &at, sizeof at, offsetof(moai_attrs_window_t, storage_order))) {
    moai_grad_fail(ex, op, ith, input_grad ? "conv_grad_input: missing attributes"
                                           : "conv_grad_weight: missing attributes");
    return;
  }
  conv_grad_problem_t p;
  moai_nn_window_init(&p.g, &at, tx, tdy, tw->dims + 2);
  int64_t group = at.group > 0 ? at.group : 1;
  p.cg = tw->dims[1];
  p.mg = p.g.m / group;
  p.x = input_grad ? NULL : moai_tensor_ptr(ex, tx);
  p.w = input_grad ? moai_tensor_ptr(ex, tw) : NULL;
  p.dy = moai_tensor_ptr(ex, tdy);
  p.dx = input_grad ? moai_tensor_ptr(ex, tx) : NULL;
  p.dw = input_grad ? NULL : moai_tensor_ptr(ex, tw);
  if (p.mg <= 0 || p.cg <= 0) {
    /* no output channels, or none per group: every gradient is zero */
    const moai_tensor_t *out = moai_op_out(op, 0);
    long long begin, end;
    moai_split_range(moai_tensor_numel(out) * (long long)moai_nn_dtype_size(out->dtype), ith, nth,
                     &begin, &end);
    memset((unsigned char *)moai_tensor_ptr(ex, out) + begin, 0, (size_t)(end - begin));
    return;
  }
  fn(&p, ith, nth);
}

static void cgi_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  conv_grad_run(ex, op, ith, nth, true, 0);
}
static void cgi_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  conv_grad_run(ex, op, ith, nth, true, 1);
}
static void cgw_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  conv_grad_run(ex, op, ith, nth, false, 0);
}
static void cgw_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  conv_grad_run(ex, op, ith, nth, false, 1);
}

void moai_grad_register_conv(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) {
    table[MOAI_KERNEL_CONV_GRAD_INPUT] = cgi_ref;
    table[MOAI_KERNEL_CONV_GRAD_WEIGHT] = cgw_ref;
  } else if (isa == MOAI_ISA_GENERIC) {
    table[MOAI_KERNEL_CONV_GRAD_INPUT] = cgi_opt;
    table[MOAI_KERNEL_CONV_GRAD_WEIGHT] = cgw_opt;
  }
}
