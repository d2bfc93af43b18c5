/* nn kernels, spatial and row-wise families: conv, max/average/global
 * average pools, batch and layer normalisation, cumsum, trilu. Optimised vs
 * reference kernels on random inputs (fixed seeds), odd shapes, 1 and 3
 * threads, and the cases the reference itself must get right.
 *
 * Tolerances as in test_kernels_nn_dense.c: f32 sums rtol 1e-5 with atol
 * 1e-5 (the optimised kernels sum up to a few hundred terms in float, the
 * reference in double: the float rounding error is ~K * 2^-24 * E|term|,
 * about 1e-6 here, and atol covers sums that cancel to near zero); f64
 * 1e-12; max pool, trilu and integer cumsum are exact. */
#include <float.h>
#include <stddef.h>

#include "moai_test.h"
#include "test_kernels_nn_support.h"

static double tol_for(int32_t dtype) {
  return dtype == MOAI_ABI_F32 ? F32_RTOL : dtype == MOAI_ABI_F64 ? F64_TOL : 0.0;
}

/* ---- windows ---- */

typedef struct win_spec_t {
  int r;                /* spatial rank */
  int64_t n, c, m;      /* batch, in channels, out channels (conv) */
  int64_t in[3], k[3], s[3], d[3], pads[6];
  int64_t group;
  int ceil_mode;        /* output dims by ceil instead of floor */
  int count_include_pad;
} win_spec_t;

static void win_attrs(const win_spec_t *w, moai_attrs_window_t *at, int64_t *out) {
  memset(at, 0, sizeof(*at));
  at->spatial_rank = w->r;
  at->count_include_pad = w->count_include_pad;
  at->group = w->group ? w->group : 1;
  for (int a = 0; a < w->r; ++a) {
    at->kernel[a] = w->k[a];
    at->strides[a] = w->s[a] ? w->s[a] : 1;
    at->dilations[a] = w->d[a] ? w->d[a] : 1;
    at->pads[a] = w->pads[a];
    at->pads[w->r + a] = w->pads[w->r + a];
    int64_t span = (w->k[a] - 1) * at->dilations[a] + 1;
    int64_t room = w->in[a] + w->pads[a] + w->pads[w->r + a] - span;
    out[a] = (w->ceil_mode ? (room + at->strides[a] - 1) / at->strides[a]
                           : room / at->strides[a]) + 1;
    /* ceil mode drops a last window that would start in the end padding */
    if (w->ceil_mode && (out[a] - 1) * at->strides[a] >= w->in[a] + w->pads[a]) --out[a];
  }
}

static void conv_case(int32_t dtype, const win_spec_t *w, int bias, uint64_t seed) {
  nn_case_t c;
  moai_attrs_window_t at;
  int64_t out[3], xd[5] = {w->n, w->c}, wd[5] = {w->m, w->c / (w->group ? w->group : 1)},
                  yd[5] = {w->n, w->m};
  win_attrs(w, &at, out);
  for (int a = 0; a < w->r; ++a) {
    xd[2 + a] = w->in[a];
    wd[2 + a] = w->k[a];
    yd[2 + a] = out[a];
  }
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_CONV, ARENA));
  nn_case_add_in(&c, dtype, 2 + w->r, xd);
  nn_case_add_in(&c, dtype, 2 + w->r, wd);
  if (bias)
    nn_case_add_in(&c, dtype, 1, &w->m);
  else
    nn_case_add_in_none(&c);
  nn_case_add_out(&c, dtype, 2 + w->r, yd);
  nn_case_set_attrs(&c, &at, sizeof(at));
  for (uint32_t i = 0; i < 3; ++i)
    if (nn_case_in_ptr(&c, i)) nn_case_fill(&c, i, &seed, -1, 1);
  char label[64];
  snprintf(label, sizeof(label), "conv %dd dtype %d bias %d", w->r, dtype, bias);
  nn_check(&c, label, tol_for(dtype), tol_for(dtype));
  nn_case_free(&c);
}

static void test_conv(void) {
  const win_spec_t specs[] = {
      {2, 2, 4, 6, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 0, 0},
      {2, 2, 4, 6, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 2, 0, 0},          /* group 2 */
      {2, 1, 3, 5, {13, 12}, {3, 2}, {2, 2}, {2, 1}, {1, 0, 2, 1}, 0, 0, 0},         /* asymmetric */
      {2, 1, 4, 4, {7, 8}, {3, 3}, {1, 2}, {1, 1}, {0, 1, 0, 1}, 4, 0, 0},           /* depthwise */
      {2, 3, 2, 3, {5, 6}, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0, 0, 0},           /* 1x1 */
      {2, 1, 2, 3, {4, 4}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, 0, 0, 0},           /* kernel > input */
      {1, 2, 3, 4, {20}, {5}, {3}, {1}, {2, 1}, 0, 0, 0},
      {1, 1, 2, 2, {17}, {3}, {1}, {3}, {3, 3}, 0, 0, 0},
      {3, 1, 2, 3, {5, 6, 7}, {2, 3, 3}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1, 0, 1, 2}, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); ++i) {
    conv_case(MOAI_ABI_F32, &specs[i], 1, 10 + i);
    conv_case(MOAI_ABI_F32, &specs[i], 0, 30 + i);
    conv_case(MOAI_ABI_F64, &specs[i], 1, 50 + i);
  }
}

