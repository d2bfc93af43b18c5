/* Elementwise kernels: the optimised versions (this CPU's table) against
 * the scalar reference versions, for every kernel and dtype, over
 * broadcasting shapes, empty tensors and 1, 3 and 4 threads; and the
 * failures kernels must report (unsupported dtype, integer division by
 * zero, gather index out of range). Values against independent references
 * are in test_kernels_elementwise_values.c and _onnx.c. */
#include "test_kernels_elementwise_support.h"

typedef struct bshape_t {
  int ra;
  int64_t a[4];
  int rb;
  int64_t b[4];
  int ro;
  int64_t o[4];
} bshape_t;

static const bshape_t bshapes[] = {
    {1, {37}, 1, {37}, 1, {37}},
    {2, {5, 7}, 1, {7}, 2, {5, 7}},
    {2, {5, 1}, 2, {1, 7}, 2, {5, 7}},
    {4, {2, 3, 4, 5}, 3, {3, 1, 5}, 4, {2, 3, 4, 5}},
    {3, {4, 1, 6}, 3, {4, 5, 1}, 3, {4, 5, 6}},
    {0, {0}, 2, {3, 4}, 2, {3, 4}},
    {1, {300}, 0, {0}, 1, {300}},
    {3, {2, 0, 3}, 1, {3}, 3, {2, 0, 3}},
    {2, {1, 1}, 1, {1}, 2, {1, 1}},
    {4, {3, 1, 1, 257}, 4, {1, 4, 1, 1}, 4, {3, 4, 1, 257}},
    {2, {600, 3}, 2, {600, 1}, 2, {600, 3}},
};
typedef struct shape_t {
  int r;
  int64_t d[4];
} shape_t;

#define N_BSHAPES (sizeof bshapes / sizeof bshapes[0])

static const char *shape_str(int r, const int64_t *d, char *buf, size_t size) {
  int n = snprintf(buf, size, "[");
  for (int j = 0; j < r; ++j) n += snprintf(buf + n, size - (size_t)n, "%s%lld", j ? "," : "", (long long)d[j]);
  snprintf(buf + n, size - (size_t)n, "]");
  return buf;
}

/* Sets up a binary op a (dta), b (dtb) -> out (dto) over shape s. */
static void setup_binary(kt_t *k, moai_kernel_id_t id, int32_t dta, int32_t dtb, int32_t dto,
                         const bshape_t *s, int mode_a, int mode_b, uint64_t *seed) {
  kt_begin(k, id, 2, 1);
  void *a = kt_set(k, 0, dta, s->ra, s->a);
  void *b = kt_set(k, 1, dtb, s->rb, s->b);
  kt_set(k, 2, dto, s->ro, s->o);
  kt_fill(a, dta, moai_tensor_numel(kt_tensor(k, 0)), seed, mode_a);
  kt_fill(b, dtb, moai_tensor_numel(kt_tensor(k, 1)), seed, mode_b);
}

static void describe(char *what, size_t size, moai_kernel_id_t id, const char *dts, const bshape_t *s) {
  char sa[64], sb[64];
  const char *kn = moai_kernel_name(id);
  snprintf(what, size, "%.32s %.16s %.60s,%.60s", kn ? kn : "?", dts,
           shape_str(s->ra, s->a, sa, sizeof sa), shape_str(s->rb, s->b, sb, sizeof sb));
}

/* ---- binary arithmetic and comparisons ---- */

static void check_binary_kernel(moai_kernel_id_t id, const int32_t *dts, int n_dts, bool out_bool) {
  kt_t *k = kt_create();
  uint64_t seed = 0x1234567 + id;
  for (int d = 0; d < n_dts; ++d) {
    int32_t dt = dts[d];
    for (size_t s = 0; s < N_BSHAPES; ++s) {
      int mode = kt_is_float(dt) ? KT_SPECIAL : (out_bool ? KT_SMALL : KT_FULL);
      setup_binary(k, id, dt, dt, out_bool ? MOAI_ABI_BOOL : dt, &bshapes[s], mode, mode, &seed);
      if (id == MOAI_KERNEL_DIV && !kt_is_float(dt)) {
        /* nonzero divisors; -1 and MIN to exercise INT_MIN / -1 */
        void *a = kt_ptr(k, 0), *b = kt_ptr(k, 1);
        size_t es = kt_dtype_size(dt);
        int64_t na = moai_tensor_numel(kt_tensor(k, 0)), nb = moai_tensor_numel(kt_tensor(k, 1));
        for (int64_t i = 0; i < nb; ++i) {
          if (kt_load(b, dt, i) == 0) kt_store(b, dt, i, 3);
          if (kt_is_signed(dt) && i % 5 == 1) kt_store(b, dt, i, -1);
        }
        for (int64_t i = 0; kt_is_signed(dt) && i < na; i += 7) {
          unsigned char *p = (unsigned char *)a + (size_t)i * es;
          memset(p, 0, es);
          p[es - 1] = 0x80; /* little-endian MIN */
        }
      }
      char what[160];
      describe(what, sizeof what, id, kt_dtype_name(dt), &bshapes[s]);
      if (!kt_check_ref_opt(k, what, 0, 0)) break;
    }
  }
  kt_destroy(k);
}

static const int32_t numeric[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_F16, MOAI_ABI_BF16,
                                  MOAI_ABI_I8,  MOAI_ABI_I16, MOAI_ABI_I32, MOAI_ABI_I64,
                                  MOAI_ABI_U8,  MOAI_ABI_U16, MOAI_ABI_U32, MOAI_ABI_U64};
static const int32_t numeric_bool[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_F16, MOAI_ABI_BF16,
                                       MOAI_ABI_I8,  MOAI_ABI_I16, MOAI_ABI_I32, MOAI_ABI_I64,
                                       MOAI_ABI_U8,  MOAI_ABI_U16, MOAI_ABI_U32, MOAI_ABI_U64,
                                       MOAI_ABI_BOOL};
static const int32_t only_bool[] = {MOAI_ABI_BOOL};

