/* nn kernels, dense family: matmul, gemm, softmax, log_softmax and
 * softmax_cross_entropy_loss. Optimised vs reference kernels on random
 * inputs (fixed seeds), odd shapes, 1 and 3 threads; plus the behaviours the
 * reference itself must get right (masked rows, bad labels, dtypes).
 *
 * Tolerance for f32 results that are sums: rtol 1e-5 with atol 1e-5. The
 * reference sums in double and rounds once; the optimised kernels sum K
 * products in float, whose rounding error grows like K * 2^-24 * E|term| for
 * random signs (about 1e-6 for the K <= 300 used here with inputs in
 * [-1, 1]); rtol 1e-5 leaves a 10x margin, and atol covers outputs that
 * cancel to near zero, where a float sum's relative error is unbounded. f64
 * results get 1e-12; integer results must be exact. Half types round the f32
 * (or double) sum once, so results differ by at most one ulp: 2^-10 for f16
 * and 2^-7 for bf16. */
#include <float.h>

#include "moai_test.h"
#include "test_kernels_nn_support.h"

static double tol_for(int32_t dtype) {
  switch (dtype) {
    case MOAI_ABI_F32: return F32_RTOL;
    case MOAI_ABI_F64: return F64_TOL;
    case MOAI_ABI_F16: return 1e-3;
    case MOAI_ABI_BF16: return 8e-3;
  }
  return 0.0; /* integers: exact */
}

/* ---- matmul ---- */

static void matmul_case(int32_t dtype, int ra, const int64_t *da, int rb, const int64_t *db,
                        int ro, const int64_t *dout, uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_MATMUL, ARENA));
  nn_case_add_in(&c, dtype, ra, da);
  nn_case_add_in(&c, dtype, rb, db);
  nn_case_add_out(&c, dtype, ro, dout);
  int integer = dtype == MOAI_ABI_I32 || dtype == MOAI_ABI_I64;
  nn_case_fill(&c, 0, &seed, integer ? -100 : -1, integer ? 100 : 1);
  nn_case_fill(&c, 1, &seed, integer ? -100 : -1, integer ? 100 : 1);
  char label[96];
  snprintf(label, sizeof(label), "matmul dtype %d rank %d x %d", dtype, ra, rb);
  nn_check(&c, label, tol_for(dtype), tol_for(dtype));
  nn_case_free(&c);
}

static void test_matmul_shapes(void) {
  int32_t types[] = {MOAI_ABI_F32, MOAI_ABI_F64};
  for (int t = 0; t < 2; ++t) {
    int32_t dt = types[t];
    matmul_case(dt, 2, (int64_t[]){5, 7}, 2, (int64_t[]){7, 3}, 2, (int64_t[]){5, 3}, 1);
    matmul_case(dt, 2, (int64_t[]){37, 129}, 2, (int64_t[]){129, 260}, 2,
                (int64_t[]){37, 260}, 2); /* several tiles and k slices */
    matmul_case(dt, 2, (int64_t[]){1, 300}, 2, (int64_t[]){300, 513}, 2, (int64_t[]){1, 513}, 3);
    matmul_case(dt, 2, (int64_t[]){33, 17}, 2, (int64_t[]){17, 1}, 2, (int64_t[]){33, 1}, 4);
    /* batch broadcasting [2,1,4,6] x [3,6,5] -> [2,3,4,5] */
    matmul_case(dt, 4, (int64_t[]){2, 1, 4, 6}, 3, (int64_t[]){3, 6, 5}, 4,
                (int64_t[]){2, 3, 4, 5}, 5);
    matmul_case(dt, 3, (int64_t[]){3, 4, 6}, 2, (int64_t[]){6, 5}, 3, (int64_t[]){3, 4, 5}, 6);
    /* 1-D operands */
    matmul_case(dt, 1, (int64_t[]){6}, 3, (int64_t[]){2, 6, 9}, 2, (int64_t[]){2, 9}, 7);
    matmul_case(dt, 3, (int64_t[]){3, 4, 6}, 1, (int64_t[]){6}, 2, (int64_t[]){3, 4}, 8);
    matmul_case(dt, 1, (int64_t[]){7}, 1, (int64_t[]){7}, 0, (int64_t[]){0}, 9);
    /* K = 0: zeros */
    matmul_case(dt, 2, (int64_t[]){3, 0}, 2, (int64_t[]){0, 4}, 2, (int64_t[]){3, 4}, 10);
  }
}

