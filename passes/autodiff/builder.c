/* moai-autodiff: building moai ops for the backward pass. Every op is
 * created before the function's return with fully static result types, and
 * with the op table's defaults for the attributes a rule does not set (IRDL
 * requires every attribute that has a default). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autodiff/autodiff_internal.h"
#include "ir/dialect.h"
#include "ir/dtype.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"

/* ---- map ------------------------------------------------------------------ */

static size_t hash_ptr(const void *p, size_t cap) {
  uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
  return (size_t)(h >> 17) & (cap - 1);
}

bool ad_map_put(ad_t *ad, ad_map_t *m, MlirValue key, MlirValue value) {
  if ((m->count + 1) * 2 > m->capacity) {
    size_t cap = m->capacity ? m->capacity * 2 : 256;
    const void **keys = calloc(cap, sizeof(*keys));
    MlirValue *values = calloc(cap, sizeof(*values));
    if (!keys || !values) {
      free(keys);
      free(values);
      ad->oom = true;
      return false;
    }
    for (size_t i = 0; i < m->capacity; ++i) {
      if (!m->keys[i]) continue;
      size_t j = hash_ptr(m->keys[i], cap);
      while (keys[j]) j = (j + 1) & (cap - 1);
      keys[j] = m->keys[i];
      values[j] = m->values[i];
    }
    free(m->keys);
    free(m->values);
    m->keys = keys;
    m->values = values;
    m->capacity = cap;
  }
  size_t j = hash_ptr(key.ptr, m->capacity);
  while (m->keys[j] && m->keys[j] != key.ptr) j = (j + 1) & (m->capacity - 1);
  if (!m->keys[j]) m->count++;
  m->keys[j] = key.ptr;
  m->values[j] = value;
  return true;
}

MlirValue ad_map_get(const ad_map_t *m, MlirValue key) {
  if (!m->capacity || !key.ptr) return (MlirValue){NULL};
  size_t j = hash_ptr(key.ptr, m->capacity);
  while (m->keys[j]) {
    if (m->keys[j] == key.ptr) return m->values[j];
    j = (j + 1) & (m->capacity - 1);
  }
  return (MlirValue){NULL};
}

void ad_map_free(ad_map_t *m) {
  free(m->keys);
  free(m->values);
  memset(m, 0, sizeof(*m));
}

bool ad_needs(const ad_t *ad, MlirValue v) {
  return !mlirValueIsNull(v) && !mlirValueIsNull(ad_map_get(&ad->needs, v));
}

void ad_accumulate(ad_t *ad, MlirValue v, MlirValue g) {
  if (mlirValueIsNull(g) || !ad_needs(ad, v)) return;
  MlirValue old = ad_map_get(&ad->grads, v);
  if (!mlirValueIsNull(old)) g = ad_add(ad, old, g);
  if (!mlirValueIsNull(g)) ad_map_put(ad, &ad->grads, v, g);
}

/* ---- types ------------------------------------------------------------------ */

int ad_rank(MlirValue v) { return (int)mlirShapedTypeGetRank(mlirValueGetType(v)); }

int ad_dims(MlirValue v, int64_t *dims) {
  MlirType t = mlirValueGetType(v);
  int r = (int)mlirShapedTypeGetRank(t);
  for (int i = 0; i < r && i < AD_MAX_RANK; ++i) dims[i] = mlirShapedTypeGetDimSize(t, i);
  return r;
}

int64_t ad_numel(MlirValue v) {
  int64_t d[AD_MAX_RANK], n = 1;
  int r = ad_dims(v, d);
  for (int i = 0; i < r; ++i) n *= d[i];
  return n;
}

MlirType ad_elem(MlirValue v) { return mlirShapedTypeGetElementType(mlirValueGetType(v)); }

