/* IEEE binary16 (f16) and bfloat16 (bf16) conversions, shared by the
 * elementwise and nn kernel families: round to nearest even, branch-light
 * so that loops over them vectorise. Kernels compute f16 and bf16 in f32;
 * narrowing from f64 and from 64-bit integers rounds once (directly from
 * the double's bits), never through f32, which would round twice. NaN
 * stays NaN (quiet, sign kept); overflow gives infinity. */
#ifndef MOAI_KERNELS_HALF_H
#define MOAI_KERNELS_HALF_H

#include <stdint.h>
#include <string.h>

static inline uint32_t moai_f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
static inline float moai_f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static inline uint64_t moai_f64_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, sizeof u);
  return u;
}

/* f16 -> f32 (exact). F. Giesen's half_to_float_fast5, its branches
 * turned into integer selects so loops over it vectorise. */
static inline float moai_f16_to_f32(uint16_t h) {
  uint32_t o = (uint32_t)(h & 0x7fffu) << 13;
  uint32_t exp = o & 0x0f800000u;
  o += (uint32_t)(127 - 15) << 23;
  uint32_t infnan = 0u - (uint32_t)(exp == 0x0f800000u);
  o += infnan & ((uint32_t)(128 - 16) << 23);
  /* zero / subnormal: renormalise through an f32 subtraction */
  uint32_t zero = 0u - (uint32_t)(exp == 0);
  uint32_t sub = moai_f32_bits(moai_f32_from_bits(o + (1u << 23)) - moai_f32_from_bits(113u << 23));
  o = (o & ~zero) | (sub & zero);
  return moai_f32_from_bits(o | ((uint32_t)(h & 0x8000u) << 16));
}

/* f32 -> f16, round to nearest even. F. Giesen's float_to_half_fast3_rtne
 * with its three cases computed and selected (vectorisable). */
static inline uint16_t moai_f32_to_f16(float f) {
  uint32_t x = moai_f32_bits(f);
  uint32_t sign = x & 0x80000000u;
  x ^= sign;
  /* >= 65536, inf or NaN */
  uint32_t big = x > 0x7f800000u ? 0x7e00u : 0x7c00u;
  /* below the smallest normal f16: adding 0.5 puts the subnormal bits at
   * the bottom of the f32 mantissa, and the f32 addition rounds to even */
  uint32_t small = moai_f32_bits(moai_f32_from_bits(x) + 0.5f) - 0x3f000000u;
  /* normal: rebias the exponent, round to nearest even on bit 13 */
  uint32_t normal = (x + ((uint32_t)(15 - 127) << 23) + 0xfffu + ((x >> 13) & 1u)) >> 13;
  /* masks, not ?:, so GCC cannot sink the f32 addition into a branch */
  uint32_t m_big = 0u - (uint32_t)(x >= 0x47800000u);
  uint32_t m_small = ~m_big & (0u - (uint32_t)(x < 0x38800000u));
  uint32_t o = (big & m_big) | (small & m_small) | (normal & ~(m_big | m_small));
  return (uint16_t)(o | (sign >> 16));
}

static inline float moai_bf16_to_f32(uint16_t h) {
  return moai_f32_from_bits((uint32_t)h << 16);
}

/* f32 -> bf16, round to nearest even. */
static inline uint16_t moai_f32_to_bf16(float f) {
  uint32_t u = moai_f32_bits(f);
  uint32_t nan = (u >> 16) | 0x40u;
  uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

/* A double to a binary format with `mant` stored mantissa bits and exponent
 * bias `bias` (f16: 10, 15; bf16: 7, 127), one rounding to nearest even. */
static inline uint16_t moai_f64_to_small_float(double d, int mant, int bias) {
  uint64_t x = moai_f64_bits(d);
  uint16_t sign = (uint16_t)((x >> 48) & 0x8000u);
  x &= ~(1ull << 63);
  uint16_t inf = (uint16_t)(((1u << (15 - mant)) - 1u) << mant);
  if (x >= 0x7ff0000000000000ull)
    return (uint16_t)(sign | inf | (x > 0x7ff0000000000000ull ? 1u << (mant - 1) : 0u));
  int e = (int)(x >> 52) - 1023;
  if (e >= bias + 1) return (uint16_t)(sign | inf);
  /* The smallest subnormal is 2^(1 - bias - mant); half of it ties to 0. */
  if (e < -bias - mant) return sign;
  uint64_t m = (x & ((1ull << 52) - 1)) | (1ull << 52);
  int normal = e >= 1 - bias;
  int shift = normal ? 52 - mant : 52 - mant + (1 - bias - e);
  uint64_t q = m >> shift;
  uint64_t rem = m & ((1ull << shift) - 1);
  uint64_t half = 1ull << (shift - 1);
  q += rem > half || (rem == half && (q & 1u));
  /* For normals q holds the implicit bit; adding (e + bias - 1) << mant
   * makes it the exponent, and a rounding carry moves into the exponent
   * (up to infinity) by itself. */
  uint64_t r = normal ? ((uint64_t)(e + bias - 1) << mant) + q : q;
  return (uint16_t)(sign | r);
}

static inline uint16_t moai_f64_to_f16(double d) { return moai_f64_to_small_float(d, 10, 15); }
static inline uint16_t moai_f64_to_bf16(double d) { return moai_f64_to_small_float(d, 7, 127); }

/* A 64-bit integer magnitude to double rounded to odd (truncate, then set
 * the last bit if anything was lost): rounding that double again to a
 * narrower format gives the correctly rounded result. */
static inline double moai_u64_to_f64_odd(uint64_t u) {
  if (u < (1ull << 53)) return (double)u;
  int shift = 11 - __builtin_clzll(u);
  uint64_t kept = (u >> shift) | ((u & ((1ull << shift) - 1)) != 0);
  return (double)kept * (double)(1ull << shift);
}
static inline double moai_i64_to_f64_odd(int64_t v) {
  uint64_t mag = v < 0 ? 0ull - (uint64_t)v : (uint64_t)v;
  double d = moai_u64_to_f64_odd(mag);
  return v < 0 ? -d : d;
}

#endif /* MOAI_KERNELS_HALF_H */
