/* The ONNX importer's entry points: reading and parsing the model, the
 * checks on the model as a whole (opset, graph), and the order of the work
 * (signature, initializers, nodes, outputs, verification). The pieces live
 * beside it: signature.c, initializers.c, nodes.c, attrs.c, tensors.c,
 * wire.c, name_map.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "onnx/importer.h"
#include "shape_infer/shape_infer.h"

/* ---- helpers shared by the importer's files ------------------------------ */

moai_status_t moai_onnx_error(const moai_onnx_importer_t *im,
                              const char *src_file, int src_line,
                              moai_status_code_t code, const char *fmt, ...) {
  char msg[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof(msg), fmt, args);
  va_end(args);
  return moai_status_make(code, src_file, src_line, "%s: %s", im->path, msg);
}

moai_status_t moai_onnx_node_error(const moai_onnx_importer_t *im,
                                   const moai_onnx_node_t *node,
                                   const char *src_file, int src_line,
                                   moai_status_code_t code, const char *fmt,
                                   ...) {
  char msg[1024];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof(msg), fmt, args);
  va_end(args);
  return moai_status_make(code, src_file, src_line, "%s: node '%s' (%s): %s",
                          im->path, node->name, node->op_type, msg);
}

moai_status_t moai_onnx_scratch_reserve(moai_onnx_importer_t *im,
                                        moai_onnx_scratch_t *s,
                                        size_t elem_size, size_t count) {
  if (count > SIZE_MAX / elem_size)
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "scratch array of %zu elements",
                       count);
  size_t need = count * elem_size;
  if (s->data && need <= s->capacity) return moai_ok_status();
  size_t capacity = s->capacity ? s->capacity : 64;
  while (capacity < need)
    capacity = capacity > SIZE_MAX / 2 ? need : capacity * 2;
  void *p = s->data;
  MOAI_RETURN_IF_ERROR(moai_allocator_realloc(im->allocator, capacity, &p));
  s->data = p;
  s->capacity = capacity;
  return moai_ok_status();
}

MlirNamedAttribute moai_onnx_named(MlirContext ctx, const char *name,
                                   MlirAttribute attr) {
  return mlirNamedAttributeGet(
      mlirIdentifierGet(ctx, mlirStringRefCreateFromCString(name)), attr);
}

MlirAttribute moai_onnx_string_attr(MlirContext ctx, const char *s) {
  return mlirStringAttrGet(ctx, mlirStringRefCreateFromCString(s));
}

MlirAttribute moai_onnx_i64_attr(MlirContext ctx, int64_t v) {
  return mlirIntegerAttrGet(mlirIntegerTypeGet(ctx, 64), v);
}

MlirOperation moai_onnx_append_op(moai_onnx_importer_t *im,
                                  MlirOperationState *state) {
  MlirOperation op = mlirOperationCreate(state);
  if (!mlirOperationIsNull(op)) mlirBlockAppendOwnedOperation(im->body, op);
  return op;
}

void moai_onnx_format_shape(MlirType type, char *buf, size_t size) {
  if (!mlirTypeIsAShaped(type) || !mlirShapedTypeHasRank(type)) {
    snprintf(buf, size, "*");
    return;
  }
  int64_t rank = mlirShapedTypeGetRank(type);
  if (rank == 0) {
    snprintf(buf, size, "scalar");
    return;
  }
  size_t used = 0;
  buf[0] = '\0';
  for (int64_t i = 0; i < rank && used < size; ++i) {
    int64_t d = mlirShapedTypeGetDimSize(type, (intptr_t)i);
    int n = mlirShapedTypeIsDynamicSize(d)
                ? snprintf(buf + used, size - used, "%s?", i ? "x" : "")
                : snprintf(buf + used, size - used, "%s%lld", i ? "x" : "",
                           (long long)d);
    if (n < 0) break;
    used += (size_t)n;
  }
}

/* ---- the model as a whole ------------------------------------------------ */

