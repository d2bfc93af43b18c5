/* The fused SwiGLU and rotary-embedding kernels (runtime/kernels/nn/
 * swiglu.c, rotary.c) against the unfused kernels of the chains moai-fuse
 * replaces: swiglu = mul(mul(g, sigmoid(g)), u); rotary = add(mul(x, cos),
 * mul(concat(neg(slice(x, h:)), slice(x, :h)), sin)), cos/sin broadcast as
 * the exporters make them ([B,1,S,D] and [S,D] against [B,H,S,D]). Odd
 * sizes, several thread counts (one after the other, and one concurrent
 * OpenMP region), f32 at the reference and generic ISA levels, f64. The
 * gradients are checked in float64 by central differences of the forward
 * kernels (which the first tests tie to the unfused chains), and the f32
 * gradients against the f64 ones. */
#include <float.h>

#include "test_kernels_nn_support.h"

typedef struct tens_t {
  int32_t rank;
  int64_t dims[4];
} tens_t;

static int64_t numel_of(const tens_t *t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->rank; ++i) n *= t->dims[i];
  return n;
}

static void fill(uint64_t *seed, double *x, int64_t n, double lo, double hi) {
  for (int64_t i = 0; i < n; ++i) x[i] = nn_rand_uniform(seed, lo, hi);
}

/* Runs one kernel on inputs `in` (stored as dtype dt) and writes its outputs
 * as doubles; nth < 0 runs -nth threads concurrently. */
static void run_op(uint32_t kernel, moai_isa_t isa, int nth, int32_t dt, int n_in, const tens_t *in,
                   const double *const *data, int n_out, const tens_t *out, double **result,
                   const void *attrs, size_t attrs_size) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, kernel, 1 << 22));
  for (int i = 0; i < n_in; ++i) nn_case_add_in(&c, dt, in[i].rank, in[i].dims);
  for (int i = 0; i < n_out; ++i) nn_case_add_out(&c, dt, out[i].rank, out[i].dims);
  if (attrs_size) nn_case_set_attrs(&c, attrs, attrs_size);
  for (int i = 0; i < n_in; ++i)
    for (int64_t e = 0; e < numel_of(&in[i]); ++e) nn_store(nn_case_in_ptr(&c, (uint32_t)i), dt, e, data[i][e]);
  nn_case_poison_outputs(&c);
  moai_kernel_status_t st;
  int failed = nth < 0 ? nn_case_run_parallel(&c, isa, -nth, &st) : nn_case_run(&c, isa, nth, &st);
  if (failed) fprintf(stderr, "%s: %s\n", moai_kernel_name(kernel), st.message);
  CU_ASSERT_EQUAL_FATAL(failed, 0);
  for (int i = 0; i < n_out; ++i)
    for (int64_t e = 0; e < numel_of(&out[i]); ++e) result[i][e] = nn_load(nn_case_out_ptr(&c, (uint32_t)i), dt, e);
  nn_case_free(&c);
}

/* |got - want| / (1 + |want|) over n values; NaN in either counts as inf. */
static double max_rel(const double *got, const double *want, int64_t n) {
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    double e = fabs(got[i] - want[i]) / (1.0 + fabs(want[i]));
    if (isnan(e)) return INFINITY;
    if (e > worst) worst = e;
  }
  return worst;
}

static const int kThreads[] = {1, 3, 7, -4};

/* ---- swiglu ---- */

static const int64_t kSwigluSizes[] = {1, 7, 176 * 3, 4099};

static void run_swiglu(moai_isa_t isa, int nth, int32_t dt, int64_t n, const double *g,
                       const double *u, double *y) {
  tens_t t = {1, {n}};
  tens_t in[2] = {t, t};
  const double *d[2] = {g, u};
  run_op(MOAI_KERNEL_SWIGLU, isa, nth, dt, 2, in, d, 1, &t, &y, NULL, 0);
}

