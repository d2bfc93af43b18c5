/* Sizes and scalars (size, NumToTensor, int()), views and layout ops
 * (reshape, transpose, slice, cat, split, ...), tensor creation (arange,
 * zeros, full, ...) and conversions (to). Known tensors are computed here
 * (every view of one is a strided read of its data); others become the
 * moai ops the ONNX exporter emits for the same code. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op_defs.h"
#include "torchscript/aten_internal.h"

static bool is_konst_only(const moai_ts_value_t *v) {
  return v && v->kind == MOAI_TS_TENSOR && v->konst && mlirValueIsNull(v->tensor);
}

/* A strided view of known data, copied row-major. */
static moai_status_t konst_view(ts_call_t *c, const moai_ts_const_t *k,
                                int rank, const int64_t *dims,
                                const int64_t *strides, int64_t offset,
                                moai_ts_value_t **out) {
  moai_ts_const_t *r = ts_konst_new(c, (int)k->dtype, rank, dims);
  if (!r) return TS_OOM(c);
  for (int64_t o = 0; o < r->numel; ++o) {
    int64_t rem = o, src = offset;
    for (int i = rank - 1; i >= 0; --i) {
      src += (rem % dims[i]) * strides[i];
      rem /= dims[i];
    }
    if (ts_dtype_is_float((int)k->dtype)) ts_k_setf(r, o, ts_k_getf(k, src));
    else ts_k_seti(r, o, ts_k_geti(k, src));
  }
  *out = ts_konst_value(c, r);
  return *out ? moai_ok_status() : TS_OOM(c);
}

static void contiguous_strides(const moai_ts_const_t *k, int64_t *strides) {
  int64_t s = 1;
  for (int i = k->rank - 1; i >= 0; --i) {
    strides[i] = s;
    s *= k->dims[i];
  }
}

static moai_status_t konst_reshape(ts_call_t *c, const moai_ts_const_t *k,
                                   int rank, const int64_t *dims,
                                   moai_ts_value_t **out) {
  moai_ts_const_t *r = ts_konst_new(c, (int)k->dtype, rank, dims);
  if (!r) return TS_OOM(c);
  size_t es = k->dtype == MOAI_PK_BOOL_DT ? 1 : k->dtype == MOAI_PK_F32 ? 4 : 8;
  memcpy(r->data, k->data, (size_t)k->numel * es);
  r->wrapped_number = false;
  *out = ts_konst_value(c, r);
  return *out ? moai_ok_status() : TS_OOM(c);
}

/* ------------------------------------------------------- sizes and scalars */

static moai_status_t op_size(ts_call_t *c) {
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  if (!ts_is_tensor(c->a[0]))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a tensor");
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, c->a[0], &rank, dims));
  if (!ts_is_none(c->a[1])) {
    int64_t d;
    MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &d));
    MOAI_RETURN_IF_ERROR(ts_norm_dim(c, d, rank, &d));
    c->out = ts_new_int(c, rank ? dims[d] : 1);
    return c->out ? moai_ok_status() : TS_OOM(c);
  }
  c->out = ts_new_seq(c, MOAI_TS_LIST, (size_t)rank);
  if (!c->out) return TS_OOM(c);
  for (int i = 0; i < rank; ++i)
    if (!(c->out->items[i] = ts_new_int(c, dims[i]))) return TS_OOM(c);
  return moai_ok_status();
}

static moai_status_t op_dim(ts_call_t *c) {
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, c->a[0], &rank, dims));
  int64_t n = strcmp(c->entry->aux, "numel") == 0 ? ts_numel(rank, dims) : rank;
  c->out = ts_new_int(c, n);
  return c->out ? moai_ok_status() : TS_OOM(c);
}

static moai_status_t op_len(ts_call_t *c) {
  moai_ts_value_t *v = c->a[0];
  if (v && (v->kind == MOAI_TS_LIST || v->kind == MOAI_TS_TUPLE)) {
    c->out = ts_new_int(c, (int64_t)v->len);
  } else if (v && v->kind == MOAI_TS_STR) {
    c->out = ts_new_int(c, (int64_t)strlen(v->str));
  } else {
    int rank;
    int64_t dims[MOAI_PK_MAX_RANK];
    MOAI_RETURN_IF_ERROR(ts_need_shape(c, v, &rank, dims));
    if (rank == 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "len() of a 0-d tensor");
    c->out = ts_new_int(c, dims[0]);
  }
  return c->out ? moai_ok_status() : TS_OOM(c);
}

/* ops.prim.NumToTensor(number): a wrapped-number 0-dim tensor. */
static moai_status_t op_num_to_tensor(ts_call_t *c) {
  moai_ts_value_t *v = c->a[0];
  if (ts_is_tensor(v) && v->konst && v->konst->numel == 1) {
    c->out = v;
    return moai_ok_status();
  }
  if (!ts_is_number(v))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a compile-time number");
  moai_ts_const_t *k = ts_known(c, v);
  if (!k) return TS_OOM(c);
  c->out = ts_konst_value(c, k);
  return c->out ? moai_ok_status() : TS_OOM(c);
}

