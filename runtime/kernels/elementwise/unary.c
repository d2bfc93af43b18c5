/* Unary math: Neg, Abs (numeric dtypes), Sqrt, Exp, Log, Sin, Cos, Tanh,
 * Sigmoid, Erf (f32, f64, f16, bf16; the halves computed in f32).
 * Reference loops call libm (Sigmoid in double); the optimised Exp, Tanh
 * and Sigmoid use fastmath.h (max relative error < 1e-6, checked by the
 * tests), the others the same libm calls. Integers wrap: -INT_MIN and
 * |INT_MIN| are INT_MIN, as in numpy. */
#include <math.h>

#include "kernels/elementwise/fastmath.h"
#include "kernels/elementwise/loops.h"

/* Neg: signed ints and floats. */
MOAI_EW_DEF_UNARY(neg_i8, int8_t, 0u - (ew_u)x)
MOAI_EW_DEF_UNARY(neg_i16, int16_t, 0u - (ew_u)x)
MOAI_EW_DEF_UNARY(neg_i32, int32_t, 0u - (ew_u)x)
MOAI_EW_DEF_UNARY(neg_i64, int64_t, 0u - (ew_u)x)
MOAI_EW_DEF_UNARY_FLOAT(neg, -x, -x)
static const moai_ew_unary_loop_t neg_loops[MOAI_EW_DTYPE_TABLE] = {
    MOAI_EW_FLOAT_ENTRIES(neg), [MOAI_ABI_I8] = neg_i8, [MOAI_ABI_I16] = neg_i16,
    [MOAI_ABI_I32] = neg_i32, [MOAI_ABI_I64] = neg_i64};

/* Abs: every numeric dtype. */
MOAI_EW_DEF_UNARY(abs_i8, int8_t, x < 0 ? 0u - (ew_u)x : (ew_u)x)
MOAI_EW_DEF_UNARY(abs_i16, int16_t, x < 0 ? 0u - (ew_u)x : (ew_u)x)
MOAI_EW_DEF_UNARY(abs_i32, int32_t, x < 0 ? 0u - (ew_u)x : (ew_u)x)
MOAI_EW_DEF_UNARY(abs_i64, int64_t, x < 0 ? 0u - (ew_u)x : (ew_u)x)
MOAI_EW_DEF_UNARY(abs_u8, uint8_t, x)
MOAI_EW_DEF_UNARY(abs_u16, uint16_t, x)
MOAI_EW_DEF_UNARY(abs_u32, uint32_t, x)
MOAI_EW_DEF_UNARY(abs_u64, uint64_t, x)
MOAI_EW_DEF_UNARY_FLOAT(abs, fabsf(x), fabs(x))
static const moai_ew_unary_loop_t abs_loops[MOAI_EW_DTYPE_TABLE] = {
    MOAI_EW_FLOAT_ENTRIES(abs), [MOAI_ABI_I8] = abs_i8, [MOAI_ABI_I16] = abs_i16,
    [MOAI_ABI_I32] = abs_i32, [MOAI_ABI_I64] = abs_i64, [MOAI_ABI_U8] = abs_u8,
    [MOAI_ABI_U16] = abs_u16, [MOAI_ABI_U32] = abs_u32, [MOAI_ABI_U64] = abs_u64};

MOAI_EW_DEF_UNARY_FLOAT(sqrt, sqrtf(x), sqrt(x))
MOAI_EW_DEF_UNARY_FLOAT(exp, expf(x), exp(x))
MOAI_EW_DEF_UNARY_FLOAT(log, logf(x), log(x))
MOAI_EW_DEF_UNARY_FLOAT(sin, sinf(x), sin(x))
MOAI_EW_DEF_UNARY_FLOAT(cos, cosf(x), cos(x))
MOAI_EW_DEF_UNARY_FLOAT(tanh, tanhf(x), tanh(x))
MOAI_EW_DEF_UNARY_FLOAT(sigmoid, 1.0 / (1.0 + exp(-(double)x)), 1.0 / (1.0 + exp(-x)))
MOAI_EW_DEF_UNARY_FLOAT(erf, erff(x), erf(x))

/* Optimised f32 (and f16/bf16 through it). */
MOAI_EW_DEF_UNARY(exp_fast_f32, float, moai_expf_fast(x))
MOAI_EW_DEF_UNARY_HALVES(exp_fast, exp_fast_f32)
MOAI_EW_DEF_UNARY(tanh_fast_f32, float, moai_tanhf_fast(x))
MOAI_EW_DEF_UNARY_HALVES(tanh_fast, tanh_fast_f32)
MOAI_EW_DEF_UNARY(sigmoid_fast_f32, float, moai_sigmoidf_fast(x))
MOAI_EW_DEF_UNARY_HALVES(sigmoid_fast, sigmoid_fast_f32)

#define FLOAT_TABLE(NAME) \
  static const moai_ew_unary_loop_t NAME##_loops[MOAI_EW_DTYPE_TABLE] = {MOAI_EW_FLOAT_ENTRIES(NAME)};
FLOAT_TABLE(sqrt)
FLOAT_TABLE(exp)
FLOAT_TABLE(log)
FLOAT_TABLE(sin)
FLOAT_TABLE(cos)
FLOAT_TABLE(tanh)
FLOAT_TABLE(sigmoid)
FLOAT_TABLE(erf)
#undef FLOAT_TABLE

#define FAST_TABLE(NAME)                                                                 \
  static const moai_ew_unary_loop_t NAME##_fast_loops[MOAI_EW_DTYPE_TABLE] = {          \
      [MOAI_ABI_F32] = NAME##_fast_f32, [MOAI_ABI_F64] = NAME##_f64,                     \
      [MOAI_ABI_F16] = NAME##_fast_f16, [MOAI_ABI_BF16] = NAME##_fast_bf16};
FAST_TABLE(exp)
FAST_TABLE(tanh)
FAST_TABLE(sigmoid)
#undef FAST_TABLE

MOAI_EW_DEF_UNARY_KERNELS(neg, neg_loops, neg_loops)
MOAI_EW_DEF_UNARY_KERNELS(abs, abs_loops, abs_loops)
MOAI_EW_DEF_UNARY_KERNELS(sqrt, sqrt_loops, sqrt_loops)
MOAI_EW_DEF_UNARY_KERNELS(exp, exp_loops, exp_fast_loops)
MOAI_EW_DEF_UNARY_KERNELS(log, log_loops, log_loops)
MOAI_EW_DEF_UNARY_KERNELS(sin, sin_loops, sin_loops)
MOAI_EW_DEF_UNARY_KERNELS(cos, cos_loops, cos_loops)
MOAI_EW_DEF_UNARY_KERNELS(tanh, tanh_loops, tanh_fast_loops)
MOAI_EW_DEF_UNARY_KERNELS(sigmoid, sigmoid_loops, sigmoid_fast_loops)
MOAI_EW_DEF_UNARY_KERNELS(erf, erf_loops, erf_loops)

void moai_ew_register_unary(moai_isa_t isa, moai_kernel_fn_t *table) {
#define SET(ID, NAME) table[MOAI_KERNEL_##ID] = isa == MOAI_ISA_REFERENCE ? NAME##_ref : NAME##_opt;
  if (isa != MOAI_ISA_REFERENCE && isa != MOAI_ISA_GENERIC) return;
  SET(NEG, neg) SET(ABS, abs) SET(SQRT, sqrt) SET(EXP, exp) SET(LOG, log) SET(SIN, sin)
  SET(COS, cos) SET(TANH, tanh) SET(SIGMOID, sigmoid) SET(ERF, erf)
#undef SET
}