/* mul(mul(g, sigmoid(g)), u) by the unfused kernels of `isa`. */
static void run_swiglu_chain(moai_isa_t isa, int32_t dt, int64_t n, const double *g,
                             const double *u, double *y) {
  tens_t t = {1, {n}};
  tens_t in[2] = {t, t};
  double *s = malloc(sizeof(double) * (size_t)n), *silu = malloc(sizeof(double) * (size_t)n);
  const double *d1[1] = {g}, *d2[2] = {g, s}, *d3[2] = {silu, u};
  run_op(MOAI_KERNEL_SIGMOID, isa, 1, dt, 1, in, d1, 1, &t, &s, NULL, 0);
  run_op(MOAI_KERNEL_MUL, isa, 1, dt, 2, in, d2, 1, &t, &silu, NULL, 0);
  run_op(MOAI_KERNEL_MUL, isa, 1, dt, 2, in, d3, 1, &t, &y, NULL, 0);
  free(s), free(silu);
}

static void test_swiglu_vs_chain(void) {
  uint64_t seed = 0x5716ULL;
  const moai_isa_t isas[2] = {MOAI_ISA_REFERENCE, MOAI_ISA_GENERIC};
  double worst[3] = {0.0, 0.0, 0.0};
  for (size_t t = 0; t < sizeof(kSwigluSizes) / sizeof(kSwigluSizes[0]); ++t) {
    int64_t n = kSwigluSizes[t];
    double *g = malloc(sizeof(double) * (size_t)n), *u = malloc(sizeof(double) * (size_t)n);
    double *y = malloc(sizeof(double) * (size_t)n), *ref = malloc(sizeof(double) * (size_t)n);
    fill(&seed, g, n, -8.0, 8.0);
    fill(&seed, u, n, -2.0, 2.0);
    for (int64_t i = 0; i < n; ++i) g[i] = (float)g[i], u[i] = (float)u[i];
    /* f32: the fused kernel of each ISA level against that level's chain
     * (the same sigmoid: equal but for FMA contraction) */
    for (int k = 0; k < 2; ++k) {
      run_swiglu_chain(isas[k], MOAI_ABI_F32, n, g, u, ref);
      for (size_t th = 0; th < sizeof(kThreads) / sizeof(kThreads[0]); ++th) {
        run_swiglu(isas[k], kThreads[th], MOAI_ABI_F32, n, g, u, y);
        double e = max_rel(y, ref, n);
        if (e > worst[k]) worst[k] = e;
        CU_ASSERT(e < 1e-6);
      }
    }
    /* f64 against the reference chain */
    run_swiglu_chain(MOAI_ISA_REFERENCE, MOAI_ABI_F64, n, g, u, ref);
    run_swiglu(MOAI_ISA_GENERIC, 3, MOAI_ABI_F64, n, g, u, y);
    double e = max_rel(y, ref, n);
    if (e > worst[2]) worst[2] = e;
    CU_ASSERT(e < 1e-15);
    free(g), free(u), free(y), free(ref);
  }
  fprintf(stderr, "  swiglu vs unfused chain: f32 reference %.2e, generic %.2e, f64 %.2e\n",
          worst[0], worst[1], worst[2]);
}

static void run_swiglu_grad(moai_isa_t isa, int nth, int32_t dt, int64_t n, const double *g,
                            const double *u, const double *dy, double *dg, double *du) {
  tens_t t = {1, {n}};
  tens_t in[3] = {t, t, t}, out[2] = {t, t};
  const double *d[3] = {g, u, dy};
  double *res[2] = {dg, du};
  run_op(MOAI_KERNEL_SWIGLU_GRAD, isa, nth, dt, 3, in, d, 2, out, res, NULL, 0);
}

