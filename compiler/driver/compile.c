#include "driver/compile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "driver/pipeline.h"
#include "driver/plan_write.h"
#include "io/file.h"
#include "io/sha256.h"
#include "ir/dtype.h"
#include "ir/op_defs.h"
#include "loader/cpu_features.h"
#include "loader/manifest.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "onnx/onnx_import.h"
#include "torchscript/ts_import.h"
#include "version.h"

moai_compile_options_t moai_compile_options_default(void) {
  return (moai_compile_options_t){.check_external_data = true};
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

moai_training_options_t moai_training_options_default(void) {
  moai_training_options_t t;
  memset(&t, 0, sizeof(t));
  t.lr = t.beta1 = t.beta2 = t.eps = t.weight_decay = t.momentum = t.dampening = NAN;
  t.nesterov = -1;
  t.warmup_steps = t.total_steps = t.micro_batches = -1;
  return t;
}

/* Sets the module's moai.training dictionary from the options that are set
 * (the optimizer pass fills in the rest). */
static void set_training_attr(MlirModule module, const moai_training_options_t *t) {
  MlirContext ctx = mlirModuleGetContext(module);
  MlirNamedAttribute e[16];
  int n = 0;
#define NAMED(key, attr)                                                          \
  e[n++] = mlirNamedAttributeGet(                                                 \
      mlirIdentifierGet(ctx, mlirStringRefCreateFromCString(key)), (attr))
  if (t->optimizer) NAMED("optimizer", mlirStringAttrGet(ctx, mlirStringRefCreateFromCString(t->optimizer)));
  if (t->schedule) NAMED("schedule", mlirStringAttrGet(ctx, mlirStringRefCreateFromCString(t->schedule)));
  const struct { const char *key; double v; } reals[] = {
      {"lr", t->lr}, {"beta1", t->beta1}, {"beta2", t->beta2}, {"eps", t->eps},
      {"weight_decay", t->weight_decay}, {"momentum", t->momentum}, {"dampening", t->dampening}};
  for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); ++i)
    if (!isnan(reals[i].v)) NAMED(reals[i].key, mlirFloatAttrDoubleGet(ctx, mlirF64TypeGet(ctx), reals[i].v));
  const struct { const char *key; int64_t v; } ints[] = {
      {"nesterov", t->nesterov}, {"warmup_steps", t->warmup_steps},
      {"total_steps", t->total_steps}, {"micro_batches", t->micro_batches}};
  for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); ++i)
    if (ints[i].v >= 0) NAMED(ints[i].key, mlirIntegerAttrGet(mlirIntegerTypeGet(ctx, 64), ints[i].v));
#undef NAMED
  mlirOperationSetAttributeByName(mlirModuleGetOperation(module),
                                  mlirStringRefCreateFromCString("moai.training"),
                                  mlirDictionaryAttrGet(ctx, n, e));
}

/* moai.parallel = {dp = N, tp = 1, pp = 1, micro_batches = K}: what the
 * planner records for a data-parallel strategy (K from moai.training). */
/* Parses a module in the moai dialect (what moai-opt or moaicc --emit=mlir
 * print). Weights keep their `file` attributes as written: relative ones
 * resolve against the current directory (moai.source's directory for
 * external data), as they did for the compile that printed them. */
static moai_status_t parse_mlir_file(MlirContext ctx, const char *path,
                                     moai_diag_sink_t *diag, MlirModule *out) {
  moai_file_map_t map;
  MOAI_RETURN_IF_ERROR_CTX(moai_file_map(path, &map), "reading %s", path);
  MlirModule m = mlirModuleCreateParse(
      ctx, (MlirStringRef){.data = map.data ? (const char *)map.data : "", .length = map.size});
  moai_file_unmap(&map);
  if (mlirModuleIsNull(m)) {
    moai_status_t first = moai_diag_take_status(diag, MOAI_INVALID_ARGUMENT, "");
    moai_status_t status = MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: not a valid MLIR module: %s",
                                       path, moai_status_message(first));
    moai_status_free(first);
    return status;
  }
  *out = m;
  return moai_ok_status();
}

void moai_plan_device_modules_free(moai_plan_device_module_t *devices, size_t count) {
  for (size_t i = 0; devices && i < count; ++i)
    if (!mlirModuleIsNull(devices[i].module)) mlirModuleDestroy(devices[i].module);
  free(devices);
}

/* Compiles every device of a tp x pp mesh from a copy of `module` (planned,
 * shape-inferred): moai.device = {tp, pp}, then MOAI_DEVICE_TRAIN_PIPELINE. */
