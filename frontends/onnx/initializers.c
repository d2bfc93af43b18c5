/* Initializers: which are trainable, and the moai.weight / moai.constant op
 * each becomes. A weight records where its bytes are (raw_data in the model
 * file, an external file, typed fields, or nowhere) without reading them. */
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "onnx/importer.h"

#define TRAINABLE_METADATA_KEY "moai.trainable_parameters"

/* ---- trainable ----------------------------------------------------------- */

static bool is_float_initializer(const Onnx__TensorProto *t) {
  return t->has_data_type && moai_dtype_is_float((moai_dtype_t)t->data_type);
}

/* PyTorch names folded constants "onnx::..." or "/path/Constant_output". */
static bool is_folded_constant(const char *name) {
  return strncmp(name, "onnx::", 6) == 0 || name[0] == '/';
}

static moai_status_t mark(moai_onnx_importer_t *im, const char *name,
                          const char *source, bool trainable) {
  const moai_onnx_name_entry_t *e =
      moai_onnx_name_map_find(&im->initializers, name);
  if (!e)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s names '%s', which is not an initializer", source,
                           name);
  const Onnx__TensorProto *t = im->graph->initializer[e->index];
  if (trainable && !is_float_initializer(t))
    return MOAI_ONNX_ERROR(
        im, MOAI_INVALID_ARGUMENT,
        "%s names '%s', an initializer of dtype %s: only float "
        "initializers can be trained",
        source, name,
        moai_onnx_dtype_code_name(t->has_data_type ? t->data_type : 0));
  im->trainable[e->index] = trainable;
  return moai_ok_status();
}

/* The list in the model metadata, if any; *out_found tells. */
static moai_status_t mark_from_metadata(moai_onnx_importer_t *im,
                                        bool *out_found) {
  const Onnx__ModelProto *m = im->model;
  const char *text = NULL;
  *out_found = false;
  for (size_t i = 0; i < m->n_metadata_props; ++i)
    if (strcmp(moai_onnx_str(m->metadata_props[i]->key),
               TRAINABLE_METADATA_KEY) == 0)
      text = moai_onnx_str(m->metadata_props[i]->value);
  if (!text) return moai_ok_status();
  *out_found = true;
  json_error_t error;
  json_t *list = json_loads(text, 0, &error);
  if (!list || !json_is_array(list)) {
    json_decref(list);
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "metadata %s is not a JSON list of names%s%s",
                           TRAINABLE_METADATA_KEY, list ? "" : ": ",
                           list ? "" : error.text);
  }
  moai_status_t status = moai_ok_status();
  for (size_t i = 0; i < json_array_size(list) && !status; ++i) {
    const char *name = json_string_value(json_array_get(list, i));
    status = name ? mark(im, name, "metadata " TRAINABLE_METADATA_KEY, true)
                  : MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                                    "metadata %s: entry %zu is not a string",
                                    TRAINABLE_METADATA_KEY, i);
  }
  json_decref(list);
  return status;
}

moai_status_t moai_onnx_resolve_trainable(moai_onnx_importer_t *im) {
  const Onnx__GraphProto *g = im->graph;
  size_t n = g->n_initializer;
  MOAI_RETURN_IF_ERROR(moai_onnx_name_map_reserve(&im->initializers, n));
  for (size_t i = 0; i < n; ++i) {
    const char *name = moai_onnx_str(g->initializer[i]->name);
    if (!*name)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "initializer %zu has no name", i);
    moai_onnx_name_entry_t *e;
    bool existed;
    MOAI_RETURN_IF_ERROR(
        moai_onnx_name_map_insert(&im->initializers, name, &e, &existed));
    if (existed)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "initializer '%s' is defined twice", name);
    e->index = (long)i;
  }
  void *mem = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(im->allocator, n, &mem));
  im->trainable = mem;
  const moai_onnx_import_options_t *o = &im->options;
  if (o->trainable) {
    for (size_t i = 0; i < o->trainable_count; ++i)
      MOAI_RETURN_IF_ERROR(
          mark(im, moai_onnx_str(o->trainable[i]), "the trainable list", true));
  } else {
    bool found = false;
    MOAI_RETURN_IF_ERROR(mark_from_metadata(im, &found));
    for (size_t i = 0; i < n && !found; ++i) {
      const Onnx__TensorProto *t = g->initializer[i];
      im->trainable[i] = is_float_initializer(t) &&
                         !is_folded_constant(moai_onnx_str(t->name));
    }
  }
  for (size_t i = 0; o->frozen && i < o->frozen_count; ++i)
    MOAI_RETURN_IF_ERROR(
        mark(im, moai_onnx_str(o->frozen[i]), "the frozen list", false));
  return moai_ok_status();
}

