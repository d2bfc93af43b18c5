/* Elementwise kernels against values known independently of moai: numpy /
 * C semantics worked out by hand (integer division, wrapping, broadcasting,
 * negative indices and steps), IEEE half conversions checked against a
 * slow bit-level reference, libm in double for the fast exp/tanh/sigmoid
 * (a dense sweep of f32), and published constants (erf(0.5), GELU(1)).
 * Every case runs the reference and the optimised kernels. */
#include "test_kernels_elementwise_support.h"

/* Runs k with both tables (nth 1 and 3) and compares output `out` with
 * `expect` (n elements of dtype dt) within rtol. */
static void expect_values(kt_t *k, uint32_t out, const void *expect, double rtol, const char *what) {
  const moai_tensor_t *t = kt_tensor(k, out);
  const int64_t n = moai_tensor_numel(t);
  for (int run = 0; run < 4; ++run) {
    moai_isa_t isa = run < 2 ? MOAI_ISA_REFERENCE : moai_isa_detect();
    int nth = run % 2 ? 3 : 1;
    memset(kt_ptr(k, out), 0x5a, (size_t)n * kt_dtype_size(t->dtype));
    if (!kt_run(k, isa, nth)) {
      KT_CHECK(0, "%s (%s, nth %d): failed: %s", what, moai_isa_name(isa), nth, k->status.message);
      continue;
    }
    int64_t bad = kt_compare(kt_ptr(k, out), expect, t->dtype, n, rtol, rtol ? 1e-300 : 0);
    KT_CHECK(bad < 0, "%s (%s, nth %d): element %lld is %.17g, expected %.17g", what,
             moai_isa_name(isa), nth, (long long)bad, bad < 0 ? 0 : kt_load(kt_ptr(k, out), t->dtype, bad),
             bad < 0 ? 0 : kt_load(expect, t->dtype, bad));
  }
}

/* A binary op on 1-D/2-D operands given as arrays. */
static void binary(kt_t *k, moai_kernel_id_t id, int32_t dt, int32_t out_dt, int ra, const int64_t *da,
                   const void *a, int rb, const int64_t *db, const void *b, int ro, const int64_t *dout) {
  kt_begin(k, id, 2, 1);
  void *pa = kt_set(k, 0, dt, ra, da);
  void *pb = kt_set(k, 1, dt, rb, db);
  kt_set(k, 2, out_dt, ro, dout);
  memcpy(pa, a, (size_t)moai_tensor_numel(kt_tensor(k, 0)) * kt_dtype_size(dt));
  memcpy(pb, b, (size_t)moai_tensor_numel(kt_tensor(k, 1)) * kt_dtype_size(dt));
}

static void test_broadcast_add(void) {
  kt_t *k = kt_create();
  const int64_t d23[] = {2, 3}, d3[] = {3}, d21[] = {2, 1};
  const float a[] = {1, 2, 3, 4, 5, 6}, b[] = {10, 20, 30}, c[] = {100, 200};
  binary(k, MOAI_KERNEL_ADD, MOAI_ABI_F32, MOAI_ABI_F32, 2, d23, a, 1, d3, b, 2, d23);
  expect_values(k, 2, (const float[]){11, 22, 33, 14, 25, 36}, 0, "add f32 [2,3]+[3]");
  binary(k, MOAI_KERNEL_SUB, MOAI_ABI_F32, MOAI_ABI_F32, 2, d21, c, 1, d3, b, 2, d23);
  expect_values(k, 2, (const float[]){90, 80, 70, 190, 180, 170}, 0, "sub f32 [2,1]-[3]");
  const int64_t one[] = {1};
  const uint8_t x8[] = {0, 1, 1, 0}, y8[] = {1};
  const int64_t d4[] = {4};
  binary(k, MOAI_KERNEL_AND, MOAI_ABI_BOOL, MOAI_ABI_BOOL, 1, d4, x8, 1, one, y8, 1, d4);
  expect_values(k, 2, x8, 0, "and bool [4]&[1]");
  kt_destroy(k);
}

