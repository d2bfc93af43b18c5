/* Unit tests for runtime/train/dataset: a .safetensors file and a directory
 * of .npy files as training data, every way they can disagree with the
 * plan's inputs, row gathering and filler rows. */
#include <string.h>

#include "../../moai_run/runtime_test_util.h"
#include "io/dtype.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "moai_test.h"
#include "train/dataset.h"

static char g_dir[256];

static int suite_init(void) { return rt_mkdtemp(g_dir, sizeof(g_dir), "ds-test"); }
static int suite_clean(void) {
  rt_rm_tree(g_dir);
  return 0;
}

/* The plan: ids int64 [2, 3] (micro-batch 2), labels int64 [2]. */
static moai_tensor_desc_t g_inputs[2] = {
    {.name = "ids", .dtype = MOAI_ABI_I64, .rank = 2, .dims = {2, 3}, .nbytes = 48},
    {.name = "labels", .dtype = MOAI_ABI_I64, .rank = 1, .dims = {2}, .nbytes = 16},
};

/* Examples: ids[i] = {10i, 10i+1, 10i+2}, labels[i] = i. */
typedef struct array_t {
  const char *name;
  int32_t dtype, rank;
  int64_t dims[3];
} array_t;

static moai_status_t fill_arrays(void *user, size_t index, void *dst, uint64_t nbytes) {
  const moai_safetensors_entry_t *e = (const moai_safetensors_entry_t *)user + index;
  size_t size = moai_abi_dtype_size(e->dtype);
  uint64_t per_row = e->rank > 1 ? (uint64_t)e->dims[1] : 1;
  for (uint64_t k = 0; k < nbytes / size; ++k) {
    int64_t v = e->rank > 1 ? (int64_t)(k / per_row * 10 + k % per_row) : (int64_t)k;
    memcpy((char *)dst + k * size, &v, size); /* little-endian: low bytes first */
  }
  return moai_ok_status();
}

static void write_st(const char *name, const array_t *arrays, size_t n, char *out_path) {
  moai_safetensors_entry_t e[4];
  for (size_t i = 0; i < n; ++i) {
    e[i] = (moai_safetensors_entry_t){.name = arrays[i].name, .dtype = arrays[i].dtype,
                                      .rank = arrays[i].rank};
    memcpy(e[i].dims, arrays[i].dims, sizeof(arrays[i].dims));
  }
  uint64_t size;
  moai_safetensors_layout(e, n, &size);
  sprintf(out_path, "%s/%s", g_dir, name);
  RT_ASSERT_OK(moai_safetensors_write(out_path, e, n, NULL, 0, fill_arrays, e));
}

static const array_t GOOD[2] = {
    {"ids", MOAI_ABI_I64, 2, {5, 3}},
    {"labels", MOAI_ABI_I64, 1, {5}},
};

static moai_status_t open_with(const array_t *arrays, size_t n, moai_dataset_t **out) {
  char path[512];
  write_st("d.safetensors", arrays, n, path);
  return moai_dataset_open(path, g_inputs, 2, NULL, moai_allocator_system(), out);
}

static void test_safetensors_rows(void) {
  moai_dataset_t *ds = NULL;
  RT_ASSERT_OK(open_with(GOOD, 2, &ds));
  CU_ASSERT_FATAL(ds != NULL);
  CU_ASSERT_EQUAL(moai_dataset_example_count(ds), 5);
  CU_ASSERT_EQUAL(moai_dataset_micro_batch_size(ds), 2);
  CU_ASSERT_EQUAL(moai_dataset_row_bytes(ds, 0), 24);
  CU_ASSERT_EQUAL(moai_dataset_row_bytes(ds, 1), 8);
  uint64_t idx[2] = {4, 1};
  int64_t ids[6], labels[2];
  RT_ASSERT_OK(moai_dataset_gather(ds, 0, idx, 2, 2, ids));
  RT_ASSERT_OK(moai_dataset_gather(ds, 1, idx, 2, 2, labels));
  const int64_t want_ids[6] = {40, 41, 42, 10, 11, 12};
  CU_ASSERT_EQUAL(memcmp(ids, want_ids, sizeof(ids)), 0);
  CU_ASSERT_EQUAL(labels[0], 4);
  CU_ASSERT_EQUAL(labels[1], 1);
  idx[0] = 5;
  RT_EXPECT_ERROR(moai_dataset_gather(ds, 0, idx, 2, 2, ids), MOAI_INVALID_ARGUMENT,
                  "example 5 out of range", NULL);
  /* Filler rows need enable_filler. */
  idx[0] = 0;
  RT_EXPECT_ERROR(moai_dataset_gather(ds, 1, idx, 2, 1, labels), MOAI_FAILED_PRECONDITION,
                  "filler", NULL);
  moai_dataset_close(ds);
}

