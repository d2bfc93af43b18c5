/* Shared helpers of the nn kernel family (matmul, softmax, conv, pools,
 * norms, scans): dtype names and sizes for error messages, per-dtype
 * lookup, and the per-file registration functions that register.c calls.
 * The f16/bf16 conversions come from kernels/half.h (shared with the
 * elementwise family). Internal to runtime/kernels/nn. */
#ifndef MOAI_KERNELS_NN_INTERNAL_H
#define MOAI_KERNELS_NN_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "io/dtype.h"
#include "kernels/half.h"
#include "kernels/kernels.h"

/* Each family file registers its kernels for one ISA level (reference or
 * generic, and AVX2/AVX-512 for matmul; other kernels at higher levels fall
 * back to generic through moai_kernels_fill). */
void moai_nn_register_matmul(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_softmax(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_conv(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_pool(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_norm(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_scan(moai_isa_t isa, moai_kernel_fn_t *table);
/* moai.attention, rms_norm and their gradients (attention.c). */
void moai_nn_register_fused(moai_isa_t isa, moai_kernel_fn_t *table);
/* moai.swiglu, moai.rotary and their gradients (swiglu.c, rotary.c). */
void moai_nn_register_swiglu(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_rotary(moai_isa_t isa, moai_kernel_fn_t *table);

/* Size of the small per-kernel dtype tables: dtype ids are ONNX's (< 17). */
#define MOAI_NN_DTYPE_TABLE 17

/* The dtype's name for messages ("float32"), "unknown" for bad codes. */
static inline const char *moai_nn_dtype_name(int32_t dtype) {
  const char *name = moai_abi_dtype_name(dtype);
  return name ? name : "unknown";
}

/* Bytes per element, 0 for an unknown dtype. */
static inline size_t moai_nn_dtype_size(int32_t dtype) {
  switch (dtype) {
    case MOAI_ABI_U8: case MOAI_ABI_I8: case MOAI_ABI_BOOL: return 1;
    case MOAI_ABI_U16: case MOAI_ABI_I16: case MOAI_ABI_F16: case MOAI_ABI_BF16: return 2;
    case MOAI_ABI_F32: case MOAI_ABI_I32: case MOAI_ABI_U32: return 4;
    case MOAI_ABI_F64: case MOAI_ABI_I64: case MOAI_ABI_U64: return 8;
  }
  return 0;
}

/* Reports "<kernel>: unsupported dtype <name>" once (from thread 0). */
static inline void moai_nn_fail_dtype(const moai_exec_t *ex, const moai_op_desc_t *op,
                                      int ith, const char *kernel, int32_t dtype) {
  if (ith != 0) return;
  char msg[96];
  snprintf(msg, sizeof(msg), "%s: unsupported dtype %s", kernel, moai_nn_dtype_name(dtype));
  moai_kernel_fail(ex, op, msg);
}

/* Looks up a per-dtype function; NULL when dtype is out of the table. */
#define MOAI_NN_LOOKUP(table, dtype)                                                    \
  ((dtype) >= 0 && (dtype) < MOAI_NN_DTYPE_TABLE ? (table)[(dtype)] : NULL)

/* Integer ceil division for non-negative a, positive b. */
static inline int64_t moai_nn_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* A tensor viewed as [outer, c, inner] around `axis` (0 <= axis < rank; a
 * scalar is [1, 1, 1]): the softmax family and its gradients (grad/). */
typedef struct moai_nn_axis_view_t {
  int64_t outer, c, inner;
} moai_nn_axis_view_t;

static inline moai_nn_axis_view_t moai_nn_axis_view(const moai_tensor_t *t, int64_t axis) {
  moai_nn_axis_view_t s = {1, t->rank > 0 ? t->dims[axis] : 1, 1};
  for (int64_t d = 0; d < axis; ++d) s.outer *= t->dims[d];
  for (int64_t d = axis + 1; d < t->rank; ++d) s.inner *= t->dims[d];
  return s;
}

/* Element offset in t (numpy-broadcast against x, right-aligned) of x's
 * element at flat index e (layer_normalization's scale and bias, and their
 * gradients). */
static inline int64_t moai_nn_bcast_offset(const moai_tensor_t *t, const moai_tensor_t *x,
                                           int64_t e) {
  int64_t off = 0, stride = 1;
  for (int32_t d = x->rank - 1, td = t->rank - 1; d >= 0; --d, --td) {
    int64_t idx = e % x->dims[d];
    e /= x->dims[d];
    if (td < 0) break;
    if (t->dims[td] != 1) off += idx * stride;
    stride *= t->dims[td];
  }
  return off;
}

/* Normalisation statistics shared by norm.c and its gradients (grad/
 * norm_grad.c), which must recompute them bit for bit: two passes, summed in
 * double (a channel can hold millions of elements).
 *
 * moai_nn_channel_stats_<T>: biased mean and variance of channel ch of x
 * viewed as [n, c, s] (batch normalisation over N and the spatial axes).
 * moai_nn_row_stats_<T>: mean and 1 / sqrt(var + eps) of the `cols`
 * elements at xr (layer normalisation's rows). */
#define MOAI_NN_NORM_STATS(T, SUFFIX)                                                   \
  static inline void moai_nn_channel_stats_##SUFFIX(const T *x, int64_t n, int64_t c,   \
                                                   int64_t s, int64_t ch,               \
                                                   double *out_mean, double *out_var) { \
    double sum = 0.0, sq = 0.0, cnt = (double)(n * s);                                  \
    for (int64_t b = 0; b < n; ++b) {                                                   \
      const T *xp = x + (b * c + ch) * s;                                               \
      for (int64_t i = 0; i < s; ++i) sum += (double)xp[i];                             \
    }                                                                                   \
    double mean = sum / cnt;                                                            \
    for (int64_t b = 0; b < n; ++b) {                                                   \
      const T *xp = x + (b * c + ch) * s;                                               \
      for (int64_t i = 0; i < s; ++i) {                                                 \
        double d = (double)xp[i] - mean;                                                \
        sq += d * d;                                                                    \
      }                                                                                 \
    }                                                                                   \
    *out_mean = mean;                                                                   \
    *out_var = sq / cnt;                                                                \
  }                                                                                     \
  static inline void moai_nn_row_stats_##SUFFIX(const T *xr, int64_t cols, double eps,  \
                                               double *out_mean, double *out_inv) {     \
    double sum = 0.0, sq = 0.0;                                                         \
    for (int64_t j = 0; j < cols; ++j) sum += (double)xr[j];                            \
    double mean = sum / (double)cols;                                                   \
    for (int64_t j = 0; j < cols; ++j) {                                                \
      double d = (double)xr[j] - mean;                                                  \
      sq += d * d;                                                                      \
    }                                                                                   \
    *out_mean = mean;                                                                   \
    *out_inv = 1.0 / sqrt(sq / (double)cols + eps);                                     \
  }

MOAI_NN_NORM_STATS(float, f32)
MOAI_NN_NORM_STATS(double, f64)

#endif /* MOAI_KERNELS_NN_INTERNAL_H */
