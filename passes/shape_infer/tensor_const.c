/* Constant operands: reading moai.constant values (as shape vectors for the
 * rules, or as host tensors for folding) and building DenseElementsAttrs
 * from host tensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "shape_infer/shape_infer_internal.h"

static bool op_is(MlirOperation op, const char *name) {
  MlirStringRef n = mlirIdentifierStr(mlirOperationGetName(op));
  return n.length == strlen(name) && memcmp(n.data, name, n.length) == 0;
}

MlirAttribute si_const_attr(MlirValue v) {
  if (mlirValueIsNull(v) || !mlirValueIsAOpResult(v))
    return mlirAttributeGetNull();
  MlirOperation owner = mlirOpResultGetOwner(v);
  if (!op_is(owner, "moai.constant")) return mlirAttributeGetNull();
  MlirAttribute a = mlirOperationGetAttributeByName(
      owner, mlirStringRefCreateFromCString("value"));
  if (mlirAttributeIsNull(a) ||
      !(mlirAttributeIsADenseIntElements(a) ||
        mlirAttributeIsADenseFPElements(a)))
    return mlirAttributeGetNull();
  return a;
}

/* Element `pos` of an integer DenseElementsAttr of element type `elem`. */
static int64_t read_int(MlirAttribute a, MlirType elem, intptr_t pos) {
  bool u = mlirIntegerTypeIsUnsigned(elem);
  switch (mlirIntegerTypeGetWidth(elem)) {
    case 1: return mlirDenseElementsAttrGetBoolValue(a, pos) ? 1 : 0;
    case 8: return u ? mlirDenseElementsAttrGetUInt8Value(a, pos)
                     : mlirDenseElementsAttrGetInt8Value(a, pos);
    case 16: return u ? mlirDenseElementsAttrGetUInt16Value(a, pos)
                      : mlirDenseElementsAttrGetInt16Value(a, pos);
    case 32: return u ? (int64_t)mlirDenseElementsAttrGetUInt32Value(a, pos)
                      : mlirDenseElementsAttrGetInt32Value(a, pos);
    case 64: return mlirDenseElementsAttrGetInt64Value(a, pos);
    default: return 0;
  }
}

static bool int_readable(MlirType elem) {
  if (!mlirTypeIsAInteger(elem)) return false;
  unsigned w = mlirIntegerTypeGetWidth(elem);
  return w == 1 || w == 8 || w == 16 || w == 32 || w == 64;
}

static bool float_readable(MlirType elem) {
  return mlirTypeIsAF32(elem) || mlirTypeIsAF64(elem);
}

static double read_float(MlirAttribute a, MlirType elem, intptr_t pos) {
  return mlirTypeIsAF32(elem) ? (double)mlirDenseElementsAttrGetFloatValue(a, pos)
                              : mlirDenseElementsAttrGetDoubleValue(a, pos);
}

static int64_t attr_int_or(MlirOperation op, const char *name, int64_t dflt,
                           bool *ok) {
  MlirAttribute a =
      mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
  if (mlirAttributeIsNull(a)) return dflt;
  if (!mlirAttributeIsAInteger(a)) {
    *ok = false;
    return dflt;
  }
  return mlirIntegerAttrGetValueInt(a);
}

/* The value of moai.shape of a statically shaped tensor: false if `v` is
 * not one. */
static bool shape_op_value(MlirValue v, int64_t *buf, int64_t cap,
                           int64_t *out_n) {
  if (!mlirValueIsAOpResult(v)) return false;
  MlirOperation owner = mlirOpResultGetOwner(v);
  if (!op_is(owner, "moai.shape") || mlirOperationGetNumOperands(owner) != 1)
    return false;
  si_type_t t;
  if (!si_type_from_mlir(mlirValueGetType(mlirOperationGetOperand(owner, 0)),
                         &t) ||
      !si_shape_is_static(&t.shape))
    return false;
  int64_t rank = t.shape.rank;
  bool ok = true;
  int64_t start = attr_int_or(owner, "start", 0, &ok);
  int64_t end = attr_int_or(owner, "end", rank, &ok);
  if (!ok) return false;
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  start = start < 0 ? 0 : (start > rank ? rank : start);
  end = end < 0 ? 0 : (end > rank ? rank : end);
  int64_t n = end > start ? end - start : 0;
  if (n > cap) return false;
  for (int64_t i = 0; i < n; ++i) buf[i] = t.shape.dims[start + i];
  *out_n = n;
  return true;
}

