/* The `moai` dialect: IRDL text generated from the op table, loading it into
 * a context, and creating contexts ready for moai work. */
#ifndef MOAI_IR_DIALECT_H
#define MOAI_IR_DIALECT_H

#include "base/allocator.h"
#include "base/status.h"
#include "ir/op_defs.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the dialect's IRDL definition (an `irdl.dialect @moai` module, the
 * text `mlir-opt --irdl-file=` accepts) into a NUL-terminated string from
 * `allocator`, owned by the caller. */
moai_status_t moai_dialect_irdl_text(moai_allocator_t allocator,
                                     char **out_text) MOAI_MUST_USE;

/* Loads the moai dialect into `ctx` (which must have the irdl dialect
 * registered). Loading twice is harmless. */
moai_status_t moai_dialect_load(MlirContext ctx) MOAI_MUST_USE;

/* Creates a context with every upstream dialect and pass registered and the
 * moai dialect loaded. Threading is disabled so diagnostics arrive in order;
 * pass `multithreaded` to keep MLIR's thread pool. The caller owns the
 * context (mlirContextDestroy). */
moai_status_t moai_context_create(bool multithreaded,
                                  MlirContext *out_ctx) MOAI_MUST_USE;

/* The attribute the op table's default text gives `def` ("1", "-1.5",
 * "NOTSET", "0,0", "" for an empty list) in `ctx`: i64, f32 FloatAttr,
 * StringAttr, array<i64>, array<f32>. False when the attribute has no
 * default (optional or required) or its text does not parse. Shared by the
 * importer (attributes a node leaves out) and passes that build ops. */
bool moai_attr_default(MlirContext ctx, const moai_attr_def_t *def,
                       MlirAttribute *out);

/* Creates (not inserts) moai.<name> at `loc`: `in` holds one value per
 * operand entry of the op table (a null value for an absent optional entry;
 * the variadic entry takes `n_variadic` consecutive values), `res` the
 * n_res result types; attributes the op table gives a default and `attrs`
 * leaves out get it, and the segment-size attributes are added where the op
 * needs them. A null op, with the reason in err, when the op is unknown,
 * a single operand is missing or the creation fails. */
MlirOperation moai_op_build(MlirContext ctx, MlirLocation loc, const char *name,
                            const MlirValue *in, int n_in, int n_variadic,
                            const MlirType *res, int n_res, const MlirNamedAttribute *attrs,
                            int n_attrs, char *err, size_t err_size);

/* Whether `v` is the result of a moai.constant holding one value (a splat,
 * or a single element) of f32, f64, i1, i32 or i64; that value as a double
 * in *out. */
bool moai_const_scalar(MlirValue v, double *out);

/* Whether `op` is a moai op ("moai." prefix). */
bool moai_op_is_moai(MlirOperation op);

/* The func.func named `sym` directly inside `module`, or a null op. */
MlirOperation moai_module_func(MlirOperation module, const char *sym);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IR_DIALECT_H */
