/* Unit tests of the backend's attribute normalisation (codegen/lower_norm.h)
 * against values worked out from the ONNX operator specification (opset 21)
 * and its reference test cases (onnx/backend/test/case/node: slice.py,
 * conv.py, averagepool.py, maxpool.py, reducemean.py), not from moai. */
#include <stdint.h>
#include <string.h>

#include "codegen/lower_norm.h"
#include "moai_test.h"

static char g_err[256];

#define ASSERT_I64S(got, ...)                                   \
  do {                                                          \
    const int64_t want_[] = {__VA_ARGS__};                      \
    for (size_t k_ = 0; k_ < sizeof(want_) / sizeof(want_[0]); ++k_) \
      CU_ASSERT_EQUAL((got)[k_], want_[k_]);                    \
  } while (0)

/* ---- axes ------------------------------------------------------------------ */

static void test_axis(void) {
  int64_t a;
  CU_ASSERT_TRUE(moai_norm_axis(-1, 4, &a, g_err, sizeof(g_err)));
  CU_ASSERT_EQUAL(a, 3);
  CU_ASSERT_TRUE(moai_norm_axis(-4, 4, &a, g_err, sizeof(g_err)));
  CU_ASSERT_EQUAL(a, 0);
  CU_ASSERT_FALSE(moai_norm_axis(4, 4, &a, g_err, sizeof(g_err)));
  CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "out of range"));
  CU_ASSERT_FALSE(moai_norm_axis(-5, 4, &a, g_err, sizeof(g_err)));
}

static void test_perm(void) {
  int64_t p[8];
  const int64_t perm[] = {0, 2, 1}, neg[] = {-1, 0, 1}, dup[] = {0, 0, 1};
  CU_ASSERT_TRUE(moai_norm_perm(3, 0, NULL, p, g_err, sizeof(g_err)));
  ASSERT_I64S(p, 2, 1, 0); /* default: reversed axes */
  CU_ASSERT_TRUE(moai_norm_perm(3, 3, perm, p, g_err, sizeof(g_err)));
  ASSERT_I64S(p, 0, 2, 1);
  CU_ASSERT_TRUE(moai_norm_perm(3, 3, neg, p, g_err, sizeof(g_err)));
  ASSERT_I64S(p, 2, 0, 1);
  CU_ASSERT_FALSE(moai_norm_perm(3, 3, dup, p, g_err, sizeof(g_err)));
  CU_ASSERT_FALSE(moai_norm_perm(3, 2, perm, p, g_err, sizeof(g_err)));
}

/* ---- Slice ----------------------------------------------------------------- */

static const int64_t kDims[] = {20, 10, 5}; /* slice.py's x */

static bool slice(size_t n, const int64_t *starts, const int64_t *ends,
                  const int64_t *axes, const int64_t *steps, int64_t *start,
                  int64_t *step, int64_t *count) {
  return moai_norm_slice(3, kDims, n, starts, ends, axes, steps, start, step,
                         count, g_err, sizeof(g_err));
}

static void test_slice_basic(void) {
  /* x[0:3, 0:10] */
  int64_t s[3], t[3], c[3];
  const int64_t starts[] = {0, 0}, ends[] = {3, 10}, axes[] = {0, 1},
                steps[] = {1, 1};
  CU_ASSERT_TRUE(slice(2, starts, ends, axes, steps, s, t, c));
  ASSERT_I64S(s, 0, 0, 0);
  ASSERT_I64S(t, 1, 1, 1);
  ASSERT_I64S(c, 3, 10, 5);
}

static void test_slice_negative_and_default_axes(void) {
  int64_t s[3], t[3], c[3];
  /* x[:, 0:-1] */
  const int64_t st1[] = {0}, en1[] = {-1}, ax1[] = {1};
  CU_ASSERT_TRUE(slice(1, st1, en1, ax1, NULL, s, t, c));
  ASSERT_I64S(c, 20, 9, 5);
  /* axes absent: the first n axes; x[0:20, 0:10, 3:4] */
  const int64_t st2[] = {0, 0, 3}, en2[] = {20, 10, 4};
  CU_ASSERT_TRUE(slice(3, st2, en2, NULL, NULL, s, t, c));
  ASSERT_I64S(s, 0, 0, 3);
  ASSERT_I64S(c, 20, 10, 1);
  /* negative axes: axis -2 is axis 1; x[:, 1:1000] (end clamps to 10) */
  const int64_t st3[] = {1}, en3[] = {1000}, ax3[] = {-2};
  CU_ASSERT_TRUE(slice(1, st3, en3, ax3, NULL, s, t, c));
  ASSERT_I64S(s, 0, 1, 0);
  ASSERT_I64S(c, 20, 9, 5);
}

