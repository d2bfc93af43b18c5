/* The all_reduce kernel (runtime/kernels/comm): float32 and float64, in
 * place and copying, sum and max, through a hook in the
 * moai_kernel_runtime_t at ex->runtime; and its failures (no hook, a failing
 * hook, an integer tensor, a malformed descriptor). The reduction is the
 * hook's: here one that records its arguments and adds 10 (sum) or clamps
 * below at 1 (max), so the test sees that the kernel handed it the output. */
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"
#include "moai_test.h"

enum { N = 6, THREADS = 3 };

typedef struct hook_log_t {
  int calls, group, op;
  int32_t dtype;
  size_t count;
  void *data;
  bool fail;
} hook_log_t;

static moai_status_t hook(void *user, int group, int32_t dtype, int op, void *data,
                          size_t count) {
  hook_log_t *log = user;
  log->calls++;
  log->group = group;
  log->dtype = dtype;
  log->op = op;
  log->count = count;
  log->data = data;
  if (log->fail) return MOAI_STATUS(MOAI_IO_ERROR, "rank 1 is gone");
  for (size_t i = 0; i < count; ++i) {
    if (dtype == MOAI_ABI_F64) {
      double *d = data;
      d[i] = op == MOAI_REDUCE_SUM ? d[i] + 10 : (d[i] < 1 ? 1 : d[i]);
    } else {
      float *f = data;
      f[i] = op == MOAI_REDUCE_SUM ? f[i] + 10 : (f[i] < 1 ? 1 : f[i]);
    }
  }
  return moai_ok_status();
}

typedef struct desc_buf_t {
  _Alignas(8) unsigned char bytes[sizeof(moai_op_desc_t) + 2 * sizeof(moai_tensor_t) + 64];
} desc_buf_t;

static moai_tensor_t arena_tensor(int32_t dtype, uint64_t offset) {
  moai_tensor_t t;
  memset(&t, 0, sizeof(t));
  t.region = MOAI_REGION_ARENA;
  t.dtype = dtype;
  t.offset = offset;
  t.rank = 2;
  t.dims[0] = 2;
  t.dims[1] = N / 2;
  return t;
}

static const moai_op_desc_t *make_desc(desc_buf_t *buf, moai_tensor_t in, moai_tensor_t out,
                                       uint32_t n_out, int32_t op, uint32_t attrs_size) {
  memset(buf, 0, sizeof(*buf));
  moai_op_desc_t *h = (moai_op_desc_t *)buf->bytes;
  h->kernel = MOAI_KERNEL_ALL_REDUCE;
  h->n_in = 1;
  h->n_out = n_out;
  h->attrs_size = attrs_size;
  h->index = 7;
  snprintf(h->name, sizeof(h->name), "ar");
  moai_tensor_t *t = (moai_tensor_t *)(h + 1);
  t[0] = in;
  if (n_out) t[1] = out;
  moai_attrs_all_reduce_t a = {.op = op, .group = MOAI_GROUP_TP};
  memcpy(t + 1 + n_out, &a, sizeof(a));
  return h;
}

typedef struct run_t {
  moai_kernel_fn_t table[MOAI_KERNEL_COUNT];
  moai_kernel_runtime_t rt;
  hook_log_t log;
  _Alignas(64) unsigned char arena[256];
  moai_exec_t ex;
} run_t;

static void run_init(run_t *r, bool with_hook) {
  memset(r, 0, sizeof(*r));
  moai_kernels_fill(MOAI_ISA_GENERIC, r->table);
  if (with_hook) {
    r->rt.allreduce = hook;
    r->rt.allreduce_user = &r->log;
  }
  r->ex.kernels = r->table;
  r->ex.runtime = &r->rt;
  r->ex.base[MOAI_REGION_ARENA] = r->arena;
}

static void run_op(run_t *r, const moai_op_desc_t *op) {
  for (int t = 0; t < THREADS; ++t) r->table[MOAI_KERNEL_ALL_REDUCE](&r->ex, op, t, THREADS);
}

