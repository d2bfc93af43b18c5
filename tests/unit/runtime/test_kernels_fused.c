/* The fused kernels (runtime/kernels/nn/attention.c) against the unfused
 * reference kernels: attention = matmul(q, k^T) * scale + mask -> softmax ->
 * matmul(., v) with the kv heads repeated for grouped-query attention, at
 * odd sizes, GQA ratios 1/2/4, no mask, float-min masks with a fully masked
 * row and -inf masks; rms_norm against the pow/reduce_mean/add/sqrt/div/mul
 * chain. The gradients are checked in float64 by central differences of the
 * forward kernels (which the first tests tie to the reference kernels).
 * The causal / sliding-window / key-padding masks computed from indices are
 * checked against the same masks materialised, on every ISA. */
#include <float.h>

#include "test_kernels_nn_support.h"

typedef struct attn_shape_t {
  int64_t b, h, kvh, s, d;
  /* 0 none, 1 [B,1,S,S] causal float-min with row 1 fully masked, 2 [1,H,S,S] -inf,
   * 3 [B,1,S,S] causal within a window of 40 plus the last 3 keys of batch 1 padded
   * (float-min, no row fully masked: the blocked kernels skip hidden tiles) */
  int mask;
} attn_shape_t;

/* Sizes above 64 cross the blocked kernels' 64 x 64 tiles (partial last tiles). */
static const attn_shape_t kShapes[] = {
    {2, 3, 3, 7, 5, 0}, {1, 4, 2, 13, 3, 1}, {2, 8, 2, 70, 9, 1}, {1, 4, 1, 66, 4, 2},
    {2, 2, 1, 5, 6, 2}, {2, 4, 2, 150, 64, 3}, {1, 2, 1, 130, 16, 0}, {2, 2, 2, 129, 33, 1},
};

/* The ISAs whose f32 attention kernels are tested here: generic (the
 * row-at-a-time kernel) and, where this CPU has them, the blocked kernels. */
static const moai_isa_t kIsas[] = {MOAI_ISA_GENERIC, MOAI_ISA_AVX2, MOAI_ISA_AVX512};
static const char *const kIsaNames[] = {"generic", "avx2", "avx512"};

static void fill(uint64_t *seed, double *x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = nn_rand_uniform(seed, -1.0, 1.0);
}

static void fill_mask(const attn_shape_t *sh, double *m) {
  int64_t mb = sh->mask != 2 ? sh->b : 1, mh = sh->mask == 2 ? sh->h : 1, S = sh->s;
  for (int64_t b = 0; b < mb; ++b)
    for (int64_t h = 0; h < mh; ++h)
      for (int64_t i = 0; i < S; ++i)
        for (int64_t j = 0; j < S; ++j) {
          double v = 0.0;
          if (sh->mask == 1) v = (j > i || i == 1) ? -FLT_MAX : 0.0;
          if (sh->mask == 2) v = ((i + j + h) % 3 == 0 && j != i) ? -INFINITY : 0.0;
          if (sh->mask == 3)
            v = (j > i || i - j >= 40 || (b == 1 && j >= S - 3 && j != i)) ? -FLT_MAX : 0.0;
          m[((b * mh + h) * S + i) * S + j] = v;
        }
}

static void store(void *p, int32_t dtype, const double *x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (dtype == MOAI_ABI_F32) ((float *)p)[i] = (float)x[i];
    else ((double *)p)[i] = x[i];
  }
}

/* Runs moai.attention; out (and lse) as doubles. */
static void run_attention_isa(moai_isa_t isa, const attn_shape_t *sh, int32_t dt, const double *q,
                              const double *k, const double *v, const double *m, double scale,
                              double *out, double *lse) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_ATTENTION, 1 << 22));
  int64_t qd[4] = {sh->b, sh->h, sh->s, sh->d}, kd[4] = {sh->b, sh->kvh, sh->s, sh->d};
  int64_t md[4] = {sh->mask != 2 ? sh->b : 1, sh->mask == 2 ? sh->h : 1, sh->s, sh->s};
  int64_t ld[3] = {sh->b, sh->h, sh->s};
  nn_case_add_in(&c, dt, 4, qd);
  nn_case_add_in(&c, dt, 4, kd);
  nn_case_add_in(&c, dt, 4, kd);
  if (sh->mask) nn_case_add_in(&c, dt, 4, md); else nn_case_add_in_none(&c);
  nn_case_add_out(&c, dt, 4, qd);
  nn_case_add_out(&c, dt, 3, ld);
  moai_attrs_attention_t a = {.scale = (float)scale};
  nn_case_set_attrs(&c, &a, sizeof(a));
  int64_t nq = sh->b * sh->h * sh->s * sh->d, nk = sh->b * sh->kvh * sh->s * sh->d;
  store(nn_case_in_ptr(&c, 0), dt, q, nq);
  store(nn_case_in_ptr(&c, 1), dt, k, nk);
  store(nn_case_in_ptr(&c, 2), dt, v, nk);
  if (sh->mask) store(nn_case_in_ptr(&c, 3), dt, m, md[0] * md[1] * md[2] * md[3]);
  moai_kernel_status_t st;
  CU_ASSERT_EQUAL_FATAL(nn_case_run(&c, isa, 3, &st), 0);
  for (int64_t i = 0; i < nq; ++i) out[i] = nn_load(nn_case_out_ptr(&c, 0), dt, i);
  if (lse)
    for (int64_t i = 0; i < ld[0] * ld[1] * ld[2]; ++i) lse[i] = nn_load(nn_case_out_ptr(&c, 1), dt, i);
  nn_case_free(&c);
}