static void test_integer_semantics(void) {
  kt_t *k = kt_create();
  const int64_t d6[] = {6};
  const int32_t a[] = {-7, 7, -7, 7, INT32_MIN, 0}, b[] = {2, -2, -2, 2, -1, 5};
  binary(k, MOAI_KERNEL_DIV, MOAI_ABI_I32, MOAI_ABI_I32, 1, d6, a, 1, d6, b, 1, d6);
  expect_values(k, 2, (const int32_t[]){-3, -3, 3, 3, INT32_MIN, 0}, 0,
                "div int32 truncates toward zero (-7/2 = -3), INT_MIN/-1 wraps");
  const int64_t d3[] = {3};
  const int8_t a8[] = {127, -128, 100}, b8[] = {1, -1, 100};
  binary(k, MOAI_KERNEL_ADD, MOAI_ABI_I8, MOAI_ABI_I8, 1, d3, a8, 1, d3, b8, 1, d3);
  expect_values(k, 2, (const int8_t[]){-128, 127, -56}, 0, "add int8 wraps");
  const uint8_t u1[] = {255, 0, 7}, u2[] = {1, 1, 2};
  binary(k, MOAI_KERNEL_ADD, MOAI_ABI_U8, MOAI_ABI_U8, 1, d3, u1, 1, d3, u2, 1, d3);
  expect_values(k, 2, (const uint8_t[]){0, 1, 9}, 0, "add uint8 wraps");
  binary(k, MOAI_KERNEL_SUB, MOAI_ABI_U8, MOAI_ABI_U8, 1, d3, u2, 1, d3, u1, 1, d3);
  expect_values(k, 2, (const uint8_t[]){2, 1, 251}, 0, "sub uint8 wraps");
  binary(k, MOAI_KERNEL_DIV, MOAI_ABI_U8, MOAI_ABI_U8, 1, d3, u1, 1, d3, u2, 1, d3);
  expect_values(k, 2, (const uint8_t[]){255, 0, 3}, 0, "div uint8 7/2 = 3");
  const int16_t s1[] = {256, -300, 181}, s2[] = {256, 300, 181};
  binary(k, MOAI_KERNEL_MUL, MOAI_ABI_I16, MOAI_ABI_I16, 1, d3, s1, 1, d3, s2, 1, d3);
  expect_values(k, 2, (const int16_t[]){0, (int16_t)(-90000 + 131072), (int16_t)(32761)}, 0,
                "mul int16 wraps modulo 2^16");
  const int64_t l1[] = {INT64_MAX, INT64_MIN, 3}, l2[] = {1, 1, -1};
  binary(k, MOAI_KERNEL_ADD, MOAI_ABI_I64, MOAI_ABI_I64, 1, d3, l1, 1, d3, l2, 1, d3);
  expect_values(k, 2, (const int64_t[]){INT64_MIN, INT64_MIN + 1, 2}, 0, "add int64 wraps");
  kt_destroy(k);
}

static void test_pow_values(void) {
  kt_t *k = kt_create();
  const int64_t d6[] = {6};
  const int32_t base[] = {2, -2, 2, 1, -1, 0}, ex[] = {10, 3, -1, -1, -3, 0};
  binary(k, MOAI_KERNEL_POW, MOAI_ABI_I32, MOAI_ABI_I32, 1, d6, base, 1, d6, ex, 1, d6);
  expect_values(k, 2, (const int32_t[]){1024, -8, 0, 1, -1, 1}, 0, "pow int32^int32");
  /* mixed dtypes: result in the base's dtype */
  kt_begin(k, MOAI_KERNEL_POW, 2, 1);
  const int64_t d3[] = {3};
  float *fb = kt_set(k, 0, MOAI_ABI_F32, 1, d3);
  int64_t *ie = kt_set(k, 1, MOAI_ABI_I64, 1, d3);
  kt_set(k, 2, MOAI_ABI_F32, 1, d3);
  fb[0] = 2, fb[1] = -3, fb[2] = 4;
  ie[0] = 3, ie[1] = 2, ie[2] = -1;
  expect_values(k, 2, (const float[]){8, 9, 0.25f}, 0, "pow f32^int64");
  kt_begin(k, MOAI_KERNEL_POW, 2, 1);
  int32_t *ib = kt_set(k, 0, MOAI_ABI_I32, 1, d3);
  float *fe = kt_set(k, 1, MOAI_ABI_F32, 1, d3);
  kt_set(k, 2, MOAI_ABI_I32, 1, d3);
  ib[0] = 2, ib[1] = 9, ib[2] = 10;
  fe[0] = 0.5f, fe[1] = 0.5f, fe[2] = 20.0f;
  expect_values(k, 2, (const int32_t[]){1, 3, INT32_MAX}, 0,
                "pow int32^f32 truncates (sqrt 2 -> 1) and saturates");
  kt_destroy(k);
}

static void test_nan_semantics(void) {
  kt_t *k = kt_create();
  const int64_t d4[] = {4};
  const float a[] = {NAN, 1, 2, -0.0f}, b[] = {1, NAN, 3, 0};
  binary(k, MOAI_KERNEL_MAX, MOAI_ABI_F32, MOAI_ABI_F32, 1, d4, a, 1, d4, b, 1, d4);
  expect_values(k, 2, (const float[]){NAN, NAN, 3, -0.0f}, 0, "max f32 propagates NaN (np.maximum)");
  binary(k, MOAI_KERNEL_MIN, MOAI_ABI_F32, MOAI_ABI_F32, 1, d4, a, 1, d4, b, 1, d4);
  expect_values(k, 2, (const float[]){NAN, NAN, 2, -0.0f}, 0, "min f32 propagates NaN (np.minimum)");
  binary(k, MOAI_KERNEL_EQUAL, MOAI_ABI_F32, MOAI_ABI_BOOL, 1, d4, a, 1, d4, a, 1, d4);
  expect_values(k, 2, (const uint8_t[]){0, 1, 1, 1}, 0, "equal f32: NaN != NaN, -0 == 0");
  binary(k, MOAI_KERNEL_LESS_OR_EQUAL, MOAI_ABI_F32, MOAI_ABI_BOOL, 1, d4, a, 1, d4, b, 1, d4);
  expect_values(k, 2, (const uint8_t[]){0, 0, 1, 1}, 0, "less_or_equal f32 with NaN");
  kt_destroy(k);
}

