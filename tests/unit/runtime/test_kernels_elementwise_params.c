/* Slice and Reduce with runtime-valued parameters (moai_ops.h:
 * runtime_params, runtime_axes): the kernels read starts/ends/axes/steps and
 * axes from operand tensors. Slice is checked against an oracle written
 * from ONNX Slice-13's text (clamp, then enumerate the indices one by one),
 * Reduce against the folded form of the same axes (a mask the test computes
 * itself, run by the kernels the ONNX data already checks); both over
 * random parameters including out-of-range and extreme int64 values, int32
 * and int64 operands, the reference and the optimised kernels with 1, 3 and
 * 4 threads. Malformed runtime values (a step of 0, an axis out of range or
 * named twice, lengths or output dims that disagree, a float operand) must
 * fail the op with a message, never crash; and a descriptor written before
 * the runtime fields existed (a shorter attrs_size) keeps its meaning. */
#include <stddef.h>

#include "test_kernels_elementwise_support.h"

/* ---- Slice ---- */

/* The indices ONNX Slice-13 reads along an axis of size dim: starts and ends
 * count from the end when negative, then clamp to [0, dim] / [0, dim]
 * (step > 0) or [0, dim-1] / [-1, dim-1] (step < 0); then start, start +
 * step, ... while before end. Returns the count (idx gets at most cap). An
 * empty axis selects nothing (numpy; ONNX's clamp range is empty there). */
static int64_t onnx_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step,
                               int64_t *idx, int64_t cap) {
  if (dim == 0) return 0; /* [0, dim - 1] is no range: nothing (numpy) */
  if (start < 0) start += dim;
  if (end < 0) end += dim;
  int64_t s_lo = 0, s_hi = step > 0 ? dim : dim - 1, e_lo = step > 0 ? 0 : -1,
          e_hi = step > 0 ? dim : dim - 1;
  start = start < s_lo ? s_lo : start > s_hi ? s_hi : start;
  end = end < e_lo ? e_lo : end > e_hi ? e_hi : end;
  int64_t n = 0;
  for (int64_t i = start; step > 0 ? i < end : i > end;) {
    if (n < cap) idx[n] = i;
    ++n;
    if (__builtin_add_overflow(i, step, &i)) break;
  }
  return n;
}

typedef struct slice_params_t {
  int n;                   /* entries of starts/ends */
  int64_t starts[4], ends[4], axes[4], steps[4];
  bool has_axes, has_steps;
  int32_t dtype;           /* of the parameter operands */
} slice_params_t;

/* Builds a runtime-parameter slice of x (f32, rank r, dims) into output
 * dims `od`; returns the data pointer of x. */
static float *slice_op(kt_t *k, int r, const int64_t *dims, const int64_t *od,
                       const slice_params_t *p) {
  kt_begin(k, MOAI_KERNEL_SLICE, 5, 1);
  float *x = kt_set(k, 0, MOAI_ABI_F32, r, dims);
  const int64_t *vals[4] = {p->starts, p->ends, p->axes, p->steps};
  const bool present[4] = {true, true, p->has_axes, p->has_steps};
  const int64_t len[1] = {p->n};
  for (uint32_t i = 0; i < 4; ++i) {
    if (!present[i]) continue;
    void *d = kt_set(k, 1 + i, p->dtype, 1, len);
    for (int j = 0; j < p->n; ++j) {
      if (p->dtype == MOAI_ABI_I32) ((int32_t *)d)[j] = (int32_t)vals[i][j];
      else ((int64_t *)d)[j] = vals[i][j];
    }
  }
  kt_set(k, 5, MOAI_ABI_F32, r, od);
  moai_attrs_slice_t a;
  memset(&a, 0, sizeof a);
  a.runtime_params = 1;
  kt_attrs(k, &a, sizeof a);
  int64_t n = 1;
  for (int j = 0; j < r; ++j) n *= dims[j];
  for (int64_t i = 0; i < n; ++i) x[i] = (float)i;
  return x;
}

/* Random extreme-ish parameter: small values mostly, sometimes far out of
 * range or an int64 extreme (int32 operands keep to int32). */
static int64_t wild(uint64_t *seed, int64_t dim, bool i32) {
  uint64_t r = kt_rand(seed);
  switch (r % 8) {
    case 0: return i32 ? INT32_MAX : INT64_MAX;
    case 1: return i32 ? INT32_MIN : INT64_MIN;
    case 2: return (int64_t)(r >> 8) % 1000 - 500;
    default: return (int64_t)((r >> 8) % (uint64_t)(2 * dim + 3)) - dim - 1;
  }
}