static void run_attention(const attn_shape_t *sh, int32_t dt, const double *q, const double *k,
                          const double *v, const double *m, double scale, double *out, double *lse) {
  run_attention_isa(MOAI_ISA_GENERIC, sh, dt, q, k, v, m, scale, out, lse);
}

/* One reference kernel on [in0, in1] -> out (f32), with attrs. */
static void ref_kernel(uint32_t kernel, int n_in, const int64_t *const *dims, const float *const *data,
                       const int64_t *odims, float *out, const void *attrs, size_t attrs_size) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, kernel, 1 << 22));
  for (int i = 0; i < n_in; ++i) nn_case_add_in(&c, MOAI_ABI_F32, 4, dims[i]);
  nn_case_add_out(&c, MOAI_ABI_F32, 4, odims);
  if (attrs_size) nn_case_set_attrs(&c, attrs, attrs_size);
  for (int i = 0; i < n_in; ++i)
    memcpy(nn_case_in_ptr(&c, (uint32_t)i), data[i],
           (size_t)(dims[i][0] * dims[i][1] * dims[i][2] * dims[i][3]) * sizeof(float));
  moai_kernel_status_t st;
  CU_ASSERT_EQUAL_FATAL(nn_case_run(&c, MOAI_ISA_REFERENCE, 1, &st), 0);
  memcpy(out, nn_case_out_ptr(&c, 0), nn_case_out_bytes(&c, 0));
  nn_case_free(&c);
}

static void test_attention_vs_reference(void) {
  uint64_t seed = 0x5eedULL;
  double worst = 0.0;
  for (size_t t = 0; t < sizeof(kShapes) / sizeof(kShapes[0]); ++t) {
    const attn_shape_t *sh = &kShapes[t];
    int64_t B = sh->b, H = sh->h, S = sh->s, D = sh->d, rep = sh->h / sh->kvh;
    int64_t nq = B * H * S * D, nk = B * sh->kvh * S * D, nss = B * H * S * S;
    double *q = malloc(sizeof(double) * (size_t)nq), *k = malloc(sizeof(double) * (size_t)nk);
    double *v = malloc(sizeof(double) * (size_t)nk), *m = malloc(sizeof(double) * (size_t)nss);
    double *out = malloc(sizeof(double) * (size_t)nq);
    float *qf = malloc(sizeof(float) * (size_t)nq), *kt = malloc(sizeof(float) * (size_t)nq);
    float *vr = malloc(sizeof(float) * (size_t)nq), *sc = malloc(sizeof(float) * (size_t)nss);
    float *p = malloc(sizeof(float) * (size_t)nss), *ref = malloc(sizeof(float) * (size_t)nq);
    fill(&seed, q, nq);
    fill(&seed, k, nk);
    fill(&seed, v, nk);
    if (sh->mask) fill_mask(sh, m);
    double scale = 1.0 / sqrt((double)D);
    /* the unfused graph: repeated kv heads (copies), k transposed */
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t s = 0; s < S; ++s)
          for (int64_t d = 0; d < D; ++d) {
            int64_t src = ((b * sh->kvh + h / rep) * S + s) * D + d;
            qf[((b * H + h) * S + s) * D + d] = (float)q[((b * H + h) * S + s) * D + d];
            kt[((b * H + h) * D + d) * S + s] = (float)k[src];
            vr[((b * H + h) * S + s) * D + d] = (float)v[src];
          }
    int64_t qd[4] = {B, H, S, D}, ktd[4] = {B, H, D, S}, sd[4] = {B, H, S, S};
    const int64_t *d1[2] = {qd, ktd};
    const float *x1[2] = {qf, kt};
    ref_kernel(MOAI_KERNEL_MATMUL, 2, d1, x1, sd, sc, NULL, 0);
    int64_t mb = sh->mask != 2 ? B : 1, mh = sh->mask == 2 ? H : 1;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t e = 0; e < S * S; ++e) {
          float s = sc[(b * H + h) * S * S + e] * (float)scale;
          if (sh->mask) s += (float)m[((b % mb) * mh + h % mh) * S * S + e];
          sc[(b * H + h) * S * S + e] = s;
        }
    moai_attrs_axis_t ax = {.axis = 3};
    const int64_t *d2[1] = {sd};
    const float *x2[1] = {sc};
    ref_kernel(MOAI_KERNEL_SOFTMAX, 1, d2, x2, sd, p, &ax, sizeof(ax));
    const int64_t *d3[2] = {sd, qd};
    const float *x3[2] = {p, vr};
    ref_kernel(MOAI_KERNEL_MATMUL, 2, d3, x3, qd, ref, NULL, 0);
    for (size_t ii = 0; ii < sizeof(kIsas) / sizeof(kIsas[0]); ++ii) {
      if (kIsas[ii] > moai_isa_detect()) {
        if (t == 0) fprintf(stderr, "  (this CPU has no %s: its kernels not run)\n", kIsaNames[ii]);
        continue;
      }
      run_attention_isa(kIsas[ii], sh, MOAI_ABI_F32, q, k, v, m, scale, out, NULL);
      for (int64_t i = 0; i < nq; ++i) {
        if (isnan(ref[i])) {
          CU_ASSERT(isnan(out[i]));
          continue;
        }
        double err = fabs(out[i] - ref[i]);
        if (err > worst) worst = err;
        if (err > 2e-6) {
          CU_FAIL("attention differs from the unfused reference");
          fprintf(stderr, "%s shape %zu element %lld: %g vs %g\n", kIsaNames[ii], t,
                  (long long)i, out[i], (double)ref[i]);
          break;
        }
      }
    }
    free(q), free(k), free(v), free(m), free(out), free(qf), free(kt), free(vr), free(sc), free(p),
        free(ref);
  }
  fprintf(stderr, "  attention vs unfused reference: max abs error %.2e\n", worst);
}

