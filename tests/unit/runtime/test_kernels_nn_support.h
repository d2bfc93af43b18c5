/* Test support for the nn kernels (test_kernels_nn*.c): builds one op
 * descriptor with its tensors in a private arena, runs a kernel table's
 * entry for it the way a device step does (thread ith = 0..nth-1, here one
 * after the other), and compares outputs with a tolerance (nn_check: as a
 * CUnit assertion, with the dense and spatial tests' shared tolerances). */
#ifndef MOAI_TEST_KERNELS_NN_SUPPORT_H
#define MOAI_TEST_KERNELS_NN_SUPPORT_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "moai_test.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#define NN_MAX_TENSORS 8
#define NN_MAX_ATTRS 256

typedef struct nn_case_t {
  uint32_t kernel;
  unsigned char *arena;
  size_t cap, used;
  moai_tensor_t in[NN_MAX_TENSORS], out[NN_MAX_TENSORS];
  uint32_t n_in, n_out;
  unsigned char attrs[NN_MAX_ATTRS];
  uint32_t attrs_size;
  /* the descriptor: header, tensors, attrs (built by nn_case_desc) */
  _Alignas(16) unsigned char desc[sizeof(moai_op_desc_t) +
                                  2 * NN_MAX_TENSORS * sizeof(moai_tensor_t) + NN_MAX_ATTRS];
} nn_case_t;

static inline size_t nn_dtype_size(int32_t dtype) {
  switch (dtype) {
    case MOAI_ABI_U8: case MOAI_ABI_I8: case MOAI_ABI_BOOL: return 1;
    case MOAI_ABI_U16: case MOAI_ABI_I16: case MOAI_ABI_F16: case MOAI_ABI_BF16: return 2;
    case MOAI_ABI_F32: case MOAI_ABI_I32: case MOAI_ABI_U32: return 4;
    case MOAI_ABI_F64: case MOAI_ABI_I64: case MOAI_ABI_U64: return 8;
  }
  return 0;
}

/* An empty case for `kernel` with an arena of `cap` bytes; 0 on failure. */
static inline int nn_case_init(nn_case_t *c, uint32_t kernel, size_t cap) {
  memset(c, 0, sizeof(*c));
  c->kernel = kernel;
  c->cap = cap;
  c->arena = aligned_alloc(64, (cap + 63) / 64 * 64);
  return c->arena != NULL;
}

static inline void nn_case_free(nn_case_t *c) {
  free(c->arena);
  c->arena = NULL;
}

static inline moai_tensor_t nn_tensor_place(nn_case_t *c, int32_t dtype, int32_t rank,
                                            const int64_t *dims) {
  moai_tensor_t t;
  memset(&t, 0, sizeof(t));
  t.region = MOAI_REGION_ARENA;
  t.dtype = dtype;
  t.rank = rank;
  for (int32_t i = 0; i < rank; ++i) t.dims[i] = dims[i];
  size_t bytes = (size_t)moai_tensor_numel(&t) * nn_dtype_size(dtype);
  size_t off = (c->used + 63) / 64 * 64;
  if (off + bytes > c->cap) {
    fprintf(stderr, "nn test arena too small (%zu + %zu > %zu)\n", off, bytes, c->cap);
    abort(); /* a bug in the test itself */
  }
  t.offset = off;
  c->used = off + bytes;
  return t;
}

/* Appends an input/output of the given shape; returns its index. */
static inline uint32_t nn_case_add_in(nn_case_t *c, int32_t dtype, int32_t rank,
                                      const int64_t *dims) {
  c->in[c->n_in] = nn_tensor_place(c, dtype, rank, dims);
  return c->n_in++;
}
static inline uint32_t nn_case_add_out(nn_case_t *c, int32_t dtype, int32_t rank,
                                       const int64_t *dims) {
  c->out[c->n_out] = nn_tensor_place(c, dtype, rank, dims);
  return c->n_out++;
}
/* An absent optional operand. */
static inline uint32_t nn_case_add_in_none(nn_case_t *c) {
  memset(&c->in[c->n_in], 0, sizeof(moai_tensor_t));
  c->in[c->n_in].region = MOAI_REGION_NONE;
  return c->n_in++;
}
static inline uint32_t nn_case_add_out_none(nn_case_t *c) {
  memset(&c->out[c->n_out], 0, sizeof(moai_tensor_t));
  c->out[c->n_out].region = MOAI_REGION_NONE;
  return c->n_out++;
}