static void test_slice_runtime_random(void) {
  kt_t *k = kt_create();
  uint64_t seed = 0x5eed;
  int cases = 0;
  for (int iter = 0; iter < 400; ++iter) {
    const int r = 1 + (int)(kt_rand(&seed) % 4);
    int64_t dims[4], od[4], idx[4][64];
    for (int j = 0; j < r; ++j) dims[j] = (int64_t)(kt_rand(&seed) % 7);
    slice_params_t p = {.n = 1 + (int)(kt_rand(&seed) % (uint64_t)r),
                        .dtype = kt_rand(&seed) & 1 ? MOAI_ABI_I32 : MOAI_ABI_I64};
    p.has_axes = kt_rand(&seed) % 3 != 0;
    p.has_steps = kt_rand(&seed) % 3 != 0;
    const bool i32 = p.dtype == MOAI_ABI_I32;
    int perm[4] = {0, 1, 2, 3};
    for (int j = r - 1; j > 0; --j) { /* distinct axes in random order */
      int t = (int)(kt_rand(&seed) % (uint64_t)(j + 1)), v = perm[j];
      perm[j] = perm[t];
      perm[t] = v;
    }
    int64_t step_of[4] = {1, 1, 1, 1}, start_of[4] = {0}, end_of[4];
    for (int j = 0; j < r; ++j) end_of[j] = dims[j];
    for (int i = 0; i < p.n; ++i) {
      int axis = p.has_axes ? perm[i] : i;
      p.axes[i] = kt_rand(&seed) & 1 ? axis - r : axis;
      int64_t st = (int64_t)(kt_rand(&seed) % 7) - 3;
      if (kt_rand(&seed) % 9 == 0) st = kt_rand(&seed) & 1 ? (i32 ? INT32_MAX : INT64_MAX)
                                                           : (i32 ? INT32_MIN : INT64_MIN);
      p.steps[i] = st == 0 ? 1 : st;
      p.starts[i] = wild(&seed, dims[axis], i32);
      p.ends[i] = wild(&seed, dims[axis], i32);
      step_of[axis] = p.has_steps ? p.steps[i] : 1;
      start_of[axis] = p.starts[i];
      end_of[axis] = p.ends[i];
    }
    if (!p.has_steps)
      for (int i = 0; i < p.n; ++i) p.steps[i] = 1;
    int64_t total = 1;
    for (int j = 0; j < r; ++j) {
      od[j] = onnx_slice_axis(dims[j], start_of[j], end_of[j], step_of[j], idx[j], 64);
      total *= od[j];
    }
    const float *x = slice_op(k, r, dims, od, &p);
    char what[160];
    snprintf(what, sizeof what, "slice runtime case %d (rank %d, %s params)", iter, r,
             kt_dtype_name(p.dtype));
    if (!kt_check_ref_opt(k, what, 0, 0)) continue;
    /* the reference's output (the last run compared equal) against the oracle */
    const float *y = kt_ptr(k, 5);
    int64_t xst[4], acc = 1;
    for (int j = r - 1; j >= 0; --j) {
      xst[j] = acc;
      acc *= dims[j];
    }
    for (int64_t e = 0; e < total; ++e) {
      int64_t rest = e, off = 0;
      for (int j = r - 1; j >= 0; --j) {
        off += idx[j][rest % od[j]] * xst[j];
        rest /= od[j];
      }
      if (y[e] != x[off]) {
        KT_CHECK(0, "%s: element %lld is %g, ONNX reads input %lld", what, (long long)e,
                 (double)y[e], (long long)off);
        break;
      }
    }
    ++cases;
  }
  KT_CHECK(cases == 400, "%d of 400 slice cases ran", cases);
  kt_destroy(k);
}

/* Runs k with both tables; every run must fail with `needle` in the message. */
static void expect_failure(kt_t *k, const char *needle, const char *what) {
  const moai_isa_t isas[2] = {MOAI_ISA_REFERENCE, moai_isa_detect()};
  for (int i = 0; i < 2; ++i)
    for (int nth = 1; nth <= 3; nth += 2) {
      bool ok = kt_run(k, isas[i], nth);
      KT_CHECK(!ok && strstr(k->status.message, needle) != NULL,
               "%s (%s, nth %d): expected a failure mentioning '%s', got %s", what,
               moai_isa_name(isas[i]), nth, needle, ok ? "success" : k->status.message);
    }
}

