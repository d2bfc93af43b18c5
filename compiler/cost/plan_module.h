/* Planning parallelism inside the compile flow: extract the model from the
 * shape-inferred module, search (or check a forced strategy) with the cost
 * model and record the choice as the module attribute `moai.parallel`
 * (docs/cost-model.md). */
#ifndef MOAI_COST_PLAN_MODULE_H
#define MOAI_COST_PLAN_MODULE_H

#include "cost/planner.h"
#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_parallel_options_t {
  moai_cluster_t cluster;
  const moai_strategy_t *strategy; /* NULL: search */
  int64_t accumulation;            /* --micro-batches: global batch = model batch x this */
  bool dry_run;                    /* plan only: nothing is refused as uncompilable */
  bool training;                   /* a training plan: tp/pp > 1 compile (moai-partition) */
  /* Filled by the compile (borrowed storage of the caller). */
  moai_plan_result_t *out_result;
  moai_model_desc_t *out_model;
} moai_parallel_options_t;

/* Plans `module` (after moai-shape-infer) and sets `moai.parallel`. */
moai_status_t moai_parallel_plan_module(MlirModule module, moai_parallel_options_t *options)
    MOAI_MUST_USE;

#ifdef __cplusplus
}
#endif

#endif /* MOAI_COST_PLAN_MODULE_H */
