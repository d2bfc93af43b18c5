/* Gradient kernels of the nn ops (runtime/kernels/grad): conv_grad_input,
 * conv_grad_weight, max_pool_grad, average_pool_grad,
 * batch_normalization_grad, layer_normalization_grad.
 *
 * Against PyTorch autograd: grad_refs_nn/generate.py (torch 1.13, float64)
 * wrote each case's inputs (rounded to float32, so the f32 runs get the same
 * inputs exactly) and gradients into grad_refs_nn/. Every case runs in f32
 * and f64 through the reference and the optimised kernels with 1, 3 and 7
 * threads called in turn and 4 threads in a parallel region; each must match
 * torch (f64: rtol 1e-10, atol 1e-12; f32: rtol 1e-4, atol 2e-5: sums of a
 * few hundred float terms of size ~1 and, for the norms, float per-element
 * arithmetic with factors computed in double), and each kernel's results must
 * not depend on the thread count (bit for bit). The largest error against
 * torch per kernel and dtype is printed.
 *
 * Random cases then compare the optimised kernels with the references
 * (test_kernels_nn_support.h's nn_check) where torch cannot say: asymmetric
 * pool padding, dilated average pools, scale broadcast forms. */
#include <float.h>
#include <stddef.h>

#include "base/allocator.h"
#include "io/npy.h"
#include "moai_test.h"
#include "test_kernels_nn_support.h"

#define REF_DIR "tests/unit/runtime/grad_refs_nn"
#define GRAD_F32_RTOL 1e-4
#define GRAD_F32_ATOL 2e-5
#define GRAD_F64_RTOL 1e-10
#define GRAD_F64_ATOL 1e-12

/* ---- reference files ---- */

typedef struct ref_t {
  int32_t rank;
  int64_t dims[MOAI_MAX_RANK];
  int64_t n;
  double *f;  /* float64 tensors */
  int64_t *i; /* int64 (attrs) */
} ref_t;

static void ref_free(ref_t *r) {
  free(r->f);
  free(r->i);
  memset(r, 0, sizeof(*r));
}

/* Loads NAME.TENSOR.npy (float64 or int64); false (and a CUnit failure)
 * when it is missing or malformed. */
static bool ref_load(const char *name, const char *tensor, ref_t *out) {
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s/%s.%s.npy", moai_test_source_dir(), REF_DIR, name, tensor);
  memset(out, 0, sizeof(*out));
  moai_npy_t *npy = NULL;
  moai_status_t s = moai_npy_open(path, moai_allocator_system(), &npy);
  if (!moai_status_is_ok(s)) {
    fprintf(stderr, "cannot read %s: %s\n", path, moai_status_message(s));
    moai_status_free(s);
    CU_FAIL("missing reference file");
    return false;
  }
  const moai_npy_header_t *h = moai_npy_header(npy);
  out->rank = h->rank;
  out->n = 1;
  for (int32_t d = 0; d < h->rank; ++d) {
    out->dims[d] = h->dims[d];
    out->n *= h->dims[d];
  }
  bool ok = h->dtype == MOAI_ABI_F64 || h->dtype == MOAI_ABI_I64;
  if (ok) {
    void *copy = malloc((size_t)out->n * 8 + 8);
    memcpy(copy, moai_npy_data(npy), (size_t)out->n * 8);
    if (h->dtype == MOAI_ABI_F64)
      out->f = copy;
    else
      out->i = copy;
  }
  moai_npy_close(npy);
  CU_ASSERT(ok);
  return ok;
}

/* ---- running a case against torch ---- */

/* Largest |kernel - torch| per kernel id and dtype (f32, f64). */
static double g_max_err[MOAI_KERNEL_COUNT][2];

static void case_set_input(nn_case_t *c, uint32_t i, const ref_t *r) {
  void *p = nn_case_in_ptr(c, i);
  for (int64_t e = 0; e < r->n; ++e) nn_store(p, c->in[i].dtype, e, r->f[e]);
}