static moai_status_t resolve_opset(moai_onnx_importer_t *im) {
  const Onnx__ModelProto *m = im->model;
  int64_t opset = -1;
  for (size_t i = 0; i < m->n_opset_import; ++i) {
    const Onnx__OperatorSetIdProto *o = m->opset_import[i];
    const char *domain = moai_onnx_str(o->domain);
    if (strcmp(domain, "") != 0 && strcmp(domain, "ai.onnx") != 0) continue;
    if (!o->has_version)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "the ai.onnx opset import has no version");
    if (opset >= 0 && opset != o->version)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "the model imports ai.onnx twice (opsets %lld and "
                             "%lld)",
                             (long long)opset, (long long)o->version);
    opset = o->version;
  }
  /* Ops of other domains only: unsupported rather than malformed. */
  if (opset < 0 && m->n_opset_import)
    return MOAI_ONNX_ERROR(
        im, MOAI_UNIMPLEMENTED,
        "the model imports no ai.onnx opset, only domain '%s'",
        moai_onnx_str(m->opset_import[0]->domain));
  if (opset < 0)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "the model imports no ai.onnx opset");
  if (opset < MOAI_ONNX_MIN_OPSET || opset > MOAI_ONNX_MAX_OPSET)
    return MOAI_ONNX_ERROR(im, MOAI_UNIMPLEMENTED,
                           "ai.onnx opset %lld is not supported (moai accepts "
                           "opsets %d to %d)",
                           (long long)opset, MOAI_ONNX_MIN_OPSET,
                           MOAI_ONNX_MAX_OPSET);
  im->opset = opset;
  return moai_ok_status();
}

/* value_info and graph outputs by name, for result types. */
static moai_status_t index_value_infos(moai_onnx_importer_t *im) {
  const Onnx__GraphProto *g = im->graph;
  MOAI_RETURN_IF_ERROR(moai_onnx_name_map_reserve(
      &im->value_infos, g->n_value_info + g->n_output));
  for (size_t k = 0; k < 2; ++k) {
    size_t n = k ? g->n_output : g->n_value_info;
    Onnx__ValueInfoProto **infos = k ? g->output : g->value_info;
    for (size_t i = 0; i < n; ++i) {
      const char *name = moai_onnx_str(infos[i]->name);
      if (!*name || !infos[i]->type) continue;
      moai_onnx_name_entry_t *e;
      bool existed;
      MOAI_RETURN_IF_ERROR(
          moai_onnx_name_map_insert(&im->value_infos, name, &e, &existed));
      e->ptr = infos[i];
    }
  }
  return moai_ok_status();
}

static moai_status_t set_module_attributes(moai_onnx_importer_t *im,
                                           MlirModule module) {
  MlirOperation op = mlirModuleGetOperation(module);
  MlirContext ctx = im->ctx;
  const char *name = moai_onnx_str(im->model->producer_name);
  const char *version = moai_onnx_str(im->model->producer_version);
  moai_strbuf_t producer;
  moai_strbuf_init(&producer, im->allocator);
  moai_strbuf_append(&producer, name);
  if (*name && *version) moai_strbuf_append(&producer, " ");
  moai_strbuf_append(&producer, version);
  char *text = NULL;
  MOAI_RETURN_IF_ERROR(moai_strbuf_finish(&producer, &text));
  mlirOperationSetAttributeByName(
      op, mlirStringRefCreateFromCString("moai.producer"),
      moai_onnx_string_attr(ctx, text));
  moai_allocator_free(im->allocator, text);
  mlirOperationSetAttributeByName(op,
                                  mlirStringRefCreateFromCString("moai.source"),
                                  moai_onnx_string_attr(ctx, im->path));
  mlirOperationSetAttributeByName(op,
                                  mlirStringRefCreateFromCString("moai.opset"),
                                  moai_onnx_i64_attr(ctx, im->opset));
  MlirAttribute trainable;
  MOAI_RETURN_IF_ERROR(moai_onnx_trainable_attr(im, &trainable));
  mlirOperationSetAttributeByName(
      op, mlirStringRefCreateFromCString("moai.trainable_parameters"),
      trainable);
  return moai_ok_status();
}

