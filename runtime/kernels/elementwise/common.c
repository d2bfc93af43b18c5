/* Failure reporting and f16/bf16 block conversions shared by the
 * elementwise kernels. */
#include <stdarg.h>
#include <stdio.h>

#include "kernels/elementwise/ew.h"

void moai_ew_fail(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                  const char *fmt, ...) {
  if (ith != 0) return;
  char msg[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  moai_kernel_fail(ex, op, msg);
}

static const char *kernel_name(const moai_op_desc_t *op) {
  const char *name = moai_kernel_name(op->kernel);
  return name ? name : "unknown kernel";
}

void moai_ew_fail_dtype(const moai_exec_t *ex, const moai_op_desc_t *op,
                        int ith, int32_t dtype) {
  moai_ew_fail(ex, op, ith, "%s: unsupported dtype %s", kernel_name(op),
               moai_ew_dtype_name(dtype));
}

bool moai_ew_check_arity(const moai_exec_t *ex, const moai_op_desc_t *op,
                         int ith, uint32_t min_in, uint32_t max_in,
                         uint32_t n_out) {
  if (op->n_in < min_in || op->n_in > max_in || op->n_out != n_out) {
    moai_ew_fail(ex, op, ith, "%s: expected %u..%u inputs and %u outputs, got %u and %u",
                 kernel_name(op), min_in, max_in, n_out, op->n_in, op->n_out);
    return false;
  }
  for (uint32_t i = 0; i < op->n_in + op->n_out; ++i) {
    const moai_tensor_t *t = moai_op_in(op, i);
    bool required = i < min_in || i >= op->n_in; /* optional inputs come last */
    if (t->region == MOAI_REGION_NONE && !required) continue;
    if (t->region == MOAI_REGION_NONE) {
      moai_ew_fail(ex, op, ith, "%s: operand %u is absent", kernel_name(op), i);
      return false;
    }
    if (t->region >= MOAI_REGION_COUNT || !moai_ew_tensor_ok(t)) {
      moai_ew_fail(ex, op, ith, "%s: operand %u has an invalid region, rank or shape",
                   kernel_name(op), i);
      return false;
    }
  }
  return true;
}

bool moai_ew_tensor_ok(const moai_tensor_t *t) {
  if (t->rank < 0 || t->rank > MOAI_MAX_RANK) return false;
  for (int32_t j = 0; j < t->rank; ++j)
    if (t->dims[j] < 0) return false;
  return true;
}

void moai_ew_f16_to_f32(float *dst, const uint16_t *src, int64_t n, int64_t stride) {
  if (stride == 0) {
    float v = moai_f16_to_f32(src[0]);
    for (int64_t i = 0; i < n; ++i) dst[i] = v;
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = moai_f16_to_f32(src[i]);
  }
}

void moai_ew_bf16_to_f32(float *dst, const uint16_t *src, int64_t n, int64_t stride) {
  if (stride == 0) {
    float v = moai_bf16_to_f32(src[0]);
    for (int64_t i = 0; i < n; ++i) dst[i] = v;
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i] = moai_bf16_to_f32(src[i]);
  }
}

void moai_ew_f32_to_f16(uint16_t *dst, const float *src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = moai_f32_to_f16(src[i]);
}

void moai_ew_f32_to_bf16(uint16_t *dst, const float *src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = moai_f32_to_bf16(src[i]);
}