static void test_arith(void) {
  check_binary_kernel(MOAI_KERNEL_ADD, numeric, 12, false);
  check_binary_kernel(MOAI_KERNEL_SUB, numeric, 12, false);
  check_binary_kernel(MOAI_KERNEL_MUL, numeric, 12, false);
  check_binary_kernel(MOAI_KERNEL_DIV, numeric, 12, false);
}

static void test_compare_logic(void) {
  check_binary_kernel(MOAI_KERNEL_EQUAL, numeric_bool, 13, true);
  check_binary_kernel(MOAI_KERNEL_LESS, numeric, 12, true);
  check_binary_kernel(MOAI_KERNEL_LESS_OR_EQUAL, numeric, 12, true);
  check_binary_kernel(MOAI_KERNEL_GREATER, numeric, 12, true);
  check_binary_kernel(MOAI_KERNEL_GREATER_OR_EQUAL, numeric, 12, true);
  check_binary_kernel(MOAI_KERNEL_AND, only_bool, 1, true);
  check_binary_kernel(MOAI_KERNEL_OR, only_bool, 1, true);
}

static void test_pow(void) {
  static const int32_t combos[][2] = {
      {MOAI_ABI_F32, MOAI_ABI_F32}, {MOAI_ABI_F32, MOAI_ABI_I32}, {MOAI_ABI_F32, MOAI_ABI_I64},
      {MOAI_ABI_F32, MOAI_ABI_U64}, {MOAI_ABI_F64, MOAI_ABI_F64}, {MOAI_ABI_F64, MOAI_ABI_F32},
      {MOAI_ABI_F16, MOAI_ABI_F32}, {MOAI_ABI_F16, MOAI_ABI_F16}, {MOAI_ABI_BF16, MOAI_ABI_F32},
      {MOAI_ABI_I32, MOAI_ABI_I32}, {MOAI_ABI_I64, MOAI_ABI_I64}, {MOAI_ABI_I32, MOAI_ABI_F32},
      {MOAI_ABI_I64, MOAI_ABI_F64}, {MOAI_ABI_I64, MOAI_ABI_U8}};
  kt_t *k = kt_create();
  uint64_t seed = 99;
  for (size_t c = 0; c < sizeof combos / sizeof combos[0]; ++c) {
    for (size_t s = 0; s < N_BSHAPES; ++s) {
      int32_t bt = combos[c][0], et = combos[c][1];
      setup_binary(k, MOAI_KERNEL_POW, bt, et, bt, &bshapes[s], KT_SMALL, KT_SMALL, &seed);
      /* exponents in [-3, 5] */
      int64_t ne = moai_tensor_numel(kt_tensor(k, 1));
      for (int64_t i = 0; i < ne; ++i) {
        double e = kt_is_float(et) ? kt_uniform(&seed, -3, 5) : (double)(kt_rand(&seed) % 9) - 3;
        if (et == MOAI_ABI_U8 || et == MOAI_ABI_U64) e = fabs(e);
        kt_store(kt_ptr(k, 1), et, i, e);
      }
      char what[160], dts[32];
      snprintf(dts, sizeof dts, "%s^%s", kt_dtype_name(bt), kt_dtype_name(et));
      describe(what, sizeof what, MOAI_KERNEL_POW, dts, &bshapes[s]);
      if (!kt_check_ref_opt(k, what, 0, 0)) break;
    }
  }
  /* the f32 fast paths: a scalar exponent of 2 and 1 */
  static const float exps[] = {2.0f, 1.0f, 0.5f};
  for (size_t e = 0; e < 3; ++e) {
    setup_binary(k, MOAI_KERNEL_POW, MOAI_ABI_F32, MOAI_ABI_F32, MOAI_ABI_F32, &bshapes[6],
                 KT_SPECIAL, KT_SMALL, &seed);
    *(float *)kt_ptr(k, 1) = exps[e];
    char what[64];
    snprintf(what, sizeof what, "pow f32^f32 [300]^%g", exps[e]);
    kt_check_ref_opt(k, what, 0, 0);
  }
  kt_destroy(k);
}

/* ---- where, max, min ---- */

static void test_where(void) {
  static const int32_t dts[] = {MOAI_ABI_BOOL, MOAI_ABI_F16, MOAI_ABI_F32, MOAI_ABI_I64};
  static const shape_t cond_shapes[] = {{1, {37}}, {1, {7}}, {2, {5, 1}}, {0, {0}}, {3, {2, 1, 5}}};
  kt_t *k = kt_create();
  uint64_t seed = 5;
  for (size_t d = 0; d < 4; ++d)
    for (size_t s = 0; s < N_BSHAPES; ++s)
      for (size_t c = 0; c < sizeof cond_shapes / sizeof cond_shapes[0]; ++c) {
        const bshape_t *bs = &bshapes[s];
        /* keep the condition broadcastable to the output */
        const shape_t *cs = &cond_shapes[c];
        bool ok = cs->r <= bs->ro;
        for (int j = 0; ok && j < cs->r; ++j) {
          int64_t od = bs->o[bs->ro - cs->r + j];
          ok = cs->d[j] == od || cs->d[j] == 1;
        }
        if (!ok) continue;
        kt_begin(k, MOAI_KERNEL_WHERE, 3, 1);
        kt_fill(kt_set(k, 0, MOAI_ABI_BOOL, cs->r, cs->d), MOAI_ABI_BOOL,
                moai_tensor_numel(kt_tensor(k, 0)), &seed, KT_SMALL);
        kt_fill(kt_set(k, 1, dts[d], bs->ra, bs->a), dts[d], moai_tensor_numel(kt_tensor(k, 1)),
                &seed, KT_SPECIAL);
        kt_fill(kt_set(k, 2, dts[d], bs->rb, bs->b), dts[d], moai_tensor_numel(kt_tensor(k, 2)),
                &seed, KT_SPECIAL);
        kt_set(k, 3, dts[d], bs->ro, bs->o);
        char what[160], sc[64];
        describe(what, sizeof what, MOAI_KERNEL_WHERE, kt_dtype_name(dts[d]), bs);
        size_t len = strlen(what);
        snprintf(what + len, sizeof what - len, " cond %s", shape_str(cs->r, cs->d, sc, sizeof sc));
        kt_check_ref_opt(k, what, 0, 0);
      }
  kt_destroy(k);
}