/* sum(out * r) for fixed random r: the scalar whose gradient is checked. */
static double attn_loss(const attn_shape_t *sh, const double *q, const double *k, const double *v,
                        const double *m, double scale, const double *r, double *out) {
  run_attention(sh, MOAI_ABI_F64, q, k, v, m, scale, out, NULL);
  double l = 0.0;
  for (int64_t i = 0; i < sh->b * sh->h * sh->s * sh->d; ++i) l += out[i] * r[i];
  return l;
}

/* Runs moai.attention_grad on x = {q, k, v} with the forward's out and lse
 * and dout; g = {dq, dk, dv} as doubles. */
static void run_attention_grad(moai_isa_t isa, const attn_shape_t *sh, int32_t dt, double *const *x,
                               const double *out, const double *lse, const double *dout,
                               const double *m, double scale, double *const *g) {
  int64_t nq = sh->b * sh->h * sh->s * sh->d, nk = sh->b * sh->kvh * sh->s * sh->d;
  int64_t nm = sh->b * sh->s * sh->s, nl = sh->b * sh->h * sh->s, n[3] = {nq, nk, nk};
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_ATTENTION_GRAD, 1 << 23));
  int64_t qd[4] = {sh->b, sh->h, sh->s, sh->d}, kd[4] = {sh->b, sh->kvh, sh->s, sh->d};
  int64_t md[4] = {sh->b, 1, sh->s, sh->s}, ld[3] = {sh->b, sh->h, sh->s};
  nn_case_add_in(&c, dt, 4, qd);
  nn_case_add_in(&c, dt, 4, kd);
  nn_case_add_in(&c, dt, 4, kd);
  nn_case_add_in(&c, dt, 4, qd);
  nn_case_add_in(&c, dt, 3, ld);
  nn_case_add_in(&c, dt, 4, qd);
  if (sh->mask) nn_case_add_in(&c, dt, 4, md); else nn_case_add_in_none(&c);
  nn_case_add_out(&c, dt, 4, qd);
  nn_case_add_out(&c, dt, 4, kd);
  nn_case_add_out(&c, dt, 4, kd);
  moai_attrs_attention_t a = {.scale = (float)scale};
  nn_case_set_attrs(&c, &a, sizeof(a));
  for (int i = 0; i < 3; ++i) store(nn_case_in_ptr(&c, (uint32_t)i), dt, x[i], n[i]);
  store(nn_case_in_ptr(&c, 3), dt, out, nq);
  store(nn_case_in_ptr(&c, 4), dt, lse, nl);
  store(nn_case_in_ptr(&c, 5), dt, dout, nq);
  if (sh->mask) store(nn_case_in_ptr(&c, 6), dt, m, nm);
  nn_case_poison_outputs(&c);
  moai_kernel_status_t st;
  CU_ASSERT_EQUAL_FATAL(nn_case_run(&c, isa, 3, &st), 0);
  for (int i = 0; i < 3; ++i)
    for (int64_t e = 0; e < n[i]; ++e) g[i][e] = nn_load(nn_case_out_ptr(&c, (uint32_t)i), dt, e);
  nn_case_free(&c);
}

