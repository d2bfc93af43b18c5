/* Helpers for the elementwise kernel tests: an op descriptor built in
 * memory (header + tensors + attributes in one 64-byte-aligned blob, as the
 * compiler lays it out), one arena holding every operand, and a runner that
 * calls a kernel for ith = 0..nth-1 in turn (kernels must not rely on
 * running concurrently). */
#ifndef MOAI_TEST_KERNELS_ELEMENTWISE_SUPPORT_H
#define MOAI_TEST_KERNELS_ELEMENTWISE_SUPPORT_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "moai_test.h"

#define KT_BLOB 8192
#define KT_ARENA (32u << 20)

typedef struct kt_t {
  _Alignas(64) unsigned char blob[KT_BLOB];
  moai_op_desc_t *op;
  unsigned char *arena;
  size_t used;
  moai_kernel_status_t status;
} kt_t;

/* Assertion with a formatted message (CUnit copies it). */
static inline void kt_assert(int ok, int line, const char *file, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline void kt_assert(int ok, int line, const char *file, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (!ok) fprintf(stderr, "\n  %s:%d: %s\n", file, line, msg);
  CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, (unsigned)line, msg, file, "", CU_FALSE);
}
#define KT_CHECK(cond, ...) kt_assert((cond) ? 1 : 0, __LINE__, __FILE__, __VA_ARGS__)

static inline const char *kt_dtype_name(int32_t dt) {
  switch (dt) {
    case MOAI_ABI_F32: return "f32";
    case MOAI_ABI_U8: return "u8";
    case MOAI_ABI_I8: return "i8";
    case MOAI_ABI_U16: return "u16";
    case MOAI_ABI_I16: return "i16";
    case MOAI_ABI_I32: return "i32";
    case MOAI_ABI_I64: return "i64";
    case MOAI_ABI_BOOL: return "bool";
    case MOAI_ABI_F16: return "f16";
    case MOAI_ABI_F64: return "f64";
    case MOAI_ABI_U32: return "u32";
    case MOAI_ABI_U64: return "u64";
    case MOAI_ABI_BF16: return "bf16";
    default: return "?";
  }
}

static inline size_t kt_dtype_size(int32_t dt) {
  switch (dt) {
    case MOAI_ABI_BOOL: case MOAI_ABI_U8: case MOAI_ABI_I8: return 1;
    case MOAI_ABI_F16: case MOAI_ABI_BF16: case MOAI_ABI_U16: case MOAI_ABI_I16: return 2;
    case MOAI_ABI_F32: case MOAI_ABI_U32: case MOAI_ABI_I32: return 4;
    default: return 8;
  }
}

static inline bool kt_is_float(int32_t dt) {
  return dt == MOAI_ABI_F32 || dt == MOAI_ABI_F64 || dt == MOAI_ABI_F16 || dt == MOAI_ABI_BF16;
}
static inline bool kt_is_signed(int32_t dt) {
  return dt == MOAI_ABI_I8 || dt == MOAI_ABI_I16 || dt == MOAI_ABI_I32 || dt == MOAI_ABI_I64;
}

static const int32_t kt_all_dtypes[] = {MOAI_ABI_F32, MOAI_ABI_F64, MOAI_ABI_F16, MOAI_ABI_BF16,
                                        MOAI_ABI_I8,  MOAI_ABI_I16, MOAI_ABI_I32, MOAI_ABI_I64,
                                        MOAI_ABI_U8,  MOAI_ABI_U16, MOAI_ABI_U32, MOAI_ABI_U64,
                                        MOAI_ABI_BOOL};
#define KT_N_DTYPES 13
#define KT_N_NUMERIC 12 /* kt_all_dtypes without bool */

static inline kt_t *kt_create(void) {
  kt_t *k = aligned_alloc(64, sizeof(kt_t));
  memset(k, 0, sizeof *k);
  k->arena = aligned_alloc(64, KT_ARENA);
  return k;
}
static inline void kt_destroy(kt_t *k) {
  if (!k) return;
  free(k->arena);
  free(k);
}

/* Starts an op: n_in + n_out tensors, all absent until set. */
static inline void kt_begin(kt_t *k, moai_kernel_id_t id, uint32_t n_in, uint32_t n_out) {
  memset(k->blob, 0, sizeof k->blob);
  k->op = (moai_op_desc_t *)k->blob;
  k->op->kernel = (uint32_t)id;
  k->op->n_in = n_in;
  k->op->n_out = n_out;
  k->op->index = 7;
  snprintf(k->op->name, sizeof k->op->name, "test_%s", moai_kernel_name(id));
  k->op->size = (uint32_t)(sizeof(moai_op_desc_t) + (n_in + n_out) * sizeof(moai_tensor_t));
  moai_tensor_t *t = (moai_tensor_t *)(k->op + 1);
  for (uint32_t i = 0; i < n_in + n_out; ++i) t[i].region = MOAI_REGION_NONE;
  k->used = 0;
}

