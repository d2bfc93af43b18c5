/* Unit tests for runtime/train/checkpoint: round trip, atomic replacement,
 * the test-only crash hook, and every way a checkpoint can be refused
 * (corrupt, truncated, wrong shape, missing or unknown tensor, changed
 * frozen weight, another run's settings) without writing anything. */
#include <sys/wait.h>

#include "../../moai_run/runtime_test_util.h"
#include "io/safetensors.h"
#include "moai_test.h"
#include "train/checkpoint.h"

static char g_dir[256];

static int suite_init(void) { return rt_mkdtemp(g_dir, sizeof(g_dir), "ckpt-test"); }
static int suite_clean(void) {
  rt_rm_tree(g_dir);
  return 0;
}

/* A stand-in for a plan's tensors: W (trainable 2x3), F (frozen 3), and
 * AdamW-like state for W. */
typedef struct fake_plan_t {
  float w[6], f[3], grad[6], m[6];
  int64_t step;
  float lw;
  moai_plan_tensor_t t[6];
} fake_plan_t;

static void fake_init(fake_plan_t *p, float base) {
  for (int i = 0; i < 6; ++i) {
    p->w[i] = base + (float)i;
    p->grad[i] = 2.0f * (float)(i + 1);
    p->m[i] = base / 10 + (float)i;
  }
  for (int i = 0; i < 3; ++i) p->f[i] = 0.5f * (float)i;
  p->step = (int64_t)base;
  p->lw = 4.0f;
  moai_plan_tensor_t t[6] = {
      {.name = "W", .kind = MOAI_PLAN_TENSOR_TRAINABLE, .dtype = MOAI_ABI_F32, .rank = 2,
       .dims = {2, 3}, .nbytes = 24, .data = p->w, .writable = true},
      {.name = "F", .kind = MOAI_PLAN_TENSOR_WEIGHT, .dtype = MOAI_ABI_F32, .rank = 1,
       .dims = {3}, .nbytes = 12, .data = p->f},
      {.name = "grad.W", .param = "W", .kind = MOAI_PLAN_TENSOR_STATE, .role = MOAI_STATE_GRAD,
       .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 3}, .nbytes = 24, .data = p->grad,
       .writable = true},
      {.name = "optimizer.exp_avg.W", .param = "W", .kind = MOAI_PLAN_TENSOR_STATE,
       .role = MOAI_STATE_EXP_AVG, .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 3},
       .nbytes = 24, .data = p->m, .writable = true},
      {.name = "optimizer.step", .kind = MOAI_PLAN_TENSOR_STATE, .role = MOAI_STATE_STEP,
       .dtype = MOAI_ABI_I64, .rank = 0, .nbytes = 8, .data = &p->step, .writable = true},
      {.name = "optimizer.loss_weight", .kind = MOAI_PLAN_TENSOR_STATE,
       .role = MOAI_STATE_LOSS_WEIGHT, .dtype = MOAI_ABI_F32, .rank = 0, .nbytes = 4,
       .data = &p->lw, .writable = true},
  };
  memcpy(p->t, t, sizeof(t));
}

static moai_checkpoint_position_t position(int64_t step) {
  return (moai_checkpoint_position_t){.step = step, .epoch = 1, .position = 8, .seed = 42,
                                      .shuffle = true, .drop_last = true, .micro_batches = 2,
                                      .example_count = 20};
}

static void dir_of(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", g_dir, name);
}

static void file_of(char *buf, size_t size, const char *dir) {
  snprintf(buf, size, "%s/%s", dir, MOAI_CHECKPOINT_FILE);
}

