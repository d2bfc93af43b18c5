/* Unit tests for runtime/base: status, allocator, logging. */
#include <string.h>

#include "base/allocator.h"
#include "base/log.h"
#include "base/status.h"
#include "moai_test.h"

static moai_status_t fail_inner(void) {
  return MOAI_STATUS(MOAI_NOT_FOUND, "tensor '%s' not found", "w");
}

static moai_status_t fail_outer(void) {
  MOAI_RETURN_IF_ERROR_CTX(fail_inner(), "loading %s", "model.onnx");
  return moai_ok_status();
}

static void test_status_ok(void) {
  moai_status_t s = moai_ok_status();
  CU_ASSERT_TRUE(moai_status_is_ok(s));
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_OK);
  CU_ASSERT_STRING_EQUAL(moai_status_message(s), "");
  CU_ASSERT_PTR_NULL(MOAI_STATUS(MOAI_OK, "ignored"));
}

static void test_status_message_and_context(void) {
  moai_status_t s = fail_outer();
  CU_ASSERT_FALSE(moai_status_is_ok(s));
  CU_ASSERT_EQUAL(moai_status_code(s), MOAI_NOT_FOUND);
  CU_ASSERT_STRING_EQUAL(moai_status_message(s), "tensor 'w' not found");
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_file(s), "test_status.c"));
  CU_ASSERT_TRUE(moai_status_line(s) > 0);
  char buf[512] = {0};
  FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
  moai_status_fprint(f, s, false);
  fclose(f);
  CU_ASSERT_STRING_EQUAL(buf, "tensor 'w' not found\n  while loading model.onnx\n");
  moai_status_free(s);
}

static void test_status_code_names(void) {
  CU_ASSERT_STRING_EQUAL(moai_status_code_name(MOAI_DATA_LOSS), "DATA_LOSS");
  CU_ASSERT_STRING_EQUAL(moai_status_code_name((moai_status_code_t)99), "UNKNOWN");
}

static void test_allocator_fault_injection(void) {
  /* Every allocation number fails in turn; nothing leaks either way. */
  for (uint64_t n = 1; n <= 3; ++n) {
    moai_fault_allocator_t state = {.fail_at = n};
    moai_allocator_t a = moai_fault_allocator(&state);
    void *p[3] = {0};
    int failures = 0;
    for (int i = 0; i < 3; ++i) {
      moai_status_t s = moai_allocator_malloc(a, 16, &p[i]);
      if (s) {
        CU_ASSERT_EQUAL(moai_status_code(s), MOAI_OUT_OF_MEMORY);
        CU_ASSERT_PTR_NULL(p[i]);
        moai_status_free(s);
        ++failures;
      }
    }
    CU_ASSERT_EQUAL(failures, (int)(3 - n + 1));
    for (int i = 0; i < 3; ++i) moai_allocator_free(a, p[i]);
    CU_ASSERT_EQUAL(state.live, 0);
  }
}

static void test_allocator_strdup_and_realloc(void) {
  moai_allocator_t a = moai_allocator_system();
  char *s = NULL;
  CU_ASSERT_PTR_NULL(moai_allocator_strdup(a, "moai", &s));
  CU_ASSERT_STRING_EQUAL(s, "moai");
  void *p = s;
  CU_ASSERT_PTR_NULL(moai_allocator_realloc(a, 1024, &p));
  CU_ASSERT_STRING_EQUAL((char *)p, "moai");
  moai_allocator_free(a, p);
}

typedef struct captured_t {
  int count;
  char last[128];
} captured_t;

static void capture(void *self, moai_log_level_t level, const char *message) {
  captured_t *c = self;
  c->count++;
  snprintf(c->last, sizeof(c->last), "%d:%s", (int)level, message);
}

static void test_log_levels(void) {
  captured_t c = {0};
  moai_log_sink_t sink = {.self = &c, .fn = capture, .max_level = MOAI_LOG_LEVEL_WARNING};
  MOAI_LOG(&sink, MOAI_LOG_LEVEL_INFO, "dropped %d", 1);
  CU_ASSERT_EQUAL(c.count, 0);
  MOAI_LOG(&sink, MOAI_LOG_LEVEL_ERROR, "kept %d", 2);
  CU_ASSERT_EQUAL(c.count, 1);
  CU_ASSERT_STRING_EQUAL(c.last, "0:kept 2");
  moai_log_level_t level;
  CU_ASSERT_TRUE(moai_log_level_parse("debug", &level));
  CU_ASSERT_EQUAL(level, MOAI_LOG_LEVEL_DEBUG);
  CU_ASSERT_FALSE(moai_log_level_parse("loud", &level));
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"status_ok", test_status_ok},
      {"status_message_and_context", test_status_message_and_context},
      {"status_code_names", test_status_code_names},
      {"allocator_fault_injection", test_allocator_fault_injection},
      {"allocator_strdup_and_realloc", test_allocator_strdup_and_realloc},
      {"log_levels", test_log_levels},
      CU_TEST_INFO_NULL};
  moai_test_add_suite("base", tests);
}
