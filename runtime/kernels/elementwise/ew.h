/* Shared pieces of the elementwise kernel family (private to
 * runtime/kernels/elementwise/): dtype facts, failure helpers, the
 * broadcast walker (broadcast.c) and the per-file registration functions.
 *
 * Every kernel here comes in two versions: *_ref, a scalar loop over output
 * elements that computes input offsets from the full multi-index (the
 * tests' oracle), and *_opt, which collapses dimensions and runs
 * vectorisable inner loops over contiguous runs. Both share the scalar
 * definition of the operation, so they agree bitwise except where an
 * optimised version documents otherwise (reduction order, fast exp).
 *
 * Aliasing (for the memory planner): the elementwise ops (binary, unary,
 * where, max/min, clip, and casts between dtypes of one size) read element
 * i of every same-shape input before writing output element i, so their
 * output may share its buffer with such an input. Copy with in == out is a
 * no-op. Every other op (expand, transpose, slice, concat, split, gather,
 * reduce, range) needs an output disjoint from its inputs. */
#ifndef MOAI_KERNELS_ELEMENTWISE_EW_H
#define MOAI_KERNELS_ELEMENTWISE_EW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "io/dtype.h"
#include "kernels/half.h"
#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Dispatch tables are indexed by moai_abi_dtype_t (1..16). */
#define MOAI_EW_DTYPE_TABLE 17
/* Elements per stack block (f16/bf16 widened to f32, variadic max/min). */
#define MOAI_EW_BLOCK 256
/* Inputs the optimised walker keeps strides for (variadic max/min with
 * more inputs uses the reference loop). */
#define MOAI_EW_MAX_IN 8

/* Bytes of one element of dtype `dt`, 0 when it is not a moai dtype. */
static inline size_t moai_ew_dtype_size(int32_t dt) {
  switch (dt) {
    case MOAI_ABI_BOOL: case MOAI_ABI_U8: case MOAI_ABI_I8: return 1;
    case MOAI_ABI_F16: case MOAI_ABI_BF16: case MOAI_ABI_U16: case MOAI_ABI_I16: return 2;
    case MOAI_ABI_F32: case MOAI_ABI_U32: case MOAI_ABI_I32: return 4;
    case MOAI_ABI_F64: case MOAI_ABI_U64: case MOAI_ABI_I64: return 8;
    default: return 0;
  }
}

/* The dtype's name for messages ("float32"), "unknown" for bad codes. */
static inline const char *moai_ew_dtype_name(int32_t dt) {
  const char *name = moai_abi_dtype_name(dt);
  return name ? name : "unknown";
}

static inline bool moai_ew_dtype_ok(int32_t dt) { return moai_ew_dtype_size(dt) != 0; }

/* Looks up table[dt] (NULL when dt is out of range or has no entry). */
#define MOAI_EW_LOOKUP(table, dt) \
  (((dt) > 0 && (dt) < MOAI_EW_DTYPE_TABLE) ? (table)[(dt)] : NULL)

/* Failure helpers: only thread 0 reports, so the message names the first
 * problem once; every thread must still return. */