static void test_slice_clamping(void) {
  int64_t s[3], t[3], c[3];
  /* start out of bounds: x[:, 1000:1000] is empty */
  const int64_t st1[] = {1000}, en1[] = {1000}, ax1[] = {1};
  CU_ASSERT_TRUE(slice(1, st1, en1, ax1, NULL, s, t, c));
  CU_ASSERT_EQUAL(c[1], 0);
  /* PyTorch's x[2:] exports ends = INT64_MAX */
  const int64_t st2[] = {2}, en2[] = {INT64_MAX}, ax2[] = {0};
  CU_ASSERT_TRUE(slice(1, st2, en2, ax2, NULL, s, t, c));
  CU_ASSERT_EQUAL(s[0], 2);
  CU_ASSERT_EQUAL(c[0], 18);
  /* x[-1000:3]: start clamps to 0 */
  const int64_t st3[] = {-1000}, en3[] = {3}, ax3[] = {0};
  CU_ASSERT_TRUE(slice(1, st3, en3, ax3, NULL, s, t, c));
  CU_ASSERT_EQUAL(s[0], 0);
  CU_ASSERT_EQUAL(c[0], 3);
}

static void test_slice_negative_steps(void) {
  int64_t s[3], t[3], c[3];
  /* slice.py test_slice_neg_steps: x[20:0:-1, 10:0:-3, 4:1:-2] -> 19x3x2;
   * starts clamp to dim - 1 for negative steps. */
  const int64_t starts[] = {20, 10, 4}, ends[] = {0, 0, 1}, axes[] = {0, 1, 2},
                steps[] = {-1, -3, -2};
  CU_ASSERT_TRUE(slice(3, starts, ends, axes, steps, s, t, c));
  ASSERT_I64S(s, 19, 9, 4);
  ASSERT_I64S(t, -1, -3, -2);
  ASSERT_I64S(c, 19, 3, 2);
  /* x[::-1] exports starts = -1, ends = INT64_MIN: ends clamp to -1, so the
   * whole axis, reversed. */
  const int64_t st2[] = {-1}, en2[] = {INT64_MIN}, ax2[] = {1}, sp2[] = {-1};
  CU_ASSERT_TRUE(slice(1, st2, en2, ax2, sp2, s, t, c));
  CU_ASSERT_EQUAL(s[1], 9);
  CU_ASSERT_EQUAL(t[1], -1);
  CU_ASSERT_EQUAL(c[1], 10);
  /* int64 extreme steps take one element without overflowing:
   * x[::INT64_MAX] and x[::INT64_MIN] along axis 0 */
  const int64_t st3[] = {0}, en3[] = {INT64_MAX}, ax3[] = {0}, sp3[] = {INT64_MAX};
  CU_ASSERT_TRUE(slice(1, st3, en3, ax3, sp3, s, t, c));
  CU_ASSERT_EQUAL(s[0], 0);
  CU_ASSERT_EQUAL(c[0], 1);
  const int64_t st4[] = {-1}, en4[] = {INT64_MIN}, sp4[] = {INT64_MIN};
  CU_ASSERT_TRUE(slice(1, st4, en4, ax3, sp4, s, t, c));
  CU_ASSERT_EQUAL(s[0], 19);
  CU_ASSERT_EQUAL(c[0], 1);
  /* an empty axis selects nothing, whatever the step's sign */
  const int64_t empty[] = {0, 4};
  const int64_t st5[] = {-1}, en5[] = {1}, ax5[] = {0}, sp5[] = {-3};
  CU_ASSERT_TRUE(moai_norm_slice(2, empty, 1, st5, en5, ax5, sp5, s, t, c, g_err,
                                 sizeof(g_err)));
  CU_ASSERT_EQUAL(c[0], 0);
  CU_ASSERT_EQUAL(c[1], 4);
}

static void test_slice_errors(void) {
  int64_t s[3], t[3], c[3];
  const int64_t st[] = {0, 0}, en[] = {1, 1}, rep[] = {1, -2}, zero[] = {1, 0},
                bad[] = {3};
  CU_ASSERT_FALSE(slice(2, st, en, rep, NULL, s, t, c));
  CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "twice"));
  CU_ASSERT_FALSE(slice(2, st, en, NULL, zero, s, t, c));
  CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "step is 0"));
  CU_ASSERT_FALSE(slice(1, st, en, bad, NULL, s, t, c));
}

/* ---- Reduce ---------------------------------------------------------------- */