/* Runs the case's kernel in every configuration and compares output k with
 * want[k] (NULL: not checked). */
static void case_vs_torch(nn_case_t *c, const char *label, const ref_t *const *want) {
  static const struct { moai_isa_t isa; int nth, parallel; } runs[] = {
      {MOAI_ISA_REFERENCE, 1, 0}, {MOAI_ISA_REFERENCE, 3, 0}, {MOAI_ISA_REFERENCE, 4, 1},
      {MOAI_ISA_GENERIC, 1, 0},   {MOAI_ISA_GENERIC, 3, 0},   {MOAI_ISA_GENERIC, 7, 0},
      {MOAI_ISA_GENERIC, 4, 1}};
  int32_t dtype = c->out[0].dtype;
  int f64 = dtype == MOAI_ABI_F64;
  double rtol = f64 ? GRAD_F64_RTOL : GRAD_F32_RTOL, atol = f64 ? GRAD_F64_ATOL : GRAD_F32_ATOL;
  void *first[NN_MAX_TENSORS] = {0}; /* the ISA's 1-thread results */
  for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); ++r) {
    char what[200];
    snprintf(what, sizeof(what), "%s [%s, nth=%d%s]", label, moai_isa_name(runs[r].isa),
             runs[r].nth, runs[r].parallel ? ", parallel" : "");
    moai_kernel_status_t st;
    nn_case_poison_outputs(c);
    if ((runs[r].parallel ? nn_case_run_parallel : nn_case_run)(c, runs[r].isa, runs[r].nth, &st)) {
      fprintf(stderr, "%s: failed: %s\n", what, st.message);
      CU_FAIL("kernel failed");
      continue;
    }
    for (uint32_t k = 0; k < c->n_out; ++k) {
      const void *got = nn_case_out_ptr(c, k);
      size_t bytes = nn_case_out_bytes(c, k);
      if (runs[r].nth == 1) {
        free(first[k]);
        first[k] = malloc(bytes + 1);
        memcpy(first[k], got, bytes);
      } else if (memcmp(first[k], got, bytes) != 0) {
        fprintf(stderr, "%s: output %u depends on the thread count\n", what, k);
        CU_FAIL("thread-count dependent result");
      }
      if (!want[k]) continue;
      CU_ASSERT_EQUAL_FATAL(want[k]->n, moai_tensor_numel(&c->out[k]));
      int64_t bad = 0;
      for (int64_t e = 0; e < want[k]->n; ++e) {
        double g = nn_load(got, dtype, e), w = want[k]->f[e], err = fabs(g - w);
        if (!(err <= atol + rtol * fabs(w)) && bad++ < 5)
          fprintf(stderr, "  %s: output %u element %lld: got %.17g, torch %.17g\n", what, k,
                  (long long)e, g, w);
        if (err > g_max_err[c->kernel][f64] || isnan(err)) g_max_err[c->kernel][f64] = err;
      }
      if (bad) fprintf(stderr, "%s: output %u: %lld elements differ from torch\n", what, k,
                       (long long)bad);
      CU_ASSERT_EQUAL(bad, 0);
    }
  }
  for (uint32_t k = 0; k < NN_MAX_TENSORS; ++k) free(first[k]);
}

static void print_max_err(uint32_t kernel) {
  fprintf(stderr, "  %s: max |error| vs torch: f32 %.3g, f64 %.3g\n", moai_kernel_name(kernel),
          g_max_err[kernel][0], g_max_err[kernel][1]);
}

