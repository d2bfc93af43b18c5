/* Shape rules of indexing ops: Gather, Concat, Slice, Split and Range. */
#include <math.h>
#include <stdlib.h>

#include "mlir-c/BuiltinTypes.h"
#include "shape_infer/shape_infer_internal.h"

static bool check_index_elem(si_op_t *si, int slot, const si_type_t *t) {
  if (si_is_index_type(t->elem)) return true;
  char s[64];
  return si_error(si, "operand '%s' must be int32 or int64, got %s",
                  si->def->operands[slot].name,
                  si_type_str(t->elem, s, sizeof(s)));
}

bool si_rule_gather(si_op_t *si) {
  si_type_t data, idx;
  int64_t axis;
  if (!si_in_type(si, 0, &data) || !si_in_type(si, 1, &idx) ||
      !si_attr_int(si, "axis", &axis, NULL) || !check_index_elem(si, 1, &idx))
    return false;
  si_shape_t out;
  const si_shape_t *d = &data.shape, *i = &idx.shape;
  if (d->rank == 0) return si_error(si, "'data' must have rank >= 1");
  int a = 0;
  if (d->rank != SI_UNRANKED && !si_axis(si, axis, d->rank, &a)) return false;
  if (d->rank == SI_UNRANKED || i->rank == SI_UNRANKED) {
    si_shape_unranked(&out);
  } else {
    if (d->rank - 1 + i->rank > SI_MAX_RANK)
      return si_error(si, "result rank exceeds moai's limit of %d",
                      SI_MAX_RANK);
    out.rank = 0;
    for (int k = 0; k < a; ++k) out.dims[out.rank++] = d->dims[k];
    for (int k = 0; k < i->rank; ++k) out.dims[out.rank++] = i->dims[k];
    for (int k = a + 1; k < d->rank; ++k) out.dims[out.rank++] = d->dims[k];
  }
  si_set_result(si, 0, 0, data.elem, &out);
  return true;
}

bool si_rule_concat(si_op_t *si) {
  int n = si_operand_len(si, 0);
  int64_t axis;
  if (n < 1) return si_error(si, "needs at least one operand");
  if (!si_attr_int(si, "axis", &axis, NULL)) return false;
  si_shape_t out;
  si_shape_unranked(&out);
  MlirType elem = {NULL};
  bool some_unranked = false;
  for (int k = 0; k < n; ++k) {
    si_type_t t;
    if (!si_value_type(si, si_operand_at(si, 0, k), "inputs", &t)) return false;
    if (k == 0) elem = t.elem;
    if (!si_same_elem(si, elem, t.elem, "operands")) return false;
    if (t.shape.rank == SI_UNRANKED) {
      some_unranked = true;
      continue;
    }
    if (out.rank == SI_UNRANKED) {
      out = t.shape;
      if (!si_axis(si, axis, out.rank, &(int){0})) return false;
      continue;
    }
    if (t.shape.rank != out.rank)
      return si_error(si, "operands have ranks %d and %d", out.rank,
                      t.shape.rank);
    int a = (int)(axis < 0 ? axis + out.rank : axis);
    for (int i = 0; i < out.rank; ++i) {
      int64_t x = out.dims[i], y = t.shape.dims[i];
      if (i == a) {
        out.dims[i] = x == SI_DYN || y == SI_DYN ? SI_DYN : x + y;
      } else if (x == SI_DYN) {
        out.dims[i] = y;
      } else if (y != SI_DYN && x != y) {
        return si_error(si, "operands differ in dimension %d: %lld and %lld",
                        i, (long long)x, (long long)y);
      }
    }
  }
  if (out.rank != SI_UNRANKED && some_unranked)
    out.dims[axis < 0 ? axis + out.rank : axis] = SI_DYN;
  si_set_result(si, 0, 0, elem, &out);
  return true;
}

/* ---- Slice ----------------------------------------------------------------- */

/* Reads one of Slice's vector operands; *out_n is -1 when it is absent. */
static si_const_t slice_operand(si_op_t *si, int slot, int64_t *buf,
                                int64_t *out_n) {
  *out_n = -1;
  if (!si_has(si, slot)) return SI_CONST_OK;
  si_const_t st = si_const_ints(si, si_operand(si, slot),
                                si->def->operands[slot].name, buf,
                                SI_MAX_RANK, out_n);
  if (st == SI_CONST_UNKNOWN && si->value_dependency < 0)
    si->value_dependency = slot;
  return st;
}

/* One axis of a slice as ONNX defines it: negative indices count from the
 * end, then starts and ends are clamped to [0, dim] for positive steps and
 * to [0, dim-1] / [-1, dim-1] for negative ones. */
