/* The TorchScript importer (ts_import.h): opens the archive, unpickles the
 * module tree and constants, builds @main from the root forward's tensor
 * arguments, runs forward with the interpreter (interp.c) and returns its
 * tensors. Module attributes (submodules, parameters and buffers as
 * moai.weight ops named by the module path, numbers) and the code files
 * (parsed once, found from the class's qualified name) live here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/diag.h"
#include "ir/dtype.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "torchscript/interp.h"
#include "torchscript/ts_import.h"

/* ---- code files ------------------------------------------------------------ */

/* "__torch__.a.b.C" -> file "code/__torch__/a/b.py", name "C". */
static moai_status_t split_qualified(moai_ts_interp_t *in,
                                     const char *qualified, char *file,
                                     size_t file_size, const char **out_name) {
  const char *dot = strrchr(qualified, '.');
  if (strncmp(qualified, "__torch__.", 10) != 0 || !dot || !dot[1] ||
      strstr(qualified, "..") || strchr(qualified, '/'))
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: '%s' is not a __torch__ class or function name",
                       in->em.archive, qualified);
  size_t n = (size_t)(dot - qualified);
  if (n + 9 > file_size)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: the name '%s' is too long",
                       in->em.archive, qualified);
  memcpy(file, "code/", 5);
  for (size_t i = 0; i < n; ++i)
    file[5 + i] = qualified[i] == '.' ? '/' : qualified[i];
  memcpy(file + 5 + n, ".py", 4);
  *out_name = dot + 1;
  return moai_ok_status();
}

static moai_status_t load_source(moai_ts_interp_t *in, const char *file,
                                 const moai_ts_source_t **out) {
  for (size_t i = 0; i < in->source_count; ++i)
    if (strcmp(in->sources[i].file, file) == 0) {
      *out = in->sources[i].source;
      return moai_ok_status();
    }
  if (!moai_ts_archive_has(in->archive, file))
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: %s is missing from the archive (its code is needed)",
                       in->em.archive, file);
  if (in->source_count == in->source_capacity) {
    size_t cap = in->source_capacity ? in->source_capacity * 2 : 16;
    moai_ts_source_entry_t *s = realloc(in->sources, cap * sizeof(*s));
    if (!s) return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", in->em.archive);
    in->sources = s;
    in->source_capacity = cap;
  }
  char *text = NULL;
  size_t size = 0;
  MOAI_RETURN_IF_ERROR(moai_ts_archive_read(in->archive, file, &text, &size));
  moai_ts_source_t *src = NULL;
  moai_status_t st = moai_ts_parse(in->em.archive, file, text, size, &src);
  free(text);
  if (st) return st;
  char *name = strdup(file);
  if (!name) {
    moai_ts_source_free(src);
    return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", in->em.archive);
  }
  in->sources[in->source_count++] = (moai_ts_source_entry_t){name, src};
  *out = src;
  return moai_ok_status();
}

moai_status_t moai_ts_interp_find_class(moai_ts_interp_t *in,
                                        const char *qualified,
                                        const moai_ts_source_t **out_source,
                                        const moai_ts_class_t **out_class) {
  char file[1024];
  const char *name = NULL;
  MOAI_RETURN_IF_ERROR(split_qualified(in, qualified, file, sizeof(file), &name));
  const moai_ts_source_t *src = NULL;
  MOAI_RETURN_IF_ERROR(load_source(in, file, &src));
  const moai_ts_class_t *cls = moai_ts_source_class(src, name);
  if (!cls)
    return MOAI_STATUS(MOAI_DATA_LOSS, "%s: %s has no class %s (for %s)",
                       in->em.archive, file, name, qualified);
  *out_source = src;
  *out_class = cls;
  return moai_ok_status();
}

moai_status_t moai_ts_interp_find_function(moai_ts_interp_t *in,
                                           const char *qualified,
                                           const moai_ts_source_t **out_source,
                                           const moai_ts_def_t **out_def) {
  char file[1024];
  const char *name = NULL;
  MOAI_RETURN_IF_ERROR(split_qualified(in, qualified, file, sizeof(file), &name));
  const moai_ts_source_t *src = NULL;
  MOAI_RETURN_IF_ERROR(load_source(in, file, &src));
  const moai_ts_def_t *def = moai_ts_source_def(src, name);
  if (!def)
    return moai_ts_interp_error(in, in->em.line, MOAI_DATA_LOSS,
                                "%s has no function %s (for %s)", file, name,
                                qualified);
  *out_source = src;
  *out_def = def;
  return moai_ok_status();
}

/* ---- weights and constants ------------------------------------------------ */

static moai_status_t oom(moai_ts_interp_t *in) {
  return MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", in->em.archive);
}

