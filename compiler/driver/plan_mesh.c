/* Writing a multi-device plan (docs/plan-format.md "Multi-device plans"):
 * one complete single-device plan per (tp, pp) device in DIR/device-<k>/,
 * and a format-3 top manifest that pins each device's manifest by SHA-256
 * and says what the device is: its mesh coordinates, the weights it holds
 * as tensor-parallel shards, and its pipeline role. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "driver/compile.h"
#include "driver/plan_write.h"
#include "io/sha256.h"
#include "ir/dtype.h"
#include "loader/manifest.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "version.h"

/* ---- reading the modules ---------------------------------------------------- */

static MlirAttribute op_attr(MlirOperation op, const char *name) {
  return mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
}

static MlirAttribute dict_get(MlirAttribute dict, const char *key) {
  return mlirDictionaryAttrGetElementByName(dict, mlirStringRefCreateFromCString(key));
}

static int64_t dict_i64(MlirAttribute dict, const char *key, int64_t fallback) {
  MlirAttribute a = dict_get(dict, key);
  return !mlirAttributeIsNull(a) && mlirAttributeIsAInteger(a) ? mlirIntegerAttrGetValueInt(a)
                                                               : fallback;
}

static double dict_f64(MlirAttribute dict, const char *key, double fallback) {
  MlirAttribute a = dict_get(dict, key);
  if (mlirAttributeIsNull(a)) return fallback;
  if (mlirAttributeIsAFloat(a)) return mlirFloatAttrGetValueDouble(a);
  if (mlirAttributeIsAInteger(a)) return (double)mlirIntegerAttrGetValueInt(a);
  return fallback;
}

/* A malloc'ed copy of a string attribute, NULL when absent; *oom on failure. */
static char *dup_string_attr(MlirAttribute a, bool *oom) {
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a)) return NULL;
  MlirStringRef s = mlirStringAttrGetValue(a);
  char *out = malloc(s.length + 1);
  if (!out) {
    *oom = true;
    return NULL;
  }
  memcpy(out, s.data, s.length);
  out[s.length] = '\0';
  return out;
}

typedef struct mesh_t {
  int64_t dp, tp, pp;
  bool has_prediction;
  double step_seconds;
  int64_t memory_bytes;
} mesh_t;

/* The mesh from the global module's moai.parallel, and the devices against
 * it: one per (tp, pp), in order k = pp * tp_size + tp. */
static moai_status_t read_mesh(MlirModule global, const moai_plan_device_module_t *devices,
                               size_t count, mesh_t *out) {
  MlirAttribute dict = op_attr(mlirModuleGetOperation(global), "moai.parallel");
  if (mlirAttributeIsNull(dict) || !mlirAttributeIsADictionary(dict))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "a multi-device plan needs the global module's "
                       "moai.parallel dictionary (dp, tp, pp); plan parallelism first");
  mesh_t m = {.dp = dict_i64(dict, "dp", 1), .tp = dict_i64(dict, "tp", 1),
              .pp = dict_i64(dict, "pp", 1)};
  if (m.dp < 1 || m.tp < 1 || m.pp < 1 || m.dp > 65536 || m.tp > 65536 || m.pp > 65536 ||
      m.dp * m.tp * m.pp > 65536)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai.parallel: mesh dp=%lld tp=%lld pp=%lld is "
                       "out of range (1 to 65536 ranks)", (long long)m.dp, (long long)m.tp,
                       (long long)m.pp);
  /* ZeRO-1: one device per rank, k = (dp * pp + pp_index) * tp + tp_index. */
  bool zero = count && devices[0].zero;
  int64_t want = m.tp * m.pp * (zero ? m.dp : 1);
  if (count != (size_t)want)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "mesh dp=%lld tp=%lld pp=%lld needs %s = "
                       "%lld device modules, got %zu", (long long)m.dp, (long long)m.tp,
                       (long long)m.pp, zero ? "dp x tp x pp (ZeRO-1)" : "tp x pp",
                       (long long)want, count);
  for (size_t k = 0; k < count; ++k)
    if (mlirModuleIsNull(devices[k].module) || devices[k].zero != zero ||
        devices[k].tp != (int)(k % (size_t)m.tp) ||
        devices[k].pp != (int)(k / (size_t)m.tp % (size_t)m.pp) ||
        (zero && devices[k].dp != (int)(k / (size_t)(m.tp * m.pp))))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "device module %zu has coordinates (tp %d, "
                         "pp %d%s); device k must be (tp k %% %lld, pp k / %lld %% %lld%s)%s", k,
                         devices[k].tp, devices[k].pp, devices[k].zero ? ", dp" : "",
                         (long long)m.tp, (long long)m.tp, (long long)m.pp,
                         zero ? ", dp k / (tp * pp)" : "",
                         mlirModuleIsNull(devices[k].module) ? " and a module" : "");
  m.step_seconds = dict_f64(dict, "predicted_step_seconds", -1);
  m.memory_bytes = dict_i64(dict, "predicted_memory_bytes", -1);
  m.has_prediction = m.step_seconds >= 0 && m.memory_bytes >= 0;
  *out = m;
  return moai_ok_status();
}