static void test_npy_directory(void) {
  char dir[512], path[600];
  snprintf(dir, sizeof(dir), "%s/npy", g_dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0777), 0);
  int64_t ids[12], labels[4];
  for (int i = 0; i < 12; ++i) ids[i] = i / 3 * 10 + i % 3;
  for (int i = 0; i < 4; ++i) labels[i] = i;
  snprintf(path, sizeof(path), "%s/ids.npy", dir);
  RT_ASSERT_OK(moai_npy_write(path, MOAI_ABI_I64, 2, (int64_t[]){4, 3}, ids));
  moai_dataset_t *ds = NULL;
  /* labels.npy missing. */
  RT_EXPECT_ERROR(moai_dataset_open(dir, g_inputs, 2, NULL, moai_allocator_system(), &ds),
                  MOAI_NOT_FOUND, "no labels.npy for the plan's input 'labels'", NULL);
  /* Wrong dtype in a .npy names the file. */
  snprintf(path, sizeof(path), "%s/labels.npy", dir);
  int32_t labels32[4] = {0, 1, 2, 3};
  RT_ASSERT_OK(moai_npy_write(path, MOAI_ABI_I32, 1, (int64_t[]){4}, labels32));
  RT_EXPECT_ERROR(moai_dataset_open(dir, g_inputs, 2, NULL, moai_allocator_system(), &ds),
                  MOAI_INVALID_ARGUMENT, "labels.npy: array 'labels' is int32, the plan's input "
                  "'labels' is int64", NULL);
  RT_ASSERT_OK(moai_npy_write(path, MOAI_ABI_I64, 1, (int64_t[]){4}, labels));
  RT_ASSERT_OK(moai_dataset_open(dir, g_inputs, 2, NULL, moai_allocator_system(), &ds));
  CU_ASSERT_EQUAL(moai_dataset_example_count(ds), 4);
  uint64_t idx[2] = {3, 2};
  int64_t out[6];
  RT_ASSERT_OK(moai_dataset_gather(ds, 0, idx, 2, 2, out));
  CU_ASSERT_EQUAL(out[0], 30);
  CU_ASSERT_EQUAL(out[5], 22);
  moai_dataset_close(ds);
  rt_rm_tree(dir);
}

static void test_dtype_mismatch(void) {
  array_t a[2] = {GOOD[0], {"labels", MOAI_ABI_I32, 1, {5}}};
  moai_dataset_t *ds = NULL;
  RT_EXPECT_ERROR(open_with(a, 2, &ds), MOAI_INVALID_ARGUMENT,
                  "d.safetensors: array 'labels' is int32, the plan's input 'labels' is int64",
                  NULL);
  CU_ASSERT_PTR_NULL(ds);
}

static void test_shape_mismatch(void) {
  array_t a[2] = {{"ids", MOAI_ABI_I64, 2, {5, 4}}, GOOD[1]};
  moai_dataset_t *ds = NULL;
  RT_EXPECT_ERROR(open_with(a, 2, &ds), MOAI_INVALID_ARGUMENT,
                  "array 'ids' is 5x4 (examples of shape 4), the plan's input 'ids' is 2x3 "
                  "(examples of shape 3)", NULL);
  array_t b[2] = {{"ids", MOAI_ABI_I64, 3, {5, 3, 1}}, GOOD[1]};
  RT_EXPECT_ERROR(open_with(b, 2, &ds), MOAI_INVALID_ARGUMENT, "array 'ids' is 5x3x1", NULL);
  array_t c[2] = {{"ids", MOAI_ABI_I64, 0, {0}}, GOOD[1]};
  RT_EXPECT_ERROR(open_with(c, 2, &ds), MOAI_INVALID_ARGUMENT, "array 'ids' is a scalar", NULL);
}