static moai_status_t compile_devices(MlirModule module, const moai_compile_options_t *options,
                                     moai_diag_sink_t *diag, int64_t zero_dp, int64_t tp,
                                     int64_t pp) {
  if (!options->training)
    return MOAI_STATUS(MOAI_UNIMPLEMENTED, "tensor and pipeline parallelism (tp=%lld, pp=%lld) "
                       "and ZeRO are compiled for training plans (moaicc --train); an inference "
                       "plan runs on one device", (long long)tp, (long long)pp);
  /* ZeRO-1 gives every data-parallel rank its own program (its share of the
   * optimizer state): device k = (dp * pp + pp_index) * tp + tp_index, the
   * rank's own number; otherwise device k = pp_index * tp + tp_index. */
  size_t n = (size_t)(tp * pp * (zero_dp > 0 ? zero_dp : 1));
  moai_plan_device_module_t *devs = calloc(n, sizeof(*devs));
  if (!devs) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
  MlirContext ctx = mlirModuleGetContext(module);
  moai_status_t st = moai_ok_status();
  for (size_t k = 0; k < n && !st; ++k) {
    devs[k].tp = (int)((int64_t)k % tp);
    devs[k].pp = (int)((int64_t)k / tp % pp);
    devs[k].zero = zero_dp > 0;
    devs[k].dp = (int)((int64_t)k / (tp * pp));
    if (devs[k].zero)
      MOAI_LOG(options->log, MOAI_LOG_LEVEL_INFO, "compiling device %zu of %zu (data-parallel "
               "rank %d, tensor rank %d, pipeline stage %d)", k + 1, n, devs[k].dp, devs[k].tp,
               devs[k].pp);
    else
      MOAI_LOG(options->log, MOAI_LOG_LEVEL_INFO, "compiling device %zu of %zu (tensor rank %d, "
               "pipeline stage %d)", k + 1, n, devs[k].tp, devs[k].pp);
    MlirOperation copy = mlirOperationClone(mlirModuleGetOperation(module));
    devs[k].module = mlirModuleFromOperation(copy);
    MlirType i64 = mlirIntegerTypeGet(ctx, 64);
    MlirNamedAttribute coords[3] = {
        mlirNamedAttributeGet(mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("tp")),
                              mlirIntegerAttrGet(i64, devs[k].tp)),
        mlirNamedAttributeGet(mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("pp")),
                              mlirIntegerAttrGet(i64, devs[k].pp)),
        mlirNamedAttributeGet(mlirIdentifierGet(ctx, mlirStringRefCreateFromCString("dp")),
                              mlirIntegerAttrGet(i64, devs[k].dp))};
    mlirOperationSetAttributeByName(copy, mlirStringRefCreateFromCString("moai.device"),
                                    mlirDictionaryAttrGet(ctx, devs[k].zero ? 3 : 2, coords));
    moai_pipeline_options_t po = {.pipeline = MOAI_DEVICE_TRAIN_PIPELINE,
                                  .print_ir_after_all = options->print_ir_after_all,
                                  .print_ir_before_all = options->print_ir_before_all,
                                  .verify_each = true};
    st = moai_pipeline_run(devs[k].module, &po, diag);
    if (!st) st = moai_module_verify(devs[k].module, diag);
    if (st)
      st = moai_status_annotate(st, "while compiling device %zu (tensor rank %d, pipeline stage %d)",
                                k, devs[k].tp, devs[k].pp);
  }
  if (st) {
    moai_plan_device_modules_free(devs, n);
    return st;
  }
  *options->out_devices = devs;
  *options->out_device_count = n;
  return moai_ok_status();
}

moai_status_t moai_compile_module(MlirContext ctx,
                                  const moai_compile_options_t *options,
                                  moai_diag_sink_t *diag,
                                  MlirModule *out_module) {
  const char *path = options->model_path;
  MlirModule module = {NULL};
  bool is_mlir = has_suffix(path, ".mlir");
  bool is_torchscript = has_suffix(path, ".pt") || has_suffix(path, ".pth");
  moai_onnx_import_options_t io = {
      .input_shapes = options->input_shapes,
      .input_shape_count = options->input_shape_count,
      .dim_values = options->dim_values,
      .dim_value_count = options->dim_value_count,
      .trainable = options->trainable,
      .trainable_count = options->trainable_count,
      .frozen = options->frozen,
      .frozen_count = options->frozen_count,
      .check_external_data = options->check_external_data,
  };
  MOAI_LOG(options->log, MOAI_LOG_LEVEL_INFO, "%s %s", is_mlir ? "parsing" : "importing", path);
  if (is_mlir)
    MOAI_RETURN_IF_ERROR(parse_mlir_file(ctx, path, diag, &module));
  else if (is_torchscript)
    MOAI_RETURN_IF_ERROR(moai_ts_import_file(ctx, path, &io, &module));
  else
    MOAI_RETURN_IF_ERROR(moai_onnx_import_file(ctx, path, &io,
                                               moai_allocator_system(), &module));
  if (options->training) set_training_attr(module, options->training);
  if (options->gradients)
    mlirOperationSetAttributeByName(mlirModuleGetOperation(module),
                                    mlirStringRefCreateFromCString("moai.autodiff_inputs"),
                                    mlirUnitAttrGet(ctx));
  if (options->parallel) {
    moai_pipeline_options_t shape = {.pipeline = "builtin.module(moai-shape-infer)",
                                     .verify_each = true};
    MOAI_LOG(options->log, MOAI_LOG_LEVEL_INFO, "planning parallelism");
    moai_status_t st = moai_pipeline_run(module, &shape, diag);
    if (!st) st = moai_parallel_plan_module(module, options->parallel);
    if (st || options->parallel->dry_run) {
      if (st) mlirModuleDestroy(module);
      else *out_module = module;
      return st;
    }
  }
  if (options->parallel && options->out_devices) {
    MlirAttribute par = mlirOperationGetAttributeByName(mlirModuleGetOperation(module),
                                                        mlirStringRefCreateFromCString("moai.parallel"));
    int64_t tp = 1, pp = 1;
    if (!mlirAttributeIsNull(par) && mlirAttributeIsADictionary(par)) {
      MlirAttribute a = mlirDictionaryAttrGetElementByName(par, mlirStringRefCreateFromCString("tp"));
      MlirAttribute b = mlirDictionaryAttrGetElementByName(par, mlirStringRefCreateFromCString("pp"));
      if (!mlirAttributeIsNull(a)) tp = mlirIntegerAttrGetValueInt(a);
      if (!mlirAttributeIsNull(b)) pp = mlirIntegerAttrGetValueInt(b);
    }
    MlirAttribute z = mlirAttributeIsNull(par) ? par
                      : mlirDictionaryAttrGetElementByName(par, mlirStringRefCreateFromCString("zero"));
    MlirAttribute d = mlirAttributeIsNull(par) ? par
                      : mlirDictionaryAttrGetElementByName(par, mlirStringRefCreateFromCString("dp"));
    int64_t dp = !mlirAttributeIsNull(d) ? mlirIntegerAttrGetValueInt(d) : 1;
    bool zero = !mlirAttributeIsNull(z) && mlirIntegerAttrGetValueInt(z) > 0 && dp > 1;
    if (tp > 1 || pp > 1 || zero) {
      moai_status_t st = compile_devices(module, options, diag, zero ? dp : 0, tp, pp);
      if (st) mlirModuleDestroy(module);
      else *out_module = module;
      return st;
    }
  }
  moai_pipeline_options_t po = {
      .pipeline = options->pipeline    ? options->pipeline
                  : options->training  ? MOAI_TRAIN_PIPELINE
                  : options->gradients ? MOAI_GRADIENTS_PIPELINE
                                       : MOAI_DEFAULT_PIPELINE,
      .print_ir_after_all = options->print_ir_after_all,
      .print_ir_before_all = options->print_ir_before_all,
      .verify_each = true,
  };
  MOAI_LOG(options->log, MOAI_LOG_LEVEL_INFO, "running %s", po.pipeline);
  moai_status_t status = moai_pipeline_run(module, &po, diag);
  if (!status) status = moai_module_verify(module, diag);
  if (status) {
    mlirModuleDestroy(module);
    return status;
  }
  *out_module = module;
  return moai_ok_status();
}