/* What the top manifest says of one device, owned here. */
typedef struct device_info_t {
  char plan[32];
  char manifest_sha256[MOAI_SHA256_HEX_SIZE];
  moai_manifest_shard_t *shards;
  size_t shard_count, shard_capacity;
  moai_manifest_pipeline_t pipeline;
  moai_manifest_t *sub; /* the device plan's manifest, as written */
  const char **owned;   /* ZeRO-1: the weights it updates (moai.zero.owned) */
  size_t owned_count;
  bool oom;
} device_info_t;

static void device_info_deinit(device_info_t *d) {
  for (size_t i = 0; i < d->shard_count; ++i) free((void *)d->shards[i].name);
  free(d->shards);
  free((void *)d->pipeline.recv);
  free((void *)d->pipeline.recv_grad);
  free((void *)d->pipeline.send);
  free((void *)d->pipeline.send_grad);
  for (size_t i = 0; i < d->owned_count; ++i) free((void *)d->owned[i]);
  free(d->owned);
  moai_manifest_free(d->sub);
}

/* The device module's moai.zero = {rank, size, owned = [names]} (moai-optimizer). */
static moai_status_t read_zero(MlirModule module, size_t k, device_info_t *d) {
  MlirAttribute dict = op_attr(mlirModuleGetOperation(module), "moai.zero");
  MlirAttribute owned = mlirAttributeIsNull(dict) || !mlirAttributeIsADictionary(dict)
                            ? (MlirAttribute){NULL} : dict_get(dict, "owned");
  if (mlirAttributeIsNull(owned) || !mlirAttributeIsAArray(owned))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "device module %zu is a ZeRO-1 device but has no "
                       "moai.zero = {owned = [...]} (run moai-optimizer with moai.device.dp)", k);
  size_t n = (size_t)mlirArrayAttrGetNumElements(owned);
  d->owned = calloc(n ? n : 1, sizeof(*d->owned));
  if (!d->owned) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t i = 0; i < n; ++i) {
    d->owned[i] = dup_string_attr(mlirArrayAttrGetElement(owned, (intptr_t)i), &d->oom);
    if (!d->owned[i]) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
    d->owned_count = i + 1;
  }
  return moai_ok_status();
}

