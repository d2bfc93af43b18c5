/* Unit tests for runtime/loader's manifest (schema, versions, writer) and
 * CPU feature set. The loader's integrity checks are in test_loader.c. */
#include <string.h>

#include "../../moai_run/runtime_test_util.h"
#include "loader/cpu_features.h"
#include "loader/manifest.h"
#include "moai_test.h"

/* A valid manifest; tests edit a copy with replace(). */
static const char k_good[] =
    "{\"format\": \"moai-plan\", \"format_version\": 1, \"moai_version\": \"0.1.0\",\n"
    " \"abi_version\": 1,\n"
    " \"target\": {\"triple\": \"x86_64-pc-linux-gnu\", \"cpu\": \"sapphirerapids\",\n"
    "            \"features\": [\"avx2\", \"fma\", \"avx512f\"]},\n"
    " \"model\": {\"source\": \"model.onnx\", \"opset\": 17, \"producer\": \"pytorch 1.13.0\"},\n"
    " \"inputs\": [{\"name\": \"input_ids\", \"dtype\": \"int64\", \"shape\": [2, 16]}],\n"
    " \"outputs\": [{\"name\": \"logits\", \"dtype\": \"float32\", \"shape\": [2, 16, 256]},\n"
    "             {\"name\": \"loss\", \"dtype\": \"bfloat16\", \"shape\": []}],\n"
    " \"devices\": [{\"index\": 0, \"binary\": \"device-0.so\", \"binary_sha256\": "
    "\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\", \"weights\": "
    "\"weights-0.safetensors\", \"weights_sha256\": "
    "\"fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210\", \"arena_bytes\": "
    "123, \"weights_bytes\": 456, \"const_bytes\": 78, \"live_lower_bound_bytes\": 100}],\n"
    " \"training\": null}\n";

static moai_status_t parse(const char *text, moai_manifest_t **out) {
  return moai_manifest_parse("PLAN/manifest.json", text, strlen(text), moai_allocator_system(),
                             out);
}

/* k_good with the first `from` replaced by `to`, parsed; expects an error. */
static void expect_edit_error(const char *from, const char *to, moai_status_code_t code,
                              const char *needle) {
  char text[4096];
  const char *at = strstr(k_good, from);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  size_t head = (size_t)(at - k_good);
  snprintf(text, sizeof(text), "%.*s%s%s", (int)head, k_good, to, at + strlen(from));
  moai_manifest_t *m = NULL;
  RT_EXPECT_ERROR(parse(text, &m), code, needle, NULL);
  CU_ASSERT_PTR_NULL(m);
}

static void test_parse_good(void) {
  moai_manifest_t *m = NULL;
  RT_ASSERT_OK(parse(k_good, &m));
  if (!m) return;
  CU_ASSERT_EQUAL(m->format_version, 1);
  CU_ASSERT_EQUAL(m->abi_version, 1);
  CU_ASSERT_STRING_EQUAL(m->target_cpu, "sapphirerapids");
  CU_ASSERT_EQUAL(m->feature_count, 3);
  CU_ASSERT_STRING_EQUAL(m->features[2], "avx512f");
  CU_ASSERT_EQUAL(m->model_opset, 17);
  CU_ASSERT_EQUAL(m->input_count, 1);
  CU_ASSERT_EQUAL(m->inputs[0].dtype, MOAI_ABI_I64);
  CU_ASSERT_EQUAL(m->inputs[0].nbytes, 2 * 16 * 8);
  CU_ASSERT_EQUAL(m->output_count, 2);
  CU_ASSERT_EQUAL(m->outputs[0].rank, 3);
  CU_ASSERT_EQUAL(m->outputs[0].dims[2], 256);
  CU_ASSERT_EQUAL(m->outputs[1].rank, 0);
  CU_ASSERT_EQUAL(m->outputs[1].nbytes, 2);
  CU_ASSERT_EQUAL(m->device_count, 1);
  CU_ASSERT_STRING_EQUAL(m->devices[0].weights, "weights-0.safetensors");
  CU_ASSERT_EQUAL(m->devices[0].arena_bytes, 123);
  CU_ASSERT_EQUAL(m->devices[0].live_lower_bound_bytes, 100);
  CU_ASSERT_FALSE(m->training);
  moai_manifest_free(m);
}

static void test_versions(void) {
  expect_edit_error("\"format_version\": 1", "\"format_version\": 4", MOAI_FAILED_PRECONDITION,
                    "PLAN/manifest.json: plan format 4 is newer than this runtime (3)");
  /* Format 2 needs the mesh; format 1 must not have one. */
  expect_edit_error("\"format_version\": 1", "\"format_version\": 2", MOAI_INVALID_ARGUMENT,
                    "missing field 'mesh'");
  /* A newer format is refused before anything else is looked at. */
  expect_edit_error("\"format_version\": 1, \"moai_version\": \"0.1.0\"",
                    "\"format_version\": 7, \"new_field\": 1", MOAI_FAILED_PRECONDITION,
                    "plan format 7 is newer");
  expect_edit_error("\"format_version\": 1", "\"format_version\": 0", MOAI_INVALID_ARGUMENT,
                    "'format_version' must be at least 1");
  expect_edit_error("\"format_version\": 1", "\"format_version\": \"1\"", MOAI_INVALID_ARGUMENT,
                    "'format_version' must be an integer");
  expect_edit_error("\"moai-plan\"", "\"onnx\"", MOAI_INVALID_ARGUMENT,
                    "not a moai plan manifest");
}

