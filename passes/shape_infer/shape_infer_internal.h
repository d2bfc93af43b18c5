/* Internals of moai-shape-infer shared by its files: the view of one op that
 * the shape rules work on (si_op_t), shapes with unknown dimensions, reading
 * attributes and constant operands, and the folding entry points.
 *
 *   infer.c              the op view, attributes, result types, rule table
 *   rules_elementwise.c  broadcasting ops, casts, comparisons, logic
 *   rules_shape.c        Shape, Reshape, Squeeze, Transpose, Expand, ...
 *   rules_index.c        Gather, Concat, Slice, Split, Range
 *   rules_nn.c           MatMul, Gemm, Conv, pooling, reductions, norms
 *   rules_grad_index.c   gradients of Gather, Slice, Softmax, cross-entropy
 *   rules_grad_nn.c      gradients of Conv, pooling and the norms
 *   tensor_const.c       constant operands as host tensors and back
 *   fold.c, fold_shape.c constant folding
 *   shape_infer.c        the pass: walk, fold, static check, function types
 *
 * Nothing here is public API; shape_infer.h is the contract. */
#ifndef MOAI_PASSES_SHAPE_INFER_INTERNAL_H
#define MOAI_PASSES_SHAPE_INFER_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"
#include "ir/op_defs.h"
#include "mlir-c/IR.h"

/* Tensors of higher rank are reported as unsupported rather than handled
 * with heap-allocated shapes: no ONNX model in practice comes near. */
#define SI_MAX_RANK 32
/* An unknown dimension inside moai (MLIR's own marker is INT64_MIN). */
#define SI_DYN ((int64_t)-1)
/* Marks "no rank known" in si_shape_t.rank. */
#define SI_UNRANKED (-1)

typedef struct si_shape_t {
  int rank; /* SI_UNRANKED or 0..SI_MAX_RANK */
  int64_t dims[SI_MAX_RANK];
} si_shape_t;

/* A tensor type as the rules see it. elem is null for a non-tensor value. */
typedef struct si_type_t {
  MlirType elem;
  si_shape_t shape;
} si_type_t;

/* One op being inferred. Rules read operands and attributes through the
 * si_* helpers, which emit a diagnostic at the op on malformed input, and
 * set results with si_set_result. */
typedef struct si_op_t {
  MlirOperation op;
  MlirContext ctx;
  const moai_op_def_t *def;
  const char *type_name; /* ONNX op type for messages ("Add") */
  /* Where each operand (result) slot of the definition starts among the
   * op's operands (results) and how many values it has (0 = absent). */
  int in_start[MOAI_OP_MAX_OPERANDS], in_len[MOAI_OP_MAX_OPERANDS];
  int out_start[MOAI_OP_MAX_RESULTS], out_len[MOAI_OP_MAX_RESULTS];
  /* Set by rules: the operand slot whose runtime value the result shape
   * depends on (it was not a constant), or -1. */
  int value_dependency;
} si_op_t;

/* Result of reading a constant operand. */
typedef enum si_const_e {
  SI_CONST_UNKNOWN = 0, /* not a constant (yet): a runtime value */
  SI_CONST_OK = 1,
  SI_CONST_ERROR = 2, /* malformed; a diagnostic was emitted */
} si_const_t;

/* ---- infer.c ------------------------------------------------------------ */

/* Sets up `si` for `op`; false (with a diagnostic) for an op that is not a
 * known moai op or whose operand/result counts do not fit its definition. */
bool si_op_init(si_op_t *si, MlirOperation op);

/* Infers `op`'s result types; *out_value_dependency receives the operand
 * slot whose runtime value was needed (or -1). */
bool si_infer(MlirOperation op, int *out_value_dependency);

/* Emits "<OpType>: <message>" as an error at the op; returns false. */
bool si_error(si_op_t *si, const char *fmt, ...) MOAI_PRINTF(2, 3);

/* Operand slot `slot` (the definition's numbering): whether it is present,
 * its first value and its number of values (variadic slots). */
bool si_has(const si_op_t *si, int slot);
MlirValue si_operand(const si_op_t *si, int slot);
MlirValue si_operand_at(const si_op_t *si, int slot, int k);
int si_operand_len(const si_op_t *si, int slot);
int si_result_len(const si_op_t *si, int slot);

/* Reads the type of operand slot `slot` (first value) into *out; false
 * with a diagnostic when it is not a tensor or its rank is too large. */
bool si_in_type(si_op_t *si, int slot, si_type_t *out);
bool si_value_type(si_op_t *si, MlirValue v, const char *what, si_type_t *out);

/* Sets result `slot` (k-th value for variadic results) to a tensor of
 * `elem` and `shape` (SI_UNRANKED gives tensor<*x...>), refined by whatever
 * the result's existing type already says (an importer's value_info). */