/* Tensor slot i (inputs first, then outputs). */
static inline moai_tensor_t *kt_tensor(kt_t *k, uint32_t i) {
  return (moai_tensor_t *)(k->op + 1) + i;
}

/* Places tensor i in the arena with the given dtype and dims; returns its data. */
static inline void *kt_set(kt_t *k, uint32_t i, int32_t dtype, int rank, const int64_t *dims) {
  moai_tensor_t *t = kt_tensor(k, i);
  t->region = MOAI_REGION_ARENA;
  t->dtype = dtype;
  t->rank = rank;
  int64_t n = 1;
  for (int j = 0; j < rank; ++j) {
    t->dims[j] = dims[j];
    n *= dims[j];
  }
  k->used = (k->used + 63) & ~(size_t)63;
  t->offset = k->used;
  size_t bytes = (size_t)n * kt_dtype_size(dtype);
  k->used += bytes ? bytes : 1;
  if (k->used > KT_ARENA) {
    fprintf(stderr, "kt_set: arena too small\n");
    abort();
  }
  return k->arena + t->offset;
}

/* Makes tensor i a view of tensor j's bytes (in-place ops). */
static inline void kt_alias(kt_t *k, uint32_t i, uint32_t j) {
  moai_tensor_t *t = kt_tensor(k, i);
  *t = *kt_tensor(k, j);
}

static inline void *kt_ptr(kt_t *k, uint32_t i) { return k->arena + kt_tensor(k, i)->offset; }

/* Sets the attribute bytes (after the tensors). */
static inline void kt_attrs(kt_t *k, const void *a, size_t size) {
  unsigned char *dst = (unsigned char *)moai_op_attrs(k->op);
  memcpy(dst, a, size);
  k->op->attrs_size = (uint32_t)size;
  size_t total = (size_t)(dst - k->blob) + size;
  k->op->size = (uint32_t)((total + 7) & ~(size_t)7);
}

static void kt_barrier(const moai_exec_t *ex) { (void)ex; }

/* The tables: reference, and the best for this CPU. */
static inline const moai_kernel_fn_t *kt_table(moai_isa_t isa) {
  static moai_kernel_fn_t tables[4][MOAI_KERNEL_COUNT];
  static bool filled[4];
  if (!filled[isa]) {
    moai_kernels_fill(isa, tables[isa]);
    filled[isa] = true;
  }
  return tables[isa];
}

/* Runs the op with the `isa` table as nth threads called in turn. Returns
 * false (message in k->status) if the kernel reported a failure. */
static inline bool kt_run(kt_t *k, moai_isa_t isa, int nth) {
  memset(&k->status, 0, sizeof k->status);
  moai_exec_t ex;
  memset(&ex, 0, sizeof ex);
  ex.kernels = kt_table(isa);
  ex.base[MOAI_REGION_ARENA] = k->arena;
  ex.barrier = kt_barrier;
  ex.runtime = &k->status;
  for (int ith = 0; ith < nth; ++ith) ex.kernels[k->op->kernel](&ex, k->op, ith, nth);
  return !k->status.failed;
}

/* ---- data ---- */

static inline uint64_t kt_rand(uint64_t *s) {
  uint64_t x = *s;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *s = x;
  return x;
}
/* Uniform in [lo, hi]. */
static inline double kt_uniform(uint64_t *s, double lo, double hi) {
  return lo + (hi - lo) * (double)(kt_rand(s) >> 11) * (1.0 / 9007199254740992.0);
}

static inline uint16_t kt_f32_to_f16(float f);
static inline uint16_t kt_f32_to_bf16(float f);

/* Stores double v into element i of p (dtype dt), converting with C rules
 * for values the tests choose in range. */
static inline void kt_store(void *p, int32_t dt, int64_t i, double v) {
  switch (dt) {
    case MOAI_ABI_F32: ((float *)p)[i] = (float)v; break;
    case MOAI_ABI_F64: ((double *)p)[i] = v; break;
    case MOAI_ABI_F16: ((uint16_t *)p)[i] = kt_f32_to_f16((float)v); break;
    case MOAI_ABI_BF16: ((uint16_t *)p)[i] = kt_f32_to_bf16((float)v); break;
    case MOAI_ABI_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case MOAI_ABI_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case MOAI_ABI_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case MOAI_ABI_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case MOAI_ABI_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case MOAI_ABI_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case MOAI_ABI_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case MOAI_ABI_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case MOAI_ABI_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: break;
  }
}

static inline float kt_f16_to_f32(uint16_t h);
static inline float kt_bf16_to_f32(uint16_t h);