moai_status_t moai_onnx_trainable_attr(moai_onnx_importer_t *im,
                                       MlirAttribute *out_attr) {
  const Onnx__GraphProto *g = im->graph;
  void *mem = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(
      im->allocator, g->n_initializer * sizeof(MlirAttribute), &mem));
  MlirAttribute *names = mem;
  size_t count = 0;
  for (size_t i = 0; i < g->n_initializer; ++i)
    if (im->trainable[i])
      names[count++] = moai_onnx_string_attr(im->ctx, g->initializer[i]->name);
  *out_attr = mlirArrayAttrGet(im->ctx, (intptr_t)count, names);
  moai_allocator_free(im->allocator, mem);
  return moai_ok_status();
}

/* ---- where the bytes are ------------------------------------------------- */

typedef struct weight_place_t {
  const char *storage; /* "raw", "external", "field", "absent" */
  const char *file;    /* NULL: none */
  int64_t offset;      /* -1: none */
  int64_t length;
} weight_place_t;

static moai_status_t place_raw(moai_onnx_importer_t *im, size_t index,
                               const char *what, weight_place_t *place) {
  size_t n = im->graph->n_initializer;
  if (!im->raw_offsets) {
    void *mem = NULL;
    MOAI_RETURN_IF_ERROR(
        moai_allocator_malloc(im->allocator, 2 * n * sizeof(int64_t), &mem));
    im->raw_offsets = mem;
    if (!moai_onnx_wire_find_raw_data(im->data, im->size, n, im->raw_offsets,
                                      im->raw_offsets + n))
      return MOAI_ONNX_ERROR(
          im, MOAI_DATA_LOSS,
          "cannot locate the initializers' raw_data in the file "
          "(unexpected protobuf layout)");
  }
  int64_t offset = im->raw_offsets[index];
  int64_t length = im->raw_offsets[n + index];
  const Onnx__TensorProto *t = im->graph->initializer[index];
  if (offset < 0 || (uint64_t)length != (uint64_t)t->raw_data.len ||
      (uint64_t)offset + (uint64_t)length > (uint64_t)im->size)
    return MOAI_ONNX_ERROR(im, MOAI_DATA_LOSS,
                           "%s: cannot locate its raw_data in the file", what);
  *place = (weight_place_t){"raw", im->path, offset, length};
  return moai_ok_status();
}

static bool parse_i64(const char *s, int64_t *out) {
  if (!s || !*s) return false;
  int64_t v = 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9' || v > (INT64_MAX - 9) / 10) return false;
    v = v * 10 + (*s - '0');
  }
  *out = v;
  return true;
}

/* Whether `location` stays inside the model's directory. */
static bool location_is_contained(const char *location) {
  if (location[0] == '/') return false;
  for (const char *p = location; *p;) {
    const char *end = strchr(p, '/');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 2 && p[0] == '.' && p[1] == '.') return false;
    p += len;
    if (*p == '/') ++p;
  }
  return true;
}