static void test_round_trip(void) {
  char dir[300], file[400];
  dir_of(dir, sizeof(dir), "rt");
  fake_plan_t a, b;
  fake_init(&a, 7);
  moai_checkpoint_position_t pos = position(7);
  RT_ASSERT_OK(moai_checkpoint_save(dir, a.t, 6, &pos));
  /* The file: 4 tensors (no accumulators), metadata as documented. */
  file_of(file, sizeof(file), dir);
  moai_safetensors_t *st = NULL;
  RT_ASSERT_OK(moai_safetensors_open(file, moai_allocator_system(), &st));
  CU_ASSERT_FATAL(st != NULL);
  CU_ASSERT_EQUAL(moai_safetensors_count(st), 4);
  CU_ASSERT_PTR_NULL(moai_safetensors_find(st, "grad.W"));
  CU_ASSERT_PTR_NULL(moai_safetensors_find(st, "optimizer.loss_weight"));
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "format"), "moai-checkpoint");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "format_version"), "1");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "step"), "7");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "epoch"), "1");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "position"), "8");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "seed"), "42");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "shuffle"), "true");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "micro_batches"), "2");
  CU_ASSERT_STRING_EQUAL(moai_safetensors_metadata(st, "example_count"), "20");
  CU_ASSERT_EQUAL(strlen(moai_safetensors_metadata(st, "data_sha256")), 64);
  moai_safetensors_close(st);
  /* Load into a plan in another state: writable tensors restored, the
   * accumulators untouched. */
  fake_init(&b, 1);
  b.grad[0] = 123;
  moai_checkpoint_position_t got = {0};
  RT_ASSERT_OK(moai_checkpoint_load(dir, b.t, 6, &pos, moai_allocator_system(), &got));
  CU_ASSERT_EQUAL(memcmp(a.w, b.w, sizeof(a.w)), 0);
  CU_ASSERT_EQUAL(memcmp(a.m, b.m, sizeof(a.m)), 0);
  CU_ASSERT_EQUAL(b.step, 7);
  CU_ASSERT_EQUAL(b.grad[0], 123);
  CU_ASSERT_EQUAL(got.step, 7);
  CU_ASSERT_EQUAL(got.epoch, 1);
  CU_ASSERT_EQUAL(got.position, 8);
  CU_ASSERT_EQUAL(rt_count_entries(dir), 1);
}

static void test_atomic_replace(void) {
  char dir[300];
  dir_of(dir, sizeof(dir), "replace");
  fake_plan_t a, b, c;
  fake_init(&a, 3);
  fake_init(&b, 9);
  moai_checkpoint_position_t p3 = position(3), p9 = position(9);
  RT_ASSERT_OK(moai_checkpoint_save(dir, a.t, 6, &p3));
  RT_ASSERT_OK(moai_checkpoint_save(dir, b.t, 6, &p9));
  CU_ASSERT_EQUAL(rt_count_entries(dir), 1);
  fake_init(&c, 0);
  moai_checkpoint_position_t got;
  RT_ASSERT_OK(moai_checkpoint_load(dir, c.t, 6, &p9, moai_allocator_system(), &got));
  CU_ASSERT_EQUAL(got.step, 9);
  CU_ASSERT_EQUAL(memcmp(b.w, c.w, sizeof(b.w)), 0);
}

/* A process killed halfway through a save (the test-only hook) leaves the
 * previous checkpoint loadable and unchanged. */
static void test_crash_during_save_keeps_old(void) {
  char dir[300];
  dir_of(dir, sizeof(dir), "crash");
  fake_plan_t a;
  fake_init(&a, 3);
  moai_checkpoint_position_t p3 = position(3);
  RT_ASSERT_OK(moai_checkpoint_save(dir, a.t, 6, &p3));
  fflush(NULL);
  pid_t pid = fork();
  CU_ASSERT_FATAL(pid >= 0);
  if (pid == 0) {
    fake_plan_t b;
    fake_init(&b, 50);
    moai_checkpoint_position_t p50 = position(50);
    setenv(MOAI_CHECKPOINT_CRASH_ENV, "1", 1);
    moai_status_t s = moai_checkpoint_save(dir, b.t, 6, &p50);
    moai_status_free(s);
    _exit(0); /* the hook did not fire */
  }
  int wstatus = 0;
  CU_ASSERT_EQUAL(waitpid(pid, &wstatus, 0), pid);
  CU_ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 3);
  CU_ASSERT_EQUAL(rt_count_entries(dir), 2); /* the checkpoint and the dead temporary */
  fake_plan_t c;
  fake_init(&c, 0);
  moai_checkpoint_position_t got;
  RT_ASSERT_OK(moai_checkpoint_load(dir, c.t, 6, &p3, moai_allocator_system(), &got));
  CU_ASSERT_EQUAL(got.step, 3);
  CU_ASSERT_EQUAL(memcmp(a.w, c.w, sizeof(a.w)), 0);
  /* The next save replaces the checkpoint as usual. */
  RT_ASSERT_OK(moai_checkpoint_save(dir, c.t, 6, &p3));
}

