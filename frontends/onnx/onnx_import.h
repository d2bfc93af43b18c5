/* The ONNX frontend: reads a .onnx model (protobuf, ai.onnx opsets 7 to 21,
 * external data included) into a module in the moai dialect.
 *
 * The module holds one `func.func @main` whose arguments are the graph
 * inputs that are not initializers and whose results are the graph outputs
 * (names in the `moai.name` entry of arg_attrs/res_attrs). Each node becomes
 * one `moai.<op>` op in graph order, upgraded to its opset-21 form (an older
 * form's attributes that became inputs turn into `moai.constant` operands;
 * a Softmax before opset 13 over more than its last axis becomes Flatten,
 * Softmax and Reshape), with every attribute that has a default set; its
 * location names the file, the node and the op type (see ir/diag.h).
 * Result types come from moai_shape_infer_op, checked against the model's
 * value_info.
 *
 * Initializers: float ones become `moai.weight` ops that carry name,
 * trainable (0/1), storage ("raw": raw_data inside the model file,
 * "external": an external data file, "field": typed fields such as
 * float_data, "absent": no data) and, for raw and external, file, offset and
 * length of the bytes; the bytes themselves are never read or copied beyond
 * what protobuf parsing does. Initializers whose data is in the model file
 * become `moai.constant` when non-float with at most
 * MOAI_ONNX_MAX_INLINE_ELEMENTS elements, or frozen float with at most
 * MOAI_ONNX_MAX_INLINE_FLOAT_ELEMENTS; other non-float ones become frozen
 * weights. Constant nodes become `moai.constant`.
 *
 * Module attributes: `moai.source` (the model path as given), `moai.opset`,
 * `moai.producer`, `moai.trainable_parameters` (array of names: the options'
 * list when given, else the JSON list in the model metadata key
 * `moai.trainable_parameters`, else every float initializer whose name does
 * not start with "onnx::" or "/" (PyTorch's folded constants); minus the
 * options' frozen list).
 *
 * Errors are statuses whose message names the file, and the node and op
 * type where one is at fault: `m.onnx: node 'n3' (Foo): unsupported op Foo
 * (opset 17)`. Any input, however malformed, yields a status, never a
 * crash. */
#ifndef MOAI_FRONTENDS_ONNX_IMPORT_H
#define MOAI_FRONTENDS_ONNX_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/allocator.h"
#include "base/status.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ai.onnx opsets the importer accepts. */
#define MOAI_ONNX_MIN_OPSET 7
#define MOAI_ONNX_MAX_OPSET 21
/* Size limits for initializers held inline as moai.constant. */
#define MOAI_ONNX_MAX_INLINE_ELEMENTS 4096
#define MOAI_ONNX_MAX_INLINE_FLOAT_ELEMENTS 16

typedef struct moai_onnx_import_options_t {
  /* "name=2x16" entries fixing graph-input shapes (for symbolic dims);
   * "name=" is a scalar. Borrowed for the call. */
  const char *const *input_shapes;
  size_t input_shape_count;
  /* "param=N" entries giving every symbolic dimension named `param` (the
   * export's dynamic axis name, e.g. "batch") the size N, in every graph
   * input that has it. An input shape entry for an input wins. Borrowed. */
  const char *const *dim_values;
  size_t dim_value_count;
  /* When non-NULL, exactly these initializers are trainable. */
  const char *const *trainable;
  size_t trainable_count;
  /* Initializers excluded from training. */
  const char *const *frozen;
  size_t frozen_count;
  /* Fail when an external data file is missing. Off, a missing file is not
   * an import error (the bytes are read only when a plan is written). */
  bool check_external_data;
} moai_onnx_import_options_t;

/* The options tools use by default: no shapes or lists, external data
 * files checked. (A zeroed struct is valid too and checks nothing.) */
moai_onnx_import_options_t moai_onnx_import_options_default(void);

/* Imports the model at `path` into a new module owned by the caller
 * (*out_module untouched on failure). External data files are looked for in
 * the model's directory. `options` may be NULL (a zeroed struct). Memory the
 * importer itself uses comes from `allocator` (MLIR's does not). */
moai_status_t moai_onnx_import_file(MlirContext ctx, const char *path,
                                    const moai_onnx_import_options_t *options,
                                    moai_allocator_t allocator,
                                    MlirModule *out_module) MOAI_MUST_USE;

/* Same from `size` bytes at `data` (borrowed for the call); `display_name`
 * names the model in errors, locations and the weights' `file`, `base_dir`
 * is where external data files are looked for (NULL: the current
 * directory). */
moai_status_t moai_onnx_import_buffer(MlirContext ctx, const void *data,
                                      size_t size, const char *display_name,
                                      const char *base_dir,
                                      const moai_onnx_import_options_t *options,
                                      moai_allocator_t allocator,
                                      MlirModule *out_module) MOAI_MUST_USE;

/* Reads the data of initializer `name` of the model at `path` into `dst`,
 * exactly `nbytes` bytes (its element count times element size; bools one
 * byte each), decoding typed fields (float_data, int32_data, ...) into
 * little-endian element bytes. For weights whose storage is "field": the
 * plan writer calls it when it writes a weights file. Re-reads the model
 * each call. */
moai_status_t moai_onnx_read_initializer(const char *path, const char *name,
                                         void *dst, uint64_t nbytes) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_FRONTENDS_ONNX_IMPORT_H */
