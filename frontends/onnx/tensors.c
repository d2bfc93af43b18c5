/* TensorProto and TypeProto: validation (dtype, dims, data sizes), MLIR
 * types, and DenseElementsAttr for inline data. Field rules follow
 * onnx.proto: raw_data is little-endian; int32_data carries bool, int8,
 * uint8, int16, uint16, int32, float16 and bfloat16 (bit patterns in the low
 * 16 bits); uint64_data carries uint32 and uint64. */
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "onnx/importer.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data is little-endian; this host would need a byte swap"
#endif

/* A valid address for empty buffers (MLIR wants non-NULL data). */
static const uint64_t kEmpty = 0;

const char *moai_onnx_dtype_code_name(int code) {
  switch (code) {
    case 0: return "undefined";
    case 8: return "string";
    case 14: return "complex64";
    case 15: return "complex128";
    case 17: return "float8e4m3fn";
    case 18: return "float8e4m3fnuz";
    case 19: return "float8e5m2";
    case 20: return "float8e5m2fnuz";
    case 21: return "uint4";
    case 22: return "int4";
    case 23: return "float4e2m1";
    default:
      return moai_dtype_is_supported(code) ? moai_dtype_name((moai_dtype_t)code)
                                           : "unknown";
  }
}

/* The typed field a dtype's data lives in, and how many values it holds;
 * *out_others counts values in the fields that do not belong to it. */
static size_t typed_count(const Onnx__TensorProto *t, moai_dtype_t dtype,
                          size_t *out_others) {
  size_t counts[5] = {t->n_float_data, t->n_int32_data, t->n_int64_data,
                      t->n_double_data, t->n_uint64_data};
  size_t which;
  switch (dtype) {
    case MOAI_DTYPE_F32: which = 0; break;
    case MOAI_DTYPE_I64: which = 2; break;
    case MOAI_DTYPE_F64: which = 3; break;
    case MOAI_DTYPE_U32:
    case MOAI_DTYPE_U64: which = 4; break;
    default: which = 1; break;
  }
  size_t others = 0;
  for (size_t i = 0; i < 5; ++i)
    if (i != which) others += counts[i];
  *out_others = others + t->n_string_data;
  return counts[which];
}

static moai_status_t describe_data(moai_onnx_importer_t *im,
                                   const Onnx__TensorProto *t, const char *what,
                                   moai_onnx_tensor_info_t *info) {
  size_t others = 0;
  size_t typed = typed_count(t, info->dtype, &others);
  bool external =
      t->has_data_location &&
      t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
  if (t->has_data_location &&
      t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL &&
      t->data_location != ONNX__TENSOR_PROTO__DATA_LOCATION__DEFAULT)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s: unknown data_location %d", what,
                           (int)t->data_location);
  if (others)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s: holds data in a field that does not match its "
                           "dtype %s",
                           what, moai_dtype_name(info->dtype));
  if (external) {
    if (t->has_raw_data || typed)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "%s: has both external and inline data", what);
    info->data = MOAI_ONNX_DATA_EXTERNAL;
    return moai_ok_status();
  }
  if (t->n_external_data)
    return MOAI_ONNX_ERROR(
        im, MOAI_INVALID_ARGUMENT,
        "%s: has external_data entries but its data_location is "
        "not EXTERNAL",
        what);
  if (t->has_raw_data) {
    if (typed)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "%s: has both raw_data and typed data", what);
    if ((uint64_t)t->raw_data.len != (uint64_t)info->nbytes)
      return MOAI_ONNX_ERROR(
          im, MOAI_DATA_LOSS,
          "%s: raw_data holds %zu bytes, expected %lld (%lld "
          "elements of %s)",
          what, t->raw_data.len, (long long)info->nbytes,
          (long long)info->numel, moai_dtype_name(info->dtype));
    info->data = MOAI_ONNX_DATA_RAW;
    return moai_ok_status();
  }
  if (typed) {
    if ((uint64_t)typed != (uint64_t)info->numel)
      return MOAI_ONNX_ERROR(im, MOAI_DATA_LOSS,
                             "%s: holds %zu values, expected %lld", what, typed,
                             (long long)info->numel);
    info->data = MOAI_ONNX_DATA_FIELD;
    return moai_ok_status();
  }
  info->data = info->numel == 0 ? MOAI_ONNX_DATA_FIELD : MOAI_ONNX_DATA_ABSENT;
  return moai_ok_status();
}