static void test_attention_grad_fd(void) {
  uint64_t seed = 0xfeedULL;
  double worst = 0.0;
  for (size_t t = 0; t < sizeof(kShapes) / sizeof(kShapes[0]); ++t) {
    attn_shape_t sh = kShapes[t];
    if (sh.mask == 2) continue; /* -inf masks: a finite difference of an exact 0 says nothing new */
    if (sh.s > 16) sh.s = 9;    /* keep the difference quotients cheap */
    int64_t nq = sh.b * sh.h * sh.s * sh.d, nk = sh.b * sh.kvh * sh.s * sh.d;
    int64_t nm = sh.b * sh.s * sh.s, nl = sh.b * sh.h * sh.s;
    double *x[3], *g[3], *m = calloc((size_t)nm, sizeof(double)), *r = malloc(sizeof(double) * (size_t)nq);
    double *out = malloc(sizeof(double) * (size_t)nq), *lse = malloc(sizeof(double) * (size_t)nl);
    int64_t n[3] = {nq, nk, nk};
    for (int i = 0; i < 3; ++i) {
      x[i] = malloc(sizeof(double) * (size_t)n[i]);
      g[i] = malloc(sizeof(double) * (size_t)n[i]);
      fill(&seed, x[i], n[i]);
    }
    fill(&seed, r, nq);
    if (sh.mask) fill_mask(&sh, m);
    /* A fully masked row's scores all round to -FLT_MAX, so a difference
     * quotient sees no dependence on q or k there while the exact gradient
     * (PyTorch's and the unfused graph's) does not vanish: unmask its
     * diagonal for this check. */
    for (int64_t b = 0; sh.mask && b < sh.b; ++b) m[(b * sh.s + 1) * sh.s + 0] = 0.0;
    double scale = 0.7;
    run_attention(&sh, MOAI_ABI_F64, x[0], x[1], x[2], m, scale, out, lse);
    run_attention_grad(MOAI_ISA_GENERIC, &sh, MOAI_ABI_F64, x, out, lse, r, m, scale, g);
    const double h = 1e-6;
    for (int i = 0; i < 3; ++i)
      for (int64_t e = 0; e < n[i]; e += 1 + n[i] / 40) {
        double keep = x[i][e];
        x[i][e] = keep + h;
        double lp = attn_loss(&sh, x[0], x[1], x[2], m, (float)scale, r, out);
        x[i][e] = keep - h;
        double lm = attn_loss(&sh, x[0], x[1], x[2], m, (float)scale, r, out);
        x[i][e] = keep;
        double fd = (lp - lm) / (2 * h), err = fabs(fd - g[i][e]);
        if (err > worst) worst = err;
        CU_ASSERT(err < 1e-7);
      }
    for (int i = 0; i < 3; ++i) free(x[i]), free(g[i]);
    free(m), free(r), free(out), free(lse);
  }
  fprintf(stderr, "  attention_grad vs central differences (f64): max abs error %.2e\n", worst);
}

/* The f32 gradient kernels of every ISA (the blocked ones on AVX2 and
 * AVX-512) against the float64 row-at-a-time gradient, which the previous
 * test ties to central differences, on shapes that cross the 64 x 64 tiles,
 * with tiles skipped (mask 3) and fully masked rows (mask 1). Bound: f32
 * sums of S products of O(1) terms, relative 2e-5. */