static void slice_axis(int64_t dim, int64_t s, int64_t e, int64_t step,
                       int64_t *out_start, int64_t *out_size) {
  if (dim == 0) {
    *out_start = 0;
    *out_size = 0;
    return;
  }
  if (s < 0) s += dim;
  if (e < 0) e += dim;
  if (step > 0) {
    s = s < 0 ? 0 : (s > dim ? dim : s);
    e = e < 0 ? 0 : (e > dim ? dim : e);
    *out_size = e > s ? (e - s - 1) / step + 1 : 0;
  } else {
    s = s < 0 ? 0 : (s > dim - 1 ? dim - 1 : s);
    e = e < -1 ? -1 : (e > dim - 1 ? dim - 1 : e);
    if (s <= e)
      *out_size = 0;
    else if (step == INT64_MIN)
      *out_size = 1;
    else
      *out_size = (s - e - 1) / -step + 1;
  }
  *out_start = s;
}

si_const_t si_slice_params(si_op_t *si, const si_shape_t *data,
                           si_slice_t *out) {
  int64_t starts[SI_MAX_RANK], ends[SI_MAX_RANK], axes[SI_MAX_RANK],
      steps[SI_MAX_RANK];
  int64_t ns, ne, na, nt;
  si_const_t st[4] = {slice_operand(si, 1, starts, &ns),
                      slice_operand(si, 2, ends, &ne),
                      slice_operand(si, 3, axes, &na),
                      slice_operand(si, 4, steps, &nt)};
  for (int k = 0; k < 4; ++k)
    if (st[k] == SI_CONST_ERROR) return SI_CONST_ERROR;
  for (int k = 0; k < 4; ++k)
    if (st[k] == SI_CONST_UNKNOWN) return SI_CONST_UNKNOWN;
  if (ne != ns || (na >= 0 && na != ns) || (nt >= 0 && nt != ns)) {
    si_error(si, "starts, ends, axes and steps differ in length");
    return SI_CONST_ERROR;
  }
  for (int i = 0; i < data->rank; ++i) {
    out->start[i] = 0;
    out->step[i] = 1;
    out->size[i] = data->dims[i];
  }
  bool seen[SI_MAX_RANK] = {false};
  for (int k = 0; k < ns; ++k) {
    int a;
    if (!si_axis(si, na >= 0 ? axes[k] : k, data->rank, &a))
      return SI_CONST_ERROR;
    if (seen[a]) {
      si_error(si, "axis %d is sliced twice", a);
      return SI_CONST_ERROR;
    }
    seen[a] = true;
    int64_t step = nt >= 0 ? steps[k] : 1;
    if (step == 0) {
      si_error(si, "step must not be 0");
      return SI_CONST_ERROR;
    }
    out->step[a] = step;
    if (data->dims[a] == SI_DYN) {
      out->size[a] = SI_DYN;
      continue;
    }
    slice_axis(data->dims[a], starts[k], ends[k], step, &out->start[a],
               &out->size[a]);
  }
  return SI_CONST_OK;
}

bool si_rule_slice(si_op_t *si) {
  si_type_t data;
  if (!si_in_type(si, 0, &data)) return false;
  for (int slot = 1; slot <= 4; ++slot) {
    si_type_t t;
    if (!si_has(si, slot)) continue;
    if (!si_in_type(si, slot, &t) || !check_index_elem(si, slot, &t))
      return false;
  }
  si_shape_t out = data.shape;
  if (data.shape.rank != SI_UNRANKED) {
    si_slice_t p;
    si_const_t st = si_slice_params(si, &data.shape, &p);
    if (st == SI_CONST_ERROR) return false;
    for (int i = 0; i < out.rank; ++i)
      out.dims[i] = st == SI_CONST_OK ? p.size[i] : SI_DYN;
  }
  si_set_result(si, 0, 0, data.elem, &out);
  return true;
}

/* ---- Split ----------------------------------------------------------------- */

/* The sizes of Split's outputs along the axis into sizes[0..n). */
static bool split_sizes(si_op_t *si, int64_t dim, int n, int64_t *sizes) {
  int64_t num_outputs;
  bool has_num;
  if (!si_attr_int(si, "num_outputs", &num_outputs, &has_num)) return false;
  if (si_has(si, 1)) {
    if (has_num)
      return si_error(si, "both the 'split' operand and num_outputs are set");
    si_type_t t;
    if (!si_in_type(si, 1, &t) || !si_is_i64(t.elem))
      return si_error(si, "operand 'split' must be int64");
    int64_t count;
    si_const_t st = si_const_ints(si, si_operand(si, 1), "split", sizes,
                                  n + 64, &count);
    if (st == SI_CONST_ERROR) return false;
    if (st == SI_CONST_UNKNOWN) {
      si->value_dependency = 1;
      for (int k = 0; k < n; ++k) sizes[k] = SI_DYN;
      return true;
    }
    if (count != n)
      return si_error(si, "'split' has %lld values for %d outputs",
                      (long long)count, n);
    int64_t sum = 0;
    for (int k = 0; k < n; ++k) {
      if (sizes[k] < 0 || sizes[k] > INT64_MAX - sum)
        return si_error(si, "invalid split size %lld", (long long)sizes[k]);
      sum += sizes[k];
    }
    if (dim != SI_DYN && sum != dim)
      return si_error(si, "split sizes sum to %lld but the axis has size %lld",
                      (long long)sum, (long long)dim);
    return true;
  }
  if (has_num && num_outputs != n)
    return si_error(si, "num_outputs is %lld but the op has %d results",
                    (long long)num_outputs, n);
  for (int k = 0; k < n; ++k) sizes[k] = SI_DYN;
  if (dim == SI_DYN) return true;
  if (!has_num) {
    if (dim % n != 0)
      return si_error(si, "cannot split a dimension of %lld into %d equal "
                      "parts", (long long)dim, n);
    for (int k = 0; k < n; ++k) sizes[k] = dim / n;
    return true;
  }
  /* num_outputs: chunks of ceil(dim / n), the last one smaller. */
  int64_t chunk = dim / n + (dim % n != 0);
  int64_t last = dim - chunk * (n - 1);
  if (last < 0)
    return si_error(si, "cannot split a dimension of %lld into %d outputs",
                    (long long)dim, n);
  for (int k = 0; k < n; ++k) sizes[k] = k == n - 1 ? last : chunk;
  return true;
}

