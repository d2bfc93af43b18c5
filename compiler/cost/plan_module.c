/* moai.parallel: the planner's choice, recorded on the module. */
#include "cost/plan_module.h"

#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"

static void set_attr(MlirModule module, const moai_candidate_t *c) {
  MlirContext ctx = mlirModuleGetContext(module);
  MlirType i64 = mlirIntegerTypeGet(ctx, 64);
  const moai_strategy_t *s = &c->strategy;
  struct {
    const char *key;
    MlirAttribute value;
  } kv[] = {
      {"dp", mlirIntegerAttrGet(i64, s->dp)},
      {"tp", mlirIntegerAttrGet(i64, s->tp)},
      {"pp", mlirIntegerAttrGet(i64, s->pp)},
      {"micro_batches", mlirIntegerAttrGet(i64, s->micro_batches)},
      {"recompute", mlirStringAttrGet(ctx, mlirStringRefCreateFromCString(moai_recompute_name(s->recompute)))},
      {"zero", mlirIntegerAttrGet(i64, s->zero)},
      {"predicted_step_seconds", mlirFloatAttrDoubleGet(ctx, mlirF64TypeGet(ctx), c->cost.step_seconds)},
      {"predicted_memory_bytes", mlirIntegerAttrGet(i64, (int64_t)c->cost.memory_bytes)},
  };
  MlirNamedAttribute named[8];
  for (int i = 0; i < 8; ++i)
    named[i] = mlirNamedAttributeGet(
        mlirIdentifierGet(ctx, mlirStringRefCreateFromCString(kv[i].key)), kv[i].value);
  mlirOperationSetAttributeByName(mlirModuleGetOperation(module),
                                  mlirStringRefCreateFromCString("moai.parallel"),
                                  mlirDictionaryAttrGet(ctx, 8, named));
}

moai_status_t moai_parallel_plan_module(MlirModule module, moai_parallel_options_t *o) {
  moai_model_desc_t m, generic;
  moai_status_t st = moai_model_extract(module, &m, &generic);
  if (st) {
    /* Not a decoder: data parallelism over the weights found. */
    moai_status_free(st);
    m = generic;
  }
  m.batch *= o->accumulation > 0 ? o->accumulation : 1;
  /* A forced data-parallel degree runs the compiled (export-sized) batch on
   * every rank: the global batch grows with dp (moai-run's data loader takes
   * dp x micro-batches x batch examples per step). */
  if (o->strategy && o->strategy->dp > 1) m.batch *= o->strategy->dp;
  /* Compiling binaries with a searched strategy: only data-parallel plans
   * compile today, so every device is a rank running the compiled batch
   * (the same growth of the global batch as a forced dp). */
  bool binary_search = !o->dry_run && !o->strategy;
  int64_t devices = moai_cluster_device_count(&o->cluster);
  if (binary_search && devices > 1) m.batch *= devices;
  moai_plan_result_t r;
  MOAI_RETURN_IF_ERROR(moai_plan_search(&m, &o->cluster, o->strategy, &r));
  if (o->out_model) *o->out_model = m;
  if (!r.found && r.count == 0) {
    moai_plan_result_reset(&r);
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
        "no parallel strategy divides the work: %lld devices cannot be split as dp x tp x pp "
        "with dp dividing the global batch %lld%s",
        (long long)moai_cluster_device_count(&o->cluster), (long long)m.batch,
        m.is_decoder ? ", tp dividing the heads and kv heads and a node, pp at most the layers "
                       "and the micro-batches" : " (not a decoder: data parallelism only)");
  }
  if (!r.found) {
    moai_status_t nf = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
        "no parallel strategy fits on %s (%lld devices, %.2f GiB usable each)%s",
        o->cluster.name, (long long)moai_cluster_device_count(&o->cluster),
        moai_cost_memory_budget(&o->cluster) / (1024.0 * 1024.0 * 1024.0),
        "; see --explain for the smallest device count or memory that would");
    if (o->out_result) *o->out_result = r;
    else moai_plan_result_reset(&r);
    return nf;
  }
  if (binary_search && (r.best.strategy.tp > 1 || r.best.strategy.pp > 1 ||
                        r.best.strategy.dp != devices || r.best.strategy.zero != 0 ||
                        r.best.strategy.recompute != MOAI_RECOMPUTE_NONE ||
                        r.best.strategy.micro_batches != (o->accumulation > 0 ? o->accumulation : 1))) {
    /* The fastest fitting plan this build can compile: data parallel over
     * every device, with the model's own gradient accumulation. */
    const moai_candidate_t *pick = NULL;
    for (size_t i = 0; i < r.count && !pick; ++i) {
      const moai_candidate_t *c = &r.candidates[i];
      /* ZeRO-1 sharding and recomputation are planned, not implemented in
       * the runtime yet: every rank keeps its full optimizer state. */
      if (!c->rejected && c->strategy.tp == 1 && c->strategy.pp == 1 && c->strategy.dp == devices &&
          c->strategy.zero == 0 && c->strategy.recompute == MOAI_RECOMPUTE_NONE &&
          c->strategy.micro_batches == (o->accumulation > 0 ? o->accumulation : 1))
        pick = c;
    }
    if (!pick) {
      moai_strbuf_t sb;
      moai_strbuf_init(&sb, moai_allocator_system());
      moai_strategy_format(&r.best.strategy, &sb);
      st = MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "the only plans that fit %lld devices need tensor or pipeline parallelism "
                       "(fastest: %s), which cannot be compiled to binaries yet; see --explain",
                       (long long)devices, sb.data ? sb.data : "?");
      moai_strbuf_reset(&sb);
      moai_plan_result_reset(&r);
      return st;
    }
    r.best = *pick;
  }
  set_attr(module, &r.best);
  if (!o->dry_run && (r.best.strategy.tp > 1 || r.best.strategy.pp > 1)) {
    moai_strbuf_t sb;
    moai_strbuf_init(&sb, moai_allocator_system());
    moai_strategy_format(&r.best.strategy, &sb);
    st = MOAI_STATUS(MOAI_UNIMPLEMENTED,
                     "strategy %s: tensor and pipeline parallel plans cannot be compiled to "
                     "binaries yet (use --dry-run or --explain to see the plan, or force a "
                     "data-parallel one with --strategy dp=N)",
                     sb.data ? sb.data : "?");
    moai_strbuf_reset(&sb);
  }
  if (o->out_result) *o->out_result = r;
  else moai_plan_result_reset(&r);
  return st;
}
