/* Unit tests for the plan writer: atomic replacement, refusal to clobber
 * what is not a plan, nothing left behind on failure. The module carries a
 * memory plan written by hand (moai-memory-plan's attributes), so the
 * writer generates a real device binary for it. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver/compile.h"
#include "ir/dialect.h"
#include "moai_test.h"

static MlirContext g_ctx;
static MlirModule g_module;
static char g_root[256];

static int suite_init(void) {
  moai_status_t s = moai_context_create(false, &g_ctx);
  if (s) {
    moai_status_free(s);
    return 1;
  }
  g_module = mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(
      "module attributes {moai.source = \"test.onnx\", moai.opset = 21 : i64} {\n"
      "func.func @main(%a: tensor<2xf32> {moai.name = \"a\", moai.offset = 0 : i64})\n"
      "    -> (tensor<2xf32> {moai.name = \"b\"})\n"
      "    attributes {moai.arena_size = 128 : i64, moai.live_lower_bound = 16 : i64,\n"
      "                moai.arena_alignment = 64 : i64} {\n"
      "  %0 = \"moai.exp\"(%a) {moai.offsets = array<i64: 64>} : (tensor<2xf32>) -> tensor<2xf32>\n"
      "  return %0 : tensor<2xf32>\n}\n}\n"));
  snprintf(g_root, sizeof(g_root), "/tmp/moai-plan-test-XXXXXX");
  return mlirModuleIsNull(g_module) || !mkdtemp(g_root);
}

static int count_entries(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) ++n;
  closedir(d);
  return n;
}

static void rm_tree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[600];
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    struct stat st;
    if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) rm_tree(p);
    else unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

static int suite_clean(void) {
  rm_tree(g_root);
  mlirModuleDestroy(g_module);
  mlirContextDestroy(g_ctx);
  return 0;
}

static void read_file(const char *path, char *buf, size_t size) {
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (!f) return;
  size_t n = fread(buf, 1, size - 1, f);
  buf[n] = '\0';
  fclose(f);
}

static void test_writes_and_replaces(void) {
  char plan[512], file[600], buf[4096];
  snprintf(plan, sizeof(plan), "%s/plan", g_root);
  CU_ASSERT_PTR_NULL(moai_plan_write(plan, g_module, "first\n", NULL));
  snprintf(file, sizeof(file), "%s/plan.txt", plan);
  read_file(file, buf, sizeof(buf));
  CU_ASSERT_EQUAL(strncmp(buf, "first\ntarget: ", 14), 0);
  snprintf(file, sizeof(file), "%s/model.mlir", plan);
  read_file(file, buf, sizeof(buf));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "moai.exp"));
  /* Replacing keeps exactly one plan and no temporaries beside it. */
  CU_ASSERT_PTR_NULL(moai_plan_write(plan, g_module, "second\n", NULL));
  snprintf(file, sizeof(file), "%s/plan.txt", plan);
  read_file(file, buf, sizeof(buf));
  CU_ASSERT_EQUAL(strncmp(buf, "second\ntarget: ", 15), 0);
  CU_ASSERT_EQUAL(count_entries(g_root), 1);
  /* device-0.so, weights-0.safetensors, manifest.json, model.mlir, plan.txt */
  CU_ASSERT_EQUAL(count_entries(plan), 5);
}

static void test_refuses_non_plan_dir(void) {
  char dir[512], file[600];
  snprintf(dir, sizeof(dir), "%s/precious", g_root);
  mkdir(dir, 0755);
  snprintf(file, sizeof(file), "%s/thesis.tex", dir);
  FILE *f = fopen(file, "w");
  fputs("keep me", f);
  fclose(f);
  moai_status_t s = moai_plan_write(dir, g_module, "x", NULL);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_INVALID_ARGUMENT);
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), "not a moai plan directory"));
  moai_status_free(s);
  CU_ASSERT_EQUAL(access(file, F_OK), 0);
  CU_ASSERT_EQUAL(count_entries(dir), 1);
}

static void test_failure_leaves_nothing(void) {
  char plan[512];
  snprintf(plan, sizeof(plan), "%s/no/such/parent/plan", g_root);
  int before = count_entries(g_root);
  moai_status_t s = moai_plan_write(plan, g_module, "x", NULL);
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_IO_ERROR);
  moai_status_free(s);
  CU_ASSERT_EQUAL(count_entries(g_root), before);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"writes_and_replaces", test_writes_and_replaces},
      {"refuses_non_plan_dir", test_refuses_non_plan_dir},
      {"failure_leaves_nothing", test_failure_leaves_nothing},
      CU_TEST_INFO_NULL};
  CU_pSuite suite = CU_add_suite("plan_write", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
