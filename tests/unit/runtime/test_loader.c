/* Unit tests for runtime/loader's plan API on a plan built without the
 * compiler: the hand-written device binary tests/moai_run/test_device.c
 * (y = a + b + w through two ADD op descriptors) and its plan directory
 * (test_plan_builder.h). Then every way the plan can be damaged: each must
 * be a clear error, never a crash. */
#include <string.h>

#include "../../moai_run/runtime_test_util.h"
#include "../../moai_run/test_plan_builder.h"
#include "io/sha256.h"
#include "kernels/kernels.h"
#include "loader/plan.h"
#include "moai_test.h"

static char g_root[256];
static char g_so[1024];
static bool g_have_add;

static int suite_init(void) {
  snprintf(g_so, sizeof(g_so), "%s/tests/moai_test_device.so", moai_test_binary_dir());
  moai_kernel_fn_t table[MOAI_KERNEL_COUNT];
  moai_kernels_fill(moai_isa_detect(), table);
  g_have_add = table[MOAI_KERNEL_ADD] != moai_kernel_missing;
  if (access(g_so, R_OK) != 0) {
    fprintf(stderr, "test_loader: %s is missing (build target moai_test_device)\n", g_so);
    return 1;
  }
  return rt_mkdtemp(g_root, sizeof(g_root), "loader-test");
}

static int suite_clean(void) {
  rt_rm_tree(g_root);
  return 0;
}

/* A fresh copy of the test plan in g_root/tag. */
static void fresh_plan(const char *tag, char *dir, size_t size) {
  snprintf(dir, size, "%s/%s", g_root, tag);
  rt_rm_tree(dir);
  RT_ASSERT_OK(tp_write_plan(dir, g_so));
}

static void file_in(const char *dir, const char *name, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s", dir, name);
}

static void edit_manifest(const char *dir, const char *from, const char *to) {
  char path[600];
  file_in(dir, "manifest.json", path, sizeof(path));
  CU_ASSERT_EQUAL(rt_replace_in_file(path, from, to), 0);
}

/* After changing a file on purpose: its new SHA-256 into the manifest, so
 * the checks behind the checksum are reached. */
static void rehash(const char *dir, const char *name) {
  char path[600], manifest_path[600];
  file_in(dir, name, path, sizeof(path));
  file_in(dir, "manifest.json", manifest_path, sizeof(manifest_path));
  moai_manifest_t *m = NULL;
  RT_ASSERT_OK(moai_manifest_read(manifest_path, moai_allocator_system(), &m));
  if (!m) return;
  char hex[MOAI_SHA256_HEX_SIZE];
  RT_ASSERT_OK(moai_sha256_file(path, hex));
  const char *old = strcmp(name, "device-0.so") == 0 ? m->devices[0].binary_sha256
                                                     : m->devices[0].weights_sha256;
  CU_ASSERT_EQUAL(rt_replace_in_file(manifest_path, old, hex), 0);
  moai_manifest_free(m);
}

static void expect_open_error(const char *dir, moai_status_code_t code, const char *needle,
                              const char *needle2) {
  moai_plan_t *plan = NULL;
  RT_EXPECT_ERROR(moai_plan_open(dir, NULL, moai_allocator_system(), &plan), code, needle,
                  needle2);
  CU_ASSERT_PTR_NULL(plan);
}

static const float k_a[6] = {0, 1, 2, 3, 4, 5};
static const float k_b[6] = {0.5f, 0.5f, 0.5f, 1, 1, 1};
static const int64_t k_dims[2] = {2, 3};

static void set_inputs(moai_plan_t *plan) {
  RT_ASSERT_OK(moai_plan_set_input(plan, "a", MOAI_ABI_F32, 2, k_dims, k_a));
  RT_ASSERT_OK(moai_plan_set_input(plan, "b", MOAI_ABI_F32, 2, k_dims, k_b));
}

static void check_run(moai_plan_t *plan, int threads) {
  set_inputs(plan);
  moai_status_t s = moai_plan_run(plan, threads);
  if (!g_have_add) {
    /* Without the elementwise ADD kernel the step itself reports it. */
    RT_EXPECT_ERROR(s, MOAI_UNIMPLEMENTED, "step failed at op 0 'Add_0'", "add");
    return;
  }
  RT_ASSERT_OK(s);
  CU_ASSERT_EQUAL(moai_plan_last_thread_count(plan), threads);
  const moai_tensor_desc_t *desc = NULL;
  const void *data = NULL;
  RT_ASSERT_OK(moai_plan_output(plan, 0, &desc, &data));
  if (!data) return;
  CU_ASSERT_STRING_EQUAL(desc->name, "y");
  const float *y = data;
  for (int i = 0; i < 6; ++i) CU_ASSERT_DOUBLE_EQUAL(y[i], k_a[i] + k_b[i] + k_tp_w[i], 1e-6);
}