bool ad_is_float(MlirValue v) {
  MlirType t = mlirValueGetType(v);
  if (!mlirTypeIsARankedTensor(t)) return false;
  return moai_dtype_is_float(moai_dtype_from_mlir(mlirShapedTypeGetElementType(t)));
}

MlirType ad_tensor_type(ad_t *ad, int rank, const int64_t *dims, MlirType elem) {
  (void)ad;
  return mlirRankedTensorTypeGet(rank, dims, elem, mlirAttributeGetNull());
}

bool ad_same_shape(MlirValue a, MlirValue b) {
  int64_t da[AD_MAX_RANK], db[AD_MAX_RANK];
  int ra = ad_dims(a, da), rb = ad_dims(b, db);
  if (ra != rb) return false;
  for (int i = 0; i < ra; ++i)
    if (da[i] != db[i]) return false;
  return true;
}

/* ---- attributes ----------------------------------------------------------------- */

MlirNamedAttribute ad_named(ad_t *ad, const char *name, MlirAttribute a) {
  return mlirNamedAttributeGet(
      mlirIdentifierGet(ad->ctx, mlirStringRefCreateFromCString(name)), a);
}

MlirAttribute ad_i64_attr(ad_t *ad, int64_t v) {
  return mlirIntegerAttrGet(mlirIntegerTypeGet(ad->ctx, 64), v);
}

MlirAttribute ad_ints_attr(ad_t *ad, int n, const int64_t *v) {
  return mlirDenseI64ArrayGet(ad->ctx, n, v);
}

MlirAttribute ad_str_attr(ad_t *ad, const char *s) {
  return mlirStringAttrGet(ad->ctx, mlirStringRefCreateFromCString(s));
}

MlirAttribute ad_f32_attr(ad_t *ad, double v) {
  return mlirFloatAttrDoubleGet(ad->ctx, mlirF32TypeGet(ad->ctx), v);
}

MlirAttribute ad_attr(MlirOperation op, const char *name) {
  return mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
}

int64_t ad_attr_int(MlirOperation op, const char *name, int64_t fallback) {
  MlirAttribute a = ad_attr(op, name);
  return !mlirAttributeIsNull(a) && mlirAttributeIsAInteger(a) ? mlirIntegerAttrGetValueInt(a)
                                                               : fallback;
}

double ad_attr_float(MlirOperation op, const char *name, double fallback) {
  MlirAttribute a = ad_attr(op, name);
  return !mlirAttributeIsNull(a) && mlirAttributeIsAFloat(a) ? mlirFloatAttrGetValueDouble(a)
                                                             : fallback;
}

bool ad_attr_str_is(MlirOperation op, const char *name, const char *s, bool dflt) {
  MlirAttribute a = ad_attr(op, name);
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a)) return dflt;
  MlirStringRef v = mlirStringAttrGetValue(a);
  return v.length == strlen(s) && memcmp(v.data, s, v.length) == 0;
}

int ad_attr_ints(MlirOperation op, const char *name, int64_t *buf, int cap) {
  MlirAttribute a = ad_attr(op, name);
  if (mlirAttributeIsNull(a) || !mlirAttributeIsADenseI64Array(a)) return -1;
  int n = (int)mlirDenseArrayGetNumElements(a);
  for (int i = 0; i < n && i < cap; ++i) buf[i] = mlirDenseI64ArrayGetElement(a, i);
  return n;
}

static MlirAttribute const_value(MlirValue v) {
  if (mlirValueIsNull(v) || !mlirValueIsAOpResult(v)) return mlirAttributeGetNull();
  MlirOperation op = mlirOpResultGetOwner(v);
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  if (name.length != 13 || memcmp(name.data, "moai.constant", 13) != 0)
    return mlirAttributeGetNull();
  MlirAttribute a = ad_attr(op, "value");
  return !mlirAttributeIsNull(a) && mlirAttributeIsADenseElements(a) ? a
                                                                      : mlirAttributeGetNull();
}