static inline void nn_case_set_attrs(nn_case_t *c, const void *attrs, size_t size) {
  memcpy(c->attrs, attrs, size);
  c->attrs_size = (uint32_t)size;
}

static inline void *nn_case_in_ptr(nn_case_t *c, uint32_t i) {
  return c->in[i].region == MOAI_REGION_NONE ? NULL : c->arena + c->in[i].offset;
}
static inline void *nn_case_out_ptr(nn_case_t *c, uint32_t i) {
  return c->out[i].region == MOAI_REGION_NONE ? NULL : c->arena + c->out[i].offset;
}
static inline size_t nn_case_out_bytes(nn_case_t *c, uint32_t i) {
  return (size_t)moai_tensor_numel(&c->out[i]) * nn_dtype_size(c->out[i].dtype);
}

/* Lays the descriptor out as the compiler does. */
static inline const moai_op_desc_t *nn_case_desc(nn_case_t *c) {
  moai_op_desc_t *op = (moai_op_desc_t *)c->desc;
  memset(c->desc, 0, sizeof(c->desc));
  op->kernel = c->kernel;
  op->n_in = c->n_in;
  op->n_out = c->n_out;
  op->attrs_size = c->attrs_size;
  op->size = (uint32_t)((sizeof(*op) + (c->n_in + c->n_out) * sizeof(moai_tensor_t) +
                         c->attrs_size + 7) / 8 * 8);
  snprintf(op->name, sizeof(op->name), "test_%s", moai_kernel_name(c->kernel));
  moai_tensor_t *t = (moai_tensor_t *)(op + 1);
  memcpy(t, c->in, c->n_in * sizeof(moai_tensor_t));
  memcpy(t + c->n_in, c->out, c->n_out * sizeof(moai_tensor_t));
  memcpy((unsigned char *)(t + c->n_in + c->n_out), c->attrs, c->attrs_size);
  return op;
}

/* Runs the kernel of `isa` with nth threads, called one after the other;
 * returns 0, or 1 with the kernel's message in st when it failed. */
static inline int nn_case_run(nn_case_t *c, moai_isa_t isa, int nth,
                              moai_kernel_status_t *st) {
  moai_kernel_fn_t table[MOAI_KERNEL_COUNT];
  moai_kernels_fill(isa, table);
  moai_exec_t ex;
  memset(&ex, 0, sizeof(ex));
  memset(st, 0, sizeof(*st));
  ex.kernels = table;
  ex.base[MOAI_REGION_ARENA] = c->arena;
  ex.runtime = st;
  const moai_op_desc_t *op = nn_case_desc(c);
  for (int ith = 0; ith < nth; ++ith) table[op->kernel](&ex, op, ith, nth);
  return st->failed;
}

/* As nn_case_run, but the threads really run concurrently: one OpenMP
 * parallel region of nth threads, as the runtime's step does (sequential
 * when the test is built without OpenMP). */
static inline int nn_case_run_parallel(nn_case_t *c, moai_isa_t isa, int nth,
                                       moai_kernel_status_t *st) {
#ifdef _OPENMP
  moai_kernel_fn_t table[MOAI_KERNEL_COUNT];
  moai_kernels_fill(isa, table);
  moai_exec_t ex;
  memset(&ex, 0, sizeof(ex));
  memset(st, 0, sizeof(*st));
  ex.kernels = table;
  ex.base[MOAI_REGION_ARENA] = c->arena;
  ex.runtime = st;
  const moai_op_desc_t *op = nn_case_desc(c);
#pragma omp parallel num_threads(nth)
  table[op->kernel](&ex, op, omp_get_thread_num(), omp_get_num_threads());
  return st->failed;
#else
  return nn_case_run(c, isa, nth, st);
#endif
}