/* int(x), float(x), bool(x) of a number or a known one-element tensor. */
static moai_status_t op_scalar(ts_call_t *c) {
  moai_ts_value_t *v = c->a[0];
  const char *kind = c->entry->aux;
  double f;
  int64_t i;
  if (ts_is_tensor(v) && !v->konst)
    return ts_err(c, MOAI_UNIMPLEMENTED,
                  "of a tensor computed at run time (data-dependent control "
                  "or shapes are not supported)");
  if (ts_is_tensor(v) && v->konst->numel != 1)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "of a tensor with %lld elements",
                  (long long)v->konst->numel);
  if (v && v->kind == MOAI_TS_STR && strcmp(kind, "float") == 0) {
    f = strtod(v->str, NULL);
  } else if (!ts_value_float(v, &f)) {
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a number or a known tensor");
  }
  bool is_int_src = ts_value_int(v, &i) ||
                    (ts_is_tensor(v) && !ts_dtype_is_float(ts_dtype(v)));
  if (is_int_src && !ts_value_int(v, &i)) i = (int64_t)f;
  if (strcmp(kind, "int") == 0) {
    c->out = ts_new_int(c, is_int_src ? i : (int64_t)f);
  } else if (strcmp(kind, "float") == 0) {
    c->out = ts_new(c, MOAI_TS_FLOAT);
    if (c->out) c->out->f = f;
  } else {
    c->out = ts_new(c, MOAI_TS_BOOL);
    if (c->out) c->out->b = f != 0.0;
  }
  return c->out ? moai_ok_status() : TS_OOM(c);
}

/* torch.device("cpu"): the device is kept as its name and ignored. */
static moai_status_t op_device(ts_call_t *c) {
  c->out = ts_new(c, MOAI_TS_STR);
  if (!c->out) return TS_OOM(c);
  c->out->str = c->a[0] && c->a[0]->kind == MOAI_TS_STR ? c->a[0]->str : "cpu";
  return moai_ok_status();
}

/* contiguous, detach, clone, alias: the same value. */
static moai_status_t op_identity(ts_call_t *c) {
  if (!ts_is_tensor(c->a[0]))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a tensor");
  c->out = c->a[0];
  return moai_ok_status();
}

/* ------------------------------------------------------------- reshaping */

static moai_status_t reshape_to(ts_call_t *c, moai_ts_value_t *x,
                                const int64_t *shape, size_t n) {
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  int64_t total = ts_numel(rank, dims), known = 1;
  int infer = -1;
  int64_t out[MOAI_PK_MAX_RANK];
  for (size_t i = 0; i < n; ++i) {
    out[i] = shape[i];
    if (shape[i] == -1 && infer < 0) infer = (int)i;
    else if (shape[i] < 0)
      return ts_err(c, MOAI_INVALID_ARGUMENT, "bad size %lld in the shape",
                    (long long)shape[i]);
    else known *= shape[i];
  }
  if (infer >= 0) out[infer] = known ? total / known : 0;
  if (ts_numel((int)n, out) != total)
    return ts_err(c, MOAI_INVALID_ARGUMENT,
                  "shape has %lld elements, the tensor %lld",
                  (long long)ts_numel((int)n, out), (long long)total);
  if (is_konst_only(x)) return konst_reshape(c, x->konst, (int)n, out, &c->out);
  MlirValue xv, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &xv));
  /* The shape as written (the exporter keeps its -1). */
  MOAI_RETURN_IF_ERROR(ts_op_ints(c, "reshape", xv, shape, n, &r));
  OUT_TENSOR(c, r);
}

static moai_status_t op_reshape(ts_call_t *c) {
  moai_ts_value_t *x;
  int64_t shape[MOAI_PK_MAX_RANK];
  size_t n;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  if (strcmp(c->entry->aux, "as") == 0) { /* view_as, reshape_as */
    int rank;
    MOAI_RETURN_IF_ERROR(ts_need_shape(c, c->a[1], &rank, shape));
    n = (size_t)rank;
  } else {
    MOAI_RETURN_IF_ERROR(ts_arg_ints(c, 1, shape, MOAI_PK_MAX_RANK, 1, &n));
  }
  return reshape_to(c, x, shape, n);
}

/* flatten(self, start_dim=0, end_dim=-1): Flatten for (1, last) on rank >=
 * 2, as the exporter; otherwise a Reshape. */
static moai_status_t op_flatten(ts_call_t *c) {
  moai_ts_value_t *x;
  int64_t s, e;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, true, 0, &s));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 2, true, -1, &e));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  if (rank == 0) {
    int64_t one = 1;
    return reshape_to(c, x, &one, 1);
  }
  MOAI_RETURN_IF_ERROR(ts_norm_dim(c, s, rank, &s));
  MOAI_RETURN_IF_ERROR(ts_norm_dim(c, e, rank, &e));
  if (s > e) return ts_err(c, MOAI_INVALID_ARGUMENT, "start_dim after end_dim");
  if (s == 1 && e == rank - 1 && rank >= 2 && !is_konst_only(x)) {
    MlirValue v, r;
    MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
    ts_attr_t a = {"axis", ts_attr_i64(c, 1)};
    MOAI_RETURN_IF_ERROR(ts_op(c, "flatten", &v, 1, &a, 1, &r));
    OUT_TENSOR(c, r);
  }
  int64_t shape[MOAI_PK_MAX_RANK];
  size_t n = 0;
  for (int64_t i = 0; i < rank; ++i) {
    if (i == s) shape[n++] = ts_numel((int)(e - s + 1), dims + s);
    else if (i < s || i > e) shape[n++] = dims[i];
  }
  return reshape_to(c, x, shape, n);
}

