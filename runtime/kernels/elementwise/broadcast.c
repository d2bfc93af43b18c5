/* numpy broadcasting for the optimised elementwise kernels: collapse the
 * output's axes against the inputs, then walk contiguous runs. */
#include "kernels/elementwise/ew.h"

/* Input dim aligned to output axis j (right-aligned; 1 where missing). */
static int64_t aligned_dim(const moai_tensor_t *out, const moai_tensor_t *in, int j) {
  int k = j - (out->rank - in->rank);
  return k >= 0 ? in->dims[k] : 1;
}

bool moai_ew_shape_init(moai_ew_shape_t *s, const moai_exec_t *ex,
                        const moai_op_desc_t *op, int ith,
                        const moai_tensor_t *out, uint32_t first, uint32_t n) {
  const char *name = moai_kernel_name(op->kernel);
  for (uint32_t k = first; k < first + n; ++k) {
    const moai_tensor_t *in = moai_op_in(op, k);
    if (in->region == MOAI_REGION_NONE) continue;
    bool ok = in->rank <= out->rank;
    for (int j = 0; ok && j < out->rank; ++j) {
      int64_t a = aligned_dim(out, in, j);
      ok = a == out->dims[j] || a == 1;
    }
    if (!ok) {
      moai_ew_fail(ex, op, ith, "%s: input %u does not broadcast to the output shape",
                   name ? name : "?", k);
      return false;
    }
  }
  s->out = out;
  s->rank = 0;
  s->numel = 1;
  int prev = -1;
  for (int j = 0; j < out->rank; ++j) {
    int64_t d = out->dims[j];
    s->numel *= d;
    if (d == 1) continue;
    bool merge = prev >= 0;
    for (uint32_t k = first; merge && k < first + n; ++k) {
      const moai_tensor_t *in = moai_op_in(op, k);
      if (in->region == MOAI_REGION_NONE) continue;
      merge = (aligned_dim(out, in, prev) == 1) == (aligned_dim(out, in, j) == 1);
    }
    if (merge) {
      s->dims[s->rank - 1] *= d;
      s->last[s->rank - 1] = (int8_t)j;
    } else {
      s->dims[s->rank] = d;
      s->last[s->rank] = (int8_t)j;
      s->rank++;
    }
    prev = j;
  }
  if (s->rank == 0) { /* a single element */
    s->rank = 1;
    s->dims[0] = 1;
    s->last[0] = -1;
  }
  return true;
}

void moai_ew_shape_strides(const moai_ew_shape_t *s, const moai_tensor_t *in,
                           int64_t strides[MOAI_MAX_RANK]) {
  const moai_tensor_t *out = s->out;
  for (int g = 0; g < s->rank; ++g) {
    int last = s->last[g];
    if (last < 0 || aligned_dim(out, in, last) == 1) {
      strides[g] = 0;
      continue;
    }
    int64_t st = 1;
    for (int j = last + 1; j < out->rank; ++j) st *= aligned_dim(out, in, j);
    strides[g] = st;
  }
}

int moai_ew_walk(const moai_ew_shape_t *s, int n_in,
                 const int64_t (*strides)[MOAI_MAX_RANK], int64_t begin,
                 int64_t end, moai_ew_run_fn_t run, void *ctx) {
  if (begin >= end) return 0;
  const int r = s->rank;
  int64_t idx[MOAI_MAX_RANK];
  int64_t rest = begin;
  for (int j = r - 1; j >= 0; --j) {
    idx[j] = rest % s->dims[j];
    rest /= s->dims[j];
  }
  int64_t off[MOAI_EW_MAX_IN], inner[MOAI_EW_MAX_IN];
  for (int k = 0; k < n_in; ++k) inner[k] = strides[k][r - 1];
  const int64_t row = s->dims[r - 1];
  int err = 0;
  for (int64_t pos = begin; pos < end;) {
    int64_t n = row - idx[r - 1];
    if (n > end - pos) n = end - pos;
    for (int k = 0; k < n_in; ++k) {
      int64_t o = 0;
      for (int j = 0; j < r; ++j) o += idx[j] * strides[k][j];
      off[k] = o;
    }
    err |= run(ctx, pos, n, off, inner);
    pos += n;
    idx[r - 1] += n;
    for (int j = r - 1; j > 0 && idx[j] >= s->dims[j]; --j) {
      idx[j] = 0;
      idx[j - 1]++;
    }
  }
  return err;
}