static void test_gather_slice_values(void) {
  kt_t *k = kt_create();
  const int64_t dd[] = {3, 2}, di[] = {2}, dout[] = {2, 2};
  kt_begin(k, MOAI_KERNEL_GATHER, 2, 1);
  float *data = kt_set(k, 0, MOAI_ABI_F32, 2, dd);
  int64_t *idx = kt_set(k, 1, MOAI_ABI_I64, 1, di);
  kt_set(k, 2, MOAI_ABI_F32, 2, dout);
  for (int i = 0; i < 6; ++i) data[i] = (float)(i + 1);
  idx[0] = -1, idx[1] = 0;
  moai_attrs_axis_t ax = {0};
  kt_attrs(k, &ax, sizeof ax);
  expect_values(k, 2, (const float[]){5, 6, 1, 2}, 0, "gather axis 0 indices [-1, 0]");
  ax.axis = 1;
  kt_begin(k, MOAI_KERNEL_GATHER, 2, 1);
  data = kt_set(k, 0, MOAI_ABI_F32, 2, dd);
  int32_t *idx32 = kt_set(k, 1, MOAI_ABI_I32, 0, NULL);
  const int64_t d3[] = {3};
  kt_set(k, 2, MOAI_ABI_F32, 1, d3);
  for (int i = 0; i < 6; ++i) data[i] = (float)(i + 1);
  idx32[0] = -2;
  kt_attrs(k, &ax, sizeof ax);
  expect_values(k, 2, (const float[]){1, 3, 5}, 0, "gather axis 1 scalar index -2");

  const int64_t d10[] = {10};
  moai_attrs_slice_t sa;
  memset(&sa, 0, sizeof sa);
  sa.start[0] = 8;
  sa.step[0] = -3;
  kt_begin(k, MOAI_KERNEL_SLICE, 1, 1);
  int32_t *x = kt_set(k, 0, MOAI_ABI_I32, 1, d10);
  kt_set(k, 1, MOAI_ABI_I32, 1, d3);
  for (int i = 0; i < 10; ++i) x[i] = i;
  kt_attrs(k, &sa, sizeof sa);
  expect_values(k, 1, (const int32_t[]){8, 5, 2}, 0, "slice [0..9][8::-3]");
  kt_destroy(k);
}

/* Casts n elements of `in` (dtype st) to dt and compares with expect. */
static void cast_values(kt_t *k, int32_t st, int32_t dt, const void *in, const void *expect, int64_t n,
                        const char *what) {
  kt_begin(k, MOAI_KERNEL_CAST, 1, 1);
  memcpy(kt_set(k, 0, st, 1, &n), in, (size_t)n * kt_dtype_size(st));
  kt_set(k, 1, dt, 1, &n);
  expect_values(k, 1, expect, 0, what);
}

