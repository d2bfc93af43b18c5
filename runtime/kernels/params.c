/* Runtime-valued op parameters: see params.h. The normalisation follows the
 * ONNX operator specification (Slice-13, ReduceSum-13 / Reduce*-18) and
 * agrees with the compiler's folding of constant parameters
 * (compiler/codegen/lower_norm.c), which it cannot share: the runtime links
 * nothing of the compiler. */
#include "kernels/params.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static bool fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t err_size, const char *fmt, ...) {
  if (err && err_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return false;
}

/* Checks that t is a present int32/int64 tensor; *out_n its element count. */
static bool int_tensor(const moai_exec_t *ex, const moai_tensor_t *t, const char *what,
                       int64_t *out_n, char *err, size_t err_size) {
  if (!t || t->region >= MOAI_REGION_COUNT) return fail(err, err_size, "'%s' is absent", what);
  if (t->dtype != MOAI_ABI_I64 && t->dtype != MOAI_ABI_I32)
    return fail(err, err_size, "'%s' must be int32 or int64 (dtype %d)", what, (int)t->dtype);
  if (t->rank < 0 || t->rank > MOAI_MAX_RANK)
    return fail(err, err_size, "'%s' has an invalid rank %d", what, (int)t->rank);
  for (int32_t j = 0; j < t->rank; ++j)
    if (t->dims[j] < 0) return fail(err, err_size, "'%s' has a negative dim", what);
  *out_n = moai_tensor_numel(t);
  if (*out_n > 0 && !ex->base[t->region])
    return fail(err, err_size, "'%s' has no data (region %u is not mapped)", what,
                (unsigned)t->region);
  return true;
}

/* Element i of an int32/int64 tensor (unaligned-safe). */
static int64_t int_at(const unsigned char *p, int32_t dtype, int64_t i) {
  if (dtype == MOAI_ABI_I32) {
    int32_t v;
    memcpy(&v, p + 4 * i, 4);
    return v;
  }
  int64_t v;
  memcpy(&v, p + 8 * i, 8);
  return v;
}

bool moai_params_read_ints(const moai_exec_t *ex, const moai_tensor_t *t, const char *what,
                           int64_t *buf, size_t cap, size_t *out_n, char *err,
                           size_t err_size) {
  int64_t n = 0;
  if (!int_tensor(ex, t, what, &n, err, err_size)) return false;
  if (t->rank > 1) return fail(err, err_size, "'%s' must be 1-D (rank %d)", what, (int)t->rank);
  if ((uint64_t)n > cap)
    return fail(err, err_size, "'%s' has %lld values (at most %zu)", what, (long long)n, cap);
  const unsigned char *p = moai_tensor_ptr(ex, t);
  for (int64_t i = 0; i < n; ++i) buf[i] = int_at(p, t->dtype, i);
  *out_n = (size_t)n;
  return true;
}

bool moai_params_read_scalar(const moai_exec_t *ex, const moai_tensor_t *t, const char *what,
                             int64_t *out, char *err, size_t err_size) {
  int64_t n = 0;
  if (!int_tensor(ex, t, what, &n, err, err_size)) return false;
  if (n != 1)
    return fail(err, err_size, "'%s' must hold one value (it holds %lld)", what, (long long)n);
  *out = int_at(moai_tensor_ptr(ex, t), t->dtype, 0);
  return true;
}

bool moai_params_axis(int64_t axis, int64_t rank, const char *what, int64_t *out, char *err,
                      size_t err_size) {
  if (axis < -rank || axis >= rank)
    return fail(err, err_size, "%s %lld out of range for rank %lld", what, (long long)axis,
                (long long)rank);
  *out = axis < 0 ? axis + rank : axis;
  return true;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

bool moai_params_slice(int32_t rank, const int64_t *dims, size_t n, const int64_t *starts,
                       const int64_t *ends, const int64_t *axes, const int64_t *steps,
                       int64_t *out_start, int64_t *out_step, int64_t *out_count, char *err,
                       size_t err_size) {
  if (rank < 0 || rank > MOAI_MAX_RANK)
    return fail(err, err_size, "rank %d is not supported", (int)rank);
  if (n > (size_t)rank)
    return fail(err, err_size, "%zu sliced axes for an input of rank %d", n, (int)rank);
  bool seen[MOAI_MAX_RANK] = {false};
  for (int32_t a = 0; a < rank; ++a) {
    out_start[a] = 0;
    out_step[a] = 1;
    out_count[a] = dims[a];
  }
  for (size_t i = 0; i < n; ++i) {
    int64_t axis;
    if (!moai_params_axis(axes ? axes[i] : (int64_t)i, rank, "axis", &axis, err, err_size))
      return false;
    if (seen[axis]) return fail(err, err_size, "axis %lld is sliced twice", (long long)axis);
    seen[axis] = true;
    const int64_t s = steps ? steps[i] : 1, dim = dims[axis];
    if (s == 0) return fail(err, err_size, "step 0 on axis %lld", (long long)axis);
    int64_t b = starts[i], e = ends[i], c = 0;
    if (b < 0) b += dim; /* no overflow: b < 0 <= dim */
    if (e < 0) e += dim;
    if (s > 0) {
      b = clamp(b, 0, dim);
      e = clamp(e, 0, dim);
      /* e - b <= dim: (e - b - 1) / s cannot overflow where e - b + s - 1 could */
      if (e > b) c = (e - b - 1) / s + 1;
    } else {
      /* an empty axis has no [0, dim - 1]: it selects nothing */
      b = clamp(b, 0, dim - 1);
      e = clamp(e, -1, dim - 1);
      /* both negative: truncation is floor(|b - e - 1| / |s|), and -s is
       * never formed (s may be INT64_MIN) */
      if (b > e && dim > 0) c = (e - b + 1) / s + 1;
    }
    out_start[axis] = c > 0 ? b : 0;
    out_step[axis] = s;
    out_count[axis] = c;
  }
  return true;
}

bool moai_params_reduce_mask(int32_t rank, size_t n, const int64_t *axes,
                             bool noop_with_empty_axes, uint64_t *out_mask, char *err,
                             size_t err_size) {
  if (rank < 0 || rank > 63) return fail(err, err_size, "rank %d is not supported", (int)rank);
  uint64_t mask = 0;
  if (n == 0) {
    mask = noop_with_empty_axes ? 0 : ((uint64_t)1 << rank) - 1;
  } else {
    for (size_t i = 0; i < n; ++i) {
      int64_t a;
      if (!moai_params_axis(axes[i], rank, "axis", &a, err, err_size)) return false;
      mask |= (uint64_t)1 << a;
    }
  }
  *out_mask = mask;
  return true;
}

const char *moai_params_dims_str(int32_t rank, const int64_t *dims, char *buf, size_t size) {
  size_t at = 0;
  if (!size) return buf;
  buf[0] = '\0';
  at += (size_t)snprintf(buf, size, "[");
  for (int32_t j = 0; j < rank && at < size; ++j)
    at += (size_t)snprintf(buf + at, size - at, "%s%lld", j ? "," : "", (long long)dims[j]);
  if (at < size) snprintf(buf + at, size - at, "]");
  return buf;
}