/* Records a used moai.weight op that is a shard (once per name). */
static MlirWalkResult collect_shard(MlirOperation op, void *user) {
  device_info_t *d = user;
  MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
  if (name.length != 11 || memcmp(name.data, "moai.weight", 11) != 0) return MlirWalkResultAdvance;
  MlirAttribute count = op_attr(op, "shard_count"), weight = op_attr(op, "name");
  if (mlirAttributeIsNull(count) || !mlirAttributeIsAInteger(count) ||
      mlirIntegerAttrGetValueInt(count) < 2 || mlirAttributeIsNull(weight) ||
      !mlirAttributeIsAString(weight) ||
      mlirOpOperandIsNull(mlirValueGetFirstUse(mlirOperationGetResult(op, 0))))
    return MlirWalkResultAdvance;
  MlirStringRef w = mlirStringAttrGetValue(weight);
  for (size_t i = 0; i < d->shard_count; ++i)
    if (strlen(d->shards[i].name) == w.length && memcmp(d->shards[i].name, w.data, w.length) == 0)
      return MlirWalkResultAdvance;
  if (d->shard_count == d->shard_capacity) {
    size_t cap = d->shard_capacity ? 2 * d->shard_capacity : 8;
    moai_manifest_shard_t *grown = realloc(d->shards, cap * sizeof(*grown));
    if (!grown) {
      d->oom = true;
      return MlirWalkResultInterrupt;
    }
    d->shards = grown;
    d->shard_capacity = cap;
  }
  char *copy = dup_string_attr(weight, &d->oom);
  if (!copy) return MlirWalkResultInterrupt;
  MlirAttribute axis = op_attr(op, "shard_axis"), index = op_attr(op, "shard_index");
  d->shards[d->shard_count++] = (moai_manifest_shard_t){
      .name = copy,
      .axis = !mlirAttributeIsNull(axis) && mlirAttributeIsAInteger(axis)
                  ? (uint32_t)mlirIntegerAttrGetValueInt(axis) : 0,
      .index = !mlirAttributeIsNull(index) && mlirAttributeIsAInteger(index)
                   ? (uint32_t)mlirIntegerAttrGetValueInt(index) : 0,
      .count = (uint32_t)mlirIntegerAttrGetValueInt(count)};
  return MlirWalkResultAdvance;
}

/* The device module's moai.pipeline = {stage, stages, recv, recv_grad, send,
 * send_grad}; absent: not pipelined. */
static moai_status_t read_pipeline(MlirModule module, size_t k, moai_manifest_pipeline_t *pl) {
  MlirAttribute dict = op_attr(mlirModuleGetOperation(module), "moai.pipeline");
  if (mlirAttributeIsNull(dict)) return moai_ok_status();
  if (!mlirAttributeIsADictionary(dict))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "device module %zu: moai.pipeline is not a "
                       "dictionary", k);
  int64_t stage = dict_i64(dict, "stage", -1), stages = dict_i64(dict, "stages", -1);
  if (stage < 0 || stages < 1 || stage >= stages || stages > 65536)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "device module %zu: moai.pipeline needs integers "
                       "0 <= stage < stages", k);
  bool oom = false;
  *pl = (moai_manifest_pipeline_t){.present = true, .stage = (uint32_t)stage,
                                   .stages = (uint32_t)stages,
                                   .recv = dup_string_attr(dict_get(dict, "recv"), &oom),
                                   .recv_grad = dup_string_attr(dict_get(dict, "recv_grad"), &oom),
                                   .send = dup_string_attr(dict_get(dict, "send"), &oom),
                                   .send_grad = dup_string_attr(dict_get(dict, "send_grad"), &oom)};
  return oom ? MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory") : moai_ok_status();
}

/* @main of the global module (or its only func.func). */
static MlirOperation find_main(MlirModule module) {
  MlirOperation found = {NULL};
  for (MlirOperation op = mlirBlockGetFirstOperation(mlirModuleGetBody(module));
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
    MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
    if (name.length != 9 || memcmp(name.data, "func.func", 9) != 0) continue;
    MlirAttribute sym = op_attr(op, "sym_name");
    if (!mlirAttributeIsNull(sym) && mlirStringRefEqual(mlirStringAttrGetValue(sym),
                                                        mlirStringRefCreateFromCString("main")))
      return op;
    if (mlirOperationIsNull(found)) found = op;
  }
  return found;
}

static void free_io(moai_tensor_desc_t *d, size_t n) {
  for (size_t i = 0; d && i < n; ++i) free((void *)d[i].name);
  free(d);
}

/* The global @main's inputs or outputs, named by their moai.name (copies:
 * free with free_io). */
