/* End to end: hand-written post-optimizer modules (linear_adamw.mlir,
 * linear_sgd.mlir) compiled by moaicc into plans (the training.compile
 * fixture), opened with the loader, trained for several steps with
 * moai_plan_run + moai_plan_run_update, and compared with PyTorch 1.13
 * (data/linear_*.bin from gen_reference.py): the loss of every micro-batch
 * and W after every step. Also the tensor listing (trainable W in the
 * persistent region, frozen B read-only, the optimizer state) and tampered
 * manifests. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/plan.h"
#include "moai_test.h"

enum { ROWS = 5, STEPS = 5, NW = 12 };

static void plan_dir(const char *name, char *buf, size_t size) {
  snprintf(buf, size, "%s/tests/training/%s.plan", moai_test_binary_dir(), name);
}

static float *read_floats(const char *name, size_t count) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tests/training/data/%s", moai_test_source_dir(), name);
  FILE *f = fopen(path, "rb");
  float *data = malloc(count * sizeof(float));
  size_t got = f && data ? fread(data, sizeof(float), count + 1, f) : 0;
  if (f) fclose(f);
  if (got != count) {
    free(data);
    return NULL;
  }
  return data;
}

static double rel(double got, double want) { return fabs(got - want) / fmax(fabs(want), 1e-30); }

/* Trains plan `name` for STEPS steps of `micro` micro-batches and compares
 * with data/linear_<name>.bin. */
static void train_case(const char *name, int micro, double tol_w, double tol_loss) {
  char dir[1024], ref_name[64];
  plan_dir(name, dir, sizeof(dir));
  snprintf(ref_name, sizeof(ref_name), "linear_%s.bin", name);
  size_t per_mb = ROWS * 4 + ROWS * 3;
  size_t count = STEPS * micro * per_mb + STEPS * micro + STEPS * NW;
  float *ref = read_floats(ref_name, count);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
  const float *losses = ref + STEPS * micro * per_mb, *weights = losses + STEPS * micro;
  moai_plan_t *plan = NULL;
  moai_status_t s = moai_plan_open(dir, NULL, moai_allocator_system(), &plan);
  if (s) printf("\n%s\n", moai_status_message(s));
  CU_ASSERT_PTR_NULL_FATAL(s);
  const moai_manifest_training_t *tr = moai_plan_training(plan);
  CU_ASSERT_PTR_NOT_NULL_FATAL(tr);
  CU_ASSERT_EQUAL(tr->micro_batches, (uint32_t)micro);
  CU_ASSERT_STRING_EQUAL(tr->loss_output, "loss");
  CU_ASSERT_EQUAL(tr->trainable_count, 1);
  long wi = moai_plan_find_tensor(plan, "W");
  CU_ASSERT_FATAL(wi >= 0);
  moai_plan_tensor_t W;
  CU_ASSERT_FATAL(moai_plan_tensor(plan, (size_t)wi, &W));
  CU_ASSERT(W.writable && W.kind == MOAI_PLAN_TENSOR_TRAINABLE && W.nbytes == NW * 4);
  int64_t x_dims[2] = {ROWS, 4}, t_dims[2] = {ROWS, 3};
  double worst_w = 0, worst_loss = 0;
  for (int step = 0; step < STEPS; ++step) {
    for (int k = 0; k < micro; ++k) {
      const float *x = ref + (size_t)(step * micro + k) * per_mb, *t = x + ROWS * 4;
      CU_ASSERT_PTR_NULL(moai_plan_set_input(plan, "x", MOAI_ABI_F32, 2, x_dims, x));
      CU_ASSERT_PTR_NULL(moai_plan_set_input(plan, "t", MOAI_ABI_F32, 2, t_dims, t));
      s = moai_plan_run(plan, 2);
      CU_ASSERT_PTR_NULL_FATAL(s);
      const moai_tensor_desc_t *d;
      const void *loss;
      CU_ASSERT_PTR_NULL_FATAL(moai_plan_output(plan, 0, &d, &loss));
      double r = rel(*(const float *)loss, losses[step * micro + k]);
      if (r > worst_loss) worst_loss = r;
    }
    s = moai_plan_run_update(plan, 3);
    if (s) printf("\n%s\n", moai_status_message(s));
    CU_ASSERT_PTR_NULL_FATAL(s);
    /* Relative to the largest weight: an element near zero after an SGD
     * step carries the rounding of the larger terms that cancelled in it
     * (the matmul's summation order differs from torch's). */
    double scale = 0;
    for (int i = 0; i < NW; ++i) scale = fmax(scale, fabs(weights[step * NW + i]));
    for (int i = 0; i < NW; ++i) {
      double r = fabs(((const float *)W.data)[i] - weights[step * NW + i]) / scale;
      if (r > worst_w) worst_w = r;
    }
  }
  printf("\n  %s: %d steps x %d micro-batches, worst error vs torch: W %.3g (of max |W|), "
         "loss %.3g (relative) ", name, STEPS, micro, worst_w, worst_loss);
  CU_ASSERT(worst_w <= tol_w);
  CU_ASSERT(worst_loss <= tol_loss);
  /* The step counter and the emptied accumulators. */
  moai_plan_tensor_t st;
  CU_ASSERT_FATAL(moai_plan_tensor(plan, (size_t)moai_plan_find_tensor(plan, "optimizer.step"),
                                   &st));
  CU_ASSERT(st.kind == MOAI_PLAN_TENSOR_STATE && st.role == MOAI_STATE_STEP);
  CU_ASSERT_EQUAL(*(const int64_t *)st.data, STEPS);
  CU_ASSERT_FATAL(moai_plan_tensor(plan, (size_t)moai_plan_find_tensor(plan, "grad.W"), &st));
  CU_ASSERT(st.role == MOAI_STATE_GRAD && st.param && strcmp(st.param, "W") == 0);
  for (int i = 0; i < NW; ++i) CU_ASSERT_EQUAL(((const float *)st.data)[i], 0.0f);
  moai_plan_close(plan);
  free(ref);
}

