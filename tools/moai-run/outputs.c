/* moai-run's outputs: NAME.npy files in --output-dir, or a summary. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dtype.h"
#include "io/file.h"
#include "moai_run.h"

/* The file name for output `name`: ONNX names such as "/model/Add_output_0"
 * hold slashes, so every character outside [A-Za-z0-9._:-] becomes '_', and
 * a leading '.' too (no hidden files, no ".."). */
static void output_file_name(const char *name, size_t index, char *buf, size_t size) {
  size_t n = 0;
  for (const char *c = name; *c && n + 5 < size; ++c) {
    bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || *c == ':' || (*c == '.' && n > 0);
    buf[n++] = ok ? *c : '_';
  }
  buf[n] = '\0';
  if (n == 0) snprintf(buf, size, "output_%zu", index);
  strncat(buf, ".npy", size - strlen(buf) - 1);
}

moai_status_t outputs_check_names(const moai_plan_t *plan) {
  size_t n = moai_plan_output_count(plan);
  for (size_t i = 0; i < n; ++i) {
    char a[600];
    output_file_name(moai_plan_output_desc(plan, i)->name, i, a, sizeof(a));
    for (size_t j = 0; j < i; ++j) {
      char b[600];
      output_file_name(moai_plan_output_desc(plan, j)->name, j, b, sizeof(b));
      if (strcmp(a, b) == 0)
        return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                           "outputs '%s' and '%s' would both be written to %s",
                           moai_plan_output_desc(plan, j)->name,
                           moai_plan_output_desc(plan, i)->name, a);
    }
  }
  return moai_ok_status();
}

/* mkdir -p. */
static moai_status_t make_dirs(const char *dir) {
  char path[PATH_MAX];
  if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: path too long", dir);
  for (char *p = path + 1;; ++p) {
    if (*p != '/' && *p != '\0') continue;
    char saved = *p;
    *p = '\0';
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
      return MOAI_STATUS(MOAI_IO_ERROR, "--output-dir %s: cannot create %s: %s", dir, path,
                         strerror(errno));
    *p = saved;
    if (!saved) break;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
    return MOAI_STATUS(MOAI_IO_ERROR, "--output-dir %s: not a directory", dir);
  return moai_ok_status();
}

moai_status_t outputs_write(const moai_plan_t *plan, const char *dir, bool quiet) {
  MOAI_RETURN_IF_ERROR(make_dirs(dir));
  size_t n = moai_plan_output_count(plan), written = 0;
  moai_status_t status = moai_ok_status();
  for (; written < n && !status; ++written) {
    const moai_tensor_desc_t *d;
    const void *data;
    status = moai_plan_output(plan, written, &d, &data);
    if (status) break;
    char file[600], path[PATH_MAX];
    output_file_name(d->name, written, file, sizeof(file));
    if (snprintf(path, sizeof(path), "%s/%s", dir, file) >= (int)sizeof(path)) {
      status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s/%s: path too long", dir, file);
      break;
    }
    status = moai_npy_write(path, d->dtype, d->rank, d->dims, data);
    if (status) break;
    if (!quiet) {
      char shape[160];
      moai_shape_format(d->rank, d->dims, shape, sizeof(shape));
      printf("wrote %s (%s %s%s)\n", path, moai_abi_dtype_name(d->dtype), shape,
             d->dtype == MOAI_ABI_BF16 ? ", bfloat16 bits as <u2" : "");
    }
  }
  if (status) {
    /* All or nothing: remove the outputs this run already wrote. */
    for (size_t i = 0; i < written; ++i) {
      char file[600], path[PATH_MAX];
      output_file_name(moai_plan_output_desc(plan, i)->name, i, file, sizeof(file));
      if (snprintf(path, sizeof(path), "%s/%s", dir, file) < (int)sizeof(path)) unlink(path);
    }
  }
  return status;
}

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 31, man = h & 1023, bits;
  if (exp == 0) {
    float f = (float)man / 1024.0f / 16384.0f; /* subnormal: man * 2^-24 */
    return sign ? -f : f;
  }
  if (exp == 31) bits = sign | 0x7f800000u | (man << 13);
  else bits = sign | ((exp + 112) << 23) | (man << 13);
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Element i of an array as a double (for printing). */
static double element(int32_t dtype, const void *data, int64_t i) {
  const unsigned char *p = (const unsigned char *)data + (size_t)i * moai_abi_dtype_size(dtype);
  union { float f; double d; int64_t i64; int32_t i32; int16_t i16; int8_t i8; uint64_t u64;
          uint32_t u32; uint16_t u16; uint8_t u8; } v;
  memcpy(&v, p, moai_abi_dtype_size(dtype));
  switch (dtype) {
    case MOAI_ABI_F32: return v.f;
    case MOAI_ABI_F64: return v.d;
    case MOAI_ABI_F16: return half_to_float(v.u16);
    case MOAI_ABI_BF16: {
      uint32_t bits = (uint32_t)v.u16 << 16;
      float f;
      memcpy(&f, &bits, 4);
      return f;
    }
    case MOAI_ABI_I64: return (double)v.i64;
    case MOAI_ABI_I32: return v.i32;
    case MOAI_ABI_I16: return v.i16;
    case MOAI_ABI_I8: return v.i8;
    case MOAI_ABI_U64: return (double)v.u64;
    case MOAI_ABI_U32: return v.u32;
    case MOAI_ABI_U16: return v.u16;
    case MOAI_ABI_U8:
    case MOAI_ABI_BOOL: return v.u8;
  }
  return 0;
}

moai_status_t outputs_print(const moai_plan_t *plan) {
  for (size_t i = 0; i < moai_plan_output_count(plan); ++i) {
    const moai_tensor_desc_t *d;
    const void *data;
    MOAI_RETURN_IF_ERROR(moai_plan_output(plan, i, &d, &data));
    char shape[160];
    moai_shape_format(d->rank, d->dims, shape, sizeof(shape));
    int64_t numel = (int64_t)(d->nbytes / moai_abi_dtype_size(d->dtype));
    printf("%s: %s %s =", d->name, moai_abi_dtype_name(d->dtype), shape);
    const int64_t shown = 8;
    for (int64_t k = 0; k < numel && k < shown; ++k) printf(" %.6g", element(d->dtype, data, k));
    if (numel > shown) {
      double lo = element(d->dtype, data, 0), hi = lo, sum = 0;
      for (int64_t k = 0; k < numel; ++k) {
        double x = element(d->dtype, data, k);
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        sum += x;
      }
      printf(" ... (%lld values; min %.6g, max %.6g, mean %.6g)", (long long)numel, lo, hi,
             sum / (double)numel);
    }
    printf("\n");
  }
  return moai_ok_status();
}