static void test_cast_values(void) {
  kt_t *k = kt_create();
  const float f[] = {1.0f, 1.00390625f, 1.01171875f, 3.14159265f, -0.0f, 65519.0f, 65520.0f,
                     1e-8f, 3e-8f, INFINITY};
  cast_values(k, MOAI_ABI_F32, MOAI_ABI_BF16, f,
              (const uint16_t[]){0x3f80, 0x3f80, 0x3f82, 0x4049, 0x8000, 0x4780, 0x4780, 0x322c,
                                 0x3301, 0x7f80},
              10, "cast f32 -> bf16 (ties to even)");
  cast_values(k, MOAI_ABI_F32, MOAI_ABI_F16, f,
              (const uint16_t[]){0x3c00, 0x3c04, 0x3c0c, 0x4248, 0x8000, 0x7bff, 0x7c00, 0x0000,
                                 0x0001, 0x7c00},
              10, "cast f32 -> f16 (ties to even, overflow, subnormals)");
  /* one rounding from f64, not two through f32 */
  const double d[] = {1.0 + 0x1p-11 + 0x1p-40, 1.0 + 0x1p-8 + 0x1p-40};
  cast_values(k, MOAI_ABI_F64, MOAI_ABI_F16, d, (const uint16_t[]){0x3c01, 0x3c04}, 2,
              "cast f64 -> f16 rounds once");
  cast_values(k, MOAI_ABI_F64, MOAI_ABI_BF16, d, (const uint16_t[]){0x3f80, 0x3f81}, 2,
              "cast f64 -> bf16 rounds once");
  const int64_t big[] = {(1ll << 62) + (1ll << 54) + 1, -((1ll << 62) + (1ll << 54) + 1), 3};
  cast_values(k, MOAI_ABI_I64, MOAI_ABI_BF16, big, (const uint16_t[]){0x5e81, 0xde81, 0x4040}, 3,
              "cast int64 -> bf16 rounds once");
  /* float -> int: truncation, saturation, NaN -> 0 */
  const float g[] = {3e9f, -3e9f, NAN, -1.5f, 2.9f, -0.7f};
  cast_values(k, MOAI_ABI_F32, MOAI_ABI_I32, g,
              (const int32_t[]){INT32_MAX, INT32_MIN, 0, -1, 2, 0}, 6, "cast f32 -> int32");
  cast_values(k, MOAI_ABI_F32, MOAI_ABI_U8, g, (const uint8_t[]){255, 0, 0, 0, 2, 0}, 6,
              "cast f32 -> uint8 saturates");
  cast_values(k, MOAI_ABI_F32, MOAI_ABI_BOOL, g, (const uint8_t[]){1, 1, 1, 1, 1, 1}, 6,
              "cast f32 -> bool (NaN is true)");
  const double z[] = {0.0, -0.0, 1e300, -1e300};
  cast_values(k, MOAI_ABI_F64, MOAI_ABI_I64, z, (const int64_t[]){0, 0, INT64_MAX, INT64_MIN}, 4,
              "cast f64 -> int64 saturates");
  cast_values(k, MOAI_ABI_F64, MOAI_ABI_U64, z, (const uint64_t[]){0, 0, UINT64_MAX, 0}, 4,
              "cast f64 -> uint64 saturates");
  const int32_t w[] = {300, -1, 65536 + 7};
  cast_values(k, MOAI_ABI_I32, MOAI_ABI_U8, w, (const uint8_t[]){44, 255, 7}, 3,
              "cast int32 -> uint8 wraps");
  cast_values(k, MOAI_ABI_I32, MOAI_ABI_U32, w, (const uint32_t[]){300, 4294967295u, 65543}, 3,
              "cast int32 -> uint32 wraps");
  cast_values(k, MOAI_ABI_I32, MOAI_ABI_I16, w, (const int16_t[]){300, -1, 7}, 3,
              "cast int32 -> int16 wraps");
  const uint8_t bools[] = {0, 1, 1};
  cast_values(k, MOAI_ABI_BOOL, MOAI_ABI_F32, bools, (const float[]){0, 1, 1}, 3, "cast bool -> f32");
  cast_values(k, MOAI_ABI_BOOL, MOAI_ABI_BF16, bools, (const uint16_t[]){0, 0x3f80, 0x3f80}, 3,
              "cast bool -> bf16");
  const uint64_t u64[] = {UINT64_MAX, (1ull << 53) + 1};
  cast_values(k, MOAI_ABI_U64, MOAI_ABI_F32, u64, (const float[]){18446744073709551616.0f, 9007199254740992.0f},
              2, "cast uint64 -> f32");
  kt_destroy(k);
}

/* Every f16 and bf16 value through cast to f32 and back, and random f32
 * through cast to f16/bf16 against the slow reference conversions. */
