/* Unit tests for the mesh side of runtime/train/checkpoint: slices of full
 * tensors (against indices computed here), assembling the full tensors of
 * a tensor-parallel pair of devices, saving them and loading them back as
 * the single-device plan and as each shard, the pipeline stage's partial
 * load, and the errors of inconsistent parts and shards. */
#include "../../moai_run/runtime_test_util.h"
#include "moai_test.h"
#include "train/checkpoint.h"

static char g_dir[256];

static int suite_init(void) { return rt_mkdtemp(g_dir, sizeof(g_dir), "ckpt-mesh-test"); }
static int suite_clean(void) {
  rt_rm_tree(g_dir);
  return 0;
}

/* Slice `index` of `count` along `axis` of a 2x4x3 tensor whose element at
 * (i, j, k) is i*100 + j*10 + k. */
static void check_slice_3d(int32_t axis, uint32_t count) {
  int64_t full_dims[3] = {2, 4, 3};
  float full[24], rebuilt[24] = {0}, local[24];
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) full[(i * 4 + j) * 3 + k] = (float)(i * 100 + j * 10 + k);
  int64_t dims[3] = {2, 4, 3};
  dims[axis] /= count;
  for (uint32_t index = 0; index < count; ++index) {
    moai_checkpoint_slice_t s = {.axis = axis, .index = index, .count = count};
    int64_t got_full[MOAI_MAX_RANK];
    RT_ASSERT_OK(moai_checkpoint_slice_full_dims("x", &s, 3, dims, got_full));
    for (int d = 0; d < 3; ++d) CU_ASSERT_EQUAL(got_full[d], full_dims[d]);
    moai_checkpoint_slice_read(&s, 3, dims, sizeof(float), full, local);
    bool ok = true;
    for (int i = 0; i < dims[0]; ++i)
      for (int j = 0; j < dims[1]; ++j)
        for (int k = 0; k < dims[2]; ++k) {
          int at[3] = {i, j, k};
          at[axis] += (int)(index * (uint32_t)dims[axis]);
          ok = ok && local[(i * dims[1] + j) * dims[2] + k] ==
                         (float)(at[0] * 100 + at[1] * 10 + at[2]);
        }
    CU_ASSERT_TRUE(ok);
    moai_checkpoint_slice_write(&s, 3, dims, sizeof(float), local, rebuilt);
  }
  CU_ASSERT_EQUAL(memcmp(rebuilt, full, sizeof(full)), 0);
}

static void test_slices(void) {
  check_slice_3d(0, 2);
  check_slice_3d(1, 2);
  check_slice_3d(1, 4);
  check_slice_3d(2, 3);
  /* A 2-D 2x4 along axis 1, part 1 of 2: columns 2 and 3 of each row. */
  float full[8] = {0, 1, 2, 3, 4, 5, 6, 7}, local[4];
  moai_checkpoint_slice_t s = {.axis = 1, .index = 1, .count = 2};
  int64_t dims[2] = {2, 2};
  moai_checkpoint_slice_read(&s, 2, dims, sizeof(float), full, local);
  CU_ASSERT_TRUE(local[0] == 2 && local[1] == 3 && local[2] == 6 && local[3] == 7);
  /* Slices that do not fit. */
  int64_t out[MOAI_MAX_RANK];
  s = (moai_checkpoint_slice_t){.axis = 2, .index = 0, .count = 2};
  RT_EXPECT_ERROR(moai_checkpoint_slice_full_dims("W", &s, 2, dims, out), MOAI_INVALID_ARGUMENT,
                  "tensor 'W' (rank 2): shard 0 of 2 along axis 2 does not fit it", NULL);
  s = (moai_checkpoint_slice_t){.axis = 0, .index = 2, .count = 2};
  RT_EXPECT_ERROR(moai_checkpoint_slice_full_dims("W", &s, 2, dims, out), MOAI_INVALID_ARGUMENT,
                  "shard 2 of 2", NULL);
}

/* One tensor-parallel device of a model with W (trainable, full 2x4, cut
 * along axis 1), its AdamW state (cut like W), F (frozen 3, replicated),
 * optimizer.step and the loss weight (replicated). Device t holds columns
 * 2t and 2t+1 of W. */
typedef struct fake_device_t {
  float w[4], m[4], grad[4], f[3], lw;
  int64_t step;
  moai_plan_tensor_t t[6];
  moai_checkpoint_slice_t s[6];
} fake_device_t;

static const float kFullW[8] = {1, 2, 3, 4, 5, 6, 7, 8};

