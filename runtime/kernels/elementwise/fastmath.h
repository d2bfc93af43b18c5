/* Vectorisable f32 exp and sigmoid for the optimised kernels (private).
 * Accuracy (checked by test_kernels_elementwise over a dense sweep against
 * double-precision libm): max relative error below 1e-6 on normal results;
 * NaN propagates, overflow gives +inf, underflow 0 (through subnormals).
 *
 * exp(x) = 2^n * exp(r) with n = round(x / ln 2) and r = x - n ln 2 in
 * [-ln2/2, ln2/2] (Cody-Waite: ln 2 split into a short high part, so n*hi
 * is exact, and a low part); exp(r) by its degree-7 Taylor polynomial
 * (truncation error below 6e-9 relative on that interval); 2^n applied as
 * two exact power-of-two factors so subnormal results round only once. No
 * float-to-int conversion (UB for NaN): n is read from the bits of the
 * rounded float. */
#ifndef MOAI_KERNELS_ELEMENTWISE_FASTMATH_H
#define MOAI_KERNELS_ELEMENTWISE_FASTMATH_H

#include <stdint.h>

#include "kernels/half.h"

/* c ? a : b through bit masks: a plain ?: lets GCC specialise the code
 * after it for the constant arm (jump threading), which leaves control flow
 * in the loop and stops vectorisation. */
static inline float moai_selectf(int c, float a, float b) {
  uint32_t m = 0u - (uint32_t)(c != 0);
  return moai_f32_from_bits((moai_f32_bits(a) & m) | (moai_f32_bits(b) & ~m));
}

static inline float moai_expf_fast(float x) {
  /* Past these, exp(x) is inf / rounds to 0; NaN passes the comparisons. */
  x = moai_selectf(x > 88.8f, 88.8f, x);
  x = moai_selectf(x < -104.0f, -104.0f, x);
  const float shifter = 12582912.0f; /* 1.5 * 2^23: rounds to an integer */
  float k = x * 1.44269504088896341f + shifter;
  float n = k - shifter;
  float r = x - n * 0.693145751953125f;  /* ln 2, high 16 bits */
  r = r - n * 1.42860682030941723e-6f;   /* ln 2 - high part */
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t ni = (int32_t)(moai_f32_bits(k) - moai_f32_bits(shifter));
  int32_t n1 = ni / 2, n2 = ni - n1;
  float s1 = moai_f32_from_bits((uint32_t)(n1 + 127) << 23);
  float s2 = moai_f32_from_bits((uint32_t)(n2 + 127) << 23);
  return p * s1 * s2;
}

/* sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) below, e = exp(-|x|):
 * exp never overflows, so tiny (subnormal) results for x < -88 stay exact
 * to exp's accuracy. */
static inline float moai_sigmoidf_fast(float x) {
  float e = moai_expf_fast(x < 0 ? x : -x);
  float d = 1.0f + e;
  return moai_selectf(x < 0, e / d, 1.0f / d);
}

/* tanh(|x|) = e / (e + 2) with e = expm1(2|x|): for |x| < 0.55 expm1 by
 * its Taylor polynomial to degree 11 (truncation < 4e-9 relative), beyond
 * from moai_expf_fast, where 1 - 2/(e + 2) cancels no more than one bit. */
static inline float moai_tanhf_fast(float x) {
  float a = x < 0 ? -x : x;
  float y = 2.0f * a;
  float q = 1.0f / 39916800.0f;
  q = q * y + 1.0f / 3628800.0f;
  q = q * y + 1.0f / 362880.0f;
  q = q * y + 1.0f / 40320.0f;
  q = q * y + 1.0f / 5040.0f;
  q = q * y + 1.0f / 720.0f;
  q = q * y + 1.0f / 120.0f;
  q = q * y + 1.0f / 24.0f;
  q = q * y + 1.0f / 6.0f;
  q = q * y + 0.5f;
  q = q * y + 1.0f;
  float e = q * y;
  float small = e / (e + 2.0f);
  float large = 1.0f - 2.0f / (moai_expf_fast(y) + 1.0f);
  float t = moai_selectf(a < 0.55f, small, large);
  return moai_selectf(x < 0, -t, t);
}

#endif /* MOAI_KERNELS_ELEMENTWISE_FASTMATH_H */