static void test_cast_halves_exhaustive(void) {
  kt_t *k = kt_create();
  const int64_t n = 65536;
  for (int h = 0; h < 2; ++h) {
    int32_t ht = h ? MOAI_ABI_BF16 : MOAI_ABI_F16;
    const char *hn = kt_dtype_name(ht);
    kt_begin(k, MOAI_KERNEL_CAST, 1, 1);
    uint16_t *x = kt_set(k, 0, ht, 1, &n);
    float *y = kt_set(k, 1, MOAI_ABI_F32, 1, &n);
    for (int64_t i = 0; i < n; ++i) x[i] = (uint16_t)i;
    for (int isa = 0; isa < 2; ++isa) {
      KT_CHECK(kt_run(k, isa ? moai_isa_detect() : MOAI_ISA_REFERENCE, 3), "cast %s -> f32", hn);
      int64_t bad = -1;
      for (int64_t i = 0; i < n && bad < 0; ++i) {
        float want = h ? kt_bf16_to_f32((uint16_t)i) : kt_f16_to_f32((uint16_t)i);
        if (!(want != want && y[i] != y[i]) && memcmp(&want, &y[i], 4)) bad = i;
      }
      KT_CHECK(bad < 0, "cast %s -> f32: 0x%04llx", hn, (long long)bad);
    }
    /* back: every non-NaN value must round-trip bit for bit */
    kt_begin(k, MOAI_KERNEL_CAST, 1, 1);
    float *f = kt_set(k, 0, MOAI_ABI_F32, 1, &n);
    uint16_t *z = kt_set(k, 1, ht, 1, &n);
    for (int64_t i = 0; i < n; ++i) f[i] = h ? kt_bf16_to_f32((uint16_t)i) : kt_f16_to_f32((uint16_t)i);
    for (int isa = 0; isa < 2; ++isa) {
      KT_CHECK(kt_run(k, isa ? moai_isa_detect() : MOAI_ISA_REFERENCE, 3), "cast f32 -> %s", hn);
      int64_t bad = -1;
      for (int64_t i = 0; i < n && bad < 0; ++i)
        if (f[i] == f[i] ? z[i] != (uint16_t)i : !(z[i] & 0x7fff)) bad = i;
      KT_CHECK(bad < 0, "cast f32 -> %s round trip of 0x%04llx gives 0x%04x", hn, (long long)bad,
               bad < 0 ? 0 : z[bad]);
    }
    /* random f32 (half of them near a rounding boundary) */
    uint64_t seed = 31 + (uint64_t)h;
    for (int64_t i = 0; i < n; ++i) {
      uint32_t u = (uint32_t)kt_rand(&seed);
      if (i & 1) u = (u & 0xffffe000u) | (h ? 0x8000u : 0x1000u) | (uint32_t)(kt_rand(&seed) & 1);
      if (h && (i & 1)) u = (u & 0xffff0000u) | 0x8000u | (uint32_t)(kt_rand(&seed) & 1);
      memcpy(&f[i], &u, 4);
    }
    for (int isa = 0; isa < 2; ++isa) {
      KT_CHECK(kt_run(k, isa ? moai_isa_detect() : MOAI_ISA_REFERENCE, 3), "cast f32 -> %s", hn);
      int64_t bad = -1;
      for (int64_t i = 0; i < n && bad < 0; ++i) {
        uint16_t want = h ? kt_f32_to_bf16(f[i]) : kt_f32_to_f16(f[i]);
        bool nan = f[i] != f[i];
        if (nan ? (z[i] & 0x7fff) <= (h ? 0x7f80 : 0x7c00) : z[i] != want) bad = i;
      }
      KT_CHECK(bad < 0, "cast f32 %a -> %s gives 0x%04x, expected 0x%04x", bad < 0 ? 0.0 : f[bad], hn,
               bad < 0 ? 0 : z[bad], bad < 0 ? 0 : (h ? kt_f32_to_bf16(f[bad]) : kt_f32_to_f16(f[bad])));
    }
  }
  kt_destroy(k);
}

static void unary_values(kt_t *k, moai_kernel_id_t id, int32_t dt, const void *attrs, size_t as,
                         const double *x, const double *expect, int n, double rtol, const char *what) {
  const int64_t d = n;
  kt_begin(k, id, 1, 1);
  void *px = kt_set(k, 0, dt, 1, &d);
  kt_set(k, 1, dt, 1, &d);
  if (attrs) kt_attrs(k, attrs, as);
  unsigned char want[64];
  for (int i = 0; i < n; ++i) {
    kt_store(px, dt, i, x[i]);
    kt_store(want, dt, i, expect[i]);
  }
  expect_values(k, 1, want, rtol, what);
}

