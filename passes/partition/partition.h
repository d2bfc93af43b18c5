/* moai-partition: turns a training module into the program of one device of
 * a dp x tp x pp mesh (docs/passes.md, "moai-partition").
 *
 * Reads two module attributes:
 *   moai.parallel = {dp, tp, pp, ...}   the mesh (moai-auto-parallel or
 *                                       moaicc --strategy writes it)
 *   moai.device   = {tp = t, pp = s}    which device this module becomes
 * and rewrites @main (the shape-inferred forward + scalar loss, before
 * moai-autodiff) in two steps:
 *
 * 1. Pipeline stage s of pp. The op sequence is cut at points where exactly
 *    one activation (a value that depends on both a graph input and a
 *    trainable weight) is live; pp - 1 cuts are chosen by dynamic
 *    programming to minimise the most expensive stage (FLOPs of matmuls,
 *    elements of other ops). Values that depend only on graph inputs (masks,
 *    positions) or only on weights are recomputed where needed. Stage s > 0
 *    gets an input `pp.recv` (the activation entering it); a stage before the
 *    last returns `pp.send` (the activation leaving it) and, as its "loss",
 *    sum(pp.send * pp.grad_out) with `pp.grad_out` a new input: its gradient
 *    is the vector-Jacobian product with the gradient received from the next
 *    stage. The module gets moai.pipeline = {stage, stages, recv, recv_grad,
 *    send, send_grad} and moai.autodiff_inputs = ["pp.recv"]. A trainable
 *    weight used by two stages (tied weights) is an error.
 *
 * 2. Tensor-parallel rank t of tp, in Megatron-LM's style (Shoeybi et al.,
 *    2019, arXiv:1909.08053, section 3): splits propagate forward from the
 *    weights. A MatMul of a replicated activation by a weight (or its
 *    transpose) is column-parallel (the weight's output features split, the
 *    activation enters through moai.tp_copy: identity forward, all-reduce
 *    backward); a MatMul whose activation is split along its contraction
 *    dimension is row-parallel (the weight's input features split, the
 *    partial result all-reduced). Elementwise ops, reshapes (attention
 *    heads: a split of the flattened heads dimension becomes a split of the
 *    heads), transposes, slices, concats, reductions and batched MatMuls
 *    carry the split; a Gather from a weight (embedding) becomes
 *    vocabulary-parallel (rows split, out-of-range ids masked, all-reduce);
 *    a SoftmaxCrossEntropyLoss on class-split scores becomes the parallel
 *    cross-entropy (all-reduce of the max, of the sum of exponentials and of
 *    the target logit). Split weights get shard_axis / shard_index /
 *    shard_count attributes and their local type; the plan writer slices
 *    them. An op that cannot carry a split (a dimension not divisible by tp,
 *    e.g. fewer heads than ranks; a reduction over the split dimension) is an
 *    error at its node.
 *
 * Unused ops are removed (moai-simplify's DCE). With tp = pp = 1 the pass
 * changes nothing. */
#ifndef MOAI_PASSES_PARTITION_H
#define MOAI_PASSES_PARTITION_H

#include <stdbool.h>

#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"

#ifdef __cplusplus
extern "C" {
#endif

MlirPass moai_partition_pass_create(void);

/* The pass's logic; false after a diagnostic. */
bool moai_partition_run(MlirOperation module);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_PASSES_PARTITION_H */
