/* The packed f32 GEMM (kernels/nn/gemm.h) behind matmul and gemm on AVX2 and
 * AVX-512: every ISA this CPU runs (forced through moai_kernels_fill), plus
 * the generic kernel, against the reference kernel on odd shapes: each of
 * M, N, K over 1..67 (edge slivers of every width), K across the depth
 * blocks, M and N across the row and column blocks, transposed operands,
 * alpha/beta/bias, broadcast batches, several thread counts sequentially and
 * in a parallel region.
 *
 * Tolerance, per element: the reference sums in double and rounds once; a
 * float sum of K products in any order is within gamma_K = K u / (1 - K u)
 * of the exact value relative to sum_k |a_ik b_kj| (Higham, "Accuracy and
 * Stability of Numerical Algorithms", 2nd ed., eq. 3.5; u = 2^-24), plus
 * one rounding each for alpha, the bias term and the final sum. The bound
 * |got - want| <= (K + 4) u (|alpha| sum_k |a b| + |beta bias|) is
 * computed per element by running the reference on |A|, |B|, |bias|. It is
 * a worst-case bound, so it cannot fail by bad luck, yet a wrong index, a
 * missed or doubled k block or a stale accumulator breaks it by orders of
 * magnitude (terms are O(1), the bound O(K 2^-24)). */
#include <float.h>

#include "moai_test.h"
#include "test_kernels_nn_support.h"

static int isa_runs(moai_isa_t isa) { return isa <= moai_isa_detect(); }

/* The reference result and the error bound of case c (inputs filled),
 * alpha/beta as in its attrs; out arrays of the output's size. */
static void gemm_oracle(nn_case_t *c, int is_gemm, double *want, double *bound) {
  moai_kernel_status_t st;
  int64_t n = moai_tensor_numel(&c->out[0]), k;
  const moai_tensor_t *ta = &c->in[0];
  if (is_gemm) {
    moai_attrs_gemm_t at;
    memcpy(&at, c->attrs, sizeof(at));
    k = at.trans_a ? ta->dims[0] : ta->dims[1];
  } else {
    k = ta->dims[ta->rank - 1];
  }
  CU_ASSERT_FATAL(!nn_case_run(c, MOAI_ISA_REFERENCE, 1, &st));
  for (int64_t i = 0; i < n; ++i) want[i] = ((const float *)nn_case_out_ptr(c, 0))[i];
  /* |A|, |B|, |bias|, |alpha|, |beta| through the reference: sum |terms| */
  float *saved[3] = {0};
  unsigned char attrs[NN_MAX_ATTRS];
  memcpy(attrs, c->attrs, sizeof(attrs));
  for (uint32_t i = 0; i < c->n_in; ++i) {
    float *p = nn_case_in_ptr(c, i);
    if (!p) continue;
    int64_t m = moai_tensor_numel(&c->in[i]);
    saved[i] = malloc((size_t)m * sizeof(float) + 1);
    memcpy(saved[i], p, (size_t)m * sizeof(float));
    for (int64_t e = 0; e < m; ++e) p[e] = fabsf(p[e]);
  }
  if (is_gemm) {
    moai_attrs_gemm_t at;
    memcpy(&at, c->attrs, sizeof(at));
    at.alpha = fabsf(at.alpha);
    at.beta = fabsf(at.beta);
    memcpy(c->attrs, &at, sizeof(at));
  }
  CU_ASSERT_FATAL(!nn_case_run(c, MOAI_ISA_REFERENCE, 1, &st));
  for (int64_t i = 0; i < n; ++i)
    bound[i] = (double)(k + 4) * 0x1p-24 * ((const float *)nn_case_out_ptr(c, 0))[i] + 1e-37;
  memcpy(c->attrs, attrs, sizeof(attrs));
  for (uint32_t i = 0; i < c->n_in; ++i) {
    if (!saved[i]) continue;
    memcpy(nn_case_in_ptr(c, i), saved[i], (size_t)moai_tensor_numel(&c->in[i]) * sizeof(float));
    free(saved[i]);
  }
}