static void test_matmul_other_dtypes(void) {
  int32_t types[] = {MOAI_ABI_F16, MOAI_ABI_BF16, MOAI_ABI_I32, MOAI_ABI_I64};
  for (int t = 0; t < 4; ++t) {
    matmul_case(types[t], 2, (int64_t[]){19, 40}, 2, (int64_t[]){40, 70}, 2,
                (int64_t[]){19, 70}, 20 + t);
    matmul_case(types[t], 3, (int64_t[]){2, 3, 9}, 1, (int64_t[]){9}, 2, (int64_t[]){2, 3},
                30 + t);
  }
}

static void test_matmul_values(void) {
  /* [[1,2],[3,4]] x [[5,6],[7,8]] = [[19,22],[43,50]]; int32 wraps. */
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_MATMUL, 4096));
  nn_case_add_in(&c, MOAI_ABI_F32, 2, (int64_t[]){2, 2});
  nn_case_add_in(&c, MOAI_ABI_F32, 2, (int64_t[]){2, 2});
  nn_case_add_out(&c, MOAI_ABI_F32, 2, (int64_t[]){2, 2});
  memcpy(nn_case_in_ptr(&c, 0), (float[]){1, 2, 3, 4}, 16);
  memcpy(nn_case_in_ptr(&c, 1), (float[]){5, 6, 7, 8}, 16);
  moai_kernel_status_t st;
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 2, &st));
    const float *y = nn_case_out_ptr(&c, 0);
    CU_ASSERT(y[0] == 19 && y[1] == 22 && y[2] == 43 && y[3] == 50);
  }
  nn_case_free(&c);

  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_MATMUL, 4096));
  nn_case_add_in(&c, MOAI_ABI_I32, 2, (int64_t[]){1, 2});
  nn_case_add_in(&c, MOAI_ABI_I32, 2, (int64_t[]){2, 1});
  nn_case_add_out(&c, MOAI_ABI_I32, 2, (int64_t[]){1, 1});
  memcpy(nn_case_in_ptr(&c, 0), (int32_t[]){INT32_MAX, 1}, 8);
  memcpy(nn_case_in_ptr(&c, 1), (int32_t[]){1, 1}, 8);
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 1, &st));
    CU_ASSERT_EQUAL(*(int32_t *)nn_case_out_ptr(&c, 0), INT32_MIN);
  }
  nn_case_free(&c);
}

static void test_matmul_bad_dtype(void) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_MATMUL, 4096));
  nn_case_add_in(&c, MOAI_ABI_I8, 2, (int64_t[]){2, 2});
  nn_case_add_in(&c, MOAI_ABI_I8, 2, (int64_t[]){2, 2});
  nn_case_add_out(&c, MOAI_ABI_I8, 2, (int64_t[]){2, 2});
  moai_kernel_status_t st;
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    CU_ASSERT_TRUE(nn_case_run(&c, (moai_isa_t)isa, 3, &st));
    CU_ASSERT_STRING_EQUAL(st.message, "matmul: unsupported dtype int8");
    CU_ASSERT_STRING_EQUAL(st.op_name, "test_matmul");
  }
  nn_case_free(&c);
}

/* ---- gemm ---- */

static void gemm_case(int32_t dtype, int64_t m, int64_t n, int64_t k, int ta, int tb,
                      int crank, const int64_t *cdims, float alpha, float beta, uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_GEMM, ARENA));
  nn_case_add_in(&c, dtype, 2, ta ? (int64_t[]){k, m} : (int64_t[]){m, k});
  nn_case_add_in(&c, dtype, 2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n});
  if (crank >= 0)
    nn_case_add_in(&c, dtype, crank, cdims);
  else
    nn_case_add_in_none(&c);
  nn_case_add_out(&c, dtype, 2, (int64_t[]){m, n});
  moai_attrs_gemm_t at = {alpha, beta, ta, tb};
  nn_case_set_attrs(&c, &at, sizeof(at));
  for (uint32_t i = 0; i < 3; ++i)
    if (nn_case_in_ptr(&c, i)) nn_case_fill(&c, i, &seed, -1, 1);
  char label[96];
  snprintf(label, sizeof(label), "gemm dtype %d %lldx%lldx%lld ta %d tb %d c rank %d", dtype,
           (long long)m, (long long)n, (long long)k, ta, tb, crank);
  nn_check(&c, label, tol_for(dtype), tol_for(dtype));
  nn_case_free(&c);
}

