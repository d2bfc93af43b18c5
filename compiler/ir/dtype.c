#include "dtype.h"

#include "mlir-c/BuiltinTypes.h"

size_t moai_dtype_size(moai_dtype_t dtype) {
  switch (dtype) {
    case MOAI_DTYPE_F32: case MOAI_DTYPE_I32: case MOAI_DTYPE_U32: return 4;
    case MOAI_DTYPE_U8: case MOAI_DTYPE_I8: case MOAI_DTYPE_BOOL: return 1;
    case MOAI_DTYPE_U16: case MOAI_DTYPE_I16: case MOAI_DTYPE_F16:
    case MOAI_DTYPE_BF16: return 2;
    case MOAI_DTYPE_I64: case MOAI_DTYPE_F64: case MOAI_DTYPE_U64: return 8;
    default: return 0;
  }
}

const char *moai_dtype_name(moai_dtype_t dtype) {
  switch (dtype) {
    case MOAI_DTYPE_F32: return "float32";
    case MOAI_DTYPE_U8: return "uint8";
    case MOAI_DTYPE_I8: return "int8";
    case MOAI_DTYPE_U16: return "uint16";
    case MOAI_DTYPE_I16: return "int16";
    case MOAI_DTYPE_I32: return "int32";
    case MOAI_DTYPE_I64: return "int64";
    case MOAI_DTYPE_BOOL: return "bool";
    case MOAI_DTYPE_F16: return "float16";
    case MOAI_DTYPE_F64: return "float64";
    case MOAI_DTYPE_U32: return "uint32";
    case MOAI_DTYPE_U64: return "uint64";
    case MOAI_DTYPE_BF16: return "bfloat16";
    default: return "unknown";
  }
}

bool moai_dtype_is_supported(int code) {
  return moai_dtype_size((moai_dtype_t)code) != 0;
}

bool moai_dtype_is_float(moai_dtype_t dtype) {
  return dtype == MOAI_DTYPE_F32 || dtype == MOAI_DTYPE_F64 ||
         dtype == MOAI_DTYPE_F16 || dtype == MOAI_DTYPE_BF16;
}

MlirType moai_dtype_to_mlir(MlirContext ctx, moai_dtype_t dtype) {
  switch (dtype) {
    case MOAI_DTYPE_F32: return mlirF32TypeGet(ctx);
    case MOAI_DTYPE_F64: return mlirF64TypeGet(ctx);
    case MOAI_DTYPE_F16: return mlirF16TypeGet(ctx);
    case MOAI_DTYPE_BF16: return mlirBF16TypeGet(ctx);
    case MOAI_DTYPE_BOOL: return mlirIntegerTypeGet(ctx, 1);
    case MOAI_DTYPE_I8: return mlirIntegerTypeGet(ctx, 8);
    case MOAI_DTYPE_I16: return mlirIntegerTypeGet(ctx, 16);
    case MOAI_DTYPE_I32: return mlirIntegerTypeGet(ctx, 32);
    case MOAI_DTYPE_I64: return mlirIntegerTypeGet(ctx, 64);
    case MOAI_DTYPE_U8: return mlirIntegerTypeUnsignedGet(ctx, 8);
    case MOAI_DTYPE_U16: return mlirIntegerTypeUnsignedGet(ctx, 16);
    case MOAI_DTYPE_U32: return mlirIntegerTypeUnsignedGet(ctx, 32);
    case MOAI_DTYPE_U64: return mlirIntegerTypeUnsignedGet(ctx, 64);
    default: return (MlirType){NULL};
  }
}

moai_dtype_t moai_dtype_from_mlir(MlirType type) {
  if (mlirTypeIsNull(type)) return MOAI_DTYPE_UNDEFINED;
  if (mlirTypeIsAF32(type)) return MOAI_DTYPE_F32;
  if (mlirTypeIsAF64(type)) return MOAI_DTYPE_F64;
  if (mlirTypeIsAF16(type)) return MOAI_DTYPE_F16;
  if (mlirTypeIsABF16(type)) return MOAI_DTYPE_BF16;
  if (mlirTypeIsAInteger(type)) {
    unsigned w = mlirIntegerTypeGetWidth(type);
    bool u = mlirIntegerTypeIsUnsigned(type);
    switch (w) {
      case 1: return mlirIntegerTypeIsSignless(type) ? MOAI_DTYPE_BOOL
                                                     : MOAI_DTYPE_UNDEFINED;
      case 8: return u ? MOAI_DTYPE_U8 : MOAI_DTYPE_I8;
      case 16: return u ? MOAI_DTYPE_U16 : MOAI_DTYPE_I16;
      case 32: return u ? MOAI_DTYPE_U32 : MOAI_DTYPE_I32;
      case 64: return u ? MOAI_DTYPE_U64 : MOAI_DTYPE_I64;
      default: return MOAI_DTYPE_UNDEFINED;
    }
  }
  return MOAI_DTYPE_UNDEFINED;
}
