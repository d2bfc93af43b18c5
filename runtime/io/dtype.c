#include "io/dtype.h"

#include <stdio.h>
#include <string.h>

typedef struct dtype_info_t {
  int32_t dtype;
  uint32_t size;
  const char *name;        /* manifest */
  const char *safetensors; /* safetensors header */
  const char *npy;         /* .npy descr; NULL: none */
} dtype_info_t;

static const dtype_info_t k_dtypes[] = {
    {MOAI_ABI_F32, 4, "float32", "F32", "<f4"},
    {MOAI_ABI_F64, 8, "float64", "F64", "<f8"},
    {MOAI_ABI_F16, 2, "float16", "F16", "<f2"},
    {MOAI_ABI_BF16, 2, "bfloat16", "BF16", NULL},
    {MOAI_ABI_I8, 1, "int8", "I8", "|i1"},
    {MOAI_ABI_I16, 2, "int16", "I16", "<i2"},
    {MOAI_ABI_I32, 4, "int32", "I32", "<i4"},
    {MOAI_ABI_I64, 8, "int64", "I64", "<i8"},
    {MOAI_ABI_U8, 1, "uint8", "U8", "|u1"},
    {MOAI_ABI_U16, 2, "uint16", "U16", "<u2"},
    {MOAI_ABI_U32, 4, "uint32", "U32", "<u4"},
    {MOAI_ABI_U64, 8, "uint64", "U64", "<u8"},
    {MOAI_ABI_BOOL, 1, "bool", "BOOL", "|b1"},
};
#define DTYPE_COUNT (sizeof(k_dtypes) / sizeof(k_dtypes[0]))

static const dtype_info_t *find(int32_t dtype) {
  for (size_t i = 0; i < DTYPE_COUNT; ++i)
    if (k_dtypes[i].dtype == dtype) return &k_dtypes[i];
  return NULL;
}

size_t moai_abi_dtype_size(int32_t dtype) {
  const dtype_info_t *d = find(dtype);
  return d ? d->size : 0;
}

const char *moai_abi_dtype_name(int32_t dtype) {
  const dtype_info_t *d = find(dtype);
  return d ? d->name : NULL;
}

const char *moai_dtype_safetensors_name(int32_t dtype) {
  const dtype_info_t *d = find(dtype);
  return d ? d->safetensors : NULL;
}

const char *moai_dtype_npy_descr(int32_t dtype) {
  const dtype_info_t *d = find(dtype);
  return d ? d->npy : NULL;
}

bool moai_dtype_from_name(const char *name, int32_t *out_dtype) {
  for (size_t i = 0; name && i < DTYPE_COUNT; ++i)
    if (strcmp(k_dtypes[i].name, name) == 0) {
      *out_dtype = k_dtypes[i].dtype;
      return true;
    }
  return false;
}

bool moai_dtype_from_safetensors_name(const char *name, int32_t *out_dtype) {
  for (size_t i = 0; name && i < DTYPE_COUNT; ++i)
    if (strcmp(k_dtypes[i].safetensors, name) == 0) {
      *out_dtype = k_dtypes[i].dtype;
      return true;
    }
  return false;
}

bool moai_shape_nbytes(int32_t dtype, int32_t rank, const int64_t *dims,
                       uint64_t *out_nbytes) {
  uint64_t n = moai_abi_dtype_size(dtype);
  if (n == 0 || rank < 0 || rank > MOAI_MAX_RANK) return false;
  for (int32_t i = 0; i < rank; ++i) {
    if (dims[i] < 0) return false;
    uint64_t d = (uint64_t)dims[i];
    if (d != 0 && n > UINT64_MAX / d) return false;
    n *= d;
  }
  *out_nbytes = n;
  return true;
}

void moai_shape_format(int32_t rank, const int64_t *dims, char *buf, size_t size) {
  if (!size) return;
  buf[0] = '\0';
  if (rank <= 0) {
    snprintf(buf, size, "scalar");
    return;
  }
  size_t used = 0;
  for (int32_t i = 0; i < rank && i < MOAI_MAX_RANK && used < size; ++i) {
    int n = snprintf(buf + used, size - used, i ? "x%lld" : "%lld", (long long)dims[i]);
    if (n < 0) break;
    used += (size_t)n;
  }
}