static void test_open_and_run(void) {
  char dir[512];
  fresh_plan("good", dir, sizeof(dir));
  moai_plan_t *plan = NULL;
  RT_ASSERT_OK(moai_plan_open(dir, NULL, moai_allocator_system(), &plan));
  if (!plan) return;
  CU_ASSERT_EQUAL(moai_plan_input_count(plan), 2);
  CU_ASSERT_EQUAL(moai_plan_output_count(plan), 1);
  CU_ASSERT_STRING_EQUAL(moai_plan_input_desc(plan, 1)->name, "b");
  CU_ASSERT_PTR_NULL(moai_plan_input_desc(plan, 2));
  CU_ASSERT_EQUAL(moai_plan_output_desc(plan, 0)->nbytes, 24);
  CU_ASSERT_EQUAL(moai_plan_find_input(plan, "b"), 1);
  CU_ASSERT_EQUAL(moai_plan_find_input(plan, "y"), -1);
  CU_ASSERT_STRING_EQUAL(moai_plan_manifest(plan)->model_source, "add.onnx");
  const moai_tensor_desc_t *desc = NULL;
  const void *data = NULL;
  RT_EXPECT_ERROR(moai_plan_output(plan, 0, &desc, &data), MOAI_FAILED_PRECONDITION,
                  "no run has succeeded", NULL);
  RT_EXPECT_ERROR(moai_plan_output(plan, 1, &desc, &data), MOAI_INVALID_ARGUMENT,
                  "output 1 does not exist", NULL);
  static const int threads[] = {1, 2, 3, 8};
  for (size_t i = 0; i < sizeof(threads) / sizeof(threads[0]); ++i) check_run(plan, threads[i]);
  /* A run consumes its inputs. */
  RT_EXPECT_ERROR(moai_plan_run(plan, 1), MOAI_FAILED_PRECONDITION, "input 'a' is not set",
                  NULL);
  /* Default thread count. */
  set_inputs(plan);
  moai_status_t s = moai_plan_run(plan, 0);
  if (g_have_add) RT_ASSERT_OK(s);
  else moai_status_free(s);
  CU_ASSERT_TRUE(moai_plan_last_thread_count(plan) >= 1);
  /* Setting an input invalidates the outputs. */
  RT_ASSERT_OK(moai_plan_set_input(plan, "a", MOAI_ABI_F32, 2, k_dims, k_a));
  RT_EXPECT_ERROR(moai_plan_output(plan, 0, &desc, &data), MOAI_FAILED_PRECONDITION,
                  "no run has succeeded", NULL);
  moai_plan_close(plan);
  moai_plan_close(NULL);
}

static void test_set_input_errors(void) {
  char dir[512];
  fresh_plan("inputs", dir, sizeof(dir));
  moai_plan_t *plan = NULL;
  RT_ASSERT_OK(moai_plan_open(dir, NULL, moai_allocator_system(), &plan));
  if (!plan) return;
  const int64_t wide[2] = {2, 8}, flat[1] = {6};
  RT_EXPECT_ERROR(moai_plan_set_input(plan, "c", MOAI_ABI_F32, 2, k_dims, k_a), MOAI_NOT_FOUND,
                  "the plan has no input 'c' (its inputs: a, b)", NULL);
  RT_EXPECT_ERROR(moai_plan_set_input(plan, "a", MOAI_ABI_I64, 2, k_dims, k_a),
                  MOAI_INVALID_ARGUMENT, "input 'a': dtype int64 does not match the plan's float32",
                  NULL);
  RT_EXPECT_ERROR(moai_plan_set_input(plan, "a", MOAI_ABI_F32, 2, wide, k_a),
                  MOAI_INVALID_ARGUMENT, "input 'a': shape 2x8 does not match the plan's 2x3",
                  NULL);
  RT_EXPECT_ERROR(moai_plan_set_input(plan, "b", MOAI_ABI_F32, 1, flat, k_a),
                  MOAI_INVALID_ARGUMENT, "input 'b': shape 6 does not match the plan's 2x3", NULL);
  RT_EXPECT_ERROR(moai_plan_set_input(plan, "b", MOAI_ABI_F32, 99, flat, k_a),
                  MOAI_INVALID_ARGUMENT, "shape of rank 99", NULL);
  RT_EXPECT_ERROR(moai_plan_set_input(plan, "b", MOAI_ABI_F32, 2, k_dims, NULL),
                  MOAI_INVALID_ARGUMENT, "input 'b': no data", NULL);
  /* A missing input is an error before anything runs. */
  RT_ASSERT_OK(moai_plan_set_input(plan, "a", MOAI_ABI_F32, 2, k_dims, k_a));
  RT_EXPECT_ERROR(moai_plan_run(plan, 2), MOAI_FAILED_PRECONDITION, "input 'b' is not set", NULL);
  moai_plan_close(plan);
}