static void test_attention_grad_f32(void) {
  uint64_t seed = 0xbeefULL;
  double worst = 0.0;
  for (size_t t = 0; t < sizeof(kShapes) / sizeof(kShapes[0]); ++t) {
    attn_shape_t sh = kShapes[t];
    if (sh.mask == 2) continue; /* [1,H,S,S] masks: the gradient op here takes [B,1,S,S] */
    int64_t nq = sh.b * sh.h * sh.s * sh.d, nk = sh.b * sh.kvh * sh.s * sh.d;
    int64_t nm = sh.b * sh.s * sh.s, nl = sh.b * sh.h * sh.s, n[3] = {nq, nk, nk};
    double *x[3], *g64[3], *g32[3], *m = calloc((size_t)nm, sizeof(double));
    double *r = malloc(sizeof(double) * (size_t)nq), *out = malloc(sizeof(double) * (size_t)nq);
    double *lse = malloc(sizeof(double) * (size_t)nl);
    for (int i = 0; i < 3; ++i) {
      x[i] = malloc(sizeof(double) * (size_t)n[i]);
      g64[i] = malloc(sizeof(double) * (size_t)n[i]);
      g32[i] = malloc(sizeof(double) * (size_t)n[i]);
      fill(&seed, x[i], n[i]);
      for (int64_t e = 0; e < n[i]; ++e) x[i][e] = (float)x[i][e]; /* exact in f32 */
    }
    fill(&seed, r, nq);
    for (int64_t e = 0; e < nq; ++e) r[e] = (float)r[e];
    if (sh.mask) fill_mask(&sh, m);
    double scale = 1.0 / sqrt((double)sh.d);
    run_attention(&sh, MOAI_ABI_F64, x[0], x[1], x[2], m, (float)scale, out, lse);
    run_attention_grad(MOAI_ISA_GENERIC, &sh, MOAI_ABI_F64, x, out, lse, r, m, (float)scale, g64);
    for (int64_t e = 0; e < nq; ++e) out[e] = (float)out[e];
    for (int64_t e = 0; e < nl; ++e) lse[e] = (float)lse[e];
    for (size_t ii = 0; ii < sizeof(kIsas) / sizeof(kIsas[0]); ++ii) {
      if (kIsas[ii] > moai_isa_detect()) continue;
      run_attention_grad(kIsas[ii], &sh, MOAI_ABI_F32, x, out, lse, r, m, (float)scale, g32);
      bool bad = false;
      for (int i = 0; i < 3 && !bad; ++i)
        for (int64_t e = 0; e < n[i]; ++e) {
          if (isnan(g64[i][e]) != isnan(g32[i][e])) bad = true;
          if (isnan(g64[i][e])) continue;
          double err = fabs(g32[i][e] - g64[i][e]) / (1.0 + fabs(g64[i][e]));
          if (err > worst) worst = err;
          if (err > 2e-5 || bad) {
            fprintf(stderr, "%s shape %zu grad %d element %lld: %g vs %g\n", kIsaNames[ii], t, i,
                    (long long)e, g32[i][e], g64[i][e]);
            bad = true;
            break;
          }
        }
      if (bad) CU_FAIL("f32 attention_grad differs from the f64 gradient");
    }
    for (int i = 0; i < 3; ++i) free(x[i]), free(g64[i]), free(g32[i]);
    free(m), free(r), free(out), free(lse);
  }
  fprintf(stderr, "  attention_grad f32 (generic, avx2, avx512) vs f64: max rel error %.2e\n", worst);
}

/* ---- masks computed from indices (causal, window, key_padding) ---- */

typedef struct imask_case_t {
  attn_shape_t sh; /* .mask unused */
  int causal;
  int64_t window;
  int pad;          /* 0 none; 1 batch 1's first npad keys (left padding); 2 every third key */
  int64_t npad;
  int additive;     /* also an additive [B,1,S,S] mask of small values */
  int32_t pad_dtype;
} imask_case_t;

/* Sizes cross the 64 x 64 tiles; left padding of 70 keys under a causal
 * mask makes a whole query tile of fully masked rows; windows of 5 and 40
 * sit inside one tile; kept keys are 256 in the i64 case (a zero low byte). */
static const imask_case_t kImasks[] = {
    {{2, 4, 2, 150, 16, 0}, 1, 40, 1, 70, 0, MOAI_ABI_I64},
    {{1, 2, 1, 130, 8, 0}, 1, 5, 0, 0, 0, MOAI_ABI_I64},
    {{2, 2, 2, 70, 9, 0}, 0, 0, 2, 0, 0, MOAI_ABI_BOOL},
    {{2, 3, 1, 66, 5, 0}, 1, 0, 1, 3, 1, MOAI_ABI_I32},
    {{1, 2, 2, 13, 3, 0}, 0, 4, 2, 0, 1, MOAI_ABI_I64},
    {{2, 2, 1, 129, 33, 0}, 1, 0, 1, 66, 0, MOAI_ABI_U8},
};

/* key_padding [B,S] (1 / 256 kept, 0 padding), the additive part (or 0)
 * and the same masks materialised: add + (hidden ? -FLT_MAX : 0). */
static void fill_imask(const imask_case_t *c, uint64_t *seed, double *kp, double *add, double *mat) {
  const int64_t B = c->sh.b, S = c->sh.s;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < S; ++j) {
      bool padded = (c->pad == 1 && b == 1 && j < c->npad) || (c->pad == 2 && j % 3 == b);
      kp[b * S + j] = padded ? 0.0 : (c->pad_dtype == MOAI_ABI_I64 && j % 2 ? 256.0 : 1.0);
    }
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        int64_t e = (b * S + i) * S + j;
        add[e] = c->additive ? (double)(int)(nn_rand_uniform(seed, 0.0, 3.0)) * -0.25 : 0.0;
        bool hidden = (c->causal && j > i) || (c->window && i - j >= c->window) ||
                      (c->pad && kp[b * S + j] == 0.0);
        mat[e] = add[e] + (hidden ? -FLT_MAX : 0.0);
      }
}

/* moai.attention or attention_grad (grad: ins q, k, v, out, lse, dout) with
 * an optional [B,1,S,S] mask and optional key_padding; outputs as doubles. */
