/* The machine's FMA peak: every thread runs a loop of independent fused
 * multiply-adds on registers only (no loads, no stores), so that the figure is
 * what the FMA ports can do, the ceiling no kernel can pass.
 *
 *   fma_peak THREADS [SECONDS]
 *
 * Built by bench/perf/run.sh with -O2 -march=native. Prints one JSON line:
 * {"threads": N, "width": 16|8, "gflops": X}. CHAINS independent accumulators
 * cover the FMA latency (4 cycles) times the ports (2) with room to spare.
 */
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12 /* the accumulators in ALL below */

#if defined(__AVX512F__)
typedef __m512 vec_t;
#define WIDTH 16
#define VSET1(x) _mm512_set1_ps(x)
#define VFMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VADD(a, b) _mm512_add_ps(a, b)
#define VSUM(v) _mm512_reduce_add_ps(v)
#elif defined(__FMA__)
typedef __m256 vec_t;
#define WIDTH 8
#define VSET1(x) _mm256_set1_ps(x)
#define VFMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VADD(a, b) _mm256_add_ps(a, b)
static float VSUM(__m256 v) {
  float f[8];
  _mm256_storeu_ps(f, v);
  return f[0] + f[1] + f[2] + f[3] + f[4] + f[5] + f[6] + f[7];
}
#else
#error "fma_peak needs FMA (x86-64 with AVX2/FMA or AVX-512)"
#endif

typedef struct {
  long iterations;
  pthread_barrier_t *start;
  double t0, t1; /* the thread's own clock around its loop */
  float result;
} job_t;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Twelve named accumulators, not an array: an array lives on the stack at -O2
 * and the loop would time loads and stores instead of FMAs. */
#define ALL(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define DECLARE(i) vec_t acc##i = VSET1(1.0f + 1e-3f * (float)(i));
#define STEP(i) acc##i = VFMA(acc##i, a, b);
#define SUM(i) sum = VADD(sum, acc##i);

static void *run(void *arg) {
  job_t *job = arg;
  ALL(DECLARE)
  /* a * acc + b with a close to 1 keeps the accumulators finite. */
  const vec_t a = VSET1(0.999999f), b = VSET1(1e-7f);
  pthread_barrier_wait(job->start);
  job->t0 = now_s();
  for (long it = 0; it < job->iterations; ++it) {
    ALL(STEP)
  }
  vec_t sum = VSET1(0.0f);
  ALL(SUM)
  job->t1 = now_s();
  job->result = VSUM(sum);
  return NULL;
}

/* Wall seconds for `threads` threads of `iterations` each, started together:
 * from the first thread's start to the last one's end, by the threads' own
 * clocks (the main thread may be descheduled on a busy machine). */
static double timed(int threads, long iterations, float *out_check) {
  pthread_t tid[256];
  job_t jobs[256];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
  for (int t = 0; t < threads; ++t) {
    jobs[t] = (job_t){.iterations = iterations, .start = &start};
    pthread_create(&tid[t], NULL, run, &jobs[t]);
  }
  pthread_barrier_wait(&start);
  for (int t = 0; t < threads; ++t) pthread_join(tid[t], NULL);
  pthread_barrier_destroy(&start);
  double t0 = jobs[0].t0, t1 = jobs[0].t1;
  for (int t = 0; t < threads; ++t) {
    *out_check += jobs[t].result;
    if (jobs[t].t0 < t0) t0 = jobs[t].t0;
    if (jobs[t].t1 > t1) t1 = jobs[t].t1;
  }
  return t1 - t0;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  double seconds = argc > 2 ? atof(argv[2]) : 1.0;
  if (threads < 1 || threads > 256 || !(seconds > 0)) {
    fprintf(stderr, "usage: fma_peak THREADS(1-256) [SECONDS]\n");
    return 2;
  }
  float check = 0;
  /* Calibrate on one thread until a run takes 20 ms or more, then size the
   * runs to about `seconds`. */
  long n = 100000;
  double t;
  while ((t = timed(1, n, &check)) < 0.02) n *= 2;
  long iterations = (long)((double)n * seconds / t);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double s = timed(threads, iterations, &check);
    double gflops = 2.0 * WIDTH * CHAINS * (double)iterations * threads / s * 1e-9;
    if (gflops > best) best = gflops;
  }
  printf("{\"threads\": %d, \"width\": %d, \"gflops\": %.2f, \"check\": %g}\n", threads, WIDTH,
         best, (double)check);
  return 0;
}