void si_set_result(si_op_t *si, int slot, int k, MlirType elem,
                   const si_shape_t *shape);

/* Attributes. Absent attributes take the default in the op table; absent
 * ones without a default report *out_present = false (when out_present is
 * NULL they are an error). Wrong kinds are errors. */
bool si_attr_int(si_op_t *si, const char *name, int64_t *out,
                 bool *out_present);
bool si_attr_float(si_op_t *si, const char *name, double *out);
bool si_attr_string(si_op_t *si, const char *name, char *buf, size_t size);
/* A list of ints; *out_n receives the count (at most `cap`). */
bool si_attr_ints(si_op_t *si, const char *name, int64_t *buf, int cap,
                  int *out_n, bool *out_present);
bool si_attr_type(si_op_t *si, const char *name, MlirType *out);
/* A DenseElementsAttr (int or float); null attr when absent. */
bool si_attr_elements(si_op_t *si, const char *name, MlirAttribute *out);

/* Normalises axis `axis` into [0, rank) (negative counts from the end);
 * false with "axis 5 out of range for rank 4" otherwise. */
bool si_axis(si_op_t *si, int64_t axis, int rank, int *out);

/* Element type classes. */
bool si_is_float(MlirType t);
bool si_is_bool(MlirType t);
bool si_is_int(MlirType t); /* integer other than i1 */
bool si_is_numeric(MlirType t);
bool si_is_index_type(MlirType t); /* i32 or i64 */
bool si_is_i64(MlirType t);

/* Formats a shape ("2x?x3", "scalar", "unranked") or type into buf. */
const char *si_shape_str(const si_shape_t *s, char *buf, size_t size);
const char *si_type_str(MlirType t, char *buf, size_t size);

/* Shape helpers. */
void si_shape_unranked(si_shape_t *s);
bool si_shape_is_static(const si_shape_t *s);
/* Product of the dims, or SI_DYN when one is unknown or it overflows. */
int64_t si_shape_numel(const si_shape_t *s);
bool si_type_from_mlir(MlirType t, si_type_t *out); /* false: not a tensor */
MlirType si_type_to_mlir(MlirType elem, const si_shape_t *s);

/* Multidirectional (numpy) broadcast of `n` shapes; false with "operands 2x3
 * and 4x3 do not broadcast" on a conflict. */
bool si_broadcast(si_op_t *si, const si_shape_t *const *shapes, int n,
                  si_shape_t *out);

/* Requires operand slots to share an element type; false with a message. */
bool si_same_elem(si_op_t *si, MlirType a, MlirType b, const char *what);

/* ---- rule functions (one per op family) --------------------------------- */

typedef bool (*si_rule_fn)(si_op_t *si);

bool si_rule_unary_float(si_op_t *si);
bool si_rule_unary_numeric(si_op_t *si);
bool si_rule_unary_any(si_op_t *si);
bool si_rule_binary_arith(si_op_t *si);
bool si_rule_pow(si_op_t *si);
bool si_rule_compare(si_op_t *si);
bool si_rule_equal(si_op_t *si);
bool si_rule_logic(si_op_t *si);
bool si_rule_not(si_op_t *si);
bool si_rule_all_reduce(si_op_t *si);
bool si_rule_grad_ready(si_op_t *si);
bool si_rule_where(si_op_t *si);
bool si_rule_variadic(si_op_t *si);
bool si_rule_cast(si_op_t *si);
bool si_rule_clip(si_op_t *si);
bool si_rule_dropout(si_op_t *si);

bool si_rule_constant(si_op_t *si);
bool si_rule_weight(si_op_t *si);
bool si_rule_no_results(si_op_t *si);
bool si_rule_constant_of_shape(si_op_t *si);
bool si_rule_shape(si_op_t *si);
bool si_rule_reshape(si_op_t *si);
bool si_rule_squeeze(si_op_t *si);
bool si_rule_unsqueeze(si_op_t *si);
bool si_rule_transpose(si_op_t *si);
bool si_rule_expand(si_op_t *si);
bool si_rule_flatten(si_op_t *si);

bool si_rule_gather(si_op_t *si);
bool si_rule_concat(si_op_t *si);
bool si_rule_slice(si_op_t *si);
bool si_rule_split(si_op_t *si);
bool si_rule_range(si_op_t *si);

bool si_rule_matmul(si_op_t *si);
bool si_rule_gemm(si_op_t *si);
bool si_rule_conv(si_op_t *si);
bool si_rule_pool(si_op_t *si);
bool si_rule_global_pool(si_op_t *si);
bool si_rule_reduce(si_op_t *si);
bool si_rule_softmax(si_op_t *si);
bool si_rule_sce_loss(si_op_t *si);
bool si_rule_layer_norm(si_op_t *si);
bool si_rule_batch_norm(si_op_t *si);
bool si_rule_trilu(si_op_t *si);
bool si_rule_cumsum(si_op_t *si);