/* Fills every output with 0xff bytes (NaN for floats) so that an element a
 * kernel forgets to write cannot pass by leftover luck. */
static inline void nn_case_poison_outputs(nn_case_t *c) {
  for (uint32_t i = 0; i < c->n_out; ++i)
    if (c->out[i].region != MOAI_REGION_NONE) memset(nn_case_out_ptr(c, i), 0xff, nn_case_out_bytes(c, i));
}

/* ---- values ---- */

/* xorshift64*: fixed seeds give the same inputs on every machine. */
static inline uint64_t nn_rand_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}
/* uniform in [lo, hi) */
static inline double nn_rand_uniform(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * (double)(nn_rand_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

static inline uint16_t nn_f32_to_f16(float f) {
  uint32_t x;
  memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  /* test values are normal and in range: round to nearest even */
  uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - 0x38000000u;
  return (uint16_t)(sign | (r >> 13));
}
static inline float nn_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t bits = e == 0 ? sign : sign | ((e + 112u) << 23) | (m << 13); /* no subnormals here */
  float f;
  memcpy(&f, &bits, 4);
  return f;
}
static inline float nn_bf16_to_f32(uint16_t h) {
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Element i of a buffer of dtype as a double (integers exactly up to 2^53). */
static inline double nn_load(const void *p, int32_t dtype, int64_t i) {
  switch (dtype) {
    case MOAI_ABI_F32: return ((const float *)p)[i];
    case MOAI_ABI_F64: return ((const double *)p)[i];
    case MOAI_ABI_F16: return nn_f16_to_f32(((const uint16_t *)p)[i]);
    case MOAI_ABI_BF16: return nn_bf16_to_f32(((const uint16_t *)p)[i]);
    case MOAI_ABI_I8: return ((const int8_t *)p)[i];
    case MOAI_ABI_U8: return ((const uint8_t *)p)[i];
    case MOAI_ABI_I16: return ((const int16_t *)p)[i];
    case MOAI_ABI_U16: return ((const uint16_t *)p)[i];
    case MOAI_ABI_I32: return ((const int32_t *)p)[i];
    case MOAI_ABI_U32: return ((const uint32_t *)p)[i];
    case MOAI_ABI_I64: return (double)((const int64_t *)p)[i];
    case MOAI_ABI_U64: return (double)((const uint64_t *)p)[i];
    case MOAI_ABI_BOOL: return ((const uint8_t *)p)[i];
  }
  return NAN;
}

static inline void nn_store(void *p, int32_t dtype, int64_t i, double v) {
  switch (dtype) {
    case MOAI_ABI_F32: ((float *)p)[i] = (float)v; break;
    case MOAI_ABI_F64: ((double *)p)[i] = v; break;
    case MOAI_ABI_F16: ((uint16_t *)p)[i] = nn_f32_to_f16((float)v); break;
    case MOAI_ABI_BF16: {
      float f = (float)v;
      uint32_t x;
      memcpy(&x, &f, 4);
      ((uint16_t *)p)[i] = (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
      break;
    }
    case MOAI_ABI_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case MOAI_ABI_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case MOAI_ABI_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case MOAI_ABI_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case MOAI_ABI_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case MOAI_ABI_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case MOAI_ABI_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case MOAI_ABI_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case MOAI_ABI_BOOL: ((uint8_t *)p)[i] = v != 0.0; break;
  }
}

/* Fills input i with uniform values in [lo, hi) (integers: truncated). */
static inline void nn_case_fill(nn_case_t *c, uint32_t i, uint64_t *seed, double lo, double hi) {
  void *p = nn_case_in_ptr(c, i);
  int64_t n = moai_tensor_numel(&c->in[i]);
  for (int64_t e = 0; e < n; ++e) nn_store(p, c->in[i].dtype, e, nn_rand_uniform(seed, lo, hi));
}

/* Runs the reference kernel with one thread as the oracle, then the
 * reference with 3 threads and the optimised (generic) kernel with 1 and 3
 * threads called in turn and with 4 threads in a parallel region, comparing every output with the oracle's (rtol/atol as in
 * nn_compare). Returns the number of mismatching elements (or failures). */
static inline int64_t nn_compare(const char *what, int32_t dtype, const void *got,
                                 const void *want, int64_t n, double rtol, double atol);

static inline int64_t nn_check_ref_vs_opt(nn_case_t *c, const char *label, double rtol,
                                          double atol) {
  moai_kernel_status_t st;
  void *want[NN_MAX_TENSORS] = {0};
  int64_t bad = 0;
  nn_case_poison_outputs(c);
  if (nn_case_run(c, MOAI_ISA_REFERENCE, 1, &st)) {
    fprintf(stderr, "%s: reference failed: %s\n", label, st.message);
    return 1;
  }
  for (uint32_t i = 0; i < c->n_out; ++i) {
    if (c->out[i].region == MOAI_REGION_NONE) continue;
    want[i] = malloc(nn_case_out_bytes(c, i) + 1);
    memcpy(want[i], nn_case_out_ptr(c, i), nn_case_out_bytes(c, i));
  }
  static const struct { moai_isa_t isa; int nth, parallel; } runs[] = {
      {MOAI_ISA_REFERENCE, 3, 0}, {MOAI_ISA_GENERIC, 1, 0}, {MOAI_ISA_GENERIC, 3, 0},
      {MOAI_ISA_GENERIC, 4, 1}};
  for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); ++r) {
    char what[160];
    snprintf(what, sizeof(what), "%s [%s, nth=%d%s]", label, moai_isa_name(runs[r].isa),
             runs[r].nth, runs[r].parallel ? ", parallel" : "");
    nn_case_poison_outputs(c);
    if ((runs[r].parallel ? nn_case_run_parallel : nn_case_run)(c, runs[r].isa, runs[r].nth, &st)) {
      fprintf(stderr, "%s: failed: %s\n", what, st.message);
      ++bad;
      continue;
    }
    for (uint32_t i = 0; i < c->n_out; ++i)
      if (want[i])
        bad += nn_compare(what, c->out[i].dtype, nn_case_out_ptr(c, i), want[i],
                          moai_tensor_numel(&c->out[i]), rtol, atol);
  }
  for (uint32_t i = 0; i < c->n_out; ++i) free(want[i]);
  return bad;
}

/* Counts elements with |got - want| > atol + rtol * |want| (numpy's
 * allclose; NaN matches NaN, inf matches the same inf) and prints the
 * first few under `what`. */
static inline int64_t nn_compare(const char *what, int32_t dtype, const void *got,
                                 const void *want, int64_t n, double rtol, double atol) {
  int64_t bad = 0;
  for (int64_t i = 0; i < n; ++i) {
    double g = nn_load(got, dtype, i), w = nn_load(want, dtype, i);
    int ok;
    if (isnan(w) || isnan(g))
      ok = isnan(w) && isnan(g);
    else if (isinf(w) || isinf(g))
      ok = g == w;
    else
      ok = fabs(g - w) <= atol + rtol * fabs(w);
    if (!ok && bad++ < 5)
      fprintf(stderr, "  %s: element %lld: got %.9g, want %.9g\n", what, (long long)i, g, w);
  }
  if (bad) fprintf(stderr, "  %s: %lld of %lld elements differ\n", what, (long long)bad, (long long)n);
  return bad;
}

/* The tolerances test_kernels_nn_dense.c and test_kernels_nn_spatial.c use
 * (their headers say why), and the arena size of their cases. */
#define F32_RTOL 1e-5
#define F32_ATOL 1e-5
#define F64_TOL 1e-12
#define ARENA (16u << 20)

/* nn_check_ref_vs_opt as a CUnit assertion: no mismatches (the count is
 * printed under `label` when there are some). */
static inline void nn_check(nn_case_t *c, const char *label, double rtol, double atol) {
  int64_t bad = nn_check_ref_vs_opt(c, label, rtol, atol);
  if (bad) fprintf(stderr, "%s: %lld mismatches\n", label, (long long)bad);
  CU_ASSERT_EQUAL(bad, 0);
}

#endif /* MOAI_TEST_KERNELS_NN_SUPPORT_H */
