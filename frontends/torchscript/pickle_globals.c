/* The unpickler's allow-list: the only globals a TorchScript pickle may
 * name, and what REDUCE, NEWOBJ and BINPERSID build from them (tensors,
 * ordered dicts, typed lists, __torch__ module objects). Everything else,
 * `os.system` or `builtins.eval` included, is refused by name before
 * anything is called: nothing here ever runs code chosen by the input. */
#include <stdio.h>
#include <string.h>

#include "torchscript/pickle_internal.h"

static const struct {
  const char *module, *name;
  pk_global_t id;
} kGlobals[] = {
    {"torch._utils", "_rebuild_tensor_v2", PK_G_REBUILD_TENSOR_V2},
    {"torch._utils", "_rebuild_parameter", PK_G_REBUILD_PARAMETER},
    {"collections", "OrderedDict", PK_G_ORDERED_DICT},
    {"torch.jit._pickle", "build_intlist", PK_G_BUILD_INTLIST},
    {"torch.jit._pickle", "build_doublelist", PK_G_BUILD_DOUBLELIST},
    {"torch.jit._pickle", "build_boollist", PK_G_BUILD_BOOLLIST},
    {"torch.jit._pickle", "build_tensorlist", PK_G_BUILD_TENSORLIST},
    {"torch.jit._pickle", "restore_type_tag", PK_G_RESTORE_TYPE_TAG},
};

static const struct {
  const char *name;
  moai_pk_dtype_t dtype;
} kStorages[] = {
    {"FloatStorage", MOAI_PK_F32},   {"DoubleStorage", MOAI_PK_F64},
    {"HalfStorage", MOAI_PK_F16},    {"BFloat16Storage", MOAI_PK_BF16},
    {"LongStorage", MOAI_PK_I64},    {"IntStorage", MOAI_PK_I32},
    {"ShortStorage", MOAI_PK_I16},   {"CharStorage", MOAI_PK_I8},
    {"ByteStorage", MOAI_PK_U8},     {"BoolStorage", MOAI_PK_BOOL_DT},
};

/* A dotted Python name: identifiers joined by single dots. */
static bool dotted_name(const char *s) {
  bool start = true;
  for (; *s; ++s) {
    char c = *s;
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (c == '.') {
      if (start) return false;
      start = true;
    } else if (alpha || (!start && c >= '0' && c <= '9')) {
      start = false;
    } else {
      return false;
    }
  }
  return !start;
}

moai_status_t pk_global(pk_machine_t *m, const char *module, const char *name,
                        pk_node_t **out) {
  pk_node_t *g;
  char qual[520];
  snprintf(qual, sizeof qual, "%s.%s", module, name);
  for (size_t i = 0; i < sizeof kGlobals / sizeof kGlobals[0]; ++i) {
    if (!strcmp(module, kGlobals[i].module) && !strcmp(name, kGlobals[i].name)) {
      MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_GLOBAL, &g));
      g->v.i = kGlobals[i].id;
      MOAI_RETURN_IF_ERROR(pk_strdup(m, qual, &g->v.str));
      g->v.len = strlen(qual);
      *out = g;
      return moai_ok_status();
    }
  }
  if (!strcmp(module, "torch")) {
    for (size_t i = 0; i < sizeof kStorages / sizeof kStorages[0]; ++i) {
      if (strcmp(name, kStorages[i].name)) continue;
      MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_GLOBAL, &g));
      g->v.i = PK_G_STORAGE_CLASS;
      g->v.tensor.dtype = kStorages[i].dtype;
      MOAI_RETURN_IF_ERROR(pk_strdup(m, qual, &g->v.str));
      g->v.len = strlen(qual);
      *out = g;
      return moai_ok_status();
    }
  }
  if ((!strcmp(module, "__torch__") || !strncmp(module, "__torch__.", 10)) &&
      dotted_name(module) && dotted_name(name)) {
    MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_GLOBAL, &g));
    g->v.i = PK_G_TORCH_CLASS;
    MOAI_RETURN_IF_ERROR(pk_strdup(m, qual, &g->v.str));
    g->v.len = strlen(qual);
    *out = g;
    return moai_ok_status();
  }
  return pk_error(m, MOAI_INVALID_ARGUMENT,
                  "global '%s' is not allowed (a TorchScript archive's "
                  "pickles only rebuild tensors, typed lists and __torch__ "
                  "module objects)", qual);
}

static bool is_global(const pk_node_t *n, pk_global_t id) {
  return n->v.kind == MOAI_PK_GLOBAL && n->v.i == (int64_t)id;
}

