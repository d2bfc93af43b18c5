/* The signature of @main: graph inputs become arguments (their shapes fixed
 * by the options' input shapes where the model leaves them symbolic), graph
 * outputs become results. Names travel in `moai.name` argument and result
 * attributes. */
#include <stdlib.h>
#include <string.h>

#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "onnx/importer.h"

/* One parsed "name=2x16" option. */
typedef struct input_shape_t {
  const char *text; /* the whole option, for errors */
  size_t name_len;
  size_t rank;
  int64_t *dims; /* into the shared dims array */
  const char *dtype; /* the ":DTYPE" suffix without the colon, or NULL */
  bool used;
} input_shape_t;

typedef struct input_shapes_t {
  input_shape_t *items;
  size_t count;
  int64_t *dims;
} input_shapes_t;

static void input_shapes_free(moai_onnx_importer_t *im,
                              input_shapes_t *shapes) {
  moai_allocator_free(im->allocator, shapes->items);
  moai_allocator_free(im->allocator, shapes->dims);
}

static moai_status_t bad_shape(moai_onnx_importer_t *im, const char *text,
                               const char *why) {
  return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                     "%s: bad input shape '%s': %s (expected NAME=D0xD1x..., "
                     "e.g. input_ids=2x16)",
                     im->path, text, why);
}

/* Parses "D0xD1x..." (empty: a scalar) into dims; *out_rank its length. */
static moai_status_t parse_dims(moai_onnx_importer_t *im, const char *text,
                                const char *s, int64_t *dims,
                                size_t *out_rank) {
  size_t rank = 0;
  if (!*s) {
    *out_rank = 0;
    return moai_ok_status();
  }
  for (;;) {
    if (*s < '0' || *s > '9')
      return bad_shape(im, text, "a dimension is not a non-negative integer");
    int64_t d = 0;
    for (; *s >= '0' && *s <= '9'; ++s) {
      if (d > (INT64_MAX - 9) / 10)
        return bad_shape(im, text, "a dimension is too large");
      d = d * 10 + (*s - '0');
    }
    dims[rank++] = d;
    if (!*s) break;
    if (*s != 'x')
      return bad_shape(im, text, "dimensions must be separated by 'x'");
    ++s;
  }
  *out_rank = rank;
  return moai_ok_status();
}

static moai_status_t parse_input_shapes(moai_onnx_importer_t *im,
                                        input_shapes_t *out) {
  size_t n = im->options.input_shape_count;
  const char *const *texts = im->options.input_shapes;
  if (!n || !texts) return moai_ok_status();
  size_t total_dims = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!texts[i]) return bad_shape(im, "(null)", "no text");
    total_dims += strlen(texts[i]) / 2 + 1; /* at most one dim per 2 chars */
  }
  input_shapes_t shapes = {.count = n};
  void *items = NULL, *dims = NULL;
  MOAI_RETURN_IF_ERROR(
      moai_allocator_malloc(im->allocator, n * sizeof(input_shape_t), &items));
  shapes.items = items;
  moai_status_t status =
      moai_allocator_malloc(im->allocator, total_dims * sizeof(int64_t), &dims);
  shapes.dims = dims;
  size_t next_dim = 0;
  for (size_t i = 0; !status && i < n; ++i) {
    input_shape_t *item = &shapes.items[i];
    const char *eq = strrchr(texts[i], '=');
    item->text = texts[i];
    item->dims = shapes.dims + next_dim;
    if (!eq || eq == texts[i]) {
      status = bad_shape(im, texts[i], "no NAME=");
      break;
    }
    item->name_len = (size_t)(eq - texts[i]);
    /* NAME=DIMS[:DTYPE]: dims parsed from a copy without the suffix. */
    const char *colon = strchr(eq + 1, ':');
    char dims_text[256];
    size_t dlen = colon ? (size_t)(colon - (eq + 1)) : strlen(eq + 1);
    if (dlen >= sizeof(dims_text)) {
      status = bad_shape(im, texts[i], "too many dimensions");
      break;
    }
    memcpy(dims_text, eq + 1, dlen);
    dims_text[dlen] = '\0';
    item->dtype = colon ? colon + 1 : NULL;
    status = parse_dims(im, texts[i], dims_text, item->dims, &item->rank);
    next_dim += item->rank;
    for (size_t j = 0; !status && j < i; ++j)
      if (shapes.items[j].name_len == item->name_len &&
          strncmp(shapes.items[j].text, item->text, item->name_len) == 0)
        status = bad_shape(im, texts[i], "the input is given twice");
  }
  if (status) {
    input_shapes_free(im, &shapes);
    return status;
  }
  *out = shapes;
  return moai_ok_status();
}