static moai_dtype_t moai_dtype_of(moai_pk_dtype_t dt) {
  switch (dt) {
    case MOAI_PK_U8: return MOAI_DTYPE_U8;
    case MOAI_PK_I8: return MOAI_DTYPE_I8;
    case MOAI_PK_I16: return MOAI_DTYPE_I16;
    case MOAI_PK_I32: return MOAI_DTYPE_I32;
    case MOAI_PK_I64: return MOAI_DTYPE_I64;
    case MOAI_PK_F16: return MOAI_DTYPE_F16;
    case MOAI_PK_F32: return MOAI_DTYPE_F32;
    case MOAI_PK_F64: return MOAI_DTYPE_F64;
    case MOAI_PK_BOOL_DT: return MOAI_DTYPE_BOOL;
    case MOAI_PK_BF16: return MOAI_DTYPE_BF16;
  }
  return MOAI_DTYPE_UNDEFINED;
}

static bool name_listed(const char *const *list, size_t n, const char *name) {
  for (size_t i = 0; list && i < n; ++i)
    if (list[i] && strcmp(list[i], name) == 0) return true;
  return false;
}

static int64_t tensor_numel(const moai_pk_tensor_t *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; ++i) n *= t->sizes[i];
  return n;
}

/* Whether `name` is listed in the class's `__parameters__ = [...]`. */
static bool class_lists_parameter(const moai_ts_class_t *cls, const char *name) {
  for (size_t i = 0; cls && i < cls->body.n; ++i) {
    const moai_ts_stmt_t *s = cls->body.items[i];
    if (s->kind != MOAI_TS_ST_ASSIGN || s->target->kind != MOAI_TS_EX_NAME ||
        strcmp(s->target->name, "__parameters__") != 0 ||
        s->value->kind != MOAI_TS_EX_LIST)
      continue;
    for (size_t k = 0; k < s->value->n; ++k) {
      const moai_ts_expr_t *e = s->value->items[k];
      if (e->kind == MOAI_TS_EX_STR && strcmp(e->name, name) == 0) return true;
    }
  }
  return false;
}

static bool same_tensor(const moai_pk_tensor_t *a, const moai_pk_tensor_t *b) {
  if (a == b) return true;
  if (strcmp(a->storage_key, b->storage_key) != 0 ||
      a->storage_offset != b->storage_offset || a->rank != b->rank ||
      a->dtype != b->dtype)
    return false;
  for (int i = 0; i < a->rank; ++i)
    if (a->sizes[i] != b->sizes[i] || a->strides[i] != b->strides[i])
      return false;
  return true;
}

/* A tensor's data as a compile-time constant (small buffers, constants). */
static moai_status_t read_konst(moai_ts_interp_t *in, const char *dir,
                                const moai_pk_tensor_t *t, const char *what,
                                moai_ts_value_t **out) {
  MOAI_RETURN_IF_ERROR(moai_ts_archive_check_tensor(in->archive, dir, t, what));
  moai_ts_const_t *k = moai_ts_arena_alloc(in->em.arena, sizeof(*k));
  moai_ts_value_t *v = moai_ts_arena_alloc(in->em.arena, sizeof(*v));
  if (!k || !v) return oom(in);
  int64_t numel = tensor_numel(t);
  size_t esize = moai_pk_dtype_size(t->dtype);
  k->dtype = t->dtype;
  k->rank = t->rank;
  k->numel = numel;
  for (int i = 0; i < t->rank; ++i) k->dims[i] = t->sizes[i];
  k->data = moai_ts_arena_alloc(in->em.arena, (size_t)numel * esize + 1);
  if (!k->data) return oom(in);
  MOAI_RETURN_IF_ERROR(moai_ts_archive_read_tensor(
      in->archive, dir, t, k->data, (uint64_t)numel * esize));
  v->kind = MOAI_TS_TENSOR;
  v->konst = k;
  *out = v;
  return moai_ok_status();
}

static bool konst_dtype(moai_pk_dtype_t dt) {
  return dt == MOAI_PK_I64 || dt == MOAI_PK_F64 || dt == MOAI_PK_F32 ||
         dt == MOAI_PK_BOOL_DT;
}

static MlirNamedAttribute named(MlirContext ctx, const char *name,
                                MlirAttribute attr) {
  return mlirNamedAttributeGet(
      mlirIdentifierGet(ctx, mlirStringRefCreateFromCString(name)), attr);
}

static MlirAttribute str_attr(MlirContext ctx, const char *s) {
  return mlirStringAttrGet(ctx, mlirStringRefCreateFromCString(s));
}

static MlirAttribute i64_attr(MlirContext ctx, int64_t v) {
  return mlirIntegerAttrGet(mlirIntegerTypeGet(ctx, 64), v);
}