moai_status_t moai_onnx_tensor_describe(moai_onnx_importer_t *im,
                                        const Onnx__TensorProto *t,
                                        const char *what,
                                        moai_onnx_tensor_info_t *out_info) {
  moai_onnx_tensor_info_t info = {0};
  int code = t->has_data_type ? t->data_type : 0;
  if (!moai_dtype_is_supported(code))
    return MOAI_ONNX_ERROR(im, MOAI_UNIMPLEMENTED,
                           "%s: dtype %s (%d) is not supported", what,
                           moai_onnx_dtype_code_name(code), code);
  if (t->segment)
    return MOAI_ONNX_ERROR(im, MOAI_UNIMPLEMENTED,
                           "%s: segmented tensors are not supported", what);
  info.dtype = (moai_dtype_t)code;
  int64_t numel = 1;
  for (size_t i = 0; i < t->n_dims; ++i) {
    int64_t d = t->dims[i];
    if (d < 0)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "%s: dimension %zu is negative (%lld)", what, i,
                             (long long)d);
    if (d && numel > INT64_MAX / d)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "%s: the number of elements overflows", what);
    numel *= d;
  }
  int64_t elem = (int64_t)moai_dtype_size(info.dtype);
  if (numel > INT64_MAX / elem)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s: the size in bytes overflows", what);
  info.numel = numel;
  info.nbytes = numel * elem;
  MOAI_RETURN_IF_ERROR(describe_data(im, t, what, &info));
  info.type = mlirRankedTensorTypeGet((intptr_t)t->n_dims, t->dims,
                                      moai_dtype_to_mlir(im->ctx, info.dtype),
                                      mlirAttributeGetNull());
  *out_info = info;
  return moai_ok_status();
}

/* Narrows typed-field values into little-endian element bytes. */
static void narrow_int32(const int32_t *src, size_t n, size_t width,
                         uint8_t *dst) {
  for (size_t i = 0; i < n; ++i) {
    uint32_t v = (uint32_t)src[i];
    if (width == 1) {
      dst[i] = (uint8_t)v;
    } else {
      uint16_t h = (uint16_t)v;
      memcpy(dst + 2 * i, &h, 2);
    }
  }
}

/* The element bytes of inline data in *out_bytes (borrowed from the proto
 * or from scratch). Bool is handled by the caller. */
static moai_status_t element_bytes(moai_onnx_importer_t *im,
                                   const Onnx__TensorProto *t,
                                   const moai_onnx_tensor_info_t *info,
                                   const void **out_bytes) {
  size_t n = (size_t)info->numel;
  if (info->data == MOAI_ONNX_DATA_RAW) {
    *out_bytes = t->raw_data.data;
    return moai_ok_status();
  }
  switch (info->dtype) {
    case MOAI_DTYPE_F32: *out_bytes = t->float_data; return moai_ok_status();
    case MOAI_DTYPE_F64: *out_bytes = t->double_data; return moai_ok_status();
    case MOAI_DTYPE_I64: *out_bytes = t->int64_data; return moai_ok_status();
    case MOAI_DTYPE_U64: *out_bytes = t->uint64_data; return moai_ok_status();
    case MOAI_DTYPE_I32: *out_bytes = t->int32_data; return moai_ok_status();
    default: break;
  }
  MOAI_RETURN_IF_ERROR(moai_onnx_scratch_reserve(im, &im->scratch_bytes, 1,
                                                 (size_t)info->nbytes));
  uint8_t *dst = im->scratch_bytes.data;
  if (info->dtype == MOAI_DTYPE_U32) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t v = (uint32_t)t->uint64_data[i];
      memcpy(dst + 4 * i, &v, 4);
    }
  } else {
    narrow_int32(t->int32_data, n, moai_dtype_size(info->dtype), dst);
  }
  *out_bytes = dst;
  return moai_ok_status();
}