int ad_const_ints(MlirValue v, int64_t *buf, int cap) {
  MlirAttribute a = const_value(v);
  if (mlirAttributeIsNull(a)) return -1;
  MlirType et = mlirShapedTypeGetElementType(mlirAttributeGetType(a));
  if (!mlirTypeIsAInteger(et)) return -1;
  unsigned width = mlirIntegerTypeGetWidth(et);
  int n = (int)mlirElementsAttrGetNumElements(a);
  bool splat = mlirDenseElementsAttrIsSplat(a);
  for (int i = 0; i < n && i < cap; ++i) {
    intptr_t k = splat ? 0 : i;
    if (width == 64)
      buf[i] = mlirDenseElementsAttrGetInt64Value(a, k);
    else if (width == 32)
      buf[i] = mlirDenseElementsAttrGetInt32Value(a, k);
    else
      return -1;
  }
  return n;
}

bool ad_const_scalar(MlirValue v, double *out) { return moai_const_scalar(v, out); }

/* ---- building -------------------------------------------------------------------- */

MlirValue ad_error(ad_t *ad, const char *fmt, ...) {
  char msg[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof(msg), fmt, args);
  va_end(args);
  mlirEmitError(ad->loc, msg);
  ad->failed = true;
  return (MlirValue){NULL};
}

MlirValue ad_build(ad_t *ad, const char *name, const MlirValue *in, int n_in,
                   int n_variadic, const MlirType *res, int n_res,
                   const MlirNamedAttribute *attrs, int n_attrs, MlirValue *out) {
  if (ad->failed || ad->oom) return (MlirValue){NULL};
  char err[160];
  MlirOperation op = moai_op_build(ad->ctx, ad->loc, name, in, n_in, n_variadic, res, n_res,
                                   attrs, n_attrs, err, sizeof(err));
  if (mlirOperationIsNull(op)) return ad_error(ad, "moai-autodiff: internal: %s", err);
  mlirBlockInsertOwnedOperationBefore(ad->block, ad->anchor, op);
  for (int i = 0; out && i < n_res; ++i) out[i] = mlirOperationGetResult(op, i);
  return n_res ? mlirOperationGetResult(op, 0) : (MlirValue){NULL};
}

MlirValue ad_op1(ad_t *ad, const char *name, MlirValue a, MlirType res) {
  return ad_build(ad, name, &a, 1, 0, &res, 1, NULL, 0, NULL);
}

MlirValue ad_unary(ad_t *ad, const char *name, MlirValue a) {
  if (mlirValueIsNull(a)) return a;
  return ad_op1(ad, name, a, mlirValueGetType(a));
}

MlirValue ad_scalar(ad_t *ad, MlirType elem, double v) {
  MlirType t = ad_tensor_type(ad, 0, NULL, elem);
  MlirAttribute value;
  if (mlirTypeIsAF64(elem))
    value = mlirDenseElementsAttrDoubleSplatGet(t, v);
  else if (mlirTypeIsAF32(elem))
    value = mlirDenseElementsAttrFloatSplatGet(t, (float)v);
  else if (mlirTypeIsAInteger(elem) && mlirIntegerTypeGetWidth(elem) == 64)
    value = mlirDenseElementsAttrInt64SplatGet(t, (int64_t)v);
  else
    return ad_error(ad, "moai-autodiff: gradients of this element type are not supported "
                        "(float32 and float64 are)");
  MlirNamedAttribute a = ad_named(ad, "value", value);
  return ad_build(ad, "constant", NULL, 0, 0, &t, 1, &a, 1, NULL);
}

MlirValue ad_scalar_like(ad_t *ad, MlirValue like, double v) {
  return ad_scalar(ad, ad_elem(like), v);
}

