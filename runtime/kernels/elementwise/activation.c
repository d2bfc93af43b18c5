/* Activations: Relu (floats and signed ints), LeakyRelu and Gelu (floats),
 * Clip (every numeric dtype; min and max are optional scalar operands).
 *  - Relu and LeakyRelu keep NaN (x < 0 is false) and -0.
 *  - Gelu exact: x/2 * erfc(-x/sqrt 2), the same value as x/2 (1 + erf(x/sqrt 2))
 *    without its cancellation for negative x; tanh approximation: x *
 *    sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3), equal to x/2 (1 + tanh u)
 *    likewise. The reference computes both in double; the optimised tanh
 *    form computes u in f32 and uses moai_expf_fast (relative error grows
 *    with |u| from u's own f32 rounding: ~1e-5 at x = -10).
 *  - Clip is min(max(x, lo), hi): NaN stays NaN, lo > hi gives hi (numpy). */
#include <math.h>

#include "kernels/elementwise/fastmath.h"
#include "kernels/elementwise/loops.h"

/* ---- Relu ---- */
MOAI_EW_DEF_UNARY(relu_i8, int8_t, x < 0 ? 0 : x)
MOAI_EW_DEF_UNARY(relu_i16, int16_t, x < 0 ? 0 : x)
MOAI_EW_DEF_UNARY(relu_i32, int32_t, x < 0 ? 0 : x)
MOAI_EW_DEF_UNARY(relu_i64, int64_t, x < 0 ? 0 : x)
MOAI_EW_DEF_UNARY_FLOAT(relu, x < 0 ? 0.0f : x, x < 0 ? 0.0 : x)
static const moai_ew_unary_loop_t relu_loops[MOAI_EW_DTYPE_TABLE] = {
    MOAI_EW_FLOAT_ENTRIES(relu), [MOAI_ABI_I8] = relu_i8, [MOAI_ABI_I16] = relu_i16,
    [MOAI_ABI_I32] = relu_i32, [MOAI_ABI_I64] = relu_i64};
MOAI_EW_DEF_UNARY_KERNELS(relu, relu_loops, relu_loops)

/* ---- LeakyRelu: params is the moai_attrs_leaky_relu_t ---- */
static void leaky_relu_f32(void *o_, const void *x_, int64_t n, const void *params) {
  const float alpha = ((const moai_attrs_leaky_relu_t *)params)->alpha;
  float *o = o_;
  const float *x = x_;
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] < 0 ? x[i] * alpha : x[i];
}
static void leaky_relu_f64(void *o_, const void *x_, int64_t n, const void *params) {
  /* ONNX's alpha is a float attribute: widen it, as onnx's reference does. */
  const double alpha = ((const moai_attrs_leaky_relu_t *)params)->alpha;
  double *o = o_;
  const double *x = x_;
  for (int64_t i = 0; i < n; ++i) o[i] = x[i] < 0 ? x[i] * alpha : x[i];
}
MOAI_EW_DEF_UNARY_HALVES(leaky_relu, leaky_relu_f32)
static const moai_ew_unary_loop_t leaky_relu_loops[MOAI_EW_DTYPE_TABLE] = {
    MOAI_EW_FLOAT_ENTRIES(leaky_relu)};

static void leaky_relu_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                              bool reference) {
  if (op->attrs_size < sizeof(moai_attrs_leaky_relu_t)) {
    moai_ew_fail(ex, op, ith, "leaky_relu: missing attributes");
    return;
  }
  moai_attrs_leaky_relu_t attrs;
  memcpy(&attrs, moai_op_attrs(op), sizeof attrs);
  moai_ew_unary(ex, op, ith, nth, leaky_relu_loops, &attrs, reference);
}
static void leaky_relu_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  leaky_relu_kernel(ex, op, ith, nth, true);
}
static void leaky_relu_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  leaky_relu_kernel(ex, op, ith, nth, false);
}

/* ---- Gelu ---- */
#define GELU_EXACT(x) (0.5 * (x) * erfc(-(x) * 0.70710678118654752440))
#define GELU_TANH(x) \
  ((x) / (1.0 + exp(-2.0 * 0.79788456080286535588 * ((x) + 0.044715 * (x) * (x) * (x)))))
