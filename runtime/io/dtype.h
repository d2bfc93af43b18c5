/* Element types of the device ABI (moai_abi_dtype_t) and their names in the
 * formats moai reads and writes: the manifest ("float32"), safetensors
 * ("F32") and NumPy .npy ("<f4"). One table, so the names never drift. */
#ifndef MOAI_IO_DTYPE_H
#define MOAI_IO_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "abi/moai_abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes per element of `dtype`, or 0 when it is not a moai_abi_dtype_t. */
size_t moai_abi_dtype_size(int32_t dtype);

/* The manifest name ("float32"), or NULL for an unknown dtype. */
const char *moai_abi_dtype_name(int32_t dtype);
/* Parses a manifest name; false when unknown. */
bool moai_dtype_from_name(const char *name, int32_t *out_dtype);

/* The safetensors code ("F32"), or NULL. */
const char *moai_dtype_safetensors_name(int32_t dtype);
bool moai_dtype_from_safetensors_name(const char *name, int32_t *out_dtype);

/* The .npy descr ("<f4", "|u1"), or NULL. bfloat16 has none (see npy.h). */
const char *moai_dtype_npy_descr(int32_t dtype);

/* Element count and byte size of a shape; false when rank is out of
 * [0, MOAI_MAX_RANK], a dim is negative or the size overflows uint64. */
bool moai_shape_nbytes(int32_t dtype, int32_t rank, const int64_t *dims,
                       uint64_t *out_nbytes);

/* Writes "2x3x4" ("scalar" for rank 0) into buf (always NUL-terminated). */
void moai_shape_format(int32_t rank, const int64_t *dims, char *buf, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IO_DTYPE_H */