static void test_gemm(void) {
  uint64_t seed = 100;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      gemm_case(MOAI_ABI_F32, 37, 300, 45, ta, tb, -1, NULL, 1.0f, 1.0f, ++seed);
      gemm_case(MOAI_ABI_F32, 37, 300, 45, ta, tb, 2, (int64_t[]){37, 300}, 0.5f, 2.0f, ++seed);
      gemm_case(MOAI_ABI_F32, 5, 7, 129, ta, tb, 1, (int64_t[]){7}, -1.5f, 0.25f, ++seed);
      gemm_case(MOAI_ABI_F64, 9, 31, 11, ta, tb, 2, (int64_t[]){9, 1}, 0.75f, -1.0f, ++seed);
      gemm_case(MOAI_ABI_F16, 9, 31, 11, ta, tb, 2, (int64_t[]){1, 31}, 1.0f, 1.0f, ++seed);
    }
  gemm_case(MOAI_ABI_F32, 8, 6, 4, 0, 0, 0, (int64_t[]){0}, 1.0f, 3.0f, ++seed);
  gemm_case(MOAI_ABI_F32, 8, 6, 4, 0, 0, 1, (int64_t[]){1}, 1.0f, 3.0f, ++seed);
  gemm_case(MOAI_ABI_F32, 8, 6, 4, 1, 1, 2, (int64_t[]){1, 1}, 2.0f, 3.0f, ++seed);
  gemm_case(MOAI_ABI_BF16, 8, 6, 4, 1, 0, 2, (int64_t[]){8, 6}, 2.0f, 3.0f, ++seed);
}

/* ---- softmax / log_softmax ---- */

static void softmax_case(uint32_t kernel, int32_t dtype, int rank, const int64_t *dims,
                         int64_t axis, uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, kernel, ARENA));
  nn_case_add_in(&c, dtype, rank, dims);
  nn_case_add_out(&c, dtype, rank, dims);
  moai_attrs_axis_t at = {axis};
  nn_case_set_attrs(&c, &at, sizeof(at));
  nn_case_fill(&c, 0, &seed, -8, 8);
  char label[96];
  snprintf(label, sizeof(label), "%s dtype %d rank %d axis %lld", moai_kernel_name(kernel),
           dtype, rank, (long long)axis);
  /* a sum of exponentials, then one division or log: as for sums */
  nn_check(&c, label, tol_for(dtype), tol_for(dtype));
  nn_case_free(&c);
}

static void test_softmax(void) {
  uint32_t kernels[] = {MOAI_KERNEL_SOFTMAX, MOAI_KERNEL_LOG_SOFTMAX};
  for (int k = 0; k < 2; ++k) {
    uint32_t kn = kernels[k];
    softmax_case(kn, MOAI_ABI_F32, 2, (int64_t[]){7, 33}, 1, 1);
    softmax_case(kn, MOAI_ABI_F32, 3, (int64_t[]){3, 5, 70}, 1, 2); /* inner > chunk */
    softmax_case(kn, MOAI_ABI_F32, 2, (int64_t[]){4, 6}, 0, 3);
    softmax_case(kn, MOAI_ABI_F32, 4, (int64_t[]){2, 3, 4, 5}, 2, 4);
    softmax_case(kn, MOAI_ABI_F32, 1, (int64_t[]){9}, 0, 5);
    softmax_case(kn, MOAI_ABI_F64, 2, (int64_t[]){5, 1000}, 1, 6);
    softmax_case(kn, MOAI_ABI_F64, 3, (int64_t[]){2, 7, 3}, 1, 7);
  }
}

/* Attention masks add float32's lowest value: a fully masked row must come
 * out uniform (PyTorch, ONNX Runtime), a partly masked one ignores the
 * masked entries. Both layouts (rows and columns), both kernels. */