/* Loads `dir` into a fresh fake plan expecting failure; checks nothing was
 * written. */
static void expect_refused(const char *dir, fake_plan_t *p, const moai_checkpoint_position_t *run,
                           moai_status_code_t code, const char *needle, const char *needle2) {
  fake_plan_t before = *p;
  moai_checkpoint_position_t got = {.step = -1};
  RT_EXPECT_ERROR(moai_checkpoint_load(dir, p->t, 6, run, moai_allocator_system(), &got), code,
                  needle, needle2);
  CU_ASSERT_EQUAL(got.step, -1);
  CU_ASSERT_EQUAL(memcmp(before.w, p->w, sizeof(p->w)), 0);
  CU_ASSERT_EQUAL(memcmp(before.m, p->m, sizeof(p->m)), 0);
  CU_ASSERT_EQUAL(before.step, p->step);
}

static void test_corrupt_and_truncated(void) {
  char dir[300], file[400];
  dir_of(dir, sizeof(dir), "corrupt");
  file_of(file, sizeof(file), dir);
  fake_plan_t a, c;
  fake_init(&a, 3);
  moai_checkpoint_position_t p = position(3);
  RT_ASSERT_OK(moai_checkpoint_save(dir, a.t, 6, &p));
  fake_init(&c, 0);
  CU_ASSERT_EQUAL(rt_flip_byte(file, -5, 0x40), 0);
  expect_refused(dir, &c, &p, MOAI_DATA_LOSS, "checkpoint.safetensors: the data does not match "
                 "its data_sha256", "corrupt");
  CU_ASSERT_EQUAL(rt_flip_byte(file, -5, 0x40), 0);
  RT_ASSERT_OK(moai_checkpoint_save(dir, a.t, 6, &p));
  size_t size = 0;
  char *bytes = rt_read_file(file, &size);
  CU_ASSERT_EQUAL_FATAL(rt_write_file(file, bytes, size - 10), 0);
  free(bytes);
  expect_refused(dir, &c, &p, MOAI_DATA_LOSS, "checkpoint.safetensors", NULL);
  char empty[300];
  dir_of(empty, sizeof(empty), "empty");
  mkdir(empty, 0777);
  expect_refused(empty, &c, &p, MOAI_NOT_FOUND, "checkpoint.safetensors", NULL);
}

static void test_mismatched_tensors(void) {
  char dir[300];
  dir_of(dir, sizeof(dir), "mismatch");
  fake_plan_t a, c;
  fake_init(&a, 3);
  moai_checkpoint_position_t p = position(3);
  RT_ASSERT_OK(moai_checkpoint_save(dir, a.t, 6, &p));
  /* Wrong shape. */
  fake_init(&c, 0);
  c.t[0].dims[0] = 3;
  c.t[0].dims[1] = 2;
  expect_refused(dir, &c, &p, MOAI_INVALID_ARGUMENT,
                 "checkpoint.safetensors: tensor 'W' is float32 2x3, the plan's is float32 3x2",
                 NULL);
  /* Wrong dtype. */
  fake_init(&c, 0);
  c.t[3].dtype = MOAI_ABI_F16;
  c.t[3].nbytes = 12;
  expect_refused(dir, &c, &p, MOAI_INVALID_ARGUMENT, "tensor 'optimizer.exp_avg.W' is float32 2x3",
                 "the plan's is float16 2x3");
  /* A tensor the plan has and the checkpoint lacks, and one the plan lacks. */
  fake_init(&c, 0);
  c.t[3].name = "optimizer.exp_avg.V";
  expect_refused(dir, &c, &p, MOAI_NOT_FOUND, "no tensor 'optimizer.exp_avg.V' (the plan's "
                 "state tensor)", NULL);
  fake_init(&c, 0);
  c.t[3].kind = MOAI_PLAN_TENSOR_STATE;
  c.t[3].role = MOAI_STATE_GRAD; /* not held: the file's copy is now unknown */
  expect_refused(dir, &c, &p, MOAI_INVALID_ARGUMENT, "tensor 'optimizer.exp_avg.W' is not a "
                 "weight or state tensor of the plan", NULL);
  /* A frozen weight that changed. */
  fake_init(&c, 0);
  c.f[1] = 99;
  expect_refused(dir, &c, &p, MOAI_FAILED_PRECONDITION, "frozen weight 'F' differs", NULL);
}