/* The moai.weight for tensor attribute `attr` of the module at `path`. */
static moai_status_t make_weight(moai_ts_interp_t *in, const char *name,
                                 const moai_pk_tensor_t *t, bool parameter,
                                 int line, moai_ts_value_t **out) {
  for (size_t i = 0; i < in->weight_count; ++i)
    if (same_tensor(in->weights[i].tensor, t)) {
      *out = in->weights[i].value; /* tied: one op for every name */
      return moai_ok_status();
    }
  moai_dtype_t dtype = moai_dtype_of(t->dtype);
  size_t esize = moai_pk_dtype_size(t->dtype);
  if (dtype == MOAI_DTYPE_UNDEFINED || !esize || !moai_dtype_is_supported(dtype))
    return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                                "'%s' has an element type moai does not read "
                                "(torch dtype %d)",
                                name, (int)t->dtype);
  MOAI_RETURN_IF_ERROR(moai_ts_archive_check_tensor(in->archive, "data", t, name));
  const moai_onnx_import_options_t *o = in->options;
  bool trainable = parameter && t->requires_grad && moai_dtype_is_float(dtype);
  if (o && o->trainable) trainable = name_listed(o->trainable, o->trainable_count, name);
  if (o && name_listed(o->frozen, o->frozen_count, name)) trainable = false;
  moai_ts_value_t *v = NULL;
  int64_t numel = tensor_numel(t);
  if (!trainable && !parameter && konst_dtype(t->dtype) &&
      numel <= MOAI_TS_MAX_CONST_BUFFER_ELEMENTS) {
    MOAI_RETURN_IF_ERROR(read_konst(in, "data", t, name, &v));
  } else {
    if (!moai_ts_tensor_contiguous(t))
      return moai_ts_interp_error(
          in, line, MOAI_UNIMPLEMENTED,
          "'%s' is not contiguous in the archive (save the model after "
          "making its parameters contiguous: p.data = p.data.contiguous())",
          name);
    MlirContext ctx = in->em.ctx;
    char entry[256];
    snprintf(entry, sizeof(entry), "data/%s", t->storage_key);
    moai_ts_interp_at(in, line);
    MlirType type = mlirRankedTensorTypeGet(t->rank, t->sizes,
                                            moai_dtype_to_mlir(ctx, dtype),
                                            mlirAttributeGetNull());
    MlirNamedAttribute attrs[] = {
        named(ctx, "name", str_attr(ctx, name)),
        named(ctx, "trainable", i64_attr(ctx, trainable)),
        named(ctx, "storage", str_attr(ctx, "zip")),
        named(ctx, "file", str_attr(ctx, in->path)),
        named(ctx, "entry", str_attr(ctx, entry)),
        named(ctx, "offset", i64_attr(ctx, t->storage_offset * (int64_t)esize)),
        named(ctx, "length", i64_attr(ctx, numel * (int64_t)esize)),
    };
    MlirOperationState state = mlirOperationStateGet(
        mlirStringRefCreateFromCString("moai.weight"), in->em.loc);
    mlirOperationStateAddResults(&state, 1, &type);
    mlirOperationStateAddAttributes(&state, sizeof(attrs) / sizeof(attrs[0]), attrs);
    MlirOperation op = mlirOperationCreate(&state);
    if (mlirOperationIsNull(op))
      return moai_ts_interp_error(in, line, MOAI_INTERNAL,
                                  "could not create the weight '%s'", name);
    mlirBlockAppendOwnedOperation(in->em.block, op);
    if (!(v = moai_ts_arena_alloc(in->em.arena, sizeof(*v)))) return oom(in);
    v->kind = MOAI_TS_TENSOR;
    v->tensor = mlirOperationGetResult(op, 0);
  }
  if (in->weight_count == in->weight_capacity) {
    size_t cap = in->weight_capacity ? in->weight_capacity * 2 : 64;
    moai_ts_weight_t *w = realloc(in->weights, cap * sizeof(*w));
    if (!w) return oom(in);
    in->weights = w;
    in->weight_capacity = cap;
  }
  char *owned = moai_ts_arena_strdup(in->em.arena, name);
  if (!owned) return oom(in);
  in->weights[in->weight_count++] =
      (moai_ts_weight_t){t, owned, v, trainable && v->konst == NULL};
  *out = v;
  return moai_ok_status();
}

static moai_status_t pk_to_value(moai_ts_interp_t *in,
                                 const moai_pk_value_t *pv, const char *path,
                                 int line, moai_ts_value_t **out);