static void test_schema_errors(void) {
  expect_edit_error("\"training\": null", "\"training\": null, \"extra\": 1",
                    MOAI_INVALID_ARGUMENT, "unknown field 'extra'");
  expect_edit_error("\"cpu\": \"sapphirerapids\",", "", MOAI_INVALID_ARGUMENT,
                    "missing field 'target.cpu'");
  expect_edit_error("\"opset\": 17", "\"opset\": 17.5", MOAI_INVALID_ARGUMENT,
                    "'model.opset' must be an integer");
  expect_edit_error("\"features\": [\"avx2\"", "\"features\": [\"avx9000\"",
                    MOAI_INVALID_ARGUMENT, "target.features lists 'avx9000'");
  expect_edit_error("\"features\": [\"avx2\"", "\"features\": [7", MOAI_INVALID_ARGUMENT,
                    "'target.features' must hold strings");
  expect_edit_error("\"dtype\": \"int64\"", "\"dtype\": \"complex64\"", MOAI_INVALID_ARGUMENT,
                    "'inputs[0].dtype' must be one of");
  expect_edit_error("[2, 16]", "[2, -16]", MOAI_INVALID_ARGUMENT,
                    "'inputs[0].shape' must hold non-negative integers");
  expect_edit_error("[2, 16]", "[2, \"batch\"]", MOAI_INVALID_ARGUMENT,
                    "'inputs[0].shape' must hold non-negative integers");
  expect_edit_error("[2, 16]", "[1,1,1,1,1,1,1,1,1]", MOAI_INVALID_ARGUMENT,
                    "at most 8 dimensions");
  expect_edit_error("\"name\": \"loss\"", "\"name\": \"logits\"", MOAI_INVALID_ARGUMENT,
                    "'logits' is listed twice in 'outputs'");
  expect_edit_error("\"name\": \"input_ids\"", "\"name\": \"\"", MOAI_INVALID_ARGUMENT,
                    "'inputs[0].name' must not be empty");
  expect_edit_error("\"binary\": \"device-0.so\"", "\"binary\": \"../evil.so\"",
                    MOAI_INVALID_ARGUMENT,
                    "'devices[0].binary' must be a file name inside the plan directory");
  expect_edit_error("\"0123456789abcdef", "\"0123456789ABCDEF", MOAI_INVALID_ARGUMENT,
                    "'devices[0].binary_sha256' must be 64 lowercase hex digits");
  expect_edit_error("\"index\": 0", "\"index\": 1", MOAI_INVALID_ARGUMENT,
                    "index must equal its position");
  expect_edit_error("\"arena_bytes\": 123", "\"arena_bytes\": -1", MOAI_INVALID_ARGUMENT,
                    "'devices[0].arena_bytes' must be at least 0");
  expect_edit_error("\"training\": null", "\"training\": []", MOAI_INVALID_ARGUMENT,
                    "'training' must be null or an object");
  expect_edit_error("\"outputs\": [{", "\"outputs\": [], \"x\": [{", MOAI_INVALID_ARGUMENT,
                    "unknown field 'x'");
  expect_edit_error("\"abi_version\": 1,", "\"abi_version\": 1, \"abi_version\": 1,",
                    MOAI_INVALID_ARGUMENT, "duplicate");
  expect_edit_error("\"training\": null}", "\"training\": null", MOAI_INVALID_ARGUMENT,
                    "PLAN/manifest.json:");
  moai_manifest_t *m = NULL;
  RT_EXPECT_ERROR(parse("[]", &m), MOAI_INVALID_ARGUMENT, "not a JSON object", NULL);
}

