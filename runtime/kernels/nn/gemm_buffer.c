/* Per-thread packing buffers of the packed GEMM (gemm.h). Kernels must not
 * allocate on the hot path: each OS thread allocates its buffer once, on its
 * first GEMM, and reuses it for every later one; a thread-specific key frees
 * it when the thread exits (OpenMP's pool threads live as long as the
 * process, so in practice once per worker). A thread-local pointer rather
 * than a static array: a multi-megabyte _Thread_local array would be
 * reserved in every thread of every process that loads libmoairt. */
#include <pthread.h>
#include <stdlib.h>

#include "kernels/nn/gemm.h"

typedef struct gemm_buffer_t {
  float *data;
  size_t floats;
} gemm_buffer_t;

static _Thread_local gemm_buffer_t tls_buffer;
static pthread_key_t buffer_key;
static pthread_once_t buffer_key_once = PTHREAD_ONCE_INIT;

static void buffer_free(void *p) { free(p); }
static void buffer_key_create(void) { (void)pthread_key_create(&buffer_key, buffer_free); }

float *moai_gemm_thread_buffer(size_t floats) {
  gemm_buffer_t *b = &tls_buffer;
  if (b->data && b->floats >= floats) return b->data;
  size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
  float *data = aligned_alloc(64, bytes);
  if (!data) return NULL;
  (void)pthread_once(&buffer_key_once, buffer_key_create);
  free(b->data);
  b->data = data;
  b->floats = floats;
  (void)pthread_setspecific(buffer_key, data);
  return data;
}
