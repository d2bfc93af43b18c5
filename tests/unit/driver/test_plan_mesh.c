/* Unit tests for multi-device plans: moai_plan_write_mesh on hand-written
 * device modules (a variant of tests/training/linear_adamw.mlir whose
 * trained weight W is a tensor-parallel shard, or whose devices are two
 * pipeline stages), then moai_plan_open_device on each device, and every
 * edit of the top manifest or a device manifest that must be refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../moai_run/runtime_test_util.h"
#include "driver/compile.h"
#include "driver/pipeline.h"
#include "ir/dialect.h"
#include "loader/manifest.h"
#include "plan_mesh_open.h"
#include "moai_test.h"

static MlirContext g_ctx;
static moai_diag_sink_t g_diag;
static char g_root[256], g_data[320];
static float g_w[12], g_b[3]; /* W (4x3) and B, as stored */

static int suite_init(void) {
  if (rt_mkdtemp(g_root, sizeof(g_root), "plan-mesh") != 0) return 1;
  for (int i = 0; i < 12; ++i) g_w[i] = 0.5f * (float)(i + 1);
  for (int i = 0; i < 3; ++i) g_b[i] = -0.25f * (float)(i + 1);
  snprintf(g_data, sizeof(g_data), "%s/weights.bin", g_root);
  FILE *f = fopen(g_data, "wb");
  if (!f) return 1;
  fwrite(g_w, sizeof(float), 12, f);
  fwrite(g_b, sizeof(float), 3, f);
  fclose(f);
  moai_status_t s = moai_context_create(false, &g_ctx);
  if (s) {
    moai_status_free(s);
    return 1;
  }
  moai_diag_attach(g_ctx, &g_diag, NULL);
  return 0;
}

static int suite_clean(void) {
  moai_diag_detach(&g_diag);
  mlirContextDestroy(g_ctx);
  rt_rm_tree(g_root);
  return 0;
}

/* y = x W + B, loss = mean((y - t)^2), W trained by AdamW. W is K rows
 * (K = 4, or 2 as shard `index` of 2 along axis 0); `module_attrs` are
 * added to the module's (moai.pipeline). Compiled through
 * MOAI_DEFAULT_PIPELINE. */