/* Runs the generic, AVX2 and AVX-512 kernels (those this CPU runs) with
 * 1, 2 and 3 threads in turn and 2 in a parallel region; every element
 * within its bound (outputs poisoned with NaN first). */
static void gemm_check(nn_case_t *c, int is_gemm, const char *label) {
  int64_t n = moai_tensor_numel(&c->out[0]);
  double *want = malloc((size_t)n * sizeof(double) + 8);
  double *bound = malloc((size_t)n * sizeof(double) + 8);
  CU_ASSERT_FATAL(want && bound);
  gemm_oracle(c, is_gemm, want, bound);
  static const struct { int nth, parallel; } runs[] = {{1, 0}, {2, 0}, {3, 0}, {2, 1}};
  int64_t bad = 0;
  for (int isa = MOAI_ISA_GENERIC; isa <= MOAI_ISA_AVX512; ++isa) {
    if (!isa_runs((moai_isa_t)isa)) continue;
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); ++r) {
      moai_kernel_status_t st;
      nn_case_poison_outputs(c);
      int failed = (runs[r].parallel ? nn_case_run_parallel : nn_case_run)(
          c, (moai_isa_t)isa, runs[r].nth, &st);
      CU_ASSERT_FALSE(failed);
      const float *got = nn_case_out_ptr(c, 0);
      for (int64_t i = 0; i < n; ++i) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= bound[i]) && bad++ < 5)
          fprintf(stderr, "  %s [%s, nth=%d%s]: element %lld: got %.9g, want %.9g (bound %.3g)\n",
                  label, moai_isa_name((moai_isa_t)isa), runs[r].nth,
                  runs[r].parallel ? ", parallel" : "", (long long)i, got[i], want[i], bound[i]);
      }
    }
  }
  if (bad) fprintf(stderr, "%s: %lld mismatches\n", label, (long long)bad);
  CU_ASSERT_EQUAL(bad, 0);
  free(want);
  free(bound);
}

static void matmul_case(int ra, const int64_t *da, int rb, const int64_t *db, int ro,
                        const int64_t *dout, uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_MATMUL, ARENA));
  nn_case_add_in(&c, MOAI_ABI_F32, ra, da);
  nn_case_add_in(&c, MOAI_ABI_F32, rb, db);
  nn_case_add_out(&c, MOAI_ABI_F32, ro, dout);
  nn_case_fill(&c, 0, &seed, -1, 1);
  nn_case_fill(&c, 1, &seed, -1, 1);
  char label[96];
  snprintf(label, sizeof(label), "matmul [%lld..%lld]x[%lld..%lld]", (long long)da[0],
           (long long)da[ra - 1], (long long)db[0], (long long)db[rb - 1]);
  gemm_check(&c, 0, label);
  nn_case_free(&c);
}

static void mm2(int64_t m, int64_t n, int64_t k, uint64_t seed) {
  matmul_case(2, (int64_t[]){m, k}, 2, (int64_t[]){k, n}, 2, (int64_t[]){m, n}, seed);
}

static void gemm_case(int64_t m, int64_t n, int64_t k, int ta, int tb, int crank,
                      const int64_t *cdims, float alpha, float beta, uint64_t seed) {
  nn_case_t c;
  CU_ASSERT_FATAL(nn_case_init(&c, MOAI_KERNEL_GEMM, ARENA));
  nn_case_add_in(&c, MOAI_ABI_F32, 2, ta ? (int64_t[]){k, m} : (int64_t[]){m, k});
  nn_case_add_in(&c, MOAI_ABI_F32, 2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n});
  if (crank >= 0)
    nn_case_add_in(&c, MOAI_ABI_F32, crank, cdims);
  else
    nn_case_add_in_none(&c);
  nn_case_add_out(&c, MOAI_ABI_F32, 2, (int64_t[]){m, n});
  moai_attrs_gemm_t at = {alpha, beta, ta, tb};
  nn_case_set_attrs(&c, &at, sizeof(at));
  for (uint32_t i = 0; i < 3; ++i)
    if (nn_case_in_ptr(&c, i)) nn_case_fill(&c, i, &seed, -1, 1);
  char label[96];
  snprintf(label, sizeof(label), "gemm %lldx%lldx%lld ta %d tb %d c rank %d", (long long)m,
           (long long)n, (long long)k, ta, tb, crank);
  gemm_check(&c, 1, label);
  nn_case_free(&c);
}