static void test_reduce_axes(void) {
  uint64_t mask;
  bool noop;
  const int64_t last[] = {-1}, two[] = {0, 2}, out[] = {3};
  /* axes absent: all of them (reducemean.py default_axes_keepdims) */
  CU_ASSERT_TRUE(moai_norm_reduce_axes(3, 0, NULL, false, &mask, &noop, g_err, sizeof(g_err)));
  CU_ASSERT_EQUAL(mask, 7u);
  CU_ASSERT_FALSE(noop);
  /* axes absent, noop_with_empty_axes: the input is returned */
  CU_ASSERT_TRUE(moai_norm_reduce_axes(3, 0, NULL, true, &mask, &noop, g_err, sizeof(g_err)));
  CU_ASSERT_TRUE(noop);
  CU_ASSERT_EQUAL(mask, 0u);
  CU_ASSERT_TRUE(moai_norm_reduce_axes(3, 1, last, false, &mask, &noop, g_err, sizeof(g_err)));
  CU_ASSERT_EQUAL(mask, 4u);
  CU_ASSERT_TRUE(moai_norm_reduce_axes(3, 2, two, true, &mask, &noop, g_err, sizeof(g_err)));
  CU_ASSERT_EQUAL(mask, 5u);
  CU_ASSERT_FALSE(noop);
  CU_ASSERT_FALSE(moai_norm_reduce_axes(3, 1, out, false, &mask, &noop, g_err, sizeof(g_err)));
}

/* ---- windows (Conv, pools) -------------------------------------------------- */

static void test_auto_pad_names(void) {
  moai_auto_pad_t m;
  CU_ASSERT_TRUE(moai_norm_auto_pad("SAME_LOWER", 10, &m));
  CU_ASSERT_EQUAL(m, MOAI_AUTO_PAD_SAME_LOWER);
  CU_ASSERT_TRUE(moai_norm_auto_pad("VALID", 5, &m));
  CU_ASSERT_EQUAL(m, MOAI_AUTO_PAD_VALID);
  CU_ASSERT_FALSE(moai_norm_auto_pad("SAME", 4, &m));
}

static bool window(int n, const int64_t *in, const int64_t *k,
                   const int64_t *s, const int64_t *d, const int64_t *p,
                   moai_auto_pad_t mode, bool ceil_mode, int64_t *st,
                   int64_t *dl, int64_t *pd, int64_t *out) {
  return moai_norm_window(n, in, k, s, d, p, mode, ceil_mode, st, dl, pd, out,
                          g_err, sizeof(g_err));
}

static void test_window_same(void) {
  int64_t st[3], dl[3], pd[6], out[3];
  /* conv.py test_conv_with_autopad_same: 5x5 input, 3x3 kernel, stride 2,
   * SAME_LOWER: output ceil(5/2) = 3, total pad (3-1)*2 + 3 - 5 = 2 -> 1/1 */
  const int64_t in1[] = {5, 5}, k3[] = {3, 3}, s2[] = {2, 2};
  CU_ASSERT_TRUE(window(2, in1, k3, s2, NULL, NULL, MOAI_AUTO_PAD_SAME_LOWER,
                        false, st, dl, pd, out));
  ASSERT_I64S(pd, 1, 1, 1, 1);
  ASSERT_I64S(out, 3, 3);
  ASSERT_I64S(dl, 1, 1);
  /* averagepool.py 2d_same_upper: 32x32, kernel 2, stride 1: total pad 1,
   * the odd one at the end; same_lower: at the beginning */
  const int64_t in2[] = {32, 32}, k2[] = {2, 2};
  CU_ASSERT_TRUE(window(2, in2, k2, NULL, NULL, NULL, MOAI_AUTO_PAD_SAME_UPPER,
                        false, st, dl, pd, out));
  ASSERT_I64S(pd, 0, 0, 1, 1);
  ASSERT_I64S(out, 32, 32);
  ASSERT_I64S(st, 1, 1);
  CU_ASSERT_TRUE(window(2, in2, k2, NULL, NULL, NULL, MOAI_AUTO_PAD_SAME_LOWER,
                        false, st, dl, pd, out));
  ASSERT_I64S(pd, 1, 1, 0, 0);
  /* SAME with dilation: 7 input, kernel 3 dilated 2 (extent 5), stride 1:
   * total 4 -> 2/2 */
  const int64_t in3[] = {7}, k1[] = {3}, d2[] = {2};
  CU_ASSERT_TRUE(window(1, in3, k1, NULL, d2, NULL, MOAI_AUTO_PAD_SAME_UPPER,
                        false, st, dl, pd, out));
  ASSERT_I64S(pd, 2, 2);
  ASSERT_I64S(out, 7);
}

