#include "driver/compile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "driver/pipeline.h"
#include "ir/dtype.h"
#include "ir/op_defs.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "onnx/onnx_import.h"
#include "version.h"

moai_compile_options_t moai_compile_options_default(void) {
  return (moai_compile_options_t){.check_external_data = true};
}

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

moai_status_t moai_compile_module(MlirContext ctx,
                                  const moai_compile_options_t *options,
                                  moai_diag_sink_t *diag,
                                  MlirModule *out_module) {
  const char *path = options->model_path;
  MlirModule module = {NULL};
  if (has_suffix(path, ".pt") || has_suffix(path, ".pth")) {
    return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                       "%s: TorchScript archives are not supported yet; "
                       "export the model with torch.onnx.export and pass the "
                       ".onnx file",
                       path);
  }
  moai_onnx_import_options_t io = {
      .input_shapes = options->input_shapes,
      .input_shape_count = options->input_shape_count,
      .trainable = options->trainable,
      .trainable_count = options->trainable_count,
      .frozen = options->frozen,
      .frozen_count = options->frozen_count,
      .check_external_data = options->check_external_data,
  };
  MOAI_LOG(options->log, MOAI_LOG_LEVEL_INFO, "importing %s", path);
  MOAI_RETURN_IF_ERROR(moai_onnx_import_file(ctx, path, &io,
                                             moai_allocator_system(), &module));
  moai_pipeline_options_t po = {
      .pipeline = options->pipeline ? options->pipeline : MOAI_DEFAULT_PIPELINE,
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
  moai_strbuf_appendf(sb, "moai %s\nmodel: %.*s (opset %lld)\n",
                      moai_version_string(), (int)source.length, source.data,
                      (long long)int_attr(mop, "moai.opset", 0));
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

static moai_status_t write_file_synced(const char *dir, const char *name,
                                       const char *data, size_t len) {
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

/* Removes a directory holding only plain files (a plan). */
static void remove_flat_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (d) {
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
      if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
      if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) < (int)sizeof(path))
        unlink(path);
    }
    closedir(d);
  }
  rmdir(dir);
}

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

moai_status_t moai_plan_write(const char *dir, MlirModule module,
                              const char *summary) {
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
  moai_strbuf_t sb;
  moai_strbuf_init(&sb, moai_allocator_system());
  moai_module_print(module, false, &sb);
  moai_status_t status =
      sb.failed ? MOAI_STATUS(MOAI_OUT_OF_MEMORY, "out of memory printing the module")
                : write_file_synced(tmp, "model.mlir", sb.data ? sb.data : "",
                                    sb.length);
  moai_strbuf_reset(&sb);
  if (!status)
    status = write_file_synced(tmp, "plan.txt", summary, strlen(summary));
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