moai_status_t moai_onnx_tensor_to_elements(moai_onnx_importer_t *im,
                                           const Onnx__TensorProto *t,
                                           const moai_onnx_tensor_info_t *info,
                                           const char *what,
                                           MlirAttribute *out_attr) {
  if (info->data == MOAI_ONNX_DATA_EXTERNAL)
    return MOAI_ONNX_ERROR(im, MOAI_UNIMPLEMENTED,
                           "%s: data in an external file cannot be held inline",
                           what);
  if (info->data == MOAI_ONNX_DATA_ABSENT)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s: the tensor has no data", what);
  size_t n = (size_t)info->numel;
  MlirAttribute attr;
  if (info->dtype == MOAI_DTYPE_BOOL) {
    /* i1 elements are bit-packed inside MLIR; the bool constructor takes
     * one int per element and packs them itself. */
    MOAI_RETURN_IF_ERROR(
        moai_onnx_scratch_reserve(im, &im->scratch_ints, sizeof(int), n));
    int *ints = im->scratch_ints.data;
    for (size_t i = 0; i < n; ++i)
      ints[i] = info->data == MOAI_ONNX_DATA_RAW ? t->raw_data.data[i] != 0
                                                 : t->int32_data[i] != 0;
    attr = mlirDenseElementsAttrBoolGet(info->type, (intptr_t)n, ints);
  } else {
    const void *bytes = NULL;
    MOAI_RETURN_IF_ERROR(element_bytes(im, t, info, &bytes));
    attr = mlirDenseElementsAttrRawBufferGet(info->type, (size_t)info->nbytes,
                                             bytes ? bytes : &kEmpty);
  }
  if (mlirAttributeIsNull(attr))
    return MOAI_ONNX_ERROR(im, MOAI_INTERNAL,
                           "%s: could not build the constant's elements", what);
  *out_attr = attr;
  return moai_ok_status();
}

MlirAttribute moai_onnx_i64_elements(MlirContext ctx, const int64_t *values,
                                     size_t count, bool scalar) {
  int64_t dim = (int64_t)count;
  MlirType type =
      mlirRankedTensorTypeGet(scalar ? 0 : 1, &dim, mlirIntegerTypeGet(ctx, 64),
                              mlirAttributeGetNull());
  return mlirDenseElementsAttrRawBufferGet(
      type, count * sizeof(int64_t), count ? (const void *)values : &kEmpty);
}

MlirAttribute moai_onnx_f32_elements(MlirContext ctx, const float *values,
                                     size_t count, bool scalar) {
  int64_t dim = (int64_t)count;
  MlirType type = mlirRankedTensorTypeGet(
      scalar ? 0 : 1, &dim, mlirF32TypeGet(ctx), mlirAttributeGetNull());
  return mlirDenseElementsAttrRawBufferGet(
      type, count * sizeof(float), count ? (const void *)values : &kEmpty);
}

moai_dtype_t moai_onnx_type_dtype(const Onnx__TypeProto *tp) {
  if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE ||
      !tp->tensor_type || !tp->tensor_type->has_elem_type ||
      !moai_dtype_is_supported(tp->tensor_type->elem_type))
    return MOAI_DTYPE_UNDEFINED;
  return (moai_dtype_t)tp->tensor_type->elem_type;
}

moai_status_t moai_onnx_type_static(moai_onnx_importer_t *im,
                                    const Onnx__TypeProto *tp,
                                    MlirType *out_type) {
  *out_type = (MlirType){NULL};
  moai_dtype_t dtype = moai_onnx_type_dtype(tp);
  if (dtype == MOAI_DTYPE_UNDEFINED || !tp->tensor_type->shape)
    return moai_ok_status();
  const Onnx__TensorShapeProto *shape = tp->tensor_type->shape;
  MOAI_RETURN_IF_ERROR(moai_onnx_scratch_reserve(
      im, &im->scratch_dims, sizeof(int64_t), shape->n_dim));
  int64_t *dims = im->scratch_dims.data;
  for (size_t i = 0; i < shape->n_dim; ++i) {
    const Onnx__TensorShapeProto__Dimension *d = shape->dim[i];
    if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
        d->dim_value < 0)
      return moai_ok_status();
    dims[i] = d->dim_value;
  }
  *out_type = mlirRankedTensorTypeGet((intptr_t)shape->n_dim, dims,
                                      moai_dtype_to_mlir(im->ctx, dtype),
                                      mlirAttributeGetNull());
  return moai_ok_status();
}