static moai_status_t global_io(MlirOperation main, bool results, moai_tensor_desc_t **out,
                               size_t *out_count) {
  MlirAttribute ft = op_attr(main, "function_type");
  MlirType type = mlirTypeAttrGetValue(ft);
  intptr_t n = results ? mlirFunctionTypeGetNumResults(type) : mlirFunctionTypeGetNumInputs(type);
  MlirAttribute attrs = op_attr(main, results ? "res_attrs" : "arg_attrs");
  moai_tensor_desc_t *d = calloc((size_t)n + 1, sizeof(*d));
  if (!d) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (intptr_t i = 0; i < n; ++i) {
    MlirType t = results ? mlirFunctionTypeGetResult(type, i) : mlirFunctionTypeGetInput(type, i);
    MlirAttribute dict = !mlirAttributeIsNull(attrs) && mlirAttributeIsAArray(attrs) &&
                                 i < mlirArrayAttrGetNumElements(attrs)
                             ? mlirArrayAttrGetElement(attrs, i) : (MlirAttribute){NULL};
    MlirAttribute name = !mlirAttributeIsNull(dict) && mlirAttributeIsADictionary(dict)
                             ? dict_get(dict, "moai.name") : (MlirAttribute){NULL};
    bool ok = !mlirAttributeIsNull(name) && mlirAttributeIsAString(name) &&
              mlirTypeIsARankedTensor(t) && mlirShapedTypeHasStaticShape(t) &&
              mlirShapedTypeGetRank(t) <= MOAI_MAX_RANK;
    moai_dtype_t dtype = ok ? moai_dtype_from_mlir(mlirShapedTypeGetElementType(t))
                            : MOAI_DTYPE_UNDEFINED;
    bool oom = false;
    d[i].name = dtype == MOAI_DTYPE_UNDEFINED ? NULL : dup_string_attr(name, &oom);
    if (oom) {
      free_io(d, (size_t)i);
      return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
    }
    if (dtype == MOAI_DTYPE_UNDEFINED) {
      free_io(d, (size_t)i);
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the global module's @main %s %ld needs a "
                         "moai.name and a static tensor type of a supported dtype",
                         results ? "result" : "argument", (long)i);
    }
    d[i].dtype = (int32_t)dtype;
    d[i].rank = (int32_t)mlirShapedTypeGetRank(t);
    uint64_t numel = 1;
    for (int32_t r = 0; r < d[i].rank; ++r) {
      d[i].dims[r] = mlirShapedTypeGetDimSize(t, r);
      numel *= (uint64_t)d[i].dims[r];
    }
    d[i].nbytes = numel * moai_dtype_size(dtype);
  }
  *out = d;
  *out_count = (size_t)n;
  return moai_ok_status();
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct mesh_plan_t {
  MlirModule global;
  const moai_plan_device_module_t *devices;
  size_t count;
  const char *summary;
  const moai_plan_options_t *options;
  mesh_t mesh;
  device_info_t *info; /* count */
} mesh_plan_t;

/* DIR/device-<k>/: the device's single-device plan; its manifest's hash. */
static moai_status_t write_device(const mesh_plan_t *mp, const char *tmp, size_t k) {
  device_info_t *d = &mp->info[k];
  MlirModule module = mp->devices[k].module;
  snprintf(d->plan, sizeof(d->plan), "device-%zu", k);
  char sub[4200], path[4300];
  snprintf(sub, sizeof(sub), "%s/%s", tmp, d->plan);
  if (mkdir(sub, 0755) != 0)
    return MOAI_STATUS(MOAI_IO_ERROR, "cannot create %s: %s", sub, strerror(errno));
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  moai_strbuf_appendf(&sb, "device %zu of mesh dp=%lld tp=%lld pp=%lld (tp %d, pp %d)\n", k,
                      (long long)mp->mesh.dp, (long long)mp->mesh.tp, (long long)mp->mesh.pp,
                      mp->devices[k].tp, mp->devices[k].pp);
  moai_module_summarize(module, &sb);
  moai_status_t status =
      sb.failed ? MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory")
                : moai_plan_files_write(sub, module, sb.data, mp->options, true);
  moai_strbuf_reset(&sb);
  MOAI_RETURN_IF_ERROR_CTX(status, "writing device %zu (tp %d, pp %d)", k, mp->devices[k].tp,
                           mp->devices[k].pp);
  snprintf(path, sizeof(path), "%s/manifest.json", sub);
  MOAI_RETURN_IF_ERROR(moai_sha256_file(path, d->manifest_sha256));
  MOAI_RETURN_IF_ERROR(moai_manifest_read(path, moai_allocator_system(), &d->sub));
  mlirOperationWalk(mlirModuleGetOperation(module), collect_shard, d, MlirWalkPreOrder);
  if (d->oom) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  if (mp->devices[k].zero) MOAI_RETURN_IF_ERROR(read_zero(module, k, d));
  return read_pipeline(module, k, &d->pipeline);
}

