/* Internal to the operator translation (aten*.c): how one call is seen by
 * its handler, argument readers, the op builder and compile-time tensors.
 *
 * A handler gets its arguments by the slots of its schema (positional ones
 * first, then keywords by name; NULL when not given), appends moai ops
 * through ts_op / ts_build, and sets *c->out. Compile-time tensors
 * (`konst`) are computed here whenever every input is known, so that sizes,
 * masks and scalar arithmetic never reach the IR. */
#ifndef MOAI_FRONTENDS_TORCHSCRIPT_ATEN_INTERNAL_H
#define MOAI_FRONTENDS_TORCHSCRIPT_ATEN_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "torchscript/value.h"

#define TS_MAX_SLOTS 16

typedef struct ts_call_t ts_call_t;
typedef moai_status_t (*ts_handler_t)(ts_call_t *c);

typedef struct ts_op_entry_t {
  const char *name;   /* "torch.add" (ops.aten.add is the same entry) */
  const char *schema; /* "self,other,alpha": slot names, in order */
  ts_handler_t fn;
  const char *aux;    /* a moai mnemonic or variant for shared handlers */
} ts_op_entry_t;

struct ts_call_t {
  moai_ts_emit_t *em;
  const char *fn; /* the name as called, for errors */
  const ts_op_entry_t *entry;
  moai_ts_value_t *a[TS_MAX_SLOTS];
  size_t n_slots;
  size_t n_positional; /* how many were given positionally */
  moai_ts_value_t *out;
};

/* The tables of each file, NULL-name terminated. */
extern const ts_op_entry_t ts_ops_math[];
extern const ts_op_entry_t ts_ops_shape[];
extern const ts_op_entry_t ts_ops_nn[];

/* --- errors */
moai_status_t ts_err(const ts_call_t *c, moai_status_code_t code,
                     const char *fmt, ...) MOAI_PRINTF(3, 4) MOAI_MUST_USE;
#define TS_OOM(c) ts_err((c), MOAI_OUT_OF_MEMORY, "out of memory")

/* --- values */
bool ts_is_none(const moai_ts_value_t *v); /* NULL or NONE */
bool ts_is_tensor(const moai_ts_value_t *v);
bool ts_is_number(const moai_ts_value_t *v); /* BOOL, INT or FLOAT */
moai_ts_value_t *ts_new(ts_call_t *c, moai_ts_kind_t kind);
moai_ts_value_t *ts_new_int(ts_call_t *c, int64_t i);
moai_ts_value_t *ts_new_tensor(ts_call_t *c, MlirValue v);
/* A value holding a list (kind LIST or TUPLE) of n items. */
moai_ts_value_t *ts_new_seq(ts_call_t *c, moai_ts_kind_t kind, size_t n);

/* Argument readers: slot `i`; `def` when absent or None (required when
 * `has_def` is false). Ints accept bools and known 0-dim integer tensors;
 * floats accept ints too. */
moai_status_t ts_arg_int(ts_call_t *c, size_t i, bool has_def, int64_t def,
                         int64_t *out) MOAI_MUST_USE;
moai_status_t ts_arg_float(ts_call_t *c, size_t i, bool has_def, double def,
                           double *out) MOAI_MUST_USE;
moai_status_t ts_arg_bool(ts_call_t *c, size_t i, bool def,
                          bool *out) MOAI_MUST_USE;
/* A list of ints (or one int, repeated `single_repeat` times when > 0). */
moai_status_t ts_arg_ints(ts_call_t *c, size_t i, int64_t *out, size_t cap,
                          size_t single_repeat, size_t *out_n) MOAI_MUST_USE;
moai_status_t ts_arg_tensor(ts_call_t *c, size_t i,
                            moai_ts_value_t **out) MOAI_MUST_USE;
/* An int-valued item (INT, BOOL or known 0-dim integer tensor). */
bool ts_value_int(const moai_ts_value_t *v, int64_t *out);
bool ts_value_float(const moai_ts_value_t *v, double *out);

/* --- tensors */
/* dtype of a tensor (torch codes); -1 for an element type moai does not
 * translate. */
int ts_dtype(const moai_ts_value_t *v);
/* Static rank and dims; false when unknown (unranked or dynamic). */
bool ts_shape(const moai_ts_value_t *v, int *out_rank, int64_t *dims);
/* Like ts_shape but an error naming the operator when unknown. */
moai_status_t ts_need_shape(ts_call_t *c, const moai_ts_value_t *v,
                            int *out_rank, int64_t *dims) MOAI_MUST_USE;
MlirType ts_elem_type(MlirContext ctx, int dtype);
const char *ts_dtype_name(int dtype);
bool ts_dtype_is_float(int dtype);
moai_status_t ts_value(ts_call_t *c, moai_ts_value_t *v,
                       MlirValue *out) MOAI_MUST_USE;