static void test_write_round_trip(void) {
  char dir[256], path[512];
  CU_ASSERT_EQUAL_FATAL(rt_mkdtemp(dir, sizeof(dir), "manifest-test"), 0);
  snprintf(path, sizeof(path), "%s/manifest.json", dir);
  moai_manifest_t *m = NULL;
  RT_ASSERT_OK(parse(k_good, &m));
  if (!m) return;
  m->training = true;
  const char *trainable[] = {"w"};
  m->train = (moai_manifest_training_t){
      .optimizer = "sgd",
      .hyper = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .momentum = 0.9,
                .nesterov = 1, .schedule = MOAI_LR_COSINE, .warmup_steps = 10,
                .total_steps = 100},
      .micro_batches = 4,
      .loss_output = "loss",
      .loss_weight_output = m->outputs[0].name,
      .loss_weight_kind = "one",
      .ignore_index = -100,
      .has_ignore_index = true,
      .trainable_count = 1,
      .trainable = trainable,
      .persist_bytes = 128,
  };
  RT_ASSERT_OK(moai_manifest_write(path, m));
  memset(&m->train, 0, sizeof(m->train)); /* borrowed strings: not the manifest's to free */
  moai_manifest_t *back = NULL;
  RT_ASSERT_OK(moai_manifest_read(path, moai_allocator_system(), &back));
  if (back) {
    CU_ASSERT_TRUE(back->training);
    CU_ASSERT_STRING_EQUAL(back->train.optimizer, "sgd");
    CU_ASSERT_EQUAL(back->train.hyper.lr, 0.1);
    CU_ASSERT_EQUAL(back->train.hyper.eps, 1e-8);
    CU_ASSERT_EQUAL(back->train.hyper.nesterov, 1);
    CU_ASSERT_EQUAL(back->train.hyper.schedule, MOAI_LR_COSINE);
    CU_ASSERT_EQUAL(back->train.hyper.total_steps, 100);
    CU_ASSERT_EQUAL(back->train.micro_batches, 4);
    CU_ASSERT_TRUE(back->train.has_ignore_index);
    CU_ASSERT_EQUAL(back->train.ignore_index, -100);
    CU_ASSERT_PTR_NULL(back->train.labels_input);
    CU_ASSERT_EQUAL(back->train.trainable_count, 1);
    CU_ASSERT_STRING_EQUAL(back->train.trainable[0], "w");
    CU_ASSERT_EQUAL(back->train.persist_bytes, 128);
    CU_ASSERT_EQUAL(back->output_count, 2);
    CU_ASSERT_STRING_EQUAL(back->outputs[1].name, "loss");
    CU_ASSERT_EQUAL(back->outputs[1].dtype, MOAI_ABI_BF16);
    CU_ASSERT_STRING_EQUAL(back->devices[0].binary_sha256, m->devices[0].binary_sha256);
    CU_ASSERT_EQUAL(back->devices[0].const_bytes, 78);
    CU_ASSERT_STRING_EQUAL(back->model_producer, "pytorch 1.13.0");
    moai_manifest_free(back);
  }
  /* The writer refuses what the reader would refuse, and writes nothing. */
  unlink(path);
  m->devices[0].binary_sha256[0] = 'X';
  RT_EXPECT_ERROR(moai_manifest_write(path, m), MOAI_INVALID_ARGUMENT, "binary_sha256", NULL);
  CU_ASSERT_EQUAL(rt_count_entries(dir), 0);
  moai_manifest_free(m);
  rt_rm_tree(dir);
}

/* ---- format 3: the top manifest of a multi-device plan ---------------------- */