static void run_attn_masks(bool grad, moai_isa_t isa, const imask_case_t *c, int32_t dt,
                           const double *const *ins, const double *m, const double *kp,
                           const moai_attrs_attention_t *a, double *const *outs) {
  const attn_shape_t *sh = &c->sh;
  int64_t qd[4] = {sh->b, sh->h, sh->s, sh->d}, kd[4] = {sh->b, sh->kvh, sh->s, sh->d};
  int64_t md[4] = {sh->b, 1, sh->s, sh->s}, ld[3] = {sh->b, sh->h, sh->s}, pd[2] = {sh->b, sh->s};
  int64_t nq = qd[0] * qd[1] * qd[2] * qd[3], nk = kd[0] * kd[1] * kd[2] * kd[3];
  nn_case_t cs;
  CU_ASSERT_FATAL(nn_case_init(&cs, grad ? MOAI_KERNEL_ATTENTION_GRAD : MOAI_KERNEL_ATTENTION, 1 << 23));
  nn_case_add_in(&cs, dt, 4, qd);
  nn_case_add_in(&cs, dt, 4, kd);
  nn_case_add_in(&cs, dt, 4, kd);
  int64_t n_in[6] = {nq, nk, nk, nq, ld[0] * ld[1] * ld[2], nq}, n_out[3] = {nq, nk, nk};
  if (grad) {
    nn_case_add_in(&cs, dt, 4, qd);
    nn_case_add_in(&cs, dt, 3, ld);
    nn_case_add_in(&cs, dt, 4, qd);
  }
  uint32_t mi = m ? nn_case_add_in(&cs, dt, 4, md) : nn_case_add_in_none(&cs);
  uint32_t pi = kp ? nn_case_add_in(&cs, c->pad_dtype, 2, pd) : nn_case_add_in_none(&cs);
  if (grad) {
    nn_case_add_out(&cs, dt, 4, qd);
    nn_case_add_out(&cs, dt, 4, kd);
    nn_case_add_out(&cs, dt, 4, kd);
  } else {
    nn_case_add_out(&cs, dt, 4, qd);
    nn_case_add_out(&cs, dt, 3, ld);
    n_out[1] = ld[0] * ld[1] * ld[2];
  }
  nn_case_set_attrs(&cs, a, sizeof(*a));
  for (uint32_t i = 0; i < (grad ? 6u : 3u); ++i) store(nn_case_in_ptr(&cs, i), dt, ins[i], n_in[i]);
  if (m) store(nn_case_in_ptr(&cs, mi), dt, m, md[0] * md[2] * md[3]);
  for (int64_t e = 0; kp && e < pd[0] * pd[1]; ++e) nn_store(nn_case_in_ptr(&cs, pi), c->pad_dtype, e, kp[e]);
  nn_case_poison_outputs(&cs);
  moai_kernel_status_t st;
  CU_ASSERT_EQUAL_FATAL(nn_case_run(&cs, isa, 3, &st), 0);
  for (uint32_t o = 0; o < (grad ? 3u : 2u); ++o)
    for (int64_t e = 0; e < n_out[o]; ++e) outs[o][e] = nn_load(nn_case_out_ptr(&cs, o), dt, e);
  nn_case_free(&cs);
}

/* Largest |x - y| / (1 + |y|) over n, NaN where only one is NaN. */
static double rel_diff(const double *x, const double *y, int64_t n) {
  double w = 0.0;
  for (int64_t e = 0; e < n; ++e) {
    if (isnan(x[e]) || isnan(y[e])) {
      if (isnan(x[e]) != isnan(y[e])) return NAN;
      continue;
    }
    double d = fabs(x[e] - y[e]) / (1.0 + fabs(y[e]));
    if (d > w) w = d;
  }
  return w;
}

/* Index masks against the same masks materialised as an additive [B,1,S,S]
 * tensor, on every ISA this CPU has: the forward (out and lse) must agree
 * to rounding, and the f32 gradients of every ISA must match the f64
 * row-at-a-time gradient with the materialised mask (tied to central
 * differences above) within the f32 bound of test_attention_grad_f32. */