static void pool_case(uint32_t kernel, int32_t dtype, const win_spec_t *w, uint64_t seed) {
  nn_case_t c;
  moai_attrs_window_t at;
  int64_t out[3], xd[5] = {w->n, w->c}, yd[5] = {w->n, w->c};
  win_attrs(w, &at, out);
  for (int a = 0; a < w->r; ++a) {
    xd[2 + a] = w->in[a];
    yd[2 + a] = out[a];
  }
  CU_ASSERT_FATAL(nn_case_init(&c, kernel, ARENA));
  nn_case_add_in(&c, dtype, 2 + w->r, xd);
  nn_case_add_out(&c, dtype, 2 + w->r, yd);
  nn_case_set_attrs(&c, &at, sizeof(at));
  if (dtype == MOAI_ABI_U8)
    nn_case_fill(&c, 0, &seed, 0, 256);
  else if (dtype == MOAI_ABI_I8)
    nn_case_fill(&c, 0, &seed, -128, 128);
  else
    nn_case_fill(&c, 0, &seed, -1, 1);
  char label[80];
  snprintf(label, sizeof(label), "%s %dd dtype %d k %lldx%lld", moai_kernel_name(kernel), w->r,
           dtype, (long long)w->k[0], (long long)w->k[1]);
  nn_check(&c, label, kernel == MOAI_KERNEL_MAX_POOL ? 0.0 : tol_for(dtype),
        kernel == MOAI_KERNEL_MAX_POOL ? 0.0 : tol_for(dtype));
  nn_case_free(&c);
}

static const win_spec_t pool_specs[] = {
    {2, 2, 3, 3, {9, 11}, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 0, 0, 0},
    {2, 1, 2, 2, {10, 9}, {2, 3}, {1, 2}, {2, 1}, {0, 1, 1, 0}, 0, 0, 0},            /* dilations */
    {2, 1, 2, 2, {7, 7}, {3, 3}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 0, 1, 0},             /* ceil */
    {2, 1, 2, 2, {7, 8}, {3, 2}, {2, 3}, {1, 1}, {1, 0, 1, 1}, 0, 1, 0},             /* ceil + pads */
    {1, 2, 3, 3, {20}, {4}, {3}, {1}, {2, 1}, 0, 0, 0},
    {3, 1, 2, 2, {5, 6, 7}, {2, 3, 2}, {1, 2, 2}, {1, 1, 1}, {1, 0, 0, 0, 1, 1}, 0, 0, 0},
    {2, 1, 1, 1, {3, 3}, {3, 3}, {1, 1}, {1, 1}, {2, 2, 2, 2}, 0, 0, 0},             /* pads >= kernel/2 */
};

static void test_max_pool(void) {
  int32_t types[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_U8, MOAI_ABI_I8};
  for (size_t i = 0; i < sizeof(pool_specs) / sizeof(pool_specs[0]); ++i)
    for (int t = 0; t < 4; ++t) pool_case(MOAI_KERNEL_MAX_POOL, types[t], &pool_specs[i], 100 + i);
}

static void test_average_pool(void) {
  for (size_t i = 0; i < sizeof(pool_specs) / sizeof(pool_specs[0]); ++i)
    for (int cip = 0; cip < 2; ++cip) {
      win_spec_t w = pool_specs[i];
      w.count_include_pad = cip;
      pool_case(MOAI_KERNEL_AVERAGE_POOL, MOAI_ABI_F32, &w, 200 + i);
      pool_case(MOAI_KERNEL_AVERAGE_POOL, MOAI_ABI_F64, &w, 300 + i);
    }
}

/* 3x3 input 1..9, 2x2 window, stride 1, pads 1 all round: corner windows
 * hold one input; count_include_pad divides by 4 instead of 1. */
static void test_average_pool_values(void) {
  for (int cip = 0; cip < 2; ++cip) {
    nn_case_t c;
    CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_AVERAGE_POOL, 4096));
    nn_case_add_in(&c, MOAI_ABI_F32, 4, (int64_t[]){1, 1, 3, 3});
    nn_case_add_out(&c, MOAI_ABI_F32, 4, (int64_t[]){1, 1, 4, 4});
    moai_attrs_window_t at = {.spatial_rank = 2, .count_include_pad = cip, .kernel = {2, 2},
                              .strides = {1, 1}, .dilations = {1, 1}, .pads = {1, 1, 1, 1}};
    nn_case_set_attrs(&c, &at, sizeof(at));
    for (int i = 0; i < 9; ++i) ((float *)nn_case_in_ptr(&c, 0))[i] = (float)(i + 1);
    moai_kernel_status_t st;
    for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
      CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 2, &st));
      const float *y = nn_case_out_ptr(&c, 0);
      CU_ASSERT_DOUBLE_EQUAL(y[0], cip ? 0.25 : 1.0, 1e-6);  /* {1} */
      CU_ASSERT_DOUBLE_EQUAL(y[1], cip ? 0.75 : 1.5, 1e-6);  /* {1, 2} */
      CU_ASSERT_DOUBLE_EQUAL(y[5], 3.0, 1e-6);               /* {1, 2, 4, 5} */
      CU_ASSERT_DOUBLE_EQUAL(y[15], cip ? 2.25 : 9.0, 1e-6); /* {9} */
    }
    nn_case_free(&c);
  }
}