/* The window attributes in NAME.attrs.npy (generate.py's layout). */
static void window_from_ref(const ref_t *a, moai_attrs_window_t *at) {
  memset(at, 0, sizeof(*at));
  int r = (int)a->i[0];
  at->spatial_rank = r;
  at->group = a->i[1];
  at->count_include_pad = (int32_t)a->i[3];
  for (int k = 0; k < r; ++k) {
    at->kernel[k] = a->i[4 + k];
    at->strides[k] = a->i[7 + k];
    at->dilations[k] = a->i[10 + k];
    at->pads[k] = a->i[13 + k];
    at->pads[r + k] = a->i[13 + r + k];
  }
}

static const char *const k_conv_cases[] = {"conv1d_s2_asym", "conv1d_dil3", "conv2d_basic",
                                           "conv2d_group2", "conv2d_depthwise",
                                           "conv2d_stride_gt_k", "conv3d"};

static void test_conv_grads_vs_torch(void) {
  for (size_t i = 0; i < sizeof(k_conv_cases) / sizeof(k_conv_cases[0]); ++i) {
    const char *name = k_conv_cases[i];
    ref_t a, x, w, dy, dx, dw;
    if (!ref_load(name, "attrs", &a) || !ref_load(name, "x", &x) || !ref_load(name, "w", &w) ||
        !ref_load(name, "dy", &dy) || !ref_load(name, "dx", &dx) || !ref_load(name, "dw", &dw))
      return;
    moai_attrs_window_t at;
    window_from_ref(&a, &at);
    for (int f64 = 0; f64 < 2; ++f64) {
      int32_t dt = f64 ? MOAI_ABI_F64 : MOAI_ABI_F32;
      char label[96];
      nn_case_t c;
      CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_CONV_GRAD_INPUT, 1u << 20));
      nn_case_add_in(&c, dt, dy.rank, dy.dims);
      nn_case_add_in(&c, dt, w.rank, w.dims);
      nn_case_add_out(&c, dt, x.rank, x.dims);
      nn_case_set_attrs(&c, &at, sizeof(at));
      case_set_input(&c, 0, &dy);
      case_set_input(&c, 1, &w);
      snprintf(label, sizeof(label), "conv_grad_input %s f%d", name, f64 ? 64 : 32);
      case_vs_torch(&c, label, (const ref_t *const[]){&dx});
      nn_case_free(&c);

      CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_CONV_GRAD_WEIGHT, 1u << 20));
      nn_case_add_in(&c, dt, x.rank, x.dims);
      nn_case_add_in(&c, dt, dy.rank, dy.dims);
      nn_case_add_out(&c, dt, w.rank, w.dims);
      nn_case_set_attrs(&c, &at, sizeof(at));
      case_set_input(&c, 0, &x);
      case_set_input(&c, 1, &dy);
      snprintf(label, sizeof(label), "conv_grad_weight %s f%d", name, f64 ? 64 : 32);
      case_vs_torch(&c, label, (const ref_t *const[]){&dw});
      nn_case_free(&c);
    }
    ref_free(&a), ref_free(&x), ref_free(&w), ref_free(&dy), ref_free(&dx), ref_free(&dw);
  }
  print_max_err(MOAI_KERNEL_CONV_GRAD_INPUT);
  print_max_err(MOAI_KERNEL_CONV_GRAD_WEIGHT);
}

static const char *const k_max_pool_cases[] = {"maxpool2d", "maxpool2d_ties", "maxpool2d_ceil_dil",
                                               "maxpool1d_ceil_ties", "maxpool3d_ties"};

