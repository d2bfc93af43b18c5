/* Gradient kernels of the indexing and softmax ops (runtime/kernels/grad):
 * gather_grad, slice_grad, softmax_grad, log_softmax_grad and
 * softmax_cross_entropy_loss_grad, reference and generic versions, with 1, 3
 * and 7 threads called in turn and 4 in a parallel region, against
 * gradients computed by PyTorch autograd in float64
 * (grad_refs/gen_grad_refs.py writes the cases' .npy files).
 *
 * Tolerances: f64 results must match torch to 1e-12 (sums of a few terms in
 * double). f32 runs round torch's float64 inputs to float first; the
 * gradients are O(1) sums of at most ~70 products, so their error is a few
 * float ulps: rtol 1e-5 with atol 1e-6 leaves a wide margin.
 * gather_grad sums each element's contributions in index order whatever the
 * thread count, so its runs must agree bit for bit. */
#include <unistd.h>

#include "io/npy.h"
#include "moai_test.h"
#include "test_kernels_nn_support.h"

typedef struct ref_case_t {
  const char *name;
  uint32_t kernel;
  uint32_t n_in;
} ref_case_t;

static const ref_case_t kCases[] = {
    {"gather_axis0", MOAI_KERNEL_GATHER_GRAD, 2},
    {"gather_axis1_i32", MOAI_KERNEL_GATHER_GRAD, 2},
    {"gather_scalar", MOAI_KERNEL_GATHER_GRAD, 2},
    {"gather_embedding", MOAI_KERNEL_GATHER_GRAD, 2},
    {"slice_neg_steps", MOAI_KERNEL_SLICE_GRAD, 1},
    {"slice_axes_swapped", MOAI_KERNEL_SLICE_GRAD, 1},
    {"slice_contiguous", MOAI_KERNEL_SLICE_GRAD, 1},
    {"slice_empty", MOAI_KERNEL_SLICE_GRAD, 1},
    {"softmax_last", MOAI_KERNEL_SOFTMAX_GRAD, 2},
    {"softmax_mid", MOAI_KERNEL_SOFTMAX_GRAD, 2},
    {"softmax_first", MOAI_KERNEL_SOFTMAX_GRAD, 2},
    {"log_softmax_last", MOAI_KERNEL_LOG_SOFTMAX_GRAD, 2},
    {"log_softmax_mid", MOAI_KERNEL_LOG_SOFTMAX_GRAD, 2},
    {"log_softmax_first", MOAI_KERNEL_LOG_SOFTMAX_GRAD, 2},
    {"sce_mean_ignore", MOAI_KERNEL_SCE_GRAD, 4},
    {"sce_sum_weights", MOAI_KERNEL_SCE_GRAD, 4},
    {"sce_none_3d_i32", MOAI_KERNEL_SCE_GRAD, 4},
    {"sce_mean_4d_weights", MOAI_KERNEL_SCE_GRAD, 4},
    {"sce_mean_all_ignored", MOAI_KERNEL_SCE_GRAD, 4},
    {"sce_mean_plain", MOAI_KERNEL_SCE_GRAD, 4},
};

/* grad_refs/<case>.<suffix>.npy, or NULL when the file does not exist (an
 * absent optional operand); a file that exists but does not load fails the
 * test. */
static moai_npy_t *ref_load(const char *name, const char *suffix) {
  char path[512];
  snprintf(path, sizeof(path), "%s/tests/unit/runtime/grad_refs/%s.%s.npy",
           moai_test_source_dir(), name, suffix);
  if (access(path, R_OK) != 0) return NULL;
  moai_npy_t *npy = NULL;
  moai_status_t st = moai_npy_open(path, moai_allocator_system(), &npy);
  if (!moai_status_is_ok(st)) {
    fprintf(stderr, "cannot load %s\n", path);
    moai_status_free(st);
    return NULL;
  }
  return npy;
}

/* Copies an npy array into input/output tensor t, floats converted to t's
 * dtype. */
