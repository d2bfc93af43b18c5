/* moai-auto-parallel: see auto_parallel.h. */
#include "auto_parallel/auto_parallel.h"

#include <stdio.h>
#include <string.h>

#include "cost/plan_module.h"
#include "ir/pass_util.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/Diagnostics.h"

static MlirAttribute entry(MlirAttribute dict, const char *key) {
  return mlirDictionaryAttrGetElementByName(dict, mlirStringRefCreateFromCString(key));
}

static bool fail(MlirOperation module, moai_status_t st, const char *what) {
  char msg[1024];
  snprintf(msg, sizeof(msg), "moai-auto-parallel: %s%s", what, st ? moai_status_message(st) : "");
  mlirEmitError(mlirOperationGetLocation(module), msg);
  moai_status_free(st);
  return false;
}

bool moai_auto_parallel_run(MlirOperation op) {
  MlirAttribute req = mlirOperationGetAttributeByName(
      op, mlirStringRefCreateFromCString("moai.parallel_request"));
  if (mlirAttributeIsNull(req) || !mlirAttributeIsADictionary(req))
    return fail(op, NULL, "the module has no moai.parallel_request dictionary (devices = N or "
                          "cluster = \"FILE.json\"); moaicc --devices/--cluster plan directly");
  moai_parallel_options_t o;
  memset(&o, 0, sizeof(o));
  moai_status_t st = NULL;
  MlirAttribute devices = entry(req, "devices"), cluster = entry(req, "cluster");
  if (!mlirAttributeIsNull(cluster) && mlirAttributeIsAString(cluster)) {
    char path[4096];
    MlirStringRef s = mlirStringAttrGetValue(cluster);
    snprintf(path, sizeof(path), "%.*s", (int)s.length, s.data);
    st = moai_cluster_load(path, &o.cluster);
  } else if (!mlirAttributeIsNull(devices) && mlirAttributeIsAInteger(devices)) {
    st = moai_cluster_from_host(mlirIntegerAttrGetValueInt(devices), &o.cluster);
  } else {
    return fail(op, NULL, "moai.parallel_request needs devices = N : i64 or cluster = \"FILE\"");
  }
  if (st) return fail(op, st, "");
  moai_strategy_t forced;
  MlirAttribute strategy = entry(req, "strategy");
  if (!mlirAttributeIsNull(strategy) && mlirAttributeIsAString(strategy)) {
    char text[256];
    MlirStringRef s = mlirStringAttrGetValue(strategy);
    snprintf(text, sizeof(text), "%.*s", (int)s.length, s.data);
    st = moai_strategy_parse(text, &forced);
    if (st) return fail(op, st, "");
    o.strategy = &forced;
  }
  MlirAttribute mb = entry(req, "micro_batches");
  o.accumulation = !mlirAttributeIsNull(mb) && mlirAttributeIsAInteger(mb)
                       ? mlirIntegerAttrGetValueInt(mb) : 1;
  o.dry_run = true; /* record any strategy; the driver decides what compiles */
  st = moai_parallel_plan_module(mlirModuleFromOperation(op), &o);
  if (st) return fail(op, st, "");
  return true;
}

static void run_pass(MlirOperation op, MlirExternalPass pass, const void *options) {
  (void)options;
  if (!moai_auto_parallel_run(op)) mlirExternalPassSignalFailure(pass);
}

static _Alignas(8) const char kTypeId = 0;

MlirPass moai_auto_parallel_pass_create(void) {
  static const moai_external_pass_t def = {
      .type_id_storage = &kTypeId,
      .name = "MoaiAutoParallel",
      .argument = "moai-auto-parallel",
      .description = "choose data/tensor/pipeline degrees, micro-batches, recomputation and "
                     "ZeRO with the cost model; records moai.parallel",
      .op_name = "builtin.module",
      .run = run_pass,
  };
  char unused = 0;
  return moai_external_pass_create(&def, &unused, sizeof(unused));
}