static void test_max_min(void) {
  static const shape_t in_shapes[] = {
      {2, {3, 40}}, {1, {40}}, {2, {3, 1}}, {0, {0}}, {2, {1, 40}}, {2, {3, 40}},
      {1, {1}},     {2, {3, 40}}, {1, {40}}, {2, {3, 1}}};
  const int64_t out_dims[2] = {3, 40};
  static const int n_ins[] = {1, 2, 3, 4, 9, 10};
  kt_t *k = kt_create();
  uint64_t seed = 77;
  for (int op = 0; op < 2; ++op) {
    moai_kernel_id_t id = op ? MOAI_KERNEL_MIN : MOAI_KERNEL_MAX;
    for (int d = 0; d < 12; ++d)
      for (size_t ni = 0; ni < sizeof n_ins / sizeof n_ins[0]; ++ni) {
        int n = n_ins[ni];
        kt_begin(k, id, (uint32_t)n, 1);
        for (int i = 0; i < n; ++i)
          kt_fill(kt_set(k, (uint32_t)i, numeric[d], in_shapes[i].r, in_shapes[i].d), numeric[d],
                  moai_tensor_numel(kt_tensor(k, (uint32_t)i)), &seed,
                  kt_is_float(numeric[d]) ? KT_SPECIAL : KT_FULL);
        kt_set(k, (uint32_t)n, numeric[d], 2, out_dims);
        char what[96];
        snprintf(what, sizeof what, "%s %s with %d inputs", moai_kernel_name(id),
                 kt_dtype_name(numeric[d]), n);
        kt_check_ref_opt(k, what, 0, 0);
      }
    /* the output aliasing a later input (in-place on a same-shape input) */
    for (int d = 0; d < 12; d += 3) {
      kt_begin(k, id, 3, 1);
      for (int i = 0; i < 3; ++i)
        kt_fill(kt_set(k, (uint32_t)i, numeric[d], 2, out_dims), numeric[d], 120, &seed, KT_FULL);
      kt_set(k, 3, numeric[d], 2, out_dims);
      unsigned char expect[120 * 8];
      kt_run(k, MOAI_ISA_REFERENCE, 1);
      memcpy(expect, kt_ptr(k, 3), 120 * kt_dtype_size(numeric[d]));
      kt_alias(k, 3, 2);
      KT_CHECK(kt_run(k, moai_isa_detect(), 3), "%s in place failed", moai_kernel_name(id));
      KT_CHECK(kt_compare(kt_ptr(k, 3), expect, numeric[d], 120, 0, 0) < 0,
               "%s %s: output aliasing input 2 differs", moai_kernel_name(id),
               kt_dtype_name(numeric[d]));
    }
  }
  kt_destroy(k);
}

/* ---- unary ---- */

typedef struct unary_case_t {
  moai_kernel_id_t id;
  const int32_t *dts;
  int n_dts;
  int mode;
  double rtol_f32; /* optimised vs reference (0: bitwise) */
} unary_case_t;

static const int32_t floats[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_F16, MOAI_ABI_BF16};
static const int32_t signed_floats[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_F16, MOAI_ABI_BF16,
                                        MOAI_ABI_I8,  MOAI_ABI_I16, MOAI_ABI_I32, MOAI_ABI_I64};

/* Tolerance for a dtype given the f32 one: f16/bf16 results round from f32
 * values that may differ, so allow one unit of their last place. */
static double rtol_for(int32_t dt, double rtol_f32) {
  if (rtol_f32 == 0) return 0;
  if (dt == MOAI_ABI_F16) return 1.0 / 1024;
  if (dt == MOAI_ABI_BF16) return 1.0 / 128;
  if (dt == MOAI_ABI_F64) return 0;
  return rtol_f32;
}

static void run_unary_case(kt_t *k, const unary_case_t *c, const void *attrs, size_t attrs_size,
                           const char *label) {
  static const int64_t sizes[][2] = {{1, 0}, {1, 1}, {1, 1000}, {2, 0}, {2, 0}};
  static const int64_t dims2[] = {3, 333};
  uint64_t seed = 1000 + c->id;
  for (int d = 0; d < c->n_dts; ++d) {
    int32_t dt = c->dts[d];
    for (int s = 0; s < 5; ++s) {
      kt_begin(k, c->id, 1, 1);
      int rank = (int)sizes[s][0];
      const int64_t *dims = s >= 3 ? dims2 : &sizes[s][1];
      void *x = kt_set(k, 0, dt, rank, dims);
      kt_set(k, 1, dt, rank, dims);
      if (attrs) kt_attrs(k, attrs, attrs_size);
      int64_t n = moai_tensor_numel(kt_tensor(k, 0));
      kt_fill(x, dt, n, &seed, c->mode == KT_SPECIAL && !kt_is_float(dt) ? KT_FULL : c->mode);
      char what[96];
      snprintf(what, sizeof what, "%s %s n=%lld", label, kt_dtype_name(dt), (long long)n);
      if (!kt_check_ref_opt(k, what, rtol_for(dt, c->rtol_f32), 1e-30)) break;
    }
  }
}

