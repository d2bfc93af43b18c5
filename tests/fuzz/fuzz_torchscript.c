/* libFuzzer target for the TorchScript archive reader and its unpickler:
 * any bytes must give values or a status, never a crash, a leak or undefined
 * behaviour (built with -fsanitize=fuzzer,address,undefined by
 * scripts/fuzz.sh). Each input is unpickled directly, then written to a
 * temporary file and read as an archive: open, data.pkl and constants.pkl
 * (every tensor checked against its storage), and every tensor read. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "torchscript/archive.h"

/* Tensors larger than this are checked but not read (memory stays bounded
 * whatever sizes an input claims). */
enum { kMaxReadBytes = 16 << 20 };

/* libFuzzer calls a plain function: the temporary file has to live
 * somewhere. */
static char g_path[64];

static void remove_temp(void) { unlink(g_path); }

static void read_tensors(moai_ts_archive_t *a, const char *dir,
                         const moai_pk_value_t *v, int depth) {
  if (!v || depth > 300) return;
  switch (v->kind) {
    case MOAI_PK_TENSOR: {
      uint64_t n = moai_pk_dtype_size(v->tensor.dtype);
      for (int d = 0; d < v->tensor.rank && n <= kMaxReadBytes; ++d)
        n *= (uint64_t)v->tensor.sizes[d];
      if (n > kMaxReadBytes) return;
      void *buf = malloc(n ? n : 1);
      if (!buf) return;
      moai_status_free(moai_ts_archive_read_tensor(a, dir, &v->tensor, buf, n));
      free(buf);
      return;
    }
    case MOAI_PK_OBJECT: read_tensors(a, dir, v->state, depth + 1); return;
    case MOAI_PK_TUPLE:
    case MOAI_PK_LIST:
    case MOAI_PK_DICT:
      for (size_t i = 0; i < v->len; ++i) read_tensors(a, dir, v->items[i], depth + 1);
      return;
    default: return;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  moai_pk_arena_t *arena = NULL;
  moai_pk_value_t *value = NULL;
  moai_status_t st = moai_pk_load(data, size, "fuzz.pkl", &arena, &value);
  moai_status_free(st);
  moai_pk_arena_free(arena);

  if (!g_path[0]) {
    snprintf(g_path, sizeof g_path, "/tmp/moai-fuzz-ts-%ld.pt", (long)getpid());
    atexit(remove_temp);
  }
  FILE *f = fopen(g_path, "wb");
  if (!f) abort(); /* the harness, not the input, is broken */
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);

  moai_ts_archive_t *a = NULL;
  moai_pk_arena_t *carena = NULL;
  moai_pk_value_t *consts = NULL;
  arena = NULL;
  st = moai_ts_archive_open(g_path, &a);
  if (!st) st = moai_ts_archive_load_data(a, &arena, &value);
  if (!st) read_tensors(a, "data", value, 0);
  if (!st) st = moai_ts_archive_load_constants(a, &carena, &consts);
  if (!st) read_tensors(a, "constants", consts, 0);
  moai_status_free(st);
  moai_pk_arena_free(arena);
  moai_pk_arena_free(carena);
  moai_ts_archive_close(a);
  return 0;
}