static void test_global_average_pool(void) {
  const struct { int32_t dtype; int rank; int64_t dims[5]; } cases[] = {
      {MOAI_ABI_F32, 4, {2, 3, 5, 7}}, {MOAI_ABI_F32, 3, {3, 2, 1000}},
      {MOAI_ABI_F64, 3, {1, 4, 10}}, {MOAI_ABI_F64, 5, {1, 2, 3, 4, 5}}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
    nn_case_t c;
    uint64_t seed = 400 + i;
    int64_t od[5] = {cases[i].dims[0], cases[i].dims[1], 1, 1, 1};
    CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_GLOBAL_AVERAGE_POOL, ARENA));
    nn_case_add_in(&c, cases[i].dtype, cases[i].rank, cases[i].dims);
    nn_case_add_out(&c, cases[i].dtype, cases[i].rank, od);
    nn_case_fill(&c, 0, &seed, -1, 1);
    nn_check(&c, "global_average_pool", tol_for(cases[i].dtype), tol_for(cases[i].dtype));
    nn_case_free(&c);
  }
}

static void test_window_bad_dtype(void) {
  uint32_t kernels[] = {MOAI_KERNEL_CONV, MOAI_KERNEL_MAX_POOL, MOAI_KERNEL_AVERAGE_POOL,
                        MOAI_KERNEL_GLOBAL_AVERAGE_POOL};
  const char *want[] = {"conv: unsupported dtype int32", "max_pool: unsupported dtype int32",
                        "average_pool: unsupported dtype int32",
                        "global_average_pool: unsupported dtype int32"};
  for (int k = 0; k < 4; ++k) {
    nn_case_t c;
    CU_ASSERT_FATAL(nn_case_init(&c, kernels[k], 4096));
    nn_case_add_in(&c, MOAI_ABI_I32, 4, (int64_t[]){1, 1, 2, 2});
    if (kernels[k] == MOAI_KERNEL_CONV) nn_case_add_in(&c, MOAI_ABI_I32, 4, (int64_t[]){1, 1, 1, 1});
    nn_case_add_out(&c, MOAI_ABI_I32, 4, (int64_t[]){1, 1, 2, 2});
    moai_attrs_window_t at = {.spatial_rank = 2, .kernel = {1, 1}};
    nn_case_set_attrs(&c, &at, sizeof(at));
    moai_kernel_status_t st;
    for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
      CU_ASSERT_TRUE(nn_case_run(&c, (moai_isa_t)isa, 2, &st));
      CU_ASSERT_STRING_EQUAL(st.message, want[k]);
    }
    nn_case_free(&c);
  }
}

/* ---- batch_normalization ---- */

static void bn_case(int32_t dtype, int rank, const int64_t *dims, int training, int running,
                    uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_BATCH_NORMALIZATION, ARENA));
  nn_case_add_in(&c, dtype, rank, dims);
  for (int i = 0; i < 4; ++i) nn_case_add_in(&c, dtype, 1, &dims[1]);
  nn_case_add_out(&c, dtype, rank, dims);
  if (running) {
    nn_case_add_out(&c, dtype, 1, &dims[1]);
    nn_case_add_out(&c, dtype, 1, &dims[1]);
  } else if (training) {
    nn_case_add_out_none(&c);
    nn_case_add_out_none(&c);
  }
  moai_attrs_batch_norm_t at = {1e-3f, 0.8f, training, 0};
  nn_case_set_attrs(&c, &at, sizeof(at));
  nn_case_fill(&c, 0, &seed, -2, 3);
  nn_case_fill(&c, 1, &seed, 0.5, 1.5);
  nn_case_fill(&c, 2, &seed, -1, 1);
  nn_case_fill(&c, 3, &seed, -0.5, 0.5);
  nn_case_fill(&c, 4, &seed, 0.5, 2);
  char label[80];
  snprintf(label, sizeof(label), "batch_normalization dtype %d rank %d training %d", dtype, rank,
           training);
  nn_check(&c, label, tol_for(dtype), tol_for(dtype));
  nn_case_free(&c);
}

static void test_batch_norm(void) {
  for (int training = 0; training < 2; ++training) {
    bn_case(MOAI_ABI_F32, 4, (int64_t[]){2, 3, 4, 5}, training, training, 500);
    bn_case(MOAI_ABI_F32, 3, (int64_t[]){2, 3, 7}, training, 0, 501);
    bn_case(MOAI_ABI_F32, 4, (int64_t[]){4, 5, 33, 31}, training, training, 502);
    bn_case(MOAI_ABI_F64, 2, (int64_t[]){3, 4}, training, training, 503);
    bn_case(MOAI_ABI_F64, 5, (int64_t[]){2, 3, 2, 3, 4}, training, training, 504);
  }
}