/* ---- summary ----------------------------------------------------------- */

static MlirOperation find_main(MlirModule module) {
  MlirBlock body = mlirModuleGetBody(module);
  for (MlirOperation op = mlirBlockGetFirstOperation(body);
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
    MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
    if (name.length == 9 && strncmp(name.data, "func.func", 9) == 0)
      return op;
  }
  return (MlirOperation){NULL};
}

static void append_type(moai_strbuf_t *sb, MlirType type) {
  mlirTypePrint(type, moai_strbuf_mlir_callback, sb);
}

static int64_t type_elements(MlirType type) {
  if (!mlirTypeIsARankedTensor(type) || !mlirShapedTypeHasStaticShape(type))
    return -1;
  int64_t n = 1;
  for (intptr_t i = 0; i < mlirShapedTypeGetRank(type); ++i)
    n *= mlirShapedTypeGetDimSize(type, i);
  return n;
}

static void append_io(moai_strbuf_t *sb, MlirOperation func, const char *attr,
                      intptr_t index, MlirType type) {
  MlirAttribute all = mlirOperationGetAttributeByName(
      func, mlirStringRefCreateFromCString(attr));
  MlirStringRef name = mlirStringRefCreateFromCString("?");
  if (!mlirAttributeIsNull(all) && mlirAttributeIsAArray(all) &&
      index < mlirArrayAttrGetNumElements(all)) {
    MlirAttribute dict = mlirArrayAttrGetElement(all, index);
    if (mlirAttributeIsADictionary(dict)) {
      MlirAttribute n = mlirDictionaryAttrGetElementByName(
          dict, mlirStringRefCreateFromCString("moai.name"));
      if (!mlirAttributeIsNull(n) && mlirAttributeIsAString(n))
        name = mlirStringAttrGetValue(n);
    }
  }
  moai_strbuf_append(sb, "  ");
  moai_strbuf_append_n(sb, name.data, name.length);
  moai_strbuf_append(sb, ": ");
  append_type(sb, type);
  moai_strbuf_append(sb, "\n");
}

static MlirStringRef string_attr(MlirOperation op, const char *name) {
  MlirAttribute a =
      mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAString(a))
    return mlirStringRefCreateFromCString("");
  return mlirStringAttrGetValue(a);
}

static int64_t int_attr(MlirOperation op, const char *name, int64_t fallback) {
  MlirAttribute a =
      mlirOperationGetAttributeByName(op, mlirStringRefCreateFromCString(name));
  if (mlirAttributeIsNull(a) || !mlirAttributeIsAInteger(a)) return fallback;
  return mlirIntegerAttrGetValueInt(a);
}