static const char k_sha[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/* Writes a format-3 manifest for mesh dp x tp x pp to `path`, from k_good's
 * fields: W sharded along axis 1 and V along axis 0 over tp, a pipeline
 * role per stage when pp > 1. Without ZeRO one device per (tp, pp); with
 * ZeRO-1 one per rank, dp rank d owning `owned[d]` (NULL-terminated). */
static void write_mesh_manifest_as(const char *path, uint32_t dp, uint32_t tp, uint32_t pp,
                                   const char *const *const *owned) {
  enum { MAX_DEVICES = 8 };
  moai_manifest_t *m = NULL;
  RT_ASSERT_OK(parse(k_good, &m));
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  moai_manifest_device_t *one = m->devices; /* keep: the parser's to free */
  uint32_t n = tp * pp * (owned ? dp : 1);
  CU_ASSERT_FATAL(n <= MAX_DEVICES);
  moai_manifest_device_t devs[MAX_DEVICES];
  moai_manifest_shard_t shards[MAX_DEVICES][2];
  char plans[MAX_DEVICES][16];
  memset(devs, 0, sizeof(devs));
  for (uint32_t k = 0; k < n; ++k) {
    uint32_t t = k % tp, s = k / tp % pp, d = k / (tp * pp);
    snprintf(plans[k], sizeof(plans[k]), "device-%u", k);
    shards[k][0] = (moai_manifest_shard_t){.name = "W", .axis = 1, .index = t, .count = tp};
    shards[k][1] = (moai_manifest_shard_t){.name = "V", .axis = 0, .index = t, .count = tp};
    devs[k] = (moai_manifest_device_t){
        .index = k, .plan = plans[k], .tp = t, .pp = s, .shard_count = tp > 1 ? 2 : 0,
        .shards = shards[k],
        .pipeline = {.present = pp > 1, .stage = s, .stages = pp,
                     .recv = s ? "act" : NULL, .recv_grad = s + 1 < pp ? "act.grad_in" : NULL,
                     .send = s + 1 < pp ? "act" : NULL, .send_grad = s ? "act.grad" : NULL}};
    memcpy(devs[k].manifest_sha256, k_sha, sizeof(k_sha));
    if (owned) {
      devs[k].zero = true;
      devs[k].dp = d;
      devs[k].owned = (const char **)owned[d];
      while (owned[d][devs[k].owned_count]) ++devs[k].owned_count;
    }
  }
  /* ZeRO-1 shards optimizer state: a training plan, training W, V and b. */
  static const char *const trainable[] = {"W", "V", "b"};
  if (owned) {
    m->training = true;
    m->train = (moai_manifest_training_t){
        .optimizer = "adamw", .hyper = {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8},
        .micro_batches = 1, .loss_output = "loss", .loss_weight_output = "logits",
        .loss_weight_kind = "one", .trainable_count = 3, .trainable = (const char **)trainable};
  }
  m->format_version = 3;
  m->mesh_dp = dp;
  m->mesh_tp = tp;
  m->mesh_pp = pp;
  m->devices = devs;
  m->device_count = n;
  RT_ASSERT_OK(moai_manifest_write(path, m));
  m->devices = one;
  m->device_count = 1;
  memset(&m->train, 0, sizeof(m->train)); /* borrowed strings: not the manifest's to free */
  moai_manifest_free(m);
}

/* Mesh dp=2 x tp=2 x pp=2 without ZeRO: 4 devices. */
static void write_mesh_manifest(const char *path) {
  write_mesh_manifest_as(path, 2, 2, 2, NULL);
}

/* ZeRO-1 weights: dp rank 0 updates W, rank 1 updates V and b. */
static const char *const k_owned_dp0[] = {"W", NULL};
static const char *const k_owned_dp1[] = {"V", "b", NULL};
static const char *const *const k_owned[] = {k_owned_dp0, k_owned_dp1};

static void test_mesh_round_trip(void) {
  char dir[256], path[512];
  CU_ASSERT_EQUAL_FATAL(rt_mkdtemp(dir, sizeof(dir), "manifest-mesh"), 0);
  snprintf(path, sizeof(path), "%s/manifest.json", dir);
  write_mesh_manifest(path);
  moai_manifest_t *m = NULL;
  RT_ASSERT_OK(moai_manifest_read_file(path, moai_allocator_system(), &m));
  if (m) {
    CU_ASSERT_EQUAL(m->format_version, 3);
    CU_ASSERT_EQUAL(m->device_count, 4);
    CU_ASSERT_EQUAL(m->rank_count, 8);
    const moai_manifest_device_t *d = &m->devices[3];
    CU_ASSERT_PTR_NULL(d->binary);
    CU_ASSERT_STRING_EQUAL(d->plan, "device-3");
    CU_ASSERT_STRING_EQUAL(d->manifest_sha256, k_sha);
    CU_ASSERT_EQUAL(d->tp, 1);
    CU_ASSERT_EQUAL(d->pp, 1);
    CU_ASSERT_EQUAL(d->shard_count, 2);
    CU_ASSERT_STRING_EQUAL(d->shards[0].name, "W");
    CU_ASSERT_EQUAL(d->shards[0].axis, 1);
    CU_ASSERT_EQUAL(d->shards[0].index, 1);
    CU_ASSERT_EQUAL(d->shards[0].count, 2);
    CU_ASSERT_TRUE(d->pipeline.present);
    CU_ASSERT_EQUAL(d->pipeline.stage, 1);
    CU_ASSERT_EQUAL(d->pipeline.stages, 2);
    CU_ASSERT_STRING_EQUAL(d->pipeline.recv, "act");
    CU_ASSERT_PTR_NULL(d->pipeline.send);
    CU_ASSERT_STRING_EQUAL(m->devices[0].pipeline.recv_grad, "act.grad_in");
    /* rank (d=1, t=1, s=0) = (1*2+0)*2+1 = 5 runs device 0*2+1 = 1 */
    CU_ASSERT_EQUAL(m->ranks[5].dp, 1);
    CU_ASSERT_EQUAL(m->ranks[5].tp, 1);
    CU_ASSERT_EQUAL(m->ranks[5].pp, 0);
    CU_ASSERT_EQUAL(m->ranks[5].device, 1);
    CU_ASSERT_EQUAL(m->ranks[6].device, 2);
    moai_manifest_free(m);
  }
  rt_rm_tree(dir);
}

/* `text` with the first `from` (after `after`, when given) replaced by `to`;
 * the caller frees it. */
static char *edit_text(const char *text, const char *after, const char *from, const char *to) {
  const char *start = after ? strstr(text, after) : text;
  CU_ASSERT_PTR_NOT_NULL_FATAL(start);
  const char *at = strstr(start, from);
  CU_ASSERT_PTR_NOT_NULL_FATAL(at);
  size_t head = (size_t)(at - text), len = strlen(text) + strlen(to) + 1;
  char *edited = malloc(len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(edited);
  snprintf(edited, len, "%.*s%s%s", (int)head, text, to, at + strlen(from));
  return edited;
}

static void expect_parse_error(const char *text, const char *needle) {
  moai_manifest_t *m = NULL;
  RT_EXPECT_ERROR(parse(text, &m), MOAI_INVALID_ARGUMENT, needle, NULL);
  CU_ASSERT_PTR_NULL(m);
}

/* The format-3 manifest with one edit (edit_text); expects an error. */
static void expect_mesh_error(const char *text, const char *after, const char *from,
                              const char *to, const char *needle) {
  char *edited = edit_text(text, after, from, to);
  expect_parse_error(edited, needle);
  free(edited);
}

/* Every allocation of the parse of `text` can fail without a leak, and the
 * parse succeeds once none fails. */
static void expect_parse_fault_free(const char *text, size_t size) {
  bool parsed = false;
  for (uint64_t fail_at = 1; fail_at < 1000 && !parsed; ++fail_at) {
    moai_fault_allocator_t fa = {.fail_at = fail_at};
    moai_manifest_t *m = NULL;
    moai_status_t st = moai_manifest_parse("m.json", text, size, moai_fault_allocator(&fa), &m);
    moai_manifest_free(m);
    CU_ASSERT_EQUAL(fa.live, 0);
    parsed = !st;
    if (st) CU_ASSERT_EQUAL(moai_status_code(st), MOAI_OUT_OF_MEMORY);
    moai_status_free(st);
  }
  CU_ASSERT_TRUE(parsed);
}

static void test_mesh_errors(void) {
  char dir[256], path[512];
  CU_ASSERT_EQUAL_FATAL(rt_mkdtemp(dir, sizeof(dir), "manifest-mesh"), 0);
  snprintf(path, sizeof(path), "%s/manifest.json", dir);
  write_mesh_manifest(path);
  size_t size = 0;
  char *text = rt_read_file(path, &size);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  expect_mesh_error(text, NULL, "\"plan\": \"device-1\"", "\"plan\": \"../device-1\"",
                    "'devices[1].plan' must be a directory name inside the plan directory");
  expect_mesh_error(text, NULL, "\"plan\": \"device-1\"", "\"plan\": \"device-0\"",
                    "devices[1]' plan names the directory of another device");
  expect_mesh_error(text, NULL, "\"manifest_sha256\": \"0", "\"manifest_sha256\": \"X",
                    "'devices[0].manifest_sha256' must be 64 lowercase hex digits");
  expect_mesh_error(text, "\"plan\": \"device-1\"", "\"tp\": 1", "\"tp\": 0",
                    "'devices[1]' has coordinates (tp 0, pp 0), as devices[0] has");
  expect_mesh_error(text, "\"plan\": \"device-1\"", "\"tp\": 1", "\"tp\": 2",
                    "'devices[1]' has coordinates outside the mesh");
  expect_mesh_error(text, "\"plan\": \"device-3\"", "\"index\": 1", "\"index\": 0",
                    "'devices[3].shards[0]' must be slice 'index' = the device's tp");
  expect_mesh_error(text, "\"plan\": \"device-3\"", "\"count\": 2", "\"count\": 3",
                    "'devices[3].shards[0]' must be slice 'index' = the device's tp");
  expect_mesh_error(text, "\"plan\": \"device-3\"", "\"index\": 1", "\"index\": 2",
                    "'devices[3].shards[0]' index must be below count");
  expect_mesh_error(text, "\"plan\": \"device-3\"", "\"name\": \"V\"", "\"name\": \"W\"",
                    "'W' is listed twice in 'devices[3].shards'");
  expect_mesh_error(text, "\"plan\": \"device-3\"", "\"count\": 2", "\"count\": 2, \"x\": 0",
                    "unknown field 'devices[3].shards[0].x'");
  expect_mesh_error(text, "\"plan\": \"device-2\"", "\"stage\": 1", "\"stage\": 0",
                    "'devices[2]' pipeline.stage and stages must be its pp and mesh.pp");
  expect_mesh_error(text, "\"plan\": \"device-2\"", "\"recv\": \"act\"", "\"recv\": 5",
                    "'devices[2].pipeline.recv' must be a string or null");
  expect_mesh_error(text, "\"plan\": \"device-2\"", "\"recv_grad\": null,", "",
                    "missing field 'devices[2].pipeline.recv_grad'");
  expect_mesh_error(text, "\"mesh\"", "\"tp\": 2", "\"tp\": 1",
                    "'devices' must hold tp x pp = 2 entries (mesh 2x1x2)");
  expect_mesh_error(text, "\"rank\": 5", "\"device\": 1", "\"device\": 0",
                    "'ranks[5]' device must be the one at its (tp, pp)");
  CU_ASSERT_PTR_NULL(strstr(text, "\"binary\"")); /* format 3 devices have no files */
  expect_parse_fault_free(text, size);
  free(text);
  rt_rm_tree(dir);
}

/* ---- format 3 with ZeRO-1: one device per rank ------------------------------ */

static void test_zero_round_trip(void) {
  char dir[256], path[512];
  CU_ASSERT_EQUAL_FATAL(rt_mkdtemp(dir, sizeof(dir), "manifest-zero"), 0);
  snprintf(path, sizeof(path), "%s/manifest.json", dir);
  write_mesh_manifest_as(path, 2, 2, 1, k_owned);
  moai_manifest_t *m = NULL;
  RT_ASSERT_OK(moai_manifest_read_file(path, moai_allocator_system(), &m));
  if (m) {
    CU_ASSERT_EQUAL(m->mesh_dp, 2);
    CU_ASSERT_EQUAL(m->mesh_tp, 2);
    CU_ASSERT_EQUAL(m->mesh_pp, 1);
    CU_ASSERT_EQUAL_FATAL(m->device_count, 4); /* dp x tp x pp */
    CU_ASSERT_EQUAL(m->rank_count, 4);
    for (uint32_t k = 0; k < 4; ++k) {
      const moai_manifest_device_t *d = &m->devices[k];
      const char *const *want = k_owned[k / 2];
      CU_ASSERT_TRUE(d->zero);
      CU_ASSERT_EQUAL(d->dp, k / 2); /* k = (dp * pp + pp) * tp + tp */
      CU_ASSERT_EQUAL(d->tp, k % 2);
      CU_ASSERT_EQUAL(d->pp, 0);
      CU_ASSERT_FALSE(d->pipeline.present);
      CU_ASSERT_EQUAL(d->shard_count, 2);
      CU_ASSERT_EQUAL(d->shards[0].index, k % 2);
      CU_ASSERT_EQUAL_FATAL(d->owned_count, k < 2 ? 1 : 2);
      for (size_t i = 0; i < d->owned_count; ++i) CU_ASSERT_STRING_EQUAL(d->owned[i], want[i]);
      /* Under ZeRO-1 every rank runs its own device. */
      CU_ASSERT_EQUAL(m->ranks[k].device, k);
      CU_ASSERT_EQUAL(m->ranks[k].dp, k / 2);
    }
    moai_manifest_free(m);
  }
  /* pp instead of tp (2x1x2): the order is still k = (dp * pp + pp) * tp + tp. */
  write_mesh_manifest_as(path, 2, 1, 2, k_owned);
  RT_ASSERT_OK(moai_manifest_read_file(path, moai_allocator_system(), &m));
  if (m) {
    CU_ASSERT_EQUAL_FATAL(m->device_count, 4);
    CU_ASSERT_EQUAL(m->devices[1].dp, 0);
    CU_ASSERT_EQUAL(m->devices[1].pp, 1);
    CU_ASSERT_EQUAL(m->devices[2].dp, 1);
    CU_ASSERT_EQUAL(m->devices[2].pp, 0);
    CU_ASSERT_TRUE(m->devices[3].pipeline.present);
    CU_ASSERT_EQUAL(m->devices[3].pipeline.stage, 1);
    CU_ASSERT_STRING_EQUAL(m->devices[3].owned[1], "b");
    CU_ASSERT_EQUAL(m->ranks[2].device, 2);
    moai_manifest_free(m);
  }
  /* Without ZeRO both keys are null and the flag is off. */
  write_mesh_manifest(path);
  RT_ASSERT_OK(moai_manifest_read_file(path, moai_allocator_system(), &m));
  if (m) {
    CU_ASSERT_FALSE(m->devices[0].zero);
    CU_ASSERT_EQUAL(m->devices[0].owned_count, 0);
    CU_ASSERT_PTR_NULL(m->devices[0].owned);
    moai_manifest_free(m);
  }
  size_t size = 0;
  char *text = rt_read_file(path, &size);
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"dp\": null"));
  CU_ASSERT_PTR_NOT_NULL(strstr(text, "\"zero_owned\": null"));
  free(text);
  rt_rm_tree(dir);
}

