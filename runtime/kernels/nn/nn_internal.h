/* Shared helpers of the nn kernel family (matmul, softmax, conv, pools,
 * norms, scans): half-precision conversions, dtype names for error
 * messages, and the per-file registration functions that register.c calls.
 * Internal to runtime/kernels/nn. */
#ifndef MOAI_KERNELS_NN_INTERNAL_H
#define MOAI_KERNELS_NN_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"

/* Each family file registers its kernels for one ISA level (reference or
 * generic; higher levels fall back to generic through moai_kernels_fill). */
void moai_nn_register_matmul(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_softmax(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_conv(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_pool(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_norm(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_nn_register_scan(moai_isa_t isa, moai_kernel_fn_t *table);

/* Size of the small per-kernel dtype tables: dtype ids are ONNX's (< 17). */
#define MOAI_NN_DTYPE_TABLE 17

static inline const char *moai_nn_dtype_name(int32_t dtype) {
  switch (dtype) {
    case MOAI_ABI_F32: return "float32";
    case MOAI_ABI_U8: return "uint8";
    case MOAI_ABI_I8: return "int8";
    case MOAI_ABI_U16: return "uint16";
    case MOAI_ABI_I16: return "int16";
    case MOAI_ABI_I32: return "int32";
    case MOAI_ABI_I64: return "int64";
    case MOAI_ABI_BOOL: return "bool";
    case MOAI_ABI_F16: return "float16";
    case MOAI_ABI_F64: return "float64";
    case MOAI_ABI_U32: return "uint32";
    case MOAI_ABI_U64: return "uint64";
    case MOAI_ABI_BF16: return "bfloat16";
  }
  return "unknown";
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
#define MOAI_NN_LOOKUP(table, dtype)                                              \
  ((dtype) >= 0 && (dtype) < MOAI_NN_DTYPE_TABLE ? (table)[(dtype)] : NULL)

/* IEEE binary16 <-> binary32, round to nearest even (subnormals, inf and NaN
 * kept). Bit manipulation so that it needs no F16C and no _Float16. */
static inline float moai_nn_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else { /* subnormal: normalise */
    int e = -1;
    do { ++e; man <<= 1; } while (!(man & 0x400u));
    bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

static inline uint16_t moai_nn_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof(x));
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  uint32_t ax = x & 0x7fffffffu;
  if (ax >= 0x7f800000u) /* inf or NaN (NaN stays quiet) */
    return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
  if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds to inf */
  if (ax < 0x38800000u) { /* subnormal or zero in f16 */
    if (ax < 0x33000000u) return sign; /* below half the smallest subnormal */
    uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e; /* 14..24 */
    uint32_t r = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u))) ++r;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u; /* rebias 127->15 */
  return (uint16_t)(sign | (r >> 13));
}

static inline float moai_nn_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

static inline uint16_t moai_nn_f32_to_bf16(float f) {
  uint32_t x;
  memcpy(&x, &f, sizeof(x));
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
  x += 0x7fffu + ((x >> 16) & 1u);
  return (uint16_t)(x >> 16);
}

/* Integer ceil division for non-negative a, positive b. */
static inline int64_t moai_nn_cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

#endif /* MOAI_KERNELS_NN_INTERNAL_H */