static moai_status_t permute(ts_call_t *c, moai_ts_value_t *x,
                             const int64_t *perm, int rank) {
  bool identity = true;
  for (int i = 0; i < rank; ++i) identity &= perm[i] == i;
  if (identity) {
    c->out = x;
    return moai_ok_status();
  }
  if (is_konst_only(x)) {
    int64_t st[MOAI_PK_MAX_RANK], s2[MOAI_PK_MAX_RANK], d2[MOAI_PK_MAX_RANK];
    contiguous_strides(x->konst, st);
    for (int i = 0; i < rank; ++i) {
      s2[i] = st[perm[i]];
      d2[i] = x->konst->dims[perm[i]];
    }
    return konst_view(c, x->konst, rank, d2, s2, 0, &c->out);
  }
  MlirValue v, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  ts_attr_t a = {"perm", ts_attr_ints(c, perm, (size_t)rank)};
  MOAI_RETURN_IF_ERROR(ts_op(c, "transpose", &v, 1, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* transpose(self, dim0, dim1), t(self) */
static moai_status_t op_transpose(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], d0, d1, perm[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  if (strcmp(c->entry->aux, "t") == 0) {
    if (rank > 2) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a tensor of rank <= 2");
    d0 = 0;
    d1 = rank == 2 ? 1 : 0;
  } else {
    MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &d0));
    MOAI_RETURN_IF_ERROR(ts_arg_int(c, 2, false, 0, &d1));
    MOAI_RETURN_IF_ERROR(ts_norm_dim(c, d0, rank, &d0));
    MOAI_RETURN_IF_ERROR(ts_norm_dim(c, d1, rank, &d1));
  }
  for (int i = 0; i < rank; ++i) perm[i] = i;
  if (rank) {
    perm[d0] = d1;
    perm[d1] = d0;
  }
  return permute(c, x, perm, rank);
}

static moai_status_t op_permute(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], perm[MOAI_PK_MAX_RANK];
  size_t n;
  bool seen[MOAI_PK_MAX_RANK] = {false};
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_arg_ints(c, 1, perm, MOAI_PK_MAX_RANK, 0, &n));
  if ((int)n != rank)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "dims has %zu entries for rank %d", n, rank);
  for (int i = 0; i < rank; ++i) {
    MOAI_RETURN_IF_ERROR(ts_norm_dim(c, perm[i], rank, &perm[i]));
    if (seen[perm[i]]) return ts_err(c, MOAI_INVALID_ARGUMENT, "dims repeat");
    seen[perm[i]] = true;
  }
  return permute(c, x, perm, rank);
}

/* unsqueeze(self, dim) */
static moai_status_t op_unsqueeze(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], d;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &d));
  if (rank >= MOAI_PK_MAX_RANK)
    return ts_err(c, MOAI_UNIMPLEMENTED, "rank above %d", MOAI_PK_MAX_RANK);
  if (d < 0) d += rank + 1;
  if (d < 0 || d > rank)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "dim out of range for rank %d", rank);
  if (is_konst_only(x)) {
    int64_t nd[MOAI_PK_MAX_RANK];
    for (int i = 0, j = 0; i <= rank; ++i) nd[i] = i == d ? 1 : dims[j++];
    return konst_reshape(c, x->konst, rank + 1, nd, &c->out);
  }
  MlirValue xv, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &xv));
  MOAI_RETURN_IF_ERROR(ts_op_ints(c, "unsqueeze", xv, &d, 1, &r));
  OUT_TENSOR(c, r);
}

/* squeeze(self, dim=None): a dim not of size 1 is left, as torch does. */
static moai_status_t op_squeeze(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], axes[MOAI_PK_MAX_RANK], nd[MOAI_PK_MAX_RANK];
  size_t n_axes = 0, n = 0;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  if (!ts_is_none(c->a[1])) {
    int64_t d;
    MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &d));
    MOAI_RETURN_IF_ERROR(ts_norm_dim(c, d, rank, &d));
    if (rank && dims[d] == 1) axes[n_axes++] = d;
  } else {
    for (int i = 0; i < rank; ++i)
      if (dims[i] == 1) axes[n_axes++] = i;
  }
  if (n_axes == 0) {
    c->out = x;
    return moai_ok_status();
  }
  for (int i = 0, k = 0; i < rank; ++i) {
    if ((size_t)k < n_axes && axes[k] == i) { ++k; continue; }
    nd[n++] = dims[i];
  }
  if (is_konst_only(x)) return konst_reshape(c, x->konst, (int)n, nd, &c->out);
  MlirValue xv, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &xv));
  MOAI_RETURN_IF_ERROR(ts_op_ints(c, "squeeze", xv, axes, n_axes, &r));
  OUT_TENSOR(c, r);
}

/* expand(self, size, implicit=False), expand_as(self, other) */
static moai_status_t op_expand(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], size[MOAI_PK_MAX_RANK];
  size_t n;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  if (strcmp(c->entry->aux, "as") == 0) {
    int r2;
    MOAI_RETURN_IF_ERROR(ts_need_shape(c, c->a[1], &r2, size));
    n = (size_t)r2;
  } else {
    MOAI_RETURN_IF_ERROR(ts_arg_ints(c, 1, size, MOAI_PK_MAX_RANK, 0, &n));
  }
  if ((int)n < rank)
    return ts_err(c, MOAI_INVALID_ARGUMENT, "size has fewer dims than the tensor");
  for (size_t i = 0; i < n; ++i) {
    int j = (int)i - ((int)n - rank);
    if (size[i] == -1) {
      if (j < 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "-1 for a new leading dim");
      size[i] = dims[j];
    } else if (j >= 0 && dims[j] != 1 && dims[j] != size[i]) {
      return ts_err(c, MOAI_INVALID_ARGUMENT,
                    "cannot expand size %lld to %lld at dim %zu",
                    (long long)dims[j], (long long)size[i], i);
    }
  }
  if (is_konst_only(x) && ts_numel((int)n, size) <= MOAI_TS_MAX_CONST_ELEMENTS) {
    int64_t st[MOAI_PK_MAX_RANK], s2[MOAI_PK_MAX_RANK];
    contiguous_strides(x->konst, st);
    for (size_t i = 0; i < n; ++i) {
      int j = (int)i - ((int)n - rank);
      s2[i] = j < 0 || dims[j] == 1 ? 0 : st[j];
    }
    return konst_view(c, x->konst, (int)n, size, s2, 0, &c->out);
  }
  MlirValue xv, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &xv));
  MOAI_RETURN_IF_ERROR(ts_op_ints(c, "expand", xv, size, n, &r));
  OUT_TENSOR(c, r);
}

/* ---------------------------------------------------------------- slicing */

