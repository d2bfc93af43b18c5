/* The planner: enumerates data x tensor x pipeline factorings of the
 * devices, micro-batch counts, recomputation and ZeRO-1, evaluates each
 * with the cost model and keeps the fastest that fits in memory
 * (docs/cost-model.md, "Search"). */
#ifndef MOAI_COST_PLANNER_H
#define MOAI_COST_PLANNER_H

#include <stddef.h>

#include "base/status.h"
#include "cost/cost.h"
#include "ir/strbuf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct moai_candidate_t {
  moai_strategy_t strategy;
  moai_cost_t cost;
  const char *rejected; /* NULL: fits; else why it was rejected (static) */
} moai_candidate_t;

typedef struct moai_plan_result_t {
  bool found;
  moai_candidate_t best;
  /* Candidates evaluated, fastest first (fitting ones before rejected);
   * owned by the result (moai_plan_result_reset). */
  moai_candidate_t *candidates;
  size_t count;
  /* When nothing fits: the smallest device count (same cluster shape,
   * whole nodes) and the per-device memory that would. 0: none found. */
  int64_t devices_needed;
  double memory_needed;
} moai_plan_result_t;

/* Searches every strategy for `m` on `c` (with `forced` non-NULL, only
 * that one: it must be well formed and fit, else an INVALID_ARGUMENT
 * status names the strategy and the reason). The caller owns *out and
 * releases it with moai_plan_result_reset. */
moai_status_t moai_plan_search(const moai_model_desc_t *m, const moai_cluster_t *c,
                               const moai_strategy_t *forced,
                               moai_plan_result_t *out) MOAI_MUST_USE;

void moai_plan_result_reset(moai_plan_result_t *r);

/* Parses "dp=2,tp=2,pp=2,mb=8,recompute=selective,zero=1"; omitted keys
 * default to 1 / none / 0. */
moai_status_t moai_strategy_parse(const char *text, moai_strategy_t *out) MOAI_MUST_USE;

/* "dp=2,tp=2,pp=2,mb=8,recompute=selective,zero=1" into sb. */
void moai_strategy_format(const moai_strategy_t *s, moai_strbuf_t *sb);

/* The explanation table: the chosen plan, the top `top` fitting candidates
 * and the rejected ones with their reasons. */
void moai_plan_explain(const moai_plan_result_t *r, const moai_model_desc_t *m,
                       const moai_cluster_t *c, size_t top, moai_strbuf_t *sb);

#ifdef __cplusplus
}
#endif

#endif /* MOAI_COST_PLANNER_H */
