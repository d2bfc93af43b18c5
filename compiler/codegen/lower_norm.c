#include "codegen/lower_norm.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "abi/moai_abi.h"

static bool fail(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t err_size, const char *fmt, ...) {
  if (err && err_size) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(err, err_size, fmt, args);
    va_end(args);
  }
  return false;
}

static int64_t clamp(int64_t v, int64_t lo, int64_t hi) {
  return v < lo ? lo : v > hi ? hi : v;
}

bool moai_norm_axis(int64_t axis, int64_t rank, int64_t *out, char *err,
                    size_t err_size) {
  if (axis < -rank || axis >= rank)
    return fail(err, err_size, "axis %lld out of range for rank %lld",
                (long long)axis, (long long)rank);
  *out = axis < 0 ? axis + rank : axis;
  return true;
}

bool moai_norm_slice(int64_t rank, const int64_t *dims, size_t n,
                     const int64_t *starts, const int64_t *ends,
                     const int64_t *axes, const int64_t *steps,
                     int64_t *out_start, int64_t *out_step, int64_t *out_count,
                     char *err, size_t err_size) {
  if (rank < 0 || rank > MOAI_MAX_RANK)
    return fail(err, err_size, "rank %lld is not supported", (long long)rank);
  if ((int64_t)n > rank)
    return fail(err, err_size, "%zu slice axes for rank %lld", n,
                (long long)rank);
  int64_t start[MOAI_MAX_RANK], step[MOAI_MAX_RANK], count[MOAI_MAX_RANK];
  bool seen[MOAI_MAX_RANK] = {false};
  for (int64_t a = 0; a < rank; ++a) {
    start[a] = 0;
    step[a] = 1;
    count[a] = dims[a];
  }
  for (size_t i = 0; i < n; ++i) {
    int64_t axis = axes ? axes[i] : (int64_t)i;
    if (!moai_norm_axis(axis, rank, &axis, err, err_size)) return false;
    if (seen[axis])
      return fail(err, err_size, "axis %lld is sliced twice", (long long)axis);
    seen[axis] = true;
    int64_t s = steps ? steps[i] : 1;
    if (s == 0) return fail(err, err_size, "slice step is 0");
    int64_t dim = dims[axis];
    int64_t b = starts[i], e = ends[i];
    if (b < 0) b += dim;
    if (e < 0) e += dim;
    int64_t c;
    if (s > 0) {
      b = clamp(b, 0, dim);
      e = clamp(e, 0, dim);
      /* e - b <= dim, so (e - b - 1) / s cannot overflow (e - b + s - 1 can) */
      c = e > b ? (e - b - 1) / s + 1 : 0;
    } else {
      /* an empty axis has no [0, dim - 1]: it selects nothing */
      b = clamp(b, 0, dim - 1);
      e = clamp(e, -1, dim - 1);
      /* both operands negative: the quotient is floor((b - e - 1) / -s),
       * and -s (INT64_MIN) is never formed */
      c = b > e && dim > 0 ? (e - b + 1) / s + 1 : 0;
    }
    start[axis] = c > 0 ? b : 0;
    step[axis] = s;
    count[axis] = c;
  }
  memcpy(out_start, start, (size_t)rank * sizeof(int64_t));
  memcpy(out_step, step, (size_t)rank * sizeof(int64_t));
  memcpy(out_count, count, (size_t)rank * sizeof(int64_t));
  return true;
}

bool moai_norm_reduce_axes(int64_t rank, size_t n, const int64_t *axes,
                           bool noop_with_empty_axes, uint64_t *out_mask,
                           bool *out_noop, char *err, size_t err_size) {
  if (rank < 0 || rank > 64)
    return fail(err, err_size, "rank %lld is not supported", (long long)rank);
  uint64_t mask = 0;
  bool noop = false;
  if (!axes || n == 0) {
    if (noop_with_empty_axes)
      noop = true;
    else
      mask = rank == 64 ? ~(uint64_t)0 : (((uint64_t)1 << rank) - 1);
  } else {
    for (size_t i = 0; i < n; ++i) {
      int64_t a;
      if (!moai_norm_axis(axes[i], rank, &a, err, err_size)) return false;
      mask |= (uint64_t)1 << a;
    }
  }
  *out_mask = mask;
  *out_noop = noop;
  return true;
}

