/* Helpers of the lowering: growable buffers, a pointer map, diagnostics at
 * an op, tensor types, attributes with the op table's defaults, and the
 * descriptor writer (moai_lower_emit). */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/lower_internal.h"
#include "ir/dtype.h"
#include "mlir-c/BuiltinAttributes.h"
#include "mlir-c/BuiltinTypes.h"
#include "mlir-c/Diagnostics.h"

/* ---- small utilities ------------------------------------------------------ */

bool moai_lower_str_eq(MlirStringRef s, const char *lit) {
  size_t n = strlen(lit);
  return s.length == n && memcmp(s.data, lit, n) == 0;
}

MlirStringRef moai_lower_op_name(MlirOperation op) {
  return mlirIdentifierStr(mlirOperationGetName(op));
}

MlirAttribute moai_lower_get_attr(MlirOperation op, const char *name) {
  return mlirOperationGetAttributeByName(op,
                                         mlirStringRefCreateFromCString(name));
}

bool moai_lower_grow(moai_lower_t *L, void **ptr, size_t *capacity, size_t need,
                 size_t elem) {
  if (need <= *capacity) return true;
  size_t cap = *capacity ? *capacity : 16;
  while (cap < need) cap *= 2;
  void *p = *ptr;
  moai_status_t s = moai_allocator_realloc(L->allocator, cap * elem, &p);
  if (s) {
    moai_status_free(s);
    L->oom = true;
    return false;
  }
  *ptr = p;
  *capacity = cap;
  return true;
}

char *moai_lower_strdup(moai_lower_t *L, MlirStringRef s) {
  void *mem = NULL;
  moai_status_t st = moai_allocator_malloc(L->allocator, s.length + 1, &mem);
  if (st) {
    moai_status_free(st);
    L->oom = true;
    return NULL;
  }
  if (s.length) memcpy(mem, s.data, s.length);
  ((char *)mem)[s.length] = '\0';
  return mem;
}

/* ---- pointer map ---------------------------------------------------------- */

static size_t ptr_hash(const void *p, size_t mask) {
  uint64_t x = (uint64_t)(uintptr_t)p;
  x ^= x >> 33;
  x *= UINT64_C(0xff51afd7ed558ccd);
  x ^= x >> 33;
  return (size_t)x & mask;
}

bool moai_ptr_map_put(moai_lower_t *L, moai_ptr_map_t *m, const void *key,
                        uint64_t value) {
  if (2 * (m->count + 1) > m->capacity) {
    size_t cap = m->capacity ? 2 * m->capacity : 64;
    void *keys = NULL, *values = NULL;
    moai_status_t s = moai_allocator_malloc(L->allocator, cap * sizeof(void *), &keys);
    if (!s) s = moai_allocator_malloc(L->allocator, cap * sizeof(uint64_t), &values);
    if (s) {
      moai_status_free(s);
      moai_allocator_free(L->allocator, keys);
      L->oom = true;
      return false;
    }
    moai_ptr_map_t grown = {keys, values, cap, 0};
    for (size_t i = 0; i < m->capacity; ++i) {
      if (!m->keys[i]) continue;
      size_t j = ptr_hash(m->keys[i], cap - 1);
      while (grown.keys[j]) j = (j + 1) & (cap - 1);
      grown.keys[j] = m->keys[i];
      grown.values[j] = m->values[i];
      grown.count++;
    }
    moai_allocator_free(L->allocator, m->keys);
    moai_allocator_free(L->allocator, m->values);
    *m = grown;
  }
  size_t j = ptr_hash(key, m->capacity - 1);
  while (m->keys[j] && m->keys[j] != key) j = (j + 1) & (m->capacity - 1);
  if (!m->keys[j]) m->count++;
  m->keys[j] = key;
  m->values[j] = value;
  return true;
}

bool moai_ptr_map_get(const moai_ptr_map_t *m, const void *key,
                        uint64_t *out) {
  if (!m->capacity) return false;
  size_t j = ptr_hash(key, m->capacity - 1);
  while (m->keys[j]) {
    if (m->keys[j] == key) {
      *out = m->values[j];
      return true;
    }
    j = (j + 1) & (m->capacity - 1);
  }
  return false;
}

void moai_ptr_map_free(moai_lower_t *L, moai_ptr_map_t *m) {
  moai_allocator_free(L->allocator, m->keys);
  moai_allocator_free(L->allocator, m->values);
  *m = (moai_ptr_map_t){0};
}

/* ---- diagnostics and types ----------------------------------------------- */