static void device_init(fake_device_t *d, uint32_t t, float offset) {
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 2; ++c) {
      d->w[r * 2 + c] = kFullW[r * 4 + 2 * t + (uint32_t)c] + offset;
      d->m[r * 2 + c] = d->w[r * 2 + c] / 10;
      d->grad[r * 2 + c] = (float)(t + 1);
    }
  for (int i = 0; i < 3; ++i) d->f[i] = 0.25f * (float)i;
  d->lw = 2;
  d->step = 5;
  moai_plan_tensor_t ts[6] = {
      {.name = "W", .kind = MOAI_PLAN_TENSOR_TRAINABLE, .dtype = MOAI_ABI_F32, .rank = 2,
       .dims = {2, 2}, .nbytes = 16, .data = d->w, .writable = true},
      {.name = "F", .kind = MOAI_PLAN_TENSOR_WEIGHT, .dtype = MOAI_ABI_F32, .rank = 1,
       .dims = {3}, .nbytes = 12, .data = d->f},
      {.name = "grad.W", .param = "W", .kind = MOAI_PLAN_TENSOR_STATE, .role = MOAI_STATE_GRAD,
       .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 2}, .nbytes = 16, .data = d->grad,
       .writable = true},
      {.name = "optimizer.exp_avg.W", .param = "W", .kind = MOAI_PLAN_TENSOR_STATE,
       .role = MOAI_STATE_EXP_AVG, .dtype = MOAI_ABI_F32, .rank = 2, .dims = {2, 2},
       .nbytes = 16, .data = d->m, .writable = true},
      {.name = "optimizer.step", .kind = MOAI_PLAN_TENSOR_STATE, .role = MOAI_STATE_STEP,
       .dtype = MOAI_ABI_I64, .rank = 0, .nbytes = 8, .data = &d->step, .writable = true},
      {.name = "optimizer.loss_weight", .kind = MOAI_PLAN_TENSOR_STATE,
       .role = MOAI_STATE_LOSS_WEIGHT, .dtype = MOAI_ABI_F32, .rank = 0, .nbytes = 4,
       .data = &d->lw, .writable = true},
  };
  memcpy(d->t, ts, sizeof(ts));
  memset(d->s, 0, sizeof(d->s));
  moai_checkpoint_slice_t cut = {.axis = 1, .index = t, .count = 2};
  d->s[0] = d->s[2] = d->s[3] = cut;
}

static moai_checkpoint_position_t position(void) {
  return (moai_checkpoint_position_t){.step = 5, .epoch = 0, .position = 40, .drop_last = true,
                                      .micro_batches = 1, .example_count = 100,
                                      .step_examples = 8};
}

static const moai_plan_tensor_t *find(const moai_plan_tensor_t *t, size_t n, const char *name) {
  for (size_t i = 0; i < n; ++i)
    if (strcmp(t[i].name, name) == 0) return &t[i];
  return NULL;
}