static void test_max_pool_grad_vs_torch(void) {
  for (size_t i = 0; i < sizeof(k_max_pool_cases) / sizeof(k_max_pool_cases[0]); ++i) {
    const char *name = k_max_pool_cases[i];
    ref_t a, x, dy, dx;
    if (!ref_load(name, "attrs", &a) || !ref_load(name, "x", &x) || !ref_load(name, "dy", &dy) ||
        !ref_load(name, "dx", &dx))
      return;
    moai_attrs_window_t at;
    window_from_ref(&a, &at);
    for (int f64 = 0; f64 < 2; ++f64) {
      int32_t dt = f64 ? MOAI_ABI_F64 : MOAI_ABI_F32;
      char label[96];
      nn_case_t c;
      CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_MAX_POOL_GRAD, 1u << 20));
      nn_case_add_in(&c, dt, x.rank, x.dims);
      nn_case_add_in(&c, dt, dy.rank, dy.dims);
      nn_case_add_out(&c, dt, x.rank, x.dims);
      nn_case_set_attrs(&c, &at, sizeof(at));
      case_set_input(&c, 0, &x);
      case_set_input(&c, 1, &dy);
      snprintf(label, sizeof(label), "max_pool_grad %s f%d", name, f64 ? 64 : 32);
      case_vs_torch(&c, label, (const ref_t *const[]){&dx});
      nn_case_free(&c);
    }
    ref_free(&a), ref_free(&x), ref_free(&dy), ref_free(&dx);
  }
  print_max_err(MOAI_KERNEL_MAX_POOL_GRAD);
}

static const char *const k_avg_pool_cases[] = {
    "avgpool2d_cip0",      "avgpool2d_cip1",      "avgpool2d_ceil_cip0", "avgpool2d_ceil_cip1",
    "avgpool1d_ceil_cip0", "avgpool1d_ceil_cip1", "avgpool3d_cip0",      "avgpool3d_cip1"};

static void test_average_pool_grad_vs_torch(void) {
  for (size_t i = 0; i < sizeof(k_avg_pool_cases) / sizeof(k_avg_pool_cases[0]); ++i) {
    const char *name = k_avg_pool_cases[i];
    ref_t a, dy, dx;
    if (!ref_load(name, "attrs", &a) || !ref_load(name, "dy", &dy) || !ref_load(name, "dx", &dx))
      return;
    moai_attrs_window_t at;
    window_from_ref(&a, &at);
    for (int f64 = 0; f64 < 2; ++f64) {
      int32_t dt = f64 ? MOAI_ABI_F64 : MOAI_ABI_F32;
      char label[96];
      nn_case_t c;
      CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_AVERAGE_POOL_GRAD, 1u << 20));
      nn_case_add_in(&c, dt, dy.rank, dy.dims);
      nn_case_add_out(&c, dt, dx.rank, dx.dims);
      nn_case_set_attrs(&c, &at, sizeof(at));
      case_set_input(&c, 0, &dy);
      snprintf(label, sizeof(label), "average_pool_grad %s f%d", name, f64 ? 64 : 32);
      case_vs_torch(&c, label, (const ref_t *const[]){&dx});
      nn_case_free(&c);
    }
    ref_free(&a), ref_free(&dy), ref_free(&dx);
  }
  print_max_err(MOAI_KERNEL_AVERAGE_POOL_GRAD);
}

/* Batch and layer norm: operands x, scale, dy; outputs dx, dscale, dbias. */
static void norm_vs_torch(uint32_t kernel, const char *name, const void *attrs, size_t attrs_size,
                          const ref_t *x, const ref_t *scale, const ref_t *dy, const ref_t *dx,
                          const ref_t *ds, const ref_t *db) {
  for (int f64 = 0; f64 < 2; ++f64) {
    int32_t dt = f64 ? MOAI_ABI_F64 : MOAI_ABI_F32;
    char label[96];
    nn_case_t c;
    CU_ASSERT_FATAL(nn_case_init(&c, kernel, 1u << 20));
    nn_case_add_in(&c, dt, x->rank, x->dims);
    nn_case_add_in(&c, dt, scale->rank, scale->dims);
    nn_case_add_in(&c, dt, dy->rank, dy->dims);
    nn_case_add_out(&c, dt, x->rank, x->dims);
    nn_case_add_out(&c, dt, scale->rank, scale->dims);
    nn_case_add_out(&c, dt, scale->rank, scale->dims);
    nn_case_set_attrs(&c, attrs, attrs_size);
    case_set_input(&c, 0, x);
    case_set_input(&c, 1, scale);
    case_set_input(&c, 2, dy);
    snprintf(label, sizeof(label), "%s %s f%d", moai_kernel_name(kernel), name, f64 ? 64 : 32);
    case_vs_torch(&c, label, (const ref_t *const[]){dx, ds, db});
    nn_case_free(&c);
  }
}