static void test_f32_copy_sum(void) {
  run_t r;
  run_init(&r, true);
  float *in = (float *)r.arena, *out = (float *)(r.arena + 64);
  for (int i = 0; i < N; ++i) in[i] = (float)i - 2.5f;
  desc_buf_t b;
  run_op(&r, make_desc(&b, arena_tensor(MOAI_ABI_F32, 0), arena_tensor(MOAI_ABI_F32, 64), 1,
                       MOAI_REDUCE_SUM, sizeof(moai_attrs_all_reduce_t)));
  CU_ASSERT_EQUAL(r.rt.kernel_status.failed, 0);
  CU_ASSERT_EQUAL(r.log.calls, 1); /* one call per rank, not per thread */
  CU_ASSERT(r.log.group == MOAI_GROUP_TP && r.log.op == MOAI_REDUCE_SUM &&
            r.log.dtype == MOAI_ABI_F32 && r.log.count == N);
  CU_ASSERT_PTR_EQUAL(r.log.data, out);
  for (int i = 0; i < N; ++i) {
    CU_ASSERT_EQUAL(out[i], (float)i - 2.5f + 10);
    CU_ASSERT_EQUAL(in[i], (float)i - 2.5f); /* the input is left alone */
  }
}

static void test_f64_in_place_max(void) {
  run_t r;
  run_init(&r, true);
  double *x = (double *)r.arena;
  for (int i = 0; i < N; ++i) x[i] = (double)i * 0.5 - 0.25;
  desc_buf_t b;
  run_op(&r, make_desc(&b, arena_tensor(MOAI_ABI_F64, 0), arena_tensor(MOAI_ABI_F64, 0), 1,
                       MOAI_REDUCE_MAX, sizeof(moai_attrs_all_reduce_t)));
  CU_ASSERT_EQUAL(r.rt.kernel_status.failed, 0);
  CU_ASSERT(r.log.calls == 1 && r.log.op == MOAI_REDUCE_MAX && r.log.dtype == MOAI_ABI_F64);
  CU_ASSERT_PTR_EQUAL(r.log.data, x);
  for (int i = 0; i < N; ++i) {
    double v = (double)i * 0.5 - 0.25;
    CU_ASSERT_EQUAL(x[i], v < 1 ? 1 : v);
  }
}

static void expect_failure(run_t *r, const moai_op_desc_t *op, const char *needle) {
  run_op(r, op);
  CU_ASSERT_EQUAL(r->rt.kernel_status.failed, 1);
  CU_ASSERT_EQUAL(r->rt.kernel_status.op_index, 7);
  if (!strstr(r->rt.kernel_status.message, needle))
    printf("\nwanted '%s' in: %s\n", needle, r->rt.kernel_status.message);
  CU_ASSERT_PTR_NOT_NULL(strstr(r->rt.kernel_status.message, needle));
}

static void test_failures(void) {
  desc_buf_t b;
  moai_tensor_t f32 = arena_tensor(MOAI_ABI_F32, 0), f32b = arena_tensor(MOAI_ABI_F32, 64);
  run_t r;
  run_init(&r, false);
  expect_failure(&r, make_desc(&b, f32, f32b, 1, MOAI_REDUCE_SUM, 8),
                 "all_reduce over the tp group, but no group is bound: run multi-device plans "
                 "with moai-run");
  run_init(&r, true);
  r.log.fail = true;
  expect_failure(&r, make_desc(&b, f32, f32b, 1, MOAI_REDUCE_SUM, 8),
                 "all_reduce over the tp group failed: ");
  CU_ASSERT_PTR_NOT_NULL(strstr(r.rt.kernel_status.message, "rank 1 is gone"));
  run_init(&r, true);
  moai_tensor_t i32 = arena_tensor(MOAI_ABI_I32, 0);
  expect_failure(&r, make_desc(&b, i32, i32, 1, MOAI_REDUCE_SUM, 8),
                 "needs a float32 or float64 input and output");
  CU_ASSERT_EQUAL(r.log.calls, 0);
  run_init(&r, true);
  expect_failure(&r, make_desc(&b, f32, f32b, 0, MOAI_REDUCE_SUM, 8), "malformed descriptor");
  run_init(&r, true);
  expect_failure(&r, make_desc(&b, f32, f32b, 1, MOAI_REDUCE_SUM, 4), "malformed descriptor");
  run_init(&r, true);
  expect_failure(&r, make_desc(&b, f32, f32b, 1, 5, 8), "unknown reduction or group");
  CU_ASSERT_EQUAL(r.log.calls, 0);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"f32, copy then sum", test_f32_copy_sum},
      {"f64, in place, max", test_f64_in_place_max},
      {"failures", test_failures},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_comm", tests);
}
