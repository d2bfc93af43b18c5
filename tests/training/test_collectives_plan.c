/* End to end: collectives and the pipeline forward entry (ABI 3).
 * tp_pipeline.mlir (one tensor-parallel rank with moai.tp_copy, three
 * moai.all_reduce and moai.pipeline = {send = "h"}) is compiled by moaicc
 * (fixture training.compile_collectives) and run through the loader with a
 * fake all-reduce hook standing in for two identical ranks: a sum doubles
 * the buffer, a max leaves it. Values are checked against the formulas of
 * the module computed here in double; moai_plan_run_forward against the
 * full step; and the failures: no hook bound, a failing hook, other outputs
 * after a forward, a plan without a forward entry. Its grad_ready op calls
 * the grad-ready hook once per step, after the gradient is accumulated. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader/plan.h"
#include "moai_test.h"

enum { ROWS = 5, IN = 4, OUT = 3 };

/* What the fake group saw, and what it does. */
typedef struct fake_group_t {
  int calls;
  int ops[8];
  size_t counts[8];
  int bad_args; /* calls with a group other than tp or a dtype other than f32 */
  bool fail;
} fake_group_t;

static moai_status_t fake_allreduce(void *user, int group, int32_t dtype, int op, void *data,
                                    size_t count) {
  fake_group_t *g = user;
  if (g->fail) return MOAI_STATUS(MOAI_IO_ERROR, "peer 1 hung up");
  if (g->calls < 8) {
    g->ops[g->calls] = op;
    g->counts[g->calls] = count;
  }
  g->calls++;
  if (group != 0 || dtype != MOAI_ABI_F32) g->bad_args++;
  /* Two ranks holding the same values: a sum doubles them, a max keeps them. */
  if (op == 0)
    for (size_t i = 0; i < count; ++i) ((float *)data)[i] *= 2.0f;
  return moai_ok_status();
}

typedef struct fixture_t {
  float W[IN * OUT], B[OUT], x[ROWS * IN], t[ROWS * OUT];
  /* The module's values for those, in double. */
  double h[ROWS * OUT], d[ROWS * OUT], loss, W_next[IN * OUT];
} fixture_t;

static bool fixture_init(fixture_t *f) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tests/training/data/linear_weights.bin",
           moai_test_source_dir());
  FILE *file = fopen(path, "rb");
  if (!file) return false;
  bool ok = fread(f->W, sizeof(float), IN * OUT, file) == IN * OUT &&
            fread(f->B, sizeof(float), OUT, file) == OUT;
  fclose(file);
  for (int i = 0; i < ROWS * IN; ++i) f->x[i] = (float)((i * 7) % 11) / 10.0f - 0.4f;
  for (int i = 0; i < ROWS * OUT; ++i) f->t[i] = (float)((i * 5) % 7) / 5.0f - 0.6f;
  f->loss = 0;
  for (int r = 0; r < ROWS; ++r)
    for (int c = 0; c < OUT; ++c) {
      double xw = 0;
      for (int k = 0; k < IN; ++k) xw += (double)f->x[r * IN + k] * f->W[k * OUT + c];
      f->h[r * OUT + c] = 2 * xw; /* all_reduce sum over two equal ranks */
      f->d[r * OUT + c] = f->h[r * OUT + c] + f->B[c] - f->t[r * OUT + c];
      f->loss += f->d[r * OUT + c] * f->d[r * OUT + c] / (ROWS * OUT);
    }
  for (int k = 0; k < IN; ++k)
    for (int c = 0; c < OUT; ++c) {
      double g = 0;
      for (int r = 0; r < ROWS; ++r) g += (double)f->x[r * IN + k] * f->d[r * OUT + c] * 2 / 15;
      f->W_next[k * OUT + c] = f->W[k * OUT + c] - 0.05 * 2 * g; /* SGD, gW summed */
    }
  return ok;
}