static void test_other_run_settings(void) {
  char dir[300];
  dir_of(dir, sizeof(dir), "settings");
  fake_plan_t a, c;
  fake_init(&a, 3);
  moai_checkpoint_position_t p = position(3);
  RT_ASSERT_OK(moai_checkpoint_save(dir, a.t, 6, &p));
  fake_init(&c, 0);
  moai_checkpoint_position_t r = p;
  r.seed = 43;
  expect_refused(dir, &c, &r, MOAI_FAILED_PRECONDITION, "--seed 42, this run has --seed 43", NULL);
  r = p;
  r.example_count = 21;
  expect_refused(dir, &c, &r, MOAI_FAILED_PRECONDITION, "saved by a run on 20 examples", "21");
  r = p;
  r.shuffle = false;
  expect_refused(dir, &c, &r, MOAI_FAILED_PRECONDITION, "with --shuffle", NULL);
  r = p;
  r.micro_batches = 1;
  expect_refused(dir, &c, &r, MOAI_FAILED_PRECONDITION, "2 micro-batches", NULL);
  r = p;
  r.drop_last = false;
  expect_refused(dir, &c, &r, MOAI_FAILED_PRECONDITION, "--no-drop-last", NULL);
  /* The metadata's step and optimizer.step disagree. */
  moai_checkpoint_position_t p5 = position(5);
  RT_ASSERT_OK(moai_checkpoint_save(dir, a.t, 6, &p5));
  expect_refused(dir, &c, &p, MOAI_DATA_LOSS, "'optimizer.step' holds step 3",
                 "metadata says step 5");
}

static void test_gradients_write(void) {
  char path[300];
  dir_of(path, sizeof(path), "grads.safetensors");
  fake_plan_t a;
  fake_init(&a, 3);
  RT_ASSERT_OK(moai_gradients_write(path, a.t, 6));
  moai_safetensors_t *st = NULL;
  RT_ASSERT_OK(moai_safetensors_open(path, moai_allocator_system(), &st));
  CU_ASSERT_FATAL(st != NULL);
  CU_ASSERT_EQUAL(moai_safetensors_count(st), 1);
  const moai_safetensors_entry_t *e = moai_safetensors_find(st, "W");
  CU_ASSERT_FATAL(e != NULL);
  CU_ASSERT_EQUAL(e->dtype, MOAI_ABI_F32);
  CU_ASSERT_EQUAL(e->rank, 2);
  const float *g = (const float *)(moai_safetensors_data(st) + e->offset);
  for (int i = 0; i < 6; ++i) CU_ASSERT_DOUBLE_EQUAL(g[i], 2.0 * (i + 1) / 4.0, 0);
  moai_safetensors_close(st);
  a.lw = 0;
  RT_EXPECT_ERROR(moai_gradients_write(path, a.t, 6), MOAI_FAILED_PRECONDITION,
                  "loss weight is 0", NULL);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"round_trip", test_round_trip},
      {"atomic_replace", test_atomic_replace},
      {"crash_during_save_keeps_old", test_crash_during_save_keeps_old},
      {"corrupt_and_truncated", test_corrupt_and_truncated},
      {"mismatched_tensors", test_mismatched_tensors},
      {"other_run_settings", test_other_run_settings},
      {"gradients_write", test_gradients_write},
      CU_TEST_INFO_NULL,
  };
  CU_pSuite suite = CU_add_suite("train_checkpoint", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