static void test_softmax_masked_rows(void) {
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa)
    for (int axis = 0; axis < 2; ++axis) {
      nn_case_t c;
      CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_SOFTMAX, 4096));
      int64_t dims[2] = {4, 4};
      nn_case_add_in(&c, MOAI_ABI_F32, 2, dims);
      nn_case_add_out(&c, MOAI_ABI_F32, 2, dims);
      moai_attrs_axis_t at = {axis};
      nn_case_set_attrs(&c, &at, sizeof(at));
      float *x = nn_case_in_ptr(&c, 0);
      for (int i = 0; i < 16; ++i) x[i] = (float)(i % 5) * 0.25f;
      /* line 1 fully masked; line 2 masked but for its first entry */
      for (int j = 0; j < 4; ++j) {
        int e1 = axis == 1 ? 4 + j : j * 4 + 1, e2 = axis == 1 ? 8 + j : j * 4 + 2;
        x[e1] += -FLT_MAX;
        if (j > 0) x[e2] += -FLT_MAX;
      }
      moai_kernel_status_t st;
      CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 3, &st));
      const float *y = nn_case_out_ptr(&c, 0);
      for (int j = 0; j < 4; ++j) {
        int e1 = axis == 1 ? 4 + j : j * 4 + 1, e2 = axis == 1 ? 8 + j : j * 4 + 2;
        CU_ASSERT_DOUBLE_EQUAL(y[e1], 0.25, 1e-6);
        CU_ASSERT_DOUBLE_EQUAL(y[e2], j == 0 ? 1.0 : 0.0, 1e-6);
      }
      nn_case_free(&c);
    }
}

/* ---- softmax_cross_entropy_loss ---- */

typedef struct sce_spec_t {
  int32_t dtype, label_dtype;
  int rank;
  int64_t dims[5]; /* scores */
  int weights, log_prob, reduction, has_ii;
  int64_t ii;
} sce_spec_t;

/* Labels drawn from [0, C) and, when has_ii, about a quarter set to ii. */
static void sce_build(nn_case_t *c, const sce_spec_t *s, uint64_t *seed) {
  CU_ASSERT_FATAL(nn_case_init(c, MOAI_KERNEL_SOFTMAX_CROSS_ENTROPY_LOSS, ARENA));
  int64_t ldims[4];
  ldims[0] = s->dims[0];
  for (int d = 2; d < s->rank; ++d) ldims[d - 1] = s->dims[d];
  nn_case_add_in(c, s->dtype, s->rank, s->dims);
  nn_case_add_in(c, s->label_dtype, s->rank - 1, ldims);
  if (s->weights)
    nn_case_add_in(c, s->dtype, 1, &s->dims[1]);
  else
    nn_case_add_in_none(c);
  if (s->reduction == 0)
    nn_case_add_out(c, s->dtype, s->rank - 1, ldims);
  else
    nn_case_add_out(c, s->dtype, 0, ldims);
  if (s->log_prob) nn_case_add_out(c, s->dtype, s->rank, s->dims);
  moai_attrs_sce_t at = {s->reduction, s->has_ii, s->ii};
  nn_case_set_attrs(c, &at, sizeof(at));
  nn_case_fill(c, 0, seed, -4, 4);
  if (s->weights) nn_case_fill(c, 2, seed, 0.1, 2);
  int64_t n = moai_tensor_numel(&c->in[1]);
  for (int64_t i = 0; i < n; ++i) {
    int64_t label = (int64_t)nn_rand_uniform(seed, 0, (double)s->dims[1]);
    if (s->has_ii && nn_rand_uniform(seed, 0, 1) < 0.25) label = s->ii;
    nn_store(nn_case_in_ptr(c, 1), s->label_dtype, i, (double)label);
  }
}