static void test_unary(void) {
  static const int32_t neg_dts[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_F16, MOAI_ABI_BF16,
                                    MOAI_ABI_I8,  MOAI_ABI_I16, MOAI_ABI_I32, MOAI_ABI_I64};
  const unary_case_t cases[] = {
      {MOAI_KERNEL_NEG, neg_dts, 8, KT_SPECIAL, 0},
      {MOAI_KERNEL_ABS, numeric, 12, KT_SPECIAL, 0},
      {MOAI_KERNEL_SQRT, floats, 4, KT_SPECIAL, 0},
      {MOAI_KERNEL_EXP, floats, 4, KT_SPECIAL, 1e-6},
      {MOAI_KERNEL_LOG, floats, 4, KT_SPECIAL, 0},
      {MOAI_KERNEL_SIN, floats, 4, KT_SPECIAL, 0},
      {MOAI_KERNEL_COS, floats, 4, KT_SPECIAL, 0},
      {MOAI_KERNEL_TANH, floats, 4, KT_SPECIAL, 1e-6},
      {MOAI_KERNEL_SIGMOID, floats, 4, KT_SPECIAL, 1e-6},
      {MOAI_KERNEL_ERF, floats, 4, KT_SPECIAL, 0},
      {MOAI_KERNEL_RELU, signed_floats, 8, KT_SPECIAL, 0},
      {MOAI_KERNEL_NOT, only_bool, 1, KT_SMALL, 0},
  };
  kt_t *k = kt_create();
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c)
    run_unary_case(k, &cases[c], NULL, 0, moai_kernel_name(cases[c].id));
  /* exp over a wide range (overflow, subnormal results) */
  kt_begin(k, MOAI_KERNEL_EXP, 1, 1);
  const int64_t n = 4001;
  float *x = kt_set(k, 0, MOAI_ABI_F32, 1, &n);
  kt_set(k, 1, MOAI_ABI_F32, 1, &n);
  for (int64_t i = 0; i < n; ++i) x[i] = -110.0f + 0.05f * (float)i;
  kt_check_ref_opt(k, "exp f32 over [-110, 90]", 1e-6, 1e-37);
  kt_destroy(k);
}

static void test_activations(void) {
  kt_t *k = kt_create();
  moai_attrs_leaky_relu_t leaky = {0.1f};
  unary_case_t lc = {MOAI_KERNEL_LEAKY_RELU, floats, 4, KT_SPECIAL, 0};
  run_unary_case(k, &lc, &leaky, sizeof leaky, "leaky_relu");
  moai_attrs_gelu_t exact = {0}, approx = {1};
  unary_case_t gc = {MOAI_KERNEL_GELU, floats, 4, KT_SPECIAL, 0};
  run_unary_case(k, &gc, &exact, sizeof exact, "gelu(exact)");
  /* u's f32 rounding amplified by |2u| in sigmoid(2u): see activation.c */
  unary_case_t gt = {MOAI_KERNEL_GELU, floats, 4, KT_SPECIAL, 2e-5};
  run_unary_case(k, &gt, &approx, sizeof approx, "gelu(tanh)");
  kt_destroy(k);
}

static void test_clip(void) {
  kt_t *k = kt_create();
  uint64_t seed = 3;
  const int64_t n = 100;
  for (int d = 0; d < 12; ++d) {
    int32_t dt = numeric[d];
    for (int bounds = 0; bounds < 4; ++bounds) {
      kt_begin(k, MOAI_KERNEL_CLIP, 3, 1);
      kt_fill(kt_set(k, 0, dt, 1, &n), dt, n, &seed, kt_is_float(dt) ? KT_SPECIAL : KT_FULL);
      if (bounds & 1) kt_store(kt_set(k, 1, dt, 0, NULL), dt, 0, kt_is_signed(dt) || kt_is_float(dt) ? -2 : 2);
      if (bounds & 2) kt_store(kt_set(k, 2, dt, 1, (const int64_t[]){1}), dt, 0, 50);
      kt_set(k, 3, dt, 1, &n);
      char what[64];
      snprintf(what, sizeof what, "clip %s bounds %d", kt_dtype_name(dt), bounds);
      kt_check_ref_opt(k, what, 0, 0);
    }
  }
  kt_destroy(k);
}

/* ---- cast ---- */

static void test_cast(void) {
  kt_t *k = kt_create();
  uint64_t seed = 42;
  const int64_t n = 517;
  for (int s = 0; s < KT_N_DTYPES; ++s)
    for (int d = 0; d < KT_N_DTYPES; ++d) {
      int32_t st = kt_all_dtypes[s], dt = kt_all_dtypes[d];
      kt_begin(k, MOAI_KERNEL_CAST, 1, 1);
      void *x = kt_set(k, 0, st, 1, &n);
      kt_set(k, 1, dt, 1, &n);
      kt_fill(x, st, n, &seed, kt_is_float(st) ? KT_SPECIAL : KT_FULL);
      if (kt_is_float(st)) /* values beyond every integer range, and fractions */
        for (int64_t i = 0; i < n; i += 5) kt_store(x, st, i, kt_uniform(&seed, -1e20, 1e20));
      char what[64];
      snprintf(what, sizeof what, "cast %s -> %s", kt_dtype_name(st), kt_dtype_name(dt));
      kt_check_ref_opt(k, what, 0, 0);
    }
  kt_destroy(k);
}

/* ---- layout: copy, expand, transpose, slice, concat, split ---- */

static const int32_t layout_dts[] = {MOAI_ABI_BOOL, MOAI_ABI_BF16, MOAI_ABI_F32, MOAI_ABI_I64};

static void test_copy(void) {
  kt_t *k = kt_create();
  uint64_t seed = 8;
  const int64_t in_dims[] = {4, 6, 5}, out_dims[] = {24, 5};
  for (int d = 0; d < 4; ++d) {
    int32_t dt = layout_dts[d];
    kt_begin(k, MOAI_KERNEL_COPY, 1, 1);
    kt_fill(kt_set(k, 0, dt, 3, in_dims), dt, 120, &seed, KT_FULL);
    kt_set(k, 1, dt, 2, out_dims);
    char what[64];
    snprintf(what, sizeof what, "copy %s [4,6,5] -> [24,5]", kt_dtype_name(dt));
    kt_check_ref_opt(k, what, 0, 0);
    KT_CHECK(memcmp(kt_ptr(k, 0), kt_ptr(k, 1), 120 * kt_dtype_size(dt)) == 0, "%s: bytes differ", what);
    /* aliased view: a no-op that must leave the bytes alone */
    kt_alias(k, 1, 0);
    kt_tensor(k, 1)->rank = 2;
    kt_tensor(k, 1)->dims[0] = 24;
    kt_tensor(k, 1)->dims[1] = 5;
    unsigned char before[120 * 8];
    memcpy(before, kt_ptr(k, 0), 120 * kt_dtype_size(dt));
    KT_CHECK(kt_run(k, moai_isa_detect(), 3) && kt_run(k, MOAI_ISA_REFERENCE, 2),
             "%s aliased: failed", what);
    KT_CHECK(memcmp(before, kt_ptr(k, 0), 120 * kt_dtype_size(dt)) == 0, "%s aliased: changed", what);
  }
  kt_destroy(k);
}

