/* Unit tests for moai_weights_write on tensor-parallel shards: a weight with
 * shard_count > 1 is written as its slice only (local shape, original
 * name), read from each of the storages (raw, external, field, and zip: an
 * entry of a TorchScript archive, stored or deflated). The
 * expected bytes are computed here from coordinates, not by the slicer's
 * row formula. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

#include "codegen/codegen.h"
#include "io/safetensors.h"
#include "moai_test.h"
#include "../frontends/onnx_model_builder.h"

static char g_dir[256];

static int suite_init(void) {
  snprintf(g_dir, sizeof(g_dir), "/tmp/moai-weights-shard-XXXXXX");
  return mkdtemp(g_dir) == NULL;
}

static int suite_clean(void) {
  char cmd[300];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
  return system(cmd) != 0;
}

/* One shard case: the full tensor's dims, and which slice. */
typedef struct shard_case_t {
  const char *name;
  int32_t rank;
  int64_t full[3];
  int32_t axis, index, count;
} shard_case_t;

static const shard_case_t kCases[] = {
    {"w2_axis0", 2, {4, 6}, 0, 1, 2},
    {"w2_axis1", 2, {4, 6}, 1, 2, 3},
    {"w3_axis0", 3, {2, 4, 6}, 0, 0, 2},
    {"w3_axis1", 3, {2, 4, 6}, 1, 1, 2},
    {"w3_axis2", 3, {2, 4, 6}, 2, 1, 3},
};
#define NCASES (sizeof(kCases) / sizeof(kCases[0]))

static int64_t numel(const int64_t *dims, int32_t rank) {
  int64_t n = 1;
  for (int32_t r = 0; r < rank; ++r) n *= dims[r];
  return n;
}

/* Full tensor c: element e holds 1000 * c + e (distinct across tensors). */
static float full_value(size_t c, int64_t e) { return (float)(1000 * (int64_t)c + e); }

/* The expected slice of case c, element by element from coordinates. */
static float *expected_slice(size_t c, int64_t *local, int64_t *count) {
  const shard_case_t *k = &kCases[c];
  memcpy(local, k->full, sizeof(k->full));
  local[k->axis] /= k->count;
  int64_t n = numel(local, k->rank);
  float *out = malloc((size_t)n * sizeof(float));
  for (int64_t e = 0; e < n; ++e) {
    int64_t coord[3] = {0}, rest = e;
    for (int32_t r = k->rank - 1; r >= 0; --r) {
      coord[r] = rest % local[r];
      rest /= local[r];
    }
    coord[k->axis] += (int64_t)k->index * local[k->axis];
    int64_t flat = 0;
    for (int32_t r = 0; r < k->rank; ++r) flat = flat * k->full[r] + coord[r];
    out[e] = full_value(c, flat);
  }
  *count = n;
  return out;
}

/* Writes every case's full tensor one after another into `path`; their byte
 * offsets into offsets[]. */
static void write_data_file(const char *path, int64_t *offsets) {
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  int64_t at = 0;
  for (size_t c = 0; c < NCASES; ++c) {
    offsets[c] = at;
    int64_t n = numel(kCases[c].full, kCases[c].rank);
    for (int64_t e = 0; e < n; ++e) {
      float v = full_value(c, e);
      fwrite(&v, sizeof(v), 1, f);
    }
    at += n * (int64_t)sizeof(float);
  }
  fclose(f);
}

/* The program's weights for every case, with the given storage. */
static void make_weights(moai_device_weight_t *w, const char *storage, const char *file,
                         const int64_t *offsets) {
  for (size_t c = 0; c < NCASES; ++c) {
    const shard_case_t *k = &kCases[c];
    memset(&w[c], 0, sizeof(w[c]));
    w[c].name = (char *)k->name;
    w[c].dtype = MOAI_ABI_F32;
    w[c].rank = k->rank;
    memcpy(w[c].dims, k->full, sizeof(k->full));
    w[c].dims[k->axis] /= k->count;
    w[c].nbytes = (uint64_t)numel(w[c].dims, k->rank) * sizeof(float);
    w[c].storage = (char *)storage;
    w[c].file = (char *)file;
    w[c].file_offset = offsets ? offsets[c] : -1;
    w[c].file_length = offsets ? numel(k->full, k->rank) * (int64_t)sizeof(float) : -1;
    w[c].shard_axis = k->axis;
    w[c].shard_index = k->index;
    w[c].shard_count = k->count;
  }
}