static void test_swiglu_grad(void) {
  uint64_t seed = 0x9a7eULL;
  double worst_fd = 0.0, worst32 = 0.0;
  for (size_t t = 0; t < sizeof(kSwigluSizes) / sizeof(kSwigluSizes[0]); ++t) {
    int64_t n = kSwigluSizes[t];
    size_t bytes = sizeof(double) * (size_t)n;
    double *g = malloc(bytes), *u = malloc(bytes), *r = malloc(bytes), *yp = malloc(bytes);
    double *dg = malloc(bytes), *du = malloc(bytes), *dg32 = malloc(bytes), *du32 = malloc(bytes);
    fill(&seed, g, n, -6.0, 6.0);
    fill(&seed, u, n, -2.0, 2.0);
    fill(&seed, r, n, -1.0, 1.0);
    run_swiglu_grad(MOAI_ISA_GENERIC, 3, MOAI_ABI_F64, n, g, u, r, dg, du);
    /* central differences of sum(swiglu(g, u) * r) */
    double *vars[2] = {g, u}, *grads[2] = {dg, du};
    for (int vi = 0; vi < 2; ++vi)
      for (int64_t e = 0; e < n; e += 1 + n / 40) {
        double keep = vars[vi][e], l[2];
        for (int s = 0; s < 2; ++s) {
          vars[vi][e] = keep + (s ? -1e-6 : 1e-6);
          run_swiglu(MOAI_ISA_GENERIC, 1, MOAI_ABI_F64, n, g, u, yp);
          l[s] = 0.0;
          for (int64_t i = 0; i < n; ++i) l[s] += yp[i] * r[i];
        }
        vars[vi][e] = keep;
        double err = fabs((l[0] - l[1]) / 2e-6 - grads[vi][e]);
        if (err > worst_fd) worst_fd = err;
        CU_ASSERT(err < 1e-6);
      }
    /* f32 (both ISA levels, several thread counts) against f64 */
    for (int64_t i = 0; i < n; ++i) g[i] = (float)g[i], u[i] = (float)u[i], r[i] = (float)r[i];
    run_swiglu_grad(MOAI_ISA_REFERENCE, 1, MOAI_ABI_F64, n, g, u, r, dg, du);
    for (size_t th = 0; th < sizeof(kThreads) / sizeof(kThreads[0]); ++th)
      for (int k = 0; k < 2; ++k) {
        run_swiglu_grad(k ? MOAI_ISA_GENERIC : MOAI_ISA_REFERENCE, kThreads[th], MOAI_ABI_F32, n,
                        g, u, r, dg32, du32);
        double e = fmax(max_rel(dg32, dg, n), max_rel(du32, du, n));
        if (e > worst32) worst32 = e;
        CU_ASSERT(e < 2e-6);
      }
    free(g), free(u), free(r), free(yp), free(dg), free(du), free(dg32), free(du32);
  }
  fprintf(stderr, "  swiglu_grad vs differences (f64): %.2e; f32 vs f64: %.2e\n", worst_fd, worst32);
}

/* ---- rotary ---- */

typedef struct rot_shape_t {
  tens_t x, cs; /* x and cos/sin */
} rot_shape_t;

static const rot_shape_t kRotShapes[] = {
    {{4, {2, 4, 16, 16}}, {4, {2, 1, 16, 16}}}, /* the Mistral export's q */
    {{4, {2, 3, 7, 6}}, {4, {2, 1, 7, 6}}},
    {{4, {1, 2, 5, 2}}, {2, {5, 2}}},
    {{3, {3, 33, 130}}, {3, {3, 33, 130}}},
    {{4, {2, 5, 9, 64}}, {4, {1, 1, 9, 64}}},
};

static void run_rotary(uint32_t kernel, moai_isa_t isa, int nth, int32_t dt, const rot_shape_t *sh,
                       const double *x, const double *c, const double *s, double *y) {
  tens_t in[3] = {sh->x, sh->cs, sh->cs};
  const double *d[3] = {x, c, s};
  run_op(kernel, isa, nth, dt, 3, in, d, 1, &sh->x, &y, NULL, 0);
}

