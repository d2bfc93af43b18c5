/* Folders of the shape ops: Gather, Concat, Slice, Expand, Transpose,
 * ConstantOfShape, Range and ReduceSum/Mean/Max. Inputs arrive as host
 * tensors in operand order; the output is allocated with the result's
 * (already inferred, static) type. */
#include <math.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "shape_infer/shape_infer_internal.h"

static void copy_elem(si_tensor_t *out, int64_t oi, const si_tensor_t *in,
                      int64_t ii) {
  if (out->is_float)
    out->fv[oi] = in->fv[ii];
  else
    out->iv[oi] = in->iv[ii];
}

static int64_t product(const si_shape_t *s, int from, int to) {
  int64_t p = 1;
  for (int i = from; i < to; ++i) p *= s->dims[i];
  return p;
}

si_fold_t si_fold_gather(si_op_t *si, si_tensor_t *in, int n,
                         si_tensor_t *out) {
  int64_t axis;
  int a;
  if (n != 2 || !si_attr_int(si, "axis", &axis, NULL) ||
      !si_axis(si, axis, in[0].shape.rank, &a))
    return SI_FOLD_NO;
  const si_tensor_t *data = &in[0], *idx = &in[1];
  int64_t outer = product(&data->shape, 0, a);
  int64_t inner = product(&data->shape, a + 1, data->shape.rank);
  int64_t size = data->shape.dims[a];
  for (int64_t j = 0; j < idx->count; ++j) {
    int64_t x = idx->iv[j];
    if (x < -size || x >= size) {
      si_error(si, "index %lld out of range for axis %d of size %lld",
               (long long)x, a, (long long)size);
      return SI_FOLD_ERROR;
    }
    if (x < 0) x += size;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t k = 0; k < inner; ++k)
        copy_elem(out, (o * idx->count + j) * inner + k, data,
                  (o * size + x) * inner + k);
  }
  return SI_FOLD_DONE;
}

si_fold_t si_fold_concat(si_op_t *si, si_tensor_t *in, int n,
                         si_tensor_t *out) {
  int64_t axis;
  int a;
  if (!si_attr_int(si, "axis", &axis, NULL) ||
      !si_axis(si, axis, out->shape.rank, &a))
    return SI_FOLD_NO;
  int64_t outer = product(&out->shape, 0, a);
  int64_t out_block = product(&out->shape, a, out->shape.rank);
  int64_t pos = 0; /* start of this input's block within an output block */
  for (int k = 0; k < n; ++k) {
    int64_t block = product(&in[k].shape, a, in[k].shape.rank);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < block; ++j)
        copy_elem(out, o * out_block + pos + j, &in[k], o * block + j);
    pos += block;
  }
  return SI_FOLD_DONE;
}

si_fold_t si_fold_slice(si_op_t *si, si_tensor_t *in, int n,
                        si_tensor_t *out) {
  si_slice_t p;
  if (si_slice_params(si, &in[0].shape, &p) != SI_CONST_OK) return SI_FOLD_NO;
  int64_t idx[SI_MAX_RANK] = {0};
  for (int64_t i = 0; i < out->count; ++i) {
    int64_t off = 0;
    for (int d = 0; d < in[0].shape.rank; ++d)
      off = off * in[0].shape.dims[d] + p.start[d] + idx[d] * p.step[d];
    copy_elem(out, i, &in[0], off);
    si_index_next(&out->shape, idx);
  }
  return SI_FOLD_DONE;
}

si_fold_t si_fold_expand(si_op_t *si, si_tensor_t *in, int n,
                         si_tensor_t *out) {
  int64_t idx[SI_MAX_RANK] = {0};
  for (int64_t i = 0; i < out->count; ++i) {
    copy_elem(out, i, &in[0], si_bcast_offset(&in[0].shape, &out->shape, idx));
    si_index_next(&out->shape, idx);
  }
  return SI_FOLD_DONE;
}

si_fold_t si_fold_transpose(si_op_t *si, si_tensor_t *in, int n,
                            si_tensor_t *out) {
  int64_t perm[SI_MAX_RANK];
  int count;
  bool has_perm;
  int r = in[0].shape.rank;
  if (!si_attr_ints(si, "perm", perm, SI_MAX_RANK, &count, &has_perm))
    return SI_FOLD_NO;
  for (int i = 0; i < r; ++i)
    if (!has_perm) perm[i] = r - 1 - i;
  /* Strides of the input, visited in the output's order. */
  int64_t stride[SI_MAX_RANK], s = 1;
  for (int d = r - 1; d >= 0; --d) {
    stride[d] = s;
    s *= in[0].shape.dims[d];
  }
  int64_t idx[SI_MAX_RANK] = {0};
  for (int64_t i = 0; i < out->count; ++i) {
    int64_t off = 0;
    for (int d = 0; d < r; ++d) off += idx[d] * stride[perm[d]];
    copy_elem(out, i, &in[0], off);
    si_index_next(&out->shape, idx);
  }
  return SI_FOLD_DONE;
}