static void plan_dir(const char *name, char *buf, size_t size) {
  snprintf(buf, size, "%s/tests/training/%s.plan", moai_test_binary_dir(), name);
}

static moai_plan_t *open_plan(const char *name) {
  char dir[1024];
  plan_dir(name, dir, sizeof(dir));
  moai_plan_t *plan = NULL;
  moai_status_t s = moai_plan_open(dir, NULL, moai_allocator_system(), &plan);
  if (s) printf("\n%s\n", moai_status_message(s));
  moai_status_free(s);
  return plan;
}

static void set_inputs(moai_plan_t *plan, const fixture_t *f) {
  int64_t x_dims[2] = {ROWS, IN}, t_dims[2] = {ROWS, OUT};
  CU_ASSERT_PTR_NULL(moai_plan_set_input(plan, "x", MOAI_ABI_F32, 2, x_dims, f->x));
  CU_ASSERT_PTR_NULL(moai_plan_set_input(plan, "t", MOAI_ABI_F32, 2, t_dims, f->t));
}

static long output_index(const moai_plan_t *plan, const char *name) {
  for (size_t i = 0; i < moai_plan_output_count(plan); ++i)
    if (strcmp(moai_plan_output_desc(plan, i)->name, name) == 0) return (long)i;
  return -1;
}

static const float *output(const moai_plan_t *plan, const char *name) {
  long i = output_index(plan, name);
  const moai_tensor_desc_t *desc;
  const void *data = NULL;
  if (i < 0 || moai_plan_output(plan, (size_t)i, &desc, &data)) return NULL;
  return data;
}

static double worst_rel(const float *got, const double *want, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    double r = fabs(got[i] - want[i]) / fmax(fabs(want[i]), 1e-6);
    if (r > worst) worst = r;
  }
  return worst;
}

/* Expects `s` to fail with `code` and a message holding `needle`. */
static void expect_error(moai_status_t s, moai_status_code_t code, const char *needle) {
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  CU_ASSERT_EQUAL(moai_status_code(s), code);
  if (!strstr(moai_status_message(s), needle))
    printf("\nwanted '%s' in: %s\n", needle, moai_status_message(s));
  CU_ASSERT_PTR_NOT_NULL(strstr(moai_status_message(s), needle));
  moai_status_free(s);
}

/* The forward entry computes h as the step does; the step's all-reduces
 * (sum in the forward, max, sum in the backward) reach the hook in order. */