void moai_ew_fail(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* "<kernel>: unsupported dtype <name>" */
void moai_ew_fail_dtype(const moai_exec_t *ex, const moai_op_desc_t *op,
                        int ith, int32_t dtype);
/* Checks n_in (at least min_in, at most max_in) and n_out, that the first
 * min_in inputs and every output are present, and every present operand's
 * region, rank and dims; reports. */
bool moai_ew_check_arity(const moai_exec_t *ex, const moai_op_desc_t *op,
                         int ith, uint32_t min_in, uint32_t max_in,
                         uint32_t n_out);
/* True when a present tensor has a valid rank and non-negative dims. */
bool moai_ew_tensor_ok(const moai_tensor_t *t);

/* ---- Broadcasting (numpy rules, right-aligned) ---- */

/* The output's dims collapsed for a set of inputs: output axes of size 1 are
 * dropped and neighbours merged when every input is broadcast along both or
 * along neither, so a bias add [M,N]+[N] becomes two axes and a same-shape
 * add one. */
typedef struct moai_ew_shape_t {
  int rank;                     /* collapsed rank, >= 1 */
  int64_t numel;
  int64_t dims[MOAI_MAX_RANK];  /* collapsed output dims */
  int8_t last[MOAI_MAX_RANK];   /* innermost output axis of each group */
  const moai_tensor_t *out;
} moai_ew_shape_t;

/* Collapses out's dims against inputs op_in(first .. first+n-1) (absent
 * inputs are skipped). Returns false, after reporting on thread 0, when an
 * input does not broadcast to out. */
bool moai_ew_shape_init(moai_ew_shape_t *s, const moai_exec_t *ex,
                        const moai_op_desc_t *op, int ith,
                        const moai_tensor_t *out, uint32_t first, uint32_t n);
/* Element strides of `in` along the collapsed axes (0 where broadcast). */
void moai_ew_shape_strides(const moai_ew_shape_t *s, const moai_tensor_t *in,
                           int64_t strides[MOAI_MAX_RANK]);

/* One run of the walk: n output elements starting at out element `pos`,
 * input k starting at element off[k] with inner stride inner[k] (0 or 1). */
typedef int (*moai_ew_run_fn_t)(void *ctx, int64_t pos, int64_t n,
                                const int64_t *off, const int64_t *inner);

/* Walks output elements [begin, end) in runs along the innermost collapsed
 * axis for n_in inputs whose strides are given; calls run per run. Returns
 * the OR of run's results (nonzero = a run found an error). */
int moai_ew_walk(const moai_ew_shape_t *s, int n_in,
                 const int64_t (*strides)[MOAI_MAX_RANK], int64_t begin,
                 int64_t end, moai_ew_run_fn_t run, void *ctx);

/* Binary ops: an inner loop per dtype over n elements, inputs with strides
 * 0 or 1 (the reference calls it with n = 1). Nonzero return = the op's
 * error (integer division by zero). */
typedef int (*moai_ew_binary_loop_t)(void *o, const void *a, const void *b,
                                     int64_t n, int64_t sa, int64_t sb);
typedef struct moai_ew_binary_t {
  moai_ew_binary_loop_t loops[MOAI_EW_DTYPE_TABLE]; /* by input dtype */
  bool out_bool;     /* comparisons: the output is bool */
  const char *error; /* message for a loop's nonzero return */
} moai_ew_binary_t;
/* Runs a binary op: inputs of one dtype, output of that dtype or bool. */
void moai_ew_binary_ref(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                        int nth, const moai_ew_binary_t *b);
void moai_ew_binary_opt(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                        int nth, const moai_ew_binary_t *b);

/* Unary ops (no broadcasting; in and out hold the same number of
 * elements): o[i] = f(x[i]) for n elements; params is the op's (attributes,
 * clip bounds). */
typedef void (*moai_ew_unary_loop_t)(void *o, const void *x, int64_t n, const void *params);
/* Checks arity (1..max_in inputs), out dtype (out_dtype, or x's when 0)
 * and sizes; reports on thread 0. */
bool moai_ew_unary_setup(const moai_exec_t *ex, const moai_op_desc_t *op, int ith,
                         uint32_t max_in, int32_t out_dtype);
/* Runs loop over this thread's share: one call (optimised) or one call per
 * element (reference). */
void moai_ew_unary_run(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                       moai_ew_unary_loop_t loop, const void *params, bool reference);
/* setup + lookup of loops[x dtype] + run. */
void moai_ew_unary(const moai_exec_t *ex, const moai_op_desc_t *op, int ith, int nth,
                   const moai_ew_unary_loop_t *loops, const void *params, bool reference);

/* Reference broadcasting: element offset in `in` of the output element at
 * multi-index idx (out's rank). */
static inline int64_t moai_ew_ref_offset(const moai_tensor_t *out,
                                         const moai_tensor_t *in,
                                         const int64_t *idx) {
  int64_t off = 0, stride = 1;
  for (int32_t j = in->rank - 1; j >= 0; --j) {
    int32_t oj = out->rank - in->rank + j;
    if (in->dims[j] != 1) off += idx[oj] * stride;
    stride *= in->dims[j];
  }
  return off;
}

/* Row-major multi-index of flat element i of `t`. */
static inline void moai_ew_unravel(const moai_tensor_t *t, int64_t i, int64_t *idx) {
  for (int32_t j = t->rank - 1; j >= 0; --j) {
    int64_t d = t->dims[j];
    idx[j] = d ? i % d : 0;
    i = d ? i / d : 0;
  }
}

static inline unsigned char *moai_ew_ptr(const moai_exec_t *ex, const moai_tensor_t *t) {
  return (unsigned char *)moai_tensor_ptr(ex, t);
}

/* Wide unsigned type for wrapping integer arithmetic without promotion to
 * int (which could overflow, e.g. int16 * int16). */
#define MOAI_EW_UWIDE(T) __typeof__(_Generic((T)0, int64_t: (uint64_t)0, uint64_t: (uint64_t)0, default: (uint32_t)0))

/* Widens n f16/bf16 elements (stride 0 or 1) to f32 and narrows back. */
void moai_ew_f16_to_f32(float *dst, const uint16_t *src, int64_t n, int64_t stride);
void moai_ew_bf16_to_f32(float *dst, const uint16_t *src, int64_t n, int64_t stride);
void moai_ew_f32_to_f16(uint16_t *dst, const float *src, int64_t n);
void moai_ew_f32_to_bf16(uint16_t *dst, const float *src, int64_t n);

/* Per-file registration (register.c calls them all). */
void moai_ew_register_binary(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_pow(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_compare_logic(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_where_minmax(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_unary(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_activation(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_cast(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_copy_layout(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_concat_split(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_gather(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_fill_range(moai_isa_t isa, moai_kernel_fn_t *table);
void moai_ew_register_reduce(moai_isa_t isa, moai_kernel_fn_t *table);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_KERNELS_ELEMENTWISE_EW_H */