static void test_sce(void) {
  const sce_spec_t specs[] = {
      {MOAI_ABI_F32, MOAI_ABI_I64, 2, {6, 5}, 1, 1, 0, 1, 2},
      {MOAI_ABI_F32, MOAI_ABI_I64, 2, {6, 5}, 1, 1, 1, 1, 2},
      {MOAI_ABI_F32, MOAI_ABI_I64, 2, {6, 5}, 1, 1, 2, 1, 2},
      {MOAI_ABI_F32, MOAI_ABI_I32, 4, {3, 4, 5, 6}, 0, 0, 2, 0, 0},
      {MOAI_ABI_F32, MOAI_ABI_I32, 3, {3, 11, 7}, 0, 1, 0, 1, -1},
      {MOAI_ABI_F32, MOAI_ABI_I64, 3, {2, 1000, 3}, 1, 0, 2, 1, 7},
      {MOAI_ABI_F64, MOAI_ABI_I64, 3, {5, 9, 4}, 1, 1, 1, 1, 30},
  };
  uint64_t seed = 200;
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); ++i) {
    nn_case_t c;
    sce_build(&c, &specs[i], &seed);
    char label[64];
    snprintf(label, sizeof(label), "sce spec %zu", i);
    nn_check(&c, label, tol_for(specs[i].dtype), tol_for(specs[i].dtype));
    nn_case_free(&c);
  }
}

/* ONNX's reference divides by the sum of weights: all ignored gives NaN. */
static void test_sce_all_ignored_mean_is_nan(void) {
  nn_case_t c;
  uint64_t seed = 300;
  sce_spec_t s = {MOAI_ABI_F32, MOAI_ABI_I64, 2, {3, 4}, 0, 0, 2, 1, 1};
  sce_build(&c, &s, &seed);
  for (int i = 0; i < 3; ++i) ((int64_t *)nn_case_in_ptr(&c, 1))[i] = 1;
  moai_kernel_status_t st;
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 2, &st));
    CU_ASSERT(isnan(*(float *)nn_case_out_ptr(&c, 0)));
  }
  nn_case_free(&c);
}

static void test_sce_bad_label(void) {
  for (int reduction = 0; reduction < 3; ++reduction) {
    nn_case_t c;
    uint64_t seed = 400;
    sce_spec_t s = {MOAI_ABI_F32, MOAI_ABI_I32, 2, {4, 3}, 0, 1, reduction, 1, -100};
    sce_build(&c, &s, &seed);
    ((int32_t *)nn_case_in_ptr(&c, 1))[3] = 3; /* C = 3 */
    moai_kernel_status_t st;
    for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
      CU_ASSERT_TRUE(nn_case_run(&c, (moai_isa_t)isa, 3, &st));
      CU_ASSERT_STRING_EQUAL(st.message,
                             "softmax_cross_entropy_loss: label 3 out of range [0, 3)");
    }
    nn_case_free(&c);
  }
}

/* -log softmax([0, ln 3])[label] by hand: p = [1/4, 3/4]. */
static void test_sce_values(void) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_SOFTMAX_CROSS_ENTROPY_LOSS, 4096));
  nn_case_add_in(&c, MOAI_ABI_F64, 2, (int64_t[]){2, 2});
  nn_case_add_in(&c, MOAI_ABI_I64, 1, (int64_t[]){2});
  nn_case_add_in(&c, MOAI_ABI_F64, 1, (int64_t[]){2});
  nn_case_add_out(&c, MOAI_ABI_F64, 0, NULL);
  moai_attrs_sce_t at = {2, 0, 0};
  nn_case_set_attrs(&c, &at, sizeof(at));
  double l3 = log(3.0);
  memcpy(nn_case_in_ptr(&c, 0), (double[]){0, l3, 0, l3}, 32);
  memcpy(nn_case_in_ptr(&c, 1), (int64_t[]){0, 1}, 16);
  memcpy(nn_case_in_ptr(&c, 2), (double[]){1, 3}, 16);
  moai_kernel_status_t st;
  double want = (log(4.0) + 3 * (log(4.0) - l3)) / 4.0;
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 2, &st));
    CU_ASSERT_DOUBLE_EQUAL(*(double *)nn_case_out_ptr(&c, 0), want, 1e-12);
  }
  nn_case_free(&c);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"matmul shapes (f32, f64)", test_matmul_shapes},
      {"matmul f16, bf16, int32, int64", test_matmul_other_dtypes},
      {"matmul values", test_matmul_values},
      {"matmul unsupported dtype", test_matmul_bad_dtype},
      {"gemm", test_gemm},
      {"softmax, log_softmax", test_softmax},
      {"softmax masked rows", test_softmax_masked_rows},
      {"softmax_cross_entropy_loss", test_sce},
      {"sce all ignored mean is NaN", test_sce_all_ignored_mean_is_nan},
      {"sce bad label", test_sce_bad_label},
      {"sce values", test_sce_values},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_nn_dense", tests);
}