static void test_expand(void) {
  static const bshape_t cases[] = {
      {2, {3, 1}, 0, {0}, 3, {2, 3, 4}}, {1, {1}, 0, {0}, 1, {5}},   {0, {0}, 0, {0}, 2, {2, 2}},
      {1, {4}, 0, {0}, 2, {3, 4}},       {2, {3, 4}, 0, {0}, 2, {3, 4}}, {3, {2, 1, 3}, 0, {0}, 4, {2, 2, 5, 3}},
      {1, {1}, 0, {0}, 2, {0, 3}},       {2, {1, 1000}, 0, {0}, 2, {3, 1000}}};
  kt_t *k = kt_create();
  uint64_t seed = 9;
  for (int d = 0; d < 4; ++d)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
      int32_t dt = layout_dts[d];
      kt_begin(k, MOAI_KERNEL_EXPAND, 1, 1);
      kt_fill(kt_set(k, 0, dt, cases[c].ra, cases[c].a), dt, moai_tensor_numel(kt_tensor(k, 0)),
              &seed, KT_FULL);
      kt_set(k, 1, dt, cases[c].ro, cases[c].o);
      char what[96], sa[32], so[32];
      snprintf(what, sizeof what, "expand %s %s -> %s", kt_dtype_name(dt),
               shape_str(cases[c].ra, cases[c].a, sa, sizeof sa),
               shape_str(cases[c].ro, cases[c].o, so, sizeof so));
      kt_check_ref_opt(k, what, 0, 0);
    }
  kt_destroy(k);
}

static void test_transpose(void) {
  static const struct {
    int rank;
    int64_t dims[5];
    int64_t perm[5];
  } cases[] = {
      {2, {7, 13}, {1, 0}},          {2, {7, 13}, {0, 1}},          {3, {2, 3, 4}, {0, 2, 1}},
      {3, {2, 3, 4}, {2, 0, 1}},     {3, {2, 3, 4}, {1, 0, 2}},     {4, {2, 3, 4, 5}, {0, 2, 1, 3}},
      {4, {2, 3, 4, 5}, {3, 2, 1, 0}}, {5, {2, 1, 3, 2, 4}, {4, 0, 3, 1, 2}}, {3, {2, 0, 3}, {2, 1, 0}},
      {1, {17}, {0}},                {2, {64, 65}, {1, 0}}};
  kt_t *k = kt_create();
  uint64_t seed = 10;
  for (int d = 0; d < 4; ++d)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
      int32_t dt = layout_dts[d];
      moai_attrs_transpose_t a = {{0}};
      int64_t od[5];
      for (int j = 0; j < cases[c].rank; ++j) {
        a.perm[j] = cases[c].perm[j];
        od[j] = cases[c].dims[cases[c].perm[j]];
      }
      kt_begin(k, MOAI_KERNEL_TRANSPOSE, 1, 1);
      kt_fill(kt_set(k, 0, dt, cases[c].rank, cases[c].dims), dt,
              moai_tensor_numel(kt_tensor(k, 0)), &seed, KT_FULL);
      kt_set(k, 1, dt, cases[c].rank, od);
      kt_attrs(k, &a, sizeof a);
      char what[96], sa[32], sp[32];
      snprintf(what, sizeof what, "transpose %s %s perm %s", kt_dtype_name(dt),
               shape_str(cases[c].rank, cases[c].dims, sa, sizeof sa),
               shape_str(cases[c].rank, cases[c].perm, sp, sizeof sp));
      kt_check_ref_opt(k, what, 0, 0);
    }
  kt_destroy(k);
}

static void test_slice(void) {
  static const struct {
    int rank;
    int64_t in[3], out[3], start[3], step[3];
  } cases[] = {
      {1, {10}, {4}, {1}, {2}},
      {1, {10}, {10}, {9}, {-1}},
      {1, {10}, {4}, {8}, {-2}},
      {2, {5, 6}, {3, 6}, {1, 0}, {1, 1}},
      {2, {5, 6}, {2, 3}, {4, 5}, {-3, -2}},
      {3, {4, 5, 6}, {2, 5, 2}, {1, 0, 1}, {2, 1, 3}},
      {3, {4, 5, 6}, {4, 1, 6}, {0, 2, 0}, {1, 1, 1}},
      {2, {5, 6}, {0, 6}, {0, 0}, {1, 1}},
      {2, {300, 4}, {100, 4}, {299, 0}, {-3, 1}},
  };
  kt_t *k = kt_create();
  uint64_t seed = 11;
  for (int d = 0; d < 4; ++d)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c) {
      int32_t dt = layout_dts[d];
      moai_attrs_slice_t a;
      memset(&a, 0, sizeof a);
      for (int j = 0; j < cases[c].rank; ++j) {
        a.start[j] = cases[c].start[j];
        a.step[j] = cases[c].step[j];
      }
      kt_begin(k, MOAI_KERNEL_SLICE, 1, 1);
      kt_fill(kt_set(k, 0, dt, cases[c].rank, cases[c].in), dt, moai_tensor_numel(kt_tensor(k, 0)),
              &seed, KT_FULL);
      kt_set(k, 1, dt, cases[c].rank, cases[c].out);
      kt_attrs(k, &a, sizeof a);
      char what[128], s1[32], s2[32], s3[32];
      snprintf(what, sizeof what, "slice %s %s start %s step %s", kt_dtype_name(dt),
               shape_str(cases[c].rank, cases[c].in, s1, sizeof s1),
               shape_str(cases[c].rank, cases[c].start, s2, sizeof s2),
               shape_str(cases[c].rank, cases[c].step, s3, sizeof s3));
      kt_check_ref_opt(k, what, 0, 0);
    }
  kt_destroy(k);
}

