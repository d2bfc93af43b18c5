/* The cost model: predicted step time and memory per device of a training
 * step under a parallel strategy. Every formula and constant is documented
 * in docs/cost-model.md with its source; cost.c cites them in comments. */
#ifndef MOAI_COST_COST_H
#define MOAI_COST_COST_H

#include <stdbool.h>
#include <stdint.h>

#include "cost/cluster.h"
#include "cost/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum moai_recompute_t {
  MOAI_RECOMPUTE_NONE = 0,
  MOAI_RECOMPUTE_SELECTIVE = 1, /* attention core only (Korthikanti et al. 2022) */
  MOAI_RECOMPUTE_FULL = 2       /* every layer from its input */
} moai_recompute_t;

const char *moai_recompute_name(moai_recompute_t r);

typedef struct moai_strategy_t {
  int64_t dp, tp, pp;
  int64_t micro_batches;  /* per pipeline per optimizer step */
  moai_recompute_t recompute;
  int zero;               /* 1: ZeRO-1, optimizer state sharded over dp */
} moai_strategy_t;

/* Fitted constants (docs/cost-model.md, "Calibration"): fitted to Megatron
 * SC'21 Table 1 (every row's published t, p) with a grid search; max error
 * 9% per row. */
#define MOAI_COST_GEMM_EFFICIENCY 0.70    /* achievable fraction of peak FLOP/s */
#define MOAI_COST_ELEMENTWISE_TRAFFIC 2.0 /* activation bytes moved per byte stored */
#define MOAI_COST_LINK_EFFICIENCY 0.80    /* achievable fraction of link bandwidth */

typedef struct moai_cost_t {
  double step_seconds;        /* one optimizer step */
  double compute_seconds;     /* busy time of the slowest stage, recomputation included */
  double recompute_seconds;   /* part of compute_seconds spent recomputing */
  double tp_comm_seconds, pp_comm_seconds, dp_comm_seconds, optimizer_seconds;
  double bubble_fraction;     /* (p-1)/m */
  double bubble_seconds;
  double comm_bytes;          /* bytes sent per device per step */
  double model_flops;         /* per step, all devices, no recomputation (6N-style) */
  double hardware_flops;      /* per step, all devices, recomputation included */
  /* Memory per device at the worst stage. */
  double weight_bytes, grad_bytes, optimizer_bytes, activation_bytes, temp_bytes;
  double memory_bytes;
  int64_t micro_batch_size;
  int64_t max_stage_layers;   /* layers on the most loaded stage */
} moai_cost_t;

/* Evaluates `s` for `m` on `c`. Returns false (and sets *why, a static
 * string) when the strategy is not well formed: degrees that do not multiply
 * to the device count, batch not divisible, tp that does not divide heads or
 * exceeds a node, more stages than layers. Memory is not checked here. */
bool moai_cost_evaluate(const moai_model_desc_t *m, const moai_cluster_t *c,
                        const moai_strategy_t *s, moai_cost_t *out, const char **why);

/* Bytes a device may use: memory_bytes x memory_usable_fraction. */
double moai_cost_memory_budget(const moai_cluster_t *c);

/* Per-layer activation bytes stored for the backward pass of one
 * micro-batch of b sequences (Korthikanti et al. 2022, Table 2, re-derived
 * for SwiGLU and grouped-query attention). */
double moai_cost_layer_activation_bytes(const moai_model_desc_t *m, int64_t b,
                                        int64_t tp, moai_recompute_t r);

/* Forward FLOPs of one layer for one sequence (matmuls + attention scores). */
double moai_cost_layer_forward_flops(const moai_model_desc_t *m);

/* Narayanan et al. SC'21 Eq. 3 FLOPs per step with full recomputation
 * (96 B s l h^2 (1 + s/6h + V/16lh)). */
double moai_cost_flops_eq3(int64_t layers, int64_t hidden, int64_t vocab,
                           int64_t seq, int64_t batch);

/* Splits `layers` uniform layers over `stages` stages, the first also
 * holding `first_extra` and the last `last_extra` (in layer units), to
 * minimise the most loaded stage. Writes per-stage layer counts into
 * out_layers[stages] and returns the bottleneck (in layer units). */
double moai_cost_partition_layers(int64_t layers, int64_t stages, double first_extra,
                                  double last_extra, int64_t *out_layers);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_COST_COST_H */