static void test_math_values(void) {
  kt_t *k = kt_create();
  /* erf(0.5) = 0.5204998778130465377; tables of the error function */
  const double erf_x[] = {0.5, -1.0, 0.0, 3.0};
  const double erf_y[] = {0.52049987781304653768, -0.84270079294971486934, 0.0, 0.99997790950300141456};
  unary_values(k, MOAI_KERNEL_ERF, MOAI_ABI_F32, NULL, 0, erf_x, erf_y, 4, 1e-7, "erf f32");
  unary_values(k, MOAI_KERNEL_ERF, MOAI_ABI_F64, NULL, 0, erf_x, erf_y, 4, 1e-15, "erf f64");
  /* GELU(1): exact 0.5 (1 + erf(1/sqrt 2)) = 0.8413447460685429; tanh
   * approximation 0.5 (1 + tanh(sqrt(2/pi) * 1.044715)) = 0.8411919906082768 */
  const double gx[] = {1.0, -1.0, 0.0, 3.0};
  const double g_exact[] = {0.84134474606854293, -0.15865525393145707, 0.0, 2.99595030590511};
  const double g_tanh[] = {0.8411919906082768, -0.15880800939172324, 0.0, 2.996362607918227};
  moai_attrs_gelu_t ge = {0}, gt = {1};
  unary_values(k, MOAI_KERNEL_GELU, MOAI_ABI_F32, &ge, sizeof ge, gx, g_exact, 4, 2e-7, "gelu exact f32");
  unary_values(k, MOAI_KERNEL_GELU, MOAI_ABI_F32, &gt, sizeof gt, gx, g_tanh, 4, 2e-7, "gelu tanh f32");
  unary_values(k, MOAI_KERNEL_GELU, MOAI_ABI_F64, &ge, sizeof ge, gx, g_exact, 4, 1e-15, "gelu exact f64");
  unary_values(k, MOAI_KERNEL_GELU, MOAI_ABI_F64, &gt, sizeof gt, gx, g_tanh, 4, 1e-15, "gelu tanh f64");
  const double sx[] = {0.0, 1.0, -20.0, 0.5};
  const double sig[] = {0.5, 0.73105857863000487925, 2.0611536181902037e-09, 0.62245933120185456464};
  unary_values(k, MOAI_KERNEL_SIGMOID, MOAI_ABI_F32, NULL, 0, sx, sig, 4, 2e-7, "sigmoid f32");
  const double ex[] = {2.7182818284590452354, 1.0, 2.0611536224385578e-09, 1.6487212707001281468};
  unary_values(k, MOAI_KERNEL_EXP, MOAI_ABI_F32, NULL, 0, (const double[]){1, 0, -20, 0.5}, ex, 4,
               2e-7, "exp f32");
  const double th[] = {0.0, 0.76159415595576488812, -1.0, 0.46211715726000975850};
  unary_values(k, MOAI_KERNEL_TANH, MOAI_ABI_F32, NULL, 0, sx, th, 4, 2e-7, "tanh f32");
  unary_values(k, MOAI_KERNEL_TANH, MOAI_ABI_BF16, NULL, 0, sx, th, 4, 1.0 / 128, "tanh bf16");
  moai_attrs_leaky_relu_t lr = {0.1f};
  unary_values(k, MOAI_KERNEL_LEAKY_RELU, MOAI_ABI_F32, &lr, sizeof lr,
               (const double[]){-2, 3, 0, -0.5}, (const double[]){-0.2f, 3, 0, -0.05f}, 4, 0,
               "leaky_relu f32 alpha 0.1");
  kt_destroy(k);
}

/* The fast f32 exp, tanh and sigmoid against double libm over a dense
 * sweep of f32 (every 61st bit pattern): relative error < 1e-6 on normal
 * results, at most one subnormal step below 2^-126, NaN, inf as libm. */
static void test_fast_math_sweep(void) {
  kt_t *k = kt_create();
  const int64_t n = 1 << 20;
  static const moai_kernel_id_t ids[] = {MOAI_KERNEL_EXP, MOAI_KERNEL_TANH, MOAI_KERNEL_SIGMOID};
  for (int f = 0; f < 3; ++f) {
    kt_begin(k, ids[f], 1, 1);
    float *x = kt_set(k, 0, MOAI_ABI_F32, 1, &n);
    float *y = kt_set(k, 1, MOAI_ABI_F32, 1, &n);
    double worst = 0;
    float worst_x = 0;
    int64_t bad = 0;
    uint64_t u = 0;
    while (u < 0x100000000ull) {
      int64_t m = 0;
      for (; m < n && u < 0x100000000ull; ++m, u += 61) {
        uint32_t b = (uint32_t)u;
        memcpy(&x[m], &b, 4);
      }
      kt_tensor(k, 0)->dims[0] = m;
      kt_tensor(k, 1)->dims[0] = m;
      kt_run(k, moai_isa_detect(), 2);
      for (int64_t i = 0; i < m; ++i) {
        double v = x[i];
        double r = f == 0 ? exp(v) : f == 1 ? tanh(v) : 1.0 / (1.0 + exp(-v));
        if (v != v) {
          bad += y[i] == y[i];
          continue;
        }
        if (fabs(r) > 3.4028234663852886e38) {
          bad += !isinf(y[i]);
          continue;
        }
        if (fabs(r) < 0x1p-126) {
          bad += fabs(y[i] - r) > 0x1p-149;
          continue;
        }
        double rel = fabs(y[i] - r) / fabs(r);
        if (rel > worst) {
          worst = rel;
          worst_x = x[i];
        }
      }
    }
    KT_CHECK(bad == 0, "%s f32 fast: %lld NaN/inf/subnormal mismatches", moai_kernel_name(ids[f]),
             (long long)bad);
    KT_CHECK(worst < 1e-6, "%s f32 fast: max relative error %g at %a", moai_kernel_name(ids[f]), worst,
             worst_x);
  }
  kt_destroy(k);
}