static void test_concat_split(void) {
  /* parts along `axis` of a [3, X, 4] whole */
  static const struct {
    int n, axis;
    int64_t sizes[4];
  } cases[] = {{2, 1, {2, 3}}, {3, 1, {1, 0, 4}}, {1, 1, {5}},     {4, 1, {1, 1, 1, 1}},
               {2, 0, {1, 2}}, {2, 2, {3, 1}},    {3, 2, {0, 4, 0}}, {2, 1, {200, 57}}};
  kt_t *k = kt_create();
  uint64_t seed = 12;
  for (int d = 0; d < 4; ++d)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c)
      for (int split = 0; split < 2; ++split) {
        int32_t dt = layout_dts[d];
        int n = cases[c].n, axis = cases[c].axis;
        int64_t whole[3] = {3, 5, 4}, sum = 0;
        for (int i = 0; i < n; ++i) sum += cases[c].sizes[i];
        whole[axis] = sum;
        moai_attrs_axis_t a = {axis};
        if (split) {
          kt_begin(k, MOAI_KERNEL_SPLIT, 1, (uint32_t)n);
          kt_fill(kt_set(k, 0, dt, 3, whole), dt, moai_tensor_numel(kt_tensor(k, 0)), &seed, KT_FULL);
        } else {
          kt_begin(k, MOAI_KERNEL_CONCAT, (uint32_t)n, 1);
        }
        for (int i = 0; i < n; ++i) {
          int64_t dims[3] = {whole[0], whole[1], whole[2]};
          dims[axis] = cases[c].sizes[i];
          void *p = kt_set(k, (uint32_t)(split ? 1 + i : i), dt, 3, dims);
          if (!split) kt_fill(p, dt, dims[0] * dims[1] * dims[2], &seed, KT_FULL);
        }
        if (!split) kt_set(k, (uint32_t)n, dt, 3, whole);
        kt_attrs(k, &a, sizeof a);
        char what[96];
        snprintf(what, sizeof what, "%s %s %d parts axis %d case %zu", split ? "split" : "concat",
                 kt_dtype_name(dt), n, axis, c);
        kt_check_ref_opt(k, what, 0, 0);
      }
  kt_destroy(k);
}

/* ---- gather ---- */

static void test_gather(void) {
  static const struct {
    int rd;
    int64_t data[3];
    int ri;
    int64_t idx[2];
    int axis;
  } cases[] = {{2, {5, 4}, 1, {3}, 0}, {2, {5, 4}, 2, {2, 3}, 1}, {3, {3, 4, 5}, 0, {0}, 1},
               {3, {3, 4, 5}, 2, {2, 2}, 2}, {1, {50}, 1, {7}, 0}, {2, {1000, 8}, 1, {9}, 0},
               {2, {5, 4}, 1, {0}, 0}};
  kt_t *k = kt_create();
  uint64_t seed = 13;
  for (int d = 0; d < 4; ++d)
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; ++c)
      for (int i64 = 0; i64 < 2; ++i64) {
        int32_t dt = layout_dts[d], it = i64 ? MOAI_ABI_I64 : MOAI_ABI_I32;
        int axis = cases[c].axis, rd = cases[c].rd, ri = cases[c].ri;
        int64_t od[5];
        int ro = 0;
        for (int j = 0; j < axis; ++j) od[ro++] = cases[c].data[j];
        for (int j = 0; j < ri; ++j) od[ro++] = cases[c].idx[j];
        for (int j = axis + 1; j < rd; ++j) od[ro++] = cases[c].data[j];
        kt_begin(k, MOAI_KERNEL_GATHER, 2, 1);
        kt_fill(kt_set(k, 0, dt, rd, cases[c].data), dt, moai_tensor_numel(kt_tensor(k, 0)), &seed,
                KT_FULL);
        void *ix = kt_set(k, 1, it, ri, cases[c].idx);
        int64_t dim = cases[c].data[axis], ni = moai_tensor_numel(kt_tensor(k, 1));
        for (int64_t i = 0; i < ni; ++i) /* in [-dim, dim) */
          kt_store(ix, it, i, (double)((int64_t)(kt_rand(&seed) % (uint64_t)(2 * dim)) - dim));
        kt_set(k, 2, dt, ro, od);
        moai_attrs_axis_t a = {axis};
        kt_attrs(k, &a, sizeof a);
        char what[96];
        snprintf(what, sizeof what, "gather %s %s-indices case %zu", kt_dtype_name(dt),
                 kt_dtype_name(it), c);
        kt_check_ref_opt(k, what, 0, 0);
      }
  kt_destroy(k);
}

/* ---- constant_of_shape, range ---- */