MlirValue ad_i64s(ad_t *ad, int n, const int64_t *v) {
  int64_t d = n;
  MlirType t = ad_tensor_type(ad, 1, &d, mlirIntegerTypeGet(ad->ctx, 64));
  MlirNamedAttribute a = ad_named(ad, "value", mlirDenseElementsAttrInt64Get(t, n, v));
  return ad_build(ad, "constant", NULL, 0, 0, &t, 1, &a, 1, NULL);
}

static bool broadcast(MlirValue a, MlirValue b, int *rank, int64_t *dims) {
  int64_t da[AD_MAX_RANK], db[AD_MAX_RANK];
  int ra = ad_dims(a, da), rb = ad_dims(b, db);
  int r = ra > rb ? ra : rb;
  for (int i = 0; i < r; ++i) {
    int64_t x = i - (r - ra) >= 0 ? da[i - (r - ra)] : 1;
    int64_t y = i - (r - rb) >= 0 ? db[i - (r - rb)] : 1;
    if (x != y && x != 1 && y != 1) return false;
    dims[i] = x == 1 ? y : x;
  }
  *rank = r;
  return true;
}

static MlirValue binary_typed(ad_t *ad, const char *name, MlirValue a, MlirValue b,
                              MlirType elem) {
  if (mlirValueIsNull(a) || mlirValueIsNull(b)) return (MlirValue){NULL};
  int r;
  int64_t d[AD_MAX_RANK];
  if (!broadcast(a, b, &r, d))
    return ad_error(ad, "moai-autodiff: internal: shapes do not broadcast for moai.%s", name);
  MlirType t = ad_tensor_type(ad, r, d, elem);
  MlirValue in[2] = {a, b};
  return ad_build(ad, name, in, 2, 0, &t, 1, NULL, 0, NULL);
}

MlirValue ad_binary(ad_t *ad, const char *name, MlirValue a, MlirValue b) {
  if (mlirValueIsNull(a)) return a;
  return binary_typed(ad, name, a, b, ad_elem(a));
}
MlirValue ad_add(ad_t *ad, MlirValue a, MlirValue b) { return ad_binary(ad, "add", a, b); }
MlirValue ad_sub(ad_t *ad, MlirValue a, MlirValue b) { return ad_binary(ad, "sub", a, b); }
MlirValue ad_mul(ad_t *ad, MlirValue a, MlirValue b) { return ad_binary(ad, "mul", a, b); }
MlirValue ad_div(ad_t *ad, MlirValue a, MlirValue b) { return ad_binary(ad, "div", a, b); }

MlirValue ad_compare(ad_t *ad, const char *name, MlirValue a, MlirValue b) {
  return binary_typed(ad, name, a, b, mlirIntegerTypeGet(ad->ctx, 1));
}

MlirValue ad_where(ad_t *ad, MlirValue c, MlirValue x, MlirValue y) {
  if (mlirValueIsNull(c) || mlirValueIsNull(x) || mlirValueIsNull(y)) return (MlirValue){NULL};
  int r1, r;
  int64_t d1[AD_MAX_RANK], d[AD_MAX_RANK];
  if (!broadcast(x, y, &r1, d1)) return ad_error(ad, "moai-autodiff: internal: where shapes");
  /* broadcast(c, broadcast(x, y)) */
  int64_t dc[AD_MAX_RANK];
  int rc = ad_dims(c, dc);
  r = rc > r1 ? rc : r1;
  for (int i = 0; i < r; ++i) {
    int64_t p = i - (r - rc) >= 0 ? dc[i - (r - rc)] : 1;
    int64_t q = i - (r - r1) >= 0 ? d1[i - (r - r1)] : 1;
    d[i] = p == 1 ? q : p;
  }
  MlirType t = ad_tensor_type(ad, r, d, ad_elem(x));
  MlirValue in[3] = {c, x, y};
  return ad_build(ad, "where", in, 3, 0, &t, 1, NULL, 0, NULL);
}