/* An int64 list of a tuple of ints (sizes, strides), each >= 0. */
static moai_status_t int_tuple(pk_machine_t *m, const moai_pk_value_t *t,
                               const char *what, int64_t *dst, int *out_n) {
  if (t->kind != MOAI_PK_TUPLE)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "_rebuild_tensor_v2: %s is not a tuple", what);
  if (t->len > MOAI_PK_MAX_RANK)
    return pk_error(m, MOAI_UNIMPLEMENTED,
                    "_rebuild_tensor_v2: a tensor of rank %zu (moai reads "
                    "up to %d)", t->len, MOAI_PK_MAX_RANK);
  for (size_t i = 0; i < t->len; ++i) {
    if (t->items[i]->kind != MOAI_PK_INT || t->items[i]->i < 0)
      return pk_error(m, MOAI_INVALID_ARGUMENT,
                      "_rebuild_tensor_v2: %s[%zu] is not an int >= 0", what,
                      i);
    dst[i] = t->items[i]->i;
  }
  *out_n = (int)t->len;
  return moai_ok_status();
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]). */
static moai_status_t rebuild_tensor_args(pk_machine_t *m,
                                         moai_pk_value_t *const *a, size_t n,
                                         pk_node_t **out) {
  if (n != 6 && n != 7)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "_rebuild_tensor_v2 with %zu arguments (6 or 7 expected)",
                    n);
  const pk_node_t *storage = (const pk_node_t *)a[0];
  if (!is_global(storage, PK_G_STORAGE_REF))
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "_rebuild_tensor_v2: the first argument is not a storage");
  if (a[1]->kind != MOAI_PK_INT || a[1]->i < 0)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "_rebuild_tensor_v2: storage offset is not an int >= 0");
  if (a[4]->kind != MOAI_PK_BOOL)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "_rebuild_tensor_v2: requires_grad is not a bool");
  pk_node_t *t;
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_TENSOR, &t));
  moai_pk_tensor_t *tt = &t->v.tensor;
  int rank_strides = 0;
  MOAI_RETURN_IF_ERROR(int_tuple(m, a[2], "size", tt->sizes, &tt->rank));
  MOAI_RETURN_IF_ERROR(int_tuple(m, a[3], "stride", tt->strides, &rank_strides));
  if (rank_strides != tt->rank)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "_rebuild_tensor_v2: %d sizes but %d strides", tt->rank,
                    rank_strides);
  /* The element count must fit int64 with room for the byte size. */
  int64_t numel = 1;
  for (int d = 0; d < tt->rank; ++d) {
    if (tt->sizes[d] && numel > (INT64_MAX / 16) / tt->sizes[d])
      return pk_error(m, MOAI_INVALID_ARGUMENT,
                      "_rebuild_tensor_v2: a tensor of more than 2^59 "
                      "elements");
    numel *= tt->sizes[d];
  }
  tt->storage_key = storage->v.tensor.storage_key;
  tt->dtype = storage->v.tensor.dtype;
  tt->storage_numel = storage->v.tensor.storage_numel;
  tt->storage_offset = a[1]->i;
  tt->requires_grad = a[4]->b;
  *out = t;
  return moai_ok_status();
}

/* _rebuild_parameter(tensor, requires_grad, backward_hooks). */
static moai_status_t rebuild_parameter(pk_machine_t *m,
                                       moai_pk_value_t *const *a, size_t n,
                                       pk_node_t **out) {
  if (n != 3 || a[0]->kind != MOAI_PK_TENSOR || a[1]->kind != MOAI_PK_BOOL)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "_rebuild_parameter takes (tensor, requires_grad: bool, "
                    "hooks)");
  pk_node_t *t;
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_TENSOR, &t));
  t->v.tensor = a[0]->tensor;
  t->v.tensor.requires_grad = a[1]->b;
  t->v.tensor.is_parameter = true;
  *out = t;
  return moai_ok_status();
}

/* build_*list(list): the list, its items checked. */
static moai_status_t build_list(pk_machine_t *m, pk_node_t *fn,
                                moai_pk_value_t *const *a, size_t n,
                                pk_node_t **out) {
  if (n != 1 || a[0]->kind != MOAI_PK_LIST)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "%s takes one list", fn->v.str);
  moai_pk_kind_t want = fn->v.i == PK_G_BUILD_INTLIST      ? MOAI_PK_INT
                        : fn->v.i == PK_G_BUILD_DOUBLELIST ? MOAI_PK_FLOAT
                        : fn->v.i == PK_G_BUILD_BOOLLIST   ? MOAI_PK_BOOL
                                                           : MOAI_PK_TENSOR;
  for (size_t i = 0; i < a[0]->len; ++i)
    if (a[0]->items[i]->kind != want)
      return pk_error(m, MOAI_INVALID_ARGUMENT, "%s: item %zu has the wrong "
                      "type", fn->v.str, i);
  *out = (pk_node_t *)a[0];
  return moai_ok_status();
}

