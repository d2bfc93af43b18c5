/* f32 GEMM: moai's matmul/gemm kernels (through the kernel table, nth
 * threads in one OpenMP parallel region as a plan's step runs them) against
 * OpenBLAS's cblas_sgemm with the same thread count, plus the machine's
 * peak FMA rate from a register-only loop. Interleaved runs, median of
 * --runs after one warm-up each. See bench/gemm/run.sh.
 *
 *   gemm_bench [--threads 1,2] [--runs 5] [--isa avx512|avx2|generic]
 *              [--shapes all|model|square]  */
#include <dlfcn.h>
#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernels/kernels.h"

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*cblas_sgemm_fn)(int, int, int, int, int, int, float, const float *, int,
                               const float *, int, float, float *, int);
typedef void (*set_threads_fn)(int);

typedef struct shape_t {
  const char *name;
  int m, n, k, ta, tb;
} shape_t;

static const shape_t SHAPES[] = {
    {"1024^3", 1024, 1024, 1024, 0, 0},
    {"2048^3", 2048, 2048, 2048, 0, 0},
    {"4096^3", 4096, 4096, 4096, 0, 0},
    {"qkvo [1024x512]x[512x512]", 1024, 512, 512, 0, 0},
    {"gate/up [1024x512]x[512x1408]", 1024, 1408, 512, 0, 0},
    {"down [1024x1408]x[1408x512]", 1024, 512, 1408, 0, 0},
    {"lm_head [1024x512]x[512x1024]", 1024, 1024, 512, 0, 0},
    {"dW A^T B [512x1024]x[1024x1408]", 512, 1408, 1024, 1, 0},
    {"dX A B^T [1024x1408]x[1408x512]", 1024, 512, 1408, 0, 1},
};

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- peak: independent FMA chains on registers only ---- */

__attribute__((target("avx512f"))) static double peak_avx512(long iters) {
  __m512 a[12], x = _mm512_set1_ps(1.0000001f), y = _mm512_set1_ps(1e-7f);
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps((float)i);
  for (long t = 0; t < iters; ++t)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], x, y);
  __m512 s = a[0];
#pragma GCC unroll 12
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  return (double)_mm512_reduce_add_ps(s);
}
__attribute__((target("avx2,fma"))) static double peak_avx2(long iters) {
  __m256 a[12], x = _mm256_set1_ps(1.0000001f), y = _mm256_set1_ps(1e-7f);
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps((float)i);
  for (long t = 0; t < iters; ++t)
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm256_fmadd_ps(a[i], x, y);
  float out[8];
  _mm256_storeu_ps(out, a[0]);
  return out[0];
}

/* GFLOP/s of nth threads each running the loop (all at once). */
static double peak_gflops(int nth, int avx512) {
  long iters = 20000000;
  int lanes = avx512 ? 16 : 8;
  volatile double sink = 0;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double t0 = now();
#pragma omp parallel num_threads(nth)
    {
      double v = avx512 ? peak_avx512(iters) : peak_avx2(iters);
#pragma omp atomic
      sink += v;
    }
    double gf = (double)nth * iters * 12 * lanes * 2 / (now() - t0) / 1e9;
    if (gf > best) best = gf;
  }
  return best;
}

/* ---- moai: one op descriptor over an arena, as the compiler lays it out ---- */

typedef struct moai_case_t {
  _Alignas(16) unsigned char desc[sizeof(moai_op_desc_t) + 4 * sizeof(moai_tensor_t) +
                                  sizeof(moai_attrs_gemm_t) + 8];
  moai_exec_t ex;
  moai_kernel_runtime_t rt;
  const moai_op_desc_t *op;
} moai_case_t;

static moai_tensor_t tensor2(int64_t d0, int64_t d1, uint64_t offset) {
  moai_tensor_t t;
  memset(&t, 0, sizeof(t));
  t.region = MOAI_REGION_ARENA;
  t.dtype = MOAI_ABI_F32;
  t.rank = 2;
  t.dims[0] = d0;
  t.dims[1] = d1;
  t.offset = offset;
  return t;
}

/* A (M x K, or K x M with ta) and B (K x N, or N x K with tb) at the arena's
 * start, C at 2 x 4096^2 floats: plain shapes as MatMul, transposed ones as Gemm. */
