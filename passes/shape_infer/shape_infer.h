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
   * folded into moai.constant ops (0 turns folding off). Operands read for
   * folding may hold up to 16 times as many. */
  int64_t max_fold_elements;
  /* Fail if any value is left without a static shape. */
  bool require_static;
} moai_shape_infer_options_t;

/* Folding up to 65536 elements, static shapes required. */
moai_shape_infer_options_t moai_shape_infer_options_default(void);

/* The pass, anchored on builtin.module; owned by the caller. */
MlirPass moai_shape_infer_pass_create(const moai_shape_infer_options_t *options);

/* Infers the result types of one moai op from its operand types, its
 * attributes (absent ones take the op table's defaults) and the values of
 * operands defined by moai.constant (or moai.shape of a static tensor), and
 * sets them in place (ONNX opset-21 semantics). Used by the importer as it
 * builds ops. The element type is always determined; the shape as far as
 * known: dimensions the rules cannot know are taken from the result's
 * existing type (an importer's value_info), else left dynamic or unranked.
 * Returns false after emitting a diagnostic at the op when the op is
 * malformed ("Add: operands 2x3 and 4x3 do not broadcast"); never crashes on
 * odd operands or attributes. */
bool moai_shape_infer_op(MlirOperation op);

/* The whole pass on `root` (a module or a func.func; NULL options mean the
 * defaults): walks each function in order, infers every moai op, folds ops
 * whose operands are all constants into moai.constant (erasing constants
 * only they used), checks static shapes when asked to (reporting each
 * unknown where it starts: a dynamic argument, or the op whose shape depends
 * on a runtime value) and sets each function's result types to what it
 * returns, after checking them against the declared ones (an unranked
 * declaration is a placeholder). False, with diagnostics, on failure; a
 * function stops at its first malformed op. */
bool moai_shape_infer_run(MlirOperation root,
                          const moai_shape_infer_options_t *options);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_SHAPE_INFER_H */