static void test_batch_norm_grad_vs_torch(void) {
  static const char *const names[] = {"batchnorm2d", "batchnorm_rank2", "batchnorm1d"};
  moai_attrs_batch_norm_t at = {.epsilon = 1e-5f, .training_mode = 1};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
    ref_t x, s, dy, dx, ds, db;
    if (!ref_load(names[i], "x", &x) || !ref_load(names[i], "scale", &s) ||
        !ref_load(names[i], "dy", &dy) || !ref_load(names[i], "dx", &dx) ||
        !ref_load(names[i], "dscale", &ds) || !ref_load(names[i], "dbias", &db))
      return;
    norm_vs_torch(MOAI_KERNEL_BATCH_NORM_GRAD, names[i], &at, sizeof(at), &x, &s, &dy, &dx, &ds,
                  &db);
    ref_free(&x), ref_free(&s), ref_free(&dy), ref_free(&dx), ref_free(&ds), ref_free(&db);
  }
  print_max_err(MOAI_KERNEL_BATCH_NORM_GRAD);
}

static void test_layer_norm_grad_vs_torch(void) {
  static const char *const names[] = {"layernorm_last", "layernorm_axis1", "layernorm_bcast"};
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
    ref_t a, x, s, dy, dx, ds, db;
    if (!ref_load(names[i], "attrs", &a) || !ref_load(names[i], "x", &x) ||
        !ref_load(names[i], "scale", &s) || !ref_load(names[i], "dy", &dy) ||
        !ref_load(names[i], "dx", &dx) || !ref_load(names[i], "dscale", &ds) ||
        !ref_load(names[i], "dbias", &db))
      return;
    moai_attrs_layer_norm_t at = {.axis = a.i[0], .epsilon = 1e-5f};
    norm_vs_torch(MOAI_KERNEL_LAYER_NORM_GRAD, names[i], &at, sizeof(at), &x, &s, &dy, &dx, &ds,
                  &db);
    ref_free(&a), ref_free(&x), ref_free(&s), ref_free(&dy), ref_free(&dx), ref_free(&ds),
        ref_free(&db);
  }
  print_max_err(MOAI_KERNEL_LAYER_NORM_GRAD);
}

/* ---- optimised vs reference on random inputs ---- */

static double tol_for(int32_t dtype) { return dtype == MOAI_ABI_F32 ? F32_RTOL : F64_TOL; }

typedef struct grad_win_t {
  int r;
  int64_t n, c, m, group;
  int64_t in[3], k[3], s[3], d[3], pads[6];
  int ceil_mode, count_include_pad;
} grad_win_t;

/* Attributes and output sizes (ONNX's rule, as moai_norm_window). */
static void grad_win_attrs(const grad_win_t *w, moai_attrs_window_t *at, int64_t *out) {
  memset(at, 0, sizeof(*at));
  at->spatial_rank = w->r;
  at->group = w->group ? w->group : 1;
  at->count_include_pad = w->count_include_pad;
  for (int a = 0; a < w->r; ++a) {
    at->kernel[a] = w->k[a];
    at->strides[a] = w->s[a];
    at->dilations[a] = w->d[a];
    at->pads[a] = w->pads[a];
    at->pads[w->r + a] = w->pads[w->r + a];
    int64_t room = w->in[a] + w->pads[a] + w->pads[w->r + a] - ((w->k[a] - 1) * w->d[a] + 1);
    out[a] = (room + (w->ceil_mode ? w->s[a] - 1 : 0)) / w->s[a] + 1;
    if (w->ceil_mode && (out[a] - 1) * w->s[a] >= w->in[a] + w->pads[a]) --out[a];
  }
}

