/* Generators of typed inner loops for the elementwise kernels (private).
 * Inside EXPR, the operands are `x` and `y` (`c` for where), their C type
 * is `ew_t`, the wrapping unsigned type for integer arithmetic `ew_u`, and
 * EXPR may set `err` to report the op's error (division by zero). */
#ifndef MOAI_KERNELS_ELEMENTWISE_LOOPS_H
#define MOAI_KERNELS_ELEMENTWISE_LOOPS_H

#include "kernels/elementwise/ew.h"

/* static int NAME(o, a, b, n, sa, sb): o[i] = EXPR(a[i*sa], b[i*sb]).
 * The four stride cases are separate loops so that each vectorises. */
#define MOAI_EW_DEF_BINARY(NAME, T, TO, EXPR)                                  \
  static int NAME(void *o_, const void *a_, const void *b_, int64_t n,         \
                  int64_t sa, int64_t sb) {                                    \
    typedef T ew_t;                                                            \
    typedef MOAI_EW_UWIDE(T) ew_u;                                             \
    (void)sizeof(ew_u);                                                        \
    TO *o = (TO *)o_;                                                          \
    const ew_t *a = (const ew_t *)a_, *b = (const ew_t *)b_;                   \
    int err = 0;                                                               \
    if (sa && sb) {                                                            \
      for (int64_t i = 0; i < n; ++i) {                                        \
        const ew_t x = a[i], y = b[i];                                         \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else if (sa) {                                                           \
      const ew_t y = b[0];                                                     \
      for (int64_t i = 0; i < n; ++i) {                                        \
        const ew_t x = a[i];                                                   \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else if (sb) {                                                           \
      const ew_t x = a[0];                                                     \
      for (int64_t i = 0; i < n; ++i) {                                        \
        const ew_t y = b[i];                                                   \
        o[i] = (TO)(EXPR);                                                     \
      }                                                                        \
    } else {                                                                   \
      const ew_t x = a[0], y = b[0];                                           \
      const TO v = (TO)(EXPR);                                                 \
      for (int64_t i = 0; i < n; ++i) o[i] = v;                                \
    }                                                                          \
    return err;                                                                \
  }

/* f16/bf16 binary loop through the f32 one, a block at a time: WIDEN
 * (moai_ew_f16_to_f32 ...) the inputs, run F32LOOP, NARROW the result. */
#define MOAI_EW_DEF_BINARY_WIDEN(NAME, F32LOOP, WIDEN, NARROW)                 \
  static int NAME(void *o_, const void *a_, const void *b_, int64_t n,         \
                  int64_t sa, int64_t sb) {                                    \
    uint16_t *o = (uint16_t *)o_;                                              \
    const uint16_t *a = (const uint16_t *)a_, *b = (const uint16_t *)b_;       \
    float ta[MOAI_EW_BLOCK], tb[MOAI_EW_BLOCK], to[MOAI_EW_BLOCK];             \
    int err = 0;                                                               \
    for (int64_t i = 0; i < n; i += MOAI_EW_BLOCK) {                           \
      int64_t m = n - i < MOAI_EW_BLOCK ? n - i : MOAI_EW_BLOCK;               \
      WIDEN(ta, a + i * sa, sa ? m : 1, 1);                                    \
      WIDEN(tb, b + i * sb, sb ? m : 1, 1);                                    \
      err |= F32LOOP(to, ta, tb, m, sa, sb);                                   \
      NARROW(o + i, to, m);                                                    \
    }                                                                          \
    return err;                                                                \
  }

/* The same with a bool (byte) output: comparisons. */
#define MOAI_EW_DEF_BINARY_WIDEN_BOOL(NAME, F32LOOP, WIDEN)                    \
  static int NAME(void *o_, const void *a_, const void *b_, int64_t n,         \
                  int64_t sa, int64_t sb) {                                    \
    uint8_t *o = (uint8_t *)o_;                                                \
    const uint16_t *a = (const uint16_t *)a_, *b = (const uint16_t *)b_;       \
    float ta[MOAI_EW_BLOCK], tb[MOAI_EW_BLOCK];                                \
    int err = 0;                                                               \
    for (int64_t i = 0; i < n; i += MOAI_EW_BLOCK) {                           \
      int64_t m = n - i < MOAI_EW_BLOCK ? n - i : MOAI_EW_BLOCK;               \
      WIDEN(ta, a + i * sa, sa ? m : 1, 1);                                    \
      WIDEN(tb, b + i * sb, sb ? m : 1, 1);                                    \
      err |= F32LOOP(o + i, ta, tb, m, sa, sb);                                \
    }                                                                          \
    return err;                                                                \
  }

/* Loops NAME##_<suffix> for every numeric dtype of one binary op whose
 * output has the input's dtype. SEXPR: signed ints, UEXPR: unsigned ints,
 * FEXPR: f32/f64 (and f16/bf16 through the f32 loop). */
#define MOAI_EW_DEF_BINARY_NUMERIC(NAME, SEXPR, UEXPR, FEXPR)                  \
  MOAI_EW_DEF_BINARY(NAME##_i8, int8_t, int8_t, SEXPR)                         \
  MOAI_EW_DEF_BINARY(NAME##_i16, int16_t, int16_t, SEXPR)                      \
  MOAI_EW_DEF_BINARY(NAME##_i32, int32_t, int32_t, SEXPR)                      \
  MOAI_EW_DEF_BINARY(NAME##_i64, int64_t, int64_t, SEXPR)                      \
  MOAI_EW_DEF_BINARY(NAME##_u8, uint8_t, uint8_t, UEXPR)                       \
  MOAI_EW_DEF_BINARY(NAME##_u16, uint16_t, uint16_t, UEXPR)                    \
  MOAI_EW_DEF_BINARY(NAME##_u32, uint32_t, uint32_t, UEXPR)                    \
  MOAI_EW_DEF_BINARY(NAME##_u64, uint64_t, uint64_t, UEXPR)                    \
  MOAI_EW_DEF_BINARY(NAME##_f32, float, float, FEXPR)                          \
  MOAI_EW_DEF_BINARY(NAME##_f64, double, double, FEXPR)                        \
  MOAI_EW_DEF_BINARY_WIDEN(NAME##_f16, NAME##_f32, moai_ew_f16_to_f32,         \
                           moai_ew_f32_to_f16)                                 \
  MOAI_EW_DEF_BINARY_WIDEN(NAME##_bf16, NAME##_f32, moai_ew_bf16_to_f32,       \
                           moai_ew_f32_to_bf16)

/* The same for comparisons: bool output, EXPR for every input dtype. */
#define MOAI_EW_DEF_COMPARE_NUMERIC(NAME, EXPR)                                \
  MOAI_EW_DEF_BINARY(NAME##_i8, int8_t, uint8_t, EXPR)                         \
  MOAI_EW_DEF_BINARY(NAME##_i16, int16_t, uint8_t, EXPR)                       \
  MOAI_EW_DEF_BINARY(NAME##_i32, int32_t, uint8_t, EXPR)                       \
  MOAI_EW_DEF_BINARY(NAME##_i64, int64_t, uint8_t, EXPR)                       \
  MOAI_EW_DEF_BINARY(NAME##_u8, uint8_t, uint8_t, EXPR)                        \
  MOAI_EW_DEF_BINARY(NAME##_u16, uint16_t, uint8_t, EXPR)                      \
  MOAI_EW_DEF_BINARY(NAME##_u32, uint32_t, uint8_t, EXPR)                      \
  MOAI_EW_DEF_BINARY(NAME##_u64, uint64_t, uint8_t, EXPR)                      \
  MOAI_EW_DEF_BINARY(NAME##_f32, float, uint8_t, EXPR)                         \
  MOAI_EW_DEF_BINARY(NAME##_f64, double, uint8_t, EXPR)                        \
  MOAI_EW_DEF_BINARY_WIDEN_BOOL(NAME##_f16, NAME##_f32, moai_ew_f16_to_f32)    \
  MOAI_EW_DEF_BINARY_WIDEN_BOOL(NAME##_bf16, NAME##_f32, moai_ew_bf16_to_f32)

/* Designated initialisers of a dtype table for NAME##_<suffix> loops. */
#define MOAI_EW_NUMERIC_ENTRIES(NAME)                                          \
  [MOAI_ABI_I8] = NAME##_i8, [MOAI_ABI_I16] = NAME##_i16,                      \
  [MOAI_ABI_I32] = NAME##_i32, [MOAI_ABI_I64] = NAME##_i64,                    \
  [MOAI_ABI_U8] = NAME##_u8, [MOAI_ABI_U16] = NAME##_u16,                      \
  [MOAI_ABI_U32] = NAME##_u32, [MOAI_ABI_U64] = NAME##_u64,                    \
  [MOAI_ABI_F32] = NAME##_f32, [MOAI_ABI_F64] = NAME##_f64,                    \
  [MOAI_ABI_F16] = NAME##_f16, [MOAI_ABI_BF16] = NAME##_bf16

/* The pair of kernels (NAME##_ref, NAME##_opt) of a binary op. */
#define MOAI_EW_DEF_BINARY_KERNELS(NAME, DEF)                                  \
  static void NAME##_ref(const moai_exec_t *ex, const moai_op_desc_t *op,      \
                         int ith, int nth) {                                   \
    moai_ew_binary_ref(ex, op, ith, nth, &(DEF));                              \
  }                                                                            \
  static void NAME##_opt(const moai_exec_t *ex, const moai_op_desc_t *op,      \
                         int ith, int nth) {                                   \
    moai_ew_binary_opt(ex, op, ith, nth, &(DEF));                              \
  }

/* static void NAME(o, x, n, params): o[i] = EXPR(x[i]) (see ew.h). */
#define MOAI_EW_DEF_UNARY(NAME, T, EXPR)                                       \
  static void NAME(void *o_, const void *x_, int64_t n, const void *params) {  \
    typedef T ew_t;                                                            \
    typedef MOAI_EW_UWIDE(T) ew_u;                                             \
    (void)sizeof(ew_u);                                                        \
    (void)params;                                                              \
    ew_t *o = (ew_t *)o_;                                                      \
    const ew_t *xs = (const ew_t *)x_;                                         \
    for (int64_t i = 0; i < n; ++i) {                                          \
      const ew_t x = xs[i];                                                    \
      o[i] = (ew_t)(EXPR);                                                     \
    }                                                                          \
  }

/* f16/bf16 unary loop through the f32 one, a block at a time. */
#define MOAI_EW_DEF_UNARY_WIDEN(NAME, F32LOOP, WIDEN, NARROW)                  \
  static void NAME(void *o_, const void *x_, int64_t n, const void *params) {  \
    uint16_t *o = (uint16_t *)o_;                                              \
    const uint16_t *x = (const uint16_t *)x_;                                  \
    float t[MOAI_EW_BLOCK];                                                    \
    for (int64_t i = 0; i < n; i += MOAI_EW_BLOCK) {                           \
      int64_t m = n - i < MOAI_EW_BLOCK ? n - i : MOAI_EW_BLOCK;               \
      WIDEN(t, x + i, m, 1);                                                   \
      F32LOOP(t, t, m, params);                                                \
      NARROW(o + i, t, m);                                                     \
    }                                                                          \
  }

/* Both half types of NAME from NAME##_f32 (F32 names the f32 loop). */
#define MOAI_EW_DEF_UNARY_HALVES(NAME, F32)                                    \
  MOAI_EW_DEF_UNARY_WIDEN(NAME##_f16, F32, moai_ew_f16_to_f32, moai_ew_f32_to_f16) \
  MOAI_EW_DEF_UNARY_WIDEN(NAME##_bf16, F32, moai_ew_bf16_to_f32, moai_ew_f32_to_bf16)

/* The four float dtypes of a unary op. */
#define MOAI_EW_DEF_UNARY_FLOAT(NAME, F32EXPR, F64EXPR)                        \
  MOAI_EW_DEF_UNARY(NAME##_f32, float, F32EXPR)                                \
  MOAI_EW_DEF_UNARY(NAME##_f64, double, F64EXPR)                               \
  MOAI_EW_DEF_UNARY_HALVES(NAME, NAME##_f32)

#define MOAI_EW_FLOAT_ENTRIES(NAME)                                            \
  [MOAI_ABI_F32] = NAME##_f32, [MOAI_ABI_F64] = NAME##_f64,                    \
  [MOAI_ABI_F16] = NAME##_f16, [MOAI_ABI_BF16] = NAME##_bf16

/* The kernels NAME##_ref and NAME##_opt of a unary op from two tables. */
#define MOAI_EW_DEF_UNARY_KERNELS(NAME, REF_LOOPS, OPT_LOOPS)                  \
  static void NAME##_ref(const moai_exec_t *ex, const moai_op_desc_t *op,      \
                         int ith, int nth) {                                   \
    moai_ew_unary(ex, op, ith, nth, REF_LOOPS, NULL, true);                    \
  }                                                                            \
  static void NAME##_opt(const moai_exec_t *ex, const moai_op_desc_t *op,      \
                         int ith, int nth) {                                   \
    moai_ew_unary(ex, op, ith, nth, OPT_LOOPS, NULL, false);                   \
  }

#endif /* MOAI_KERNELS_ELEMENTWISE_LOOPS_H */