/* Checks the external file, if present, holds [offset, offset+length). */
static moai_status_t check_external_file(moai_onnx_importer_t *im,
                                         const char *location, const char *name,
                                         const weight_place_t *place) {
  size_t dir_len = strlen(im->base_dir), loc_len = strlen(location);
  void *mem = NULL;
  MOAI_RETURN_IF_ERROR(
      moai_allocator_malloc(im->allocator, dir_len + loc_len + 2, &mem));
  char *path = mem;
  memcpy(path, im->base_dir, dir_len);
  path[dir_len] = '/';
  memcpy(path + dir_len + 1, location, loc_len + 1);
  struct stat st;
  int rc = stat(path, &st);
  moai_allocator_free(im->allocator, path);
  if (rc != 0) {
    if (!im->options.check_external_data) return moai_ok_status();
    return MOAI_ONNX_ERROR(
        im, MOAI_NOT_FOUND,
        "external data file '%s' for initializer '%s' not found", location,
        name);
  }
  if (!S_ISREG(st.st_mode))
    return MOAI_ONNX_ERROR(
        im, MOAI_INVALID_ARGUMENT,
        "external data file '%s' for initializer '%s' is not a "
        "regular file",
        location, name);
  if ((uint64_t)place->offset + (uint64_t)place->length > (uint64_t)st.st_size)
    return MOAI_ONNX_ERROR(im, MOAI_DATA_LOSS,
                           "external data file '%s' for initializer '%s' holds "
                           "%lld bytes, but its data spans bytes %lld to %lld",
                           location, name, (long long)st.st_size,
                           (long long)place->offset,
                           (long long)(place->offset + place->length));
  return moai_ok_status();
}

static moai_status_t place_external(moai_onnx_importer_t *im,
                                    const Onnx__TensorProto *t,
                                    const moai_onnx_tensor_info_t *info,
                                    const char *what, weight_place_t *place) {
  const char *location = NULL;
  const char *offset_text = NULL, *length_text = NULL;
  for (size_t i = 0; i < t->n_external_data; ++i) {
    const char *key = moai_onnx_str(t->external_data[i]->key);
    const char *value = moai_onnx_str(t->external_data[i]->value);
    if (strcmp(key, "location") == 0)
      location = value;
    else if (strcmp(key, "offset") == 0)
      offset_text = value;
    else if (strcmp(key, "length") == 0)
      length_text = value;
  }
  if (!location || !*location)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s: external data without a location", what);
  if (!location_is_contained(location))
    return MOAI_ONNX_ERROR(
        im, MOAI_INVALID_ARGUMENT,
        "%s: external data location '%s' escapes the model's "
        "directory",
        what, location);
  int64_t offset = 0, length = info->nbytes;
  if (offset_text && !parse_i64(offset_text, &offset))
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s: bad external data offset '%s'", what,
                           offset_text);
  if (length_text && !parse_i64(length_text, &length))
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s: bad external data length '%s'", what,
                           length_text);
  if (length != info->nbytes)
    return MOAI_ONNX_ERROR(im, MOAI_DATA_LOSS,
                           "%s: external data length %lld does not match the "
                           "tensor's %lld bytes",
                           what, (long long)length, (long long)info->nbytes);
  if (offset > INT64_MAX - length)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "%s: external data offset %lld is too large", what,
                           (long long)offset);
  *place = (weight_place_t){"external", location, offset, length};
  return check_external_file(im, location, moai_onnx_str(t->name), place);
}

/* ---- ops ----------------------------------------------------------------- */

static MlirOperation create_weight(moai_onnx_importer_t *im, const char *name,
                                   bool trainable, const weight_place_t *place,
                                   MlirType type, MlirLocation loc) {
  MlirContext ctx = im->ctx;
  MlirNamedAttribute attrs[6];
  size_t n = 0;
  attrs[n++] = moai_onnx_named(ctx, "name", moai_onnx_string_attr(ctx, name));
  attrs[n++] =
      moai_onnx_named(ctx, "trainable", moai_onnx_i64_attr(ctx, trainable));
  attrs[n++] = moai_onnx_named(ctx, "storage",
                               moai_onnx_string_attr(ctx, place->storage));
  if (place->file)
    attrs[n++] =
        moai_onnx_named(ctx, "file", moai_onnx_string_attr(ctx, place->file));
  if (place->offset >= 0) {
    attrs[n++] =
        moai_onnx_named(ctx, "offset", moai_onnx_i64_attr(ctx, place->offset));
    attrs[n++] =
        moai_onnx_named(ctx, "length", moai_onnx_i64_attr(ctx, place->length));
  }
  MlirOperationState state =
      mlirOperationStateGet(mlirStringRefCreateFromCString("moai.weight"), loc);
  mlirOperationStateAddResults(&state, 1, &type);
  mlirOperationStateAddAttributes(&state, (intptr_t)n, attrs);
  return moai_onnx_append_op(im, &state);
}

