/* The ONNX frontend: reads a .onnx model (protobuf, opsets 13 to 21,
 * external data included) into a module in the moai dialect.
 *
 * The module holds one `func.func @main` whose arguments are the graph
 * inputs and whose results are the graph outputs (names in the `moai.name`
 * argument/result attributes). Float initializers become `moai.weight` ops
 * that carry name, shape, dtype and where their bytes are (file, offset,
 * length); the bytes themselves are never read. Small non-float initializers
 * and Constant nodes become `moai.constant`. Every op's location names the
 * file, node and op type. Module attributes: `moai.source` (the model path),
 * `moai.opset`, `moai.producer`, `moai.trainable_parameters` (array of
 * names: the model metadata key of that name when present, else every float
 * initializer that is not a folded constant). */
#ifndef MOAI_FRONTENDS_ONNX_IMPORT_H
#define MOAI_FRONTENDS_ONNX_IMPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "base/allocator.h"
#include "base/status.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_onnx_import_options_t {
  /* "name=2x16" entries fixing graph-input shapes (for symbolic dims). */
  const char *const *input_shapes;
  size_t input_shape_count;
  /* When non-NULL, exactly these initializers are trainable. */
  const char *const *trainable;
  size_t trainable_count;
  /* Initializers excluded from training. */
  const char *const *frozen;
  size_t frozen_count;
  /* When set, an external data file that does not exist is an error; when
   * clear (shape-only models), weights may be absent. */
  bool check_external_data;
} moai_onnx_import_options_t;

/* Imports the model at `path` into a new module owned by the caller
 * (*out_module untouched on failure). Errors name the file, and the node and
 * op type where one is at fault. */
moai_status_t moai_onnx_import_file(MlirContext ctx, const char *path,
                                    const moai_onnx_import_options_t *options,
                                    moai_allocator_t allocator,
                                    MlirModule *out_module) MOAI_MUST_USE;

/* Same from bytes in memory; `display_name` names the model in errors and
 * locations, `base_dir` is where external data files are looked for. */
moai_status_t moai_onnx_import_buffer(MlirContext ctx, const void *data,
                                      size_t size, const char *display_name,
                                      const char *base_dir,
                                      const moai_onnx_import_options_t *options,
                                      moai_allocator_t allocator,
                                      MlirModule *out_module) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_ONNX_IMPORT_H */