static void test_window_explicit_and_valid(void) {
  int64_t st[3], dl[3], pd[6], out[3];
  /* conv.py test_conv_with_strides_padding: 7x5 input, 3x3 kernel, pads 1,
   * strides 2 -> 4x3 */
  const int64_t in1[] = {7, 5}, k3[] = {3, 3}, s2[] = {2, 2},
                p1[] = {1, 1, 1, 1};
  CU_ASSERT_TRUE(window(2, in1, k3, s2, NULL, p1, MOAI_AUTO_PAD_NOTSET, false,
                        st, dl, pd, out));
  ASSERT_I64S(out, 4, 3);
  ASSERT_I64S(pd, 1, 1, 1, 1);
  /* VALID ignores pads: test_conv_with_strides_no_padding: 7x5 -> 3x2 */
  CU_ASSERT_TRUE(window(2, in1, k3, s2, NULL, p1, MOAI_AUTO_PAD_VALID, false,
                        st, dl, pd, out));
  ASSERT_I64S(pd, 0, 0, 0, 0);
  ASSERT_I64S(out, 3, 2);
  /* asymmetric pads keep their order: begins then ends */
  const int64_t in2[] = {5, 5}, pa[] = {0, 1, 2, 3};
  CU_ASSERT_TRUE(window(2, in2, k3, NULL, NULL, pa, MOAI_AUTO_PAD_NOTSET, false,
                        st, dl, pd, out));
  ASSERT_I64S(pd, 0, 1, 2, 3);
  ASSERT_I64S(out, 5, 7);
}

static void test_window_ceil_and_dilation(void) {
  int64_t st[3], dl[3], pd[6], out[3];
  /* maxpool.py test_maxpool_2d_ceil: 4x4, kernel 3, stride 2, ceil -> 2x2
   * (floor would give 1x1) */
  const int64_t in1[] = {4, 4}, k3[] = {3, 3}, s2[] = {2, 2};
  CU_ASSERT_TRUE(window(2, in1, k3, s2, NULL, NULL, MOAI_AUTO_PAD_NOTSET, true,
                        st, dl, pd, out));
  ASSERT_I64S(out, 2, 2);
  CU_ASSERT_TRUE(window(2, in1, k3, s2, NULL, NULL, MOAI_AUTO_PAD_NOTSET, false,
                        st, dl, pd, out));
  ASSERT_I64S(out, 1, 1);
  /* maxpool.py test_maxpool_2d_dilations: 4x4, kernel 2, dilation 2 -> 2x2 */
  const int64_t k2[] = {2, 2}, d2[] = {2, 2};
  CU_ASSERT_TRUE(window(2, in1, k2, NULL, d2, NULL, MOAI_AUTO_PAD_NOTSET, false,
                        st, dl, pd, out));
  ASSERT_I64S(out, 2, 2);
  ASSERT_I64S(dl, 2, 2);
  /* ceil_mode drops a last window that would start in the end padding:
   * 5 input, kernel 2, stride 2, pads 0/2: ceil((7-2)/2)+1 = 4, but the
   * 4th window starts at 6 >= 5 + 0 -> 3 */
  const int64_t in3[] = {5}, k1[] = {2}, s1[] = {2}, p01[] = {0, 2};
  CU_ASSERT_TRUE(window(1, in3, k1, s1, NULL, p01, MOAI_AUTO_PAD_NOTSET, true,
                        st, dl, pd, out));
  ASSERT_I64S(out, 3);
}

static void test_window_errors(void) {
  int64_t st[3], dl[3], pd[6], out[3];
  const int64_t in[] = {2}, k5[] = {5}, k0[] = {0}, neg[] = {-1, 0};
  CU_ASSERT_FALSE(window(1, in, k5, NULL, NULL, NULL, MOAI_AUTO_PAD_NOTSET,
                         false, st, dl, pd, out));
  CU_ASSERT_PTR_NOT_NULL(strstr(g_err, "larger than the padded input"));
  CU_ASSERT_FALSE(window(1, in, k0, NULL, NULL, NULL, MOAI_AUTO_PAD_NOTSET,
                         false, st, dl, pd, out));
  CU_ASSERT_FALSE(window(1, in, k5, NULL, NULL, neg, MOAI_AUTO_PAD_NOTSET,
                         false, st, dl, pd, out));
  CU_ASSERT_FALSE(window(4, in, k5, NULL, NULL, NULL, MOAI_AUTO_PAD_NOTSET,
                         false, st, dl, pd, out));
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"axis", test_axis},
      {"perm", test_perm},
      {"slice_basic", test_slice_basic},
      {"slice_negative_and_default_axes", test_slice_negative_and_default_axes},
      {"slice_clamping", test_slice_clamping},
      {"slice_negative_steps", test_slice_negative_steps},
      {"slice_errors", test_slice_errors},
      {"reduce_axes", test_reduce_axes},
      {"auto_pad_names", test_auto_pad_names},
      {"window_same", test_window_same},
      {"window_explicit_and_valid", test_window_explicit_and_valid},
      {"window_ceil_and_dilation", test_window_ceil_and_dilation},
      {"window_errors", test_window_errors},
      CU_TEST_INFO_NULL};
  moai_test_add_suite("lower_norm", tests);
}