/* slice(self, dim=0, start=None, end=None, step=1); end
 * 9223372036854775807 means to the end. A whole-range slice is the tensor
 * itself (the exporter drops it too). */
static moai_status_t op_slice(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], d, start, end, step;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, true, 0, &d));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 2, true, 0, &start));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 3, true, INT64_MAX, &end));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 4, true, 1, &step));
  if (rank == 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "cannot slice a 0-d tensor");
  MOAI_RETURN_IF_ERROR(ts_norm_dim(c, d, rank, &d));
  if (step <= 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "step must be positive");
  int64_t n = dims[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = start < 0 ? 0 : start > n ? n : start;
  end = end < start ? start : end > n ? n : end;
  if (start == 0 && end == n && step == 1) {
    c->out = x;
    return moai_ok_status();
  }
  if (is_konst_only(x)) {
    int64_t st[MOAI_PK_MAX_RANK];
    contiguous_strides(x->konst, st);
    int64_t nd[MOAI_PK_MAX_RANK];
    memcpy(nd, dims, sizeof(nd));
    nd[d] = (end - start + step - 1) / step;
    int64_t off = start * st[d];
    st[d] *= step;
    return konst_view(c, x->konst, rank, nd, st, off, &c->out);
  }
  MlirValue ops[5], r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_const_i64s(c, &start, 1, &ops[1]));
  MOAI_RETURN_IF_ERROR(ts_const_i64s(c, &end, 1, &ops[2]));
  MOAI_RETURN_IF_ERROR(ts_const_i64s(c, &d, 1, &ops[3]));
  MOAI_RETURN_IF_ERROR(ts_const_i64s(c, &step, 1, &ops[4]));
  MOAI_RETURN_IF_ERROR(ts_op(c, "slice", ops, 5, NULL, 0, &r));
  OUT_TENSOR(c, r);
}

/* select(self, dim, index): Gather with a 0-d index. */
static moai_status_t op_select(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], d, idx;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &d));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 2, false, 0, &idx));
  if (rank == 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "cannot select from a 0-d tensor");
  MOAI_RETURN_IF_ERROR(ts_norm_dim(c, d, rank, &d));
  if (idx < -dims[d] || idx >= dims[d])
    return ts_err(c, MOAI_INVALID_ARGUMENT, "index %lld out of range for size %lld",
                  (long long)idx, (long long)dims[d]);
  if (idx < 0) idx += dims[d];
  if (is_konst_only(x)) {
    int64_t st[MOAI_PK_MAX_RANK], nd[MOAI_PK_MAX_RANK], ns[MOAI_PK_MAX_RANK];
    contiguous_strides(x->konst, st);
    for (int i = 0, j = 0; i < rank; ++i)
      if (i != d) { nd[j] = dims[i]; ns[j++] = st[i]; }
    return konst_view(c, x->konst, rank - 1, nd, ns, idx * st[d], &c->out);
  }
  MlirValue ops[2], r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_const_scalar(c, MOAI_PK_I64, (double)idx, &ops[1]));
  ts_attr_t a = {"axis", ts_attr_i64(c, d)};
  MOAI_RETURN_IF_ERROR(ts_op(c, "gather", ops, 2, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* index_select(self, dim, index) */
static moai_status_t op_index_select(ts_call_t *c) {
  moai_ts_value_t *x, *index;
  int64_t d;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &d));
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 2, &index));
  MlirValue ops[2], r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_value_as(c, index, MOAI_PK_I64, &ops[1]));
  ts_attr_t a = {"axis", ts_attr_i64(c, d)};
  MOAI_RETURN_IF_ERROR(ts_op(c, "gather", ops, 2, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* ------------------------------------------------------- joining, splitting */

static moai_status_t concat(ts_call_t *c, moai_ts_value_t **items, size_t n,
                            int64_t dim, moai_ts_value_t **out) {
  if (n == 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs at least one tensor");
  int dt;
  MOAI_RETURN_IF_ERROR(ts_result_type(c, items, n, &dt));
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, items[0], &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_norm_dim(c, dim, rank, &dim));
  bool all_known = true;
  int64_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    int r;
    int64_t d[MOAI_PK_MAX_RANK];
    if (!ts_is_tensor(items[i]))
      return ts_err(c, MOAI_INVALID_ARGUMENT, "item %zu is not a tensor", i);
    MOAI_RETURN_IF_ERROR(ts_need_shape(c, items[i], &r, d));
    if (r != rank) return ts_err(c, MOAI_INVALID_ARGUMENT, "tensors of different ranks");
    total += d[dim];
    all_known &= is_konst_only(items[i]);
  }
  dims[dim] = total;
  if (all_known && ts_numel(rank, dims) <= MOAI_TS_MAX_CONST_ELEMENTS &&
      (dt == MOAI_PK_I64 || dt == MOAI_PK_F32 || dt == MOAI_PK_F64 ||
       dt == MOAI_PK_BOOL_DT)) {
    moai_ts_const_t *k = ts_konst_new(c, dt, rank, dims);
    if (!k) return TS_OOM(c);
    int64_t inner = ts_numel(rank - (int)dim - 1, dims + dim + 1);
    int64_t outer = ts_numel((int)dim, dims);
    int64_t at = 0;
    for (int64_t o = 0; o < outer; ++o)
      for (size_t i = 0; i < n; ++i) {
        const moai_ts_const_t *s = items[i]->konst;
        int64_t len = s->dims[dim] * inner;
        for (int64_t e = 0; e < len; ++e, ++at) {
          if (ts_dtype_is_float(dt)) ts_k_setf(k, at, ts_k_getf(s, o * len + e));
          else ts_k_seti(k, at, ts_k_geti(s, o * len + e));
        }
      }
    *out = ts_konst_value(c, k);
    return *out ? moai_ok_status() : TS_OOM(c);
  }
  /* Concat takes MOAI_VARIADIC_SLOTS values: longer lists are chained. */
  MlirValue vals[MOAI_VARIADIC_SLOTS], r = {NULL};
  size_t i = 0;
  while (i < n) {
    size_t k = 0;
    if (!mlirValueIsNull(r)) vals[k++] = r;
    for (; k < MOAI_VARIADIC_SLOTS && i < n; ++k, ++i)
      MOAI_RETURN_IF_ERROR(ts_value_as(c, items[i], dt, &vals[k]));
    if (k == 1) { r = vals[0]; continue; }
    ts_attr_t a = {"axis", ts_attr_i64(c, dim)};
    MOAI_RETURN_IF_ERROR(ts_build(c, "concat", vals, k, &a, 1, 1, &r));
  }
  *out = ts_new_tensor(c, r);
  return *out ? moai_ok_status() : TS_OOM(c);
}

static moai_status_t tensor_list(ts_call_t *c, size_t i, moai_ts_value_t ***items,
                                 size_t *n) {
  moai_ts_value_t *v = c->a[i];
  if (!v || (v->kind != MOAI_TS_LIST && v->kind != MOAI_TS_TUPLE))
    return ts_err(c, MOAI_INVALID_ARGUMENT, "tensors must be a list of tensors");
  *items = v->items;
  *n = v->len;
  return moai_ok_status();
}

/* cat(tensors, dim=0) */
static moai_status_t op_cat(ts_call_t *c) {
  moai_ts_value_t **items = NULL;
  size_t n = 0;
  int64_t dim;
  MOAI_RETURN_IF_ERROR(tensor_list(c, 0, &items, &n));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, true, 0, &dim));
  return concat(c, items, n, dim, &c->out);
}