/* Device k's "dp" and "zero_owned" as the writer prints them (JSON_INDENT(2)). */
#define ZERO_KEYS_DP0 "\"dp\": 0,\n      \"zero_owned\": [\n        \"W\"\n      ]"
#define ZERO_KEYS_DP1 \
  "\"dp\": 1,\n      \"zero_owned\": [\n        \"V\",\n        \"b\"\n      ]"
#define ZERO_NULL_KEYS "\"dp\": null, \"zero_owned\": null"

/* The text of a ZeRO-1 manifest for mesh 2x2x1 (devices 0, 1: dp 0; 2, 3:
 * dp 1), written in a new `dir`; the caller frees it and removes `dir`. */
static char *zero_manifest_text(char *dir, size_t dir_size, size_t *out_size) {
  char path[512];
  CU_ASSERT_EQUAL_FATAL(rt_mkdtemp(dir, dir_size, "manifest-zero"), 0);
  snprintf(path, sizeof(path), "%s/manifest.json", dir);
  write_mesh_manifest_as(path, 2, 2, 1, k_owned);
  char *text = rt_read_file(path, out_size);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  return text;
}

static const char k_dev0[] = "\"plan\": \"device-0\"", k_dev1[] = "\"plan\": \"device-1\"",
                  k_dev2[] = "\"plan\": \"device-2\"", k_dev3[] = "\"plan\": \"device-3\"";

