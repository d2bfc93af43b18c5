/* The optimizer kernels (runtime/kernels/train) against torch.optim.AdamW
 * and SGD of PyTorch 1.13: several steps with weight decay, a cosine
 * schedule, momentum/dampening/nesterov and loss weights != 1, from
 * references written by tests/training/gen_reference.py; the reference and
 * generic kernels must also agree bit for bit. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"
#include "moai_test.h"

enum { N = 37, STEPS = 4, THREADS = 3 };

/* Persistent-region layout of one case. */
enum { OFF_P = 0, OFF_G = 256, OFF_M = 512, OFF_V = 768, OFF_STEP = 1024, OFF_LW = 1088,
       PERSIST = 1152 };

typedef struct desc_buf_t {
  _Alignas(16) unsigned char bytes[sizeof(moai_op_desc_t) + 8 * sizeof(moai_tensor_t) +
                                   sizeof(moai_attrs_optimizer_t)];
} desc_buf_t;

static moai_tensor_t persist_tensor(int32_t dtype, uint64_t offset, int32_t rank, int64_t n) {
  moai_tensor_t t;
  memset(&t, 0, sizeof(t));
  t.region = MOAI_REGION_PERSIST;
  t.dtype = dtype;
  t.offset = offset;
  t.rank = rank;
  t.dims[0] = n;
  return t;
}

static const moai_op_desc_t *make_desc(desc_buf_t *buf, uint32_t kernel, const moai_tensor_t *ins,
                                       uint32_t n_in, const moai_attrs_optimizer_t *attrs) {
  memset(buf, 0, sizeof(*buf));
  moai_op_desc_t *h = (moai_op_desc_t *)buf->bytes;
  h->kernel = kernel;
  h->n_in = n_in;
  h->attrs_size = attrs ? sizeof(*attrs) : 0;
  snprintf(h->name, sizeof(h->name), "%s", moai_kernel_name(kernel));
  memcpy(h + 1, ins, n_in * sizeof(moai_tensor_t));
  if (attrs) memcpy((moai_tensor_t *)(h + 1) + n_in, attrs, sizeof(*attrs));
  return h;
}

static bool read_case(const char *name, float *data, size_t count) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/tests/training/data/kernel_%s.bin", moai_test_source_dir(),
           name);
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  size_t got = fread(data, sizeof(float), count, f);
  fclose(f);
  return got == count;
}

/* Runs one case with the kernels of `isa`; writes the params after every
 * step into out[STEPS][N]. */
static void run_case(moai_isa_t isa, uint32_t kernel, const moai_attrs_optimizer_t *a,
                     bool momentum, const float *ref, float out[STEPS][N], bool *out_failed) {
  moai_kernel_fn_t table[MOAI_KERNEL_COUNT];
  moai_kernels_fill(isa, table);
  _Alignas(64) unsigned char persist[PERSIST];
  memset(persist, 0, sizeof(persist));
  memcpy(persist + OFF_P, ref, N * sizeof(float));
  moai_kernel_status_t status;
  memset(&status, 0, sizeof(status));
  moai_exec_t ex = {.kernels = table, .runtime = &status};
  ex.base[MOAI_REGION_PERSIST] = persist;
  moai_tensor_t ins[6];
  uint32_t n_in = 0;
  ins[n_in++] = persist_tensor(MOAI_ABI_F32, OFF_P, 1, N);
  ins[n_in++] = persist_tensor(MOAI_ABI_F32, OFF_G, 1, N);
  if (kernel == MOAI_KERNEL_ADAMW) {
    ins[n_in++] = persist_tensor(MOAI_ABI_F32, OFF_M, 1, N);
    ins[n_in++] = persist_tensor(MOAI_ABI_F32, OFF_V, 1, N);
  } else {
    ins[n_in] = persist_tensor(MOAI_ABI_F32, OFF_M, 1, N);
    if (!momentum) ins[n_in].region = MOAI_REGION_NONE;
    n_in++;
  }
  ins[n_in++] = persist_tensor(MOAI_ABI_I64, OFF_STEP, 0, 1);
  ins[n_in++] = persist_tensor(MOAI_ABI_F32, OFF_LW, 0, 1);
  desc_buf_t update, finish;
  const moai_op_desc_t *up = make_desc(&update, kernel, ins, n_in, a);
  const moai_op_desc_t *fin = make_desc(&finish, MOAI_KERNEL_OPTIMIZER_FINISH, ins + n_in - 2, 2,
                                        NULL);
  const float *step_data = ref + N;
  for (int s = 0; s < STEPS; ++s) {
    const float *grad = step_data + s * (N + 1);
    memcpy(persist + OFF_G, grad, N * sizeof(float));
    memcpy(persist + OFF_LW, grad + N, sizeof(float));
    for (int t = 0; t < THREADS; ++t) table[kernel](&ex, up, t, THREADS);
    for (int t = 0; t < THREADS; ++t) table[MOAI_KERNEL_OPTIMIZER_FINISH](&ex, fin, t, THREADS);
    memcpy(out[s], persist + OFF_P, N * sizeof(float));
    const float *g = (const float *)(persist + OFF_G);
    for (int i = 0; i < N; ++i) CU_ASSERT_EQUAL(g[i], 0.0f); /* grad zeroed */
    CU_ASSERT_EQUAL(*(const int64_t *)(persist + OFF_STEP), s + 1);
    CU_ASSERT_EQUAL(*(const float *)(persist + OFF_LW), 0.0f);
  }
  *out_failed = status.failed != 0;
}