static MlirModule device_module(int k_rows, int shard_index, const char *module_attrs) {
  char shard[128] = "";
  if (k_rows != 4)
    snprintf(shard, sizeof(shard), ", shard_axis = 0 : i64, shard_index = %d : i64, "
             "shard_count = 2 : i64", shard_index);
  char w_attrs[512];
  snprintf(w_attrs, sizeof(w_attrs), "name = \"W\", trainable = 1 : i64, storage = \"raw\", "
           "file = \"%s\", offset = 0 : i64, length = 48 : i64%s", g_data, shard);
  size_t cap = 8192;
  char *text = malloc(cap);
  int K = k_rows;
  snprintf(text, cap,
    "module attributes {moai.training = {optimizer = \"adamw\", lr = 1.0e-02 : f64, "
    "micro_batches = 1 : i64, loss_weight_kind = \"one\"}%s} {\n"
    "func.func @main(%%x: tensor<5x%dxf32> {moai.name = \"x\"}, %%t: tensor<5x3xf32> "
    "{moai.name = \"t\"}) -> (tensor<f32> {moai.name = \"loss\"}, tensor<f32> "
    "{moai.name = \"loss_weight\"}) {\n"
    "  %%W = \"moai.weight\"() {%s} : () -> tensor<%dx3xf32>\n"
    "  %%B = \"moai.weight\"() {name = \"B\", trainable = 0 : i64, storage = \"raw\", file = "
    "\"%s\", offset = 48 : i64, length = 12 : i64} : () -> tensor<3xf32>\n"
    "  %%xw = \"moai.matmul\"(%%x, %%W) : (tensor<5x%dxf32>, tensor<%dx3xf32>) -> tensor<5x3xf32>\n"
    "  %%y = \"moai.add\"(%%xw, %%B) : (tensor<5x3xf32>, tensor<3xf32>) -> tensor<5x3xf32>\n"
    "  %%d = \"moai.sub\"(%%y, %%t) : (tensor<5x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>\n"
    "  %%sq = \"moai.mul\"(%%d, %%d) : (tensor<5x3xf32>, tensor<5x3xf32>) -> tensor<5x3xf32>\n"
    "  %%loss = \"moai.reduce_mean\"(%%sq) {keepdims = 0 : i64, noop_with_empty_axes = 0 : i64, "
    "operandSegmentSizes = array<i32: 1, 0>} : (tensor<5x3xf32>) -> tensor<f32>\n"
    "  %%xt = \"moai.transpose\"(%%x) {perm = array<i64: 1, 0>} : (tensor<5x%dxf32>) -> "
    "tensor<%dx5xf32>\n"
    "  %%gW = \"moai.matmul\"(%%xt, %%d) : (tensor<%dx5xf32>, tensor<5x3xf32>) -> tensor<%dx3xf32>\n"
    "  %%w = \"moai.constant\"() {value = dense<1.0> : tensor<f32>} : () -> tensor<f32>\n"
    "  %%acc = \"moai.state\"() {name = \"grad.W\", role = \"grad\", param = \"W\"} : () -> "
    "tensor<%dx3xf32>\n"
    "  \"moai.accumulate\"(%%acc, %%gW) : (tensor<%dx3xf32>, tensor<%dx3xf32>) -> ()\n"
    "  %%lw = \"moai.state\"() {name = \"optimizer.loss_weight\", role = \"loss_weight\"} : () -> "
    "tensor<f32>\n"
    "  \"moai.accumulate\"(%%lw, %%w) : (tensor<f32>, tensor<f32>) -> ()\n"
    "  return %%loss, %%w : tensor<f32>, tensor<f32>\n}\n"
    "func.func @update() {\n"
    "  %%p = \"moai.weight\"() {%s} : () -> tensor<%dx3xf32>\n"
    "  %%g = \"moai.state\"() {name = \"grad.W\", role = \"grad\", param = \"W\"} : () -> "
    "tensor<%dx3xf32>\n"
    "  %%m = \"moai.state\"() {name = \"optimizer.exp_avg.W\", role = \"exp_avg\", param = \"W\"} "
    ": () -> tensor<%dx3xf32>\n"
    "  %%v = \"moai.state\"() {name = \"optimizer.exp_avg_sq.W\", role = \"exp_avg_sq\", param = "
    "\"W\"} : () -> tensor<%dx3xf32>\n"
    "  %%s = \"moai.state\"() {name = \"optimizer.step\", role = \"step\"} : () -> tensor<i64>\n"
    "  %%lw = \"moai.state\"() {name = \"optimizer.loss_weight\", role = \"loss_weight\"} : () -> "
    "tensor<f32>\n"
    "  \"moai.adamw\"(%%p, %%g, %%m, %%v, %%s, %%lw) {lr = 1.0e-02 : f32, beta1 = 9.0e-01 : f32, "
    "beta2 = 9.99e-01 : f32, eps = 1.0e-08 : f32, weight_decay = 0.0 : f32, "
    "schedule = \"constant\", warmup_steps = 0 : i64, total_steps = 0 : i64} : "
    "(tensor<%dx3xf32>, tensor<%dx3xf32>, tensor<%dx3xf32>, tensor<%dx3xf32>, tensor<i64>, "
    "tensor<f32>) -> ()\n"
    "  \"moai.optimizer_finish\"(%%s, %%lw) : (tensor<i64>, tensor<f32>) -> ()\n"
    "  return\n}\n}\n",
    module_attrs, K, w_attrs, K, g_data, K, K, K, K, K, K, K, K, K, w_attrs, K, K, K, K, K, K,
    K, K);
  MlirModule m = mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(text));
  free(text);
  if (mlirModuleIsNull(m)) return m;
  moai_pipeline_options_t po = {.pipeline = MOAI_DEFAULT_PIPELINE, .verify_each = true};
  moai_status_t s = moai_pipeline_run(m, &po, &g_diag);
  if (s) {
    fprintf(stderr, "pipeline: %s\n", moai_status_message(s));
    moai_status_free(s);
    mlirModuleDestroy(m);
    return (MlirModule){NULL};
  }
  return m;
}

/* The module before partitioning: its @main's I/O and the mesh. */
static MlirModule global_module(int dp, int tp, int pp) {
  char text[2048];
  snprintf(text, sizeof(text),
           "module attributes {moai.source = \"linear.onnx\", moai.producer = \"test\", "
           "moai.opset = 17 : i64, moai.training = {optimizer = \"adamw\"}, moai.parallel = "
           "{dp = %d : i64, tp = %d : i64, pp = %d : i64, micro_batches = 1 : i64, "
           "predicted_step_seconds = 0.5 : f64, predicted_memory_bytes = 4096 : i64}} {\n"
           "func.func @main(%%x: tensor<5x4xf32> {moai.name = \"x\"}, %%t: tensor<5x3xf32> "
           "{moai.name = \"t\"}) -> (tensor<f32> {moai.name = \"loss\"}) {\n"
           "  %%c = \"moai.constant\"() {value = dense<0.0> : tensor<f32>} : () -> tensor<f32>\n"
           "  return %%c : tensor<f32>\n}\n}\n", dp, tp, pp);
  return mlirModuleCreateParse(g_ctx, mlirStringRefCreateFromCString(text));
}