/* Gathers two devices, saves, and loads the file back every way. */
static void test_gather_save_load(void) {
  fake_device_t dev[2];
  device_init(&dev[0], 0, 0);
  device_init(&dev[1], 1, 0);
  moai_checkpoint_part_t parts[2] = {{dev[0].t, dev[0].s, 6}, {dev[1].t, dev[1].s, 6}};
  moai_checkpoint_gather_t *g = NULL;
  RT_ASSERT_OK(moai_checkpoint_gather_create(parts, 2, moai_allocator_system(), &g));
  if (!g) return;
  /* Device 1's copies of the replicated tensors are not needed. */
  CU_ASSERT_TRUE(moai_checkpoint_gather_wants(g, 1, 0));
  CU_ASSERT_FALSE(moai_checkpoint_gather_wants(g, 1, 1));
  CU_ASSERT_FALSE(moai_checkpoint_gather_wants(g, 1, 4));
  CU_ASSERT_TRUE(moai_checkpoint_gather_wants(g, 0, 4));
  CU_ASSERT_FALSE(moai_checkpoint_gather_wants(g, 2, 0));
  RT_EXPECT_ERROR(moai_checkpoint_gather_put(g, 1, 1, dev[1].f), MOAI_INTERNAL, "not wanted",
                  NULL);
  for (size_t p = 0; p < 2; ++p)
    for (size_t i = 0; i < 6; ++i)
      if (moai_checkpoint_gather_wants(g, p, i))
        RT_ASSERT_OK(moai_checkpoint_gather_put(g, p, i, dev[p].t[i].data));
  size_t n = 0;
  const moai_plan_tensor_t *full = moai_checkpoint_gather_tensors(g, &n);
  CU_ASSERT_EQUAL(n, 6);
  const moai_plan_tensor_t *w = find(full, n, "W"), *m = find(full, n, "optimizer.exp_avg.W");
  const moai_plan_tensor_t *gw = find(full, n, "grad.W");
  CU_ASSERT_TRUE(w && m && gw && find(full, n, "F") && find(full, n, "optimizer.step"));
  if (!w || !m || !gw) goto done;
  CU_ASSERT_TRUE(w->dims[0] == 2 && w->dims[1] == 4 && w->nbytes == 32);
  CU_ASSERT_EQUAL(memcmp(w->data, kFullW, sizeof(kFullW)), 0);
  CU_ASSERT_STRING_EQUAL(m->param, "W");
  const float *mf = m->data, *gf = gw->data;
  CU_ASSERT_TRUE(mf[2] == 0.3f && mf[5] == 0.6f);
  CU_ASSERT_TRUE(gf[0] == 1 && gf[1] == 1 && gf[2] == 2 && gf[3] == 2 && gf[6] == 2);

  char dir[300];
  snprintf(dir, sizeof(dir), "%s/tp2", g_dir);
  moai_checkpoint_position_t pos = position(), got;
  RT_ASSERT_OK(moai_checkpoint_save(dir, full, n, &pos));
  /* The single-device plan resumes it (full tensors, every one). */
  float w1[8] = {0}, m1[8] = {0}, g1[8], f1[3] = {0, 0.25f, 0.5f}, lw1 = 0;
  int64_t step1 = 0;
  moai_plan_tensor_t one[6];
  memcpy(one, full, sizeof(one));
  for (int i = 0; i < 6; ++i) {
    one[i].data = strcmp(one[i].name, "W") == 0                     ? (void *)w1
                  : strcmp(one[i].name, "optimizer.exp_avg.W") == 0 ? (void *)m1
                  : strcmp(one[i].name, "grad.W") == 0              ? (void *)g1
                  : strcmp(one[i].name, "F") == 0                   ? (void *)f1
                  : strcmp(one[i].name, "optimizer.step") == 0      ? (void *)&step1
                                                                    : (void *)&lw1;
    one[i].writable = one[i].kind != MOAI_PLAN_TENSOR_WEIGHT;
  }
  RT_ASSERT_OK(moai_checkpoint_load(dir, one, 6, &pos, moai_allocator_system(), &got));
  CU_ASSERT_EQUAL(memcmp(w1, kFullW, sizeof(w1)), 0);
  CU_ASSERT_EQUAL(memcmp(m1, m->data, sizeof(m1)), 0);
  CU_ASSERT_EQUAL(step1, 5);
  /* Each tp device loads its own slices. */
  for (uint32_t t = 0; t < 2; ++t) {
    fake_device_t d;
    device_init(&d, t, 100); /* other trained values, same frozen F */
    RT_ASSERT_OK(moai_checkpoint_load_part(dir, d.t, d.s, 6, false, &pos,
                                           moai_allocator_system(), &got));
    CU_ASSERT_EQUAL(memcmp(d.w, dev[t].w, sizeof(d.w)), 0);
    CU_ASSERT_EQUAL(memcmp(d.m, dev[t].m, sizeof(d.m)), 0);
  }
  /* A pipeline stage with F and the step only: refused as the whole plan,
   * accepted as a part of the mesh. */
  fake_device_t d;
  device_init(&d, 0, 0);
  d.step = 0;
  RT_EXPECT_ERROR(moai_checkpoint_load_part(dir, &d.t[4], NULL, 1, false, &pos,
                                            moai_allocator_system(), &got),
                  MOAI_INVALID_ARGUMENT, "is not a weight or state tensor of the plan", NULL);
  RT_ASSERT_OK(moai_checkpoint_load_part(dir, &d.t[4], NULL, 1, true, &pos,
                                         moai_allocator_system(), &got));
  CU_ASSERT_EQUAL(d.step, 5);
done:
  moai_checkpoint_gather_destroy(g);
}

/* Loading refuses a cut that does not match the file, and a frozen slice
 * that differs, without writing anything. */
