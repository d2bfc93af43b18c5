/* The `moai` dialect's op table: the single source of truth for the ops, their
 * operands, results and attributes. The IRDL definition loaded into every
 * context is generated from it (moai_dialect_irdl_text), the ONNX importer
 * maps node attributes through it, and passes look ops up in it.
 *
 * moai ops follow ONNX opset 21 semantics: the importer upgrades older
 * forms (for example ReduceMean's `axes` attribute before opset 18 becomes a
 * constant operand). Two ops exist only in moai: `moai.constant` (a small
 * inline tensor) and `moai.weight` (a named tensor whose bytes stay in the
 * model file). */
#ifndef MOAI_IR_OP_DEFS_H
#define MOAI_IR_OP_DEFS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MOAI_OP_MAX_OPERANDS 8
#define MOAI_OP_MAX_RESULTS 4
#define MOAI_OP_MAX_ATTRS 10

/* default_text of an attribute the node must set (no default). */
#define MOAI_ATTR_REQUIRED "\x01required"

typedef enum moai_attr_kind_e {
  MOAI_ATTR_INT,    /* IntegerAttr i64 */
  MOAI_ATTR_FLOAT,  /* FloatAttr f32 */
  MOAI_ATTR_STRING, /* StringAttr */
  MOAI_ATTR_INTS,   /* DenseI64ArrayAttr: array<i64: ...> */
  MOAI_ATTR_FLOATS, /* DenseF32ArrayAttr: array<f32: ...> */
  MOAI_ATTR_TENSOR, /* DenseElementsAttr (dense<...> : tensor<...>) */
  MOAI_ATTR_TYPE,   /* TypeAttr holding an element type (Cast's `to`) */
} moai_attr_kind_t;

typedef enum moai_arity_e {
  MOAI_ARITY_SINGLE = 0, /* exactly one value */
  MOAI_ARITY_OPTIONAL,   /* zero or one */
  MOAI_ARITY_VARIADIC,   /* any number (at least one for operands) */
} moai_arity_t;

typedef struct moai_attr_def_t {
  const char *name; /* NULL ends the list */
  moai_attr_kind_t kind;
  /* Default when the node does not set it, in text: "1", "-1.5", "NOTSET",
   * "0,0" for lists, "" for an empty list. NULL: the attribute is optional
   * (absent means what ONNX says absence means; not declared in IRDL). */
  const char *default_text;
} moai_attr_def_t;

typedef struct moai_value_def_t {
  const char *name; /* NULL ends the list */
  moai_arity_t arity;
} moai_value_def_t;

/* Flags describing an op for passes. */
enum {
  MOAI_OP_FLAG_ELEMENTWISE = 1u << 0, /* numpy-broadcasting n-ary op */
  MOAI_OP_FLAG_NO_GRAD = 1u << 1,     /* outputs carry no gradient */
  MOAI_OP_FLAG_RANDOM = 1u << 2,      /* not pure: never CSE'd */
  MOAI_OP_FLAG_SIDE_EFFECT = 1u << 3, /* writes an operand in place (training
                                         state): never CSE'd or removed */
};

typedef struct moai_op_def_t {
  const char *onnx_type; /* ONNX op type, NULL for moai-only ops */
  const char *name;      /* mnemonic: "matmul" is `moai.matmul` */
  int min_opset;         /* first ai.onnx opset that defines this form */
  moai_value_def_t operands[MOAI_OP_MAX_OPERANDS];
  moai_value_def_t results[MOAI_OP_MAX_RESULTS];
  moai_attr_def_t attrs[MOAI_OP_MAX_ATTRS];
  uint32_t flags;
  const char *summary; /* one line, for docs and --help */
} moai_op_def_t;

/* All ops, in a stable order; *out_count receives their number. */
const moai_op_def_t *moai_op_defs(size_t *out_count);

/* Looks an op up by ONNX op type ("MatMul"); NULL if unsupported. */
const moai_op_def_t *moai_op_def_find_onnx(const char *onnx_type);

/* Looks an op up by its full name ("moai.matmul") or mnemonic ("matmul");
 * `len` is the name's length. NULL if unknown. */
const moai_op_def_t *moai_op_def_find(const char *name, size_t len);

/* Number of operand (result) entries in a definition. */
size_t moai_op_def_operand_count(const moai_op_def_t *def);
size_t moai_op_def_result_count(const moai_op_def_t *def);

/* Variadic operands and results.
 *
 * IRDL binds every value of one variadic slot to a single type, which would
 * force all inputs of a Concat (or outputs of a Split) to have the same
 * shape. So in the IRDL definition each variadic slot of the table becomes
 * MOAI_VARIADIC_SLOTS optional slots (`inputs_0` ... `inputs_7`), each with
 * its own constraint, and ops with a variadic slot always carry
 * `operandSegmentSizes` / `resultSegmentSizes` at that IRDL level. The
 * helpers below translate between the table's view (one count per table
 * entry) and the attribute. An op needing more values than that (a Concat of
 * 20 tensors) is built as a chain by its producer (the importer). */
#define MOAI_VARIADIC_SLOTS 8

/* Whether ops of this definition carry `operandSegmentSizes`
 * (`resultSegmentSizes`): more than one non-single entry, or a variadic one. */
bool moai_op_def_needs_operand_segments(const moai_op_def_t *def);
bool moai_op_def_needs_result_segments(const moai_op_def_t *def);

/* Number of IRDL-level slots (entries of the segment attribute). */
size_t moai_op_def_irdl_slots(const moai_op_def_t *def, bool results);

/* Encodes table-level counts (one per table entry) as the IRDL-level segment
 * sizes in out_sizes (capacity `cap`); *out_count receives their number.
 * Returns false if a count does not fit its entry (a single entry not 1, an
 * optional one above 1, a variadic one above MOAI_VARIADIC_SLOTS). */
bool moai_op_def_encode_segments(const moai_op_def_t *def, bool results,
                                 const int32_t *counts, int32_t *out_sizes,
                                 size_t cap, size_t *out_count);

/* Decodes an op's segment attribute (`sizes`, `n` entries) into table-level
 * counts; false if it does not fit the definition (including a variadic slot
 * with gaps). */
bool moai_op_def_decode_segments(const moai_op_def_t *def, bool results,
                                 const int32_t *sizes, size_t n,
                                 int32_t *out_counts);

/* The attribute definition called `name`, or NULL. */
const moai_attr_def_t *moai_op_def_find_attr(const moai_op_def_t *def,
                                             const char *name);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IR_OP_DEFS_H */