/* stack(tensors, dim=0): Unsqueeze each, then Concat. */
static moai_status_t op_stack(ts_call_t *c) {
  moai_ts_value_t **items = NULL, **u;
  size_t n = 0;
  int64_t dim;
  MOAI_RETURN_IF_ERROR(tensor_list(c, 0, &items, &n));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, true, 0, &dim));
  if (n == 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs at least one tensor");
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, items[0], &rank, dims));
  if (dim < 0) dim += rank + 1;
  u = moai_ts_arena_alloc(c->em->arena, n * sizeof(*u));
  if (!u) return TS_OOM(c);
  for (size_t i = 0; i < n; ++i) {
    ts_call_t sub = *c;
    moai_ts_value_t *dv = ts_new_int(c, dim);
    if (!dv) return TS_OOM(c);
    sub.a[0] = items[i];
    sub.a[1] = dv;
    sub.n_slots = 2;
    MOAI_RETURN_IF_ERROR(op_unsqueeze(&sub));
    u[i] = sub.out;
  }
  return concat(c, u, n, dim, &c->out);
}

static moai_status_t split_sizes(ts_call_t *c, moai_ts_value_t *x, int64_t dim,
                                 const int64_t *sizes, size_t n) {
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  c->out = ts_new_seq(c, MOAI_TS_TUPLE, n);
  if (!c->out) return TS_OOM(c);
  if (n == 1) {
    c->out->items[0] = x;
    return moai_ok_status();
  }
  if (is_konst_only(x) || n > MOAI_VARIADIC_SLOTS) {
    /* Slices: compile-time data, or more parts than Split's results. */
    int64_t start = 0;
    moai_ts_value_t *tuple = c->out;
    for (size_t i = 0; i < n; ++i) {
      ts_call_t sub = *c;
      moai_ts_value_t *args[5] = {x, ts_new_int(c, dim), ts_new_int(c, start),
                                  ts_new_int(c, start + sizes[i]), ts_new_int(c, 1)};
      for (int k = 1; k < 5; ++k) if (!args[k]) return TS_OOM(c);
      memcpy(sub.a, args, sizeof(args));
      sub.n_slots = 5;
      MOAI_RETURN_IF_ERROR(op_slice(&sub));
      tuple->items[i] = sub.out;
      start += sizes[i];
    }
    c->out = tuple;
    return moai_ok_status();
  }
  MlirValue ops[2], rs[MOAI_VARIADIC_SLOTS];
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_const_i64s(c, sizes, n, &ops[1]));
  ts_attr_t a = {"axis", ts_attr_i64(c, dim)};
  MOAI_RETURN_IF_ERROR(ts_build(c, "split", ops, 2, &a, 1, n, rs));
  for (size_t i = 0; i < n; ++i)
    if (!(c->out->items[i] = ts_new_tensor(c, rs[i]))) return TS_OOM(c);
  return moai_ok_status();
}

/* chunk(self, chunks, dim=0), split(self, split_size, dim=0),
 * split_with_sizes(self, split_sizes, dim=0), unbind is not here. */
static moai_status_t op_split(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], dim, sizes[64];
  size_t n = 0;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 2, true, 0, &dim));
  MOAI_RETURN_IF_ERROR(ts_norm_dim(c, dim, rank, &dim));
  int64_t len = rank ? dims[dim] : 1, each;
  if (c->a[1] && (c->a[1]->kind == MOAI_TS_LIST || c->a[1]->kind == MOAI_TS_TUPLE)) {
    MOAI_RETURN_IF_ERROR(ts_arg_ints(c, 1, sizes, 64, 0, &n));
    int64_t sum = 0;
    for (size_t i = 0; i < n; ++i) sum += sizes[i];
    if (sum != len)
      return ts_err(c, MOAI_INVALID_ARGUMENT, "sizes add up to %lld, not %lld",
                    (long long)sum, (long long)len);
    return split_sizes(c, x, dim, sizes, n);
  }
  int64_t k;
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &k));
  if (k <= 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a positive count or size");
  each = strcmp(c->entry->aux, "chunk") == 0 ? (len + k - 1) / k : k;
  if (each == 0) each = 1;
  for (int64_t at = 0; at < len || n == 0; at += each) {
    if (n == 64) return ts_err(c, MOAI_UNIMPLEMENTED, "more than 64 parts");
    sizes[n++] = len - at < each ? len - at : each;
    if (len == 0) break;
  }
  return split_sizes(c, x, dim, sizes, n);
}