static void test_fill_range(void) {
  kt_t *k = kt_create();
  const int64_t dims[] = {3, 67};
  for (int d = 0; d < KT_N_DTYPES; ++d)
    for (int v = 0; v < 2; ++v) {
      int32_t dt = kt_all_dtypes[d];
      moai_attrs_fill_t a;
      memset(&a, 0, sizeof a);
      if (v) kt_store(a.value, dt, 0, 1.0);
      kt_begin(k, MOAI_KERNEL_CONSTANT_OF_SHAPE, 0, 1);
      kt_set(k, 0, dt, 2, dims);
      kt_attrs(k, &a, sizeof a);
      char what[64];
      snprintf(what, sizeof what, "constant_of_shape %s value %d", kt_dtype_name(dt), v);
      if (kt_check_ref_opt(k, what, 0, 0))
        KT_CHECK(kt_load(kt_ptr(k, 0), dt, 200) == (double)v, "%s: wrong value", what);
    }
  static const int32_t rdts[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_I16, MOAI_ABI_I32, MOAI_ABI_I64};
  for (int d = 0; d < 5; ++d)
    for (int neg = 0; neg < 2; ++neg) {
      int32_t dt = rdts[d];
      const int64_t n = neg ? 7 : 100;
      kt_begin(k, MOAI_KERNEL_RANGE, 3, 1);
      kt_store(kt_set(k, 0, dt, 0, NULL), dt, 0, neg ? 10 : -3);
      kt_store(kt_set(k, 1, dt, 0, NULL), dt, 0, neg ? -10 : 300);
      kt_store(kt_set(k, 2, dt, 0, NULL), dt, 0, neg ? -3 : 3);
      kt_set(k, 3, dt, 1, &n);
      char what[64];
      snprintf(what, sizeof what, "range %s %s delta", kt_dtype_name(dt), neg ? "negative" : "positive");
      if (kt_check_ref_opt(k, what, 0, 0))
        KT_CHECK(kt_load(kt_ptr(k, 3), dt, n - 1) == (neg ? 10 - 3 * 6 : -3 + 3 * 99),
                 "%s: wrong last value %g", what, kt_load(kt_ptr(k, 3), dt, n - 1));
    }
  kt_destroy(k);
}

/* ---- reduce ---- */

static void test_reduce(void) {
  static const struct {
    int rank;
    int64_t dims[4];
  } shapes[] = {{3, {3, 4, 5}}, {4, {2, 3, 1, 7}}, {2, {40, 33}}, {3, {2, 0, 3}}, {1, {1000}},
                {0, {0}},       {4, {2, 2, 2, 2}}};
  static const moai_kernel_id_t ids[] = {MOAI_KERNEL_REDUCE_SUM, MOAI_KERNEL_REDUCE_MEAN,
                                         MOAI_KERNEL_REDUCE_MAX};
  kt_t *k = kt_create();
  uint64_t seed = 14;
  for (int o = 0; o < 3; ++o)
    for (int d = 0; d < 12; ++d)
      for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; ++s)
        for (uint64_t mask = 0; mask < (1u << shapes[s].rank); ++mask)
          for (int keep = 0; keep < 2; ++keep) {
            int32_t dt = numeric[d];
            int rank = shapes[s].rank, ro = 0;
            int64_t od[4];
            for (int j = 0; j < rank; ++j) {
              if (!((mask >> j) & 1)) od[ro++] = shapes[s].dims[j];
              else if (keep) od[ro++] = 1;
            }
            moai_attrs_reduce_t a = {.axes_mask = mask, .keepdims = keep};
            kt_begin(k, ids[o], 1, 1);
            kt_fill(kt_set(k, 0, dt, rank, shapes[s].dims), dt, moai_tensor_numel(kt_tensor(k, 0)),
                    &seed, kt_is_float(dt) ? (o == 2 ? KT_SPECIAL : KT_SMALL) : KT_FULL);
            kt_set(k, 1, dt, ro, od);
            kt_attrs(k, &a, sizeof a);
            char what[128], sd[48];
            snprintf(what, sizeof what, "%s %s %s mask 0x%llx keepdims %d", moai_kernel_name(ids[o]),
                     kt_dtype_name(dt), shape_str(rank, shapes[s].dims, sd, sizeof sd),
                     (unsigned long long)mask, keep);
            if (!kt_check_ref_opt(k, what, dt == MOAI_ABI_F16   ? 1.0 / 1024
                                           : dt == MOAI_ABI_BF16 ? 1.0 / 128
                                                                 : 1e-6,
                                  1e-6))
              goto done;
          }
done:
  kt_destroy(k);
}

/* ---- failures ---- */

static void expect_failure(kt_t *k, const char *needle, const char *what) {
  for (int isa = 0; isa < 2; ++isa) {
    moai_isa_t i = isa ? moai_isa_detect() : MOAI_ISA_REFERENCE;
    bool ran = kt_run(k, i, 3);
    KT_CHECK(!ran, "%s (%s): expected a failure", what, moai_isa_name(i));
    KT_CHECK(strstr(k->status.message, needle) != NULL,
             "%s (%s): message '%s' lacks '%s'", what, moai_isa_name(i), k->status.message, needle);
    KT_CHECK(k->status.op_index == 7 && strcmp(k->status.op_name, "test_") > 0,
             "%s: failure not attributed to the op", what);
  }
}