static void plan_file(const char *plan, const char *name, char *buf, size_t size) {
  snprintf(buf, size, "%s/%s", plan, name);
}

/* Device `k`'s W holds rows [2k, 2k+2) of the stored W. */
static void check_device_w(const char *plan, uint32_t k) {
  int32_t rank = 0;
  int64_t dims[8] = {0};
  float w[6] = {0};
  int trainable = 0;
  RT_ASSERT_OK(pm_device_tensor(plan, k, "W", &rank, dims, w, sizeof(w), &trainable));
  CU_ASSERT_TRUE(trainable);
  CU_ASSERT_EQUAL(rank, 2);
  CU_ASSERT_EQUAL(dims[0], 2);
  CU_ASSERT_EQUAL(dims[1], 3);
  CU_ASSERT_EQUAL(memcmp(w, g_w + 6 * k, sizeof(w)), 0);
}

static void test_tensor_parallel(void) {
  char plan[320], path[400], sub[400];
  snprintf(plan, sizeof(plan), "%s/tp.plan", g_root);
  MlirModule global = global_module(1, 2, 1);
  moai_plan_device_module_t devs[2] = {{.module = device_module(2, 0, ""), .tp = 0, .pp = 0},
                                       {.module = device_module(2, 1, ""), .tp = 1, .pp = 0}};
  CU_ASSERT_FALSE_FATAL(mlirModuleIsNull(global) || mlirModuleIsNull(devs[0].module) ||
                        mlirModuleIsNull(devs[1].module));
  /* Devices out of order are refused before anything is written. */
  moai_plan_device_module_t swapped[2] = {devs[1], devs[0]};
  RT_EXPECT_ERROR(moai_plan_write_mesh(plan, global, swapped, 2, "", NULL),
                  MOAI_INVALID_ARGUMENT, "device module 0 has coordinates (tp 1, pp 0)", NULL);
  RT_EXPECT_ERROR(moai_plan_write_mesh(plan, global, devs, 1, "", NULL), MOAI_INVALID_ARGUMENT,
                  "needs tp x pp = 2 device modules, got 1", NULL);
  CU_ASSERT_EQUAL(access(plan, F_OK), -1);
  RT_ASSERT_OK(moai_plan_write_mesh(plan, global, devs, 2, "mesh test\n", NULL));
  for (int k = 0; k < 2; ++k) mlirModuleDestroy(devs[k].module);
  mlirModuleDestroy(global);

  /* The top manifest. */
  plan_file(plan, "manifest.json", path, sizeof(path));
  moai_manifest_t *m = NULL;
  RT_ASSERT_OK(moai_manifest_read_file(path, moai_allocator_system(), &m));
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_EQUAL(m->format_version, 3);
  CU_ASSERT_EQUAL(m->mesh_tp, 2);
  CU_ASSERT_EQUAL(m->device_count, 2);
  CU_ASSERT_EQUAL(m->input_count, 2);
  CU_ASSERT_EQUAL(m->inputs[0].dims[1], 4); /* the global x, not a device's 5x2 */
  CU_ASSERT_EQUAL(m->output_count, 1);
  CU_ASSERT_STRING_EQUAL(m->model_source, "linear.onnx");
  CU_ASSERT_TRUE(m->has_prediction);
  CU_ASSERT_TRUE(m->training);
  CU_ASSERT_EQUAL(m->train.trainable_count, 1);
  CU_ASSERT_EQUAL(m->train.persist_bytes, 0);
  for (uint32_t k = 0; k < 2; ++k) {
    const moai_manifest_device_t *d = &m->devices[k];
    CU_ASSERT_EQUAL(d->tp, k);
    CU_ASSERT_FALSE(d->pipeline.present);
    CU_ASSERT_EQUAL_FATAL(d->shard_count, 1); /* W; B is replicated */
    CU_ASSERT_STRING_EQUAL(d->shards[0].name, "W");
    CU_ASSERT_EQUAL(d->shards[0].axis, 0);
    CU_ASSERT_EQUAL(d->shards[0].index, k);
    CU_ASSERT_EQUAL(d->shards[0].count, 2);
  }
  moai_manifest_free(m);
  plan_file(plan, "device-1/plan.txt", path, sizeof(path));
  CU_ASSERT_EQUAL(access(path, F_OK), 0);

  /* Each device opens with its slice of W; the whole plan does not. */
  check_device_w(plan, 0);
  check_device_w(plan, 1);
  RT_EXPECT_ERROR(pm_open(plan), MOAI_INVALID_ARGUMENT,
                  "is a multi-device plan (mesh 1 x 2 x 1); run it with moai-run, or open one "
                  "device with moai_plan_open_device", NULL);
  RT_EXPECT_ERROR(pm_open_device(plan, 2), MOAI_INVALID_ARGUMENT, "there is no device 2", NULL);
  /* A device's plan directory is itself a plain plan. */
  plan_file(plan, "device-1", sub, sizeof(sub));
  RT_ASSERT_OK(pm_open(sub));

  /* A shard naming no weight of the device. */
  plan_file(plan, "manifest.json", path, sizeof(path));
  CU_ASSERT_EQUAL(rt_replace_in_file(path, "\"name\": \"W\"", "\"name\": \"B2\""), 0);
  RT_EXPECT_ERROR(pm_open_device(plan, 0), MOAI_DATA_LOSS,
                  "devices[0].shards[0] ('B2', axis 0) is not a weight", NULL);
  CU_ASSERT_EQUAL(rt_replace_in_file(path, "\"name\": \"B2\"", "\"name\": \"W\""), 0);
  /* A device manifest changed after the plan was written. */
  plan_file(plan, "device-1/manifest.json", path, sizeof(path));
  CU_ASSERT_EQUAL(rt_replace_in_file(path, "\"arena_bytes\"", "\"arena_bytes\" "), 0);
  RT_EXPECT_ERROR(pm_open_device(plan, 1), MOAI_DATA_LOSS,
                  "device-1/manifest.json: SHA-256 mismatch with devices[1].manifest_sha256 of",
                  NULL);
  RT_ASSERT_OK(pm_open_device(plan, 0));
}