static moai_status_t import_initializer(moai_onnx_importer_t *im, size_t index,
                                        MlirValue *out_value) {
  const Onnx__TensorProto *t = im->graph->initializer[index];
  const char *name = t->name; /* non-empty: checked by resolve_trainable */
  char what[256];
  snprintf(what, sizeof(what), "initializer '%s'", name);
  moai_onnx_tensor_info_t info;
  MOAI_RETURN_IF_ERROR(moai_onnx_tensor_describe(im, t, what, &info));
  bool trainable = im->trainable[index];
  bool is_float = moai_dtype_is_float(info.dtype);
  bool inline_data =
      info.data == MOAI_ONNX_DATA_RAW || info.data == MOAI_ONNX_DATA_FIELD;
  int64_t limit = is_float ? MOAI_ONNX_MAX_INLINE_FLOAT_ELEMENTS
                           : MOAI_ONNX_MAX_INLINE_ELEMENTS;
  MlirLocation loc = mlirLocationNameGet(
      im->ctx, mlirStringRefCreateFromCString(name), im->file_loc);
  MlirOperation op;
  if (inline_data && !trainable && info.numel <= limit) {
    MlirAttribute value;
    MOAI_RETURN_IF_ERROR(
        moai_onnx_tensor_to_elements(im, t, &info, what, &value));
    MlirNamedAttribute attr = moai_onnx_named(im->ctx, "value", value);
    MlirOperationState state = mlirOperationStateGet(
        mlirStringRefCreateFromCString("moai.constant"), loc);
    mlirOperationStateAddResults(&state, 1, &info.type);
    mlirOperationStateAddAttributes(&state, 1, &attr);
    op = moai_onnx_append_op(im, &state);
  } else {
    weight_place_t place = {"absent", NULL, -1, 0};
    if (info.data == MOAI_ONNX_DATA_RAW)
      MOAI_RETURN_IF_ERROR(place_raw(im, index, what, &place));
    else if (info.data == MOAI_ONNX_DATA_EXTERNAL)
      MOAI_RETURN_IF_ERROR(place_external(im, t, &info, what, &place));
    else if (info.data == MOAI_ONNX_DATA_FIELD)
      place = (weight_place_t){"field", im->path, -1, 0};
    op = create_weight(im, name, trainable, &place, info.type, loc);
  }
  if (mlirOperationIsNull(op))
    return MOAI_ONNX_ERROR(im, MOAI_INTERNAL, "%s: could not create its op",
                           what);
  *out_value = mlirOperationGetResult(op, 0);
  return moai_ok_status();
}

moai_status_t moai_onnx_import_initializers(moai_onnx_importer_t *im) {
  const Onnx__GraphProto *g = im->graph;
  MOAI_RETURN_IF_ERROR(
      moai_onnx_name_map_reserve(&im->values, g->n_initializer));
  for (size_t i = 0; i < g->n_initializer; ++i) {
    MlirValue value;
    MOAI_RETURN_IF_ERROR(import_initializer(im, i, &value));
    moai_onnx_name_entry_t *e;
    bool existed;
    MOAI_RETURN_IF_ERROR(moai_onnx_name_map_insert(
        &im->values, g->initializer[i]->name, &e, &existed));
    /* Graph inputs named like an initializer were skipped as arguments. */
    if (existed)
      return MOAI_ONNX_ERROR(im, MOAI_INTERNAL,
                             "initializer '%s' is mapped twice",
                             g->initializer[i]->name);
    e->value = value;
    e->index = MOAI_ONNX_DEF_INITIALIZER;
  }
  return moai_ok_status();
}
