/* Sliding-window geometry shared by conv.c and pool.c. Every op is seen as
 * 3-D: a spatial rank r < 3 gets leading unit axes (kernel 1, stride 1,
 * dilation 1, no padding), so one loop nest serves 1-D, 2-D and 3-D.
 *
 * moai_attrs_window_t.pads follows ONNX's layout: pads[0..r) are the
 * begins of spatial axes 0..r-1 and pads[r..2r) their ends. Input position
 * of output o and tap k along an axis: o * stride - pad_begin + k * dilation;
 * taps outside [0, in) read padding. Output dims come from the output tensor
 * (ceil_mode and auto_pad were resolved by the compiler). */
#ifndef MOAI_KERNELS_NN_WINDOW_H
#define MOAI_KERNELS_NN_WINDOW_H

#include "kernels/nn/nn_internal.h"

typedef struct moai_nn_window_t {
  int64_t n, c;   /* batch, input channels */
  int64_t m;      /* output channels (conv), = c for pools */
  int64_t in[3], out[3], k[3], s[3], dl[3], pb[3], pe[3];
} moai_nn_window_t;

/* Fills the geometry from x [N, C, spatial...], y [N, M, spatial...] and
 * the attributes; the kernel extents come from `kernel_dims` (conv's weight
 * spatial dims) or, when NULL, from at->kernel. */
static inline void moai_nn_window_init(moai_nn_window_t *g, const moai_attrs_window_t *at,
                                       const moai_tensor_t *x, const moai_tensor_t *y,
                                       const int64_t *kernel_dims) {
  int r = at->spatial_rank;
  g->n = x->dims[0];
  g->c = x->dims[1];
  g->m = y->dims[1];
  for (int a = 0; a < 3; ++a) {
    int sa = a - (3 - r); /* spatial axis index, < 0 for the added unit axes */
    if (sa < 0) {
      g->in[a] = g->out[a] = g->k[a] = g->s[a] = g->dl[a] = 1;
      g->pb[a] = g->pe[a] = 0;
      continue;
    }
    g->in[a] = x->dims[2 + sa];
    g->out[a] = y->dims[2 + sa];
    g->k[a] = kernel_dims ? kernel_dims[sa] : at->kernel[sa];
    g->s[a] = at->strides[sa] > 0 ? at->strides[sa] : 1;
    g->dl[a] = at->dilations[sa] > 0 ? at->dilations[sa] : 1;
    g->pb[a] = at->pads[sa];
    g->pe[a] = at->pads[r + sa];
  }
}

/* The taps k of an axis whose input position o*s - pb + k*dl lies in
 * [lo, hi): their count. Pools count padding positions with lo = -pb and
 * hi = in + pe (count_include_pad). */
static inline int64_t moai_nn_window_taps(const moai_nn_window_t *g, int a, int64_t o,
                                          int64_t lo, int64_t hi) {
  int64_t n = 0, p0 = o * g->s[a] - g->pb[a];
  for (int64_t k = 0; k < g->k[a]; ++k) {
    int64_t p = p0 + k * g->dl[a];
    n += p >= lo && p < hi;
  }
  return n;
}

/* For tap k along axis a: the output positions [*o_lo, *o_hi) whose input
 * position o*s - pb + k*dl falls inside [0, in). */
static inline void moai_nn_window_valid_outputs(const moai_nn_window_t *g, int a, int64_t k,
                                                int64_t *o_lo, int64_t *o_hi) {
  int64_t off = k * g->dl[a] - g->pb[a]; /* input position = o * s + off */
  int64_t s = g->s[a];
  /* smallest o with o*s + off >= 0 */
  int64_t lo = off >= 0 ? 0 : (-off + s - 1) / s;
  /* smallest o with o*s + off >= in */
  int64_t lim = g->in[a] - off;
  int64_t hi = lim <= 0 ? 0 : (lim + s - 1) / s;
  if (hi > g->out[a]) hi = g->out[a];
  if (lo > hi) lo = hi;
  *o_lo = lo;
  *o_hi = hi;
}

/* The output o of tap k along axis a that reads input position i, or -1
 * when none does (i + pb - k*dl is not a multiple of the stride, or falls
 * outside the output): the transposed walk of the gradient kernels. */
static inline int64_t moai_nn_window_output_of(const moai_nn_window_t *g, int a, int64_t i,
                                               int64_t k) {
  int64_t t = i + g->pb[a] - k * g->dl[a];
  if (t < 0 || t % g->s[a] != 0) return -1;
  t /= g->s[a];
  return t < g->out[a] ? t : -1;
}