bool moai_norm_perm(int64_t rank, size_t n, const int64_t *perm,
                    int64_t *out_perm, char *err, size_t err_size) {
  if (rank < 0 || rank > MOAI_MAX_RANK)
    return fail(err, err_size, "rank %lld is not supported", (long long)rank);
  int64_t p[MOAI_MAX_RANK];
  bool seen[MOAI_MAX_RANK] = {false};
  if (n == 0 || !perm) {
    for (int64_t i = 0; i < rank; ++i) p[i] = rank - 1 - i;
  } else {
    if ((int64_t)n != rank)
      return fail(err, err_size, "perm has %zu entries for rank %lld", n,
                  (long long)rank);
    for (size_t i = 0; i < n; ++i) {
      int64_t a;
      if (!moai_norm_axis(perm[i], rank, &a, err, err_size)) return false;
      if (seen[a])
        return fail(err, err_size, "perm names axis %lld twice", (long long)a);
      seen[a] = true;
      p[i] = a;
    }
  }
  memcpy(out_perm, p, (size_t)rank * sizeof(int64_t));
  return true;
}

bool moai_norm_auto_pad(const char *text, size_t len, moai_auto_pad_t *out) {
  static const struct {
    const char *name;
    moai_auto_pad_t mode;
  } kModes[] = {{"NOTSET", MOAI_AUTO_PAD_NOTSET},
                {"SAME_UPPER", MOAI_AUTO_PAD_SAME_UPPER},
                {"SAME_LOWER", MOAI_AUTO_PAD_SAME_LOWER},
                {"VALID", MOAI_AUTO_PAD_VALID}};
  for (size_t i = 0; i < sizeof(kModes) / sizeof(kModes[0]); ++i)
    if (strlen(kModes[i].name) == len && memcmp(kModes[i].name, text, len) == 0) {
      *out = kModes[i].mode;
      return true;
    }
  return false;
}

bool moai_norm_window(int n, const int64_t *in, const int64_t *kernel,
                      const int64_t *strides, const int64_t *dilations,
                      const int64_t *pads, moai_auto_pad_t auto_pad,
                      bool ceil_mode, int64_t *out_strides,
                      int64_t *out_dilations, int64_t *out_pads,
                      int64_t *out_sizes, char *err, size_t err_size) {
  if (n < 1 || n > 3)
    return fail(err, err_size, "%d spatial axes (the backend supports 1 to 3)",
                n);
  int64_t st[3], dl[3], pd[6], sz[3];
  for (int i = 0; i < n; ++i) {
    int64_t k = kernel[i], s = strides ? strides[i] : 1;
    int64_t d = dilations ? dilations[i] : 1;
    if (k < 1 || s < 1 || d < 1)
      return fail(err, err_size,
                  "spatial axis %d: kernel %lld, stride %lld and dilation "
                  "%lld must be positive",
                  i, (long long)k, (long long)s, (long long)d);
    if (in[i] < 0 || in[i] > (INT64_C(1) << 40) || k > (INT64_C(1) << 20) ||
        d > (INT64_C(1) << 20))
      return fail(err, err_size, "spatial axis %d: sizes out of range", i);
    int64_t ek = (k - 1) * d + 1;
    int64_t pb = pads ? pads[i] : 0, pe = pads ? pads[n + i] : 0;
    if (pb < 0 || pe < 0)
      return fail(err, err_size, "spatial axis %d: negative padding", i);
    if (auto_pad == MOAI_AUTO_PAD_VALID) {
      pb = pe = 0;
    } else if (auto_pad != MOAI_AUTO_PAD_NOTSET) {
      int64_t target = (in[i] + s - 1) / s;
      int64_t total = (target - 1) * s + ek - in[i];
      if (total < 0) total = 0;
      pb = auto_pad == MOAI_AUTO_PAD_SAME_LOWER ? (total + 1) / 2 : total / 2;
      pe = total - pb;
    }
    int64_t eff = in[i] + pb + pe;
    if (eff < ek)
      return fail(err, err_size,
                  "spatial axis %d: window of extent %lld is larger than the "
                  "padded input (%lld)",
                  i, (long long)ek, (long long)eff);
    int64_t o = (eff - ek + (ceil_mode ? s - 1 : 0)) / s + 1;
    if (ceil_mode && (o - 1) * s >= in[i] + pb) --o;
    st[i] = s;
    dl[i] = d;
    pd[i] = pb;
    pd[n + i] = pe;
    sz[i] = o;
  }
  memcpy(out_strides, st, (size_t)n * sizeof(int64_t));
  memcpy(out_dilations, dl, (size_t)n * sizeof(int64_t));
  memcpy(out_pads, pd, 2 * (size_t)n * sizeof(int64_t));
  memcpy(out_sizes, sz, (size_t)n * sizeof(int64_t));
  return true;
}