static void ref_copy(nn_case_t *c, const moai_tensor_t *t, const moai_npy_t *npy) {
  const moai_npy_header_t *h = moai_npy_header(npy);
  void *dst = c->arena + t->offset;
  int64_t n = moai_tensor_numel(t);
  for (int64_t i = 0; i < n; ++i) nn_store(dst, t->dtype, i, nn_load(moai_npy_data(npy), h->dtype, i));
}

/* The kernel's attribute struct from the case's int64 attribute vector. */
static void ref_attrs(nn_case_t *c, const ref_case_t *rc, const moai_npy_t *npy) {
  const int64_t *v = moai_npy_data(npy);
  switch (rc->kernel) {
    case MOAI_KERNEL_SLICE_GRAD: {
      moai_attrs_slice_t a;
      memset(&a, 0, sizeof(a));
      int64_t rank = moai_npy_header(npy)->dims[0] / 2;
      for (int64_t i = 0; i < rank; ++i) {
        a.start[i] = v[i];
        a.step[i] = v[rank + i];
      }
      nn_case_set_attrs(c, &a, sizeof(a));
      return;
    }
    case MOAI_KERNEL_SCE_GRAD: {
      moai_attrs_sce_t a = {.reduction = (int32_t)v[0], .has_ignore_index = (int32_t)v[1],
                            .ignore_index = v[2]};
      nn_case_set_attrs(c, &a, sizeof(a));
      return;
    }
    default: {
      moai_attrs_axis_t a = {.axis = v[0]};
      nn_case_set_attrs(c, &a, sizeof(a));
    }
  }
}

/* Runs case rc in `dtype` with every kernel variant and thread count;
 * returns the number of mismatches and raises *max_err to the largest
 * |got - want| seen. */
static int64_t ref_run(const ref_case_t *rc, int32_t dtype, double *max_err) {
  nn_case_t c;
  if (!nn_case_init(&c, rc->kernel, 1u << 20)) return 1;
  moai_npy_t *ins[8] = {0}, *attrs = ref_load(rc->name, "attrs"), *want = ref_load(rc->name, "want");
  int64_t bad = 0;
  if (!attrs || !want) {
    fprintf(stderr, "%s: missing reference files\n", rc->name);
    bad = 1;
    goto done;
  }
  for (uint32_t k = 0; k < rc->n_in; ++k) {
    char suffix[8];
    snprintf(suffix, sizeof(suffix), "%u", k);
    ins[k] = ref_load(rc->name, suffix);
    if (!ins[k]) {
      nn_case_add_in_none(&c);
      continue;
    }
    const moai_npy_header_t *h = moai_npy_header(ins[k]);
    uint32_t i = nn_case_add_in(&c, h->dtype == MOAI_ABI_F64 ? dtype : h->dtype, h->rank, h->dims);
    ref_copy(&c, &c.in[i], ins[k]);
  }
  const moai_npy_header_t *hw = moai_npy_header(want);
  nn_case_add_out(&c, dtype, hw->rank, hw->dims);
  ref_attrs(&c, rc, attrs);

  static const struct { moai_isa_t isa; int nth, parallel; } runs[] = {
      {MOAI_ISA_REFERENCE, 1, 0}, {MOAI_ISA_REFERENCE, 3, 0}, {MOAI_ISA_GENERIC, 1, 0},
      {MOAI_ISA_GENERIC, 3, 0},   {MOAI_ISA_GENERIC, 7, 0},   {MOAI_ISA_GENERIC, 4, 1}};
  size_t bytes = nn_case_out_bytes(&c, 0);
  unsigned char *first = malloc(bytes + 1);
  double tol = dtype == MOAI_ABI_F64 ? 1e-12 : 1e-5, atol = dtype == MOAI_ABI_F64 ? 1e-12 : 1e-6;
  int64_t n = moai_tensor_numel(&c.out[0]);
  for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); ++r) {
    char what[160];
    snprintf(what, sizeof(what), "%s %s [%s, nth=%d%s]", rc->name,
             dtype == MOAI_ABI_F64 ? "f64" : "f32", moai_isa_name(runs[r].isa), runs[r].nth,
             runs[r].parallel ? ", parallel" : "");
    moai_kernel_status_t st;
    nn_case_poison_outputs(&c);
    if ((runs[r].parallel ? nn_case_run_parallel : nn_case_run)(&c, runs[r].isa, runs[r].nth,
                                                                 &st)) {
      fprintf(stderr, "%s: failed: %s\n", what, st.message);
      ++bad;
      continue;
    }
    const void *got = nn_case_out_ptr(&c, 0);
    for (int64_t i = 0; i < n; ++i) {
      double e = fabs(nn_load(got, dtype, i) - ((const double *)moai_npy_data(want))[i]);
      if (e > *max_err) *max_err = e;
    }
    /* nn_compare wants both sides in the output dtype */
    double *w = malloc((size_t)n * sizeof(double) + 1);
    void *wt = malloc(bytes + 1);
    memcpy(w, moai_npy_data(want), (size_t)n * sizeof(double));
    for (int64_t i = 0; i < n; ++i) nn_store(wt, dtype, i, w[i]);
    bad += nn_compare(what, dtype, got, wt, n, tol, atol);
    free(w);
    free(wt);
    if (rc->kernel == MOAI_KERNEL_GATHER_GRAD) {
      if (r == 0) memcpy(first, got, bytes);
      else if (memcmp(first, got, bytes) != 0) {
        fprintf(stderr, "%s: not bitwise equal to the reference\n", what);
        ++bad;
      }
    }
  }
  free(first);