/* ---------------------------------------------------------------- creation */

/* A tensor of `dims` filled with x: known data when small, else a splat
 * moai.constant. */
static moai_status_t filled(ts_call_t *c, int dtype, int rank,
                            const int64_t *dims, double x) {
  int64_t n = ts_numel(rank, dims);
  if (n < 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "bad size");
  if (n <= MOAI_TS_MAX_CONST_ELEMENTS &&
      (dtype == MOAI_PK_I64 || dtype == MOAI_PK_F32 || dtype == MOAI_PK_F64 ||
       dtype == MOAI_PK_BOOL_DT)) {
    moai_ts_const_t *k = ts_konst_new(c, dtype, rank, dims);
    if (!k) return TS_OOM(c);
    for (int64_t i = 0; i < n; ++i) ts_k_setf(k, i, x);
    c->out = ts_konst_value(c, k);
    return c->out ? moai_ok_status() : TS_OOM(c);
  }
  MlirValue s, r;
  MOAI_RETURN_IF_ERROR(ts_const_scalar(c, dtype, x, &s));
  MOAI_RETURN_IF_ERROR(ts_op_ints(c, "expand", s, dims, (size_t)rank, &r));
  OUT_TENSOR(c, r);
}

static moai_status_t dtype_arg(ts_call_t *c, size_t i, int def, int *out) {
  int64_t d;
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, i, true, def, &d));
  if (mlirTypeIsNull(ts_elem_type(c->em->ctx, (int)d)))
    return ts_err(c, MOAI_UNIMPLEMENTED, "dtype code %lld is not supported",
                  (long long)d);
  *out = (int)d;
  return moai_ok_status();
}

/* zeros/ones(size, dtype, layout, device, pin_memory),
 * full(size, fill_value, dtype, ...), *_like(self, [fill_value,] dtype, ...) */
static moai_status_t op_fill(ts_call_t *c) {
  const char *kind = c->entry->aux;
  bool like = strstr(kind, "like") != NULL, full = strncmp(kind, "full", 4) == 0;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK];
  size_t n;
  int def = MOAI_PK_F32;
  double x = strncmp(kind, "ones", 4) == 0 ? 1.0 : 0.0;
  if (like) {
    MOAI_RETURN_IF_ERROR(ts_need_shape(c, c->a[0], &rank, dims));
    def = ts_dtype(c->a[0]);
  } else {
    MOAI_RETURN_IF_ERROR(ts_arg_ints(c, 0, dims, MOAI_PK_MAX_RANK, 1, &n));
    rank = (int)n;
  }
  if (full) {
    MOAI_RETURN_IF_ERROR(ts_arg_float(c, 1, false, 0, &x));
    if (!like && c->a[1]) {
      int fd = ts_dtype(c->a[1]);
      def = fd == MOAI_PK_F64 ? MOAI_PK_F32 : fd;
    }
  }
  int dtype = 0;
  MOAI_RETURN_IF_ERROR(dtype_arg(c, full ? 2 : 1, def, &dtype));
  return filled(c, dtype, rank, dims, x);
}