static void test_adamw(void) { train_case("adamw", 2, 1e-6, 1e-6); }
static void test_sgd(void) { train_case("sgd", 1, 1e-6, 1e-6); }

/* Weights in table order (W trainable and writable, B frozen and read-only),
 * then the state. */
static void test_tensor_listing(void) {
  char dir[1024];
  plan_dir("sgd", dir, sizeof(dir));
  moai_plan_t *plan = NULL;
  CU_ASSERT_PTR_NULL_FATAL(moai_plan_open(dir, NULL, moai_allocator_system(), &plan));
  CU_ASSERT_EQUAL(moai_plan_tensor_count(plan), 2 + 4);
  moai_plan_tensor_t t;
  const char *names[] = {"W", "B", "grad.W", "optimizer.loss_weight",
                         "optimizer.momentum_buffer.W", "optimizer.step"};
  for (size_t i = 0; i < 6; ++i) {
    CU_ASSERT_FATAL(moai_plan_tensor(plan, i, &t));
    CU_ASSERT_STRING_EQUAL(t.name, names[i]);
    CU_ASSERT_EQUAL(t.writable, i != 1);
  }
  CU_ASSERT_FALSE(moai_plan_tensor(plan, 6, &t));
  CU_ASSERT_EQUAL(moai_plan_find_tensor(plan, "nope"), -1);
  /* B holds its initial value from the weights file, W too before any step. */
  float *w0 = read_floats("linear_weights.bin", 15);
  CU_ASSERT_FATAL(moai_plan_tensor(plan, 1, &t));
  CU_ASSERT_EQUAL(memcmp(t.data, w0 + 12, 12), 0);
  CU_ASSERT_FATAL(moai_plan_tensor(plan, 0, &t));
  CU_ASSERT_EQUAL(memcmp(t.data, w0, 48), 0);
  free(w0);
  moai_plan_close(plan);
}

