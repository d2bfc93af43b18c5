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

/* A searched plan's micro-batch count becomes the training step's
 * (moai.training.micro_batches), which the optimizer and the manifest use. */
static void set_training_micro_batches(MlirModule module, int64_t mb) {
  MlirOperation op = mlirModuleGetOperation(module);
  MlirContext ctx = mlirModuleGetContext(module);
  MlirAttribute t = mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString("moai.training"));
  if (mlirAttributeIsNull(t) || !mlirAttributeIsADictionary(t)) return;
  intptr_t n = mlirDictionaryAttrGetNumElements(t);
  MlirNamedAttribute entries[64];
  intptr_t k = 0;
  for (intptr_t i = 0; i < n && k < 63; ++i) {
    MlirNamedAttribute e = mlirDictionaryAttrGetElement(t, i);
    MlirStringRef key = mlirIdentifierStr(e.name);
    if (key.length == 13 && memcmp(key.data, "micro_batches", 13) == 0) continue;
    entries[k++] = e;
  }
  entries[k++] = mlirNamedAttributeGet(mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("micro_batches")),
                                       mlirIntegerAttrGet(mlirIntegerTypeGet(ctx, 64), mb));
  mlirOperationSetAttributeByName(op, mlirStringRefCreateFromCString("moai.training"),
                                  mlirDictionaryAttrGet(ctx, k, entries));
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
  /* Compiling binaries with a searched strategy: every rank runs the
   * compiled (export-sized) micro-batch, so the global batch is devices x
   * micro-batches x that, and a candidate compiles when dp x its
   * micro-batches equals devices x the requested micro-batches. */
  bool binary_search = !o->dry_run && !o->strategy;
  int64_t devices = moai_cluster_device_count(&o->cluster);
  int64_t k = o->accumulation > 0 ? o->accumulation : 1;
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
  /* Training plans compile every candidate (tp/pp: moai-partition; ZeRO-1:
   * moai-optimizer and moai-run; recomputation: moai-recompute); an
   * inference plan runs on one device. */
#define COMPILABLE(c)                                                                   \
  ((o->training || ((c)->strategy.tp == 1 && (c)->strategy.pp == 1 &&                     \
                    (c)->strategy.zero == 0 &&                                            \
                    (c)->strategy.recompute == MOAI_RECOMPUTE_NONE)) &&                   \
   (!binary_search || (c)->strategy.dp * (c)->strategy.micro_batches == devices * k))
  if (binary_search && !COMPILABLE(&r.best)) {
    const moai_candidate_t *pick = NULL;
    for (size_t i = 0; i < r.count && !pick; ++i)
      if (!r.candidates[i].rejected && COMPILABLE(&r.candidates[i])) pick = &r.candidates[i];
    if (!pick) {
      moai_strbuf_t sb;
      moai_strbuf_init(&sb, moai_allocator_system());
      moai_strategy_format(&r.best.strategy, &sb);
      st = MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "no plan that fits %lld devices can be compiled by this build (fastest: "
                       "%s%s); see --explain",
                       (long long)devices, sb.data ? sb.data : "?",
                       o->training ? "" : "; inference plans run on one device without ZeRO or recomputation");
      moai_strbuf_reset(&sb);
      moai_plan_result_reset(&r);
      return st;
    }
    r.best = *pick;
  }
  set_attr(module, &r.best);
  if (binary_search) set_training_micro_batches(module, r.best.strategy.micro_batches);
  if (!o->dry_run && !COMPILABLE(&r.best) && o->strategy) {
    moai_strbuf_t sb;
    moai_strbuf_init(&sb, moai_allocator_system());
    moai_strategy_format(&r.best.strategy, &sb);
    st = MOAI_STATUS(MOAI_UNIMPLEMENTED,
                     "strategy %s cannot be compiled to binaries%s (use --dry-run or "
                     "--explain to see the plan)",
                     sb.data ? sb.data : "?",
                     o->training ? "" : ": an inference plan runs on one device (tp=pp=1, zero=0, "
                     "recompute=none); compile with --train for parallel training");
    moai_strbuf_reset(&sb);
  }
#undef COMPILABLE
  if (o->out_result) *o->out_result = r;
  else moai_plan_result_reset(&r);
  return st;
}