static void test_pipeline(void) {
  char plan[320], path[400];
  snprintf(plan, sizeof(plan), "%s/pp.plan", g_root);
  MlirModule global = global_module(2, 1, 2);
  moai_plan_device_module_t devs[2] = {
      {.module = device_module(4, 0, ", moai.pipeline = {stage = 0 : i64, stages = 2 : i64, send = "
                           "\"loss\", recv_grad = \"t\"}"), .tp = 0, .pp = 0},
      {.module = device_module(4, 0, ", moai.pipeline = {stage = 1 : i64, stages = 2 : i64, recv = "
                           "\"x\", send_grad = \"loss_weight\"}"), .tp = 0, .pp = 1}};
  CU_ASSERT_FALSE_FATAL(mlirModuleIsNull(global) || mlirModuleIsNull(devs[0].module) ||
                        mlirModuleIsNull(devs[1].module));
  RT_ASSERT_OK(moai_plan_write_mesh(plan, global, devs, 2, "", NULL));
  for (int k = 0; k < 2; ++k) mlirModuleDestroy(devs[k].module);
  mlirModuleDestroy(global);
  plan_file(plan, "manifest.json", path, sizeof(path));
  moai_manifest_t *m = NULL;
  RT_ASSERT_OK(moai_manifest_read_file(path, moai_allocator_system(), &m));
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_EQUAL(m->rank_count, 4);
  CU_ASSERT_EQUAL(m->ranks[3].device, 1); /* (d 1, s 1) */
  const moai_manifest_pipeline_t *p0 = &m->devices[0].pipeline, *p1 = &m->devices[1].pipeline;
  CU_ASSERT_TRUE(p0->present && p1->present);
  CU_ASSERT_EQUAL(p1->stage, 1);
  CU_ASSERT_PTR_NULL(p0->recv);
  CU_ASSERT_STRING_EQUAL(p0->send, "loss");
  CU_ASSERT_STRING_EQUAL(p1->recv, "x");
  CU_ASSERT_PTR_NULL(p1->send);
  CU_ASSERT_EQUAL(m->devices[0].shard_count, 0);
  moai_manifest_free(m);
  RT_ASSERT_OK(pm_open_device(plan, 0));
  RT_ASSERT_OK(pm_open_device(plan, 1));
  /* A pipeline name that is no input of the device. */
  CU_ASSERT_EQUAL(rt_replace_in_file(path, "\"recv\": \"x\"", "\"recv\": \"h\""), 0);
  RT_EXPECT_ERROR(pm_open_device(plan, 1), MOAI_DATA_LOSS,
                  "devices[1].pipeline.recv ('h') is not an input", NULL);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"tensor_parallel", test_tensor_parallel},
      {"pipeline", test_pipeline},
      CU_TEST_INFO_NULL};
  CU_pSuite suite = CU_add_suite("plan_mesh", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