MlirValue ad_cast(ad_t *ad, MlirValue v, MlirType elem) {
  if (mlirValueIsNull(v)) return v;
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(v, d);
  MlirType t = ad_tensor_type(ad, r, d, elem);
  MlirNamedAttribute a = ad_named(ad, "to", mlirTypeAttrGet(elem));
  return ad_build(ad, "cast", &v, 1, 0, &t, 1, &a, 1, NULL);
}

/* v as `dims` through `op_name` (reshape or expand, which take the target
 * shape as an i64 operand); v itself when it has those dims already. */
static MlirValue ad_to_shape(ad_t *ad, const char *op_name, MlirValue v, int rank,
                             const int64_t *dims) {
  if (mlirValueIsNull(v)) return v;
  int64_t cur[AD_MAX_RANK];
  int r = ad_dims(v, cur);
  if (r == rank && (rank == 0 || memcmp(cur, dims, sizeof(int64_t) * (size_t)rank) == 0)) return v;
  MlirValue shape = ad_i64s(ad, rank, dims);
  MlirType t = ad_tensor_type(ad, rank, dims, ad_elem(v));
  MlirValue in[2] = {v, shape};
  return ad_build(ad, op_name, in, 2, 0, &t, 1, NULL, 0, NULL);
}

MlirValue ad_reshape(ad_t *ad, MlirValue v, int rank, const int64_t *dims) {
  return ad_to_shape(ad, "reshape", v, rank, dims);
}

MlirValue ad_reshape_like(ad_t *ad, MlirValue v, MlirValue like) {
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(like, d);
  return ad_reshape(ad, v, r, d);
}

MlirValue ad_transpose(ad_t *ad, MlirValue v, const int64_t *perm) {
  if (mlirValueIsNull(v)) return v;
  int64_t d[AD_MAX_RANK], o[AD_MAX_RANK];
  int r = ad_dims(v, d);
  bool identity = true;
  for (int i = 0; i < r; ++i) {
    o[i] = d[perm[i]];
    identity &= perm[i] == i;
  }
  if (identity) return v;
  MlirType t = ad_tensor_type(ad, r, o, ad_elem(v));
  MlirNamedAttribute a = ad_named(ad, "perm", ad_ints_attr(ad, r, perm));
  return ad_build(ad, "transpose", &v, 1, 0, &t, 1, &a, 1, NULL);
}

MlirValue ad_transpose_last2(ad_t *ad, MlirValue v) {
  int r = ad_rank(v);
  int64_t perm[AD_MAX_RANK];
  for (int i = 0; i < r; ++i) perm[i] = i;
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return ad_transpose(ad, v, perm);
}

MlirValue ad_expand(ad_t *ad, MlirValue v, int rank, const int64_t *dims) {
  return ad_to_shape(ad, "expand", v, rank, dims);
}

MlirValue ad_reduce_sum(ad_t *ad, MlirValue v, int n_axes, const int64_t *axes,
                        bool keepdims) {
  if (mlirValueIsNull(v) || n_axes == 0) return v;
  int64_t d[AD_MAX_RANK], o[AD_MAX_RANK];
  int r = ad_dims(v, d), ro = 0;
  for (int i = 0; i < r; ++i) {
    bool red = false;
    for (int j = 0; j < n_axes; ++j) red |= axes[j] == i;
    if (!red)
      o[ro++] = d[i];
    else if (keepdims)
      o[ro++] = 1;
  }
  MlirType t = ad_tensor_type(ad, ro, o, ad_elem(v));
  MlirValue in[2] = {v, ad_i64s(ad, n_axes, axes)};
  MlirNamedAttribute a = ad_named(ad, "keepdims", ad_i64_attr(ad, keepdims ? 1 : 0));
  return ad_build(ad, "reduce_sum", in, 2, 0, &t, 1, &a, 1, NULL);
}