static void test_pool_grads_random(void) {
  static const grad_win_t specs[] = {
      {2, 2, 3, 3, 1, {9, 11}, {3, 3}, {2, 2}, {1, 1}, {1, 0, 2, 1}, 0, 0},  /* asymmetric */
      {2, 1, 2, 2, 1, {10, 9}, {2, 3}, {1, 2}, {2, 1}, {0, 1, 1, 0}, 1, 0},  /* dilations, ceil */
      {2, 1, 2, 2, 1, {7, 8}, {3, 2}, {2, 3}, {1, 1}, {1, 0, 1, 1}, 1, 0},   /* ceil + pads */
      {1, 2, 3, 3, 1, {20}, {4}, {3}, {2}, {2, 1}, 0, 0},
      {3, 1, 2, 2, 1, {5, 6, 7}, {2, 3, 2}, {1, 2, 2}, {1, 2, 1}, {1, 0, 0, 0, 1, 1}, 1, 0},
      {2, 1, 1, 1, 1, {3, 3}, {3, 3}, {1, 1}, {1, 1}, {2, 2, 2, 2}, 0, 0},   /* all-padding windows */
  };
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); ++i)
    for (int f64 = 0; f64 < 2; ++f64)
      for (int kind = 0; kind < 3; ++kind) {
        grad_win_t w = specs[i];
        w.count_include_pad = kind == 2;
        uint32_t kernel = kind == 0 ? MOAI_KERNEL_MAX_POOL_GRAD : MOAI_KERNEL_AVERAGE_POOL_GRAD;
        int32_t dt = f64 ? MOAI_ABI_F64 : MOAI_ABI_F32;
        moai_attrs_window_t at;
        int64_t out[3], xd[5] = {w.n, w.c}, yd[5] = {w.n, w.c};
        grad_win_attrs(&w, &at, out);
        for (int a = 0; a < w.r; ++a) xd[2 + a] = w.in[a], yd[2 + a] = out[a];
        nn_case_t c;
        uint64_t seed = 700 + i * 8 + (uint64_t)kind * 2 + (uint64_t)f64;
        CU_ASSERT_FATAL(nn_case_init(&c, kernel, ARENA));
        if (kind == 0) nn_case_add_in(&c, dt, 2 + w.r, xd);
        nn_case_add_in(&c, dt, 2 + w.r, yd);
        nn_case_add_out(&c, dt, 2 + w.r, xd);
        nn_case_set_attrs(&c, &at, sizeof(at));
        for (uint32_t k = 0; k < c.n_in; ++k) nn_case_fill(&c, k, &seed, -1, 1);
        char label[96];
        snprintf(label, sizeof(label), "%s random %zu f%d cip %d", moai_kernel_name(kernel), i,
                 f64 ? 64 : 32, w.count_include_pad);
        nn_check(&c, label, tol_for(dt), tol_for(dt));
        nn_case_free(&c);
      }
}