static void test_forward_and_step(void) {
  fixture_t f;
  CU_ASSERT_FATAL(fixture_init(&f));
  moai_plan_t *plan = open_plan("tp");
  CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
  fake_group_t group = {0};
  moai_plan_set_allreduce(plan, fake_allreduce, &group);
  CU_ASSERT_EQUAL(moai_plan_forward_output(plan), output_index(plan, "h"));
  CU_ASSERT(output_index(plan, "h") >= 0);

  expect_error(moai_plan_run_forward(plan, 2), MOAI_FAILED_PRECONDITION, "input 'x' is not set");
  set_inputs(plan, &f);
  moai_status_t s = moai_plan_run_forward(plan, 2);
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_EQUAL(group.calls, 1); /* only h's all-reduce */
  CU_ASSERT_EQUAL(group.ops[0], 0);
  CU_ASSERT_EQUAL(group.counts[0], ROWS * OUT);
  const float *h = output(plan, "h");
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT(worst_rel(h, f.h, ROWS * OUT) < 1e-5);
  float h_forward[ROWS * OUT];
  memcpy(h_forward, h, sizeof(h_forward));
  const moai_tensor_desc_t *desc;
  const void *data;
  expect_error(moai_plan_output(plan, (size_t)output_index(plan, "loss"), &desc, &data),
               MOAI_FAILED_PRECONDITION,
               "only 'h' is computed by the forward; run the step for the others");
  /* The forward consumed the inputs, like a step. */
  expect_error(moai_plan_run(plan, 2), MOAI_FAILED_PRECONDITION, "is not set");

  set_inputs(plan, &f);
  s = moai_plan_run(plan, 3);
  CU_ASSERT_PTR_NULL_FATAL(s);
  CU_ASSERT_EQUAL(group.calls, 4);
  CU_ASSERT(group.ops[1] == 0 && group.counts[1] == ROWS * OUT); /* h */
  CU_ASSERT(group.ops[2] == 1 && group.counts[2] == ROWS * OUT); /* dmax */
  CU_ASSERT(group.ops[3] == 0 && group.counts[3] == IN * OUT);   /* dW */
  CU_ASSERT_EQUAL(group.bad_args, 0);
  h = output(plan, "h");
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  CU_ASSERT_EQUAL(memcmp(h, h_forward, sizeof(h_forward)), 0);
  const float *loss = output(plan, "loss"), *dmax = output(plan, "dmax");
  CU_ASSERT_PTR_NOT_NULL_FATAL(loss);
  CU_ASSERT_PTR_NOT_NULL_FATAL(dmax);
  CU_ASSERT(fabs(*loss - f.loss) / f.loss < 1e-5);
  /* d lives on after its max-reduce: the kernel copied it first. */
  CU_ASSERT(worst_rel(dmax, f.d, ROWS * OUT) < 1e-5);

  s = moai_plan_run_update(plan, 2);
  CU_ASSERT_PTR_NULL_FATAL(s);
  long wi = moai_plan_find_tensor(plan, "W");
  CU_ASSERT_FATAL(wi >= 0);
  moai_plan_tensor_t W;
  CU_ASSERT_FATAL(moai_plan_tensor(plan, (size_t)wi, &W));
  double worst = worst_rel(W.data, f.W_next, IN * OUT);
  if (worst >= 1e-5) printf("\nW after one step: worst relative error %g\n", worst);
  CU_ASSERT(worst < 1e-5);
  moai_plan_close(plan);
}

/* An all-reduce without a bound group, or whose group fails, fails the run
 * with the op and the reason. */
static void test_hook_failures(void) {
  fixture_t f;
  CU_ASSERT_FATAL(fixture_init(&f));
  moai_plan_t *plan = open_plan("tp");
  CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
  const char *unbound =
      "all_reduce over the tp group, but no group is bound: run multi-device plans with moai-run";
  set_inputs(plan, &f);
  expect_error(moai_plan_run(plan, 2), MOAI_UNIMPLEMENTED, unbound);
  set_inputs(plan, &f);
  expect_error(moai_plan_run_forward(plan, 2), MOAI_UNIMPLEMENTED, unbound);
  fake_group_t group = {.fail = true};
  moai_plan_set_allreduce(plan, fake_allreduce, &group);
  set_inputs(plan, &f);
  expect_error(moai_plan_run(plan, 2), MOAI_UNIMPLEMENTED,
               "all_reduce over the tp group failed: ");
  set_inputs(plan, &f);
  expect_error(moai_plan_run(plan, 1), MOAI_UNIMPLEMENTED, "peer 1 hung up");
  /* Unbinding again restores the first error. */
  moai_plan_set_allreduce(plan, NULL, &group);
  set_inputs(plan, &f);
  expect_error(moai_plan_run(plan, 2), MOAI_UNIMPLEMENTED, "no group is bound");
  moai_plan_close(plan);
}

/* A plan that is no pipeline stage has no forward entry. */
static void test_no_forward(void) {
  moai_plan_t *plan = open_plan("sgd");
  CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
  CU_ASSERT_EQUAL(moai_plan_forward_output(plan), -1);
  expect_error(moai_plan_run_forward(plan, 1), MOAI_FAILED_PRECONDITION,
               "the plan has no forward entry");
  moai_plan_close(plan);
}

/* What the grad-ready hook saw: its buckets, and grad.W at the call. */
typedef struct fake_ready_t {
  const float *grad; /* grad.W's data */
  int calls, bucket;
  float grad_at_call[IN * OUT];
  bool fail;
} fake_ready_t;