/* A device's "dp" and "zero_owned": types, agreement, owned names. */
static void test_zero_key_errors(void) {
  char dir[256];
  size_t size = 0;
  char *text = zero_manifest_text(dir, sizeof(dir), &size);
  const char *dev0 = k_dev0, *dev1 = k_dev1, *dev2 = k_dev2, *dev3 = k_dev3;
  /* The text holds what the edits below replace. */
  CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(strstr(text, dev1), ZERO_KEYS_DP0));
  CU_ASSERT_PTR_NOT_NULL_FATAL(strstr(strstr(text, dev2), ZERO_KEYS_DP1));
  /* ZeRO on some devices only: the odd device is named, either way round. */
  expect_mesh_error(text, dev2, ZERO_KEYS_DP1, ZERO_NULL_KEYS,
                    "'devices[2].dp' is null, but devices[0].dp is set");
  {
    char *e = edit_text(text, dev0, ZERO_KEYS_DP0, ZERO_NULL_KEYS);
    expect_parse_error(e, "'devices[1].dp' is set, but devices[0].dp is null");
    free(e);
  }
  /* dp without zero_owned, and the reverse; either key missing. */
  expect_mesh_error(text, dev1, "\"zero_owned\": [\n        \"W\"\n      ]",
                    "\"zero_owned\": null",
                    "'devices[1]' 'dp' and 'zero_owned' must both be null or both be set");
  expect_mesh_error(text, dev1, "\"dp\": 0", "\"dp\": null",
                    "'devices[1]' 'dp' and 'zero_owned' must both be null or both be set");
  expect_mesh_error(text, dev1, "\"dp\": 0,", "", "missing field 'devices[1].dp'");
  expect_mesh_error(text, dev1, ",\n      \"zero_owned\": [\n        \"W\"\n      ]", "",
                    "missing field 'devices[1].zero_owned'");
  /* Types. */
  expect_mesh_error(text, dev1, "\"zero_owned\": [\n        \"W\"\n      ]",
                    "\"zero_owned\": \"W\"",
                    "'devices[1].zero_owned' must be an array of weight names or null");
  expect_mesh_error(text, dev2, "\"b\"", "7", "'devices[2].zero_owned[1]' must be a string");
  expect_mesh_error(text, dev1, "\"dp\": 0", "\"dp\": \"0\"",
                    "'devices[1].dp' must be an integer");
  expect_mesh_error(text, dev1, "\"dp\": 0", "\"dp\": -1",
                    "'devices[1].dp' must be at least 0");
  expect_mesh_error(text, dev1, "\"dp\": 0", "\"dp\": 70000",
                    "'devices[1]' has coordinates outside the mesh");
  /* Owned names: trained weights, each owned once per (tp, pp) group. */
  expect_mesh_error(text, dev2, "\"b\"", "\"X\"",
                    "'devices[2].zero_owned[1]' names no weight in 'training.trainable'");
  expect_mesh_error(text, dev2, "\"b\"", "\"V\"",
                    "'devices[2].zero_owned[1]' 'V' is owned twice in the dp group of (tp 0, "
                    "pp 0): also by devices[2] (dp 1)");
  expect_mesh_error(text, dev3, "\"b\"", "\"W\"",
                    "'devices[3].zero_owned[1]' 'W' is owned twice in the dp group of (tp 1, "
                    "pp 0): also by devices[1] (dp 0)");
  free(text);
  rt_rm_tree(dir);
}