/* Every trained weight once, by its full name, in device order. */
static moai_status_t trained_union(const mesh_plan_t *mp, const char ***out, size_t *out_count) {
  size_t total = 0, n = 0;
  for (size_t k = 0; k < mp->count; ++k) total += mp->info[k].sub->train.trainable_count;
  const char **names = calloc(total + 1, sizeof(*names));
  if (!names) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  for (size_t k = 0; k < mp->count; ++k) {
    const moai_manifest_training_t *t = &mp->info[k].sub->train;
    for (size_t i = 0; i < t->trainable_count; ++i) {
      bool seen = false;
      for (size_t j = 0; j < n && !seen; ++j) seen = strcmp(names[j], t->trainable[i]) == 0;
      if (!seen) names[n++] = t->trainable[i];
    }
  }
  *out = names;
  *out_count = n;
  return moai_ok_status();
}

/* DIR/manifest.json, format 3. */
static moai_status_t write_top_manifest(const mesh_plan_t *mp, const char *tmp) {
  const moai_manifest_t *first = mp->info[0].sub;
  /* The loss comes from the last stage; tp ranks of a stage agree. */
  const moai_manifest_t *last = mp->info[(size_t)(mp->mesh.pp - 1) * (size_t)mp->mesh.tp].sub;
  MlirOperation main = find_main(mp->global);
  if (mlirOperationIsNull(main))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the global module has no func.func @main");
  for (size_t k = 1; k < mp->count; ++k)
    if (mp->info[k].sub->training != first->training)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "device modules 0 and %zu disagree on whether "
                         "they are training modules", k);
  moai_manifest_device_t *devs = calloc(mp->count, sizeof(*devs));
  moai_tensor_desc_t *ins = NULL, *outs = NULL;
  size_t nin = 0, nout = 0, ntrained = 0;
  const char **trained = NULL;
  MlirOperation gop = mlirModuleGetOperation(mp->global);
  bool oom = !devs;
  char *source = dup_string_attr(op_attr(gop, "moai.source"), &oom);
  char *producer = dup_string_attr(op_attr(gop, "moai.producer"), &oom);
  moai_status_t status = oom ? MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory") : moai_ok_status();
  if (!status) status = global_io(main, false, &ins, &nin);
  if (!status) status = global_io(main, true, &outs, &nout);
  if (!status && first->training) status = trained_union(mp, &trained, &ntrained);
  if (!status) {
    for (size_t k = 0; k < mp->count; ++k) {
      const device_info_t *d = &mp->info[k];
      devs[k] = (moai_manifest_device_t){
          .index = (uint32_t)k, .plan = d->plan, .tp = (uint32_t)mp->devices[k].tp,
          .pp = (uint32_t)mp->devices[k].pp, .shard_count = d->shard_count,
          .shards = d->shards, .pipeline = d->pipeline, .zero = mp->devices[k].zero,
          .dp = mp->devices[k].zero ? (uint32_t)mp->devices[k].dp : 0,
          .owned_count = d->owned_count, .owned = d->owned};
      memcpy(devs[k].manifest_sha256, d->manifest_sha256, MOAI_SHA256_HEX_SIZE);
    }
    MlirAttribute opset = op_attr(gop, "moai.opset");
    moai_manifest_t m = {
        .format_version = 3,
        .abi_version = first->abi_version,
        .moai_version = moai_version_string(),
        .target_triple = first->target_triple,
        .target_cpu = first->target_cpu,
        .feature_count = first->feature_count,
        .features = first->features,
        .model_source = source ? source : "",
        .model_opset = !mlirAttributeIsNull(opset) && mlirAttributeIsAInteger(opset)
                           ? mlirIntegerAttrGetValueInt(opset) : 0,
        .model_producer = producer ? producer : "",
        .input_count = nin,
        .output_count = nout,
        .inputs = ins,
        .outputs = outs,
        .device_count = mp->count,
        .devices = devs,
        .training = first->training,
        .mesh_dp = (uint32_t)mp->mesh.dp,
        .mesh_tp = (uint32_t)mp->mesh.tp,
        .mesh_pp = (uint32_t)mp->mesh.pp,
        .has_prediction = mp->mesh.has_prediction,
        .predicted_step_seconds = mp->mesh.has_prediction ? mp->mesh.step_seconds : 0,
        .predicted_memory_bytes = mp->mesh.has_prediction ? (uint64_t)mp->mesh.memory_bytes : 0,
    };
    if (m.training) {
      m.train = last->train;
      m.train.trainable = trained;
      m.train.trainable_count = ntrained;
      m.train.persist_bytes = 0; /* each device's own is in its manifest */
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/manifest.json", tmp);
    status = moai_manifest_write(path, &m);
  }
  free(trained);
  free_io(ins, nin);
  free_io(outs, nout);
  free(source);
  free(producer);
  free(devs);
  return status;
}