bool moai_lower_error(moai_lower_op_t *o, const char *fmt, ...) {
  char msg[512];
  va_list args;
  va_start(args, fmt);
  vsnprintf(msg, sizeof(msg), fmt, args);
  va_end(args);
  mlirEmitError(mlirOperationGetLocation(o->op), msg);
  return false;
}

bool moai_lower_shape(moai_lower_op_t *o, MlirValue v, int32_t *out_rank,
                      int64_t *dims) {
  MlirType t = mlirValueGetType(v);
  if (!mlirTypeIsARankedTensor(t) || !mlirShapedTypeHasStaticShape(t))
    return moai_lower_error(o, "a value has no static shape; the backend "
                               "needs static shapes (pass --input-shape)");
  intptr_t rank = mlirShapedTypeGetRank(t);
  if (rank > MOAI_MAX_RANK)
    return moai_lower_error(o, "a tensor of rank %ld exceeds the backend's "
                               "maximum rank %d",
                            (long)rank, MOAI_MAX_RANK);
  for (intptr_t i = 0; i < rank; ++i) dims[i] = mlirShapedTypeGetDimSize(t, i);
  *out_rank = (int32_t)rank;
  return true;
}

bool moai_lower_describe(moai_lower_op_t *o, MlirValue v, moai_tensor_t *t,
                          uint64_t *out_bytes) {
  memset(t, 0, sizeof(*t));
  if (!moai_lower_shape(o, v, &t->rank, t->dims)) return false;
  moai_dtype_t dt =
      moai_dtype_from_mlir(mlirShapedTypeGetElementType(mlirValueGetType(v)));
  size_t es = moai_dtype_size(dt);
  if (dt == MOAI_DTYPE_UNDEFINED || es == 0)
    return moai_lower_error(o, "element type not supported by the backend");
  t->dtype = (int32_t)dt;
  uint64_t n = 1;
  for (int32_t i = 0; i < t->rank; ++i) n *= (uint64_t)t->dims[i];
  *out_bytes = n * es;
  return true;
}

bool moai_lower_value_used(MlirValue v) {
  return !mlirOpOperandIsNull(mlirValueGetFirstUse(v));
}

/* ---- attributes ------------------------------------------------------------ */

static const char *attr_default(const moai_lower_op_t *o, const char *name) {
  const moai_attr_def_t *d = moai_op_def_find_attr(o->def, name);
  if (!d || !d->default_text || strcmp(d->default_text, MOAI_ATTR_REQUIRED) == 0)
    return NULL;
  return d->default_text;
}

bool moai_lower_attr_int(moai_lower_op_t *o, const char *name, int64_t *out,
                         bool *out_present) {
  MlirAttribute a = moai_lower_get_attr(o->op, name);
  if (out_present) *out_present = true;
  if (!mlirAttributeIsNull(a)) {
    if (!mlirAttributeIsAInteger(a))
      return moai_lower_error(o, "attribute '%s' must be an integer", name);
    *out = mlirIntegerAttrGetValueInt(a);
    return true;
  }
  const char *dflt = attr_default(o, name);
  if (dflt) {
    *out = strtoll(dflt, NULL, 10);
    return true;
  }
  if (out_present) {
    *out_present = false;
    return true;
  }
  return moai_lower_error(o, "attribute '%s' is missing", name);
}

bool moai_lower_attr_float(moai_lower_op_t *o, const char *name, double *out) {
  MlirAttribute a = moai_lower_get_attr(o->op, name);
  if (!mlirAttributeIsNull(a)) {
    if (mlirAttributeIsAFloat(a)) *out = mlirFloatAttrGetValueDouble(a);
    else if (mlirAttributeIsAInteger(a)) *out = (double)mlirIntegerAttrGetValueInt(a);
    else return moai_lower_error(o, "attribute '%s' must be a float", name);
    return true;
  }
  const char *dflt = attr_default(o, name);
  if (!dflt) return moai_lower_error(o, "attribute '%s' is missing", name);
  *out = strtod(dflt, NULL);
  return true;
}

bool moai_lower_attr_string(moai_lower_op_t *o, const char *name,
                            MlirStringRef *out) {
  MlirAttribute a = moai_lower_get_attr(o->op, name);
  if (!mlirAttributeIsNull(a)) {
    if (!mlirAttributeIsAString(a))
      return moai_lower_error(o, "attribute '%s' must be a string", name);
    *out = mlirStringAttrGetValue(a);
    return true;
  }
  const char *dflt = attr_default(o, name);
  if (!dflt) return moai_lower_error(o, "attribute '%s' is missing", name);
  *out = mlirStringRefCreateFromCString(dflt);
  return true;
}