/* Training mode by hand: channel values {1, 3} -> batch mean 2, biased
 * variance 1; running_mean = 0.9 * 10 + 0.1 * 2. */
static void test_batch_norm_training_values(void) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_BATCH_NORMALIZATION, 4096));
  int64_t xd[3] = {2, 1, 1}, cd[1] = {1};
  nn_case_add_in(&c, MOAI_ABI_F64, 3, xd);
  for (int i = 0; i < 4; ++i) nn_case_add_in(&c, MOAI_ABI_F64, 1, cd);
  nn_case_add_out(&c, MOAI_ABI_F64, 3, xd);
  nn_case_add_out(&c, MOAI_ABI_F64, 1, cd);
  nn_case_add_out(&c, MOAI_ABI_F64, 1, cd);
  moai_attrs_batch_norm_t at = {0.0f, 0.9f, 1, 0};
  nn_case_set_attrs(&c, &at, sizeof(at));
  memcpy(nn_case_in_ptr(&c, 0), (double[]){1, 3}, 16);
  *(double *)nn_case_in_ptr(&c, 1) = 2.0;  /* scale */
  *(double *)nn_case_in_ptr(&c, 2) = 0.5;  /* b */
  *(double *)nn_case_in_ptr(&c, 3) = 10.0; /* mean */
  *(double *)nn_case_in_ptr(&c, 4) = 5.0;  /* var */
  moai_kernel_status_t st;
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 1, &st));
    const double *y = nn_case_out_ptr(&c, 0);
    CU_ASSERT_DOUBLE_EQUAL(y[0], -1.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(y[1], 2.5, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(*(double *)nn_case_out_ptr(&c, 1), 0.9 * 10 + 0.1 * 2, 1e-6);
    CU_ASSERT_DOUBLE_EQUAL(*(double *)nn_case_out_ptr(&c, 2), 0.9 * 5 + 0.1 * 1, 1e-6);
  }
  nn_case_free(&c);
}

/* ---- layer_normalization ---- */

static void ln_case(int32_t dtype, int rank, const int64_t *dims, int64_t axis, int srank,
                    const int64_t *sdims, int bias, int stats, uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_LAYER_NORMALIZATION, ARENA));
  nn_case_add_in(&c, dtype, rank, dims);
  nn_case_add_in(&c, dtype, srank, sdims);
  if (bias)
    nn_case_add_in(&c, dtype, srank, sdims);
  else
    nn_case_add_in_none(&c);
  nn_case_add_out(&c, dtype, rank, dims);
  if (stats) {
    int64_t sd[8];
    for (int d = 0; d < rank; ++d) sd[d] = d < axis ? dims[d] : 1;
    nn_case_add_out(&c, dtype, rank, sd);
    nn_case_add_out(&c, dtype, rank, sd);
  }
  moai_attrs_layer_norm_t at = {axis, 1e-5f, 0};
  nn_case_set_attrs(&c, &at, sizeof(at));
  nn_case_fill(&c, 0, &seed, -2, 3);
  nn_case_fill(&c, 1, &seed, 0.5, 1.5);
  if (bias) nn_case_fill(&c, 2, &seed, -1, 1);
  char label[80];
  snprintf(label, sizeof(label), "layer_normalization dtype %d rank %d axis %lld", dtype, rank,
           (long long)axis);
  nn_check(&c, label, tol_for(dtype), tol_for(dtype));
  nn_case_free(&c);
}

static void test_layer_norm(void) {
  int32_t types[] = {MOAI_ABI_F32, MOAI_ABI_F64};
  for (int t = 0; t < 2; ++t) {
    int32_t dt = types[t];
    const int64_t x[3] = {4, 6, 8};
    ln_case(dt, 3, x, 2, 1, (int64_t[]){8}, 1, 1, 600);
    ln_case(dt, 3, x, 1, 2, (int64_t[]){6, 8}, 1, 1, 601);
    ln_case(dt, 3, x, 1, 1, (int64_t[]){8}, 1, 0, 602);      /* broadcast scale */
    ln_case(dt, 3, x, 1, 2, (int64_t[]){6, 1}, 0, 1, 603);   /* broadcast along cols */
    ln_case(dt, 3, x, 0, 3, (int64_t[]){4, 6, 8}, 1, 1, 604);
    ln_case(dt, 3, x, 2, 1, (int64_t[]){1}, 1, 0, 605);      /* scalar-like */
    ln_case(dt, 2, (int64_t[]){7, 1000}, 1, 1, (int64_t[]){1000}, 1, 1, 606);
  }
}

/* ---- cumsum ---- */