moai_status_t moai_ts_interp_module_attr(moai_ts_interp_t *in,
                                         moai_ts_value_t *self,
                                         const char *name, int line,
                                         moai_ts_value_t **out) {
  const moai_pk_value_t *obj = self->module;
  const char *mpath = self->module_path ? self->module_path : "";
  char path[1024];
  if (*mpath) snprintf(path, sizeof(path), "%s.%s", mpath, name);
  else snprintf(path, sizeof(path), "%s", name);
  const moai_pk_value_t *pv = obj->state ? moai_pk_dict_get(obj->state, name) : NULL;
  const moai_ts_source_t *src = NULL;
  const moai_ts_class_t *cls = NULL;
  MOAI_RETURN_IF_ERROR(moai_ts_interp_find_class(in, obj->str, &src, &cls));
  if (!pv) {
    /* A class constant: `in_features : Final[int] = 8`. */
    for (size_t i = 0; i < cls->body.n; ++i) {
      const moai_ts_stmt_t *s = cls->body.items[i];
      if (s->kind != MOAI_TS_ST_ANNOT || !s->extra ||
          s->target->kind != MOAI_TS_EX_NAME || strcmp(s->target->name, name))
        continue;
      const moai_ts_expr_t *x = s->extra;
      moai_ts_value_t *v = moai_ts_arena_alloc(in->em.arena, sizeof(*v));
      if (!v) return oom(in);
      bool neg = x->kind == MOAI_TS_EX_UNARY && x->op == '-';
      if (neg) x = x->base;
      switch (x->kind) {
        case MOAI_TS_EX_INT: v->kind = MOAI_TS_INT; v->i = neg ? -x->i : x->i; break;
        case MOAI_TS_EX_FLOAT: v->kind = MOAI_TS_FLOAT; v->f = neg ? -x->f : x->f; break;
        case MOAI_TS_EX_BOOL: v->kind = MOAI_TS_BOOL; v->b = x->b; break;
        case MOAI_TS_EX_STR: v->kind = MOAI_TS_STR; v->str = x->name; break;
        case MOAI_TS_EX_NONE: v->kind = MOAI_TS_NONE; break;
        default:
          return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                                      "class constant '%s' of %s is not a "
                                      "number, bool or string", name, obj->str);
      }
      *out = v;
      return moai_ok_status();
    }
    return moai_ts_interp_error(in, line, MOAI_INVALID_ARGUMENT,
                                "module '%s' (%s) has no attribute '%s'",
                                *mpath ? mpath : "<root>", obj->str, name);
  }
  if (pv->kind == MOAI_PK_TENSOR)
    return make_weight(in, path, &pv->tensor,
                       pv->tensor.is_parameter || class_lists_parameter(cls, name),
                       line, out);
  return pk_to_value(in, pv, path, line, out);
}

static moai_status_t pk_to_value(moai_ts_interp_t *in,
                                 const moai_pk_value_t *pv, const char *path,
                                 int line, moai_ts_value_t **out) {
  moai_ts_value_t *v = moai_ts_arena_alloc(in->em.arena, sizeof(*v));
  if (!v) return oom(in);
  switch (pv->kind) {
    case MOAI_PK_NONE: v->kind = MOAI_TS_NONE; break;
    case MOAI_PK_BOOL: v->kind = MOAI_TS_BOOL; v->b = pv->b; break;
    case MOAI_PK_INT: v->kind = MOAI_TS_INT; v->i = pv->i; break;
    case MOAI_PK_FLOAT: v->kind = MOAI_TS_FLOAT; v->f = pv->f; break;
    case MOAI_PK_STR: v->kind = MOAI_TS_STR; v->str = pv->str; break;
    case MOAI_PK_OBJECT:
      v->kind = MOAI_TS_MODULE;
      v->module = pv;
      if (!(v->module_path = moai_ts_arena_strdup(in->em.arena, path)))
        return oom(in);
      break;
    case MOAI_PK_LIST:
    case MOAI_PK_TUPLE:
      v->kind = pv->kind == MOAI_PK_LIST ? MOAI_TS_LIST : MOAI_TS_TUPLE;
      v->len = pv->len;
      if (pv->len &&
          !(v->items = moai_ts_arena_alloc(in->em.arena, pv->len * sizeof(*v->items))))
        return oom(in);
      for (size_t i = 0; i < pv->len; ++i) {
        if (pv->items[i]->kind == MOAI_PK_TENSOR)
          return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                                      "'%s': lists of tensors as module "
                                      "attributes are not supported", path);
        MOAI_RETURN_IF_ERROR(pk_to_value(in, pv->items[i], path, line, &v->items[i]));
      }
      break;
    default:
      return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                                  "attribute '%s' has a type moai does not "
                                  "support (a dict or an object)", path);
  }
  *out = v;
  return moai_ok_status();
}