/* The exporters' chain by the unfused reference kernels. */
static void run_rotary_chain(int32_t dt, const rot_shape_t *sh, const double *x, const double *c,
                             const double *s, double *y) {
  int64_t n = numel_of(&sh->x);
  int32_t r = sh->x.rank;
  int64_t d = sh->x.dims[r - 1], h = d / 2;
  tens_t half = sh->x;
  half.dims[r - 1] = h;
  size_t bytes = sizeof(double) * (size_t)n;
  double *xc = malloc(bytes), *hi = malloc(bytes), *lo = malloc(bytes), *nhi = malloc(bytes);
  double *rh = malloc(bytes), *rs = malloc(bytes);
  const moai_isa_t ref = MOAI_ISA_REFERENCE;
  tens_t xcs[2] = {sh->x, sh->cs}, halves[2] = {half, half}, xx[2] = {sh->x, sh->x};
  const double *a1[2] = {x, c};
  run_op(MOAI_KERNEL_MUL, ref, 1, dt, 2, xcs, a1, 1, &sh->x, &xc, NULL, 0);
  moai_attrs_slice_t sa;
  memset(&sa, 0, sizeof(sa));
  for (int i = 0; i < MOAI_MAX_RANK; ++i) sa.step[i] = 1;
  const double *a2[1] = {x};
  sa.start[r - 1] = h;
  run_op(MOAI_KERNEL_SLICE, ref, 1, dt, 1, &sh->x, a2, 1, &half, &hi, &sa, sizeof(sa));
  sa.start[r - 1] = 0;
  run_op(MOAI_KERNEL_SLICE, ref, 1, dt, 1, &sh->x, a2, 1, &half, &lo, &sa, sizeof(sa));
  const double *a3[1] = {hi};
  run_op(MOAI_KERNEL_NEG, ref, 1, dt, 1, &half, a3, 1, &half, &nhi, NULL, 0);
  moai_attrs_axis_t ax = {.axis = r - 1};
  const double *a4[2] = {nhi, lo};
  run_op(MOAI_KERNEL_CONCAT, ref, 1, dt, 2, halves, a4, 1, &sh->x, &rh, &ax, sizeof(ax));
  const double *a5[2] = {rh, s};
  run_op(MOAI_KERNEL_MUL, ref, 1, dt, 2, xcs, a5, 1, &sh->x, &rs, NULL, 0);
  const double *a6[2] = {xc, rs};
  run_op(MOAI_KERNEL_ADD, ref, 1, dt, 2, xx, a6, 1, &sh->x, &y, NULL, 0);
  free(xc), free(hi), free(lo), free(nhi), free(rh), free(rs);
}

static void test_rotary_vs_chain(void) {
  uint64_t seed = 0x20feULL;
  double worst[2] = {0.0, 0.0};
  for (size_t t = 0; t < sizeof(kRotShapes) / sizeof(kRotShapes[0]); ++t) {
    const rot_shape_t *sh = &kRotShapes[t];
    int64_t n = numel_of(&sh->x), nc = numel_of(&sh->cs);
    double *x = malloc(sizeof(double) * (size_t)n), *y = malloc(sizeof(double) * (size_t)n);
    double *ref = malloc(sizeof(double) * (size_t)n);
    double *c = malloc(sizeof(double) * (size_t)nc), *s = malloc(sizeof(double) * (size_t)nc);
    fill(&seed, x, n, -2.0, 2.0);
    fill(&seed, c, nc, -1.0, 1.0);
    fill(&seed, s, nc, -1.0, 1.0);
    for (int k = 0; k < 2; ++k) {
      int32_t dt = k ? MOAI_ABI_F64 : MOAI_ABI_F32;
      run_rotary_chain(dt, sh, x, c, s, ref);
      for (size_t th = 0; th < sizeof(kThreads) / sizeof(kThreads[0]); ++th)
        for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
          run_rotary(MOAI_KERNEL_ROTARY, (moai_isa_t)isa, kThreads[th], dt, sh, x, c, s, y);
          double e = max_rel(y, ref, n);
          if (e > worst[k]) worst[k] = e;
          CU_ASSERT(e < (k ? 1e-15 : 1e-6));
        }
    }
    free(x), free(y), free(ref), free(c), free(s);
  }
  fprintf(stderr, "  rotary vs unfused chain: f32 %.2e, f64 %.2e\n", worst[0], worst[1]);
}