bool moai_lower_attr_ints(moai_lower_op_t *o, const char *name, int64_t *buf,
                          size_t cap, size_t *out_n, bool *out_present) {
  MlirAttribute a = moai_lower_get_attr(o->op, name);
  *out_n = 0;
  *out_present = false;
  if (mlirAttributeIsNull(a)) {
    const char *dflt = attr_default(o, name);
    if (!dflt) return true;
    for (const char *p = dflt; *p;) {
      char *end;
      long long v = strtoll(p, &end, 10);
      if (end == p) break;
      if (*out_n >= cap) return moai_lower_error(o, "attribute '%s' is too long", name);
      buf[(*out_n)++] = v;
      p = *end == ',' ? end + 1 : end;
    }
    *out_present = true;
    return true;
  }
  if (!mlirAttributeIsADenseI64Array(a))
    return moai_lower_error(o, "attribute '%s' must be an i64 array", name);
  intptr_t n = mlirDenseArrayGetNumElements(a);
  if ((size_t)n > cap)
    return moai_lower_error(o, "attribute '%s' has %ld values (at most %zu)",
                            name, (long)n, cap);
  for (intptr_t i = 0; i < n; ++i) buf[i] = mlirDenseI64ArrayGetElement(a, i);
  *out_n = (size_t)n;
  *out_present = true;
  return true;
}

void moai_lower_set_attrs(moai_lower_op_t *o, const void *attrs, size_t size) {
  memcpy(o->attrs, attrs, size);
  o->attrs_size = (uint32_t)size;
}

/* ---- descriptors ----------------------------------------------------------- */

/* The model's node name of an op: the NameLoc inside its location. */
static void node_name(MlirOperation op, uint32_t index, char *buf, size_t size) {
  MlirLocation loc = mlirOperationGetLocation(op);
  for (int depth = 0; depth < 4; ++depth) {
    if (mlirLocationIsAName(loc)) {
      MlirStringRef n = mlirIdentifierStr(mlirLocationNameGetName(loc));
      size_t len = n.length < size - 1 ? n.length : size - 1;
      memcpy(buf, n.data, len);
      buf[len] = '\0';
      return;
    }
    if (mlirLocationIsAFused(loc) && mlirLocationFusedGetNumLocations(loc) >= 1) {
      MlirLocation inner[1];
      if (mlirLocationFusedGetNumLocations(loc) != 1) break;
      mlirLocationFusedGetLocations(loc, inner);
      loc = inner[0];
      continue;
    }
    break;
  }
  MlirStringRef name = moai_lower_op_name(op);
  snprintf(buf, size, "%.*s#%u", (int)name.length, name.data, index);
}

bool moai_lower_emit(moai_lower_t *L, moai_lower_op_t *o) {
  moai_device_program_t *p = L->program;
  size_t ntensors = o->n_in + o->n_out;
  size_t size = sizeof(moai_op_desc_t) + ntensors * sizeof(moai_tensor_t) +
                o->attrs_size;
  size = (size + 7) & ~(size_t)7;
  if (!moai_lower_grow(L, (void **)&p->desc_offsets, &L->offsets_capacity, p->num_ops + 1,
            sizeof(size_t)) ||
      !moai_lower_grow(L, (void **)&p->descs, &L->descs_capacity, p->descs_size + size, 1))
    return false;
  unsigned char *dst = p->descs + p->descs_size;
  memset(dst, 0, size);
  moai_op_desc_t h = {
      .kernel = o->kernel,
      .n_in = o->n_in,
      .n_out = o->n_out,
      .attrs_size = o->attrs_size,
      .size = (uint32_t)size,
      .index = p->num_ops,
  };
  node_name(o->op, p->num_ops, h.name, sizeof(h.name));
  memcpy(dst, &h, sizeof(h));
  memcpy(dst + sizeof(h), o->ins, o->n_in * sizeof(moai_tensor_t));
  memcpy(dst + sizeof(h) + o->n_in * sizeof(moai_tensor_t), o->outs,
         o->n_out * sizeof(moai_tensor_t));
  memcpy(dst + sizeof(h) + ntensors * sizeof(moai_tensor_t), o->attrs,
         o->attrs_size);
  p->desc_offsets[p->num_ops++] = p->descs_size;
  p->descs_size += size;
  return true;
}