/* arange(end | start, end[, step], dtype, layout, device, pin_memory) */
static moai_status_t op_arange(ts_call_t *c) {
  size_t np = c->n_positional >= 5 ? c->n_positional - 4 : c->n_positional;
  if (np > 3) np = 3;
  if (np == 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs an end");
  double v[3] = {0, 0, 1};
  bool any_float = false;
  for (size_t i = 0; i < np; ++i) {
    if (!ts_value_float(c->a[i], &v[i]))
      return ts_err(c, MOAI_UNIMPLEMENTED, "needs compile-time bounds");
    int dt = ts_dtype(c->a[i]);
    any_float |= ts_dtype_is_float(dt);
  }
  double start = np == 1 ? 0 : v[0], end = np == 1 ? v[0] : v[1],
         step = np == 3 ? v[2] : 1;
  if (step == 0) return ts_err(c, MOAI_INVALID_ARGUMENT, "step is 0");
  moai_ts_value_t *dv = c->n_positional >= 5 ? c->a[np] : c->a[3];
  int dtype = any_float ? MOAI_PK_F32 : MOAI_PK_I64;
  int64_t d;
  if (!ts_is_none(dv)) {
    if (!ts_value_int(dv, &d)) return ts_err(c, MOAI_INVALID_ARGUMENT, "bad dtype");
    dtype = (int)d;
  }
  double count = ceil((end - start) / step);
  int64_t len = count > 0 ? (int64_t)count : 0;
  if (len > MOAI_TS_MAX_CONST_ELEMENTS)
    return ts_err(c, MOAI_UNIMPLEMENTED, "of %lld elements (at most %d)",
                  (long long)len, MOAI_TS_MAX_CONST_ELEMENTS);
  moai_ts_const_t *k = ts_konst_new(c, dtype, 1, &len);
  if (!k) return ts_err(c, MOAI_UNIMPLEMENTED, "of dtype %s", ts_dtype_name(dtype));
  for (int64_t i = 0; i < len; ++i) {
    if (ts_dtype_is_float(dtype)) ts_k_setf(k, i, start + (double)i * step);
    else ts_k_seti(k, i, (int64_t)start + i * (int64_t)step);
  }
  c->out = ts_konst_value(c, k);
  return c->out ? moai_ok_status() : TS_OOM(c);
}

/* tensor(data, dtype, device, requires_grad), scalar_tensor(s, dtype, ...) */
static moai_status_t op_tensor(ts_call_t *c) {
  moai_ts_value_t *v = c->a[0];
  int64_t n = 1;
  int rank = 0;
  bool any_float = false;
  if (v && (v->kind == MOAI_TS_LIST || v->kind == MOAI_TS_TUPLE)) {
    n = (int64_t)v->len;
    rank = 1;
    for (size_t i = 0; i < v->len; ++i) {
      if (!ts_is_number(v->items[i]))
        return ts_err(c, MOAI_UNIMPLEMENTED, "needs a number or a flat list of numbers");
      any_float |= v->items[i]->kind == MOAI_TS_FLOAT;
    }
  } else if (ts_is_number(v)) {
    any_float = v->kind == MOAI_TS_FLOAT;
  } else {
    return ts_err(c, MOAI_UNIMPLEMENTED, "needs a number or a flat list of numbers");
  }
  int def = any_float ? MOAI_PK_F32
                      : (v->kind == MOAI_TS_BOOL ? MOAI_PK_BOOL_DT : MOAI_PK_I64);
  if (strcmp(c->entry->aux, "scalar") == 0) def = MOAI_PK_F32;
  int dtype = 0;
  MOAI_RETURN_IF_ERROR(dtype_arg(c, 1, def, &dtype));
  moai_ts_const_t *k = ts_konst_new(c, dtype, rank, &n);
  if (!k) return ts_err(c, MOAI_UNIMPLEMENTED, "of dtype %s", ts_dtype_name(dtype));
  for (int64_t i = 0; i < n; ++i) {
    const moai_ts_value_t *it = rank ? v->items[i] : v;
    if (it->kind == MOAI_TS_FLOAT) ts_k_setf(k, i, it->f);
    else ts_k_seti(k, i, it->kind == MOAI_TS_INT ? it->i : it->b);
  }
  c->out = ts_konst_value(c, k);
  return c->out ? moai_ok_status() : TS_OOM(c);
}

/* ------------------------------------------------------------- conversions */

static moai_status_t convert(ts_call_t *c, moai_ts_value_t *x, int dtype) {
  if (mlirTypeIsNull(ts_elem_type(c->em->ctx, dtype)))
    return ts_err(c, MOAI_UNIMPLEMENTED, "dtype code %d is not supported", dtype);
  if (ts_dtype(x) == dtype) {
    c->out = x;
    return moai_ok_status();
  }
  if (is_konst_only(x) && (dtype == MOAI_PK_I64 || dtype == MOAI_PK_F32 ||
                           dtype == MOAI_PK_F64 || dtype == MOAI_PK_BOOL_DT)) {
    moai_ts_const_t *k = ts_k_convert(c, x->konst, dtype);
    if (!k) return TS_OOM(c);
    k->wrapped_number = false;
    c->out = ts_konst_value(c, k);
    return c->out ? moai_ok_status() : TS_OOM(c);
  }
  MlirValue v, r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &v));
  MOAI_RETURN_IF_ERROR(ts_cast(c, v, dtype, &r));
  OUT_TENSOR(c, r);
}

/* to(self, [device,] dtype, non_blocking, copy, memory_format),
 * to(self, other, ...): the first int argument (or other's dtype) is the
 * dtype; devices are ignored. */
static moai_status_t op_to(ts_call_t *c) {
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  for (size_t i = 1; i < c->n_slots; ++i) {
    moai_ts_value_t *v = c->a[i];
    if (!v || v->kind == MOAI_TS_STR) continue;
    if (v->kind == MOAI_TS_TENSOR) return convert(c, x, ts_dtype(v));
    if (v->kind == MOAI_TS_INT) return convert(c, x, (int)v->i);
    break; /* None or a bool: no dtype */
  }
  c->out = x;
  return moai_ok_status();
}

static moai_status_t op_type_as(ts_call_t *c) {
  moai_ts_value_t *x;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  if (!ts_is_tensor(c->a[1])) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a tensor");
  return convert(c, x, ts_dtype(c->a[1]));
}

/* --------------------------------------------------------- triu, cumsum */

/* triu/tril(self, diagonal=0) */
static moai_status_t op_trilu(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], diag;
  bool upper = strcmp(c->entry->aux, "triu") == 0;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, true, 0, &diag));
  if (rank < 2) return ts_err(c, MOAI_INVALID_ARGUMENT, "needs a tensor of rank >= 2");
  if (is_konst_only(x)) {
    moai_ts_const_t *k = ts_k_convert(c, x->konst, (int)x->konst->dtype);
    moai_ts_const_t *r = ts_konst_new(c, (int)k->dtype, rank, dims);
    if (!r) return TS_OOM(c);
    int64_t rows = dims[rank - 2], cols = dims[rank - 1];
    for (int64_t i = 0; i < r->numel; ++i) {
      int64_t col = i % cols, row = (i / cols) % rows;
      bool keep = upper ? col - row >= diag : col - row <= diag;
      if (ts_dtype_is_float((int)k->dtype)) ts_k_setf(r, i, keep ? ts_k_getf(k, i) : 0);
      else ts_k_seti(r, i, keep ? ts_k_geti(k, i) : 0);
    }
    c->out = ts_konst_value(c, r);
    return c->out ? moai_ok_status() : TS_OOM(c);
  }
  MlirValue ops[2], r;
  MOAI_RETURN_IF_ERROR(ts_value(c, x, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_const_scalar(c, MOAI_PK_I64, (double)diag, &ops[1]));
  ts_attr_t a = {"upper", ts_attr_i64(c, upper)};
  MOAI_RETURN_IF_ERROR(ts_op(c, "trilu", ops, 2, &a, 1, &r));
  OUT_TENSOR(c, r);
}