static void cumsum_case(int32_t dtype, int rank, const int64_t *dims, int64_t axis, int exclusive,
                        int reverse, uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_CUMSUM, ARENA));
  nn_case_add_in(&c, dtype, rank, dims);
  nn_case_add_out(&c, dtype, rank, dims);
  moai_attrs_cumsum_t at = {.axis = axis, .exclusive = exclusive, .reverse = reverse};
  nn_case_set_attrs(&c, &at, sizeof(at));
  int integer = dtype != MOAI_ABI_F32 && dtype != MOAI_ABI_F64;
  nn_case_fill(&c, 0, &seed, integer ? (dtype == MOAI_ABI_U64 || dtype == MOAI_ABI_U32 ? 0 : -1000) : -1,
               integer ? 1000 : 1);
  char label[96];
  snprintf(label, sizeof(label), "cumsum dtype %d axis %lld exclusive %d reverse %d", dtype,
           (long long)axis, exclusive, reverse);
  nn_check(&c, label, tol_for(dtype), tol_for(dtype));
  nn_case_free(&c);
}

static void test_cumsum(void) {
  const int64_t dims[3] = {3, 4, 70};
  for (int64_t axis = 0; axis < 3; ++axis)
    for (int ex = 0; ex < 2; ++ex)
      for (int rev = 0; rev < 2; ++rev) {
        cumsum_case(MOAI_ABI_F32, 3, dims, axis, ex, rev, 700);
        cumsum_case(MOAI_ABI_F64, 3, dims, axis, ex, rev, 701);
        cumsum_case(MOAI_ABI_I32, 3, dims, axis, ex, rev, 702);
        cumsum_case(MOAI_ABI_I64, 3, dims, axis, ex, rev, 703);
        cumsum_case(MOAI_ABI_U32, 3, dims, axis, ex, rev, 704);
        cumsum_case(MOAI_ABI_U64, 3, dims, axis, ex, rev, 705);
      }
  cumsum_case(MOAI_ABI_F32, 1, (int64_t[]){300}, 0, 0, 0, 706);
  cumsum_case(MOAI_ABI_F32, 1, (int64_t[]){1}, 0, 1, 1, 707);
}

static void test_cumsum_values(void) {
  /* [1, 2, 3]: plain 1 3 6, exclusive 0 1 3, reverse 6 5 3, both 5 3 0 */
  const int32_t want[4][3] = {{1, 3, 6}, {0, 1, 3}, {6, 5, 3}, {5, 3, 0}};
  for (int mode = 0; mode < 4; ++mode) {
    nn_case_t c;
    CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_CUMSUM, 4096));
    nn_case_add_in(&c, MOAI_ABI_I32, 1, (int64_t[]){3});
    nn_case_add_out(&c, MOAI_ABI_I32, 1, (int64_t[]){3});
    moai_attrs_cumsum_t at = {.exclusive = mode & 1, .reverse = mode >> 1};
    nn_case_set_attrs(&c, &at, sizeof(at));
    memcpy(nn_case_in_ptr(&c, 0), (int32_t[]){1, 2, 3}, 12);
    moai_kernel_status_t st;
    for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
      CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 1, &st));
      CU_ASSERT_EQUAL(memcmp(nn_case_out_ptr(&c, 0), want[mode], 12), 0);
    }
    nn_case_free(&c);
  }
}

/* ---- trilu ---- */

static void trilu_case(int32_t dtype, int rank, const int64_t *dims, int64_t k, int upper,
                       uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_TRILU, ARENA));
  nn_case_add_in(&c, dtype, rank, dims);
  nn_case_add_out(&c, dtype, rank, dims);
  moai_attrs_trilu_t at = {.k = k, .upper = upper};
  nn_case_set_attrs(&c, &at, sizeof(at));
  nn_case_fill(&c, 0, &seed, 1, 100); /* no zeros: a kept element is visible */
  char label[96];
  snprintf(label, sizeof(label), "trilu dtype %d k %lld upper %d", dtype, (long long)k, upper);
  nn_check(&c, label, 0.0, 0.0);
  nn_case_free(&c);
}

static void test_trilu(void) {
  int32_t types[] = {MOAI_ABI_F32, MOAI_ABI_I8, MOAI_ABI_F16, MOAI_ABI_I64, MOAI_ABI_BOOL};
  int64_t ks[] = {0, 2, -3, 10, -10, INT64_MAX, INT64_MIN};
  for (int t = 0; t < 5; ++t)
    for (int ki = 0; ki < 7; ++ki)
      for (int up = 0; up < 2; ++up) {
        trilu_case(types[t], 3, (int64_t[]){2, 5, 7}, ks[ki], up, 800);
        trilu_case(types[t], 2, (int64_t[]){9, 4}, ks[ki], up, 801);
      }
  trilu_case(MOAI_ABI_F32, 3, (int64_t[]){3, 0, 5}, 0, 1, 802);
}