static void moai_case_init(moai_case_t *c, const shape_t *s, unsigned char *arena,
                           const moai_kernel_fn_t *table) {
  memset(c, 0, sizeof(*c));
  moai_op_desc_t *op = (moai_op_desc_t *)c->desc;
  int gemm = s->ta || s->tb;
  uint64_t a_bytes = (uint64_t)s->m * s->k * 4;
  moai_tensor_t *t = (moai_tensor_t *)(op + 1);
  t[0] = s->ta ? tensor2(s->k, s->m, 0) : tensor2(s->m, s->k, 0);
  t[1] = s->tb ? tensor2(s->n, s->k, a_bytes) : tensor2(s->k, s->n, a_bytes);
  op->kernel = gemm ? MOAI_KERNEL_GEMM : MOAI_KERNEL_MATMUL;
  op->n_in = gemm ? 3 : 2;
  op->n_out = 1;
  if (gemm) {
    memset(&t[2], 0, sizeof(t[2]));
    t[2].region = MOAI_REGION_NONE;
  }
  t[op->n_in] = tensor2(s->m, s->n, 2ull * 4096 * 4096 * 4);
  if (gemm) {
    moai_attrs_gemm_t at = {1.0f, 0.0f, s->ta, s->tb};
    memcpy(t + op->n_in + 1, &at, sizeof(at));
    op->attrs_size = sizeof(at);
  }
  op->size = (uint32_t)((sizeof(*op) + (op->n_in + op->n_out) * sizeof(moai_tensor_t) +
                         op->attrs_size + 7) / 8 * 8);
  snprintf(op->name, sizeof(op->name), "bench");
  c->ex.kernels = table;
  c->ex.base[MOAI_REGION_ARENA] = arena;
  c->ex.runtime = &c->rt;
  c->op = op;
}

static double time_moai(const moai_case_t *c, int nth, int reps) {
  double t0 = now();
  for (int r = 0; r < reps; ++r) {
#pragma omp parallel num_threads(nth)
    c->ex.kernels[c->op->kernel](&c->ex, c->op, omp_get_thread_num(), omp_get_num_threads());
  }
  return (now() - t0) / reps;
}

static double time_blas(cblas_sgemm_fn sgemm, const shape_t *s, const float *a, const float *b,
                        float *c, int reps) {
  double t0 = now();
  for (int r = 0; r < reps; ++r)
    sgemm(ROW_MAJOR, s->ta ? TRANS : NO_TRANS, s->tb ? TRANS : NO_TRANS, s->m, s->n, s->k, 1.0f,
          a, s->ta ? s->m : s->k, b, s->tb ? s->k : s->n, 0.0f, c, s->n);
  return (now() - t0) / reps;
}