static void test_count_mismatch(void) {
  array_t a[2] = {{"ids", MOAI_ABI_I64, 2, {12, 3}}, {"labels", MOAI_ABI_I64, 1, {10}}};
  moai_dataset_t *ds = NULL;
  RT_EXPECT_ERROR(open_with(a, 2, &ds), MOAI_INVALID_ARGUMENT,
                  "d.safetensors: array 'labels' has 10 examples, 'ids' has 12", NULL);
  array_t b[2] = {{"ids", MOAI_ABI_I64, 2, {0, 3}}, {"labels", MOAI_ABI_I64, 1, {0}}};
  RT_EXPECT_ERROR(open_with(b, 2, &ds), MOAI_INVALID_ARGUMENT, "hold no examples", NULL);
}

/* Collects warnings. */
typedef struct warnings_t {
  int count;
  char last[512];
} warnings_t;

static void collect(void *self, moai_log_level_t level, const char *message) {
  warnings_t *w = self;
  if (level != MOAI_LOG_LEVEL_WARNING) return;
  w->count++;
  snprintf(w->last, sizeof(w->last), "%s", message);
}

static void test_missing_and_extra_arrays(void) {
  array_t a[2] = {GOOD[0], {"label", MOAI_ABI_I64, 1, {5}}};
  moai_dataset_t *ds = NULL;
  RT_EXPECT_ERROR(open_with(a, 2, &ds), MOAI_NOT_FOUND,
                  "d.safetensors: no array 'labels' for the plan's input 'labels'",
                  "(arrays no input uses: 'label')");
  array_t b[3] = {GOOD[0], GOOD[1], {"extra", MOAI_ABI_F32, 1, {7}}};
  char path[512];
  write_st("e.safetensors", b, 3, path);
  warnings_t w = {0};
  moai_log_sink_t sink = {.self = &w, .fn = collect, .max_level = MOAI_LOG_LEVEL_WARNING};
  RT_ASSERT_OK(moai_dataset_open(path, g_inputs, 2, &sink, moai_allocator_system(), &ds));
  CU_ASSERT_EQUAL(w.count, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(w.last, "array 'extra' is not an input of the plan; ignored"));
  moai_dataset_close(ds);
}

static void test_plan_input_errors(void) {
  char path[512];
  write_st("d.safetensors", GOOD, 2, path);
  moai_dataset_t *ds = NULL;
  moai_tensor_desc_t scalar[1] = {{.name = "x", .dtype = MOAI_ABI_F32, .rank = 0}};
  RT_EXPECT_ERROR(moai_dataset_open(path, scalar, 1, NULL, moai_allocator_system(), &ds),
                  MOAI_INVALID_ARGUMENT, "input 'x' has no batch dimension", NULL);
  moai_tensor_desc_t two[2] = {g_inputs[0], g_inputs[1]};
  two[1].dims[0] = 4;
  RT_EXPECT_ERROR(moai_dataset_open(path, two, 2, NULL, moai_allocator_system(), &ds),
                  MOAI_INVALID_ARGUMENT, "'ids' (batch 2) and 'labels' (batch 4) disagree", NULL);
  snprintf(path, sizeof(path), "%s/nothing-here.safetensors", g_dir);
  RT_EXPECT_ERROR(moai_dataset_open(path, g_inputs, 2, NULL, moai_allocator_system(), &ds),
                  MOAI_NOT_FOUND, "nothing-here.safetensors", NULL);
  CU_ASSERT_PTR_NULL(ds);
}