static void test_load_part_refusals(void) {
  fake_device_t dev[2];
  device_init(&dev[0], 0, 0);
  device_init(&dev[1], 1, 0);
  moai_checkpoint_part_t parts[2] = {{dev[0].t, dev[0].s, 6}, {dev[1].t, dev[1].s, 6}};
  moai_checkpoint_gather_t *g = NULL;
  RT_ASSERT_OK(moai_checkpoint_gather_create(parts, 2, moai_allocator_system(), &g));
  if (!g) return;
  for (size_t p = 0; p < 2; ++p)
    for (size_t i = 0; i < 6; ++i)
      if (moai_checkpoint_gather_wants(g, p, i))
        RT_ASSERT_OK(moai_checkpoint_gather_put(g, p, i, dev[p].t[i].data));
  size_t n = 0;
  const moai_plan_tensor_t *full = moai_checkpoint_gather_tensors(g, &n);
  char dir[300];
  snprintf(dir, sizeof(dir), "%s/refuse", g_dir);
  moai_checkpoint_position_t pos = position(), got;
  RT_ASSERT_OK(moai_checkpoint_save(dir, full, n, &pos));
  moai_checkpoint_gather_destroy(g);
  /* A device of a tp=4 mesh: W would be 2x8. */
  fake_device_t d;
  device_init(&d, 0, 50);
  d.s[0].count = 4;
  RT_EXPECT_ERROR(moai_checkpoint_load_part(dir, d.t, d.s, 6, false, &pos,
                                            moai_allocator_system(), &got),
                  MOAI_INVALID_ARGUMENT, "tensor 'W' is float32 2x4, the plan's is float32 2x8",
                  "all its shards together");
  CU_ASSERT_EQUAL(d.w[0], 51.0f); /* untouched */
  /* A frozen weight cut into 3, whose part 1 differs from the file's. */
  device_init(&d, 1, 50);
  float f1 = 9;
  d.t[1].dims[0] = 1;
  d.t[1].nbytes = 4;
  d.t[1].data = &f1;
  d.s[1] = (moai_checkpoint_slice_t){.axis = 0, .index = 1, .count = 3};
  RT_EXPECT_ERROR(moai_checkpoint_load_part(dir, d.t, d.s, 6, false, &pos,
                                            moai_allocator_system(), &got),
                  MOAI_FAILED_PRECONDITION, "frozen weight 'F' differs", NULL);
  f1 = 0.25f; /* element 1 of F: accepted */
  RT_ASSERT_OK(moai_checkpoint_load_part(dir, d.t, d.s, 6, false, &pos, moai_allocator_system(),
                                         &got));
  CU_ASSERT_EQUAL(d.w[0], kFullW[2]);
}

static void test_gather_refusals(void) {
  fake_device_t dev[2];
  device_init(&dev[0], 0, 0);
  device_init(&dev[1], 1, 0);
  moai_checkpoint_gather_t *g = NULL;
  /* Both devices claim part 0: part 1 of W is missing. */
  dev[1].s[0].index = dev[1].s[2].index = dev[1].s[3].index = 0;
  moai_checkpoint_part_t parts[2] = {{dev[0].t, dev[0].s, 6}, {dev[1].t, dev[1].s, 6}};
  RT_EXPECT_ERROR(moai_checkpoint_gather_create(parts, 2, moai_allocator_system(), &g),
                  MOAI_FAILED_PRECONDITION, "tensor 'W' is cut in 2 parts along axis 1, but no "
                  "device holds part 1", NULL);
  CU_ASSERT_PTR_NULL(g);
  /* One device cuts W, the other holds it whole. */
  device_init(&dev[1], 1, 0);
  memset(&dev[1].s[0], 0, sizeof(dev[1].s[0]));
  RT_EXPECT_ERROR(moai_checkpoint_gather_create(parts, 2, moai_allocator_system(), &g),
                  MOAI_FAILED_PRECONDITION, "tensor 'W' differs between device 0",
                  "and device 1");
  /* A replicated tensor of another dtype. */
  device_init(&dev[1], 1, 0);
  dev[1].t[1].dtype = MOAI_ABI_I32;
  RT_EXPECT_ERROR(moai_checkpoint_gather_create(parts, 2, moai_allocator_system(), &g),
                  MOAI_FAILED_PRECONDITION, "tensor 'F' differs between device 0 (float32 3",
                  "device 1 (int32 3");
  /* Every allocation failing in turn fails cleanly and frees the rest. */
  device_init(&dev[1], 1, 0);
  bool succeeded = false;
  for (uint64_t fail = 1; fail < 200 && !succeeded; ++fail) {
    moai_fault_allocator_t fa = {.base = moai_allocator_system(), .fail_at = fail};
    moai_status_t s = moai_checkpoint_gather_create(parts, 2, moai_fault_allocator(&fa), &g);
    if (!s) {
      succeeded = true;
      moai_checkpoint_gather_destroy(g);
      g = NULL;
    } else {
      CU_ASSERT_EQUAL(moai_status_code(s), MOAI_OUT_OF_MEMORY);
      moai_status_free(s);
    }
    CU_ASSERT_EQUAL(fa.live, 0);
  }
  CU_ASSERT_TRUE(succeeded);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"slices", test_slices},
      {"gather_save_load", test_gather_save_load},
      {"load_part_refusals", test_load_part_refusals},
      {"gather_refusals", test_gather_refusals},
      CU_TEST_INFO_NULL,
  };
  CU_pSuite suite = CU_add_suite("train_checkpoint_mesh", suite_init, suite_clean);
  for (CU_TestInfo *t = tests; t->pName; ++t) CU_add_test(suite, t->pName, t->pTestFunc);
}
