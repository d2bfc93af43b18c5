/* Internal to moai-autodiff: the op builder the vector-Jacobian rules use
 * (builder.c) and the rule table (rules.c). */
#ifndef MOAI_PASSES_AUTODIFF_INTERNAL_H
#define MOAI_PASSES_AUTODIFF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/op_defs.h"
#include "mlir-c/IR.h"

#define AD_MAX_RANK 8

/* Value -> value map (open addressing on the value's pointer). */
typedef struct ad_map_t {
  const void **keys;
  MlirValue *values;
  size_t capacity, count;
} ad_map_t;

typedef struct ad_t {
  MlirContext ctx;
  MlirBlock block;
  MlirOperation anchor; /* new ops go before it (the function's return) */
  MlirLocation loc;     /* location of new ops: the forward op's */
  ad_map_t grads;       /* forward value -> its gradient so far */
  ad_map_t needs;       /* forward value -> (non-null) if it depends on a
                           differentiated value */
  bool failed;          /* a rule reported an error */
  bool oom;
} ad_t;

/* ---- map ---------------------------------------------------------------- */
bool ad_map_put(ad_t *ad, ad_map_t *m, MlirValue key, MlirValue value);
MlirValue ad_map_get(const ad_map_t *m, MlirValue key); /* null if absent */
void ad_map_free(ad_map_t *m);

/* Whether `v` needs a gradient (depends on a differentiated value). */
bool ad_needs(const ad_t *ad, MlirValue v);
/* Adds `g` to v's gradient (an add when it already has one). */
void ad_accumulate(ad_t *ad, MlirValue v, MlirValue g);

/* ---- types ---------------------------------------------------------------- */
int ad_rank(MlirValue v);
/* Fills dims (AD_MAX_RANK) and returns the rank. */
int ad_dims(MlirValue v, int64_t *dims);
int64_t ad_numel(MlirValue v);
MlirType ad_elem(MlirValue v);
bool ad_is_float(MlirValue v);
MlirType ad_tensor_type(ad_t *ad, int rank, const int64_t *dims, MlirType elem);
bool ad_same_shape(MlirValue a, MlirValue b);

/* ---- attributes ------------------------------------------------------------ */
MlirNamedAttribute ad_named(ad_t *ad, const char *name, MlirAttribute a);
MlirAttribute ad_i64_attr(ad_t *ad, int64_t v);
MlirAttribute ad_ints_attr(ad_t *ad, int n, const int64_t *v); /* array<i64> */
MlirAttribute ad_str_attr(ad_t *ad, const char *s);
MlirAttribute ad_f32_attr(ad_t *ad, double v);
/* Attribute `name` of op, or null. */
MlirAttribute ad_attr(MlirOperation op, const char *name);
/* Integer attribute `name` of op, or `fallback` when absent. */
int64_t ad_attr_int(MlirOperation op, const char *name, int64_t fallback);
double ad_attr_float(MlirOperation op, const char *name, double fallback);
/* Whether string attribute `name` of op equals `s` (`dflt` when absent). */
bool ad_attr_str_is(MlirOperation op, const char *name, const char *s, bool dflt);
/* Ints of an array<i64> attribute; returns the count (-1 when absent). */
int ad_attr_ints(MlirOperation op, const char *name, int64_t *buf, int cap);
/* Values of a constant integer tensor (a moai.constant); -1 if `v` is not
 * one (or null), else the count. */
int ad_const_ints(MlirValue v, int64_t *buf, int cap);
/* A constant one-element float, bool or int64 value as a double, or false. */
bool ad_const_scalar(MlirValue v, double *out);

/* ---- building ops ------------------------------------------------------------ */
/* Creates moai.<name> before the anchor. `in` holds one value per operand
 * entry of the op table (a null value for an absent optional entry; a
 * variadic entry takes `n_variadic` consecutive values). Results: n_res
 * types; the results go to out (may be NULL when n_res == 1 and only the
 * return value is wanted). Returns result 0 (null on failure). */
MlirValue ad_build(ad_t *ad, const char *name, const MlirValue *in, int n_in,
                   int n_variadic, const MlirType *res, int n_res,
                   const MlirNamedAttribute *attrs, int n_attrs,
                   MlirValue *out);