MOAI_EW_DEF_UNARY_FLOAT(gelu_exact, GELU_EXACT((double)x), GELU_EXACT(x))
MOAI_EW_DEF_UNARY_FLOAT(gelu_tanh, GELU_TANH((double)x), GELU_TANH(x))
MOAI_EW_DEF_UNARY(gelu_tanh_fast_f32, float,
                  x / (1.0f + moai_expf_fast(-1.59576912160573071176f *
                                             (x + 0.044715f * x * x * x))))
MOAI_EW_DEF_UNARY_HALVES(gelu_tanh_fast, gelu_tanh_fast_f32)
static const moai_ew_unary_loop_t gelu_exact_loops[MOAI_EW_DTYPE_TABLE] = {
    MOAI_EW_FLOAT_ENTRIES(gelu_exact)};
static const moai_ew_unary_loop_t gelu_tanh_loops[MOAI_EW_DTYPE_TABLE] = {
    MOAI_EW_FLOAT_ENTRIES(gelu_tanh)};
static const moai_ew_unary_loop_t gelu_tanh_fast_loops[MOAI_EW_DTYPE_TABLE] = {
    [MOAI_ABI_F32] = gelu_tanh_fast_f32, [MOAI_ABI_F64] = gelu_tanh_f64,
    [MOAI_ABI_F16] = gelu_tanh_fast_f16, [MOAI_ABI_BF16] = gelu_tanh_fast_bf16};

static void gelu_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                        bool reference) {
  moai_attrs_gelu_t attrs = {0};
  if (op->attrs_size >= sizeof attrs) memcpy(&attrs, moai_op_attrs(op), sizeof attrs);
  const moai_ew_unary_loop_t *loops = !attrs.tanh_approximation ? gelu_exact_loops
                                      : reference               ? gelu_tanh_loops
                                                                : gelu_tanh_fast_loops;
  moai_ew_unary(ex, op, ith, nth, loops, NULL, reference);
}
static void gelu_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  gelu_kernel(ex, op, ith, nth, true);
}
static void gelu_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  gelu_kernel(ex, op, ith, nth, false);
}

/* ---- Clip: params is a clip_bounds_t ---- */
typedef struct clip_bounds_t {
  double lo_f, hi_f;
  int64_t lo_i, hi_i;
  uint64_t lo_u, hi_u;
} clip_bounds_t;

#define DEF_CLIP(NAME, T, LO, HI)                                                \
  static void NAME(void *o_, const void *x_, int64_t n, const void *params) {    \
    const clip_bounds_t *b = params;                                             \
    const T lo = (T)b->LO, hi = (T)b->HI;                                        \
    T *o = o_;                                                                   \
    const T *x = x_;                                                             \
    for (int64_t i = 0; i < n; ++i) {                                            \
      T v = x[i] < lo ? lo : x[i];                                               \
      o[i] = v > hi ? hi : v;                                                    \
    }                                                                            \
  }
DEF_CLIP(clip_i8, int8_t, lo_i, hi_i)
DEF_CLIP(clip_i16, int16_t, lo_i, hi_i)
DEF_CLIP(clip_i32, int32_t, lo_i, hi_i)
DEF_CLIP(clip_i64, int64_t, lo_i, hi_i)
DEF_CLIP(clip_u8, uint8_t, lo_u, hi_u)
DEF_CLIP(clip_u16, uint16_t, lo_u, hi_u)
DEF_CLIP(clip_u32, uint32_t, lo_u, hi_u)
DEF_CLIP(clip_u64, uint64_t, lo_u, hi_u)
DEF_CLIP(clip_f32, float, lo_f, hi_f)
DEF_CLIP(clip_f64, double, lo_f, hi_f)
MOAI_EW_DEF_UNARY_HALVES(clip, clip_f32)
static const moai_ew_unary_loop_t clip_loops[MOAI_EW_DTYPE_TABLE] = {MOAI_EW_NUMERIC_ENTRIES(clip)};

