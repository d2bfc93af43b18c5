/* Running pass pipelines on a module: the code moaicc and moai-opt share. */
#ifndef MOAI_DRIVER_PIPELINE_H
#define MOAI_DRIVER_PIPELINE_H

#include <stdbool.h>
#include <stdio.h>

#include "base/status.h"
#include "ir/diag.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The pipeline moaicc runs after import (inference and training alike, until
 * the backend passes arrive). */
#define MOAI_DEFAULT_PIPELINE "builtin.module(moai-shape-infer,moai-simplify,moai-fuse,moai-memory-plan)"
/* Forward + backward only (moaicc --gradients). */
#define MOAI_GRADIENTS_PIPELINE                                              \
  "builtin.module(moai-shape-infer,moai-simplify,moai-fuse,moai-autodiff,moai-simplify," \
  "moai-memory-plan)"
/* The pipeline of a training plan (moaicc --train). */
#define MOAI_TRAIN_PIPELINE                                                  \
  "builtin.module(moai-shape-infer,moai-simplify,moai-fuse,moai-autodiff,moai-simplify," \
  "moai-recompute,moai-optimizer,moai-simplify,moai-memory-plan)"

/* One device of a tensor- or pipeline-parallel training plan: the module
 * carries moai.parallel and moai.device (docs/passes.md, moai-partition). */
#define MOAI_DEVICE_TRAIN_PIPELINE                                           \
  "builtin.module(moai-partition,moai-shape-infer,moai-simplify,moai-fuse,moai-autodiff," \
  "moai-simplify,moai-recompute,moai-optimizer,moai-simplify,moai-memory-plan)"

typedef struct moai_pipeline_options_t {
  const char *pipeline;      /* textual, e.g. "builtin.module(moai-simplify)" */
  bool print_ir_after_all;   /* dump the module after every pass */
  bool print_ir_before_all;  /* dump the module before every pass */
  FILE *dump_stream;         /* where dumps go (MLIR prints to stderr) */
  bool verify_each;          /* verify after each pass (default on) */
} moai_pipeline_options_t;

/* Parses and runs `options->pipeline` on `module`. Passes report through the
 * context's diagnostics; `diag` (attached to the module's context) supplies
 * the message of the returned failure. */
moai_status_t moai_pipeline_run(MlirModule module,
                                const moai_pipeline_options_t *options,
                                moai_diag_sink_t *diag) MOAI_MUST_USE;

/* Verifies `module`; on failure returns the first diagnostic as a status. */
moai_status_t moai_module_verify(MlirModule module,
                                 moai_diag_sink_t *diag) MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_DRIVER_PIPELINE_H */