moai_status_t moai_ts_interp_constant(moai_ts_interp_t *in, int64_t index,
                                      int line, moai_ts_value_t **out) {
  const moai_pk_value_t *c = in->constants;
  if (!c || index < 0 || (size_t)index >= c->len)
    return moai_ts_interp_error(in, line, MOAI_DATA_LOSS,
                                "CONSTANTS.c%lld is not in constants.pkl",
                                (long long)index);
  if (in->constant_values[index]) {
    *out = in->constant_values[index];
    return moai_ok_status();
  }
  const moai_pk_value_t *t = c->items[index];
  char what[64];
  snprintf(what, sizeof(what), "CONSTANTS.c%lld", (long long)index);
  if (t->kind != MOAI_PK_TENSOR)
    return pk_to_value(in, t, what, line, out);
  if (!konst_dtype(t->tensor.dtype) ||
      tensor_numel(&t->tensor) > MOAI_TS_MAX_CONST_ELEMENTS)
    return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                                "%s: a constant of torch dtype %d with %lld "
                                "elements is not supported",
                                what, (int)t->tensor.dtype,
                                (long long)tensor_numel(&t->tensor));
  MOAI_RETURN_IF_ERROR(read_konst(in, "constants", &t->tensor, what, out));
  in->constant_values[index] = *out;
  return moai_ok_status();
}

/* ---- the signature -------------------------------------------------------- */

/* Parses options' "NAME=DIMS[:DTYPE]" for argument `name`; *found false
 * when there is none. */
static moai_status_t input_type_for(moai_ts_interp_t *in, const char *name,
                                    bool *found, MlirType *out) {
  const moai_onnx_import_options_t *o = in->options;
  *found = false;
  size_t nlen = strlen(name);
  for (size_t i = 0; o && o->input_shapes && i < o->input_shape_count; ++i) {
    const char *text = o->input_shapes[i];
    const char *eq = text ? strchr(text, '=') : NULL;
    if (!eq || (size_t)(eq - text) != nlen || strncmp(text, name, nlen) != 0)
      continue;
    int64_t dims[MOAI_PK_MAX_RANK];
    int rank = 0;
    const char *s = eq + 1;
    moai_dtype_t dtype = MOAI_DTYPE_F32;
    while (*s && *s != ':') {
      if (rank == MOAI_PK_MAX_RANK || *s < '0' || *s > '9')
        goto bad;
      char *end = NULL;
      long long d = strtoll(s, &end, 10);
      if (d < 0 || d > (1ll << 40)) goto bad;
      dims[rank++] = d;
      s = end;
      if (*s == 'x') ++s;
      else if (*s && *s != ':') goto bad;
    }
    if (*s == ':') {
      const char *dt = s + 1;
      if (strcmp(dt, "float32") == 0 || strcmp(dt, "float") == 0) dtype = MOAI_DTYPE_F32;
      else if (strcmp(dt, "int64") == 0) dtype = MOAI_DTYPE_I64;
      else if (strcmp(dt, "int32") == 0) dtype = MOAI_DTYPE_I32;
      else if (strcmp(dt, "float64") == 0) dtype = MOAI_DTYPE_F64;
      else if (strcmp(dt, "bool") == 0) dtype = MOAI_DTYPE_BOOL;
      else
        return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                           "%s: input shape '%s': unknown dtype '%s' (float32, "
                           "int64, int32, float64 or bool)",
                           in->em.archive, text, dt);
    }
    *out = mlirRankedTensorTypeGet(rank, dims, moai_dtype_to_mlir(in->em.ctx, dtype),
                                   mlirAttributeGetNull());
    *found = true;
    return moai_ok_status();
  bad:
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "%s: bad input shape '%s' (expected NAME=D0xD1x...[:DTYPE], "
                       "e.g. input_ids=2x16:int64)",
                       in->em.archive, text);
  }
  return moai_ok_status();
}

static bool is_tensor_type(const moai_ts_expr_t *t) {
  if (!t) return false;
  if (t->kind == MOAI_TS_EX_NAME) return strcmp(t->name, "Tensor") == 0;
  /* Optional[Tensor] */
  return t->kind == MOAI_TS_EX_SUBSCRIPT && t->base->kind == MOAI_TS_EX_NAME &&
         strcmp(t->base->name, "Optional") == 0 && is_tensor_type(t->rhs);
}

typedef struct signature_t {
  size_t count; /* forward's parameters after self */
  moai_ts_value_t **args;
  MlirType *types; /* of the tensor arguments, in order */
  MlirAttribute *attrs;
  MlirLocation *locs;
  size_t ntensors;
} signature_t;

