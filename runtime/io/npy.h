/* NumPy .npy files: moai-run's inputs and outputs.
 *
 * Reads versions 1.0, 2.0 and 3.0 with a little-endian or byte-order-free
 * descr (<f8 <f4 <f2 <i8 <i4 <i2 |i1 <u8 <u4 <u2 |u1 |b1), C order only; the
 * header is user input and is parsed strictly (exactly the keys descr,
 * fortran_order and shape, a Python literal, nothing else). Writes version
 * 1.0 (2.0 when the header needs it), atomically, with the data at a multiple
 * of 64 bytes as NumPy does.
 *
 * bfloat16 has no NumPy dtype (ml_dtypes is an extension): moai writes a
 * bfloat16 array as <u2 holding the raw bits, and a caller that expects
 * bfloat16 accepts a <u2 file (moai-run does; see README.md). */
#ifndef MOAI_IO_NPY_H
#define MOAI_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "abi/moai_abi.h"
#include "base/allocator.h"
#include "base/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a .npy header says. */
typedef struct moai_npy_header_t {
  int32_t dtype; /* moai_abi_dtype_t (MOAI_ABI_U16 for bfloat16 bits) */
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK];
  uint64_t data_offset; /* bytes from the start of the file */
  uint64_t nbytes;      /* bytes of data: numel * dtype size */
} moai_npy_header_t;

/* Parses and checks the header of the .npy bytes `data`; `name` is used in
 * messages. The data must follow it exactly (no missing or trailing bytes). */
moai_status_t moai_npy_parse(const char *name, const void *data, size_t size,
                             moai_npy_header_t *out_header) MOAI_MUST_USE;

typedef struct moai_npy_t moai_npy_t;

/* Maps `path` read-only and parses it; free with moai_npy_close. */
moai_status_t moai_npy_open(const char *path, moai_allocator_t allocator,
                            moai_npy_t **out) MOAI_MUST_USE;
/* The header and the data (borrowed from the mapping). */
const moai_npy_header_t *moai_npy_header(const moai_npy_t *npy);
const void *moai_npy_data(const moai_npy_t *npy);
void moai_npy_close(moai_npy_t *npy);

/* Writes `path` atomically: the array of `dtype` and shape rank/dims whose
 * nbytes bytes are at `data` (C order). bfloat16 is written as <u2. */
moai_status_t moai_npy_write(const char *path, int32_t dtype, int32_t rank,
                             const int64_t *dims, const void *data) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IO_NPY_H */