moai_status_t pk_reduce(pk_machine_t *m, pk_node_t *fn, pk_node_t *args,
                        pk_node_t **out) {
  if (fn->v.kind != MOAI_PK_GLOBAL)
    return pk_error(m, MOAI_INVALID_ARGUMENT, "REDUCE of a value that is not "
                    "a global");
  if (args->v.kind != MOAI_PK_TUPLE)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "REDUCE of %s with arguments that are not a tuple",
                    fn->v.str);
  moai_pk_value_t *const *a = args->v.items;
  size_t n = args->v.len;
  switch ((pk_global_t)fn->v.i) {
    case PK_G_REBUILD_TENSOR_V2: return rebuild_tensor_args(m, a, n, out);
    case PK_G_REBUILD_PARAMETER: return rebuild_parameter(m, a, n, out);
    case PK_G_ORDERED_DICT:
      if (n != 0)
        return pk_error(m, MOAI_INVALID_ARGUMENT,
                        "collections.OrderedDict with arguments");
      return pk_new(m, MOAI_PK_DICT, out);
    case PK_G_BUILD_INTLIST:
    case PK_G_BUILD_DOUBLELIST:
    case PK_G_BUILD_BOOLLIST:
    case PK_G_BUILD_TENSORLIST: return build_list(m, fn, a, n, out);
    case PK_G_RESTORE_TYPE_TAG:
      if (n != 2 || a[1]->kind != MOAI_PK_STR)
        return pk_error(m, MOAI_INVALID_ARGUMENT,
                        "restore_type_tag takes (value, type: str)");
      *out = (pk_node_t *)a[0];
      return moai_ok_status();
    default:
      return pk_error(m, MOAI_INVALID_ARGUMENT, "%s cannot be called (REDUCE)",
                      fn->v.str);
  }
}

moai_status_t pk_newobj(pk_machine_t *m, pk_node_t *cls, pk_node_t *args,
                        pk_node_t **out) {
  if (!is_global(cls, PK_G_TORCH_CLASS))
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "NEWOBJ of %s (only __torch__ classes are built)",
                    cls->v.kind == MOAI_PK_GLOBAL ? cls->v.str : "a non-class");
  if (args->v.kind != MOAI_PK_TUPLE || args->v.len != 0)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "NEWOBJ of %s with arguments", cls->v.str);
  pk_node_t *obj, *state;
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_OBJECT, &obj));
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_DICT, &state));
  obj->v.str = cls->v.str;
  obj->v.len = cls->v.len;
  obj->v.state = &state->v;
  obj->depth = 2;
  obj->nodes = 2;
  *out = obj;
  return moai_ok_status();
}

/* A storage key names the entry data/<key>: plain characters only. */
static bool storage_key_ok(const char *s, size_t n) {
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; ++i) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
          (c >= 'A' && c <= 'Z') || c == '_'))
      return false;
  }
  return true;
}

moai_status_t pk_persistent(pk_machine_t *m, pk_node_t *pid, pk_node_t **out) {
  const moai_pk_value_t *p = &pid->v;
  if (p->kind != MOAI_PK_TUPLE || p->len != 5 ||
      p->items[0]->kind != MOAI_PK_STR || strcmp(p->items[0]->str, "storage") ||
      !is_global((const pk_node_t *)p->items[1], PK_G_STORAGE_CLASS) ||
      p->items[2]->kind != MOAI_PK_STR || p->items[3]->kind != MOAI_PK_STR ||
      p->items[4]->kind != MOAI_PK_INT)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "a persistent id that is not ('storage', torch.<Dtype>"
                    "Storage, key, location, numel)");
  if (!storage_key_ok(p->items[2]->str, p->items[2]->len))
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "storage key '%.64s' is not a plain name", p->items[2]->str);
  if (p->items[4]->i < 0 || p->items[4]->i > INT64_MAX / 16)
    return pk_error(m, MOAI_INVALID_ARGUMENT,
                    "storage %s of %lld elements", p->items[2]->str,
                    (long long)p->items[4]->i);
  pk_node_t *s;
  MOAI_RETURN_IF_ERROR(pk_new(m, MOAI_PK_GLOBAL, &s));
  s->v.i = PK_G_STORAGE_REF;
  s->v.str = "storage";
  s->v.len = 7;
  s->v.tensor.storage_key = p->items[2]->str;
  s->v.tensor.dtype = p->items[1]->tensor.dtype;
  s->v.tensor.storage_numel = p->items[4]->i;
  *out = s;
  return moai_ok_status();
}