static void test_failures(void) {
  kt_t *k = kt_create();
  const int64_t n = 6;
  /* unsupported dtypes */
  kt_begin(k, MOAI_KERNEL_ADD, 2, 1);
  kt_set(k, 0, MOAI_ABI_BOOL, 1, &n);
  kt_set(k, 1, MOAI_ABI_BOOL, 1, &n);
  kt_set(k, 2, MOAI_ABI_BOOL, 1, &n);
  expect_failure(k, "add: unsupported dtype bool", "add bool");
  kt_begin(k, MOAI_KERNEL_EXP, 1, 1);
  kt_set(k, 0, MOAI_ABI_I32, 1, &n);
  kt_set(k, 1, MOAI_ABI_I32, 1, &n);
  expect_failure(k, "exp: unsupported dtype int32", "exp int32");
  kt_begin(k, MOAI_KERNEL_AND, 2, 1);
  kt_set(k, 0, MOAI_ABI_I8, 1, &n);
  kt_set(k, 1, MOAI_ABI_I8, 1, &n);
  kt_set(k, 2, MOAI_ABI_BOOL, 1, &n);
  expect_failure(k, "and: unsupported dtype int8", "and int8");
  /* integer division by zero, every integer dtype */
  for (int d = 4; d < 12; ++d) {
    kt_begin(k, MOAI_KERNEL_DIV, 2, 1);
    void *a = kt_set(k, 0, numeric[d], 1, &n);
    void *b = kt_set(k, 1, numeric[d], 1, &n);
    kt_set(k, 2, numeric[d], 1, &n);
    for (int64_t i = 0; i < n; ++i) {
      kt_store(a, numeric[d], i, 7);
      kt_store(b, numeric[d], i, i == 4 ? 0 : 2);
    }
    char what[32];
    snprintf(what, sizeof what, "div %s by zero", kt_dtype_name(numeric[d]));
    expect_failure(k, "div: integer division by zero", what);
  }
  /* gather index out of range (both signs), per indices dtype */
  for (int i64 = 0; i64 < 2; ++i64)
    for (int sign = 0; sign < 2; ++sign) {
      const int64_t dd[] = {4, 3}, id[] = {2}, od[] = {2, 3};
      kt_begin(k, MOAI_KERNEL_GATHER, 2, 1);
      kt_set(k, 0, MOAI_ABI_F32, 2, dd);
      int32_t it = i64 ? MOAI_ABI_I64 : MOAI_ABI_I32;
      void *ix = kt_set(k, 1, it, 1, id);
      kt_store(ix, it, 0, 1);
      kt_store(ix, it, 1, sign ? -5 : 4);
      kt_set(k, 2, MOAI_ABI_F32, 2, od);
      moai_attrs_axis_t a = {0};
      kt_attrs(k, &a, sizeof a);
      expect_failure(k, sign ? "gather: index -5 out of range" : "gather: index 4 out of range",
                     "gather out of range");
    }
  /* shapes that do not broadcast */
  const int64_t d3[] = {3}, d4[] = {4};
  kt_begin(k, MOAI_KERNEL_MUL, 2, 1);
  kt_set(k, 0, MOAI_ABI_F32, 1, d3);
  kt_set(k, 1, MOAI_ABI_F32, 1, d4);
  kt_set(k, 2, MOAI_ABI_F32, 1, d4);
  expect_failure(k, "does not broadcast", "mul [3]*[4]");
  /* mixed dtypes */
  kt_begin(k, MOAI_KERNEL_SUB, 2, 1);
  kt_set(k, 0, MOAI_ABI_F32, 1, d3);
  kt_set(k, 1, MOAI_ABI_F16, 1, d3);
  kt_set(k, 2, MOAI_ABI_F32, 1, d3);
  expect_failure(k, "do not match", "sub f32-f16");
  /* slice reading outside its input */
  moai_attrs_slice_t sa;
  memset(&sa, 0, sizeof sa);
  sa.start[0] = 2;
  sa.step[0] = 1;
  kt_begin(k, MOAI_KERNEL_SLICE, 1, 1);
  kt_set(k, 0, MOAI_ABI_F32, 1, d4);
  kt_set(k, 1, MOAI_ABI_F32, 1, d3);
  kt_attrs(k, &sa, sizeof sa);
  expect_failure(k, "slice: axis 0 reads outside the input", "slice out of bounds");
  kt_destroy(k);
}

/* The optimised tables for every ISA this CPU has agree on which kernels
 * exist: nothing elementwise is left to moai_kernel_missing. */
static void test_table_complete(void) {
  static const moai_kernel_id_t ids[] = {
      MOAI_KERNEL_COPY, MOAI_KERNEL_ADD, MOAI_KERNEL_SUB, MOAI_KERNEL_MUL, MOAI_KERNEL_DIV,
      MOAI_KERNEL_POW, MOAI_KERNEL_EQUAL, MOAI_KERNEL_LESS, MOAI_KERNEL_LESS_OR_EQUAL,
      MOAI_KERNEL_GREATER, MOAI_KERNEL_GREATER_OR_EQUAL, MOAI_KERNEL_AND, MOAI_KERNEL_OR,
      MOAI_KERNEL_NOT, MOAI_KERNEL_WHERE, MOAI_KERNEL_MAX, MOAI_KERNEL_MIN, MOAI_KERNEL_NEG,
      MOAI_KERNEL_ABS, MOAI_KERNEL_SQRT, MOAI_KERNEL_EXP, MOAI_KERNEL_LOG, MOAI_KERNEL_SIN,
      MOAI_KERNEL_COS, MOAI_KERNEL_TANH, MOAI_KERNEL_SIGMOID, MOAI_KERNEL_ERF, MOAI_KERNEL_RELU,
      MOAI_KERNEL_LEAKY_RELU, MOAI_KERNEL_GELU, MOAI_KERNEL_CLIP, MOAI_KERNEL_CAST,
      MOAI_KERNEL_EXPAND, MOAI_KERNEL_TRANSPOSE, MOAI_KERNEL_SLICE, MOAI_KERNEL_CONCAT,
      MOAI_KERNEL_SPLIT, MOAI_KERNEL_GATHER, MOAI_KERNEL_CONSTANT_OF_SHAPE, MOAI_KERNEL_RANGE,
      MOAI_KERNEL_REDUCE_SUM, MOAI_KERNEL_REDUCE_MEAN, MOAI_KERNEL_REDUCE_MAX};
  for (int isa = MOAI_ISA_REFERENCE; isa <= (int)moai_isa_detect(); ++isa) {
    const moai_kernel_fn_t *t = kt_table((moai_isa_t)isa);
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; ++i)
      KT_CHECK(t[ids[i]] != moai_kernel_missing, "%s: no %s kernel",
               moai_kernel_name(ids[i]) ? moai_kernel_name(ids[i]) : "?",
               moai_isa_name((moai_isa_t)isa));
  }
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"table_complete", test_table_complete},
      {"arith", test_arith},
      {"compare_logic", test_compare_logic},
      {"pow", test_pow},
      {"where", test_where},
      {"max_min", test_max_min},
      {"unary", test_unary},
      {"activations", test_activations},
      {"clip", test_clip},
      {"cast", test_cast},
      {"copy", test_copy},
      {"expand", test_expand},
      {"transpose", test_transpose},
      {"slice", test_slice},
      {"concat_split", test_concat_split},
      {"gather", test_gather},
      {"fill_range", test_fill_range},
      {"reduce", test_reduce},
      {"failures", test_failures},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("kernels_elementwise_ref_vs_opt", tests);
}
