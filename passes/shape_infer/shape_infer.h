/* moai-shape-infer: gives every value of moai ops a static shape and dtype,
 * folding shape arithmetic (Shape -> Gather -> Concat -> Reshape/Expand
 * chains, ConstantOfShape, Range, ...) into moai.constant ops so later passes
 * see static shapes. Errors (rank mismatch, unknown dim, bad axis) are
 * diagnostics at the op's location. */
#ifndef MOAI_PASSES_SHAPE_INFER_H
#define MOAI_PASSES_SHAPE_INFER_H

#include <stdbool.h>
#include <stdint.h>

#include "base/status.h"
#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_shape_infer_options_t {
  /* Results with at most this many elements computed from constants are
   * folded into moai.constant ops. */
  int64_t max_fold_elements;
  /* Fail if any value is left without a static shape. */
  bool require_static;
} moai_shape_infer_options_t;

moai_shape_infer_options_t moai_shape_infer_options_default(void);

/* The pass, anchored on builtin.module; owned by the caller. */
MlirPass moai_shape_infer_pass_create(const moai_shape_infer_options_t *options);

/* Infers the result types of one op from its operand types (and constant
 * operands), setting them in place. Used by the importer as it builds ops.
 * Returns false after emitting a diagnostic at the op when the op is
 * malformed; leaves results unranked when shapes depend on values that are
 * not constant yet. */
bool moai_shape_infer_op(MlirOperation op);

/* The whole pass on `root`; false (with diagnostics) on failure. */
bool moai_shape_infer_run(MlirOperation root,
                          const moai_shape_infer_options_t *options);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_SHAPE_INFER_H */