/* Copies plan `name` to a scratch directory and replaces `from` by `to` in
 * its manifest; the loader must refuse it naming the file and field. */
static void expect_tampered(const char *from, const char *to, const char *want) {
  char src[1024], dst[1100], cmd[4096];
  plan_dir("adamw", src, sizeof(src));
  snprintf(dst, sizeof(dst), "%s.tampered", src);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -r '%s' '%s'", dst, src, dst);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  char path[1200];
  snprintf(path, sizeof(path), "%s/manifest.json", dst);
  FILE *f = fopen(path, "rb");
  static char text[1 << 16];
  size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
  if (f) fclose(f);
  text[n] = '\0';
  char *at = strstr(text, from);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  static char edited[1 << 16];
  snprintf(edited, sizeof(edited), "%.*s%s%s", (int)(at - text), text, to, at + strlen(from));
  f = fopen(path, "wb");
  fputs(edited, f);
  fclose(f);
  moai_plan_t *plan = NULL;
  moai_status_t s = moai_plan_open(dst, NULL, moai_allocator_system(), &plan);
  CU_ASSERT_PTR_NOT_NULL(s);
  if (s) {
    const char *msg = moai_status_message(s);
    if (!strstr(msg, want) || !strstr(msg, "manifest.json"))
      printf("\nunexpected message: %s\n", msg);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "manifest.json"));
    moai_status_free(s);
  }
  moai_plan_close(plan);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dst);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_tampered_manifest(void) {
  expect_tampered("\"persist_bytes\": 384", "\"persist_bytes\": 320",
                  "'training.persist_bytes' is 320");
  expect_tampered("\"trainable\": [\n      \"W\"\n    ]", "\"trainable\": [\"B\"]",
                  "'training.trainable' does not list 'W'");
  expect_tampered("\"micro_batches\": 2", "\"micro_batches\": 0",
                  "'training.micro_batches' must be at least 1");
  expect_tampered("\"optimizer\": \"adamw\"", "\"optimizer\": \"adam\"",
                  "'training.optimizer' must be");
  expect_tampered("\"loss_output\": \"loss\"", "\"loss_output\": \"nope\"",
                  "'training.loss_output' must name one of 'outputs'");
  expect_tampered("\"lr\": 0.01,", "\"lr\": 0.01, \"extra\": 1,", "unknown field 'training.extra'");
}

/* The training object removed from a training plan. */
static void test_training_removed(void) {
  char src[1024], dst[1100], cmd[8192];
  plan_dir("sgd", src, sizeof(src));
  snprintf(dst, sizeof(dst), "%s.untrained", src);
  snprintf(cmd, sizeof(cmd),
           "rm -rf '%s' && cp -r '%s' '%s' && /usr/bin/python3 -c \"import json,sys; "
           "p=sys.argv[1]+'/manifest.json'; m=json.load(open(p)); m['training']=None; "
           "json.dump(m, open(p,'w'))\" '%s'", dst, src, dst, dst);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  moai_plan_t *plan = NULL;
  moai_status_t s = moai_plan_open(dst, NULL, moai_allocator_system(), &plan);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  const char *msg = moai_status_message(s);
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "manifest.json: 'training' is null"));
  CU_ASSERT_PTR_NOT_NULL(strstr(msg, "training binary"));
  moai_status_free(s);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dst);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"adamw, cosine schedule, 2 micro-batches vs torch", test_adamw},
      {"sgd nesterov + frozen weight vs torch", test_sgd},
      {"tensor listing", test_tensor_listing},
      {"tampered training section", test_tampered_manifest},
      {"training object removed", test_training_removed},
      {NULL, NULL},
  };
  moai_test_add_suite("train_plan", tests);
}