/* Writes the program's weights to `out` and compares each tensor with the
 * slice computed from coordinates. */
static void write_and_check(moai_device_weight_t *w, const char *model_path, const char *out) {
  moai_device_program_t p = {.weights = w, .num_weights = NCASES};
  uint64_t size = 0;
  CU_ASSERT_PTR_NULL_FATAL(moai_weights_layout_safetensors(NULL, w, NCASES, &size));
  moai_status_t s = moai_weights_write(out, &p, model_path);
  if (s) fprintf(stderr, "%s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  moai_safetensors_t *st = NULL;
  CU_ASSERT_PTR_NULL_FATAL(moai_safetensors_open(out, moai_allocator_system(), &st));
  for (size_t c = 0; c < NCASES; ++c) {
    int64_t local[3], n = 0;
    float *want = expected_slice(c, local, &n);
    const moai_safetensors_entry_t *e = moai_safetensors_find(st, kCases[c].name);
    CU_ASSERT_PTR_NOT_NULL(e);
    if (e) {
      CU_ASSERT_EQUAL(e->rank, kCases[c].rank);
      for (int32_t r = 0; r < kCases[c].rank; ++r) CU_ASSERT_EQUAL(e->dims[r], local[r]);
      CU_ASSERT_EQUAL(e->nbytes, (uint64_t)n * sizeof(float));
      if (e->nbytes == (uint64_t)n * sizeof(float))
        CU_ASSERT_EQUAL(memcmp(moai_safetensors_data(st) + e->offset, want, e->nbytes), 0);
    }
    free(want);
  }
  moai_safetensors_close(st);
}

static void test_raw(void) {
  char data[320], out[320];
  int64_t offsets[NCASES];
  snprintf(data, sizeof(data), "%s/raw.bin", g_dir);
  snprintf(out, sizeof(out), "%s/raw.safetensors", g_dir);
  write_data_file(data, offsets);
  moai_device_weight_t w[NCASES];
  make_weights(w, "raw", data, offsets);
  write_and_check(w, data, out);
}

static void test_external(void) {
  char data[320], model[320], out[320];
  int64_t offsets[NCASES];
  snprintf(data, sizeof(data), "%s/external.bin", g_dir);
  snprintf(model, sizeof(model), "%s/model.onnx", g_dir); /* only its directory is used */
  snprintf(out, sizeof(out), "%s/external.safetensors", g_dir);
  write_data_file(data, offsets);
  moai_device_weight_t w[NCASES];
  make_weights(w, "external", "external.bin", offsets);
  write_and_check(w, model, out);
}

static void test_field(void) {
  char model[320], out[320];
  snprintf(model, sizeof(model), "%s/fields.onnx", g_dir);
  snprintf(out, sizeof(out), "%s/field.safetensors", g_dir);
  tb_t b;
  tb_init(&b, 17);
  for (size_t c = 0; c < NCASES; ++c) {
    int64_t n = numel(kCases[c].full, kCases[c].rank);
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t e = 0; e < n; ++e) v[e] = full_value(c, e);
    tb_init_f32(&b, kCases[c].name, kCases[c].rank, kCases[c].full, v, 0); /* float_data */
    free(v);
  }
  size_t size = 0;
  uint8_t *bytes = tb_pack(&b, &size);
  FILE *f = fopen(model, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fwrite(bytes, 1, size, f);
  fclose(f);
  free(bytes);
  tb_free(&b);
  moai_device_weight_t w[NCASES];
  make_weights(w, "field", NULL, NULL);
  write_and_check(w, model, out);
}

/* A TorchScript-like archive m.pt: m/data.pkl, m/version and m/data/0 = the
 * data file's bytes (stored or deflated). */
static void write_archive(const char *path, const char *data_file, bool deflate) {
  FILE *f = fopen(data_file, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  static char bytes[1 << 16];
  size_t n = fread(bytes, 1, sizeof(bytes), f);
  fclose(f);
  int err = 0;
  zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
  CU_ASSERT_PTR_NOT_NULL_FATAL(z);
  static const char kPkl[] = "\x80\x02N.", kVersion[] = "3\n";
  const struct { const char *name; const void *p; size_t n; } e[] = {
      {"m/data.pkl", kPkl, sizeof(kPkl) - 1},
      {"m/version", kVersion, sizeof(kVersion) - 1},
      {"m/data/0", bytes, n}};
  for (size_t i = 0; i < 3; ++i) {
    zip_source_t *s = zip_source_buffer(z, e[i].p, e[i].n, 0);
    zip_int64_t idx = zip_file_add(z, e[i].name, s, ZIP_FL_OVERWRITE);
    CU_ASSERT_FATAL(idx >= 0);
    zip_set_file_compression(z, (zip_uint64_t)idx, deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  CU_ASSERT_EQUAL_FATAL(zip_close(z), 0);
}

static void check_zip(bool deflate) {
  char data[320], archive[320], out[320];
  int64_t offsets[NCASES];
  snprintf(data, sizeof(data), "%s/zip.bin", g_dir);
  snprintf(archive, sizeof(archive), "%s/m%d.pt", g_dir, (int)deflate);
  snprintf(out, sizeof(out), "%s/zip%d.safetensors", g_dir, (int)deflate);
  write_data_file(data, offsets);
  write_archive(archive, data, deflate);
  moai_device_weight_t w[NCASES];
  make_weights(w, "zip", archive, offsets);
  for (size_t c = 0; c < NCASES; ++c) w[c].entry = "data/0";
  write_and_check(w, archive, out);
  /* A zip weight needs its entry; a missing entry is named. */
  moai_device_program_t p = {.weights = w, .num_weights = NCASES};
  w[2].entry = NULL;
  moai_status_t s = moai_weights_write(out, &p, archive);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), "without an entry"));
  moai_status_free(s);
  w[2].entry = "data/9";
  s = moai_weights_write(out, &p, archive);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), "data/9: no such entry"));
  moai_status_free(s);
}