static moai_status_t build_signature(moai_ts_interp_t *in,
                                     const moai_ts_def_t *fwd, signature_t *sig) {
  size_t n = fwd->nparams ? fwd->nparams - 1 : 0;
  MlirContext ctx = in->em.ctx;
  /* Every --input-shape names an argument of forward. */
  const moai_onnx_import_options_t *o = in->options;
  for (size_t i = 0; o && o->input_shapes && i < o->input_shape_count; ++i) {
    const char *text = o->input_shapes[i];
    const char *eq = text ? strchr(text, '=') : NULL;
    bool known = false;
    for (size_t k = 1; eq && k < fwd->nparams; ++k)
      known |= strlen(fwd->params[k].name) == (size_t)(eq - text) &&
               strncmp(fwd->params[k].name, text, (size_t)(eq - text)) == 0;
    if (!known)
      return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                         "%s: input shape '%s' names no argument of forward",
                         in->em.archive, text ? text : "(null)");
  }
  sig->count = n;
  sig->args = moai_ts_arena_alloc(in->em.arena, (n + 1) * sizeof(*sig->args));
  sig->types = moai_ts_arena_alloc(in->em.arena, (n + 1) * sizeof(*sig->types));
  sig->attrs = moai_ts_arena_alloc(in->em.arena, (n + 1) * sizeof(*sig->attrs));
  sig->locs = moai_ts_arena_alloc(in->em.arena, (n + 1) * sizeof(*sig->locs));
  if (!sig->args || !sig->types || !sig->attrs || !sig->locs) return oom(in);
  for (size_t i = 0; i < n; ++i) {
    const moai_ts_param_t *p = &fwd->params[i + 1];
    bool found = false;
    MlirType type;
    MOAI_RETURN_IF_ERROR(input_type_for(in, p->name, &found, &type));
    if (!found && is_tensor_type(p->type) && !p->value)
      return MOAI_STATUS(
          MOAI_INVALID_ARGUMENT,
          "%s: forward's argument '%s' needs a shape: an archive records no "
          "input shapes; pass it as --input-shape %s=2x16:int64 (dims "
          "separated by 'x', then the dtype: float32 (the default), int64, "
          "int32, float64 or bool)",
          in->em.archive, p->name, p->name);
    if (!found) {
      if (!p->value)
        return MOAI_STATUS(MOAI_UNIMPLEMENTED,
                           "%s: forward's argument '%s' is not a tensor and "
                           "has no default; moai cannot pass it",
                           in->em.archive, p->name);
      continue; /* bound to its default by the call */
    }
    size_t k = sig->ntensors++;
    sig->types[k] = type;
    MlirNamedAttribute entry = named(ctx, "moai.name", str_attr(ctx, p->name));
    sig->attrs[k] = mlirDictionaryAttrGet(ctx, 1, &entry);
    moai_ts_interp_at(in, p->line);
    sig->locs[k] = in->em.loc;
    moai_ts_value_t *v = moai_ts_arena_alloc(in->em.arena, sizeof(*v));
    if (!v) return oom(in);
    v->kind = MOAI_TS_TENSOR;
    sig->args[i] = v;
  }
  return moai_ok_status();
}

/* The tensors forward returned, flattened: a tensor, or a tuple/list of
 * them. */
static moai_status_t collect_results(moai_ts_interp_t *in, moai_ts_value_t *r,
                                     MlirValue *values, size_t cap,
                                     size_t *count, int line) {
  if (r->kind == MOAI_TS_TENSOR) {
    if (*count == cap)
      return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                                  "forward returns more than %zu tensors", cap);
    MOAI_RETURN_IF_ERROR(moai_ts_tensor_value(&in->em, r, &values[*count]));
    ++*count;
    return moai_ok_status();
  }
  if (r->kind == MOAI_TS_TUPLE || r->kind == MOAI_TS_LIST) {
    for (size_t i = 0; i < r->len; ++i)
      MOAI_RETURN_IF_ERROR(collect_results(in, r->items[i], values, cap, count, line));
    return moai_ok_status();
  }
  return moai_ts_interp_error(in, line, MOAI_UNIMPLEMENTED,
                              "forward returns a non-tensor value; moai's "
                              "results are tensors");
}

#define MAX_RESULTS 256