/* Lower triangle of a 3x3 with k = 0 by hand, in place (y aliases x). */
static void test_trilu_in_place(void) {
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    nn_case_t c;
    CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_TRILU, 4096));
    nn_case_add_in(&c, MOAI_ABI_I32, 2, (int64_t[]){3, 3});
    nn_case_add_out(&c, MOAI_ABI_I32, 2, (int64_t[]){3, 3});
    c.out[0].offset = c.in[0].offset;
    moai_attrs_trilu_t at = {.upper = 0};
    nn_case_set_attrs(&c, &at, sizeof(at));
    memcpy(nn_case_in_ptr(&c, 0), (int32_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9}, 36);
    moai_kernel_status_t st;
    CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 2, &st));
    CU_ASSERT_EQUAL(memcmp(nn_case_out_ptr(&c, 0), (int32_t[]){1, 0, 0, 4, 5, 0, 7, 8, 9}, 36), 0);
    nn_case_free(&c);
  }
}

/* ---- runtime parameters (CumSum axis, Trilu k) and MaxPool Indices ---- */

/* Runs c with both tables (nth 1 and 3): every run must fail with `needle`
 * in the message. */
static void expect_failure(nn_case_t *c, const char *needle, const char *what) {
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa)
    for (int nth = 1; nth <= 3; nth += 2) {
      moai_kernel_status_t st;
      int failed = nn_case_run(c, (moai_isa_t)isa, nth, &st);
      if (!failed || !strstr(st.message, needle))
        fprintf(stderr, "%s (%s, nth %d): expected a failure mentioning '%s', got '%s'\n", what,
                moai_isa_name((moai_isa_t)isa), nth, needle, failed ? st.message : "success");
      CU_ASSERT(failed && strstr(st.message, needle) != NULL);
    }
}

/* Adds the one-value parameter operand (dtype pdt, `count` copies of v). */
static void add_param(nn_case_t *c, int32_t pdt, int64_t v, int64_t count) {
  uint32_t i = nn_case_add_in(c, pdt, count == 1 ? 0 : 1, &count);
  for (int64_t e = 0; e < count; ++e) {
    if (pdt == MOAI_ABI_I32) ((int32_t *)nn_case_in_ptr(c, i))[e] = (int32_t)v;
    else if (pdt == MOAI_ABI_I64) ((int64_t *)nn_case_in_ptr(c, i))[e] = v;
    else nn_store(nn_case_in_ptr(c, i), pdt, e, (double)v);
  }
}

/* A kernel with its parameter as operand 1 against the same kernel with the
 * parameter folded (`folded` attrs): equal outputs, and the runtime form's
 * reference and optimised versions agree. */
static void runtime_vs_folded(uint32_t kernel, int32_t dtype, int rank, const int64_t *dims,
                              const void *folded, const void *runtime, size_t attrs_size,
                              int32_t pdt, int64_t v, const char *label, uint64_t seed) {
  nn_case_t f, r;
  moai_kernel_status_t st;
  CU_ASSERT_FATAL(nn_case_init(&f, kernel, ARENA) && nn_case_init(&r, kernel, ARENA));
  nn_case_add_in(&f, dtype, rank, dims);
  nn_case_add_out(&f, dtype, rank, dims);
  nn_case_set_attrs(&f, folded, attrs_size);
  uint64_t s1 = seed;
  nn_case_fill(&f, 0, &s1, 1, 100);
  CU_ASSERT_FALSE(nn_case_run(&f, MOAI_ISA_REFERENCE, 1, &st));
  nn_case_add_in(&r, dtype, rank, dims);
  add_param(&r, pdt, v, 1);
  nn_case_add_out(&r, dtype, rank, dims);
  nn_case_set_attrs(&r, runtime, attrs_size);
  memcpy(nn_case_in_ptr(&r, 0), nn_case_in_ptr(&f, 0),
         (size_t)moai_tensor_numel(&f.in[0]) * nn_dtype_size(dtype));
  nn_check(&r, label, tol_for(dtype), tol_for(dtype));
  CU_ASSERT_FALSE(nn_case_run(&r, MOAI_ISA_REFERENCE, 1, &st));
  CU_ASSERT_EQUAL(nn_compare(label, dtype, nn_case_out_ptr(&r, 0), nn_case_out_ptr(&f, 0),
                             moai_tensor_numel(&f.out[0]), 0, 0), 0);
  nn_case_free(&f);
  nn_case_free(&r);
}

static void test_cumsum_trilu_runtime(void) {
  const int64_t dims[3] = {3, 4, 70};
  char label[96];
  for (int64_t axis = -3; axis < 3; ++axis)
    for (int mode = 0; mode < 4; ++mode) {
      int32_t pdt = mode & 1 ? MOAI_ABI_I32 : MOAI_ABI_I64;
      moai_attrs_cumsum_t f = {.axis = axis < 0 ? axis + 3 : axis, .exclusive = mode & 1,
                               .reverse = mode >> 1};
      moai_attrs_cumsum_t r = {.exclusive = mode & 1, .reverse = mode >> 1, .runtime_axis = 1};
      snprintf(label, sizeof(label), "cumsum runtime axis %lld mode %d", (long long)axis, mode);
      runtime_vs_folded(MOAI_KERNEL_CUMSUM, mode & 2 ? MOAI_ABI_I64 : MOAI_ABI_F32, 3, dims, &f, &r,
                        sizeof(f), pdt, axis, label, 900 + (uint64_t)mode);
    }
  const int64_t ks[] = {0, 2, -3, 10, -10, INT64_MAX, INT64_MIN};
  for (int ki = 0; ki < 7; ++ki)
    for (int up = 0; up < 2; ++up) {
      moai_attrs_trilu_t f = {.k = ks[ki], .upper = up}, r = {.upper = up, .runtime_k = 1};
      snprintf(label, sizeof(label), "trilu runtime k %lld upper %d", (long long)ks[ki], up);
      runtime_vs_folded(MOAI_KERNEL_TRILU, MOAI_ABI_F32, 3, (int64_t[]){2, 5, 7}, &f, &r,
                        sizeof(f), MOAI_ABI_I64, ks[ki], label, 950);
    }
}

