/* moai-auto-parallel: the planner as a pass.
 *
 * Reads the module attribute `moai.parallel_request`, a dictionary:
 *   devices = N : i64        N devices of this machine (cores and memory
 *                            shared), or
 *   cluster = "FILE.json"    a cluster description (docs/cost-model.md);
 *   strategy = "dp=2,tp=2"   optional: check this strategy instead of
 *                            searching;
 *   micro_batches = K : i64  optional: gradient accumulation (the global
 *                            batch is the model's batch times K).
 * Extracts the model from the (shape-inferred) module, searches the
 * strategies with the cost model and records the fastest that fits as
 * `moai.parallel` (the attribute `moaicc --devices/--cluster` writes; see
 * cost/plan_module.h). Tensor- and pipeline-parallel choices are recorded;
 * compiling them to binaries is refused later by the driver. Nothing fits,
 * a strategy that does not divide, or a bad request: an error at the module. */
#ifndef MOAI_PASSES_AUTO_PARALLEL_H
#define MOAI_PASSES_AUTO_PARALLEL_H

#include <stdbool.h>

#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

MlirPass moai_auto_parallel_pass_create(void);

/* The pass's logic; false after a diagnostic. */
bool moai_auto_parallel_run(MlirOperation module);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_AUTO_PARALLEL_H */