static void test_tampered_files(void) {
  char dir[512], path[600];
  fresh_plan("tamper_so", dir, sizeof(dir));
  file_in(dir, "device-0.so", path, sizeof(path));
  CU_ASSERT_EQUAL(rt_flip_byte(path, 1000, 0x01), 0);
  expect_open_error(dir, MOAI_DATA_LOSS,
                    "tamper_so/device-0.so: SHA-256 mismatch: the plan was modified after it "
                    "was written; recompile it", NULL);
  fresh_plan("tamper_weights", dir, sizeof(dir));
  file_in(dir, "weights-0.safetensors", path, sizeof(path));
  CU_ASSERT_EQUAL(rt_flip_byte(path, -1, 0x80), 0);
  expect_open_error(dir, MOAI_DATA_LOSS, "tamper_weights/weights-0.safetensors: SHA-256 mismatch",
                    NULL);
  /* Without checksum verification the same plan opens (and runs with the
   * edited weight: the option really skips the check). */
  moai_plan_options_t options = moai_plan_options_default();
  options.verify_checksums = false;
  moai_plan_t *plan = NULL;
  RT_ASSERT_OK(moai_plan_open(dir, &options, moai_allocator_system(), &plan));
  moai_plan_close(plan);
}

static void test_manifest_edits(void) {
  char dir[512];
  fresh_plan("shape", dir, sizeof(dir));
  edit_manifest(dir, "        3\n      ]", "        4\n      ]"); /* input a: [2, 4] */
  expect_open_error(dir, MOAI_DATA_LOSS,
                    "input 'a' has another dtype or shape in the binary than in manifest.json",
                    NULL);
  fresh_plan("arena", dir, sizeof(dir));
  edit_manifest(dir, "\"arena_bytes\": 256", "\"arena_bytes\": 512");
  expect_open_error(dir, MOAI_DATA_LOSS, "region sizes (arena 256", "recompile");
  fresh_plan("inputs_count", dir, sizeof(dir));
  edit_manifest(dir, "\"name\": \"b\"", "\"name\": \"c\"");
  expect_open_error(dir, MOAI_DATA_LOSS, "input 1 is 'b' in the binary but 'c' in manifest.json",
                    NULL);
  fresh_plan("format", dir, sizeof(dir));
  edit_manifest(dir, "\"format_version\": 1", "\"format_version\": 4");
  expect_open_error(dir, MOAI_FAILED_PRECONDITION,
                    "plan format 4 is newer than this runtime (3)", NULL);
  fresh_plan("abi", dir, sizeof(dir));
  edit_manifest(dir, "\"abi_version\": 3", "\"abi_version\": 4");
  expect_open_error(dir, MOAI_FAILED_PRECONDITION, "device ABI 4, but this runtime implements ABI 3",
                    NULL);
  fresh_plan("triple", dir, sizeof(dir));
  edit_manifest(dir, "\"triple\": \"", "\"triple\": \"riscv64-");
  expect_open_error(dir, MOAI_FAILED_PRECONDITION, "the plan was compiled for riscv64-",
                    "recompile it for this machine");
  fresh_plan("unknown_feature", dir, sizeof(dir));
  edit_manifest(dir, "\"features\": [", "\"features\": [\"avx9000\",");
  expect_open_error(dir, MOAI_INVALID_ARGUMENT, "target.features lists 'avx9000'", NULL);
  fresh_plan("unknown_field", dir, sizeof(dir));
  edit_manifest(dir, "\"training\": null", "\"training\": null, \"surprise\": 1");
  expect_open_error(dir, MOAI_INVALID_ARGUMENT, "manifest.json: unknown field 'surprise'", NULL);
  fresh_plan("not_json", dir, sizeof(dir));
  edit_manifest(dir, "{", "[");
  expect_open_error(dir, MOAI_INVALID_ARGUMENT, "manifest.json:", "not valid JSON");
}