static moai_status_t fake_grad_ready(void *user, int bucket) {
  fake_ready_t *r = user;
  if (r->fail) return MOAI_STATUS(MOAI_FAILED_PRECONDITION, "the gradient thread stopped");
  r->calls++;
  r->bucket = bucket;
  memcpy(r->grad_at_call, r->grad, sizeof(r->grad_at_call));
  return moai_ok_status();
}

/* grad.W is bucket 0; the hook gets it once per step, final; unbound, the
 * op does nothing; a failing hook fails the step. */
static void test_grad_ready(void) {
  fixture_t f;
  CU_ASSERT_FATAL(fixture_init(&f));
  moai_plan_t *plan = open_plan("tp");
  CU_ASSERT_PTR_NOT_NULL_FATAL(plan);
  fake_group_t group = {0};
  moai_plan_set_allreduce(plan, fake_allreduce, &group);
  CU_ASSERT_EQUAL(moai_plan_grad_bucket_count(plan), 1);
  long gi = moai_plan_find_tensor(plan, "grad.W");
  long li = moai_plan_find_tensor(plan, "optimizer.loss_weight");
  long wi = moai_plan_find_tensor(plan, "W");
  CU_ASSERT_FATAL(gi >= 0 && li >= 0 && wi >= 0);
  CU_ASSERT_EQUAL(moai_plan_grad_bucket(plan, (size_t)gi), 0);
  CU_ASSERT_EQUAL(moai_plan_grad_bucket(plan, (size_t)li), -1);
  CU_ASSERT_EQUAL(moai_plan_grad_bucket(plan, (size_t)wi), -1);
  CU_ASSERT_EQUAL(moai_plan_grad_bucket(plan, moai_plan_tensor_count(plan)), -1);
  moai_plan_tensor_t g;
  CU_ASSERT_FATAL(moai_plan_tensor(plan, (size_t)gi, &g));

  set_inputs(plan, &f); /* no hook: runs as on one rank */
  CU_ASSERT_PTR_NULL_FATAL(moai_plan_run(plan, 2));
  fake_ready_t ready = {.grad = g.data, .bucket = -1};
  moai_plan_set_grad_ready(plan, fake_grad_ready, &ready);
  set_inputs(plan, &f);
  CU_ASSERT_PTR_NULL_FATAL(moai_plan_run(plan, 3));
  CU_ASSERT_EQUAL(ready.calls, 1);
  CU_ASSERT_EQUAL(ready.bucket, 0);
  /* Handed over final: two steps' gradients, nothing added after the call. */
  CU_ASSERT_EQUAL(memcmp(ready.grad_at_call, g.data, sizeof(ready.grad_at_call)), 0);
  bool nonzero = false;
  for (int i = 0; i < IN * OUT; ++i) nonzero |= ready.grad_at_call[i] != 0;
  CU_ASSERT(nonzero);
  /* The forward entry stops before the backward: no call. */
  set_inputs(plan, &f);
  CU_ASSERT_PTR_NULL_FATAL(moai_plan_run_forward(plan, 2));
  CU_ASSERT_EQUAL(ready.calls, 1);
  ready.fail = true;
  set_inputs(plan, &f);
  expect_error(moai_plan_run(plan, 2), MOAI_UNIMPLEMENTED,
               "grad_ready: handing over gradient bucket 0 failed: the gradient thread stopped");
  moai_plan_set_grad_ready(plan, NULL, &ready);
  set_inputs(plan, &f);
  CU_ASSERT_PTR_NULL(moai_plan_run(plan, 2));
  moai_plan_close(plan);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"forward entry and step with a fake tp group of two", test_forward_and_step},
      {"no group bound, failing group", test_hook_failures},
      {"no forward entry", test_no_forward},
      {"grad_ready hook", test_grad_ready},
      {NULL, NULL},
  };
  moai_test_add_suite("collectives_plan", tests);
}