static void test_slice_runtime_malformed(void) {
  kt_t *k = kt_create();
  const int64_t dims[2] = {4, 6}, od[2] = {2, 6}, od_bad[2] = {3, 6};
  slice_params_t ok = {.n = 1, .starts = {1}, .ends = {3}, .axes = {0}, .steps = {1},
                       .has_axes = true, .has_steps = true, .dtype = MOAI_ABI_I64};
  slice_op(k, 2, dims, od, &ok);
  KT_CHECK(kt_check_ref_opt(k, "slice runtime x[1:3]", 0, 0), "well-formed slice failed");

  slice_params_t p = ok;
  p.steps[0] = 0;
  slice_op(k, 2, dims, od, &p);
  expect_failure(k, "step 0", "slice step 0");
  p = ok;
  p.axes[0] = 2;
  slice_op(k, 2, dims, od, &p);
  expect_failure(k, "out of range", "slice axis 2 of rank 2");
  p = ok;
  p.axes[0] = -3;
  slice_op(k, 2, dims, od, &p);
  expect_failure(k, "out of range", "slice axis -3 of rank 2");
  p = (slice_params_t){.n = 2, .starts = {0, 0}, .ends = {2, 6}, .axes = {0, -2},
                       .has_axes = true, .dtype = MOAI_ABI_I32};
  slice_op(k, 2, dims, od, &p);
  expect_failure(k, "twice", "slice axis named twice");
  p = (slice_params_t){.n = 3, .starts = {0, 0, 0}, .ends = {1, 1, 1}, .dtype = MOAI_ABI_I64};
  slice_op(k, 2, dims, od, &p);
  expect_failure(k, "3 sliced axes", "slice more axes than the rank");
  /* the values select 2 rows, the output holds 3 */
  slice_op(k, 2, dims, od_bad, &ok);
  expect_failure(k, "the output is [3,6]", "slice counts vs output dims");
  /* ends shorter than starts */
  slice_op(k, 2, dims, od, &ok);
  kt_tensor(k, 2)->dims[0] = 0;
  expect_failure(k, "differ in length", "slice lengths");
  /* a float operand, a 2-D one */
  slice_op(k, 2, dims, od, &ok);
  kt_tensor(k, 1)->dtype = MOAI_ABI_F64;
  expect_failure(k, "int32 or int64", "slice float starts");
  slice_op(k, 2, dims, od, &ok);
  kt_tensor(k, 3)->rank = 2;
  kt_tensor(k, 3)->dims[1] = 1;
  expect_failure(k, "1-D", "slice 2-D axes");
  /* starts absent although required */
  slice_op(k, 2, dims, od, &ok);
  kt_tensor(k, 1)->region = MOAI_REGION_NONE;
  expect_failure(k, "absent", "slice without starts");
  kt_destroy(k);
}

/* A descriptor from before runtime_params: attrs_size stops at step[]. */
static void test_slice_old_descriptor(void) {
  kt_t *k = kt_create();
  const int64_t dims[1] = {5}, od[1] = {2};
  kt_begin(k, MOAI_KERNEL_SLICE, 1, 1);
  float *x = kt_set(k, 0, MOAI_ABI_F32, 1, dims);
  for (int i = 0; i < 5; ++i) x[i] = (float)i;
  kt_set(k, 1, MOAI_ABI_F32, 1, od);
  moai_attrs_slice_t a;
  memset(&a, 0xff, sizeof a); /* bytes past the old size must not be read */
  a.start[0] = 4;
  a.step[0] = -3;
  kt_attrs(k, &a, offsetof(moai_attrs_slice_t, runtime_params));
  KT_CHECK(kt_check_ref_opt(k, "slice with the old attrs size", 0, 0), "old slice failed");
  const float *y = kt_ptr(k, 1);
  KT_CHECK(y[0] == 4 && y[1] == 1, "old slice gives %g %g, want 4 1", (double)y[0], (double)y[1]);
  kt_destroy(k);
}

/* ---- Reduce ---- */

/* Output dims of reducing dims over mask. */
static int reduced_dims(int r, const int64_t *dims, uint64_t mask, bool keep, int64_t *od) {
  int ro = 0;
  for (int j = 0; j < r; ++j) {
    if (!((mask >> j) & 1)) od[ro++] = dims[j];
    else if (keep) od[ro++] = 1;
  }
  return ro;
}