done:
  for (uint32_t k = 0; k < 8; ++k)
    if (ins[k]) moai_npy_close(ins[k]);
  if (attrs) moai_npy_close(attrs);
  if (want) moai_npy_close(want);
  nn_case_free(&c);
  return bad;
}

static void run_kernel_cases(uint32_t kernel) {
  int32_t types[] = {MOAI_ABI_F32, MOAI_ABI_F64};
  for (int t = 0; t < 2; ++t) {
    double max_err = 0.0;
    int64_t bad = 0;
    for (size_t i = 0; i < sizeof(kCases) / sizeof(kCases[0]); ++i)
      if (kCases[i].kernel == kernel) bad += ref_run(&kCases[i], types[t], &max_err);
    if (getenv("MOAI_TEST_VERBOSE"))
      fprintf(stderr, "%s %s: max abs error vs torch %.3g\n", moai_kernel_name(kernel),
              types[t] == MOAI_ABI_F64 ? "f64" : "f32", max_err);
    CU_ASSERT_EQUAL(bad, 0);
  }
}

static void test_gather_grad_torch(void) { run_kernel_cases(MOAI_KERNEL_GATHER_GRAD); }
static void test_slice_grad_torch(void) { run_kernel_cases(MOAI_KERNEL_SLICE_GRAD); }
static void test_softmax_grad_torch(void) { run_kernel_cases(MOAI_KERNEL_SOFTMAX_GRAD); }
static void test_log_softmax_grad_torch(void) { run_kernel_cases(MOAI_KERNEL_LOG_SOFTMAX_GRAD); }
static void test_sce_grad_torch(void) { run_kernel_cases(MOAI_KERNEL_SCE_GRAD); }

/* ---- failures: each variant, one and several threads ---- */

static void expect_failure(nn_case_t *c, const char *message) {
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa)
    for (int nth = 1; nth <= 3; nth += 2) {
      moai_kernel_status_t st;
      CU_ASSERT_TRUE(nn_case_run(c, (moai_isa_t)isa, nth, &st));
      CU_ASSERT_STRING_EQUAL(st.message, message);
      if (strcmp(st.message, message) != 0)
        fprintf(stderr, "got '%s', want '%s'\n", st.message, message);
    }
}