static void test_reduce_values(void) {
  kt_t *k = kt_create();
  const int64_t d23[] = {2, 3}, d2[] = {2}, d203[] = {2, 0, 3}, d21[] = {2, 1, 3};
  static const moai_kernel_id_t ids[] = {MOAI_KERNEL_REDUCE_SUM, MOAI_KERNEL_REDUCE_MEAN,
                                         MOAI_KERNEL_REDUCE_MAX};
  const float expect[3][2] = {{6, 15}, {2, 5}, {3, 6}};
  for (int o = 0; o < 3; ++o) {
    kt_begin(k, ids[o], 1, 1);
    float *x = kt_set(k, 0, MOAI_ABI_F32, 2, d23);
    kt_set(k, 1, MOAI_ABI_F32, 1, d2);
    for (int i = 0; i < 6; ++i) x[i] = (float)(i + 1);
    moai_attrs_reduce_t a = {.axes_mask = 2};
    kt_attrs(k, &a, sizeof a);
    char what[64];
    snprintf(what, sizeof what, "%s f32 [[1,2,3],[4,5,6]] axis 1", moai_kernel_name(ids[o]));
    expect_values(k, 1, expect[o], 0, what);
    /* empty reduction: axis 1 of [2,0,3] */
    kt_begin(k, ids[o], 1, 1);
    kt_set(k, 0, MOAI_ABI_F32, 3, d203);
    kt_set(k, 1, MOAI_ABI_F32, 3, d21);
    a.axes_mask = 2;
    a.keepdims = 1;
    kt_attrs(k, &a, sizeof a);
    float e = o == 0 ? 0.0f : o == 1 ? NAN : -INFINITY;
    const float ev[6] = {e, e, e, e, e, e};
    snprintf(what, sizeof what, "%s f32 empty reduction", moai_kernel_name(ids[o]));
    expect_values(k, 1, ev, 0, what);
  }
  /* int8 sum wraps; int32 mean truncates; int max of an empty set is MIN */
  const int64_t d3[] = {3}, d0[] = {0};
  moai_attrs_reduce_t all = {.axes_mask = 1};
  kt_begin(k, MOAI_KERNEL_REDUCE_SUM, 1, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_I8, 1, d3), (const int8_t[]){100, 100, 1}, 3);
  kt_set(k, 1, MOAI_ABI_I8, 0, NULL);
  kt_attrs(k, &all, sizeof all);
  expect_values(k, 1, (const int8_t[]){-55}, 0, "reduce_sum int8 wraps");
  kt_begin(k, MOAI_KERNEL_REDUCE_MEAN, 1, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_I32, 1, d3), (const int32_t[]){-7, 0, 0}, 12);
  kt_set(k, 1, MOAI_ABI_I32, 0, NULL);
  kt_attrs(k, &all, sizeof all);
  expect_values(k, 1, (const int32_t[]){-2}, 0, "reduce_mean int32 truncates (-7/3 = -2)");
  kt_begin(k, MOAI_KERNEL_REDUCE_MAX, 1, 1);
  kt_set(k, 0, MOAI_ABI_I16, 1, d0);
  kt_set(k, 1, MOAI_ABI_I16, 0, NULL);
  kt_attrs(k, &all, sizeof all);
  expect_values(k, 1, (const int16_t[]){INT16_MIN}, 0, "reduce_max int16 of nothing");
  kt_begin(k, MOAI_KERNEL_REDUCE_MAX, 1, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_F32, 1, d3), (const float[]){1, NAN, 2}, 12);
  kt_set(k, 1, MOAI_ABI_F32, 0, NULL);
  kt_attrs(k, &all, sizeof all);
  expect_values(k, 1, (const float[]){NAN}, 0, "reduce_max f32 propagates NaN");
  kt_destroy(k);
}