/* The size the options give symbolic dimension `param` ("batch=4"), or
 * -1 in *out when none does. A malformed entry is an error. */
static moai_status_t dim_value_for(moai_onnx_importer_t *im, const char *param,
                                   int64_t *out) {
  *out = -1;
  size_t plen = strlen(param);
  for (size_t k = 0; plen && k < im->options.dim_value_count; ++k) {
    const char *e = im->options.dim_values[k];
    const char *eq = strchr(e, '=');
    char *end = NULL;
    long long v = eq ? strtoll(eq + 1, &end, 10) : -1;
    if (!eq || eq == e || !end || end == eq + 1 || *end || v < 1)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "dimension option '%s' is not NAME=N with N >= 1", e);
    if ((size_t)(eq - e) == plen && memcmp(e, param, plen) == 0) *out = v;
  }
  return moai_ok_status();
}

static input_shape_t *find_shape(input_shapes_t *shapes, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; i < shapes->count; ++i)
    if (shapes->items[i].name_len == len &&
        strncmp(shapes->items[i].text, name, len) == 0)
      return &shapes->items[i];
  return NULL;
}

static bool is_initializer(moai_onnx_importer_t *im, const char *name) {
  return moai_onnx_name_map_find(&im->initializers, name) != NULL;
}

/* The argument type of graph input `vi`, with its shape option if any. */
static moai_status_t input_type(moai_onnx_importer_t *im,
                                const Onnx__ValueInfoProto *vi,
                                input_shape_t *fixed, MlirType *out_type) {
  const char *name = moai_onnx_str(vi->name);
  const Onnx__TypeProto *tp = vi->type;
  if (!tp)
    return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                           "graph input '%s' has no type", name);
  if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
    return MOAI_ONNX_ERROR(
        im, MOAI_UNIMPLEMENTED,
        "graph input '%s' is not a tensor (sequences, maps and "
        "optionals are not supported)",
        name);
  const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
  int code = tt->has_elem_type ? tt->elem_type : 0;
  if (!moai_dtype_is_supported(code))
    return MOAI_ONNX_ERROR(im, MOAI_UNIMPLEMENTED,
                           "graph input '%s' has dtype %s (%d), which is not "
                           "supported",
                           name, moai_onnx_dtype_code_name(code), code);
  MlirType elem = moai_dtype_to_mlir(im->ctx, (moai_dtype_t)code);
  const Onnx__TensorShapeProto *shape = tt->shape;
  if (fixed) {
    fixed->used = true;
    const char *declared = moai_dtype_name((moai_dtype_t)code);
    if (fixed->dtype && strcmp(fixed->dtype, declared) != 0)
      return MOAI_ONNX_ERROR(
          im, MOAI_INVALID_ARGUMENT,
          "input shape '%s' gives dtype '%s', but the model declares graph "
          "input '%s' %s (drop the suffix or write :%s)",
          fixed->text, fixed->dtype, name, declared, declared);
    if (shape && shape->n_dim != fixed->rank)
      return MOAI_ONNX_ERROR(
          im, MOAI_INVALID_ARGUMENT,
          "input shape '%s' has rank %zu, but the model gives "
          "graph input '%s' rank %zu",
          fixed->text, fixed->rank, name, shape->n_dim);
    for (size_t i = 0; shape && i < shape->n_dim; ++i) {
      const Onnx__TensorShapeProto__Dimension *d = shape->dim[i];
      if (d->value_case ==
              ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE &&
          d->dim_value != fixed->dims[i])
        return MOAI_ONNX_ERROR(
            im, MOAI_INVALID_ARGUMENT,
            "input shape '%s' sets dimension %zu to %lld, but "
            "the model fixes it to %lld",
            fixed->text, i, (long long)fixed->dims[i], (long long)d->dim_value);
    }
    *out_type = mlirRankedTensorTypeGet((intptr_t)fixed->rank, fixed->dims,
                                        elem, mlirAttributeGetNull());
    return moai_ok_status();
  }
  if (!shape)
    return MOAI_ONNX_ERROR(
        im, MOAI_INVALID_ARGUMENT,
        "graph input '%s' has an unknown rank; fix its shape "
        "with an input shape option (%s=D0xD1x...)",
        name, name);
  MOAI_RETURN_IF_ERROR(moai_onnx_scratch_reserve(
      im, &im->scratch_dims, sizeof(int64_t), shape->n_dim));
  int64_t *dims = im->scratch_dims.data;
  for (size_t i = 0; i < shape->n_dim; ++i) {
    const Onnx__TensorShapeProto__Dimension *d = shape->dim[i];
    if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM) {
      int64_t v = -1;
      MOAI_RETURN_IF_ERROR(dim_value_for(im, moai_onnx_str(d->dim_param), &v));
      if (v >= 0) {
        dims[i] = v;
        continue;
      }
    }
    if (d->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
        d->dim_value < 0) {
      const char *param =
          d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
              ? moai_onnx_str(d->dim_param)
              : "?";
      return MOAI_ONNX_ERROR(
          im, MOAI_INVALID_ARGUMENT,
          "graph input '%s' has a symbolic dimension %zu ('%s'); "
          "fix it with a dimension option (%s=N) or its shape with an "
          "input shape option (%s=D0xD1x...)",
          name, i, param, param, name);
    }
    dims[i] = d->dim_value;
  }
  *out_type = mlirRankedTensorTypeGet((intptr_t)shape->n_dim, dims, elem,
                                      mlirAttributeGetNull());
  return moai_ok_status();
}