/* Malformed runtime parameters fail the op with a message; none crashes. */
static void test_cumsum_trilu_runtime_malformed(void) {
  const int64_t dims[2] = {3, 4}, other[2] = {4, 3};
  const struct {
    uint32_t kernel;
    int32_t pdt;
    int64_t v, count;
    int bad_out, no_param;
    const char *needle;
  } cases[] = {
      {MOAI_KERNEL_CUMSUM, MOAI_ABI_I64, 2, 1, 0, 0, "axis 2 out of range for rank 2"},
      {MOAI_KERNEL_CUMSUM, MOAI_ABI_I32, -3, 1, 0, 0, "axis -3 out of range"},
      {MOAI_KERNEL_CUMSUM, MOAI_ABI_I64, 0, 2, 0, 0, "must hold one value"},
      {MOAI_KERNEL_CUMSUM, MOAI_ABI_F32, 0, 1, 0, 0, "int32 or int64"},
      {MOAI_KERNEL_CUMSUM, MOAI_ABI_I64, 0, 1, 1, 0, "differ from the input's"},
      {MOAI_KERNEL_CUMSUM, MOAI_ABI_I64, 0, 1, 0, 1, "expected 2 inputs"},
      {MOAI_KERNEL_TRILU, MOAI_ABI_I64, 1, 0, 0, 0, "must hold one value"},
      {MOAI_KERNEL_TRILU, MOAI_ABI_F64, 1, 1, 0, 0, "int32 or int64"},
      {MOAI_KERNEL_TRILU, MOAI_ABI_I64, 1, 1, 0, 1, "expected 2 inputs"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i) {
    nn_case_t c;
    CU_ASSERT_FATAL(nn_case_init(&c, cases[i].kernel, 4096));
    nn_case_add_in(&c, MOAI_ABI_F32, 2, dims);
    if (!cases[i].no_param) add_param(&c, cases[i].pdt, cases[i].v, cases[i].count);
    nn_case_add_out(&c, MOAI_ABI_F32, 2, cases[i].bad_out ? other : dims);
    moai_attrs_cumsum_t ca = {.runtime_axis = 1};
    moai_attrs_trilu_t ta = {.runtime_k = 1};
    if (cases[i].kernel == MOAI_KERNEL_CUMSUM) nn_case_set_attrs(&c, &ca, sizeof(ca));
    else nn_case_set_attrs(&c, &ta, sizeof(ta));
    char what[64];
    snprintf(what, sizeof(what), "malformed runtime parameter case %zu", i);
    expect_failure(&c, cases[i].needle, what);
    nn_case_free(&c);
  }
  /* a descriptor from before the runtime fields (shorter attrs) keeps its meaning */
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_CUMSUM, 4096));
  nn_case_add_in(&c, MOAI_ABI_I32, 1, (int64_t[]){3});
  nn_case_add_out(&c, MOAI_ABI_I32, 1, (int64_t[]){3});
  moai_attrs_cumsum_t at;
  memset(&at, 0xff, sizeof(at));
  at.axis = 0;
  at.exclusive = at.reverse = 0;
  nn_case_set_attrs(&c, &at, offsetof(moai_attrs_cumsum_t, runtime_axis));
  memcpy(nn_case_in_ptr(&c, 0), (int32_t[]){1, 2, 3}, 12);
  moai_kernel_status_t st;
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    CU_ASSERT_FALSE(nn_case_run(&c, (moai_isa_t)isa, 2, &st));
    CU_ASSERT_EQUAL(memcmp(nn_case_out_ptr(&c, 0), (int32_t[]){1, 3, 6}, 12), 0);
  }
  nn_case_free(&c);
}

/* MaxPool with Indices: the reference and optimised kernels agree, and the
 * reference matches a brute-force walk written from ONNX's definition
 * (first maximum in row-major tap order; flat index over [N, C, spatial],
 * spatial row-major or, storage_order 1, column-major). Values are coarse
 * so that ties are common. */