/* A reduce with runtime axes (n values of dtype adt; n < 0: absent). */
static void reduce_op(kt_t *k, moai_kernel_id_t id, int32_t dt, int r, const int64_t *dims,
                      int ro, const int64_t *od, const int64_t *axes, int n, int32_t adt,
                      bool keep, bool noop, uint64_t *seed) {
  kt_begin(k, id, 2, 1);
  void *x = kt_set(k, 0, dt, r, dims);
  const int64_t len[1] = {n};
  void *a = kt_set(k, 1, adt, 1, len);
  for (int i = 0; i < n; ++i) {
    if (adt == MOAI_ABI_I32) ((int32_t *)a)[i] = (int32_t)axes[i];
    else ((int64_t *)a)[i] = axes[i];
  }
  kt_set(k, 2, dt, ro, od);
  moai_attrs_reduce_t at = {.keepdims = keep, .runtime_axes = 1, .noop_with_empty_axes = noop};
  kt_attrs(k, &at, sizeof at);
  kt_fill(x, dt, moai_tensor_numel(kt_tensor(k, 0)), seed, KT_SMALL);
}

static void test_reduce_runtime_random(void) {
  kt_t *k = kt_create();
  uint64_t seed = 0xa8e5;
  static const moai_kernel_id_t ids[3] = {MOAI_KERNEL_REDUCE_SUM, MOAI_KERNEL_REDUCE_MEAN,
                                          MOAI_KERNEL_REDUCE_MAX};
  static const int32_t dts[4] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_I32, MOAI_ABI_I64};
  void *folded = malloc(1 << 20);
  for (int iter = 0; iter < 300; ++iter) {
    const int r = 1 + (int)(kt_rand(&seed) % 4);
    int64_t dims[4], od[4], axes[6];
    for (int j = 0; j < r; ++j) dims[j] = 1 + (int64_t)(kt_rand(&seed) % 6);
    const int n = (int)(kt_rand(&seed) % 5); /* may name an axis twice */
    uint64_t mask = 0;
    for (int i = 0; i < n; ++i) {
      int axis = (int)(kt_rand(&seed) % (uint64_t)r);
      axes[i] = kt_rand(&seed) & 1 ? axis - r : axis;
      mask |= 1ull << axis;
    }
    const bool keep = kt_rand(&seed) & 1, noop = kt_rand(&seed) % 3 == 0;
    if (n == 0) mask = noop ? 0 : (1ull << r) - 1;
    const int ro = reduced_dims(r, dims, mask, keep, od);
    const moai_kernel_id_t id = ids[iter % 3];
    const int32_t dt = dts[(iter / 3) % 4], adt = iter & 1 ? MOAI_ABI_I32 : MOAI_ABI_I64;
    /* the folded form first: its output is the expectation */
    uint64_t data_seed = seed;
    kt_begin(k, id, 1, 1);
    void *fx = kt_set(k, 0, dt, r, dims);
    kt_fill(fx, dt, moai_tensor_numel(kt_tensor(k, 0)), &data_seed, KT_SMALL);
    kt_set(k, 1, dt, ro, od);
    moai_attrs_reduce_t fa = {.axes_mask = mask, .keepdims = keep};
    kt_attrs(k, &fa, sizeof fa);
    char what[160];
    snprintf(what, sizeof what, "%s runtime axes case %d (%s, rank %d, %d axes%s%s)",
             moai_kernel_name(id), iter, kt_dtype_name(dt), r, n, keep ? ", keepdims" : "",
             noop ? ", noop" : "");
    KT_CHECK(kt_run(k, MOAI_ISA_REFERENCE, 1), "%s: folded form failed: %s", what,
             k->status.message);
    const size_t bytes = (size_t)moai_tensor_numel(kt_tensor(k, 1)) * kt_dtype_size(dt);
    memcpy(folded, kt_ptr(k, 1), bytes);
    data_seed = seed;
    reduce_op(k, id, dt, r, dims, ro, od, axes, n, adt, keep, noop, &data_seed);
    if (!kt_check_ref_opt(k, what, 1e-6, 1e-6)) continue;
    /* the optimised kernels may sum floats in another order: compare the
     * reference with itself */
    KT_CHECK(kt_run(k, MOAI_ISA_REFERENCE, 1), "%s: failed: %s", what, k->status.message);
    int64_t bad = kt_compare(kt_ptr(k, 2), folded, dt, moai_tensor_numel(kt_tensor(k, 2)), 0, 0);
    KT_CHECK(bad < 0, "%s: element %lld is %g, the folded axes give %g", what, (long long)bad,
             bad < 0 ? 0.0 : kt_load(kt_ptr(k, 2), dt, bad), bad < 0 ? 0.0 : kt_load(folded, dt, bad));
  }
  free(folded);
  kt_destroy(k);
}

