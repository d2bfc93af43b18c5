/* moai-recompute: activation recomputation (docs/passes.md, "moai-recompute").
 *
 * Reads moai.parallel's `recompute` ("none", "selective" or "full"; absent:
 * none) and rewrites @main after moai-autodiff so that the backward reads
 * recomputed copies of forward activations instead of keeping the
 * originals alive from the forward to the backward:
 *
 *   full       only the checkpoints are kept: the activation at every
 *              single-activation cut of the forward (partition/cuts.h, the
 *              residual stream between transformer sub-blocks); each
 *              segment's forward is recomputed from its checkpoint just
 *              before the first backward op that needs it (Chen et al. 2016,
 *              "Training deep nets with sublinear memory cost"; Megatron-LM's
 *              full recomputation).
 *   selective  the outputs of MatMuls by a weight (the expensive GEMMs) are
 *              kept too; everything else the backward needs (attention
 *              scores and probabilities, normalisations, activation
 *              functions) is recomputed (in the spirit of Korthikanti et al.
 *              2022, "Reducing activation recomputation in large transformer
 *              models", which recomputes the attention core).
 *
 * Values that depend on only the graph inputs or only the weights (masks,
 * rotary tables, transposed weights) are never recomputed; random ops are
 * kept. Recomputed ops carry the unit attribute moai.recomputed (so
 * moai-simplify's CSE keeps them apart from the originals). The arithmetic
 * is the same, so results are bit-identical; the memory plan then frees
 * each forward activation after its last forward use. */
#ifndef MOAI_PASSES_RECOMPUTE_H
#define MOAI_PASSES_RECOMPUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_recompute_stats_t {
  size_t checkpoints; /* cuts the forward was segmented at */
  size_t recomputed;  /* ops cloned into the backward */
} moai_recompute_stats_t;

MlirPass moai_recompute_pass_create(void);

/* The pass's logic; false after a diagnostic. */
bool moai_recompute_run(MlirOperation module, moai_recompute_stats_t *out_stats);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_RECOMPUTE_H */
