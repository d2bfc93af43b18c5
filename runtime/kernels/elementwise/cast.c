/* Cast between every pair of moai dtypes (13 x 13 loops, one table).
 *  - integer -> integer wraps modulo 2^bits (numpy's astype);
 *  - float -> integer truncates toward zero; NaN gives 0 and values out of
 *    the target's range saturate (ONNX leaves both undefined; C makes them
 *    UB, so the conversion is guarded);
 *  - anything -> bool is x != 0 (NaN is true); bool -> anything is 0 or 1;
 *  - -> f32/f64: C conversion (round to nearest even);
 *  - -> f16/bf16: round to nearest even once, from the f32 or f64 value, and
 *    from 64-bit integers through a double rounded to odd (see half.h);
 *  - same dtype: a byte copy (keeps NaN payloads). */
#include "kernels/elementwise/ew.h"

/* Saturating truncation of a double into integer type T. */
#define DEF_SAT(T, LO, HI, MIN, MAX)                                       \
  static inline T sat_##T(double v) {                                      \
    return v != v ? (T)0 : v < (LO) ? (T)(MIN) : v >= (HI) ? (T)(MAX) : (T)v; \
  }
DEF_SAT(int8_t, -128.0, 128.0, INT8_MIN, INT8_MAX)
DEF_SAT(int16_t, -32768.0, 32768.0, INT16_MIN, INT16_MAX)
DEF_SAT(int32_t, -2147483648.0, 2147483648.0, INT32_MIN, INT32_MAX)
DEF_SAT(int64_t, -9223372036854775808.0, 9223372036854775808.0, INT64_MIN, INT64_MAX)
DEF_SAT(uint8_t, 0.0, 256.0, 0, UINT8_MAX)
DEF_SAT(uint16_t, 0.0, 65536.0, 0, UINT16_MAX)
DEF_SAT(uint32_t, 0.0, 4294967296.0, 0, UINT32_MAX)
DEF_SAT(uint64_t, 0.0, 18446744073709551616.0, 0, UINT64_MAX)
#undef DEF_SAT

static inline uint16_t f16_from_i64(int64_t v) { return moai_f64_to_f16(moai_i64_to_f64_odd(v)); }
static inline uint16_t f16_from_u64(uint64_t v) { return moai_f64_to_f16(moai_u64_to_f64_odd(v)); }
static inline uint16_t f16_from_int(double v) { return moai_f64_to_f16(v); } /* exact */
static inline uint16_t bf16_from_i64(int64_t v) { return moai_f64_to_bf16(moai_i64_to_f64_odd(v)); }
static inline uint16_t bf16_from_u64(uint64_t v) { return moai_f64_to_bf16(moai_u64_to_f64_odd(v)); }
static inline uint16_t bf16_from_int(double v) { return moai_f64_to_bf16(v); } /* exact */

/* Source loads (f16/bf16 to float, bool to 0/1) and destination
 * conversions selected by the loaded value's C type. */
#define LD_PLAIN(v) (v)
#define LD_BOOL(v) ((uint8_t)((v) != 0))
#define LD_F16(v) moai_f16_to_f32(v)
#define LD_BF16(v) moai_bf16_to_f32(v)