/* Element i of p as a double. */
static inline double kt_load(const void *p, int32_t dt, int64_t i) {
  switch (dt) {
    case MOAI_ABI_F32: return ((const float *)p)[i];
    case MOAI_ABI_F64: return ((const double *)p)[i];
    case MOAI_ABI_F16: return kt_f16_to_f32(((const uint16_t *)p)[i]);
    case MOAI_ABI_BF16: return kt_bf16_to_f32(((const uint16_t *)p)[i]);
    case MOAI_ABI_I8: return ((const int8_t *)p)[i];
    case MOAI_ABI_I16: return ((const int16_t *)p)[i];
    case MOAI_ABI_I32: return ((const int32_t *)p)[i];
    case MOAI_ABI_I64: return (double)((const int64_t *)p)[i];
    case MOAI_ABI_U8: case MOAI_ABI_BOOL: return ((const uint8_t *)p)[i];
    case MOAI_ABI_U16: return ((const uint16_t *)p)[i];
    case MOAI_ABI_U32: return ((const uint32_t *)p)[i];
    case MOAI_ABI_U64: return (double)((const uint64_t *)p)[i];
    default: return 0;
  }
}

/* Independent (bit-level, slow) half conversions for the tests. */
static inline float kt_f16_to_f32(uint16_t h) {
  int e = (h >> 10) & 31, m = h & 1023;
  float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY)
                                                     : ldexpf((float)(m | 1024), e - 25);
  return (h & 0x8000) ? -v : v;
}
static inline float kt_bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
/* Nearest f16 by search over the candidates (ties to even). */
static inline uint16_t kt_f32_to_f16(float f) {
  if (f != f) return 0x7e00;
  uint16_t sign = signbit(f) ? 0x8000 : 0;
  double a = fabs((double)f);
  if (a >= 65520.0) return sign | 0x7c00;
  /* f16 values are k * 2^-24 below 2^-14, else m * 2^(e-10) */
  double best = 0;
  uint16_t bits = 0;
  double ulp = a < 0x1p-14 ? 0x1p-24 : ldexp(1.0, ilogb(a) - 10);
  double q = a / ulp, fl = floor(q), frac = q - fl;
  double r = (frac > 0.5 || (frac == 0.5 && fmod(fl, 2.0) == 1.0)) ? fl + 1 : fl;
  best = r * ulp;
  /* encode */
  if (best < 0x1p-14) bits = (uint16_t)(best / 0x1p-24);
  else {
    int e = ilogb(best);
    bits = (uint16_t)(((e + 15) << 10) | (uint16_t)((best / ldexp(1.0, e) - 1.0) * 1024.0));
  }
  return sign | bits;
}
static inline uint16_t kt_f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if (f != f) return (uint16_t)((u >> 16) | 0x40);
  uint32_t low = u & 0xffff, hi = u >> 16;
  if (low > 0x8000 || (low == 0x8000 && (hi & 1))) hi++;
  return (uint16_t)hi;
}

/* Fill modes: small values, full bit patterns (integers), positive. */
enum { KT_SMALL, KT_FULL, KT_POSITIVE, KT_SPECIAL };

/* Fills n elements with random data. KT_SPECIAL mixes NaN, +-inf, +-0 and
 * huge values into floats. */
static inline void kt_fill(void *p, int32_t dt, int64_t n, uint64_t *seed, int mode) {
  for (int64_t i = 0; i < n; ++i) {
    uint64_t r = kt_rand(seed);
    if (dt == MOAI_ABI_BOOL) {
      ((uint8_t *)p)[i] = r & 1;
    } else if (kt_is_float(dt)) {
      double v = mode == KT_POSITIVE ? kt_uniform(seed, 0.01, 6.0) : kt_uniform(seed, -4.0, 4.0);
      if (mode == KT_SPECIAL && r % 7 == 0) {
        static const double specials[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0, 1e30, -1e30, 100.0,
                                          -100.0, 1e-30};
        v = specials[(r >> 8) % 10];
      }
      kt_store(p, dt, i, v);
    } else if (mode == KT_FULL) {
      memcpy((unsigned char *)p + (size_t)i * kt_dtype_size(dt), &r, kt_dtype_size(dt));
    } else if (mode == KT_POSITIVE || !kt_is_signed(dt)) {
      kt_store(p, dt, i, (double)(r % 100));
    } else {
      kt_store(p, dt, i, (double)((int64_t)(r % 201) - 100));
    }
  }
}

/* Compares n elements: bitwise (NaN equal to NaN) when rtol == atol == 0,
 * else |a - b| <= atol + rtol * |b| (inf must match exactly). Returns the
 * first mismatch or -1. */