/* DIR/plan.txt and DIR/model.mlir. */
static moai_status_t write_top_text(const mesh_plan_t *mp, const char *tmp) {
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  moai_strbuf_append(&sb, mp->summary ? mp->summary : "");
  moai_strbuf_appendf(&sb, "mesh: dp=%lld tp=%lld pp=%lld (%lld ranks, %zu devices)\n",
                      (long long)mp->mesh.dp, (long long)mp->mesh.tp, (long long)mp->mesh.pp,
                      (long long)(mp->mesh.dp * mp->mesh.tp * mp->mesh.pp), mp->count);
  for (size_t k = 0; k < mp->count; ++k) {
    const device_info_t *d = &mp->info[k];
    moai_strbuf_appendf(&sb, "device %zu (tp %d, pp %d): %s/, arena %llu bytes, persistent "
                        "%llu bytes, %zu sharded weights", k, mp->devices[k].tp,
                        mp->devices[k].pp, d->plan,
                        (unsigned long long)d->sub->devices[0].arena_bytes,
                        (unsigned long long)d->sub->train.persist_bytes, d->shard_count);
    if (mp->devices[k].zero)
      moai_strbuf_appendf(&sb, ", data-parallel rank %d updates %zu weights (ZeRO-1)",
                          mp->devices[k].dp, d->owned_count);
    if (d->pipeline.present)
      moai_strbuf_appendf(&sb, ", stage %u of %u (recv %s, send %s)", d->pipeline.stage,
                          d->pipeline.stages, d->pipeline.recv ? d->pipeline.recv : "-",
                          d->pipeline.send ? d->pipeline.send : "-");
    moai_strbuf_append(&sb, "\n");
  }
  moai_status_t status = sb.failed ? MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory")
                                   : moai_plan_file_write(tmp, "plan.txt", sb.data, sb.length);
  moai_strbuf_reset(&sb);
  if (!status) {
    moai_module_print(mp->global, false, &sb);
    status = sb.failed ? MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory printing the module")
                       : moai_plan_file_write(tmp, "model.mlir", sb.data ? sb.data : "",
                                              sb.length);
    moai_strbuf_reset(&sb);
  }
  return status;
}

static moai_status_t fill_mesh_plan(void *user, const char *tmp) {
  mesh_plan_t *mp = user;
  moai_status_t status = moai_ok_status();
  for (size_t k = 0; k < mp->count && !status; ++k) {
    MOAI_LOG(mp->options ? mp->options->log : NULL, MOAI_LOG_LEVEL_INFO,
             "writing device %zu of %zu (tp %d, pp %d)", k, mp->count, mp->devices[k].tp,
             mp->devices[k].pp);
    status = write_device(mp, tmp, k);
  }
  if (!status) status = write_top_manifest(mp, tmp);
  if (!status) status = write_top_text(mp, tmp);
  return status;
}

moai_status_t moai_plan_write_mesh(const char *dir, MlirModule global,
                                   const moai_plan_device_module_t *devices, size_t count,
                                   const char *summary, const moai_plan_options_t *options) {
  mesh_plan_t mp = {.global = global, .devices = devices, .count = count, .summary = summary,
                    .options = options};
  MOAI_RETURN_IF_ERROR(read_mesh(global, devices, count, &mp.mesh));
  mp.info = calloc(count, sizeof(*mp.info));
  if (!mp.info) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  moai_status_t status = moai_plan_dir_commit(dir, fill_mesh_plan, &mp);
  for (size_t k = 0; k < count; ++k) device_info_deinit(&mp.info[k]);
  free(mp.info);
  return status;
}