static void check_case(const char *name, uint32_t kernel, moai_attrs_optimizer_t a, bool momentum) {
  static float ref[N + STEPS * (N + 1) + STEPS * N];
  if (!read_case(name, ref, sizeof(ref) / sizeof(ref[0]))) {
    CU_FAIL("missing reference data (run tests/training/gen_reference.py)");
    return;
  }
  const float *want = ref + N + STEPS * (N + 1);
  static float got_ref[STEPS][N], got_opt[STEPS][N];
  bool failed = false;
  run_case(MOAI_ISA_REFERENCE, kernel, &a, momentum, ref, got_ref, &failed);
  CU_ASSERT_FALSE(failed);
  run_case(MOAI_ISA_GENERIC, kernel, &a, momentum, ref, got_opt, &failed);
  CU_ASSERT_FALSE(failed);
  double worst = 0.0;
  for (int s = 0; s < STEPS; ++s)
    for (int i = 0; i < N; ++i) {
      CU_ASSERT_EQUAL(memcmp(&got_ref[s][i], &got_opt[s][i], sizeof(float)), 0);
      double w = want[s * N + i], g = got_ref[s][i];
      double rel = fabs(g - w) / fmax(fabs(w), 1e-30);
      if (rel > worst) worst = rel;
    }
  printf("\n  %s: worst relative error vs torch %.3g ", name, worst);
  CU_ASSERT(worst <= 1e-6);
}

static moai_attrs_optimizer_t adamw(double lr, double b1, double b2, double wd) {
  return (moai_attrs_optimizer_t){.lr = lr, .beta1 = b1, .beta2 = b2, .eps = 1e-8,
                                  .weight_decay = wd};
}

static void test_adamw_cosine(void) {
  moai_attrs_optimizer_t a = adamw(0.01, 0.9, 0.999, 0.05);
  a.schedule = MOAI_LR_COSINE;
  a.warmup_steps = 2;
  a.total_steps = 8;
  check_case("adamw_cosine", MOAI_KERNEL_ADAMW, a, false);
}

static void test_adamw_constant(void) {
  check_case("adamw_constant", MOAI_KERNEL_ADAMW, adamw(0.003, 0.8, 0.95, 0.0), false);
}

static void test_sgd(void) {
  check_case("sgd_momentum", MOAI_KERNEL_SGD,
             (moai_attrs_optimizer_t){.lr = 0.05, .momentum = 0.9, .dampening = 0.2,
                                      .weight_decay = 0.01}, true);
  check_case("sgd_nesterov", MOAI_KERNEL_SGD,
             (moai_attrs_optimizer_t){.lr = 0.02, .momentum = 0.8, .nesterov = 1}, true);
  check_case("sgd_plain", MOAI_KERNEL_SGD,
             (moai_attrs_optimizer_t){.lr = 0.1, .weight_decay = 0.001}, false);
}

/* A zero loss weight (every label ignored) fails the update instead of
 * writing NaN into the weights. */
static void test_zero_loss_weight(void) {
  moai_kernel_fn_t table[MOAI_KERNEL_COUNT];
  moai_kernels_fill(MOAI_ISA_GENERIC, table);
  _Alignas(64) unsigned char persist[PERSIST];
  memset(persist, 0, sizeof(persist));
  moai_kernel_status_t status;
  memset(&status, 0, sizeof(status));
  moai_exec_t ex = {.kernels = table, .runtime = &status};
  ex.base[MOAI_REGION_PERSIST] = persist;
  moai_tensor_t ins[5] = {persist_tensor(MOAI_ABI_F32, OFF_P, 1, N),
                          persist_tensor(MOAI_ABI_F32, OFF_G, 1, N),
                          persist_tensor(MOAI_ABI_F32, OFF_M, 1, N),
                          persist_tensor(MOAI_ABI_I64, OFF_STEP, 0, 1),
                          persist_tensor(MOAI_ABI_F32, OFF_LW, 0, 1)};
  ins[2].region = MOAI_REGION_NONE;
  moai_attrs_optimizer_t a = {.lr = 0.1};
  desc_buf_t buf;
  const moai_op_desc_t *op = make_desc(&buf, MOAI_KERNEL_SGD, ins, 5, &a);
  table[MOAI_KERNEL_SGD](&ex, op, 0, 1);
  CU_ASSERT(status.failed);
  CU_ASSERT_PTR_NOT_NULL(strstr(status.message, "loss weight is 0"));
  const float *p = (const float *)persist;
  CU_ASSERT_EQUAL(p[0], 0.0f);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"adamw, weight decay, cosine schedule, loss weights != 1", test_adamw_cosine},
      {"adamw, constant lr, other betas", test_adamw_constant},
      {"sgd: momentum + dampening, nesterov, plain", test_sgd},
      {"zero loss weight fails", test_zero_loss_weight},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_train", tests);
}
