/* Locations of model nodes and the diagnostic handler that prints MLIR
 * diagnostics as `file: node 'name' (OpType): message`.
 *
 * A node's location is loc(fused<"OpType">["file":index:1 named "node"]):
 * a FusedLoc whose metadata is the op type, around a NameLoc of the node name
 * whose child is the file and 1-based node index. Other locations print as
 * MLIR prints them. */
#ifndef MOAI_IR_DIAG_H
#define MOAI_IR_DIAG_H

#include <stdbool.h>
#include <stdio.h>

#include "base/allocator.h"
#include "base/status.h"
#include "ir/strbuf.h"
#include "mlir-c/Diagnostics.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The location of node number `index` (0-based) of a model file. */
MlirLocation moai_loc_node(MlirContext ctx, const char *file,
                           const char *node_name, const char *op_type,
                           long index);

/* Formats a location as moai prints it ("m.onnx: node 'n' (Softmax)" or
 * "x.mlir:3:5") into `sb`. */
void moai_loc_format(MlirLocation loc, moai_strbuf_t *sb);

/* Where diagnostics go: they are printed to `stream` (when non-NULL) and the
 * first error is kept in `first_error` (owned, freed by detach). */
typedef struct moai_diag_sink_t {
  FILE *stream;
  bool print_notes;
  size_t error_count;
  char *first_error; /* formatted, from the system allocator */
  MlirContext ctx;
  MlirDiagnosticHandlerID id;
} moai_diag_sink_t;

/* Attaches a handler to `ctx` that formats every diagnostic into `sink`.
 * The sink must outlive the attachment. */
void moai_diag_attach(MlirContext ctx, moai_diag_sink_t *sink, FILE *stream);

/* Detaches the handler and frees the kept error. */
void moai_diag_detach(moai_diag_sink_t *sink);

/* A status for a failed step: the first error diagnostic if there was one,
 * else `fallback`. Clears the kept error. */
moai_status_t moai_diag_take_status(moai_diag_sink_t *sink,
                                    moai_status_code_t code,
                                    const char *fallback) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_IR_DIAG_H */