static void test_zip_stored(void) { check_zip(false); }
static void test_zip_deflated(void) { check_zip(true); }

/* A shard's byte range must be the whole tensor's, and its slice must fit. */
static void test_rejects_bad_shards(void) {
  char data[320], out[320];
  int64_t offsets[NCASES];
  snprintf(data, sizeof(data), "%s/bad.bin", g_dir);
  snprintf(out, sizeof(out), "%s/bad.safetensors", g_dir);
  write_data_file(data, offsets);
  moai_device_weight_t w[NCASES];
  make_weights(w, "raw", data, offsets);
  moai_device_program_t p = {.weights = w, .num_weights = NCASES};
  uint64_t size = 0;
  CU_ASSERT_PTR_NULL_FATAL(moai_weights_layout_safetensors(NULL, w, NCASES, &size));
  w[1].file_length = (int64_t)w[1].nbytes; /* the slice's size, not the tensor's */
  moai_status_t s = moai_weights_write(out, &p, data);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_DATA_LOSS);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), "w2_axis1"));
  moai_status_free(s);
  make_weights(w, "raw", data, offsets);
  w[3].shard_index = 2; /* of 2 */
  s = moai_weights_write(out, &p, data);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), "shard 2 of 2"));
  moai_status_free(s);
  CU_ASSERT_EQUAL(access(out, F_OK), -1);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"raw", test_raw},
      {"external", test_external},
      {"field", test_field},
      {"zip_stored", test_zip_stored},
      {"zip_deflated", test_zip_deflated},
      {"rejects_bad_shards", test_rejects_bad_shards},
      CU_TEST_INFO_NULL};
  CU_pSuite suite = CU_add_suite("weights_shard", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