#define CV_INT(T, v) \
  _Generic((v), float: sat_##T((double)(v)), double: sat_##T((double)(v)), default: (T)(uint64_t)(v))
#define CV_BOOL(v) ((uint8_t)((v) != 0))
#define CV_I8(v) CV_INT(int8_t, v)
#define CV_I16(v) CV_INT(int16_t, v)
#define CV_I32(v) CV_INT(int32_t, v)
#define CV_I64(v) CV_INT(int64_t, v)
#define CV_U8(v) CV_INT(uint8_t, v)
#define CV_U16(v) CV_INT(uint16_t, v)
#define CV_U32(v) CV_INT(uint32_t, v)
#define CV_U64(v) CV_INT(uint64_t, v)
#define CV_F32(v) ((float)(v))
#define CV_F64(v) ((double)(v))
#define CV_F16(v)                                                                  \
  _Generic((v), float: moai_f32_to_f16, double: moai_f64_to_f16, int64_t: f16_from_i64, \
           uint64_t: f16_from_u64, default: f16_from_int)(v)
#define CV_BF16(v)                                                                   \
  _Generic((v), float: moai_f32_to_bf16, double: moai_f64_to_bf16, int64_t: bf16_from_i64, \
           uint64_t: bf16_from_u64, default: bf16_from_int)(v)

#define DTYPE_bool MOAI_ABI_BOOL
#define DTYPE_i8 MOAI_ABI_I8
#define DTYPE_i16 MOAI_ABI_I16
#define DTYPE_i32 MOAI_ABI_I32
#define DTYPE_i64 MOAI_ABI_I64
#define DTYPE_u8 MOAI_ABI_U8
#define DTYPE_u16 MOAI_ABI_U16
#define DTYPE_u32 MOAI_ABI_U32
#define DTYPE_u64 MOAI_ABI_U64
#define DTYPE_f32 MOAI_ABI_F32
#define DTYPE_f64 MOAI_ABI_F64
#define DTYPE_f16 MOAI_ABI_F16
#define DTYPE_bf16 MOAI_ABI_BF16

/* Y(suffix, C type, load) for sources; X(src..., suffix, C type, convert). */
#define SRC_LIST(Y)                                                                 \
  Y(bool, uint8_t, LD_BOOL) Y(i8, int8_t, LD_PLAIN) Y(i16, int16_t, LD_PLAIN)       \
  Y(i32, int32_t, LD_PLAIN) Y(i64, int64_t, LD_PLAIN) Y(u8, uint8_t, LD_PLAIN)      \
  Y(u16, uint16_t, LD_PLAIN) Y(u32, uint32_t, LD_PLAIN) Y(u64, uint64_t, LD_PLAIN)  \
  Y(f32, float, LD_PLAIN) Y(f64, double, LD_PLAIN) Y(f16, uint16_t, LD_F16)         \
  Y(bf16, uint16_t, LD_BF16)
#define DST_LIST(X, S, ST, LD)                                                      \
  X(S, ST, LD, bool, uint8_t, CV_BOOL) X(S, ST, LD, i8, int8_t, CV_I8)              \
  X(S, ST, LD, i16, int16_t, CV_I16) X(S, ST, LD, i32, int32_t, CV_I32)             \
  X(S, ST, LD, i64, int64_t, CV_I64) X(S, ST, LD, u8, uint8_t, CV_U8)               \
  X(S, ST, LD, u16, uint16_t, CV_U16) X(S, ST, LD, u32, uint32_t, CV_U32)           \
  X(S, ST, LD, u64, uint64_t, CV_U64) X(S, ST, LD, f32, float, CV_F32)              \
  X(S, ST, LD, f64, double, CV_F64) X(S, ST, LD, f16, uint16_t, CV_F16)             \
  X(S, ST, LD, bf16, uint16_t, CV_BF16)

typedef void (*cast_loop_t)(void *o, const void *x, int64_t n);

#define GEN_CAST(S, ST, LD, D, DT, CV)                                  \
  static void cast_##S##_##D(void *o_, const void *x_, int64_t n) {     \
    DT *o = o_;                                                         \
    const ST *x = x_;                                                   \
    for (int64_t i = 0; i < n; ++i) o[i] = CV(LD(x[i]));                \
  }
#define GEN_CAST_ROW(S, ST, LD) DST_LIST(GEN_CAST, S, ST, LD)
SRC_LIST(GEN_CAST_ROW)

#define CAST_ENTRY(S, ST, LD, D, DT, CV) [DTYPE_##D] = cast_##S##_##D,
#define CAST_ROW(S, ST, LD) [DTYPE_##S] = {DST_LIST(CAST_ENTRY, S, ST, LD)},
static const cast_loop_t cast_table[MOAI_EW_DTYPE_TABLE][MOAI_EW_DTYPE_TABLE] = {
    SRC_LIST(CAST_ROW)};

static void cast_kernel(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                        bool reference) {
  if (!moai_ew_check_arity(ex, op, ith, 1, 1, 1)) return;
  const moai_tensor_t *x = moai_op_in(op, 0), *out = moai_op_out(op, 0);
  cast_loop_t loop = NULL;
  if (x->dtype > 0 && x->dtype < MOAI_EW_DTYPE_TABLE && out->dtype > 0 &&
      out->dtype < MOAI_EW_DTYPE_TABLE)
    loop = cast_table[x->dtype][out->dtype];
  if (!loop) {
    moai_ew_fail(ex, op, ith, "cast: unsupported dtype %s -> %s", moai_ew_dtype_name(x->dtype),
                 moai_ew_dtype_name(out->dtype));
    return;
  }
  if (moai_tensor_numel(x) != moai_tensor_numel(out)) {
    moai_ew_fail(ex, op, ith, "cast: input and output sizes differ");
    return;
  }
  const size_t xs = moai_ew_dtype_size(x->dtype), os = moai_ew_dtype_size(out->dtype);
  const unsigned char *px = moai_ew_ptr(ex, x);
  unsigned char *po = moai_ew_ptr(ex, out);
  long long begin, end;
  moai_split_range(moai_tensor_numel(out), ith, nth, &begin, &end);
  if (x->dtype == out->dtype) {
    if (po != px && end > begin)
      memcpy(po + (size_t)begin * os, px + (size_t)begin * xs, (size_t)(end - begin) * os);
  } else if (reference) {
    for (int64_t i = begin; i < end; ++i) loop(po + (size_t)i * os, px + (size_t)i * xs, 1);
  } else if (end > begin) {
    loop(po + (size_t)begin * os, px + (size_t)begin * xs, end - begin);
  }
}

static void cast_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  cast_kernel(ex, op, ith, nth, true);
}
static void cast_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth) {
  cast_kernel(ex, op, ith, nth, false);
}

void moai_ew_register_cast(moai_isa_t isa, moai_kernel_fn_t *table) {
  if (isa == MOAI_ISA_REFERENCE) table[MOAI_KERNEL_CAST] = cast_ref;
  else if (isa == MOAI_ISA_GENERIC) table[MOAI_KERNEL_CAST] = cast_opt;
}