static void test_missing_cpu_feature(void) {
  char dir[512], want[256];
  /* Against a described CPU: the plan's features (sse4.2, avx2 where the
   * host has them) plus two that this description lacks. */
  fresh_plan("feature", dir, sizeof(dir));
  edit_manifest(dir, "\"features\": [", "\"features\": [\"avx512fp16\", \"amx-tile\",");
  moai_plan_options_t options = moai_plan_options_default();
  options.cpu_features = "sse4.1,sse4.2,avx,avx2,fma";
  moai_plan_t *plan = NULL;
  RT_EXPECT_ERROR(moai_plan_open(dir, &options, moai_allocator_system(), &plan),
                  MOAI_FAILED_PRECONDITION,
                  "the plan was compiled for a CPU with avx512fp16, amx-tile, which this machine "
                  "lacks; recompile on/for this machine", NULL);
  CU_ASSERT_PTR_NULL(plan);
  options.cpu_features = "sse4.2,avx2,avx512fp16,amx-tile";
  RT_ASSERT_OK(moai_plan_open(dir, &options, moai_allocator_system(), &plan));
  moai_plan_close(plan);
  /* Against this CPU, when it lacks one of the set. */
  const char *lacking = NULL;
  for (size_t i = 0; i < moai_cpu_feature_count() && !lacking; ++i)
    if (!moai_cpu_has_feature(moai_cpu_feature_name(i))) lacking = moai_cpu_feature_name(i);
  if (!lacking) return;
  char edit[128];
  fresh_plan("feature_host", dir, sizeof(dir));
  snprintf(edit, sizeof(edit), "\"features\": [\"%s\",", lacking);
  edit_manifest(dir, "\"features\": [", edit);
  snprintf(want, sizeof(want), "compiled for a CPU with %s, which this machine lacks", lacking);
  expect_open_error(dir, MOAI_FAILED_PRECONDITION, want, NULL);
}

static void test_missing_files(void) {
  char dir[512], path[600];
  fresh_plan("no_so", dir, sizeof(dir));
  file_in(dir, "device-0.so", path, sizeof(path));
  unlink(path);
  expect_open_error(dir, MOAI_NOT_FOUND, "no_so/device-0.so: cannot open", NULL);
  fresh_plan("no_weights", dir, sizeof(dir));
  file_in(dir, "weights-0.safetensors", path, sizeof(path));
  unlink(path);
  expect_open_error(dir, MOAI_NOT_FOUND, "no_weights/weights-0.safetensors: cannot open", NULL);
  fresh_plan("no_manifest", dir, sizeof(dir));
  file_in(dir, "manifest.json", path, sizeof(path));
  unlink(path);
  expect_open_error(dir, MOAI_NOT_FOUND, "no_manifest: not a moai plan directory", NULL);
  file_in(g_root, "does-not-exist", path, sizeof(path));
  expect_open_error(path, MOAI_NOT_FOUND, "does-not-exist: no such plan directory", NULL);
  file_in(dir, "a-file", path, sizeof(path));
  CU_ASSERT_EQUAL(rt_write_file(path, "x", 1), 0);
  expect_open_error(path, MOAI_INVALID_ARGUMENT, "a-file: not a directory", NULL);
}

/* Damage behind a valid checksum: the format and consistency checks. */
static void test_bad_files_behind_valid_checksums(void) {
  char dir[512], path[600];
  fresh_plan("truncated", dir, sizeof(dir));
  file_in(dir, "weights-0.safetensors", path, sizeof(path));
  size_t size = 0;
  char *bytes = rt_read_file(path, &size);
  CU_ASSERT_EQUAL(rt_write_file(path, bytes, size - 5), 0);
  free(bytes);
  rehash(dir, "weights-0.safetensors");
  expect_open_error(dir, MOAI_DATA_LOSS, "truncated/weights-0.safetensors:", "truncated");

  fresh_plan("not_elf", dir, sizeof(dir));
  file_in(dir, "device-0.so", path, sizeof(path));
  CU_ASSERT_EQUAL(rt_write_file(path, "not an ELF file", 15), 0);
  rehash(dir, "device-0.so");
  expect_open_error(dir, MOAI_FAILED_PRECONDITION, "not_elf/device-0.so: cannot load the device binary",
                    NULL);

  /* A shared library without the table: libmoairt itself. */
  fresh_plan("no_symbol", dir, sizeof(dir));
  char lib[1100];
  snprintf(lib, sizeof(lib), "%s/lib/libmoairt.so", moai_test_binary_dir());
  file_in(dir, "device-0.so", path, sizeof(path));
  RT_ASSERT_OK(tp_copy_file(lib, path));
  rehash(dir, "device-0.so");
  expect_open_error(dir, MOAI_DATA_LOSS, "no moai_device_table_v3 symbol", NULL);
}

