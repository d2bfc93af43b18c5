/* Unit tests for runtime/train/progress: the exact text of log lines, bar
 * and .jsonl records, and the writer's choice between them. */
#include <math.h>

#include "../../moai_run/runtime_test_util.h"
#include "moai_test.h"
#include "train/progress.h"

static moai_progress_record_t record(void) {
  return (moai_progress_record_t){.step = 12, .total_steps = 100, .epoch = 0, .loss = 3.21449,
                                  .lr = 1e-3, .tokens = 480, .examples = 8, .seconds = 0.389,
                                  .elapsed = 1.23};
}

static void test_line(void) {
  moai_progress_record_t r = record();
  char buf[256];
  moai_progress_format_line(&r, buf, sizeof(buf));
  CU_ASSERT_STRING_EQUAL(buf, "step 12/100  loss 3.2145  lr 1.00e-03  tokens 480  tok/s 1234  "
                              "elapsed 1.2s");
}

static void test_json(void) {
  moai_progress_record_t r = record();
  r.loss = 2.5;
  r.seconds = 0.125;
  char buf[256];
  moai_progress_format_json(&r, buf, sizeof(buf));
  CU_ASSERT_STRING_EQUAL(buf, "{\"step\":12,\"epoch\":0,\"loss\":2.5,\"lr\":0.001,\"tokens\":480,"
                              "\"examples\":8,\"seconds\":0.125000}");
  r.loss = NAN;
  r.tokens = 12.5;
  moai_progress_format_json(&r, buf, sizeof(buf));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"loss\":null,"));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"tokens\":12.5,"));
  CU_ASSERT_PTR_NULL(strstr(buf, "overlapped_buckets"));
  /* Data parallelism: the buckets the backward handed over, last. */
  r.overlapped_buckets = 3;
  moai_progress_format_json(&r, buf, sizeof(buf));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "\"seconds\":0.125000,\"overlapped_buckets\":3}"));
}

static void test_bar(void) {
  moai_progress_record_t r = record();
  r.step = 25;
  r.elapsed = 50; /* 2 s per step, 75 to go: 150 s */
  char buf[256];
  moai_progress_format_bar(&r, 20, buf, sizeof(buf));
  CU_ASSERT_STRING_EQUAL(buf, "  25/100 [#####---------------]  loss 3.2145  1234 tok/s  "
                              "ETA 0:02:30");
  /* A resumed run measures its own steps only. */
  r.first_step = 20;
  moai_progress_format_bar(&r, 20, buf, sizeof(buf));
  CU_ASSERT_PTR_NOT_NULL(strstr(buf, "ETA 0:12:30"));
}

static char *run_writer(moai_progress_options_t o, int steps, const char *jsonl) {
  char *text = NULL;
  size_t size = 0;
  o.out = open_memstream(&text, &size);
  o.jsonl = jsonl;
  moai_progress_t p;
  RT_ASSERT_OK(moai_progress_open(&o, &p));
  for (int i = 1; i <= steps; ++i) {
    moai_progress_record_t r = record();
    r.step = i;
    r.total_steps = steps;
    RT_ASSERT_OK(moai_progress_step(&p, &r));
  }
  RT_ASSERT_OK(moai_progress_close(&p));
  fclose(o.out);
  return text;
}

static int count_of(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)) != NULL; ++p) ++n;
  return n;
}

static void test_writer(void) {
  char dir[256], jsonl[300];
  CU_ASSERT_EQUAL_FATAL(rt_mkdtemp(dir, sizeof(dir), "progress-test"), 0);
  snprintf(jsonl, sizeof(jsonl), "%s/log.jsonl", dir);
  /* Lines every 3 steps and the last: 3, 6, 7. */
  char *text = run_writer((moai_progress_options_t){.log_every = 3}, 7, jsonl);
  CU_ASSERT_EQUAL(count_of(text, "\n"), 3);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "step 3/7 "));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "step 7/7 "));
  free(text);
  char *log = rt_read_file(jsonl, NULL);
  CU_ASSERT_EQUAL(count_of(log, "\n"), 7);
  CU_ASSERT_EQUAL(strncmp(log, "{\"step\":1,", 10), 0);
  free(log);
  /* The bar: redrawn with \r, one newline at the end; --log appends. */
  moai_progress_options_t o = {.bar = true, .jsonl_append = true};
  text = run_writer(o, 4, jsonl);
  CU_ASSERT_EQUAL(count_of(text, "\r"), 4);
  CU_ASSERT_EQUAL(count_of(text, "\n"), 1);
  free(text);
  log = rt_read_file(jsonl, NULL);
  CU_ASSERT_EQUAL(count_of(log, "\n"), 11);
  free(log);
  /* Quiet: nothing on the terminal. */
  text = run_writer((moai_progress_options_t){.bar = true, .quiet = true}, 4, NULL);
  CU_ASSERT_STRING_EQUAL(text, "");
  free(text);
  /* An unwritable log is an error naming it. */
  char bad[400];
  snprintf(bad, sizeof(bad), "%s/no/such/dir/log.jsonl", dir);
  moai_progress_t p;
  moai_progress_options_t ob = {.jsonl = bad};
  RT_EXPECT_ERROR(moai_progress_open(&ob, &p), MOAI_IO_ERROR, "no/such/dir/log.jsonl", NULL);
  rt_rm_tree(dir);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"line", test_line},
      {"json", test_json},
      {"bar", test_bar},
      {"writer", test_writer},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("train_progress", tests);
}
