/* Element types moai understands, numbered as ONNX's TensorProto.DataType
 * so the frontend maps them directly, and their MLIR counterparts. */
#ifndef MOAI_IR_DTYPE_H
#define MOAI_IR_DTYPE_H

#include <stdbool.h>
#include <stddef.h>

#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum moai_dtype_e {
  MOAI_DTYPE_UNDEFINED = 0,
  MOAI_DTYPE_F32 = 1,
  MOAI_DTYPE_U8 = 2,
  MOAI_DTYPE_I8 = 3,
  MOAI_DTYPE_U16 = 4,
  MOAI_DTYPE_I16 = 5,
  MOAI_DTYPE_I32 = 6,
  MOAI_DTYPE_I64 = 7,
  MOAI_DTYPE_BOOL = 9,
  MOAI_DTYPE_F16 = 10,
  MOAI_DTYPE_F64 = 11,
  MOAI_DTYPE_U32 = 12,
  MOAI_DTYPE_U64 = 13,
  MOAI_DTYPE_BF16 = 16,
} moai_dtype_t;

/* Bytes per element (0 for unsupported codes). */
size_t moai_dtype_size(moai_dtype_t dtype);

/* "float32", "int64", ... ("unknown" for unsupported codes). */
const char *moai_dtype_name(moai_dtype_t dtype);

/* Whether `code` (an ONNX TensorProto.DataType) is supported. */
bool moai_dtype_is_supported(int code);
bool moai_dtype_is_float(moai_dtype_t dtype);

/* The MLIR element type: f32, i64, i1 (bool), ui8 for unsigned, ...
 * A null type for unsupported codes. */
MlirType moai_dtype_to_mlir(MlirContext ctx, moai_dtype_t dtype);

/* The inverse; MOAI_DTYPE_UNDEFINED for types moai does not use. */
moai_dtype_t moai_dtype_from_mlir(MlirType type);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IR_DTYPE_H */