/* ZeRO-1's layout: devices, ranks, training; its parse under fault injection. */
static void test_zero_layout_errors(void) {
  char dir[256];
  size_t size = 0;
  char *text = zero_manifest_text(dir, sizeof(dir), &size);
  const char *dev1 = k_dev1, *dev2 = k_dev2, *dev3 = k_dev3;
  /* ZeRO-1 devices: dp x tp x pp of them (not tp x pp), in rank order, inside the mesh, distinct;
   * every rank runs its own. */
  {
    const char *cut = strstr(text, ",\n    {\n      \"index\": 2,");
    const char *end = strstr(text, "\n  ],\n  \"training\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cut);
    CU_ASSERT_PTR_NOT_NULL_FATAL(end);
    char *two = malloc(size + 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(two);
    snprintf(two, size + 1, "%.*s%s", (int)(cut - text), text, end);
    expect_parse_error(two, "'devices' must hold dp x tp x pp (ZeRO-1) = 4 entries (mesh 2x2x1)");
    free(two);
  }
  expect_mesh_error(text, "\"mesh\"", "\"dp\": 2", "\"dp\": 1",
                    "'devices' must hold dp x tp x pp (ZeRO-1) = 2 entries (mesh 1x2x1)");
  expect_mesh_error(text, dev1, "\"dp\": 0", "\"dp\": 1",
                    "'devices[1]' is out of order: device k has tp = k % mesh.tp");
  expect_mesh_error(text, dev3, "\"dp\": 1", "\"dp\": 2",
                    "'devices[3]' has coordinates outside the mesh");
  expect_mesh_error(text, dev3, "\"tp\": 1", "\"tp\": 0",
                    "'devices[3]' has coordinates (dp 1, tp 0, pp 0), as devices[2] has");
  /* rank 2 = (dp 1, tp 0, pp 0): device 0 without ZeRO, its own (2) with it. */
  expect_mesh_error(text, "\"rank\": 2", "\"device\": 2", "\"device\": 0",
                    "'ranks[2]' device must be the one at its (tp, pp): pp * mesh.tp + tp "
                    "(with ZeRO-1: its own rank)");
  /* ZeRO-1 needs training (the optimizer state it shards). */
  {
    const char *from = strstr(text, "\"training\": {");
    const char *to = strstr(text, "\"mesh\"");
    CU_ASSERT_PTR_NOT_NULL_FATAL(from);
    CU_ASSERT_PTR_NOT_NULL_FATAL(to);
    char *inference = malloc(size + 32);
    CU_ASSERT_PTR_NOT_NULL_FATAL(inference);
    snprintf(inference, size + 32, "%.*s\"training\": null,\n  %s", (int)(from - text), text,
             to);
    expect_parse_error(inference, "'devices' has ZeRO-1 devices ('dp' set), but 'training' "
                                  "is null");
    free(inference);
  }
  /* An empty zero_owned is valid: a dp rank may own no weight (more ranks than weights). */
  {
    char *e = edit_text(text, dev2, ZERO_KEYS_DP1, "\"dp\": 1, \"zero_owned\": []");
    moai_manifest_t *m = NULL;
    RT_ASSERT_OK(parse(e, &m));
    if (m) {
      CU_ASSERT_TRUE(m->devices[2].zero);
      CU_ASSERT_EQUAL(m->devices[2].owned_count, 0);
      CU_ASSERT_PTR_NOT_NULL(m->devices[2].owned);
      moai_manifest_free(m);
    }
    free(e);
  }
  expect_parse_fault_free(text, size);
  free(text);
  rt_rm_tree(dir);
}

static void test_parse_fault_injection(void) {
  for (uint64_t fail_at = 1;; ++fail_at) {
    moai_fault_allocator_t fa = {.fail_at = fail_at};
    moai_manifest_t *m = NULL;
    moai_status_t s = moai_manifest_parse("m.json", k_good, strlen(k_good),
                                          moai_fault_allocator(&fa), &m);
    if (!s) {
      moai_manifest_free(m);
      CU_ASSERT_EQUAL(fa.live, 0);
      break;
    }
    CU_ASSERT_EQUAL(moai_status_code(s), MOAI_OUT_OF_MEMORY);
    CU_ASSERT_EQUAL(fa.live, 0);
    moai_status_free(s);
    if (fail_at > 200) {
      CU_FAIL("parse never succeeded");
      break;
    }
  }
}

static void test_cpu_features(void) {
  CU_ASSERT_TRUE(moai_cpu_feature_count() >= 20);
  CU_ASSERT_STRING_EQUAL(moai_cpu_feature_name(0), "sse4.1");
  CU_ASSERT_PTR_NULL(moai_cpu_feature_name(moai_cpu_feature_count()));
  CU_ASSERT_TRUE(moai_cpu_feature_known("avx512fp16"));
  CU_ASSERT_TRUE(moai_cpu_feature_known("amx-tile"));
  CU_ASSERT_FALSE(moai_cpu_feature_known("avx512_fp16"));
  CU_ASSERT_FALSE(moai_cpu_has_feature("no-such-feature"));
  char all[1024];
  size_t need = moai_cpu_features_host(all, sizeof(all));
  CU_ASSERT_EQUAL(need, strlen(all));
#if defined(__x86_64__)
  /* The host list agrees with the single-feature test. */
  CU_ASSERT_EQUAL(moai_cpu_has_feature("avx2"), strstr(all, "avx2") != NULL);
#endif
  /* A short buffer: a prefix of whole names, and the full length. */
  char small[8];
  CU_ASSERT_EQUAL(moai_cpu_features_host(small, sizeof(small)), need);
  CU_ASSERT_TRUE(strlen(small) < sizeof(small));
  CU_ASSERT_EQUAL(strncmp(all, small, strlen(small)), 0);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"parse_good", test_parse_good},
      {"versions", test_versions},
      {"schema_errors", test_schema_errors},
      {"write_round_trip", test_write_round_trip},
      {"mesh_round_trip", test_mesh_round_trip},
      {"mesh_errors", test_mesh_errors},
      {"zero_round_trip", test_zero_round_trip},
      {"zero_key_errors", test_zero_key_errors},
      {"zero_layout_errors", test_zero_layout_errors},
      {"parse_fault_injection", test_parse_fault_injection},
      {"cpu_features", test_cpu_features},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("loader_manifest", tests);
}