void moai_module_summarize(MlirModule module, moai_strbuf_t *sb) {
  MlirOperation mop = mlirModuleGetOperation(module);
  MlirStringRef source = string_attr(mop, "moai.source");
  int64_t opset = int_attr(mop, "moai.opset", 0);
  MlirStringRef producer = string_attr(mop, "moai.producer");
  if (opset > 0)
    moai_strbuf_appendf(sb, "moai %s\nmodel: %.*s (opset %lld)\n", moai_version_string(),
                        (int)source.length, source.data, (long long)opset);
  else /* a TorchScript archive has no opset: say what made it */
    moai_strbuf_appendf(sb, "moai %s\nmodel: %.*s (%.*s)\n", moai_version_string(),
                        (int)source.length, source.data, (int)producer.length,
                        producer.length ? producer.data : "");
  MlirOperation func = find_main(module);
  if (mlirOperationIsNull(func)) {
    moai_strbuf_append(sb, "no function\n");
    return;
  }
  MlirBlock entry = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
  moai_strbuf_append(sb, "inputs:\n");
  for (intptr_t i = 0; i < mlirBlockGetNumArguments(entry); ++i)
    append_io(sb, func, "arg_attrs", i,
              mlirValueGetType(mlirBlockGetArgument(entry, i)));
  MlirAttribute fty = mlirOperationGetAttributeByName(
      func, mlirStringRefCreateFromCString("function_type"));
  moai_strbuf_append(sb, "outputs:\n");
  if (!mlirAttributeIsNull(fty) && mlirAttributeIsAType(fty)) {
    MlirType ft = mlirTypeAttrGetValue(fty);
    for (intptr_t i = 0; i < mlirFunctionTypeGetNumResults(ft); ++i)
      append_io(sb, func, "res_attrs", i, mlirFunctionTypeGetResult(ft, i));
  }

  size_t ndefs = 0;
  const moai_op_def_t *defs = moai_op_defs(&ndefs);
  size_t counts[128] = {0};
  size_t other = 0, total_ops = 0;
  int64_t train_tensors = 0, train_elems = 0, frozen_tensors = 0,
          frozen_elems = 0, weight_bytes = 0;
  for (MlirOperation op = mlirBlockGetFirstOperation(entry);
       !mlirOperationIsNull(op); op = mlirOperationGetNextInBlock(op)) {
    MlirStringRef name = mlirIdentifierStr(mlirOperationGetName(op));
    const moai_op_def_t *def = moai_op_def_find(name.data, name.length);
    if (!def || name.length < 5 || strncmp(name.data, "moai.", 5) != 0) {
      ++other;
      continue;
    }
    ++total_ops;
    size_t idx = (size_t)(def - defs);
    if (idx < 128) counts[idx]++;
    if (strcmp(def->name, "weight") == 0) {
      MlirType t = mlirValueGetType(mlirOperationGetResult(op, 0));
      int64_t n = type_elements(t);
      if (n < 0) n = 0;
      moai_dtype_t dt = moai_dtype_from_mlir(mlirShapedTypeGetElementType(t));
      weight_bytes += n * (int64_t)moai_dtype_size(dt);
      if (int_attr(op, "trainable", 0)) {
        ++train_tensors;
        train_elems += n;
      } else {
        ++frozen_tensors;
        frozen_elems += n;
      }
    }
  }
  moai_strbuf_appendf(sb,
                      "parameters: %lld trainable tensors (%lld elements), "
                      "%lld frozen tensors (%lld elements), %.1f MiB of "
                      "weights\n",
                      (long long)train_tensors, (long long)train_elems,
                      (long long)frozen_tensors, (long long)frozen_elems,
                      (double)weight_bytes / (1024.0 * 1024.0));
  moai_strbuf_appendf(sb, "ops: %zu moai ops\n", total_ops);
  for (size_t i = 0; i < ndefs && i < 128; ++i)
    if (counts[i]) moai_strbuf_appendf(sb, "  %-28s %zu\n", defs[i].name, counts[i]);
  /* Written by moai-memory-plan; absent when the pipeline did not run it. */
  int64_t arena = int_attr(func, "moai.arena_size", -1);
  int64_t lower = int_attr(func, "moai.live_lower_bound", -1);
  if (arena >= 0 && lower >= 0)
    moai_strbuf_appendf(sb,
                        "memory: arena %lld bytes (live-set lower bound %lld, "
                        "+%.1f%%)\n",
                        (long long)arena, (long long)lower,
                        lower ? 100.0 * (double)(arena - lower) / (double)lower
                              : 0.0);
}

void moai_module_print(MlirModule module, bool debuginfo, moai_strbuf_t *sb) {
  MlirOpPrintingFlags flags = mlirOpPrintingFlagsCreate();
  if (debuginfo) mlirOpPrintingFlagsEnableDebugInfo(flags, true, false);
  mlirOperationPrintWithFlags(mlirModuleGetOperation(module), flags,
                              moai_strbuf_mlir_callback, sb);
  mlirOpPrintingFlagsDestroy(flags);
  moai_strbuf_append(sb, "\n");
}

/* ---- atomic plan directory ---------------------------------------------- */

moai_status_t moai_plan_file_write(const char *dir, const char *name, const char *data,
                                   size_t len) {
  char path[4096];
  if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "path too long: %s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0)
    return MOAI_STATUS(MOAI_IO_ERROR, "cannot create %s: %s", path,
                       strerror(errno));
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = errno;
      close(fd);
      return MOAI_STATUS(MOAI_IO_ERROR, "writing %s failed: %s", path,
                         strerror(err));
    }
    done += (size_t)n;
  }
  if (fsync(fd) != 0 || close(fd) != 0)
    return MOAI_STATUS(MOAI_IO_ERROR, "flushing %s failed: %s", path,
                       strerror(errno));
  return moai_ok_status();
}

/* Removes a plan directory: plain files, and the sub-directories of a
 * multi-device plan's devices (one level, themselves flat). */