MlirValue ad_op1(ad_t *ad, const char *name, MlirValue a, MlirType res);
MlirValue ad_unary(ad_t *ad, const char *name, MlirValue a); /* same type */

/* A scalar (rank 0) constant of element type `elem`. */
MlirValue ad_scalar(ad_t *ad, MlirType elem, double v);
MlirValue ad_scalar_like(ad_t *ad, MlirValue like, double v);
/* A 1-D i64 constant. */
MlirValue ad_i64s(ad_t *ad, int n, const int64_t *v);

/* Elementwise binary ops with numpy broadcasting (result: the broadcast
 * shape, a's element type; comparisons give i1). */
MlirValue ad_binary(ad_t *ad, const char *name, MlirValue a, MlirValue b);
MlirValue ad_add(ad_t *ad, MlirValue a, MlirValue b);
MlirValue ad_sub(ad_t *ad, MlirValue a, MlirValue b);
MlirValue ad_mul(ad_t *ad, MlirValue a, MlirValue b);
MlirValue ad_div(ad_t *ad, MlirValue a, MlirValue b);
MlirValue ad_compare(ad_t *ad, const char *name, MlirValue a, MlirValue b);
MlirValue ad_where(ad_t *ad, MlirValue c, MlirValue x, MlirValue y);
MlirValue ad_cast(ad_t *ad, MlirValue v, MlirType elem);

MlirValue ad_reshape(ad_t *ad, MlirValue v, int rank, const int64_t *dims);
MlirValue ad_reshape_like(ad_t *ad, MlirValue v, MlirValue like);
MlirValue ad_transpose(ad_t *ad, MlirValue v, const int64_t *perm);
/* Swaps the last two axes. */
MlirValue ad_transpose_last2(ad_t *ad, MlirValue v);
MlirValue ad_expand(ad_t *ad, MlirValue v, int rank, const int64_t *dims);
MlirValue ad_reduce_sum(ad_t *ad, MlirValue v, int n_axes, const int64_t *axes,
                        bool keepdims);
MlirValue ad_matmul(ad_t *ad, MlirValue a, MlirValue b);
/* moai.gemm of 2-D a and b with transA/transB and no C: op(a) op(b), the
 * packed GEMM reading a transposed operand in place (no copy). */
MlirValue ad_gemm(ad_t *ad, MlirValue a, MlirValue b, bool trans_a, bool trans_b);
/* Sums a broadcast gradient back to `rank`/`dims` (numpy rules). */
MlirValue ad_reduce_to(ad_t *ad, MlirValue g, int rank, const int64_t *dims);
MlirValue ad_reduce_to_like(ad_t *ad, MlirValue g, MlirValue like);
/* Zeros of the given shape and element type (a broadcast scalar). */
MlirValue ad_zeros(ad_t *ad, int rank, const int64_t *dims, MlirType elem);
MlirValue ad_slice(ad_t *ad, MlirValue v, int axis, int64_t start, int64_t end);

/* Reports an error at the current location; returns a null value. */
MlirValue ad_error(ad_t *ad, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- rules ------------------------------------------------------------------- */

/* A vector-Jacobian rule: given the op and its results' gradients (null for
 * results without one), adds gradient contributions to the operands that
 * need one (ad_needs). Reports errors through ad_error. */
typedef void (*ad_rule_fn_t)(ad_t *ad, MlirOperation op, const MlirValue *grads);

/* The rule of a moai op mnemonic ("matmul"), or NULL. */
ad_rule_fn_t ad_rule_find(const char *mnemonic, size_t len);

/* The rules of the fused ops (rules_fused.c). */
void ad_rule_attention(ad_t *ad, MlirOperation op, const MlirValue *grads);
void ad_rule_rms_norm(ad_t *ad, MlirOperation op, const MlirValue *grads);
void ad_rule_swiglu(ad_t *ad, MlirOperation op, const MlirValue *grads);
void ad_rule_rotary(ad_t *ad, MlirOperation op, const MlirValue *grads);

#endif /* MOAI_PASSES_AUTODIFF_INTERNAL_H */