/* An average pool's divisor for output (oz, oy, ox): the taps inside the
 * input or, with count_include_pad, inside the padded input
 * [-pb, in + pe); a product over axes (windows are boxes). */
static inline int64_t moai_nn_window_avg_count(const moai_nn_window_t *g, int count_include_pad,
                                               int64_t oz, int64_t oy, int64_t ox) {
  int64_t o[3] = {oz, oy, ox}, n = 1;
  for (int a = 0; a < 3; ++a) {
    int64_t lo = count_include_pad ? -g->pb[a] : 0;
    int64_t hi = count_include_pad ? g->in[a] + g->pe[a] : g->in[a];
    n *= moai_nn_window_taps(g, a, o[a], lo, hi);
  }
  return n;
}

/* Loop nests over a window, for kernels written as macros per dtype. BODY
 * (the variadic tail, so it may hold commas) runs in row-major tap order,
 * which fixes every kernel's summation order.
 *
 * MOAI_NN_WINDOW_FOR_ROW_TAPS: the taps (kz, ky) of output row (oz, oy)
 * whose input row (iz, iy) lies inside the input.
 * MOAI_NN_WINDOW_FOR_TAPS: the taps (kz, ky, kx) of output (oz, oy, ox)
 * whose input position (iz, iy, ix) lies inside the input. */
#define MOAI_NN_WINDOW_FOR_ROW_TAPS(g, oz, oy, ...)                                  \
  for (int64_t kz = 0; kz < (g)->k[0]; ++kz) {                                       \
    int64_t iz = (oz) * (g)->s[0] - (g)->pb[0] + kz * (g)->dl[0];                    \
    if (iz < 0 || iz >= (g)->in[0]) continue;                                        \
    for (int64_t ky = 0; ky < (g)->k[1]; ++ky) {                                     \
      int64_t iy = (oy) * (g)->s[1] - (g)->pb[1] + ky * (g)->dl[1];                  \
      if (iy < 0 || iy >= (g)->in[1]) continue;                                      \
      __VA_ARGS__                                                                    \
    }                                                                                \
  }

#define MOAI_NN_WINDOW_FOR_TAPS(g, oz, oy, ox, ...)                                  \
  MOAI_NN_WINDOW_FOR_ROW_TAPS(g, oz, oy, {                                           \
    for (int64_t kx = 0; kx < (g)->k[2]; ++kx) {                                     \
      int64_t ix = (ox) * (g)->s[2] - (g)->pb[2] + kx * (g)->dl[2];                  \
      if (ix < 0 || ix >= (g)->in[2]) continue;                                      \
      __VA_ARGS__                                                                    \
    }                                                                                \
  })

/* The transposed walks: MOAI_NN_WINDOW_FOR_ROW_OUTPUTS runs over the taps
 * (kz, ky) whose output row (oz, oy) reads input row (iz, iy), and
 * MOAI_NN_WINDOW_FOR_OUTPUTS over the taps (kz, ky, kx) whose output
 * (oz, oy, ox) reads input position (iz, iy, ix). */
#define MOAI_NN_WINDOW_FOR_ROW_OUTPUTS(g, iz, iy, ...)                               \
  for (int64_t kz = 0; kz < (g)->k[0]; ++kz) {                                       \
    int64_t oz = moai_nn_window_output_of((g), 0, (iz), kz);                         \
    if (oz < 0) continue;                                                            \
    for (int64_t ky = 0; ky < (g)->k[1]; ++ky) {                                     \
      int64_t oy = moai_nn_window_output_of((g), 1, (iy), ky);                       \
      if (oy < 0) continue;                                                          \
      __VA_ARGS__                                                                    \
    }                                                                                \
  }

#define MOAI_NN_WINDOW_FOR_OUTPUTS(g, iz, iy, ix, ...)                               \
  MOAI_NN_WINDOW_FOR_ROW_OUTPUTS(g, iz, iy, {                                        \
    for (int64_t kx = 0; kx < (g)->k[2]; ++kx) {                                     \
      int64_t ox = moai_nn_window_output_of((g), 2, (ix), kx);                       \
      if (ox < 0) continue;                                                          \
      __VA_ARGS__                                                                    \
    }                                                                                \
  })

#endif /* MOAI_KERNELS_NN_WINDOW_H */