static void remove_plan_dir(const char *dir, int depth) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path)) continue;
      struct stat st;
      if (depth > 0 && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        remove_plan_dir(path, depth - 1);
      else
        unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

static void remove_flat_dir(const char *dir) { remove_plan_dir(dir, 1); }

static void fsync_parent(const char *dir) {
  char parent[4096];
  snprintf(parent, sizeof(parent), "%s", dir);
  char *slash = strrchr(parent, '/');
  if (slash == parent) slash[1] = '\0';
  else if (slash) *slash = '\0';
  else snprintf(parent, sizeof(parent), ".");
  int fd = open(parent, O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

/* ---- the plan's files ------------------------------------------------------ */

static MlirStringRef module_string(MlirModule module, const char *name) {
  return string_attr(mlirModuleGetOperation(module), name);
}

static char *dup_string_ref(MlirStringRef s) {
  char *out = malloc(s.length + 1);
  if (out) {
    if (s.length) memcpy(out, s.data, s.length);
    out[s.length] = '\0';
  }
  return out;
}

/* Everything one device's code generation yields, kept until the plan's
 * files are written. */
typedef struct plan_device_t {
  moai_target_t target;
  moai_device_program_t *program;
} plan_device_t;

static void plan_device_deinit(plan_device_t *d) {
  moai_device_program_destroy(d->program);
  moai_target_deinit(&d->target);
}

/* Target, lowering and the LLVM-dialect module of device 0. */
static moai_status_t plan_device_build(MlirModule module,
                                       const moai_plan_options_t *o,
                                       plan_device_t *d,
                                       MlirModule *out_llvm) {
  MOAI_RETURN_IF_ERROR(moai_target_resolve(o ? o->target_cpu : NULL,
                                           o ? o->target_features : NULL,
                                           &d->target));
  moai_lower_options_t lo = {.device = 0,
                             .layout = moai_weights_layout_safetensors};
  MOAI_RETURN_IF_ERROR(
      moai_device_lower(module, &lo, moai_allocator_system(), &d->program));
  d->program->no_elementwise_fusion = o && o->no_fuse_elementwise;
  MlirContext ctx = mlirModuleGetContext(module);
  moai_diag_sink_t diag;
  moai_diag_attach(ctx, &diag, NULL);
  moai_status_t status = moai_codegen_build(ctx, d->program, &d->target, out_llvm);
  if (status && diag.error_count) {
    moai_status_t first = moai_diag_take_status(&diag, MOAI_INTERNAL, "");
    status = moai_status_annotate(status, "%s", moai_status_message(first));
    moai_status_free(first);
  }
  moai_diag_detach(&diag);
  return status;
}

moai_status_t moai_plan_emit_llvm(MlirModule module,
                                  const moai_plan_options_t *options,
                                  char **out_llvm_ir) {
  plan_device_t d = {0};
  MlirModule llvm = {NULL};
  moai_status_t status = plan_device_build(module, options, &d, &llvm);
  if (!status) status = moai_codegen_compile(llvm, &d.target, NULL, out_llvm_ir);
  if (!mlirModuleIsNull(llvm)) mlirModuleDestroy(llvm);
  plan_device_deinit(&d);
  return status;
}

/* The target's features that are in the runtime's canonical set
 * (loader/cpu_features.h), in the set's order. */
typedef struct feature_list_t {
  const char *names[64];
  size_t count;
} feature_list_t;

typedef struct feature_match_t {
  const char *name;
  bool found;
} feature_match_t;

static void match_feature(void *user, const char *name, size_t len) {
  feature_match_t *m = user;
  if (strlen(m->name) == len && memcmp(m->name, name, len) == 0) m->found = true;
}

static void target_features(const moai_target_t *t, feature_list_t *out) {
  out->count = 0;
  for (size_t i = 0; i < moai_cpu_feature_count() && out->count < 64; ++i) {
    feature_match_t m = {.name = moai_cpu_feature_name(i)};
    moai_target_for_each_feature(t, match_feature, &m);
    if (m.found) out->names[out->count++] = m.name;
  }
}

static void io_descs(const moai_device_io_t *ios, uint32_t n,
                     moai_tensor_desc_t *out) {
  for (uint32_t i = 0; i < n; ++i) {
    const moai_tensor_t *t = &ios[i].tensor;
    uint64_t numel = 1;
    for (int32_t r = 0; r < t->rank; ++r) numel *= (uint64_t)t->dims[r];
    out[i] = (moai_tensor_desc_t){.name = ios[i].name, .dtype = t->dtype,
                                  .rank = t->rank,
                                  .nbytes = numel * moai_dtype_size(t->dtype)};
    memcpy(out[i].dims, t->dims, sizeof(out[i].dims));
  }
}

/* ---- the manifest's training object ----------------------------------------- */

static MlirAttribute training_entry(MlirAttribute dict, const char *key) {
  return mlirDictionaryAttrGetElementByName(dict, mlirStringRefCreateFromCString(key));
}

static double training_f64(MlirAttribute dict, const char *key, double fallback) {
  MlirAttribute a = training_entry(dict, key);
  if (mlirAttributeIsNull(a)) return fallback;
  if (mlirAttributeIsAFloat(a)) return mlirFloatAttrGetValueDouble(a);
  if (mlirAttributeIsAInteger(a)) return (double)mlirIntegerAttrGetValueInt(a);
  return fallback;
}

static int64_t training_i64(MlirAttribute dict, const char *key, int64_t fallback,
                            bool *out_present) {
  MlirAttribute a = training_entry(dict, key);
  bool present = !mlirAttributeIsNull(a) && mlirAttributeIsAInteger(a);
  if (out_present) *out_present = present;
  return present ? mlirIntegerAttrGetValueInt(a) : fallback;
}

/* A copy of the string entry `key` (fallback when absent), or NULL. */
static char *training_str(MlirAttribute dict, const char *key, const char *fallback) {
  MlirAttribute a = training_entry(dict, key);
  if (!mlirAttributeIsNull(a) && mlirAttributeIsAString(a))
    return dup_string_ref(mlirStringAttrGetValue(a));
  return fallback ? dup_string_ref(mlirStringRefCreateFromCString(fallback)) : NULL;
}

typedef struct training_strings_t {
  char *optimizer, *kind, *labels;
  const char **trainable;
} training_strings_t;

static void training_strings_free(training_strings_t *s) {
  free(s->optimizer);
  free(s->kind);
  free(s->labels);
  free(s->trainable);
}

/* The manifest's training object from the module's moai.training attribute
 * (docs/training.md) and the program (trained weights, persistent size). The
 * step returns (loss, loss_weight, ...): outputs 0 and 1. */
static moai_status_t fill_training(MlirModule module, const moai_device_program_t *p,
                                   moai_manifest_training_t *t, training_strings_t *strs) {
  MlirAttribute dict = mlirOperationGetAttributeByName(
      mlirModuleGetOperation(module), mlirStringRefCreateFromCString("moai.training"));
  if (p->num_outputs < 2)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "a training module's @main must return (loss, loss_weight, ...); it "
                       "returns %u value(s): run moai-autodiff and moai-optimizer",
                       p->num_outputs);
  strs->optimizer = training_str(dict, "optimizer", "adamw");
  strs->kind = training_str(dict, "loss_weight_kind", "one");
  strs->labels = training_str(dict, "labels_input", NULL);
  strs->trainable = calloc(p->num_weights + 1, sizeof(char *));
  if (!strs->optimizer || !strs->kind || !strs->trainable)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory writing the manifest");
  MlirAttribute schedule = training_entry(dict, "schedule");
  bool cosine = !mlirAttributeIsNull(schedule) && mlirAttributeIsAString(schedule) &&
                mlirStringRefEqual(mlirStringAttrGetValue(schedule),
                                   mlirStringRefCreateFromCString("cosine"));
  *t = (moai_manifest_training_t){
      .optimizer = strs->optimizer,
      .hyper = {.lr = training_f64(dict, "lr", 1e-3),
                .beta1 = training_f64(dict, "beta1", 0.9),
                .beta2 = training_f64(dict, "beta2", 0.999),
                .eps = training_f64(dict, "eps", 1e-8),
                .weight_decay = training_f64(dict, "weight_decay", 0.0),
                .momentum = training_f64(dict, "momentum", 0.0),
                .dampening = training_f64(dict, "dampening", 0.0),
                .nesterov = training_i64(dict, "nesterov", 0, NULL) != 0,
                .schedule = cosine ? MOAI_LR_COSINE : MOAI_LR_CONSTANT,
                .warmup_steps = training_i64(dict, "warmup_steps", 0, NULL),
                .total_steps = training_i64(dict, "total_steps", 0, NULL)},
      .micro_batches = (uint32_t)training_i64(dict, "micro_batches", 1, NULL),
      .loss_output = p->outputs[0].name,
      .loss_weight_output = p->outputs[1].name,
      .loss_weight_kind = strs->kind,
      .labels_input = strs->labels,
      .persist_bytes = p->persist_size,
  };
  t->ignore_index = training_i64(dict, "ignore_index", 0, &t->has_ignore_index);
  for (uint32_t i = 0; i < p->num_weights; ++i)
    if (p->weights[i].trainable) strs->trainable[t->trainable_count++] = p->weights[i].name;
  t->trainable = strs->trainable;
  if (t->trainable_count == 0)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "the training module trains no weight (no moai.weight with "
                       "trainable = 1 is used)");
  return moai_ok_status();
}

/* The manifest's mesh and prediction from the module's moai.parallel
 * attribute, whoever set it (moaicc --data-parallel or the planner). Absent:
 * a format-1 manifest, one rank. Only data parallelism runs today. */
static moai_status_t fill_parallel(MlirModule module, const moai_device_program_t *p,
                                   moai_manifest_t *m) {
  MlirAttribute dict = mlirOperationGetAttributeByName(
      mlirModuleGetOperation(module), mlirStringRefCreateFromCString("moai.parallel"));
  m->format_version = 1;
  m->mesh_dp = m->mesh_tp = m->mesh_pp = 1;
  if (mlirAttributeIsNull(dict)) return moai_ok_status();
  if (!mlirAttributeIsADictionary(dict))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "the module's moai.parallel attribute is not a "
                       "dictionary");
  int64_t dp = training_i64(dict, "dp", 1, NULL), tp = training_i64(dict, "tp", 1, NULL),
          pp = training_i64(dict, "pp", 1, NULL);
  if (dp < 1 || tp < 1 || pp < 1 || dp > 65536 || dp * tp * pp > 65536)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai.parallel: mesh dp=%lld tp=%lld pp=%lld is "
                       "out of range (1 to 65536 ranks)", (long long)dp, (long long)tp,
                       (long long)pp);
  if (tp > 1 || pp > 1)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai.parallel asks for tp=%lld pp=%lld, but the "
                       "module is one device's program: a tensor- or pipeline-parallel plan is "
                       "compiled per device by moai-partition; give moaicc the model with "
                       "--devices N --strategy dp=..,tp=..,pp=.. instead", (long long)tp,
                       (long long)pp);
  if (dp > 1 && !p->training)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai.parallel: dp=%lld needs a training plan "
                       "(moaicc --train)", (long long)dp);
  int64_t mb = training_i64(dict, "micro_batches", 0, NULL);
  MlirAttribute train = mlirOperationGetAttributeByName(
      mlirModuleGetOperation(module), mlirStringRefCreateFromCString("moai.training"));
  int64_t k = mlirAttributeIsNull(train) ? 1 : training_i64(train, "micro_batches", 1, NULL);
  if (mb > 0 && p->training && mb != k)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "moai.parallel.micro_batches = %lld disagrees "
                       "with moai.training.micro_batches = %lld", (long long)mb, (long long)k);
  m->format_version = 2;
  m->mesh_dp = (uint32_t)dp;
  double secs = training_f64(dict, "predicted_step_seconds", -1);
  int64_t mem = training_i64(dict, "predicted_memory_bytes", -1, NULL);
  m->has_prediction = secs >= 0 && mem >= 0;
  m->predicted_step_seconds = m->has_prediction ? secs : 0;
  m->predicted_memory_bytes = m->has_prediction ? (uint64_t)mem : 0;
  return moai_ok_status();
}