/* cumsum(self, dim, dtype=None) */
static moai_status_t op_cumsum(ts_call_t *c) {
  moai_ts_value_t *x;
  int rank;
  int64_t dims[MOAI_PK_MAX_RANK], d;
  MOAI_RETURN_IF_ERROR(ts_arg_tensor(c, 0, &x));
  MOAI_RETURN_IF_ERROR(ts_need_shape(c, x, &rank, dims));
  MOAI_RETURN_IF_ERROR(ts_arg_int(c, 1, false, 0, &d));
  MOAI_RETURN_IF_ERROR(ts_norm_dim(c, d, rank, &d));
  int dt = ts_dtype(x);
  if (!ts_dtype_is_float(dt)) dt = MOAI_PK_I64;
  MOAI_RETURN_IF_ERROR(dtype_arg(c, 2, dt, &dt));
  if (is_konst_only(x) && rank > 0 &&
      (dt == MOAI_PK_I64 || dt == MOAI_PK_F32 || dt == MOAI_PK_F64)) {
    moai_ts_const_t *k = ts_k_convert(c, x->konst, dt);
    moai_ts_const_t *r = k ? ts_konst_new(c, dt, rank, dims) : NULL;
    if (!r) return TS_OOM(c);
    int64_t inner = ts_numel(rank - (int)d - 1, dims + d + 1);
    for (int64_t i = 0; i < r->numel; ++i) {
      int64_t pos = (i / inner) % dims[d];
      if (ts_dtype_is_float(dt))
        ts_k_setf(r, i, ts_k_getf(k, i) + (pos ? ts_k_getf(r, i - inner) : 0));
      else
        ts_k_seti(r, i, ts_k_geti(k, i) + (pos ? ts_k_geti(r, i - inner) : 0));
    }
    c->out = ts_konst_value(c, r);
    return c->out ? moai_ok_status() : TS_OOM(c);
  }
  MlirValue ops[2], r;
  MOAI_RETURN_IF_ERROR(ts_value_as(c, x, dt, &ops[0]));
  MOAI_RETURN_IF_ERROR(ts_const_scalar(c, MOAI_PK_I64, (double)d, &ops[1]));
  MOAI_RETURN_IF_ERROR(ts_op(c, "cumsum", ops, 2, NULL, 0, &r));
  OUT_TENSOR(c, r);
}

/* ------------------------------------------------------------------- table */

#define FILL "dtype,layout,device,pin_memory"
const ts_op_entry_t ts_ops_shape[] = {
    {"torch.size", "self,dim", op_size, NULL},
    {"torch.dim", "self", op_dim, "dim"},
    {"torch.numel", "self", op_dim, "numel"},
    {"len", "self", op_len, NULL},
    {"ops.prim.NumToTensor", "self", op_num_to_tensor, NULL},
    {"int", "self", op_scalar, "int"},
    {"float", "self", op_scalar, "float"},
    {"bool", "self", op_scalar, "bool"},
    {"torch.device", "type,index", op_device, NULL},
    {"torch.contiguous", "self,memory_format", op_identity, NULL},
    {"torch.detach", "self", op_identity, NULL},
    {"torch.clone", "self,memory_format", op_identity, NULL},
    {"torch.alias", "self", op_identity, NULL},
    {"torch.reshape", "self,shape", op_reshape, ""},
    {"torch.view", "self,size", op_reshape, ""},
    {"torch.view_as", "self,other", op_reshape, "as"},
    {"torch.reshape_as", "self,other", op_reshape, "as"},
    {"torch.flatten", "self,start_dim,end_dim", op_flatten, NULL},
    {"torch.transpose", "self,dim0,dim1", op_transpose, ""},
    {"torch.t", "self", op_transpose, "t"},
    {"torch.permute", "self,dims", op_permute, NULL},
    {"torch.unsqueeze", "self,dim", op_unsqueeze, NULL},
    {"torch.squeeze", "self,dim", op_squeeze, NULL},
    {"torch.expand", "self,size,implicit", op_expand, ""},
    {"torch.expand_as", "self,other", op_expand, "as"},
    {"torch.slice", "self,dim,start,end,step", op_slice, NULL},
    {"torch.select", "self,dim,index", op_select, NULL},
    {"torch.index_select", "self,dim,index", op_index_select, NULL},
    {"torch.cat", "tensors,dim", op_cat, NULL},
    {"torch.concat", "tensors,dim", op_cat, NULL},
    {"torch.stack", "tensors,dim", op_stack, NULL},
    {"torch.chunk", "self,chunks,dim", op_split, "chunk"},
    {"torch.split", "self,split_size,dim", op_split, "split"},
    {"torch.split_with_sizes", "self,split_sizes,dim", op_split, "split"},
    {"torch.arange", "start,end,step," FILL, op_arange, NULL},
    {"torch.zeros", "size," FILL, op_fill, "zeros"},
    {"torch.ones", "size," FILL, op_fill, "ones"},
    {"torch.full", "size,fill_value," FILL, op_fill, "full"},
    {"torch.zeros_like", "self," FILL ",memory_format", op_fill, "zeros_like"},
    {"torch.ones_like", "self," FILL ",memory_format", op_fill, "ones_like"},
    {"torch.full_like", "self,fill_value," FILL ",memory_format", op_fill, "full_like"},
    {"torch.tensor", "data,dtype,device,requires_grad", op_tensor, ""},
    {"torch.scalar_tensor", "s," FILL, op_tensor, "scalar"},
    {"torch.to", "self,dtype,non_blocking,copy,memory_format,extra", op_to, NULL},
    {"torch.type_as", "self,other", op_type_as, NULL},
    {"torch.triu", "self,diagonal", op_trilu, "triu"},
    {"torch.tril", "self,diagonal", op_trilu, "tril"},
    {"torch.cumsum", "self,dim,dtype", op_cumsum, NULL},
    {NULL, NULL, NULL, NULL},
};