static void test_reduce_runtime_malformed(void) {
  kt_t *k = kt_create();
  uint64_t seed = 3;
  const int64_t dims[3] = {2, 3, 4}, od[3] = {2, 1, 4}, od2[2] = {2, 4}, all[3] = {1, 1, 1};
  const int64_t one[1] = {1}, three[1] = {3}, minus4[1] = {-4}, none[1] = {0};
  reduce_op(k, MOAI_KERNEL_REDUCE_SUM, MOAI_ABI_F32, 3, dims, 3, od, one, 1, MOAI_ABI_I64, true,
            false, &seed);
  KT_CHECK(kt_check_ref_opt(k, "reduce_sum runtime axes [1]", 1e-6, 1e-6), "well-formed failed");
  reduce_op(k, MOAI_KERNEL_REDUCE_SUM, MOAI_ABI_F32, 3, dims, 3, od, three, 1, MOAI_ABI_I64, true,
            false, &seed);
  expect_failure(k, "out of range", "reduce axis 3 of rank 3");
  reduce_op(k, MOAI_KERNEL_REDUCE_MAX, MOAI_ABI_F32, 3, dims, 3, od, minus4, 1, MOAI_ABI_I32,
            true, false, &seed);
  expect_failure(k, "out of range", "reduce axis -4 of rank 3");
  /* keepdims says [2,1,4], the output is [2,4] */
  reduce_op(k, MOAI_KERNEL_REDUCE_MEAN, MOAI_ABI_F32, 3, dims, 2, od2, one, 1, MOAI_ABI_I64, true,
            false, &seed);
  expect_failure(k, "the output is [2,4]", "reduce dims vs keepdims");
  /* empty axes reduce everything unless noop: [1,1,1] is not the noop's dims */
  reduce_op(k, MOAI_KERNEL_REDUCE_SUM, MOAI_ABI_F32, 3, dims, 3, all, none, 0, MOAI_ABI_I64, true,
            true, &seed);
  expect_failure(k, "give dims [2,3,4]", "reduce noop vs reduced output");
  reduce_op(k, MOAI_KERNEL_REDUCE_SUM, MOAI_ABI_F32, 3, dims, 3, all, none, 0, MOAI_ABI_I64, true,
            false, &seed);
  KT_CHECK(kt_check_ref_opt(k, "reduce_sum empty runtime axes", 1e-6, 1e-6), "empty axes failed");
  reduce_op(k, MOAI_KERNEL_REDUCE_SUM, MOAI_ABI_F32, 3, dims, 3, od, one, 1, MOAI_ABI_I64, true,
            false, &seed);
  kt_tensor(k, 1)->dtype = MOAI_ABI_F32;
  expect_failure(k, "int32 or int64", "reduce float axes");
  reduce_op(k, MOAI_KERNEL_REDUCE_SUM, MOAI_ABI_F32, 3, dims, 3, od, one, 1, MOAI_ABI_I64, true,
            false, &seed);
  k->op->n_in = 1; /* the axes operand missing */
  expect_failure(k, "expected 2..2 inputs", "reduce without its axes operand");
  kt_destroy(k);
}

/* A reduce descriptor from before runtime_axes (16 attribute bytes). */
static void test_reduce_old_descriptor(void) {
  kt_t *k = kt_create();
  const int64_t dims[2] = {2, 3}, od[1] = {2};
  kt_begin(k, MOAI_KERNEL_REDUCE_SUM, 1, 1);
  float *x = kt_set(k, 0, MOAI_ABI_F32, 2, dims);
  for (int i = 0; i < 6; ++i) x[i] = (float)(i + 1);
  kt_set(k, 1, MOAI_ABI_F32, 1, od);
  moai_attrs_reduce_t a;
  memset(&a, 0xff, sizeof a);
  a.axes_mask = 2;
  a.keepdims = 0;
  kt_attrs(k, &a, offsetof(moai_attrs_reduce_t, runtime_axes));
  KT_CHECK(kt_check_ref_opt(k, "reduce_sum with the old attrs size", 0, 0), "old reduce failed");
  const float *y = kt_ptr(k, 1);
  KT_CHECK(y[0] == 6 && y[1] == 15, "old reduce gives %g %g, want 6 15", (double)y[0],
           (double)y[1]);
  kt_destroy(k);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"slice_runtime_random", test_slice_runtime_random},
      {"slice_runtime_malformed", test_slice_runtime_malformed},
      {"slice_old_descriptor", test_slice_old_descriptor},
      {"reduce_runtime_random", test_reduce_runtime_random},
      {"reduce_runtime_malformed", test_reduce_runtime_malformed},
      {"reduce_old_descriptor", test_reduce_old_descriptor},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("kernels_elementwise_params", tests);
}