static moai_status_t write_manifest(const char *tmp, MlirModule module,
                                    const plan_device_t *d,
                                    const moai_manifest_device_t *dev, bool mesh_device) {
  const moai_device_program_t *p = d->program;
  feature_list_t features;
  target_features(&d->target, &features);
  moai_tensor_desc_t *ins = calloc(p->num_inputs + 1, sizeof(*ins));
  moai_tensor_desc_t *outs = calloc(p->num_outputs + 1, sizeof(*outs));
  char *source = dup_string_ref(module_string(module, "moai.source"));
  char *producer = dup_string_ref(module_string(module, "moai.producer"));
  moai_status_t status = moai_ok_status();
  moai_manifest_training_t train = {0};
  training_strings_t strs = {0};
  if (!ins || !outs || !source || !producer) {
    status = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory writing the manifest");
  } else if (p->training && (status = fill_training(module, p, &train, &strs))) {
    /* reported below */
  } else {
    io_descs(p->inputs, p->num_inputs, ins);
    io_descs(p->outputs, p->num_outputs, outs);
    moai_manifest_t m = {
        .abi_version = MOAI_ABI_VERSION,
        .moai_version = moai_version_string(),
        .target_triple = d->target.triple,
        .target_cpu = d->target.cpu,
        .feature_count = features.count,
        .features = features.names,
        .model_source = source,
        .model_opset = int_attr(mlirModuleGetOperation(module), "moai.opset", 0),
        .model_producer = producer,
        .input_count = p->num_inputs,
        .output_count = p->num_outputs,
        .device_count = 1,
        .inputs = ins,
        .outputs = outs,
        .devices = (moai_manifest_device_t *)dev,
        .training = p->training,
        .train = train,
    };
    /* A device of a mesh plan is a plain single-device plan: the mesh is
     * the top manifest's (moai_plan_write_mesh). */
    if (mesh_device) {
      m.format_version = 1;
      m.mesh_dp = m.mesh_tp = m.mesh_pp = 1;
    } else {
      status = fill_parallel(module, p, &m);
    }
    char path[4200];
    snprintf(path, sizeof(path), "%s/manifest.json", tmp);
    if (!status) status = moai_manifest_write(path, &m);
  }
  training_strings_free(&strs);
  free(ins);
  free(outs);
  free(source);
  free(producer);
  return status;
}