static void test_attention_index_masks(void) {
  uint64_t seed = 0x1d1ceULL;
  double worst_fwd = 0.0, worst_grad = 0.0;
  for (size_t t = 0; t < sizeof(kImasks) / sizeof(kImasks[0]); ++t) {
    const imask_case_t *c = &kImasks[t];
    const attn_shape_t *sh = &c->sh;
    int64_t nq = sh->b * sh->h * sh->s * sh->d, nk = sh->b * sh->kvh * sh->s * sh->d;
    int64_t nl = sh->b * sh->h * sh->s, nm = sh->b * sh->s * sh->s, n[3] = {nq, nk, nk};
    double *buf[16];
    int64_t sizes[16] = {nq, nk, nk, nq, nl, nq, nm, nm, sh->b * sh->s, nq, nl, nq, nl,
                         nq, nk, nk};
    for (int i = 0; i < 16; ++i) buf[i] = malloc(sizeof(double) * (size_t)sizes[i]);
    double *q = buf[0], *k = buf[1], *v = buf[2], *out = buf[3], *lse = buf[4], *dout = buf[5];
    double *add = buf[6], *mat = buf[7], *kp = buf[8];
    double *o_idx = buf[9], *l_idx = buf[10], *o_mat = buf[11], *l_mat = buf[12];
    fill(&seed, q, nq);
    fill(&seed, k, nk);
    fill(&seed, v, nk);
    fill(&seed, dout, nq);
    for (int i = 0; i < 6; ++i)
      for (int64_t e = 0; e < sizes[i]; ++e) buf[i][e] = (float)buf[i][e]; /* exact in f32 */
    fill_imask(c, &seed, kp, add, mat);
    double scale = (float)(1.0 / sqrt((double)sh->d));
    moai_attrs_attention_t ai = {.scale = (float)scale, .causal = c->causal, .window = c->window,
                                 .masked_value = -FLT_MAX};
    moai_attrs_attention_t am = {.scale = (float)scale};
    const double *ins[6] = {q, k, v, out, lse, dout};
    double *fo_idx[2] = {o_idx, l_idx}, *fo_mat[2] = {o_mat, l_mat};
    for (size_t ii = 0; ii < sizeof(kIsas) / sizeof(kIsas[0]); ++ii) {
      if (kIsas[ii] > moai_isa_detect()) continue;
      for (int dt = 0; dt < 2; ++dt) {
        int32_t dtype = dt ? MOAI_ABI_F64 : MOAI_ABI_F32;
        run_attn_masks(false, kIsas[ii], c, dtype, ins, c->additive ? add : NULL,
                       c->pad ? kp : NULL, &ai, fo_idx);
        run_attn_masks(false, kIsas[ii], c, dtype, ins, mat, NULL, &am, fo_mat);
        double d = fmax(rel_diff(o_idx, o_mat, nq), rel_diff(l_idx, l_mat, nl));
        if (!(d <= 1e-6)) {
          CU_FAIL("attention with index masks differs from the materialised mask");
          fprintf(stderr, "%s case %zu %s: %g\n", kIsaNames[ii], t, dt ? "f64" : "f32", d);
        }
        if (d > worst_fwd) worst_fwd = d;
      }
    }
    /* f64 reference gradient: row kernel, materialised mask */
    double *g64[3] = {buf[13], buf[14], buf[15]}, *g32[3];
    run_attn_masks(false, MOAI_ISA_GENERIC, c, MOAI_ABI_F64, ins, mat, NULL, &am, fo_mat);
    memcpy(out, o_mat, sizeof(double) * (size_t)nq);
    memcpy(lse, l_mat, sizeof(double) * (size_t)nl);
    run_attn_masks(true, MOAI_ISA_GENERIC, c, MOAI_ABI_F64, ins, mat, NULL, &am, g64);
    for (int64_t e = 0; e < nq; ++e) out[e] = (float)out[e];
    for (int64_t e = 0; e < nl; ++e) lse[e] = (float)lse[e];
    for (int i = 0; i < 3; ++i) g32[i] = malloc(sizeof(double) * (size_t)n[i]);
    for (size_t ii = 0; ii < sizeof(kIsas) / sizeof(kIsas[0]); ++ii) {
      if (kIsas[ii] > moai_isa_detect()) continue;
      run_attn_masks(true, kIsas[ii], c, MOAI_ABI_F32, ins, c->additive ? add : NULL,
                     c->pad ? kp : NULL, &ai, g32);
      for (int i = 0; i < 3; ++i) {
        double d = rel_diff(g32[i], g64[i], n[i]);
        if (!(d <= 2e-5)) {
          CU_FAIL("f32 attention_grad with index masks differs from the f64 gradient");
          fprintf(stderr, "%s case %zu grad %d: %g\n", kIsaNames[ii], t, i, d);
        }
        if (d > worst_grad) worst_grad = d;
      }
    }
    for (int i = 0; i < 3; ++i) free(g32[i]);
    for (int i = 0; i < 16; ++i) free(buf[i]);
  }
  fprintf(stderr, "  index masks vs materialised: forward %.2e, f32 grad vs f64 %.2e\n",
          worst_fwd, worst_grad);
}

static void run_rms(int32_t dt, int64_t rows, int64_t n, const double *x, const double *w,
                    double eps, double *y) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_RMS_NORM, 1 << 20));
  int64_t xd[2] = {rows, n}, wd[1] = {n};
  nn_case_add_in(&c, dt, 2, xd);
  nn_case_add_in(&c, dt, 1, wd);
  nn_case_add_out(&c, dt, 2, xd);
  moai_attrs_rms_norm_t a = {.epsilon = (float)eps};
  nn_case_set_attrs(&c, &a, sizeof(a));
  store(nn_case_in_ptr(&c, 0), dt, x, rows * n);
  store(nn_case_in_ptr(&c, 1), dt, w, n);
  moai_kernel_status_t st;
  CU_ASSERT_EQUAL_FATAL(nn_case_run(&c, MOAI_ISA_GENERIC, 3, &st), 0);
  for (int64_t i = 0; i < rows * n; ++i) y[i] = nn_load(nn_case_out_ptr(&c, 0), dt, i);
  nn_case_free(&c);
}