static void test_rotary_grad(void) {
  uint64_t seed = 0x7a11ULL;
  double worst_fd = 0.0, worst32 = 0.0;
  for (size_t t = 0; t < sizeof(kRotShapes) / sizeof(kRotShapes[0]); ++t) {
    const rot_shape_t *sh = &kRotShapes[t];
    int64_t n = numel_of(&sh->x), nc = numel_of(&sh->cs);
    size_t bytes = sizeof(double) * (size_t)n;
    double *x = malloc(bytes), *r = malloc(bytes), *yp = malloc(bytes), *dx = malloc(bytes);
    double *dx32 = malloc(bytes);
    double *c = malloc(sizeof(double) * (size_t)nc), *s = malloc(sizeof(double) * (size_t)nc);
    fill(&seed, x, n, -2.0, 2.0);
    fill(&seed, r, n, -1.0, 1.0);
    fill(&seed, c, nc, -1.0, 1.0);
    fill(&seed, s, nc, -1.0, 1.0);
    run_rotary(MOAI_KERNEL_ROTARY_GRAD, MOAI_ISA_GENERIC, 3, MOAI_ABI_F64, sh, r, c, s, dx);
    /* central differences of sum(rotary(x) * r) */
    for (int64_t e = 0; e < n; e += 1 + n / 60) {
      double keep = x[e], l[2];
      for (int k = 0; k < 2; ++k) {
        x[e] = keep + (k ? -1e-6 : 1e-6);
        run_rotary(MOAI_KERNEL_ROTARY, MOAI_ISA_GENERIC, 1, MOAI_ABI_F64, sh, x, c, s, yp);
        l[k] = 0.0;
        for (int64_t i = 0; i < n; ++i) l[k] += yp[i] * r[i];
      }
      x[e] = keep;
      double err = fabs((l[0] - l[1]) / 2e-6 - dx[e]);
      if (err > worst_fd) worst_fd = err;
      CU_ASSERT(err < 1e-6);
    }
    /* f32 gradients of every thread count against f64 */
    for (int64_t i = 0; i < n; ++i) r[i] = (float)r[i];
    for (int64_t i = 0; i < nc; ++i) c[i] = (float)c[i], s[i] = (float)s[i];
    run_rotary(MOAI_KERNEL_ROTARY_GRAD, MOAI_ISA_REFERENCE, 1, MOAI_ABI_F64, sh, r, c, s, dx);
    for (size_t th = 0; th < sizeof(kThreads) / sizeof(kThreads[0]); ++th) {
      run_rotary(MOAI_KERNEL_ROTARY_GRAD, MOAI_ISA_GENERIC, kThreads[th], MOAI_ABI_F32, sh, r, c,
                 s, dx32);
      double e = max_rel(dx32, dx, n);
      if (e > worst32) worst32 = e;
      CU_ASSERT(e < 1e-6);
    }
    free(x), free(r), free(yp), free(dx), free(dx32), free(c), free(s);
  }
  fprintf(stderr, "  rotary_grad vs differences (f64): %.2e; f32 vs f64: %.2e\n", worst_fd, worst32);
}

/* Shapes the kernels refuse: an odd last dim, cos not broadcasting. */
static void test_rotary_rejects(void) {
  const rot_shape_t bad[] = {
      {{2, {3, 5}}, {2, {3, 5}}},       /* odd D */
      {{3, {2, 3, 4}}, {3, {2, 2, 4}}}, /* cos dim 2 against x's 3 */
      {{2, {3, 4}}, {2, {3, 1}}},       /* cos's last dim broadcast */
  };
  for (size_t t = 0; t < sizeof(bad) / sizeof(bad[0]); ++t) {
    nn_case_t c;
    CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_ROTARY, 1 << 16));
    nn_case_add_in(&c, MOAI_ABI_F32, bad[t].x.rank, bad[t].x.dims);
    nn_case_add_in(&c, MOAI_ABI_F32, bad[t].cs.rank, bad[t].cs.dims);
    nn_case_add_in(&c, MOAI_ABI_F32, bad[t].cs.rank, bad[t].cs.dims);
    nn_case_add_out(&c, MOAI_ABI_F32, bad[t].x.rank, bad[t].x.dims);
    moai_kernel_status_t st;
    CU_ASSERT_EQUAL(nn_case_run(&c, MOAI_ISA_GENERIC, 2, &st), 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(st.message, "rotary: cos and sin must"));
    nn_case_free(&c);
  }
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"swiglu vs unfused sigmoid/mul chain (f32 per ISA, f64)", test_swiglu_vs_chain},
      {"swiglu_grad vs differences (f64), f32 vs f64", test_swiglu_grad},
      {"rotary vs unfused slice/neg/concat/mul/add chain", test_rotary_vs_chain},
      {"rotary_grad vs differences (f64), f32 vs f64", test_rotary_grad},
      {"rotary rejects bad shapes", test_rotary_rejects},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_fused_swiglu_rotary", tests);
}