static void test_misc_values(void) {
  kt_t *k = kt_create();
  /* clip int8 with only a min; f32 with NaN input */
  const int64_t d4[] = {4};
  kt_begin(k, MOAI_KERNEL_CLIP, 3, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_I8, 1, d4), (const int8_t[]){-128, -5, -6, 127}, 4);
  *(int8_t *)kt_set(k, 1, MOAI_ABI_I8, 0, NULL) = -5;
  kt_set(k, 3, MOAI_ABI_I8, 1, d4);
  expect_values(k, 3, (const int8_t[]){-5, -5, -5, 127}, 0, "clip int8 min -5");
  kt_begin(k, MOAI_KERNEL_CLIP, 3, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_F32, 1, d4), (const float[]){NAN, -5, 0.5f, 7}, 16);
  *(float *)kt_set(k, 1, MOAI_ABI_F32, 0, NULL) = 0;
  *(float *)kt_set(k, 2, MOAI_ABI_F32, 0, NULL) = 1;
  kt_set(k, 3, MOAI_ABI_F32, 1, d4);
  expect_values(k, 3, (const float[]){NAN, 0, 0.5f, 1}, 0, "clip f32 [0, 1]");
  /* where with a broadcast condition */
  const int64_t d22[] = {2, 2}, d2[] = {2};
  kt_begin(k, MOAI_KERNEL_WHERE, 3, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_BOOL, 1, d2), (const uint8_t[]){1, 0}, 2);
  memcpy(kt_set(k, 1, MOAI_ABI_I64, 2, d22), (const int64_t[]){1, 2, 3, 4}, 32);
  memcpy(kt_set(k, 2, MOAI_ABI_I64, 0, NULL), (const int64_t[]){-1}, 8);
  kt_set(k, 3, MOAI_ABI_I64, 2, d22);
  expect_values(k, 3, (const int64_t[]){1, -1, 3, -1}, 0, "where [2] ? [2,2] : []");
  /* range */
  const int64_t d2r[] = {2};
  kt_begin(k, MOAI_KERNEL_RANGE, 3, 1);
  *(float *)kt_set(k, 0, MOAI_ABI_F32, 0, NULL) = 1;
  *(float *)kt_set(k, 1, MOAI_ABI_F32, 0, NULL) = 5;
  *(float *)kt_set(k, 2, MOAI_ABI_F32, 0, NULL) = 2;
  kt_set(k, 3, MOAI_ABI_F32, 1, d2r);
  expect_values(k, 3, (const float[]){1, 3}, 0, "range f32 1..5 step 2");
  kt_begin(k, MOAI_KERNEL_RANGE, 3, 1);
  *(int32_t *)kt_set(k, 0, MOAI_ABI_I32, 0, NULL) = 10;
  *(int32_t *)kt_set(k, 1, MOAI_ABI_I32, 0, NULL) = 4;
  *(int32_t *)kt_set(k, 2, MOAI_ABI_I32, 0, NULL) = -3;
  kt_set(k, 3, MOAI_ABI_I32, 1, d2r);
  expect_values(k, 3, (const int32_t[]){10, 7}, 0, "range int32 10..4 step -3");
  /* transpose [2,3] */
  const int64_t d23[] = {2, 3}, d32[] = {3, 2};
  moai_attrs_transpose_t tp = {{1, 0}};
  kt_begin(k, MOAI_KERNEL_TRANSPOSE, 1, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_I32, 2, d23), (const int32_t[]){1, 2, 3, 4, 5, 6}, 24);
  kt_set(k, 1, MOAI_ABI_I32, 2, d32);
  kt_attrs(k, &tp, sizeof tp);
  expect_values(k, 1, (const int32_t[]){1, 4, 2, 5, 3, 6}, 0, "transpose [2,3]");
  /* concat [2,1] and [2,2] on axis 1; split back */
  const int64_t d21[] = {2, 1};
  moai_attrs_axis_t ax = {1};
  kt_begin(k, MOAI_KERNEL_CONCAT, 2, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_I32, 2, d21), (const int32_t[]){1, 2}, 8);
  memcpy(kt_set(k, 1, MOAI_ABI_I32, 2, d22), (const int32_t[]){3, 4, 5, 6}, 16);
  kt_set(k, 2, MOAI_ABI_I32, 2, d23);
  kt_attrs(k, &ax, sizeof ax);
  expect_values(k, 2, (const int32_t[]){1, 3, 4, 2, 5, 6}, 0, "concat [2,1],[2,2] axis 1");
  kt_begin(k, MOAI_KERNEL_SPLIT, 1, 2);
  memcpy(kt_set(k, 0, MOAI_ABI_I32, 2, d23), (const int32_t[]){1, 3, 4, 2, 5, 6}, 24);
  kt_set(k, 1, MOAI_ABI_I32, 2, d21);
  kt_set(k, 2, MOAI_ABI_I32, 2, d22);
  kt_attrs(k, &ax, sizeof ax);
  expect_values(k, 2, (const int32_t[]){3, 4, 5, 6}, 0, "split [2,3] axis 1 into 1,2");
  /* expand [3,1] -> [2,3,2] */
  const int64_t d31[] = {3, 1}, d232[] = {2, 3, 2};
  kt_begin(k, MOAI_KERNEL_EXPAND, 1, 1);
  memcpy(kt_set(k, 0, MOAI_ABI_I32, 2, d31), (const int32_t[]){7, 8, 9}, 12);
  kt_set(k, 1, MOAI_ABI_I32, 3, d232);
  expect_values(k, 1, (const int32_t[]){7, 7, 8, 8, 9, 9, 7, 7, 8, 8, 9, 9}, 0, "expand [3,1] -> [2,3,2]");
  kt_destroy(k);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"broadcast_add", test_broadcast_add},
      {"integer_semantics", test_integer_semantics},
      {"pow_values", test_pow_values},
      {"nan_semantics", test_nan_semantics},
      {"gather_slice_values", test_gather_slice_values},
      {"cast_values", test_cast_values},
      {"cast_halves_exhaustive", test_cast_halves_exhaustive},
      {"math_values", test_math_values},
      {"fast_math_sweep", test_fast_math_sweep},
      {"reduce_values", test_reduce_values},
      {"misc_values", test_misc_values},
      CU_TEST_INFO_NULL,
  };
  moai_test_add_suite("kernels_elementwise_values", tests);
}