static MlirAttribute name_dict(MlirContext ctx, const char *name) {
  MlirNamedAttribute entry =
      moai_onnx_named(ctx, "moai.name", moai_onnx_string_attr(ctx, name));
  return mlirDictionaryAttrGet(ctx, 1, &entry);
}

/* Argument types and attributes of @main, from the graph inputs. */
typedef struct main_args_t {
  size_t count;
  MlirType *types;
  MlirLocation *locs;
  MlirAttribute *attrs;
  const char **names;
} main_args_t;

static moai_status_t collect_args(moai_onnx_importer_t *im,
                                  input_shapes_t *shapes, main_args_t *args) {
  const Onnx__GraphProto *g = im->graph;
  MOAI_RETURN_IF_ERROR(moai_onnx_name_map_reserve(&im->values, g->n_input));
  for (size_t i = 0; i < g->n_input; ++i) {
    const char *name = moai_onnx_str(g->input[i]->name);
    if (!*name)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "graph input %zu has no name", i);
    if (is_initializer(im, name)) continue; /* an initializer's default */
    moai_onnx_name_entry_t *e;
    bool existed;
    MOAI_RETURN_IF_ERROR(
        moai_onnx_name_map_insert(&im->values, name, &e, &existed));
    if (existed)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "graph input '%s' is listed twice", name);
    e->index = MOAI_ONNX_DEF_INPUT;
    size_t k = args->count++;
    MOAI_RETURN_IF_ERROR(
        input_type(im, g->input[i], find_shape(shapes, name), &args->types[k]));
    args->locs[k] = mlirLocationNameGet(
        im->ctx, mlirStringRefCreateFromCString(name), im->file_loc);
    args->attrs[k] = name_dict(im->ctx, name);
    args->names[k] = name;
  }
  for (size_t i = 0; i < shapes->count; ++i)
    if (!shapes->items[i].used)
      return MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                             "input shape '%s' names no graph input",
                             shapes->items[i].text);
  return moai_ok_status();
}

static MlirOperation create_func(moai_onnx_importer_t *im,
                                 const main_args_t *args) {
  MlirContext ctx = im->ctx;
  MlirRegion region = mlirRegionCreate();
  MlirBlock block =
      mlirBlockCreate((intptr_t)args->count, args->types, args->locs);
  mlirRegionAppendOwnedBlock(region, block);
  MlirType fn_type =
      mlirFunctionTypeGet(ctx, (intptr_t)args->count, args->types, 0, NULL);
  MlirNamedAttribute attrs[3] = {
      moai_onnx_named(ctx, "sym_name", moai_onnx_string_attr(ctx, "main")),
      moai_onnx_named(ctx, "function_type", mlirTypeAttrGet(fn_type)),
      moai_onnx_named(
          ctx, "arg_attrs",
          mlirArrayAttrGet(ctx, (intptr_t)args->count, args->attrs)),
  };
  MlirOperationState state = mlirOperationStateGet(
      mlirStringRefCreateFromCString("func.func"), im->file_loc);
  mlirOperationStateAddAttributes(&state, args->count ? 3 : 2, attrs);
  mlirOperationStateAddOwnedRegions(&state, 1, &region);
  return mlirOperationCreate(&state);
}