static moai_status_t run_forward(moai_ts_interp_t *in, MlirModule module,
                                 const moai_pk_value_t *root) {
  MlirContext ctx = in->em.ctx;
  const moai_ts_source_t *src = NULL;
  const moai_ts_class_t *cls = NULL;
  if (root->kind != MOAI_PK_OBJECT || !root->str)
    return MOAI_STATUS(MOAI_DATA_LOSS,
                       "%s: data.pkl does not hold a module object",
                       in->em.archive);
  MOAI_RETURN_IF_ERROR(moai_ts_interp_find_class(in, root->str, &src, &cls));
  const moai_ts_def_t *fwd = moai_ts_class_method(cls, "forward");
  if (!fwd || fwd->nparams < 1)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT, "%s: %s has no forward(self, ...)",
                       in->em.archive, root->str);
  in->em.file = moai_ts_source_file(src);
  signature_t sig = {0};
  MOAI_RETURN_IF_ERROR(build_signature(in, fwd, &sig));
  /* func.func @main with the arguments; its type gets the results at the end. */
  MlirRegion region = mlirRegionCreate();
  MlirBlock block = mlirBlockCreate((intptr_t)sig.ntensors, sig.types, sig.locs);
  mlirRegionAppendOwnedBlock(region, block);
  MlirType fn_type = mlirFunctionTypeGet(ctx, (intptr_t)sig.ntensors, sig.types, 0, NULL);
  MlirLocation file_loc = mlirLocationFileLineColGet(
      ctx, mlirStringRefCreateFromCString(in->em.archive), 1, 1);
  MlirNamedAttribute fattrs[] = {
      named(ctx, "sym_name", str_attr(ctx, "main")),
      named(ctx, "function_type", mlirTypeAttrGet(fn_type)),
      named(ctx, "arg_attrs", mlirArrayAttrGet(ctx, (intptr_t)sig.ntensors, sig.attrs)),
  };
  MlirOperationState fstate =
      mlirOperationStateGet(mlirStringRefCreateFromCString("func.func"), file_loc);
  mlirOperationStateAddAttributes(&fstate, sig.ntensors ? 3 : 2, fattrs);
  mlirOperationStateAddOwnedRegions(&fstate, 1, &region);
  MlirOperation func = mlirOperationCreate(&fstate);
  if (mlirOperationIsNull(func))
    return MOAI_STATUS(MOAI_INTERNAL, "%s: could not create func.func @main",
                       in->em.archive);
  mlirBlockAppendOwnedOperation(mlirModuleGetBody(module), func);
  in->em.block = block;
  size_t k = 0;
  for (size_t i = 0; i < sig.count; ++i)
    if (sig.args[i]) sig.args[i]->tensor = mlirBlockGetArgument(block, (intptr_t)k++);

  moai_ts_value_t *self = moai_ts_arena_alloc(in->em.arena, sizeof(*self));
  if (!self) return oom(in);
  self->kind = MOAI_TS_MODULE;
  self->module = root;
  self->module_path = "";
  /* Arguments bound by name; the untyped ones take their defaults. */
  moai_ts_kwarg_t *kwargs = moai_ts_arena_alloc(in->em.arena, (sig.count + 1) * sizeof(*kwargs));
  if (!kwargs) return oom(in);
  size_t nkw = 0;
  for (size_t i = 0; i < sig.count; ++i)
    if (sig.args[i]) kwargs[nkw++] = (moai_ts_kwarg_t){fwd->params[i + 1].name, sig.args[i]};
  in->em.line = fwd->line;
  moai_ts_value_t *result = NULL;
  MOAI_RETURN_IF_ERROR(moai_ts_interp_call_method(in, self, "forward", NULL, 0,
                                                  kwargs, nkw, &result));
  in->em.file = moai_ts_source_file(src);
  MlirValue values[MAX_RESULTS];
  size_t nres = 0;
  MOAI_RETURN_IF_ERROR(collect_results(in, result, values, MAX_RESULTS, &nres, fwd->line));
  if (!nres)
    return moai_ts_interp_error(in, fwd->line, MOAI_UNIMPLEMENTED,
                                "forward returns no tensor");
  MlirType types[MAX_RESULTS + 0];
  MlirAttribute res_attrs[MAX_RESULTS];
  for (size_t i = 0; i < nres; ++i) {
    char name[32];
    if (nres == 1) snprintf(name, sizeof(name), "output");
    else snprintf(name, sizeof(name), "output_%zu", i);
    MlirNamedAttribute entry = named(ctx, "moai.name", str_attr(ctx, name));
    res_attrs[i] = mlirDictionaryAttrGet(ctx, 1, &entry);
    types[i] = mlirValueGetType(values[i]);
  }
  MlirOperationState rstate =
      mlirOperationStateGet(mlirStringRefCreateFromCString("func.return"), file_loc);
  mlirOperationStateAddOperands(&rstate, (intptr_t)nres, values);
  MlirOperation ret = mlirOperationCreate(&rstate);
  if (mlirOperationIsNull(ret))
    return MOAI_STATUS(MOAI_INTERNAL, "%s: could not create func.return", in->em.archive);
  mlirBlockAppendOwnedOperation(block, ret);
  fn_type = mlirFunctionTypeGet(ctx, (intptr_t)sig.ntensors, sig.types,
                                (intptr_t)nres, types);
  mlirOperationSetAttributeByName(func, mlirStringRefCreateFromCString("function_type"),
                                  mlirTypeAttrGet(fn_type));
  mlirOperationSetAttributeByName(func, mlirStringRefCreateFromCString("res_attrs"),
                                  mlirArrayAttrGet(ctx, (intptr_t)nres, res_attrs));
  return moai_ok_status();
}