static int cmp_double(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

int main(int argc, char **argv) {
  int threads[8] = {1, 2}, n_threads = 2, runs = 5;
  moai_isa_t isa = moai_isa_detect();
  const char *which = "all";
  for (int i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
      n_threads = 0;
      for (char *p = strtok(argv[++i], ","); p && n_threads < 8; p = strtok(NULL, ","))
        threads[n_threads++] = atoi(p);
    } else if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
      runs = atoi(argv[++i]);
    } else if (!strcmp(argv[i], "--isa") && i + 1 < argc) {
      const char *v = argv[++i];
      isa = !strcmp(v, "avx512") ? MOAI_ISA_AVX512 : !strcmp(v, "avx2") ? MOAI_ISA_AVX2
                                                                          : MOAI_ISA_GENERIC;
    } else if (!strcmp(argv[i], "--shapes") && i + 1 < argc) {
      which = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--threads 1,2] [--runs 5] [--isa avx512|avx2|generic] "
                      "[--shapes all|model|square]\n", argv[0]);
      return 2;
    }
  }
  if (runs < 1) runs = 1;
  void *blas = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  if (!blas) {
    fprintf(stderr, "gemm_bench: cannot load libopenblas.so.0 (%s); install libopenblas0-pthread\n",
            dlerror());
    return 1;
  }
  cblas_sgemm_fn sgemm = (cblas_sgemm_fn)dlsym(blas, "cblas_sgemm");
  set_threads_fn set_threads = (set_threads_fn)dlsym(blas, "openblas_set_num_threads");
  char *(*blas_config)(void) = (char *(*)(void))dlsym(blas, "openblas_get_config");
  if (!sgemm || !set_threads) {
    fprintf(stderr, "gemm_bench: libopenblas.so.0 lacks cblas_sgemm/openblas_set_num_threads\n");
    return 1;
  }
  moai_kernel_fn_t table[MOAI_KERNEL_COUNT];
  moai_kernels_fill(isa, table);
  int avx512 = isa == MOAI_ISA_AVX512 || (isa != MOAI_ISA_AVX2 && moai_isa_detect() == MOAI_ISA_AVX512);
  printf("moai kernels: %s; OpenBLAS: %s; median of %d runs after a warm-up, interleaved\n",
         moai_isa_name(isa), blas_config ? blas_config() : "?", runs);

  size_t max_floats = 3ull * 4096 * 4096;
  unsigned char *arena = aligned_alloc(64, max_floats * 4);
  float *cb = aligned_alloc(64, 4096ull * 4096 * 4);
  if (!arena || !cb) {
    fprintf(stderr, "gemm_bench: out of memory\n");
    return 1;
  }
  uint64_t seed = 1;
  for (size_t i = 0; i < max_floats; ++i) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    ((float *)arena)[i] = (float)((seed >> 40) & 0xffff) / 32768.0f - 1.0f;
  }

  for (int ti = 0; ti < n_threads; ++ti) {
    int nth = threads[ti];
    set_threads(nth);
    double peak = peak_gflops(nth, avx512);
    printf("\nthreads %d: peak FMA rate %.1f GFLOP/s (%s register loop)\n", nth, peak,
           avx512 ? "AVX-512" : "AVX2");
    printf("%-34s %10s %10s %7s %7s %9s %9s\n", "shape", "moai", "OpenBLAS", "ratio",
           "of peak", "err moai", "err BLAS");
    for (size_t si = 0; si < sizeof(SHAPES) / sizeof(SHAPES[0]); ++si) {
      const shape_t *s = &SHAPES[si];
      int square = s->m == s->n && s->n == s->k && !s->ta && !s->tb;
      if (!strcmp(which, "model") && square) continue;
      if (!strcmp(which, "square") && !square) continue;
      moai_case_t mc;
      moai_case_init(&mc, s, arena, table);
      const float *a = (const float *)arena;
      const float *b = a + (size_t)s->m * s->k;
      /* C past every shape's inputs, so no output feeds a later input */
      float *c = (float *)arena + 2ull * 4096 * 4096;
      double flop = 2.0 * s->m * s->n * s->k;
      /* reps so that one measurement takes about 0.1 s at ~100 GFLOP/s */
      int reps = (int)(1e10 / flop);
      if (reps < 1) reps = 1;
      time_moai(&mc, nth, 1);
      time_blas(sgemm, s, a, b, cb, 1);
      /* largest error of either against a double sum, on sampled elements */
      double err = 0, err_blas = 0;
      for (int64_t i = 0; i < s->m; i += 97)
        for (int64_t j = 0; j < s->n; j += 89) {
          double ref = 0;
          for (int64_t k = 0; k < s->k; ++k)
            ref += (double)a[s->ta ? k * s->m + i : i * s->k + k] *
                   (double)b[s->tb ? j * s->k + k : k * s->n + j];
          double d = c[i * s->n + j] - ref, db = cb[i * s->n + j] - ref;
          if ((d < 0 ? -d : d) > err) err = d < 0 ? -d : d;
          if ((db < 0 ? -db : db) > err_blas) err_blas = db < 0 ? -db : db;
        }
      double tm[64], tb[64];
      int n = runs < 64 ? runs : 64;
      for (int r = 0; r < n; ++r) {
        tm[r] = time_moai(&mc, nth, reps);
        tb[r] = time_blas(sgemm, s, a, b, cb, reps);
      }
      qsort(tm, n, sizeof(double), cmp_double);
      qsort(tb, n, sizeof(double), cmp_double);
      double gm = flop / tm[n / 2] / 1e9, gb = flop / tb[n / 2] / 1e9;
      char label[64];
      snprintf(label, sizeof(label), "%s", s->name);
      printf("%-34s %10.1f %10.1f %7.3f %7.3f %9.1e %9.1e\n", label, gm, gb, gm / gb, gm / peak,
             err, err_blas);
      fflush(stdout);
      if (mc.rt.kernel_status.failed) {
        fprintf(stderr, "moai kernel failed: %s\n", mc.rt.kernel_status.message);
        return 1;
      }
    }
  }
  free(arena);
  free(cb);
  dlclose(blas);
  return 0;
}