moai_status_t moai_onnx_build_main(moai_onnx_importer_t *im, MlirModule module,
                                   MlirOperation *out_func) {
  size_t n = im->graph->n_input;
  input_shapes_t shapes = {0};
  MOAI_RETURN_IF_ERROR(parse_input_shapes(im, &shapes));
  main_args_t args = {0};
  void *mem = NULL;
  size_t per_arg = sizeof(MlirType) + sizeof(MlirLocation) +
                   sizeof(MlirAttribute) + sizeof(const char *);
  moai_status_t status =
      moai_allocator_malloc(im->allocator, n * per_arg, &mem);
  if (!status) {
    args.types = mem;
    args.locs = (MlirLocation *)(args.types + n);
    args.attrs = (MlirAttribute *)(args.locs + n);
    args.names = (const char **)(args.attrs + n);
    status = collect_args(im, &shapes, &args);
  }
  MlirOperation func = {NULL};
  if (!status) {
    func = create_func(im, &args);
    if (mlirOperationIsNull(func))
      status = MOAI_ONNX_ERROR(im, MOAI_INTERNAL,
                               "could not create func.func @main");
  }
  if (!status) {
    mlirBlockAppendOwnedOperation(mlirModuleGetBody(module), func);
    im->body = mlirRegionGetFirstBlock(mlirOperationGetRegion(func, 0));
    for (size_t k = 0; k < args.count; ++k)
      moai_onnx_name_map_find(&im->values, args.names[k])->value =
          mlirBlockGetArgument(im->body, (intptr_t)k);
    *out_func = func;
  }
  moai_allocator_free(im->allocator, mem);
  input_shapes_free(im, &shapes);
  return status;
}

moai_status_t moai_onnx_finish_main(moai_onnx_importer_t *im,
                                    MlirOperation func) {
  const Onnx__GraphProto *g = im->graph;
  MlirContext ctx = im->ctx;
  size_t n_args = (size_t)mlirBlockGetNumArguments(im->body);
  size_t n_out = g->n_output;
  MOAI_RETURN_IF_ERROR(moai_onnx_scratch_reserve(im, &im->scratch_values,
                                                 sizeof(MlirValue), n_out));
  MOAI_RETURN_IF_ERROR(moai_onnx_scratch_reserve(
      im, &im->scratch_types, sizeof(MlirType), n_args + n_out));
  void *mem = NULL;
  MOAI_RETURN_IF_ERROR(moai_allocator_malloc(
      im->allocator, n_out * sizeof(MlirAttribute), &mem));
  MlirAttribute *res_attrs = mem;
  MlirValue *values = im->scratch_values.data;
  MlirType *types = im->scratch_types.data;
  moai_status_t status = moai_ok_status();
  for (size_t i = 0; i < n_out && !status; ++i) {
    const char *name = moai_onnx_str(g->output[i]->name);
    const moai_onnx_name_entry_t *e =
        moai_onnx_name_map_find(&im->values, name);
    if (!*name)
      status = MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                               "graph output %zu has no name", i);
    else if (!e)
      status = MOAI_ONNX_ERROR(im, MOAI_INVALID_ARGUMENT,
                               "graph output '%s' is not defined by any node, "
                               "input or initializer",
                               name);
    else {
      values[i] = e->value;
      types[n_args + i] = mlirValueGetType(e->value);
      res_attrs[i] = name_dict(ctx, name);
    }
  }
  if (!status) {
    MlirOperationState state = mlirOperationStateGet(
        mlirStringRefCreateFromCString("func.return"), im->file_loc);
    mlirOperationStateAddOperands(&state, (intptr_t)n_out, values);
    if (mlirOperationIsNull(moai_onnx_append_op(im, &state)))
      status =
          MOAI_ONNX_ERROR(im, MOAI_INTERNAL, "could not create func.return");
  }
  if (!status) {
    for (size_t k = 0; k < n_args; ++k)
      types[k] = mlirValueGetType(mlirBlockGetArgument(im->body, (intptr_t)k));
    MlirType fn_type = mlirFunctionTypeGet(ctx, (intptr_t)n_args, types,
                                           (intptr_t)n_out, types + n_args);
    mlirOperationSetAttributeByName(
        func, mlirStringRefCreateFromCString("function_type"),
        mlirTypeAttrGet(fn_type));
    mlirOperationSetAttributeByName(
        func, mlirStringRefCreateFromCString("res_attrs"),
        mlirArrayAttrGet(ctx, (intptr_t)n_out, res_attrs));
  }
  moai_allocator_free(im->allocator, mem);
  return status;
}