static void maxpool_indices_case(int32_t dtype, const win_spec_t *w, int storage_order,
                                 uint64_t seed) {
  nn_case_t c;
  moai_attrs_window_t at;
  int64_t out[3], xd[5] = {w->n, w->c}, yd[5] = {w->n, w->c};
  win_attrs(w, &at, out);
  at.storage_order = storage_order;
  for (int a = 0; a < w->r; ++a) {
    xd[2 + a] = w->in[a];
    yd[2 + a] = out[a];
  }
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_MAX_POOL, ARENA));
  nn_case_add_in(&c, dtype, 2 + w->r, xd);
  nn_case_add_out(&c, dtype, 2 + w->r, yd);
  nn_case_add_out(&c, MOAI_ABI_I64, 2 + w->r, yd);
  nn_case_set_attrs(&c, &at, sizeof(at));
  nn_case_fill(&c, 0, &seed, -3, 3);
  char label[96];
  snprintf(label, sizeof(label), "max_pool indices %dd dtype %d storage_order %d", w->r, dtype,
           storage_order);
  nn_check(&c, label, 0.0, 0.0);
  moai_kernel_status_t st;
  CU_ASSERT_FALSE_FATAL(nn_case_run(&c, MOAI_ISA_REFERENCE, 1, &st));
  const void *x = nn_case_in_ptr(&c, 0), *y = nn_case_out_ptr(&c, 0);
  const int64_t *ind = nn_case_out_ptr(&c, 1);
  int64_t osz = 1, isz = 1, bad = 0;
  for (int a = 0; a < w->r; ++a) {
    osz *= out[a];
    isz *= w->in[a];
  }
  for (int64_t e = 0; e < w->n * w->c * osz; ++e) {
    int64_t o[3], rest = e % osz, best_i = -1;
    double best = -INFINITY;
    for (int a = w->r - 1; a >= 0; --a) {
      o[a] = rest % out[a];
      rest /= out[a];
    }
    int64_t taps = 1, kk[3];
    for (int a = 0; a < w->r; ++a) taps *= w->k[a];
    for (int64_t t = 0; t < taps; ++t) {
      int64_t tr = t, p[3], row = 0, col = 0, cstride = 1, inside = 1;
      for (int a = w->r - 1; a >= 0; --a) {
        kk[a] = tr % w->k[a];
        tr /= w->k[a];
      }
      for (int a = 0; a < w->r; ++a) {
        p[a] = o[a] * at.strides[a] - at.pads[a] + kk[a] * at.dilations[a];
        inside &= p[a] >= 0 && p[a] < w->in[a];
        row = row * w->in[a] + p[a];
        col += p[a] * cstride;
        cstride *= w->in[a];
      }
      if (!inside) continue;
      double v = nn_load(x, dtype, (e / osz) * isz + row);
      if (v > best || best_i < 0) best_i = (e / osz) * isz + (storage_order ? col : row);
      if (v > best) best = v;
    }
    if (ind[e] != best_i || nn_load(y, dtype, e) != best) ++bad;
  }
  if (bad) fprintf(stderr, "%s: %lld outputs differ from the brute-force walk\n", label, (long long)bad);
  CU_ASSERT_EQUAL(bad, 0);
  nn_case_free(&c);
}

static void test_max_pool_indices(void) {
  int32_t types[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_U8, MOAI_ABI_I8};
  for (size_t i = 0; i < sizeof(pool_specs) / sizeof(pool_specs[0]); ++i)
    for (int t = 0; t < 4; ++t)
      for (int so = 0; so < 2; ++so)
        maxpool_indices_case(types[t], &pool_specs[i], so, 1000 + i);
  /* Indices of another dtype or shape fail cleanly */
  nn_case_t c;
  moai_attrs_window_t at;
  int64_t out[3];
  win_attrs(&pool_specs[0], &at, out);
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_MAX_POOL, ARENA));
  nn_case_add_in(&c, MOAI_ABI_F32, 4, (int64_t[]){2, 3, 9, 11});
  nn_case_add_out(&c, MOAI_ABI_F32, 4, (int64_t[]){2, 3, out[0], out[1]});
  nn_case_add_out(&c, MOAI_ABI_I32, 4, (int64_t[]){2, 3, out[0], out[1]});
  nn_case_set_attrs(&c, &at, sizeof(at));
  expect_failure(&c, "Indices must be int64", "max_pool int32 indices");
  c.out[1].dtype = MOAI_ABI_I64;
  c.out[1].dims[3] = 1;
  expect_failure(&c, "Indices must be int64", "max_pool indices of another shape");
  nn_case_free(&c);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"conv 1d/2d/3d, group, strides, dilations, pads", test_conv},
      {"max_pool", test_max_pool},
      {"average_pool", test_average_pool},
      {"average_pool values (count_include_pad)", test_average_pool_values},
      {"global_average_pool", test_global_average_pool},
      {"window kernels: unsupported dtype", test_window_bad_dtype},
      {"batch_normalization", test_batch_norm},
      {"batch_normalization training values", test_batch_norm_training_values},
      {"layer_normalization", test_layer_norm},
      {"cumsum", test_cumsum},
      {"cumsum values", test_cumsum_values},
      {"trilu", test_trilu},
      {"trilu in place", test_trilu_in_place},
      {"cumsum and trilu runtime parameters", test_cumsum_trilu_runtime},
      {"cumsum and trilu malformed runtime parameters", test_cumsum_trilu_runtime_malformed},
      {"max_pool indices", test_max_pool_indices},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_nn_spatial", tests);
}