si_const_t si_const_ints(si_op_t *si, MlirValue v, const char *what,
                         int64_t *buf, int64_t cap, int64_t *out_n) {
  if (mlirValueIsNull(v)) return SI_CONST_UNKNOWN;
  MlirAttribute a = si_const_attr(v);
  if (mlirAttributeIsNull(a))
    return shape_op_value(v, buf, cap, out_n) ? SI_CONST_OK : SI_CONST_UNKNOWN;
  MlirType elem = mlirShapedTypeGetElementType(mlirAttributeGetType(a));
  if (!int_readable(elem)) {
    si_error(si, "operand '%s' must hold integers", what);
    return SI_CONST_ERROR;
  }
  int64_t n = mlirElementsAttrGetNumElements(a);
  if (n > cap) {
    si_error(si, "operand '%s' has %lld values; at most %lld allowed", what,
             (long long)n, (long long)cap);
    return SI_CONST_ERROR;
  }
  bool splat = mlirDenseElementsAttrIsSplat(a);
  for (int64_t i = 0; i < n; ++i) buf[i] = read_int(a, elem, splat ? 0 : i);
  *out_n = n;
  return SI_CONST_OK;
}

si_const_t si_const_scalar(si_op_t *si, MlirValue v, const char *what,
                           double *out_f, int64_t *out_i, bool *out_is_int) {
  if (mlirValueIsNull(v)) return SI_CONST_UNKNOWN;
  MlirAttribute a = si_const_attr(v);
  if (mlirAttributeIsNull(a)) {
    int64_t x, n;
    if (!shape_op_value(v, &x, 1, &n) || n != 1) return SI_CONST_UNKNOWN;
    *out_i = x;
    *out_f = (double)x;
    *out_is_int = true;
    return SI_CONST_OK;
  }
  if (mlirElementsAttrGetNumElements(a) != 1) {
    si_error(si, "operand '%s' must be a scalar", what);
    return SI_CONST_ERROR;
  }
  MlirType elem = mlirShapedTypeGetElementType(mlirAttributeGetType(a));
  if (int_readable(elem)) {
    *out_i = read_int(a, elem, 0);
    *out_f = (double)*out_i;
    *out_is_int = true;
    return SI_CONST_OK;
  }
  if (!float_readable(elem)) return SI_CONST_UNKNOWN; /* f16, bf16: runtime */
  *out_f = read_float(a, elem, 0);
  *out_i = 0;
  *out_is_int = false;
  return SI_CONST_OK;
}

/* ---- host tensors -------------------------------------------------------- */

bool si_elem_foldable(MlirType elem) {
  if (mlirTypeIsNull(elem)) return false;
  if (float_readable(elem)) return true;
  if (!mlirTypeIsAInteger(elem) || mlirIntegerTypeIsUnsigned(elem))
    return false;
  return int_readable(elem);
}

bool si_tensor_alloc(si_tensor_t *t, MlirType elem, const si_shape_t *shape) {
  memset(t, 0, sizeof(*t));
  t->elem = elem;
  t->is_float = float_readable(elem);
  t->shape = *shape;
  t->count = si_shape_numel(shape);
  if (t->count < 0) return false;
  size_t n = t->count ? (size_t)t->count : 1;
  if (t->is_float)
    t->fv = calloc(n, sizeof(double));
  else
    t->iv = calloc(n, sizeof(int64_t));
  return t->fv || t->iv;
}

void si_tensor_free(si_tensor_t *t) {
  free(t->iv);
  free(t->fv);
  t->iv = NULL;
  t->fv = NULL;
}

/* Copies raw storage of `width` bits per element into the host tensor. */
static void copy_raw(si_tensor_t *t, const void *raw, unsigned width) {
  for (int64_t i = 0; i < t->count; ++i) {
    if (t->is_float) {
      if (width == 32) {
        float f;
        memcpy(&f, (const char *)raw + i * 4, 4);
        t->fv[i] = f;
      } else {
        memcpy(&t->fv[i], (const char *)raw + i * 8, 8);
      }
      continue;
    }
    switch (width) {
      case 8: { int8_t x; memcpy(&x, (const char *)raw + i, 1); t->iv[i] = x; break; }
      case 16: { int16_t x; memcpy(&x, (const char *)raw + i * 2, 2); t->iv[i] = x; break; }
      case 32: { int32_t x; memcpy(&x, (const char *)raw + i * 4, 4); t->iv[i] = x; break; }
      default: memcpy(&t->iv[i], (const char *)raw + i * 8, 8); break;
    }
  }
}