bool si_rule_split(si_op_t *si) {
  si_type_t in;
  int64_t axis;
  int n = si_result_len(si, 0);
  if (!si_in_type(si, 0, &in) || !si_attr_int(si, "axis", &axis, NULL))
    return false;
  if (n < 1) return si_error(si, "needs at least one result");
  si_shape_t out = in.shape;
  if (in.shape.rank == SI_UNRANKED) {
    for (int k = 0; k < n; ++k) si_set_result(si, 0, k, in.elem, &out);
    return true;
  }
  int a;
  if (!si_axis(si, axis, in.shape.rank, &a)) return false;
  /* Room for a few values too many, to say how many there were. */
  int64_t *sizes = malloc((size_t)(n + 64) * sizeof(int64_t));
  if (!sizes) return si_error(si, "out of memory");
  bool ok = split_sizes(si, in.shape.dims[a], n, sizes);
  for (int k = 0; ok && k < n; ++k) {
    out.dims[a] = sizes[k];
    si_set_result(si, 0, k, in.elem, &out);
  }
  free(sizes);
  return ok;
}

/* ---- Range ----------------------------------------------------------------- */

si_const_t si_range_count(si_op_t *si, int64_t *out_n) {
  double f[3];
  int64_t v[3];
  bool is_int[3];
  for (int k = 0; k < 3; ++k) {
    si_const_t st = si_const_scalar(si, si_operand(si, k),
                                    si->def->operands[k].name, &f[k], &v[k],
                                    &is_int[k]);
    if (st == SI_CONST_UNKNOWN) si->value_dependency = k;
    if (st != SI_CONST_OK) return st;
  }
  if (is_int[0] && is_int[1] && is_int[2]) {
    int64_t s = v[0], l = v[1], d = v[2];
    if (d == 0) {
      si_error(si, "delta must not be 0");
      return SI_CONST_ERROR;
    }
    /* ceil((l - s) / d) without overflow, in unsigned arithmetic. */
    uint64_t n = 0;
    if (d > 0 && l > s) {
      uint64_t span = (uint64_t)l - (uint64_t)s;
      n = span / (uint64_t)d + (span % (uint64_t)d != 0);
    } else if (d < 0 && l < s) {
      uint64_t span = (uint64_t)s - (uint64_t)l, step = 0 - (uint64_t)d;
      n = span / step + (span % step != 0);
    }
    if (n > (uint64_t)INT64_MAX) {
      si_error(si, "too many elements");
      return SI_CONST_ERROR;
    }
    *out_n = (int64_t)n;
    return SI_CONST_OK;
  }
  if (f[2] == 0.0) {
    si_error(si, "delta must not be 0");
    return SI_CONST_ERROR;
  }
  MlirType elem = mlirShapedTypeGetElementType(
      mlirValueGetType(si_operand(si, 0)));
  double q = mlirTypeIsAF32(elem)
                 ? (double)ceilf(((float)f[1] - (float)f[0]) / (float)f[2])
                 : ceil((f[1] - f[0]) / f[2]);
  if (!(q < 9007199254740992.0)) { /* 2^53; also catches NaN */
    si_error(si, "too many elements");
    return SI_CONST_ERROR;
  }
  *out_n = q > 0 ? (int64_t)q : 0;
  return SI_CONST_OK;
}

bool si_rule_range(si_op_t *si) {
  si_type_t t[3];
  for (int k = 0; k < 3; ++k) {
    if (!si_in_type(si, k, &t[k])) return false;
    if (!si_is_numeric(t[k].elem))
      return si_error(si, "operands must be numeric");
    if (k > 0 && !si_same_elem(si, t[0].elem, t[k].elem, "operands"))
      return false;
    int64_t n = si_shape_numel(&t[k].shape);
    if (n != SI_DYN && n != 1)
      return si_error(si, "operand '%s' must be a scalar",
                      si->def->operands[k].name);
  }
  si_shape_t out = {.rank = 1, .dims = {SI_DYN}};
  int64_t n;
  si_const_t st = si_range_count(si, &n);
  if (st == SI_CONST_ERROR) return false;
  if (st == SI_CONST_OK) out.dims[0] = n;
  si_set_result(si, 0, 0, t[0].elem, &out);
  return true;
}