/* Builds @main into `module`. */
static moai_status_t build_module(moai_onnx_importer_t *im, MlirModule module) {
  MlirOperation func;
  MOAI_RETURN_IF_ERROR(moai_onnx_build_main(im, module, &func));
  MOAI_RETURN_IF_ERROR(moai_onnx_import_initializers(im));
  for (size_t i = 0; i < im->graph->n_node; ++i)
    MOAI_RETURN_IF_ERROR(moai_onnx_import_node(im, (long)i));
  MOAI_RETURN_IF_ERROR(moai_onnx_finish_main(im, func));
  MOAI_RETURN_IF_ERROR(set_module_attributes(im, module));
  if (!mlirOperationVerify(mlirModuleGetOperation(module))) {
    char fallback[512];
    snprintf(fallback, sizeof(fallback),
             "%s: the imported module does not verify", im->path);
    return moai_diag_take_status(&im->diag, MOAI_INTERNAL, fallback);
  }
  return moai_ok_status();
}

static moai_status_t import_model(moai_onnx_importer_t *im,
                                  MlirModule *out_module) {
  MOAI_RETURN_IF_ERROR(resolve_opset(im));
  im->graph = im->model->graph;
  if (!im->graph)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT, "the model has no graph");
  if (!im->graph->n_output)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "the graph has no outputs");
  MOAI_RETURN_IF_ERROR(index_value_infos(im));
  MOAI_RETURN_IF_ERROR(moai_onnx_resolve_trainable(im));
  MlirModule module = mlirModuleCreateEmpty(im->file_loc);
  moai_status_t status = build_module(im, module);
  if (status) {
    mlirModuleDestroy(module);
    return status;
  }
  *out_module = module;
  return moai_ok_status();
}

/* ---- parsing ------------------------------------------------------------- */

/* protobuf-c allocates through the caller's allocator; a failed allocation
 * must read as out of memory, not as a corrupt file. */
typedef struct pb_allocator_state_t {
  moai_allocator_t allocator;
  bool failed;
} pb_allocator_state_t;

static void *pb_alloc(void *data, size_t size) {
  pb_allocator_state_t *state = data;
  void *p = state->allocator.fn(state->allocator.self, NULL, size ? size : 1);
  if (!p) state->failed = true;
  return p;
}

static void pb_free(void *data, void *ptr) {
  pb_allocator_state_t *state = data;
  if (ptr) state->allocator.fn(state->allocator.self, ptr, 0);
}

static void importer_deinit(moai_onnx_importer_t *im) {
  moai_onnx_name_map_deinit(&im->values);
  moai_onnx_name_map_deinit(&im->value_infos);
  moai_onnx_name_map_deinit(&im->initializers);
  moai_allocator_free(im->allocator, im->trainable);
  moai_allocator_free(im->allocator, im->raw_offsets);
  moai_onnx_scratch_t *scratch[] = {&im->scratch_values, &im->scratch_types,
                                    &im->scratch_dims, &im->scratch_ints,
                                    &im->scratch_bytes};
  for (size_t i = 0; i < sizeof(scratch) / sizeof(scratch[0]); ++i)
    moai_allocator_free(im->allocator, scratch[i]->data);
}