static inline int64_t kt_compare(const void *a, const void *b, int32_t dt, int64_t n, double rtol,
                                 double atol) {
  size_t es = kt_dtype_size(dt);
  for (int64_t i = 0; i < n; ++i) {
    if (kt_is_float(dt)) {
      double x = kt_load(a, dt, i), y = kt_load(b, dt, i);
      if (x != x && y != y) continue;
      if (rtol == 0 && atol == 0) {
        if (memcmp((const unsigned char *)a + i * es, (const unsigned char *)b + i * es, es))
          return i;
        continue;
      }
      if (x == y) continue;
      if (isinf(x) || isinf(y) || x != x || y != y || fabs(x - y) > atol + rtol * fabs(y)) return i;
    } else if (memcmp((const unsigned char *)a + i * es, (const unsigned char *)b + i * es, es)) {
      return i;
    }
  }
  return -1;
}

/* Formats tensor i's dims as [a,b,c]. */
static inline const char *kt_dims_str(kt_t *k, uint32_t i, char *buf, size_t size) {
  const moai_tensor_t *t = kt_tensor(k, i);
  int n = snprintf(buf, size, "[");
  for (int j = 0; j < t->rank && (size_t)n < size; ++j)
    n += snprintf(buf + n, size - (size_t)n, "%s%lld", j ? "," : "", (long long)t->dims[j]);
  if ((size_t)n < size) snprintf(buf + n, size - (size_t)n, "]");
  return buf;
}

/* Runs the op with the reference kernels (1 thread), then the reference
 * with 3 threads and the optimised kernels (this CPU's table) with 1, 3
 * and 4 threads, and compares every output with the first run. `what`
 * names the case (kernel, dtypes, shapes) in failure messages. Returns
 * false on failure. */
static inline bool kt_check_ref_opt(kt_t *k, const char *what, double rtol, double atol) {
  const uint32_t n_out = k->op->n_out, first = k->op->n_in;
  unsigned char *saved[8] = {0};
  bool ok = true;
  for (uint32_t o = 0; o < n_out && o < 8; ++o) {
    const moai_tensor_t *t = kt_tensor(k, first + o);
    memset(kt_ptr(k, first + o), 0xa5, (size_t)moai_tensor_numel(t) * kt_dtype_size(t->dtype));
  }
  if (!kt_run(k, MOAI_ISA_REFERENCE, 1)) {
    KT_CHECK(0, "%s: reference kernel failed: %s", what, k->status.message);
    return false;
  }
  for (uint32_t o = 0; o < n_out && o < 8; ++o) {
    const moai_tensor_t *t = kt_tensor(k, first + o);
    size_t bytes = (size_t)moai_tensor_numel(t) * kt_dtype_size(t->dtype);
    saved[o] = malloc(bytes ? bytes : 1);
    memcpy(saved[o], kt_ptr(k, first + o), bytes);
  }
  const struct { moai_isa_t isa; int nth; } runs[] = {
      {MOAI_ISA_REFERENCE, 3}, {moai_isa_detect(), 1}, {moai_isa_detect(), 3},
      {moai_isa_detect(), 4}};
  for (size_t r = 0; r < sizeof runs / sizeof runs[0] && ok; ++r) {
    for (uint32_t o = 0; o < n_out && o < 8; ++o) {
      const moai_tensor_t *t = kt_tensor(k, first + o);
      memset(kt_ptr(k, first + o), 0x5a, (size_t)moai_tensor_numel(t) * kt_dtype_size(t->dtype));
    }
    if (!kt_run(k, runs[r].isa, runs[r].nth)) {
      KT_CHECK(0, "%s: %s kernel (nth %d) failed: %s", what, moai_isa_name(runs[r].isa),
               runs[r].nth, k->status.message);
      ok = false;
      break;
    }
    for (uint32_t o = 0; o < n_out && o < 8 && ok; ++o) {
      const moai_tensor_t *t = kt_tensor(k, first + o);
      bool exact = runs[r].isa == MOAI_ISA_REFERENCE;
      int64_t bad = kt_compare(kt_ptr(k, first + o), saved[o], t->dtype, moai_tensor_numel(t),
                               exact ? 0 : rtol, exact ? 0 : atol);
      if (bad >= 0) {
        KT_CHECK(0, "%s: output %u element %lld: %s nth %d gives %.9g, reference %.9g", what, o,
                 (long long)bad, moai_isa_name(runs[r].isa), runs[r].nth,
                 kt_load(kt_ptr(k, first + o), t->dtype, bad), kt_load(saved[o], t->dtype, bad));
        ok = false;
      }
    }
  }
  for (uint32_t o = 0; o < n_out && o < 8; ++o) free(saved[o]);
  return ok;
}

#endif /* MOAI_TEST_KERNELS_ELEMENTWISE_SUPPORT_H */