/* rules_grad_index.c: gradients of Gather, Slice, Softmax, LogSoftmax and
 * SoftmaxCrossEntropyLoss. */
bool si_rule_gather_grad(si_op_t *si);
bool si_rule_slice_grad(si_op_t *si);
bool si_rule_softmax_grad(si_op_t *si);
/* rules_fused.c: the ops moai-fuse makes and their gradients. */
bool si_rule_attention(si_op_t *si);
bool si_rule_attention_grad(si_op_t *si);
bool si_rule_rms_norm(si_op_t *si);
bool si_rule_rms_norm_grad(si_op_t *si);
bool si_rule_swiglu(si_op_t *si);
bool si_rule_swiglu_grad(si_op_t *si);
bool si_rule_rotary(si_op_t *si);
bool si_rule_rotary_grad(si_op_t *si);
bool si_rule_sce_grad(si_op_t *si);
bool si_rule_conv_grad(si_op_t *si); /* conv_grad_input, conv_grad_weight */
bool si_rule_max_pool_grad(si_op_t *si);
bool si_rule_average_pool_grad(si_op_t *si);
bool si_rule_batch_norm_grad(si_op_t *si);
bool si_rule_layer_norm_grad(si_op_t *si);

/* ---- shared rule pieces ------------------------------------------------- */

/* Requires operand slot `slot` (type t) to satisfy ok(); false with
 * "operand 'x' must be <expected>, got ..." otherwise. */
bool si_need(si_op_t *si, int slot, const si_type_t *t, bool (*ok)(MlirType),
             const char *expected);
/* Requires its rank (when known) to lie in [min, max]. */
bool si_need_rank(si_op_t *si, int slot, const si_type_t *t, int min, int max);

/* Two dims that must agree unless one is unknown. */
static inline bool si_dims_agree(int64_t a, int64_t b) {
  return a == SI_DYN || b == SI_DYN || a == b;
}
/* Dim i of s, or SI_DYN when s is unranked. */
static inline int64_t si_dim_or_dyn(const si_shape_t *s, int i) {
  return s->rank == SI_UNRANKED ? SI_DYN : s->dims[i];
}

/* Conv and pooling windows (rules_nn.c): n spatial axes with kernel sizes
 * (set by the caller), strides, dilations, pads and auto_pad. */
typedef enum si_pad_mode_e {
  SI_PAD_NOTSET,
  SI_PAD_SAME_UPPER,
  SI_PAD_SAME_LOWER,
  SI_PAD_VALID
} si_pad_mode_t;

typedef struct si_window_t {
  int n; /* spatial rank */
  int64_t kernel[SI_MAX_RANK], strides[SI_MAX_RANK], dilations[SI_MAX_RANK];
  int64_t pads[2 * SI_MAX_RANK];
  si_pad_mode_t mode;
  bool ceil_mode;
} si_window_t;

/* Reads strides, dilations, pads, auto_pad (and ceil_mode) for w->n axes. */
bool si_window_read(si_op_t *si, si_window_t *w, bool has_ceil);
/* Output size of spatial axis i for input size `in` (ONNX
 * convPoolShapeInference; SI_DYN when in or the kernel is unknown). */
bool si_window_dim(si_op_t *si, const si_window_t *w, int i, int64_t in,
                   int64_t *out);

/* Normalised, checked axes of Squeeze/Unsqueeze/Reduce: `n` values from
 * `axes` against `rank`; marks them in `mask` (SI_MAX_RANK bools). False on
 * an out-of-range or repeated axis. */
bool si_axes_mask(si_op_t *si, const int64_t *axes, int n, int rank,
                  bool *mask);

/* The per-axis start, step and size of a Slice of `dims` (rank `rank`),
 * identity for axes not sliced. SI_CONST_UNKNOWN when starts/ends/axes/
 * steps are not constants. */
typedef struct si_slice_t {
  int64_t start[SI_MAX_RANK], step[SI_MAX_RANK], size[SI_MAX_RANK];
} si_slice_t;
si_const_t si_slice_params(si_op_t *si, const si_shape_t *data,
                           si_slice_t *out);

/* The axis that Reduce* reduce: SI_CONST_OK with mask filled (reduced axes
 * true; all when there are no axes, none with noop_with_empty_axes). */
si_const_t si_reduce_axes(si_op_t *si, int rank, bool *mask, bool *out_keep);

/* Range's element count for constant start/limit/delta. */
si_const_t si_range_count(si_op_t *si, int64_t *out_n);

/* ---- tensor_const.c ------------------------------------------------------ */

/* The DenseElementsAttr of a value defined by moai.constant, or null. */
MlirAttribute si_const_attr(MlirValue v);

