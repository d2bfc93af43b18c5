/* The machine's GEMM peak as OpenBLAS reaches it: C = A B in float32 with
 * M = N = K = SIZE (default 4096), on the thread count given.
 *
 *   gemm_peak THREADS [SIZE] [REPEATS]
 *
 * Built by bench/perf/run.sh against Debian's libopenblas.so.0 (pthreads).
 * One untimed call, then REPEATS timed ones (default 3); prints one JSON line
 * {"threads": N, "size": S, "gflops": [...], "best": X, "config": "..."} with
 * 2 S^3 FLOPs per call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* From OpenBLAS's cblas.h; declared here so that no -dev package is needed. */
enum { ROW_MAJOR = 101, NO_TRANS = 111 };
void cblas_sgemm(int order, int transa, int transb, int m, int n, int k, float alpha,
                 const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void openblas_set_num_threads(int threads);
int openblas_get_num_threads(void);
char *openblas_get_config(void);
char *openblas_get_corename(void);

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  int size = argc > 2 ? atoi(argv[2]) : 4096;
  int repeats = argc > 3 ? atoi(argv[3]) : 3;
  if (threads < 1 || size < 1 || repeats < 1 || repeats > 64) {
    fprintf(stderr, "usage: gemm_peak THREADS [SIZE] [REPEATS(1-64)]\n");
    return 2;
  }
  size_t count = (size_t)size * (size_t)size;
  float *a = malloc(count * sizeof(float)), *b = malloc(count * sizeof(float));
  float *c = malloc(count * sizeof(float));
  if (!a || !b || !c) {
    fprintf(stderr, "gemm_peak: out of memory for three %dx%d matrices\n", size, size);
    return 1;
  }
  for (size_t i = 0; i < count; ++i) {
    a[i] = (float)(i % 7) * 0.25f - 0.75f;
    b[i] = (float)(i % 5) * 0.5f - 1.0f;
    c[i] = 0;
  }
  openblas_set_num_threads(threads);
  cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, size, size, size, 1.0f, a, size, b, size, 0.0f, c,
              size);
  double flops = 2.0 * size * (double)size * size, best = 0, g[64];
  for (int r = 0; r < repeats; ++r) {
    double t0 = now_s();
    cblas_sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, size, size, size, 1.0f, a, size, b, size, 0.0f,
                c, size);
    g[r] = flops / (now_s() - t0) * 1e-9;
    if (g[r] > best) best = g[r];
  }
  printf("{\"threads\": %d, \"size\": %d, \"gflops\": [", openblas_get_num_threads(), size);
  for (int r = 0; r < repeats; ++r) printf("%s%.2f", r ? ", " : "", g[r]);
  printf("], \"best\": %.2f, \"config\": \"%s\", \"core\": \"%s\", \"check\": %g}\n", best,
         openblas_get_config(), openblas_get_corename(), (double)c[count / 2 + 1]);
  free(a);
  free(b);
  free(c);
  return 0;
}
