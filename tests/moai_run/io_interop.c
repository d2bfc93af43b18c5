/* io_interop: the runtime's safetensors and .npy code behind a command line,
 * for io_interop.py to exchange files with NumPy and an independent Python
 * safetensors implementation.
 *
 *   io_interop write-st OUT            every dtype, known byte patterns
 *   io_interop dump-st IN              JSON: tensors (dtype, shape, offset, hex), metadata
 *   io_interop write-npy OUT DTYPE DIMS  e.g. float32 2x3 (or "scalar")
 *   io_interop dump-npy IN             JSON: dtype, shape, hex
 *
 * Byte j of the k-th tensor written is (k * 31 + j * 7) & 255 (& 1 for bool). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/dtype.h"
#include "io/npy.h"
#include "io/safetensors.h"

static unsigned char pattern(size_t k, uint64_t j, int32_t dtype) {
  unsigned char b = (unsigned char)((k * 31 + j * 7) & 255);
  return dtype == MOAI_ABI_BOOL ? (unsigned char)(b & 1) : b;
}

static int fail(moai_status_t status) {
  fprintf(stderr, "io_interop: %s\n", moai_status_message(status));
  moai_status_free(status);
  return 1;
}

static void print_hex(const unsigned char *p, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) printf("%02x", p[i]);
}

static void print_shape(int32_t rank, const int64_t *dims) {
  printf("[");
  for (int32_t i = 0; i < rank; ++i) printf(i ? ", %lld" : "%lld", (long long)dims[i]);
  printf("]");
}

static moai_status_t fill_pattern(void *user, size_t index, void *dst, uint64_t nbytes) {
  const moai_safetensors_entry_t *entries = user;
  for (uint64_t j = 0; j < nbytes; ++j)
    ((unsigned char *)dst)[j] = pattern(index, j, entries[index].dtype);
  return moai_ok_status();
}

static int write_st(const char *path) {
  /* One tensor per dtype, in an order that layout must rearrange. */
  moai_safetensors_entry_t e[] = {
      {.name = "bool", .dtype = MOAI_ABI_BOOL, .rank = 1, .dims = {5}},
      {.name = "float32", .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 3}},
      {.name = "uint8", .dtype = MOAI_ABI_U8, .rank = 0},
      {.name = "float64", .dtype = MOAI_ABI_F64, .rank = 1, .dims = {3}},
      {.name = "float16", .dtype = MOAI_ABI_F16, .rank = 3, .dims = {1, 3, 1}},
      {.name = "bfloat16", .dtype = MOAI_ABI_BF16, .rank = 1, .dims = {3}},
      {.name = "int8", .dtype = MOAI_ABI_I8, .rank = 3, .dims = {2, 2, 2}},
      {.name = "int16", .dtype = MOAI_ABI_I16, .rank = 1, .dims = {1}},
      {.name = "int32", .dtype = MOAI_ABI_I32, .rank = 2, .dims = {1, 1}},
      {.name = "int64", .dtype = MOAI_ABI_I64, .rank = 1, .dims = {2}},
      {.name = "uint16", .dtype = MOAI_ABI_U16, .rank = 1, .dims = {3}},
      {.name = "uint32", .dtype = MOAI_ABI_U32, .rank = 1, .dims = {1}},
      {.name = "uint64", .dtype = MOAI_ABI_U64, .rank = 1, .dims = {1}},
      {.name = "empty_f32", .dtype = MOAI_ABI_F32, .rank = 2, .dims = {0, 4}},
  };
  size_t n = sizeof(e) / sizeof(e[0]);
  uint64_t size = 0;
  moai_safetensors_layout(e, n, &size);
  const char *kv[] = {"source", "io_interop", "moai", "1"};
  moai_status_t status = moai_safetensors_write(path, e, n, kv, 2, fill_pattern, e);
  return status ? fail(status) : 0;
}

static int dump_st(const char *path) {
  moai_safetensors_t *st = NULL;
  moai_status_t status = moai_safetensors_open(path, moai_allocator_system(), &st);
  if (status) return fail(status);
  printf("{\"data_file_offset\": %llu, \"tensors\": [",
         (unsigned long long)moai_safetensors_data_file_offset(st));
  for (size_t i = 0; i < moai_safetensors_count(st); ++i) {
    const moai_safetensors_entry_t *e = moai_safetensors_entry(st, i);
    printf("%s{\"name\": \"%s\", \"dtype\": \"%s\", \"shape\": ", i ? ", " : "", e->name,
           moai_dtype_safetensors_name(e->dtype));
    print_shape(e->rank, e->dims);
    printf(", \"offset\": %llu, \"hex\": \"", (unsigned long long)e->offset);
    if (e->nbytes) print_hex(moai_safetensors_data(st) + e->offset, e->nbytes);
    printf("\"}");
  }
  const char *source = moai_safetensors_metadata(st, "source");
  printf("], \"source\": \"%s\"}\n", source ? source : "");
  moai_safetensors_close(st);
  return 0;
}

static int write_npy(const char *path, const char *dtype_name, const char *dims_text) {
  int32_t dtype = 0, rank = 0;
  int64_t dims[MOAI_MAX_RANK];
  if (!moai_dtype_from_name(dtype_name, &dtype)) return 2;
  if (strcmp(dims_text, "scalar") != 0) {
    for (const char *p = dims_text; *p && rank < MOAI_MAX_RANK;) {
      char *end;
      dims[rank++] = strtoll(p, &end, 10);
      p = *end == 'x' ? end + 1 : end;
      if (*end && *end != 'x') return 2;
    }
  }
  uint64_t nbytes = 0;
  if (!moai_shape_nbytes(dtype, rank, dims, &nbytes)) return 2;
  unsigned char *data = malloc(nbytes ? nbytes : 1);
  for (uint64_t j = 0; j < nbytes; ++j) data[j] = pattern(0, j, dtype);
  moai_status_t status = moai_npy_write(path, dtype, rank, dims, data);
  free(data);
  return status ? fail(status) : 0;
}

static int dump_npy(const char *path) {
  moai_npy_t *npy = NULL;
  moai_status_t status = moai_npy_open(path, moai_allocator_system(), &npy);
  if (status) return fail(status);
  const moai_npy_header_t *h = moai_npy_header(npy);
  printf("{\"dtype\": \"%s\", \"shape\": ", moai_abi_dtype_name(h->dtype));
  print_shape(h->rank, h->dims);
  printf(", \"data_offset\": %llu, \"hex\": \"", (unsigned long long)h->data_offset);
  if (h->nbytes) print_hex(moai_npy_data(npy), h->nbytes);
  printf("\"}\n");
  moai_npy_close(npy);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "write-st") == 0) return write_st(argv[2]);
  if (argc == 3 && strcmp(argv[1], "dump-st") == 0) return dump_st(argv[2]);
  if (argc == 5 && strcmp(argv[1], "write-npy") == 0) return write_npy(argv[2], argv[3], argv[4]);
  if (argc == 3 && strcmp(argv[1], "dump-npy") == 0) return dump_npy(argv[2]);
  fprintf(stderr, "usage: io_interop write-st|dump-st|write-npy|dump-npy ...\n");
  return 2;
}