static void test_each_dim(void) {
  uint64_t seed = 1000;
  for (int64_t d = 1; d <= 67; ++d) {
    mm2(d, 37, 19, ++seed); /* M: every partial row sliver (MR 6 and 14) */
    mm2(29, d, 23, ++seed); /* N: every partial column sliver (NR 16, 32) */
    mm2(15, 33, d, ++seed); /* K, including K = 1 */
  }
}

static void test_blocks(void) {
  uint64_t seed = 2000;
  mm2(40, 70, 256, ++seed);   /* K exactly one depth block (KC 256 on AVX2) */
  mm2(40, 70, 320, ++seed);   /* K exactly one depth block (KC 320 on AVX-512) */
  mm2(40, 70, 700, ++seed);   /* two full depth blocks and a partial one (both) */
  mm2(700, 50, 40, ++seed);   /* several row blocks (MC 192, 336) */
  mm2(9, 2100, 30, ++seed);   /* several column blocks (NC 1024 and 2048) */
  mm2(130, 160, 300, ++seed); /* a bit of everything */
}

static void test_transposed(void) {
  uint64_t seed = 3000;
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb) {
      gemm_case(37, 45, 300, ta, tb, -1, NULL, 1.0f, 1.0f, ++seed);
      gemm_case(67, 66, 1, ta, tb, -1, NULL, 1.0f, 0.0f, ++seed);
      gemm_case(33, 70, 129, ta, tb, 2, (int64_t[]){33, 70}, 0.5f, 2.0f, ++seed);
      gemm_case(5, 47, 61, ta, tb, 1, (int64_t[]){47}, -1.5f, 0.25f, ++seed);
      gemm_case(19, 31, 11, ta, tb, 2, (int64_t[]){19, 1}, 0.75f, -1.0f, ++seed);
      gemm_case(64, 64, 64, ta, tb, 0, (int64_t[]){0}, 2.0f, 3.0f, ++seed);
    }
}

static void test_batched(void) {
  uint64_t seed = 4000;
  /* [2,1,33,20] x [3,20,45] -> [2,3,33,45]: batch 6, A broadcast over 3 */
  matmul_case(4, (int64_t[]){2, 1, 33, 20}, 3, (int64_t[]){3, 20, 45}, 4,
              (int64_t[]){2, 3, 33, 45}, ++seed);
  /* batch 3 (not a multiple of 2 threads: each matrix split) */
  matmul_case(3, (int64_t[]){3, 31, 17}, 3, (int64_t[]){3, 17, 50}, 3, (int64_t[]){3, 31, 50},
              ++seed);
  /* attention-shaped [B, H, S, D] x [B, H, D, S], B broadcast from [S, D] */
  matmul_case(4, (int64_t[]){2, 4, 40, 16}, 4, (int64_t[]){2, 4, 16, 40}, 4,
              (int64_t[]){2, 4, 40, 40}, ++seed);
  matmul_case(4, (int64_t[]){2, 4, 40, 16}, 2, (int64_t[]){16, 24}, 4, (int64_t[]){2, 4, 40, 24},
              ++seed);
  /* 1-D operands (GEMV: the portable path) */
  matmul_case(1, (int64_t[]){30}, 3, (int64_t[]){2, 30, 21}, 2, (int64_t[]){2, 21}, ++seed);
  matmul_case(3, (int64_t[]){2, 21, 30}, 1, (int64_t[]){30}, 2, (int64_t[]){2, 21}, ++seed);
}

void moai_test_register(void) {
  static CU_TestInfo tests[] = {
      {"packed f32: M, N, K each 1..67", test_each_dim},
      {"packed f32: across cache blocks", test_blocks},
      {"packed f32: gemm trans_a/trans_b, alpha, beta, bias", test_transposed},
      {"packed f32: batched and broadcast matmul", test_batched},
      {NULL, NULL},
  };
  moai_test_add_suite("kernels_nn_gemm", tests);
}