static void test_conv_grads_random(void) {
  static const grad_win_t specs[] = {
      {2, 2, 4, 6, 2, {9, 11}, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 0, 0},
      {2, 1, 3, 5, 1, {13, 12}, {3, 2}, {2, 2}, {2, 1}, {1, 0, 2, 1}, 0, 0},
      {2, 1, 2, 3, 1, {4, 4}, {5, 5}, {1, 1}, {1, 1}, {2, 2, 2, 2}, 0, 0}, /* kernel > input */
      {1, 1, 2, 2, 1, {17}, {3}, {4}, {3}, {3, 3}, 0, 0},
      {3, 1, 2, 4, 2, {5, 6, 7}, {2, 3, 3}, {1, 2, 1}, {1, 1, 2}, {1, 0, 1, 0, 1, 2}, 0, 0},
  };
  for (size_t i = 0; i < sizeof(specs) / sizeof(specs[0]); ++i)
    for (int f64 = 0; f64 < 2; ++f64)
      for (int weight = 0; weight < 2; ++weight) {
        const grad_win_t *w = &specs[i];
        int32_t dt = f64 ? MOAI_ABI_F64 : MOAI_ABI_F32;
        moai_attrs_window_t at;
        int64_t out[3], xd[5] = {w->n, w->c}, wd[5] = {w->m, w->c / w->group}, yd[5] = {w->n, w->m};
        grad_win_attrs(w, &at, out);
        for (int a = 0; a < w->r; ++a) xd[2 + a] = w->in[a], wd[2 + a] = w->k[a], yd[2 + a] = out[a];
        nn_case_t c;
        uint64_t seed = 900 + i * 4 + (uint64_t)weight * 2 + (uint64_t)f64;
        CU_ASSERT_FATAL(nn_case_init(&c, weight ? MOAI_KERNEL_CONV_GRAD_WEIGHT
                                                : MOAI_KERNEL_CONV_GRAD_INPUT, ARENA));
        nn_case_add_in(&c, dt, 2 + w->r, weight ? xd : yd);
        nn_case_add_in(&c, dt, 2 + w->r, weight ? yd : wd);
        nn_case_add_out(&c, dt, 2 + w->r, weight ? wd : xd);
        nn_case_set_attrs(&c, &at, sizeof(at));
        for (uint32_t k = 0; k < c.n_in; ++k) nn_case_fill(&c, k, &seed, -1, 1);
        char label[96];
        snprintf(label, sizeof(label), "%s random %zu f%d", moai_kernel_name(c.kernel), i,
                 f64 ? 64 : 32);
        nn_check(&c, label, tol_for(dt), tol_for(dt));
        nn_case_free(&c);
      }
}

/* Layer norm with a scale of one element, of dims [1, D] against [R, T, D]
 * (axis 1: broadcast over T), and a larger case that spans several of the
 * optimised kernel's row blocks. */
static void test_layer_norm_grad_random(void) {
  static const struct {
    int rank;
    int64_t x[3];
    int srank;
    int64_t s[3];
    int64_t axis;
  } cases[] = {{3, {3, 4, 5}, 1, {1}, 1},
               {3, {2, 3, 6}, 2, {1, 6}, 1},
               {2, {1200, 300}, 1, {300}, 1},
               {3, {2, 3, 4}, 3, {1, 3, 4}, 1}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); ++i)
    for (int f64 = 0; f64 < 2; ++f64) {
      int32_t dt = f64 ? MOAI_ABI_F64 : MOAI_ABI_F32;
      nn_case_t c;
      uint64_t seed = 1100 + i * 2 + (uint64_t)f64;
      CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_LAYER_NORM_GRAD, ARENA));
      nn_case_add_in(&c, dt, cases[i].rank, cases[i].x);
      nn_case_add_in(&c, dt, cases[i].srank, cases[i].s);
      nn_case_add_in(&c, dt, cases[i].rank, cases[i].x);
      nn_case_add_out(&c, dt, cases[i].rank, cases[i].x);
      nn_case_add_out(&c, dt, cases[i].srank, cases[i].s);
      nn_case_add_out(&c, dt, cases[i].srank, cases[i].s);
      moai_attrs_layer_norm_t at = {.axis = cases[i].axis, .epsilon = 1e-5f};
      nn_case_set_attrs(&c, &at, sizeof(at));
      for (uint32_t k = 0; k < 3; ++k) nn_case_fill(&c, k, &seed, -1, 1);
      char label[96];
      snprintf(label, sizeof(label), "layer_normalization_grad random %zu f%d", i, f64 ? 64 : 32);
      /* dscale sums 1200 rows: the f32 optimised kernel adds block sums in
       * float */
      nn_check(&c, label, f64 ? F64_TOL : 1e-4, f64 ? F64_TOL : 1e-4);
      nn_case_free(&c);
    }
}