/* The backend's part of plan.txt. */
static void summarize_backend(const plan_device_t *d, moai_strbuf_t *sb) {
  const moai_device_program_t *p = d->program;
  feature_list_t features;
  target_features(&d->target, &features);
  moai_strbuf_appendf(sb, "target: %s, cpu %s\n  features:", d->target.triple,
                      d->target.cpu);
  for (size_t i = 0; i < features.count; ++i)
    moai_strbuf_appendf(sb, " %s", features.names[i]);
  moai_strbuf_appendf(sb,
                      "%s\ndevice 0: %u kernel calls for %zu ops, arena %llu "
                      "bytes (live-set lower bound %llu)\n"
                      "  weights-0.safetensors: %u tensors, %llu bytes; "
                      "constants %llu bytes\n",
                      features.count ? "" : " (none of moai's set)", p->num_ops,
                      p->lowered_ops, (unsigned long long)p->arena_size,
                      (unsigned long long)p->live_lower_bound, p->num_weights,
                      (unsigned long long)p->weights_size,
                      (unsigned long long)p->const_size);
  if (p->training)
    moai_strbuf_appendf(sb, "  training: update %u kernel calls, %u state tensors, persistent "
                            "region %llu bytes\n",
                        p->update.count, p->num_state, (unsigned long long)p->persist_size);
}