bool si_tensor_from_attr(MlirAttribute attr, int64_t max_elements,
                         si_tensor_t *out) {
  if (mlirAttributeIsNull(attr) ||
      !(mlirAttributeIsADenseIntElements(attr) ||
        mlirAttributeIsADenseFPElements(attr)))
    return false;
  MlirType type = mlirAttributeGetType(attr);
  si_type_t st;
  if (!si_type_from_mlir(type, &st) || !si_shape_is_static(&st.shape) ||
      !si_elem_foldable(st.elem))
    return false;
  int64_t n = mlirElementsAttrGetNumElements(attr);
  if (n > max_elements || !si_tensor_alloc(out, st.elem, &st.shape))
    return false;
  bool splat = mlirDenseElementsAttrIsSplat(attr);
  unsigned width = out->is_float ? mlirFloatTypeGetWidth(st.elem)
                                 : mlirIntegerTypeGetWidth(st.elem);
  if (!splat && width > 1) {
    copy_raw(out, mlirDenseElementsAttrGetRawData(attr), width);
    return true;
  }
  for (int64_t i = 0; i < n; ++i) {
    intptr_t pos = splat ? 0 : (intptr_t)i;
    if (out->is_float)
      out->fv[i] = read_float(attr, st.elem, pos);
    else
      out->iv[i] = read_int(attr, st.elem, pos);
  }
  return true;
}

int64_t si_wrap_int(MlirType elem, int64_t v) {
  switch (mlirIntegerTypeGetWidth(elem)) {
    case 1: return v != 0;
    case 8: return (int8_t)(uint8_t)(uint64_t)v;
    case 16: return (int16_t)(uint16_t)(uint64_t)v;
    case 32: return (int32_t)(uint32_t)(uint64_t)v;
    default: return v;
  }
}

bool si_tensor_store(si_tensor_t *t, int64_t i, bool src_is_float,
                     int64_t src_i, double src_f) {
  if (t->is_float) {
    bool f32 = mlirTypeIsAF32(t->elem);
    /* Round straight from the source so an int64 is rounded once. */
    if (src_is_float)
      t->fv[i] = f32 ? (double)(float)src_f : src_f;
    else
      t->fv[i] = f32 ? (double)(float)src_i : (double)src_i;
    return true;
  }
  unsigned width = mlirIntegerTypeGetWidth(t->elem);
  if (!src_is_float) {
    t->iv[i] = si_wrap_int(t->elem, src_i);
    return true;
  }
  if (width == 1) {
    t->iv[i] = src_f != 0.0; /* NaN is true, as in C and numpy */
    return true;
  }
  if (isnan(src_f)) return false;
  double tr = trunc(src_f);
  double lim = ldexp(1.0, (int)width - 1);
  if (tr < -lim || tr >= lim) return false; /* undefined in ONNX and C */
  t->iv[i] = (int64_t)tr;
  return true;
}

MlirAttribute si_tensor_to_attr(const si_tensor_t *t) {
  MlirType type = si_type_to_mlir(t->elem, &t->shape);
  size_t n = t->count ? (size_t)t->count : 1;
  intptr_t count = (intptr_t)t->count;
  MlirAttribute result = mlirAttributeGetNull();
  if (mlirTypeIsAF64(t->elem))
    return mlirDenseElementsAttrDoubleGet(type, count, t->fv);
  if (mlirTypeIsAF32(t->elem)) {
    float *buf = malloc(n * sizeof(float));
    if (!buf) return result;
    for (int64_t i = 0; i < t->count; ++i) buf[i] = (float)t->fv[i];
    result = mlirDenseElementsAttrFloatGet(type, count, buf);
    free(buf);
    return result;
  }
  unsigned width = mlirIntegerTypeGetWidth(t->elem);
  if (width == 64) return mlirDenseElementsAttrInt64Get(type, count, t->iv);
  void *buf = malloc(n * (width == 1 ? sizeof(int) : width / 8));
  if (!buf) return result;
  for (int64_t i = 0; i < t->count; ++i) {
    int64_t v = si_wrap_int(t->elem, t->iv[i]);
    switch (width) {
      case 1: ((int *)buf)[i] = (int)v; break;
      case 8: ((int8_t *)buf)[i] = (int8_t)v; break;
      case 16: ((int16_t *)buf)[i] = (int16_t)v; break;
      default: ((int32_t *)buf)[i] = (int32_t)v; break;
    }
  }
  switch (width) {
    case 1: result = mlirDenseElementsAttrBoolGet(type, count, buf); break;
    case 8: result = mlirDenseElementsAttrInt8Get(type, count, buf); break;
    case 16: result = mlirDenseElementsAttrInt16Get(type, count, buf); break;
    default: result = mlirDenseElementsAttrInt32Get(type, count, buf); break;
  }
  free(buf);
  return result;
}