/* The tensor (or number) as an MLIR value of `dtype`: numbers and known
 * tensors become constants of that type, others a moai.cast when needed. */
moai_status_t ts_value_as(ts_call_t *c, moai_ts_value_t *v, int dtype,
                          MlirValue *out) MOAI_MUST_USE;
/* Normalises a dim (-1 = last) against `rank`; error when out of range. */
moai_status_t ts_norm_dim(ts_call_t *c, int64_t dim, int rank,
                          int64_t *out) MOAI_MUST_USE;

/* --- compile-time tensors */
moai_ts_const_t *ts_konst_new(ts_call_t *c, int dtype, int rank,
                              const int64_t *dims);
moai_ts_value_t *ts_konst_value(ts_call_t *c, moai_ts_const_t *k);
/* The known data of a tensor or number (numbers as wrapped 0-dim tensors:
 * INT -> I64, FLOAT -> F64, BOOL -> BOOL); NULL when not known. */
moai_ts_const_t *ts_known(ts_call_t *c, moai_ts_value_t *v);
double ts_k_getf(const moai_ts_const_t *k, int64_t i);
int64_t ts_k_geti(const moai_ts_const_t *k, int64_t i);
void ts_k_setf(moai_ts_const_t *k, int64_t i, double x);
void ts_k_seti(moai_ts_const_t *k, int64_t i, int64_t x);
/* `k` converted to dtype (a copy; `k` itself when already so). */
moai_ts_const_t *ts_k_convert(ts_call_t *c, moai_ts_const_t *k, int dtype);
int64_t ts_numel(int rank, const int64_t *dims);

/* PyTorch's result type of an elementwise op over tensors and numbers:
 * dimensioned tensors over 0-dim tensors over numbers (wrapped numbers),
 * a higher category (bool < int < float) from a lower priority group
 * giving that category's default (float32, int64) for numbers. */
moai_status_t ts_result_type(ts_call_t *c, moai_ts_value_t **vs, size_t n,
                             int *out) MOAI_MUST_USE;

/* --- the op builder */
typedef struct ts_attr_t {
  const char *name;
  MlirAttribute value;
} ts_attr_t;
MlirAttribute ts_attr_i64(ts_call_t *c, int64_t v);
MlirAttribute ts_attr_f32(ts_call_t *c, double v);
MlirAttribute ts_attr_str(ts_call_t *c, const char *s);
MlirAttribute ts_attr_ints(ts_call_t *c, const int64_t *v, size_t n);

/* Builds moai.<mnemonic>: `entries` holds one value per operand entry of
 * the op table (a null value: an absent optional one; a variadic entry
 * takes `n_variadic` values starting there); attributes not given take the
 * table's defaults; `n_results` results (the first ones of the table, a
 * variadic result taking them all), types inferred. */
moai_status_t ts_build(ts_call_t *c, const char *mnemonic,
                       const MlirValue *values, size_t n_values,
                       const ts_attr_t *attrs, size_t n_attrs,
                       size_t n_results, MlirValue *results) MOAI_MUST_USE;
/* A one-result op whose operand entries are all single or optional. */
moai_status_t ts_op(ts_call_t *c, const char *mnemonic, const MlirValue *ops,
                    size_t n_ops, const ts_attr_t *attrs, size_t n_attrs,
                    MlirValue *out) MOAI_MUST_USE;
/* Sets the call's result to the tensor v and returns (an op's last step). */
#define OUT_TENSOR(c, v)                                  \
  do {                                                    \
    (c)->out = ts_new_tensor((c), (v));                   \
    return (c)->out ? moai_ok_status() : TS_OOM(c);       \
  } while (0)

/* moai.<mnemonic>(x, [v...]): an op whose second operand is a 1-D int64
 * constant (reshape's shape, squeeze's axes, expand's size). */
moai_status_t ts_op_ints(ts_call_t *c, const char *mnemonic, MlirValue x, const int64_t *v,
                         size_t n, MlirValue *out) MOAI_MUST_USE;
/* Constants: a 1-D int64 tensor, a 0-dim one, and a 0-dim of `dtype`. */
moai_status_t ts_const_i64s(ts_call_t *c, const int64_t *v, size_t n,
                            MlirValue *out) MOAI_MUST_USE;
moai_status_t ts_const_scalar(ts_call_t *c, int dtype, double x,
                              MlirValue *out) MOAI_MUST_USE;
moai_status_t ts_cast(ts_call_t *c, MlirValue v, int dtype,
                      MlirValue *out) MOAI_MUST_USE;
/* The defining op's name is `name` ("moai.log_softmax"). */
bool ts_defined_by(MlirValue v, const char *name, MlirOperation *out_op);

#endif /* MOAI_FRONTENDS_TORCHSCRIPT_ATEN_INTERNAL_H */