static moai_status_t fill_zero(void *user, size_t index, void *dst, uint64_t nbytes) {
  (void)user;
  (void)index;
  memset(dst, 0, (size_t)nbytes);
  return moai_ok_status();
}

/* Rewrites the weights file with entries `e` (offsets as given) and rehashes. */
static void rewrite_weights(const char *dir, moai_safetensors_entry_t *e, size_t n) {
  char path[600];
  file_in(dir, "weights-0.safetensors", path, sizeof(path));
  RT_ASSERT_OK(moai_safetensors_write(path, e, n, NULL, 0, fill_zero, NULL));
  rehash(dir, "weights-0.safetensors");
}

static void test_weights_disagree_with_binary(void) {
  char dir[512];
  /* Same bytes, other order: w at 0, step at 24. */
  fresh_plan("weight_offset", dir, sizeof(dir));
  moai_safetensors_entry_t e[2] = {
      {.name = "w", .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 3}, .offset = 0, .nbytes = 24},
      {.name = "step", .dtype = MOAI_ABI_I64, .rank = 1, .dims = {2}, .offset = 24, .nbytes = 16},
  };
  rewrite_weights(dir, e, 2);
  expect_open_error(dir, MOAI_DATA_LOSS, "weight 'step' is at data offset 24", "reads it at 0");
  fresh_plan("weight_dtype", dir, sizeof(dir));
  moai_safetensors_entry_t f[2] = {
      {.name = "w", .dtype = MOAI_ABI_I32, .rank = 2, .dims = {2, 3}},
      {.name = "step", .dtype = MOAI_ABI_I64, .rank = 1, .dims = {2}},
  };
  uint64_t size;
  moai_safetensors_layout(f, 2, &size);
  rewrite_weights(dir, f, 2);
  expect_open_error(dir, MOAI_DATA_LOSS, "weight 'w' has another dtype or shape", NULL);
  fresh_plan("weight_missing", dir, sizeof(dir));
  f[0].dtype = MOAI_ABI_F32;
  f[1].name = "steps";
  moai_safetensors_layout(f, 2, &size);
  rewrite_weights(dir, f, 2);
  expect_open_error(dir, MOAI_DATA_LOSS, "weight 'step' used by the binary is not in", NULL);
  fresh_plan("weight_size", dir, sizeof(dir));
  f[1].name = "step";
  f[1].dims[0] = 3;
  moai_safetensors_layout(f, 2, &size);
  rewrite_weights(dir, f, 2);
  expect_open_error(dir, MOAI_DATA_LOSS, "holds 48 bytes of weights but the binary expects 40",
                    NULL);
}

/* Every allocation of open fails in turn: an error, nothing leaked. */
static void test_open_fault_injection(void) {
  char dir[512];
  fresh_plan("faults", dir, sizeof(dir));
  for (uint64_t fail_at = 1;; ++fail_at) {
    moai_fault_allocator_t fa = {.fail_at = fail_at};
    moai_plan_t *plan = NULL;
    moai_status_t s = moai_plan_open(dir, NULL, moai_fault_allocator(&fa), &plan);
    if (!s) {
      moai_plan_close(plan);
      CU_ASSERT_EQUAL(fa.live, 0);
      break;
    }
    CU_ASSERT_EQUAL(moai_status_code(s), MOAI_OUT_OF_MEMORY);
    CU_ASSERT_PTR_NULL(plan);
    CU_ASSERT_EQUAL(fa.live, 0);
    moai_status_free(s);
    if (fail_at > 500) {
      CU_FAIL("open never succeeded");
      break;
    }
  }
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"open_and_run", test_open_and_run},
      {"set_input_errors", test_set_input_errors},
      {"tampered_files", test_tampered_files},
      {"manifest_edits", test_manifest_edits},
      {"missing_cpu_feature", test_missing_cpu_feature},
      {"missing_files", test_missing_files},
      {"bad_files_behind_valid_checksums", test_bad_files_behind_valid_checksums},
      {"weights_disagree_with_binary", test_weights_disagree_with_binary},
      {"open_fault_injection", test_open_fault_injection},
      CU_TEST_INFO_NULL,
  };
  CU_pSuite suite = CU_add_suite("loader", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