static moai_status_t set_module_attributes(moai_ts_interp_t *in, MlirModule module) {
  MlirContext ctx = in->em.ctx;
  MlirOperation op = mlirModuleGetOperation(module);
  size_t n = 0;
  MlirAttribute *names = malloc((in->weight_count + 1) * sizeof(*names));
  if (!names) return oom(in);
  for (size_t i = 0; i < in->weight_count; ++i)
    if (in->weights[i].trainable) names[n++] = str_attr(ctx, in->weights[i].name);
  mlirOperationSetAttributeByName(op, mlirStringRefCreateFromCString("moai.trainable_parameters"),
                                  mlirArrayAttrGet(ctx, (intptr_t)n, names));
  free(names);
  mlirOperationSetAttributeByName(op, mlirStringRefCreateFromCString("moai.source"),
                                  str_attr(ctx, in->path));
  mlirOperationSetAttributeByName(op, mlirStringRefCreateFromCString("moai.producer"),
                                  str_attr(ctx, "pytorch torchscript"));
  return moai_ok_status();
}

/* ---- entry ---------------------------------------------------------------- */

static moai_status_t import_archive(moai_ts_interp_t *in, MlirModule module,
                                    moai_pk_arena_t **data_arena,
                                    moai_pk_arena_t **const_arena) {
  moai_pk_value_t *root = NULL, *constants = NULL;
  MOAI_RETURN_IF_ERROR(moai_ts_archive_load_data(in->archive, data_arena, &root));
  MOAI_RETURN_IF_ERROR(
      moai_ts_archive_load_constants(in->archive, const_arena, &constants));
  in->constants = constants;
  size_t nc = constants ? constants->len : 0;
  in->constant_values =
      moai_ts_arena_alloc(in->em.arena, (nc + 1) * sizeof(*in->constant_values));
  if (!in->constant_values) return oom(in);
  MOAI_RETURN_IF_ERROR(run_forward(in, module, root));
  MOAI_RETURN_IF_ERROR(set_module_attributes(in, module));
  return moai_ok_status();
}

moai_status_t moai_ts_import_file(MlirContext ctx, const char *path,
                                  const moai_onnx_import_options_t *options,
                                  MlirModule *out_module) {
  if (mlirContextIsNull(ctx) || !path || !*path || !out_module)
    return MOAI_STATUS(MOAI_INVALID_ARGUMENT,
                       "moai_ts_import_file needs a context, a path and an "
                       "output module");
  moai_ts_archive_t *archive = NULL;
  MOAI_RETURN_IF_ERROR(moai_ts_archive_open(path, &archive));
  moai_ts_interp_t in = {
      .em = {.ctx = ctx, .arena = moai_ts_arena_create(), .archive = path},
      .archive = archive,
      .path = path,
      .options = options,
  };
  moai_pk_arena_t *data_arena = NULL, *const_arena = NULL;
  moai_status_t st = moai_ok_status();
  MlirModule module = mlirModuleCreateEmpty(mlirLocationFileLineColGet(
      ctx, mlirStringRefCreateFromCString(path), 1, 1));
  moai_diag_sink_t diag;
  moai_diag_attach(ctx, &diag, NULL);
  if (!in.em.arena) st = MOAI_STATUS(MOAI_OUT_OF_MEMORY, "%s: out of memory", path);
  if (!st) st = import_archive(&in, module, &data_arena, &const_arena);
  if (!st && !mlirOperationVerify(mlirModuleGetOperation(module))) {
    char fallback[512];
    snprintf(fallback, sizeof(fallback),
             "%s: the imported module does not verify", path);
    st = moai_diag_take_status(&diag, MOAI_INTERNAL, fallback);
  }
  moai_diag_detach(&diag);
  for (size_t i = 0; i < in.source_count; ++i) {
    free(in.sources[i].file);
    moai_ts_source_free(in.sources[i].source);
  }
  free(in.sources);
  free(in.weights);
  moai_pk_arena_free(data_arena);
  moai_pk_arena_free(const_arena);
  moai_ts_arena_destroy(in.em.arena);
  moai_ts_archive_close(archive);
  if (st) {
    mlirModuleDestroy(module);
    return st;
  }
  *out_module = module;
  return moai_ok_status();
}