/* The integer values of operand value `v` (a constant, or a moai.shape of a
 * statically shaped tensor): at most `cap` values into buf, count into
 * *out_n. SI_CONST_ERROR (with a diagnostic naming `what`) for floats or too
 * many values. */
si_const_t si_const_ints(si_op_t *si, MlirValue v, const char *what,
                         int64_t *buf, int64_t cap, int64_t *out_n);
/* One scalar (a one-element constant) as a double and, for integers, an
 * exact int64. */
si_const_t si_const_scalar(si_op_t *si, MlirValue v, const char *what,
                           double *out_f, int64_t *out_i, bool *out_is_int);

/* A host copy of a constant for folding. Integers (and i1 as 0/1) are kept
 * as int64, floats as double; only i1, i8, i16, i32, i64, f32, f64. */
typedef struct si_tensor_t {
  MlirType elem;
  bool is_float;
  si_shape_t shape; /* static */
  int64_t count;
  int64_t *iv; /* integers, when !is_float */
  double *fv;  /* floats, when is_float */
} si_tensor_t;

bool si_elem_foldable(MlirType elem);
/* Allocates a tensor of `elem` and static `shape` (zeroed); false if memory
 * runs out. */
bool si_tensor_alloc(si_tensor_t *t, MlirType elem, const si_shape_t *shape);
void si_tensor_free(si_tensor_t *t);
/* Reads a DenseElementsAttr; false if its type is not foldable or it has
 * more than `max_elements` elements, or memory runs out. */
bool si_tensor_from_attr(MlirAttribute attr, int64_t max_elements,
                         si_tensor_t *out);
/* Builds a DenseElementsAttr of the tensor (values wrapped/rounded to its
 * element type). */
MlirAttribute si_tensor_to_attr(const si_tensor_t *t);
/* Stores value `src_i`/`src_f` of a source of kind `src_is_float` into
 * element i of t, converting as ONNX Cast does; false if the conversion
 * has no defined result (NaN or out-of-range float to integer). */
bool si_tensor_store(si_tensor_t *t, int64_t i, bool src_is_float,
                     int64_t src_i, double src_f);
/* Wraps an integer to the width of `elem` (i1: 0/1). */
int64_t si_wrap_int(MlirType elem, int64_t v);

/* ---- fold.c / fold_shape.c ---------------------------------------------- */

typedef enum si_fold_e {
  SI_FOLD_NO = 0,   /* not folded (not foldable, too big, undefined value) */
  SI_FOLD_DONE = 1, /* *out_attr holds the result */
  SI_FOLD_ERROR = 2 /* malformed constant input; diagnostic emitted */
} si_fold_t;

/* Whether op `mnemonic` has a folder. */
bool si_fold_supported(const char *mnemonic, size_t len);

/* Evaluates a single-result op whose operands are all constants (or a
 * moai.shape of a static tensor) into a DenseElementsAttr of its result
 * type, which must be static with at most max_elements elements. */
si_fold_t si_fold(MlirOperation op, int64_t max_elements,
                  MlirAttribute *out_attr);

/* Folders of the shape ops (fold_shape.c), given the op view, the host
 * inputs (slot-indexed; count inputs) and an allocated output. */
typedef si_fold_t (*si_folder_fn)(si_op_t *si, si_tensor_t *in, int n_in,
                                  si_tensor_t *out);
si_fold_t si_fold_gather(si_op_t *si, si_tensor_t *in, int n, si_tensor_t *out);
si_fold_t si_fold_concat(si_op_t *si, si_tensor_t *in, int n, si_tensor_t *out);
si_fold_t si_fold_slice(si_op_t *si, si_tensor_t *in, int n, si_tensor_t *out);
si_fold_t si_fold_expand(si_op_t *si, si_tensor_t *in, int n, si_tensor_t *out);
si_fold_t si_fold_transpose(si_op_t *si, si_tensor_t *in, int n,
                            si_tensor_t *out);
si_fold_t si_fold_constant_of_shape(si_op_t *si, si_tensor_t *in, int n,
                                    si_tensor_t *out);
si_fold_t si_fold_range(si_op_t *si, si_tensor_t *in, int n, si_tensor_t *out);
si_fold_t si_fold_reduce(si_op_t *si, si_tensor_t *in, int n, si_tensor_t *out);

/* Offset in a tensor of shape `from` (broadcast to `to`, aligned right) of
 * the element at multi-index `idx` of `to`. */
int64_t si_bcast_offset(const si_shape_t *from, const si_shape_t *to,
                        const int64_t *idx);
/* Advances a multi-index over `s` (row-major); false after the last. */
bool si_index_next(const si_shape_t *s, int64_t *idx);

#endif /* MOAI_PASSES_SHAPE_INFER_INTERNAL_H */