/* ---- failures ---- */

static void expect_failure(nn_case_t *c, const char *want) {
  for (int isa = MOAI_ISA_REFERENCE; isa <= MOAI_ISA_GENERIC; ++isa) {
    moai_kernel_status_t st;
    CU_ASSERT_TRUE(nn_case_run(c, (moai_isa_t)isa, 2, &st));
    if (strcmp(st.message, want) != 0)
      fprintf(stderr, "got '%s', want '%s'\n", st.message, want);
    CU_ASSERT_STRING_EQUAL(st.message, want);
  }
}

static void test_grad_failures(void) {
  nn_case_t c;
  moai_attrs_window_t at = {.spatial_rank = 1, .kernel = {2}, .strides = {1}, .dilations = {1}};
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_AVERAGE_POOL_GRAD, 4096));
  nn_case_add_in(&c, MOAI_ABI_I32, 3, (int64_t[]){1, 1, 3});
  nn_case_add_out(&c, MOAI_ABI_I32, 3, (int64_t[]){1, 1, 4});
  nn_case_set_attrs(&c, &at, sizeof(at));
  expect_failure(&c, "average_pool_grad: unsupported dtype int32");
  nn_case_free(&c);

  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_CONV_GRAD_INPUT, 4096));
  nn_case_add_in(&c, MOAI_ABI_F32, 3, (int64_t[]){1, 1, 3});
  nn_case_add_in(&c, MOAI_ABI_F64, 3, (int64_t[]){1, 1, 2});
  nn_case_add_out(&c, MOAI_ABI_F32, 3, (int64_t[]){1, 1, 4});
  nn_case_set_attrs(&c, &at, sizeof(at));
  expect_failure(&c, "conv_grad_input: operand dtypes differ");
  nn_case_free(&c);

  /* scale [2, 4] against x [2, 3, 4] normalised from axis 2: it varies
   * along a row axis */
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_LAYER_NORM_GRAD, 4096));
  nn_case_add_in(&c, MOAI_ABI_F32, 3, (int64_t[]){2, 3, 4});
  nn_case_add_in(&c, MOAI_ABI_F32, 2, (int64_t[]){3, 4});
  nn_case_add_in(&c, MOAI_ABI_F32, 3, (int64_t[]){2, 3, 4});
  nn_case_add_out(&c, MOAI_ABI_F32, 3, (int64_t[]){2, 3, 4});
  nn_case_add_out(&c, MOAI_ABI_F32, 2, (int64_t[]){3, 4});
  nn_case_add_out(&c, MOAI_ABI_F32, 2, (int64_t[]){3, 4});
  moai_attrs_layer_norm_t ln = {.axis = 2, .epsilon = 1e-5f};
  nn_case_set_attrs(&c, &ln, sizeof(ln));
  expect_failure(&c, "layer_normalization_grad: scale does not broadcast over the normalised "
                     "axes of x");
  nn_case_free(&c);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"conv_grad_input/weight vs torch", test_conv_grads_vs_torch},
      {"max_pool_grad vs torch (ties, ceil_mode, dilations)", test_max_pool_grad_vs_torch},
      {"average_pool_grad vs torch (count_include_pad, ceil_mode)",
       test_average_pool_grad_vs_torch},
      {"batch_normalization_grad vs torch", test_batch_norm_grad_vs_torch},
      {"layer_normalization_grad vs torch", test_layer_norm_grad_vs_torch},
      {"pool grads: optimised vs reference", test_pool_grads_random},
      {"conv grads: optimised vs reference", test_conv_grads_random},
      {"layer_normalization_grad: optimised vs reference", test_layer_norm_grad_random},
      {"gradient kernels: failures", test_grad_failures},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_grad_nn", tests);
}