static void test_filler_rows(void) {
  moai_dataset_t *ds = NULL;
  RT_ASSERT_OK(open_with(GOOD, 2, &ds));
  RT_EXPECT_ERROR(moai_dataset_enable_filler(ds, "one", "labels", -100), MOAI_FAILED_PRECONDITION,
                  "--no-drop-last needs a plan whose loss weight counts labels", "\"one\"");
  RT_EXPECT_ERROR(moai_dataset_enable_filler(ds, "tokens", "nope", -100), MOAI_INVALID_ARGUMENT,
                  "'nope' is not an input", NULL);
  RT_ASSERT_OK(moai_dataset_enable_filler(ds, "tokens", "labels", -100));
  /* A step of 4 rows with 3 real ones: the sampler repeats the first index. */
  uint64_t idx[4] = {2, 0, 4, 2};
  int64_t ids[12], labels[4];
  RT_ASSERT_OK(moai_dataset_gather(ds, 0, idx, 4, 3, ids));
  RT_ASSERT_OK(moai_dataset_gather(ds, 1, idx, 4, 3, labels));
  CU_ASSERT_EQUAL(labels[0], 2);
  CU_ASSERT_EQUAL(labels[2], 4);
  CU_ASSERT_EQUAL(labels[3], -100);
  CU_ASSERT_EQUAL(ids[9], 20);
  CU_ASSERT_EQUAL(ids[11], 22);
  RT_EXPECT_ERROR(moai_dataset_gather(ds, 1, idx, 4, 0, labels), MOAI_FAILED_PRECONDITION,
                  "at least one real row", NULL);
  moai_dataset_close(ds);

  /* Labels of a narrower integer type, and of a float type. */
  moai_tensor_desc_t in8[1] = {{.name = "y", .dtype = MOAI_ABI_I8, .rank = 1, .dims = {2}}};
  array_t a8[1] = {{"y", MOAI_ABI_I8, 1, {3}}};
  char path[512];
  write_st("y.safetensors", a8, 1, path);
  RT_ASSERT_OK(moai_dataset_open(path, in8, 1, NULL, moai_allocator_system(), &ds));
  RT_EXPECT_ERROR(moai_dataset_enable_filler(ds, "tokens", "y", -1000), MOAI_INVALID_ARGUMENT,
                  "ignore_index -1000 does not fit", "int8");
  RT_ASSERT_OK(moai_dataset_enable_filler(ds, "tokens", "y", -1));
  int8_t y[2];
  RT_ASSERT_OK(moai_dataset_gather(ds, 0, (uint64_t[]){2, 2}, 2, 1, y));
  CU_ASSERT_EQUAL(y[0], 2);
  CU_ASSERT_EQUAL(y[1], -1);
  moai_dataset_close(ds);
  moai_tensor_desc_t inf[1] = {{.name = "f", .dtype = MOAI_ABI_F32, .rank = 1, .dims = {2}}};
  array_t af[1] = {{"f", MOAI_ABI_F32, 1, {3}}};
  write_st("f.safetensors", af, 1, path);
  RT_ASSERT_OK(moai_dataset_open(path, inf, 1, NULL, moai_allocator_system(), &ds));
  RT_EXPECT_ERROR(moai_dataset_enable_filler(ds, "tokens", "f", -1), MOAI_INVALID_ARGUMENT,
                  "is float32, not an integer type", NULL);
  moai_dataset_close(ds);
}

/* Every allocation failure is reported, nothing leaks. */
static void test_allocation_failures(void) {
  char path[512];
  write_st("d.safetensors", GOOD, 2, path);
  for (uint64_t n = 1;; ++n) {
    moai_fault_allocator_t fa = {.base = moai_allocator_system(), .fail_at = n};
    moai_dataset_t *ds = NULL;
    moai_status_t s = moai_dataset_open(path, g_inputs, 2, NULL, moai_fault_allocator(&fa), &ds);
    if (!s) {
      moai_dataset_close(ds);
      CU_ASSERT_EQUAL(fa.live, 0);
      break;
    }
    CU_ASSERT_PTR_NULL(ds);
    CU_ASSERT_EQUAL(fa.live, 0);
    moai_status_free(s);
    CU_ASSERT_FATAL(n < 100);
  }
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"safetensors_rows", test_safetensors_rows},
      {"npy_directory", test_npy_directory},
      {"dtype_mismatch", test_dtype_mismatch},
      {"shape_mismatch", test_shape_mismatch},
      {"count_mismatch", test_count_mismatch},
      {"missing_and_extra_arrays", test_missing_and_extra_arrays},
      {"plan_input_errors", test_plan_input_errors},
      {"filler_rows", test_filler_rows},
      {"allocation_failures", test_allocation_failures},
      CU_TEST_INFO_NULL,
  };
  CU_pSuite suite = CU_add_suite("train_dataset", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