moai_status_t moai_plan_files_write(const char *tmp, MlirModule module, const char *summary,
                                    const moai_plan_options_t *o, bool mesh_device) {
  const moai_log_sink_t *log = o ? o->log : NULL;
  plan_device_t d = {0};
  MlirModule llvm = {NULL};
  char path[4200], obj[4200];
  moai_manifest_device_t dev = {.index = 0,
                                .binary = "device-0.so",
                                .weights = "weights-0.safetensors"};
  moai_status_t status = plan_device_build(module, o, &d, &llvm);
  if (!status) status = moai_weights_check(d.program);
  if (!status) {
    MOAI_LOG(log, MOAI_LOG_LEVEL_INFO, "compiling device 0 for %s (%s): %u kernel calls",
             d.target.triple, d.target.cpu, d.program->num_ops);
    snprintf(obj, sizeof(obj), "%s/device-0.o", tmp);
    snprintf(path, sizeof(path), "%s/device-0.so", tmp);
    status = moai_codegen_compile(llvm, &d.target, obj, NULL);
    if (!status) status = moai_codegen_link(obj, path);
    unlink(obj);
  }
  if (!status) status = moai_sha256_file(path, dev.binary_sha256);
  if (!status) {
    MOAI_LOG(log, MOAI_LOG_LEVEL_INFO, "writing %u weights (%llu bytes)",
             d.program->num_weights, (unsigned long long)d.program->weights_size);
    MlirStringRef src = module_string(module, "moai.source");
    char *model_path = dup_string_ref(src);
    snprintf(path, sizeof(path), "%s/weights-0.safetensors", tmp);
    status = model_path ? moai_weights_write(path, d.program, model_path)
                        : MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory");
    free(model_path);
  }
  if (!status) status = moai_sha256_file(path, dev.weights_sha256);
  if (!status) {
    dev.arena_bytes = d.program->arena_size;
    dev.weights_bytes = d.program->weights_size;
    dev.const_bytes = d.program->const_size;
    dev.live_lower_bound_bytes = d.program->live_lower_bound;
    status = write_manifest(tmp, module, &d, &dev, mesh_device);
  }
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  if (!status) {
    moai_module_print(module, false, &sb);
    status = sb.failed ? MOAI_STATUS(MOAI_OUT_OF_MEMORY,
                                     "out of memory printing the module")
                       : moai_plan_file_write(tmp, "model.mlir",
                                           sb.data ? sb.data : "", sb.length);
    moai_strbuf_reset(&sb);
  }
  if (!status) {
    moai_strbuf_append(&sb, summary);
    summarize_backend(&d, &sb);
    status = sb.failed ? MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory")
                       : moai_plan_file_write(tmp, "plan.txt", sb.data, sb.length);
    moai_strbuf_reset(&sb);
  }
  if (!mlirModuleIsNull(llvm)) mlirModuleDestroy(llvm);
  plan_device_deinit(&d);
  return status;
}

typedef struct single_plan_t {
  MlirModule module;
  const char *summary;
  const moai_plan_options_t *options;
} single_plan_t;

static moai_status_t fill_single_plan(void *user, const char *tmp) {
  const single_plan_t *p = user;
  return moai_plan_files_write(tmp, p->module, p->summary, p->options, false);
}

moai_status_t moai_plan_write(const char *dir, MlirModule module,
                              const char *summary,
                              const moai_plan_options_t *options) {
  single_plan_t p = {module, summary, options};
  return moai_plan_dir_commit(dir, fill_single_plan, &p);
}

moai_status_t moai_plan_dir_commit(const char *dir, moai_plan_fill_fn_t fill, void *user) {
  size_t dlen = strlen(dir);
  while (dlen > 1 && dir[dlen - 1] == '/') --dlen;
  char target[4096], tmp[4160], old[4160];
  if (dlen + 32 >= sizeof(target))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "plan path too long: %s", dir);
  snprintf(target, sizeof(target), "%.*s", (int)dlen, dir);
  struct stat st;
  bool exists = stat(target, &st) == 0;
  if (exists) {
    char marker[4200];
    snprintf(marker, sizeof(marker), "%s/plan.txt", target);
    DIR *d = S_ISDIR(st.st_mode) ? opendir(target) : NULL;
    bool empty = true;
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) empty = false;
      closedir(d);
    }
    if (!S_ISDIR(st.st_mode) || (!empty && access(marker, F_OK) != 0))
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "refusing to replace '%s': it exists and is not a "
                         "moai plan directory (no plan.txt); choose another "
                         "-o path",
                         target);
  }
  snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", target);
  if (!mkdtemp(tmp))
    return MOAI_STATUS(MOAI_IO_ERROR, "cannot create a directory next to %s: %s",
                       target, strerror(errno));
  moai_status_t status = fill(user, tmp);
  if (!status && exists) {
    snprintf(old, sizeof(old), "%s.old-XXXXXX", target);
    if (!mkdtemp(old) || rename(target, old) != 0) {
      status = MOAI_STATUS(MOAI_IO_ERROR, "cannot move the old plan %s aside: %s",
                           target, strerror(errno));
    }
  }
  if (!status && rename(tmp, target) != 0) {
    status = MOAI_STATUS(MOAI_IO_ERROR, "cannot rename %s to %s: %s", tmp,
                         target, strerror(errno));
    if (exists) rename(old, target); /* put the old plan back */
  }
  if (status) {
    remove_flat_dir(tmp);
    return status;
  }
  if (exists) remove_flat_dir(old);
  fsync_parent(target);
  return moai_ok_status();
}