/* Reads a bound operand (any numeric dtype equal to x's) into b. */
static void clip_read(const void *p, int32_t dt, double *f, int64_t *i, uint64_t *u) {
  switch (dt) {
    case MOAI_ABI_F32: *f = *(const float *)p; break;
    case MOAI_ABI_F64: *f = *(const double *)p; break;
    case MOAI_ABI_F16: *f = moai_f16_to_f32(*(const uint16_t *)p); break;
    case MOAI_ABI_BF16: *f = moai_bf16_to_f32(*(const uint16_t *)p); break;
    case MOAI_ABI_I8: *i = *(const int8_t *)p; break;
    case MOAI_ABI_I16: *i = *(const int16_t *)p; break;
    case MOAI_ABI_I32: *i = *(const int32_t *)p; break;
    case MOAI_ABI_I64: *i = *(const int64_t *)p; break;
    case MOAI_ABI_U8: *u = *(const uint8_t *)p; break;
    case MOAI_ABI_U16: *u = *(const uint16_t *)p; break;
    case MOAI_ABI_U32: *u = *(const uint32_t *)p; break;
    case MOAI_ABI_U64: *u = *(const uint64_t *)p; break;
    default: break;
  }
}

static void clip_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                        bool reference) {
  if (!moai_ew_unary_setup(ex, op, ith, 3, 0)) return;
  int32_t dt = moai_op_in(op, 0)->dtype;
  moai_ew_unary_loop_t loop = MOAI_EW_LOOKUP(clip_loops, dt);
  if (!loop) {
    moai_ew_fail_dtype(ex, op, ith, dt);
    return;
  }
  /* Absent bounds: the dtype's whole range (x's own dtype limits are applied
   * by the (T) conversion in the loop). */
  clip_bounds_t b = {-INFINITY, INFINITY, INT64_MIN, INT64_MAX, 0, UINT64_MAX};
  for (uint32_t k = 1; k < op->n_in; ++k) {
    const moai_tensor_t *t = moai_op_in(op, k);
    if (t->region == MOAI_REGION_NONE) continue;
    if (t->dtype != dt || moai_tensor_numel(t) != 1) {
      moai_ew_fail(ex, op, ith, "clip: %s bound must be one %s element",
                   k == 1 ? "min" : "max", moai_ew_dtype_name(dt));
      return;
    }
    const void *p = moai_tensor_ptr(ex, t);
    if (k == 1) clip_read(p, dt, &b.lo_f, &b.lo_i, &b.lo_u);
    else clip_read(p, dt, &b.hi_f, &b.hi_i, &b.hi_u);
  }
  /* Clamp the integer defaults into the dtype so (T) keeps their meaning. */
  switch (dt) {
    case MOAI_ABI_I8: b.lo_i = b.lo_i < INT8_MIN ? INT8_MIN : b.lo_i; b.hi_i = b.hi_i > INT8_MAX ? INT8_MAX : b.hi_i; break;
    case MOAI_ABI_I16: b.lo_i = b.lo_i < INT16_MIN ? INT16_MIN : b.lo_i; b.hi_i = b.hi_i > INT16_MAX ? INT16_MAX : b.hi_i; break;
    case MOAI_ABI_I32: b.lo_i = b.lo_i < INT32_MIN ? INT32_MIN : b.lo_i; b.hi_i = b.hi_i > INT32_MAX ? INT32_MAX : b.hi_i; break;
    case MOAI_ABI_U8: b.hi_u = b.hi_u > UINT8_MAX ? UINT8_MAX : b.hi_u; break;
    case MOAI_ABI_U16: b.hi_u = b.hi_u > UINT16_MAX ? UINT16_MAX : b.hi_u; break;
    case MOAI_ABI_U32: b.hi_u = b.hi_u > UINT32_MAX ? UINT32_MAX : b.hi_u; break;
    default: break;
  }
  moai_ew_unary_run(ex, op, ith, nth, loop, &b, reference);
}
static void clip_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  clip_kernel(ex, op, ith, nth, true);
}
static void clip_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  clip_kernel(ex, op, ith, nth, false);
}

void moai_ew_register_activation(moai_isa_t isa, moai_kernel_fn_t *table) {
#define SET(ID, NAME) table[MOAI_KERNEL_##ID] = isa == MOAI_ISA_REFERENCE ? NAME##_ref : NAME##_opt;
  if (isa != MOAI_ISA_REFERENCE && isa != MOAI_ISA_GENERIC) return;
  SET(RELU, relu) SET(LEAKY_RELU, leaky_relu) SET(GELU, gelu) SET(CLIP, clip)
#undef SET
}