static void test_gather_grad_bad_index(void) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_GATHER_GRAD, 4096));
  nn_case_add_in(&c, MOAI_ABI_F32, 2, (int64_t[]){3, 2});
  nn_case_add_in(&c, MOAI_ABI_I64, 1, (int64_t[]){3});
  nn_case_add_out(&c, MOAI_ABI_F32, 2, (int64_t[]){4, 2});
  memcpy(nn_case_in_ptr(&c, 1), (int64_t[]){0, -5, 1}, 24);
  moai_attrs_axis_t a = {.axis = 0};
  nn_case_set_attrs(&c, &a, sizeof(a));
  expect_failure(&c, "gather_grad: index -5 out of range for axis of size 4");
  memcpy(nn_case_in_ptr(&c, 1), (int64_t[]){0, 4, 1}, 24);
  expect_failure(&c, "gather_grad: index 4 out of range for axis of size 4");
  nn_case_free(&c);

  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_GATHER_GRAD, 4096));
  nn_case_add_in(&c, MOAI_ABI_I32, 1, (int64_t[]){2});
  nn_case_add_in(&c, MOAI_ABI_I64, 1, (int64_t[]){2});
  nn_case_add_out(&c, MOAI_ABI_I32, 1, (int64_t[]){4});
  nn_case_set_attrs(&c, &a, sizeof(a));
  expect_failure(&c, "gather_grad: unsupported dtype int32");
  nn_case_free(&c);
}

static void test_slice_grad_outside(void) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_SLICE_GRAD, 4096));
  nn_case_add_in(&c, MOAI_ABI_F64, 2, (int64_t[]){2, 3});
  nn_case_add_out(&c, MOAI_ABI_F64, 2, (int64_t[]){4, 5});
  moai_attrs_slice_t a;
  memset(&a, 0, sizeof(a));
  a.start[0] = 1, a.step[0] = 2; /* rows 1, 3 */
  a.start[1] = 4, a.step[1] = -1; /* columns 4, 3, 2 */
  nn_case_set_attrs(&c, &a, sizeof(a));
  moai_kernel_status_t st;
  CU_ASSERT_FALSE(nn_case_run(&c, MOAI_ISA_GENERIC, 2, &st));
  a.step[0] = 3; /* rows 1, 4: outside */
  nn_case_set_attrs(&c, &a, sizeof(a));
  expect_failure(&c, "slice_grad: axis 0 writes outside the output");
  a.step[0] = 2;
  a.runtime_params = 1;
  nn_case_set_attrs(&c, &a, sizeof(a));
  expect_failure(&c, "slice_grad: runtime slice parameters are not supported");
  nn_case_free(&c);
}

static void test_sce_grad_bad_label(void) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_SCE_GRAD, 4096));
  nn_case_add_in(&c, MOAI_ABI_F32, 2, (int64_t[]){2, 3});
  nn_case_add_in(&c, MOAI_ABI_I64, 1, (int64_t[]){2});
  nn_case_add_in_none(&c);
  nn_case_add_in(&c, MOAI_ABI_F32, 0, NULL);
  nn_case_add_out(&c, MOAI_ABI_F32, 2, (int64_t[]){2, 3});
  memcpy(nn_case_in_ptr(&c, 1), (int64_t[]){1, 3}, 16);
  for (int red = 0; red < 3; red += 1) {
    if (red == 0) continue; /* none needs a [2] grad */
    moai_attrs_sce_t a = {.reduction = red};
    nn_case_set_attrs(&c, &a, sizeof(a));
    expect_failure(&c, "softmax_cross_entropy_loss_grad: label 3 out of range [0, 3)");
  }
  nn_case_free(&c);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"gather_grad vs torch", test_gather_grad_torch},
      {"slice_grad vs torch", test_slice_grad_torch},
      {"softmax_grad vs torch", test_softmax_grad_torch},
      {"log_softmax_grad vs torch", test_log_softmax_grad_torch},
      {"softmax_cross_entropy_loss_grad vs torch", test_sce_grad_torch},
      {"gather_grad bad index and dtype", test_gather_grad_bad_index},
      {"slice_grad outside the output", test_slice_grad_outside},
      {"softmax_cross_entropy_loss_grad bad label", test_sce_grad_bad_label},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("kernels_grad_index", tests);
}