si_fold_t si_fold_constant_of_shape(si_op_t *si, si_tensor_t *in, int n,
                                    si_tensor_t *out) {
  MlirAttribute value;
  if (!si_attr_elements(si, "value", &value)) return SI_FOLD_NO;
  if (mlirAttributeIsNull(value)) return SI_FOLD_DONE; /* zeros */
  si_tensor_t v;
  if (!si_tensor_from_attr(value, 1, &v)) return SI_FOLD_NO;
  for (int64_t i = 0; i < out->count; ++i) copy_elem(out, i, &v, 0);
  si_tensor_free(&v);
  return SI_FOLD_DONE;
}

si_fold_t si_fold_range(si_op_t *si, si_tensor_t *in, int n,
                        si_tensor_t *out) {
  /* ONNX: output[i] = start + i * delta, computed in the element type. */
  for (int64_t i = 0; i < out->count; ++i) {
    if (!out->is_float) {
      uint64_t v = (uint64_t)in[0].iv[0] + (uint64_t)i * (uint64_t)in[2].iv[0];
      out->iv[i] = si_wrap_int(out->elem, (int64_t)v);
    } else if (mlirTypeIsAF32(out->elem)) {
      float v = (float)in[0].fv[0] + (float)i * (float)in[2].fv[0];
      out->fv[i] = v;
    } else {
      out->fv[i] = in[0].fv[0] + (double)i * in[2].fv[0];
    }
  }
  return SI_FOLD_DONE;
}

typedef enum reduce_e { RED_SUM, RED_MEAN, RED_MAX } reduce_t;

si_fold_t si_fold_reduce(si_op_t *si, si_tensor_t *in, int n,
                         si_tensor_t *out) {
  const si_shape_t *s = &in[0].shape;
  bool mask[SI_MAX_RANK], identity;
  if (si_reduce_axes(si, s->rank, mask, &identity) != SI_CONST_OK)
    return SI_FOLD_NO;
  reduce_t kind = strcmp(si->def->name, "reduce_sum") == 0    ? RED_SUM
                  : strcmp(si->def->name, "reduce_mean") == 0 ? RED_MEAN
                                                              : RED_MAX;
  if (identity) {
    for (int64_t i = 0; i < out->count; ++i) copy_elem(out, i, &in[0], i);
    return SI_FOLD_DONE;
  }
  int64_t reduced = 1;
  for (int d = 0; d < s->rank; ++d)
    if (mask[d]) reduced *= s->dims[d];
  if (kind == RED_MEAN && reduced == 0 && !out->is_float) return SI_FOLD_NO;
  /* Max over nothing is the lowest value of the type (ONNX 18+). */
  for (int64_t i = 0; kind == RED_MAX && i < out->count; ++i) {
    if (out->is_float)
      out->fv[i] = -INFINITY;
    else
      out->iv[i] = mlirIntegerTypeGetWidth(out->elem) == 1
                       ? 0
                       : -(int64_t)(((uint64_t)1 << (mlirIntegerTypeGetWidth(
                                         out->elem) - 1)) - 1) - 1;
  }
  int64_t idx[SI_MAX_RANK] = {0};
  for (int64_t i = 0; i < in[0].count; ++i) {
    /* The output element: reduced coordinates dropped (or 0 with keepdims,
     * which gives the same row-major offset). */
    int64_t o = 0;
    for (int d = 0; d < s->rank; ++d)
      if (!mask[d]) o = o * s->dims[d] + idx[d];
    if (out->is_float) {
      double x = in[0].fv[i];
      if (kind != RED_MAX)
        out->fv[o] += x;
      else if (isnan(x) || x > out->fv[o])
        out->fv[o] = isnan(out->fv[o]) ? out->fv[o] : x;
    } else {
      int64_t x = in[0].iv[i];
      if (kind != RED_MAX)
        out->iv[o] = (int64_t)((uint64_t)out->iv[o] + (uint64_t)x);
      else if (x > out->iv[o])
        out->iv[o] = x;
    }
    si_index_next(s, idx);
  }
  for (int64_t i = 0; kind == RED_MEAN && i < out->count; ++i) {
    if (out->is_float)
      out->fv[i] /= (double)reduced;
    else
      out->iv[i] /= reduced;
  }
  /* Sums were accumulated in double / int64: round to the element type. */
  for (int64_t i = 0; i < out->count; ++i)
    si_tensor_store(out, i, out->is_float, out->is_float ? 0 : out->iv[i],
                    out->is_float ? out->fv[i] : 0.0);
  return SI_FOLD_DONE;
}