MlirValue ad_matmul(ad_t *ad, MlirValue a, MlirValue b) {
  if (mlirValueIsNull(a) || mlirValueIsNull(b)) return (MlirValue){NULL};
  int64_t da[AD_MAX_RANK], db[AD_MAX_RANK], o[AD_MAX_RANK];
  int ra = ad_dims(a, da), rb = ad_dims(b, db);
  if (ra < 2 || rb < 2) return ad_error(ad, "moai-autodiff: internal: matmul rank");
  int r = ra > rb ? ra : rb;
  for (int i = 0; i < r - 2; ++i) {
    int64_t x = i - (r - ra) >= 0 ? da[i - (r - ra)] : 1;
    int64_t y = i - (r - rb) >= 0 ? db[i - (r - rb)] : 1;
    o[i] = x == 1 ? y : x;
  }
  o[r - 2] = da[ra - 2];
  o[r - 1] = db[rb - 1];
  MlirType t = ad_tensor_type(ad, r, o, ad_elem(a));
  MlirValue in[2] = {a, b};
  return ad_build(ad, "matmul", in, 2, 0, &t, 1, NULL, 0, NULL);
}

MlirValue ad_gemm(ad_t *ad, MlirValue a, MlirValue b, bool trans_a, bool trans_b) {
  if (mlirValueIsNull(a) || mlirValueIsNull(b)) return (MlirValue){NULL};
  int64_t da[AD_MAX_RANK], db[AD_MAX_RANK];
  if (ad_dims(a, da) != 2 || ad_dims(b, db) != 2)
    return ad_error(ad, "moai-autodiff: internal: gemm operands must be 2-D");
  int64_t o[2] = {trans_a ? da[1] : da[0], trans_b ? db[0] : db[1]};
  MlirType t = ad_tensor_type(ad, 2, o, ad_elem(a));
  MlirValue in[3] = {a, b, {NULL}};
  MlirNamedAttribute at[2] = {ad_named(ad, "transA", ad_i64_attr(ad, trans_a ? 1 : 0)),
                              ad_named(ad, "transB", ad_i64_attr(ad, trans_b ? 1 : 0))};
  return ad_build(ad, "gemm", in, 3, 0, &t, 1, at, 2, NULL);
}

MlirValue ad_reduce_to(ad_t *ad, MlirValue g, int rank, const int64_t *dims) {
  if (mlirValueIsNull(g)) return g;
  int64_t dg[AD_MAX_RANK], axes[AD_MAX_RANK];
  int rg = ad_dims(g, dg), n = 0;
  for (int i = 0; i < rg; ++i) {
    int k = i - (rg - rank);
    if (k < 0 || (dims[k] == 1 && dg[i] != 1)) axes[n++] = i;
  }
  MlirValue s = ad_reduce_sum(ad, g, n, axes, true);
  return ad_reshape(ad, s, rank, dims);
}

MlirValue ad_reduce_to_like(ad_t *ad, MlirValue g, MlirValue like) {
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(like, d);
  return ad_reduce_to(ad, g, r, d);
}

MlirValue ad_zeros(ad_t *ad, int rank, const int64_t *dims, MlirType elem) {
  MlirValue z = ad_scalar(ad, elem, 0.0);
  if (rank == 0) return z;
  return ad_expand(ad, z, rank, dims);
}

MlirValue ad_slice(ad_t *ad, MlirValue v, int axis, int64_t start, int64_t end) {
  if (mlirValueIsNull(v)) return v;
  int64_t d[AD_MAX_RANK];
  int r = ad_dims(v, d);
  if (start == 0 && end == d[axis]) return v;
  d[axis] = end - start;
  int64_t ax = axis;
  MlirValue in[4] = {v, ad_i64s(ad, 1, &start), ad_i64s(ad, 1, &end), ad_i64s(ad, 1, &ax)};
  MlirType t = ad_tensor_type(ad, r, d, ad_elem(v));
  return ad_build(ad, "slice", in, 4, 0, &t, 1, NULL, 0, NULL);
}