moai_status_t moai_onnx_import_buffer(MlirContext ctx, const void *data,
                                      size_t size, const char *display_name,
                                      const char *base_dir,
                                      const moai_onnx_import_options_t *options,
                                      moai_allocator_t allocator,
                                      MlirModule *out_module) {
  if (!display_name) display_name = "<buffer>";
  if (mlirContextIsNull(ctx) || !out_module || (!data && size))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: moai_onnx_import_buffer needs a context, an "
                       "output module and data",
                       display_name);
  pb_allocator_state_t pb_state = {.allocator = allocator};
  ProtobufCAllocator pb = {
      .alloc = pb_alloc, .free = pb_free, .allocator_data = &pb_state};
  Onnx__ModelProto *model = onnx__model_proto__unpack(&pb, size, data);
  if (!model) {
    if (pb_state.failed)
      return MOAI_STATUS(MOAI_OUT_OF_MEMORY,
                         "%s: out of memory parsing the model", display_name);
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: not a valid ONNX model (protobuf parse failed): "
                       "the file is truncated or corrupt",
                       display_name);
  }
  moai_onnx_importer_t im = {
      .ctx = ctx,
      .allocator = allocator,
      .path = display_name,
      .base_dir = base_dir && *base_dir ? base_dir : ".",
      .data = data,
      .size = size,
      .model = model,
      .file_loc = mlirLocationFileLineColGet(
          ctx, mlirStringRefCreateFromCString(display_name), 1, 1),
  };
  if (options) im.options = *options;
  moai_onnx_name_map_init(&im.values, allocator);
  moai_onnx_name_map_init(&im.value_infos, allocator);
  moai_onnx_name_map_init(&im.initializers, allocator);
  moai_diag_attach(ctx, &im.diag, NULL);
  moai_status_t status = import_model(&im, out_module);
  moai_diag_detach(&im.diag);
  importer_deinit(&im);
  onnx__model_proto__free_unpacked(model, &pb);
  return status;
}

/* ---- files --------------------------------------------------------------- */

moai_onnx_import_options_t moai_onnx_import_options_default(void) {
  return (moai_onnx_import_options_t){.check_external_data = true};
}

/* The directory part of `path` ("." when it has none). */
static moai_status_t dir_of(moai_allocator_t allocator, const char *path,
                            char **out_dir) {
  const char *slash = strrchr(path, '/');
  if (!slash) return moai_allocator_strdup(allocator, ".", out_dir);
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  void *p = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(allocator, n + 1, &p));
  memcpy(p, path, n);
  ((char *)p)[n] = '\0';
  *out_dir = p;
  return moai_ok_status();
}

moai_status_t moai_onnx_import_file(MlirContext ctx, const char *path,
                                    const moai_onnx_import_options_t *options,
                                    moai_allocator_t allocator,
                                    MlirModule *out_module) {
  if (!path || !*path)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "no model path given");
  int fd = open(path, O_RDONLY);
  if (fd < 0)
    return MOAI_STATUS(errno == ENOENT ? MOAI_NOT_FOUND : MOAI_IO_ERROR,
                       "%s: cannot open the model: %s", path, strerror(errno));
  struct stat st;
  moai_status_t status = moai_ok_status();
  if (fstat(fd, &st) != 0) {
    status = MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot read the model: %s", path,
                         strerror(errno));
  } else if (!S_ISREG(st.st_mode)) {
    status = MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: not a regular file (not an ONNX model)", path);
  } else if (st.st_size == 0) {
    status = MOAI_STATUS(MOAI_DATA_LOSS,
                         "%s: the file is empty (not an ONNX model)", path);
  }
  if (status) {
    close(fd);
    return status;
  }
  /* Mapped, not read: protobuf-c copies what it keeps, and the pages of
   * large raw_data payloads are touched once. */
  size_t size = (size_t)st.st_size;
  void *data = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  close(fd);
  if (data == MAP_FAILED)
    return MOAI_STATUS(MOAI_IO_ERROR, "%s: cannot map the model: %s", path,
                       strerror(map_errno));
  char *dir = NULL;
  status = dir_of(allocator, path, &dir);
  if (!status)
    status = moai_onnx_import_buffer(ctx, data, size, path, dir, options,
                                     allocator, out_module);
  moai_allocator_free(allocator, dir);
  munmap(data, size);
  return status;
}