static void test_rms_norm(void) {
  uint64_t seed = 0xabcULL;
  const int64_t sizes[][2] = {{1, 1}, {5, 7}, {33, 64}, {4, 300}};
  double worst = 0.0, worst_fd = 0.0;
  for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); ++t) {
    int64_t rows = sizes[t][0], n = sizes[t][1];
    double *x = malloc(sizeof(double) * (size_t)(rows * n)), *w = malloc(sizeof(double) * (size_t)n);
    double *y = malloc(sizeof(double) * (size_t)(rows * n)), *r = malloc(sizeof(double) * (size_t)(rows * n));
    double *yp = malloc(sizeof(double) * (size_t)(rows * n));
    fill(&seed, x, rows * n);
    fill(&seed, w, n);
    fill(&seed, r, rows * n);
    double eps = 1e-6;
    run_rms(MOAI_ABI_F32, rows, n, x, w, eps, y);
    /* the unfused chain in float: pow, reduce_mean, add, sqrt, div, mul */
    for (int64_t i = 0; i < rows; ++i) {
      double ss = 0.0;
      for (int64_t c = 0; c < n; ++c) ss += (double)((float)x[i * n + c] * (float)x[i * n + c]);
      float den = sqrtf((float)(ss / (double)n) + (float)eps);
      for (int64_t c = 0; c < n; ++c) {
        float ref = (float)w[c] * ((float)x[i * n + c] / den);
        double err = fabs(y[i * n + c] - ref) / (1.0 + fabs(ref));
        if (err > worst) worst = err;
        CU_ASSERT(err < 1e-6);
      }
    }
    /* gradient: central differences of sum(y * r) in float64 */
    nn_case_t c;
    CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_RMS_NORM_GRAD, 1 << 20));
    int64_t xd[2] = {rows, n}, wd[1] = {n};
    nn_case_add_in(&c, MOAI_ABI_F64, 2, xd);
    nn_case_add_in(&c, MOAI_ABI_F64, 1, wd);
    nn_case_add_in(&c, MOAI_ABI_F64, 2, xd);
    nn_case_add_out(&c, MOAI_ABI_F64, 2, xd);
    nn_case_add_out(&c, MOAI_ABI_F64, 1, wd);
    moai_attrs_rms_norm_t a = {.epsilon = (float)eps};
    nn_case_set_attrs(&c, &a, sizeof(a));
    store(nn_case_in_ptr(&c, 0), MOAI_ABI_F64, x, rows * n);
    store(nn_case_in_ptr(&c, 1), MOAI_ABI_F64, w, n);
    store(nn_case_in_ptr(&c, 2), MOAI_ABI_F64, r, rows * n);
    nn_case_poison_outputs(&c);
    moai_kernel_status_t st;
    CU_ASSERT_EQUAL_FATAL(nn_case_run(&c, MOAI_ISA_GENERIC, 3, &st), 0);
    const double *dx = nn_case_out_ptr(&c, 0), *dw = nn_case_out_ptr(&c, 1);
    double *vars[2] = {x, w};
    const double *grads[2] = {dx, dw};
    int64_t counts[2] = {rows * n, n};
    for (int vi = 0; vi < 2; ++vi)
      for (int64_t e = 0; e < counts[vi]; e += 1 + counts[vi] / 30) {
        double keep = vars[vi][e], l[2];
        for (int s = 0; s < 2; ++s) {
          vars[vi][e] = keep + (s ? -1e-6 : 1e-6);
          run_rms(MOAI_ABI_F64, rows, n, x, w, (float)eps, yp);
          l[s] = 0.0;
          for (int64_t i = 0; i < rows * n; ++i) l[s] += yp[i] * r[i];
        }
        vars[vi][e] = keep;
        double err = fabs((l[0] - l[1]) / 2e-6 - grads[vi][e]);
        if (err > worst_fd) worst_fd = err;
        CU_ASSERT(err < 1e-6);
      }
    nn_case_free(&c);
    free(x), free(w), free(y), free(r), free(yp);
  }
  fprintf(stderr, "  rms_norm vs unfused chain: %.2e; rms_norm_grad vs differences: %.2e\n", worst,
          worst_fd);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"attention vs unfused reference kernels (GQA 1/2/4, masks)", test_attention_vs_reference},
      {"attention_grad vs central differences (f64)", test_attention_grad_fd},
      {"attention_grad f32 of every ISA vs f64", test_attention_grad_f32},
      {"attention with causal/window/key_padding index masks vs materialised",
       test_attention_index_masks},
      {"rms_norm vs unfused chain, rms_norm_grad vs differences", test_rms_norm},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_fused", tests);
}
